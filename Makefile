# drlocal: every set-up step lives here, so a fresh clone needs nothing but `make`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install train test lint demo clean browser

$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch is pinned first: an unpinned torch pulls several GB of CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	# the car extra (TensorFlow CPU, OpenVINO, onnx, onnxruntime) so the export/import tests run,
	# the view extra (viewer, MP4s) so `train --view` and `evaluate --mp4` work, analysis for the report panels,
	# ray for --workers / --learners / --address (and its tests: a real two-node Ray cluster on loopback)
	$(BIN)/pip install -q -e '.[test,car,view,analysis,ray]'
	touch $(STAMP)

install: $(STAMP)

RUN_DIR ?= run
MINUTES ?= 5
# TEMPLATE=race or race-continuous: a new $(RUN_DIR) starts from that race template (drlocal init --template)
TEMPLATE ?=

## Train the default model (DRfC defaults, reinvent_base) for $(MINUTES) minutes, evaluate it, say where it is.
train: $(STAMP)
	@test -f $(RUN_DIR)/run.env || $(BIN)/drlocal init $(RUN_DIR) $(if $(TEMPLATE),--template $(TEMPLATE))
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

## The real browser of the viewer test: Debian's chromium (the one system package; apt needs root or sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	{ if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; else \
	    echo "chromium is missing and apt needs root: run 'sudo apt-get install chromium' (viewer browser test)"; exit 0; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; }

# two pytest workers (pytest-xdist), whole test files each: a worker starts the session servers it needs (its own
# S3 server; the Ray cluster's tests are one file); each worker's torch/numba use one thread (tests/conftest.py)
PYTEST_WORKERS ?= 2
test: $(STAMP) browser
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
