# drlocal: every set-up step lives here, so a fresh clone needs nothing but `make`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install train test lint demo clean

$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch is pinned first: an unpinned torch pulls several GB of CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	# the car extra (TensorFlow CPU, OpenVINO, onnx, onnxruntime) so the export/import tests run
	$(BIN)/pip install -q -e '.[test,car]'
	touch $(STAMP)

install: $(STAMP)

RUN_DIR ?= run
MINUTES ?= 5

## Train the default model (DRfC defaults, reinvent_base) for $(MINUTES) minutes, evaluate it, say where it is.
train: $(STAMP)
	@test -f $(RUN_DIR)/run.env || $(BIN)/drlocal init $(RUN_DIR)
	@if ls $(RUN_DIR)/data/bucket/rl-deepracer-sagemaker/model/*.ckpt.pt >/dev/null 2>&1; then \
		$(BIN)/drlocal train --dir $(RUN_DIR) --minutes $(MINUTES) --resume; \
	else \
		$(BIN)/drlocal train --dir $(RUN_DIR) --minutes $(MINUTES); \
	fi
	$(BIN)/drlocal evaluate --dir $(RUN_DIR) --checkpoint best
	@echo "model folder: $(RUN_DIR)/data/bucket/rl-deepracer-sagemaker"

## Drive scripted cars through the simulator (no training).
demo: $(STAMP)
	$(BIN)/drlocal demo --track reinvent_base

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
