"""Working folders: DRfC env files, DR_* variables, validation that reports everything at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drlocal.config.envfile import parse_env_file
from drlocal.config.run import build_run_config
from drlocal.config.workdir import increment_run_env, init_workdir, load_job
from drlocal.errors import DrlocalError


def test_env_file_syntax(tmp_path: Path) -> None:
    p = tmp_path / "run.env"
    p.write_text(
        "# comment\n"
        "DR_A=plain\n"
        "export DR_B=\"double $DR_A\"  # trailing comment\n"
        "DR_C='single $DR_A'\n"
        "DR_D=${DR_A}/x\n"
        "DR_E=$DR_A-1\n"
        "\n"
        "DR_F=\n"
    )
    v = parse_env_file(p)
    assert v["DR_A"].value == "plain"
    assert v["DR_B"].value == "double plain" and v["DR_B"].line == 3
    assert v["DR_C"].value == "single $DR_A"
    assert v["DR_D"].value == "plain/x"
    assert v["DR_E"].value == "plain-1"
    assert v["DR_F"].value == ""


def test_malformed_env_line_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "run.env"
    p.write_text("DR_A=1\nthis is not bash\n")
    with pytest.raises(DrlocalError, match=r"run\.env:2: cannot parse"):
        parse_env_file(p)
    p.write_text('DR_A="unterminated\n')
    with pytest.raises(DrlocalError, match=r"run\.env:1: No closing quotation(.|\n)*close the quote"):
        parse_env_file(p)


def test_init_writes_drfc_defaults_and_loads(tmp_path: Path) -> None:
    init_workdir(tmp_path)
    job = load_job(tmp_path, environ={})
    assert job.run.world_name == "reinvent_base" and job.run.model_prefix == "rl-deepracer-sagemaker"
    assert job.run.min_eval_trials == 5 and job.run.best_model_metric == "progress"
    assert job.hyperparameters.num_episodes_between_training == 20 and job.hyperparameters.loss_type == "huber"
    assert job.metadata.camera == "FRONT_FACING_CAMERA"
    assert job.model_root() == tmp_path / "data" / "bucket" / "rl-deepracer-sagemaker"
    assert any("DR_DOCKER_STYLE" in w for w in job.warnings)  # ignored infrastructure, one warning
    with pytest.raises(DrlocalError, match="already has"):
        init_workdir(tmp_path)


def test_environment_overrides_files(tmp_path: Path) -> None:
    init_workdir(tmp_path)
    job = load_job(tmp_path, environ={"DR_WORLD_NAME": "reInvent2019_track", "DR_TRAIN_MIN_EVAL_TRIALS": "2"})
    assert job.run.world_name == "reInvent2019_track" and job.run.min_eval_trials == 2


def test_every_invalid_value_reported_at_once(tmp_path: Path) -> None:
    init_workdir(tmp_path)
    with (tmp_path / "run.env").open("a") as f:
        f.write("DR_TRAIN_START_POSITION_OFFSET=1.5\nDR_EVAL_IS_CONTINUOUS=maybe\nDR_TRAIN_BEST_MODEL_METRIC=speed\n")
    (tmp_path / "custom_files" / "hyperparameters.json").write_text(json.dumps({"lr": 0, "num_epochs": 0}))
    with pytest.raises(DrlocalError) as err:
        load_job(tmp_path, environ={})
    msg = str(err.value)
    assert "run.env:30: DR_TRAIN_START_POSITION_OFFSET='1.5': Input should be less than 1" in msg
    assert "DR_EVAL_IS_CONTINUOUS='maybe'" in msg and "DR_TRAIN_BEST_MODEL_METRIC='speed'" in msg
    assert "hyperparameters.json: 2 invalid value(s)" in msg and "lr = 0" in msg and "num_epochs = 0" in msg


def test_unknown_variable_gets_a_suggestion() -> None:
    _, warnings = build_run_config({}, environ={"DR_TRAIN_STRT_POSITION_OFFSET": "0.1", "DR_GUI_ENABLE": "True"})
    assert any("DR_TRAIN_STRT_POSITION_OFFSET" in w and "did you mean DR_TRAIN_START_POSITION_OFFSET" in w
               for w in warnings)
    assert any(w.startswith("ignored") and "DR_GUI_ENABLE" in w for w in warnings)


def test_not_a_workdir(tmp_path: Path) -> None:
    with pytest.raises(DrlocalError, match="not a drlocal/DRfC folder"):
        load_job(tmp_path, environ={})


def test_increment_bumps_prefix(tmp_path: Path) -> None:
    init_workdir(tmp_path)
    job = load_job(tmp_path, environ={})
    with pytest.raises(DrlocalError, match="no checkpoints"):
        increment_run_env(job)
    ckpt = job.model_root() / "model" / "3_Step-100.ckpt.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"x")
    old, new = increment_run_env(job)
    assert (old, new) == ("rl-deepracer-sagemaker", "rl-deepracer-sagemaker-1")
    job2 = load_job(tmp_path, environ={})
    assert job2.run.pretrained and job2.run.pretrained_prefix == old and job2.run.model_prefix == new
