"""Working folders: DRfC env files, DR_* variables, validation that reports everything at once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from drlocal.config.envfile import parse_env_file, read_env_files
from drlocal.config.run import SHELL_EXPORTS, build_run_config
from drlocal.config.workdir import increment_run_env, init_workdir, load_job
from drlocal.errors import DrlocalError
from drlocal.sim.reward import DEFAULT_REWARD_SOURCE, DRFC_REWARD_SOURCE, load_reward_function


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
    assert job.warnings == []  # every DRfC default is either honoured or harmless: nothing to say
    assert job.config_files == [tmp_path / "system.env", tmp_path / "run.env"]
    assert job.custom_files_dir == tmp_path / "custom_files" and job.worker_env_files == []
    with pytest.raises(DrlocalError, match="already has"):
        init_workdir(tmp_path)


def _line(path: Path, start: str) -> int:
    """Line number of the last line starting with `start` (a key, or key=value)."""
    hits = [n for n, ln in enumerate(path.read_text().splitlines(), 1) if ln.startswith(start)]
    return hits[-1]


def test_file_values_win_over_the_environment(tmp_path: Path) -> None:
    """DRfC re-exports its files before every command: a stale shell export loses, with a warning."""
    init_workdir(tmp_path)
    env = {"DR_WORLD_NAME": "reInvent2019_track", "DR_LOCAL_S3_MODEL_PREFIX": "old-model",
           "DR_TRAIN_MAX_STEPS_PER_ITERATION": "500", "DR_TRAIN_MIN_EVAL_TRIALS": "5"}
    job = load_job(tmp_path, environ=env)
    assert job.run.world_name == "reinvent_base" and job.run.model_prefix == "rl-deepracer-sagemaker"
    assert job.run.max_steps_per_iteration == 500  # set in no file: the environment's value
    n = _line(tmp_path / "run.env", "DR_WORLD_NAME=")
    assert (f"DR_WORLD_NAME=reInvent2019_track in the environment is overridden by run.env:{n} (reinvent_base), "
            "as DRfC does") in job.warnings
    assert any(w.startswith("DR_LOCAL_S3_MODEL_PREFIX=old-model in the environment") for w in job.warnings)
    assert not any("DR_TRAIN_MIN_EVAL_TRIALS" in w for w in job.warnings)  # same value: nothing to say
    assert job.origins["DR_WORLD_NAME"] == f"run.env:{n}"
    assert job.origins["DR_LOCAL_S3_BUCKET"] == f"system.env:{_line(tmp_path / 'system.env', 'DR_LOCAL_S3_BUCKET=')}"
    assert job.origins["DR_TRAIN_MAX_STEPS_PER_ITERATION"] == "environment"
    assert job.origins["DR_CLOUD"] == "default"
    # callers (tests, benchmarks) force values with overrides, which win over files and environment
    job = load_job(tmp_path, environ=env, overrides={"DR_WORLD_NAME": "Vegas_track"})
    assert job.run.world_name == "Vegas_track" and job.origins["DR_WORLD_NAME"] == "override"
    assert not any(w.startswith("DR_WORLD_NAME=") for w in job.warnings)


def test_activate_exports_are_quiet_and_secrets_never_printed(tmp_path: Path) -> None:
    init_workdir(tmp_path)
    with (tmp_path / "system.env").open("a") as f:
        f.write("DR_LOCAL_SECRET_ACCESS_KEY=file-secret-123\n")
    shell = {name: "x" for name in SHELL_EXPORTS} | {
        "DR_DIR": str(tmp_path), "DR_CONFIG": str(tmp_path / "run.env"), "DR_LOCAL_SECRET_ACCESS_KEY": "env-secret-456",
        "DR_LOCAL_ACCESS_KEY_ID": "AKIAENVKEY", "DR_LOCAL_S3_ENDPOINT_URL": "http://localhost:9000",
        "DR_MINIO_URL": "http://minio:9000",
    }
    job = load_job(tmp_path, environ=shell)
    text = "\n".join(job.warnings)
    assert "unknown variable" not in text
    assert "file-secret-123" not in text and "env-secret-456" not in text and "AKIAENVKEY" not in text
    assert "DR_LOCAL_SECRET_ACCESS_KEY=<hidden> in the environment is overridden" in text
    assert job.run.local_s3_endpoint_url == "http://localhost:9000" and job.run.minio_url == "http://minio:9000"
    assert job.origins["DR_MINIO_URL"] == "environment"


def test_store_variables(tmp_path: Path) -> None:
    init_workdir(tmp_path)
    run = load_job(tmp_path, environ={}).run
    assert run.cloud is None and run.local_s3_endpoint_url is None  # drlocal's own folder data/<bucket>/
    assert (run.local_s3_profile, run.upload_s3_profile, run.upload_bucket) == ("minio", "default", "not-defined")
    assert run.aws_region == "us-east-1" and run.workers == 1 and run.experiment_name is None
    assert run.metrics_prefix == "rl-deepracer-sagemaker/metrics"
    assert (run.training_params_file, run.eval_params_file) == ("training_params.yaml", "evaluation_params.yaml")
    assert (run.body_shell_type, run.car_color, run.display_name, run.racer_name) == (
        "deepracer", "Red", "FastCar", "FastCar")
    assert run.eval_save_mp4 is False
    system = {"DR_CLOUD": "Remote", "DR_REMOTE_MINIO_URL": "http://nas:9000", "DR_LOCAL_S3_PROFILE": "nas",
              "DR_UPLOAD_S3_BUCKET": "aws-deepracer-x", "DR_AWS_APP_REGION": "eu-west-1", "DR_WORKERS": "1"}
    (tmp_path / "system.env").write_text("".join(f"{k}={v}\n" for k, v in system.items()))
    with (tmp_path / "run.env").open("a") as f:
        f.write("DR_LOCAL_S3_MODEL_PREFIX=mine\nDR_LOCAL_S3_METRICS_PREFIX=\nDR_CAR_COLOR=Blue\n")
    # parsed only: load_job would open the (unreachable) remote MinIO, see test_store_s3.py for that
    run, _ = build_run_config(read_env_files(tmp_path / "system.env", tmp_path / "run.env", environ={}), environ={})
    assert run.cloud == "remote" and run.remote_minio_url == "http://nas:9000"
    assert run.local_s3_endpoint_url == "http://nas:9000"  # as activate.sh derives it for DR_CLOUD=remote
    assert (run.local_s3_profile, run.upload_bucket, run.aws_region) == ("nas", "aws-deepracer-x", "eu-west-1")
    assert run.metrics_prefix == "mine/metrics" and run.car_color == "Blue"
    run, _ = build_run_config({}, environ={"DR_CLOUD": "local"})
    assert run.cloud == "local" and run.local_s3_endpoint_url == "http://localhost:9000"
    with pytest.raises(DrlocalError, match="DR_CLOUD='gcp'"):
        build_run_config({}, environ={"DR_CLOUD": "gcp"})


def _experiment(root: Path, name: str, world: str) -> Path:
    folder = root / "experiments" / name
    folder.mkdir(parents=True)
    shutil.copytree(root / "custom_files", folder / "custom_files")  # an experiment has its own custom files
    (folder / "run.env").write_text((root / "run.env").read_text().replace("reinvent_base", world))
    return folder


def test_experiments_choose_the_run_config(tmp_path: Path) -> None:
    init_workdir(tmp_path)
    with pytest.raises(DrlocalError, match=r"experiments does not exist(.|\n)*fix: create"):
        load_job(tmp_path, environ={}, experiment="sprint-v1")
    folder = _experiment(tmp_path, "sprint-v1", "reInvent2019_track")
    _experiment(tmp_path, "other", "Vegas_track")
    for n in (10, 2, 3):
        (folder / f"worker-{n}.env").write_text("DR_WORLD_NAME=Vegas_track\n")
    (tmp_path / "worker-2.env").write_text("DR_WORLD_NAME=Vegas_track\n")
    job = load_job(tmp_path, environ={}, experiment="sprint-v1")
    assert job.run.world_name == "reInvent2019_track" and job.experiment == "sprint-v1"
    assert job.config_files == [tmp_path / "system.env", folder / "run.env"]
    assert job.run_config_file == folder / "run.env"
    assert job.custom_files_dir == folder / "custom_files"
    assert job.worker_env_files == [folder / f"worker-{n}.env" for n in (2, 3, 10)]
    assert job.origins["DR_WORLD_NAME"].startswith("experiments/sprint-v1/run.env:")
    assert job.origins["DR_EXPERIMENT_NAME"] == "--experiment"
    # DR_EXPERIMENT_NAME: the environment wins over system.env (activate.sh keeps a -e choice)
    with (tmp_path / "system.env").open("a") as f:
        f.write("DR_EXPERIMENT_NAME=other\n")
    assert load_job(tmp_path, environ={}).run.world_name == "Vegas_track"
    job = load_job(tmp_path, environ={"DR_EXPERIMENT_NAME": "sprint-v1"})
    assert job.run.world_name == "reInvent2019_track" and not any("DR_EXPERIMENT_NAME" in w for w in job.warnings)
    with pytest.raises(DrlocalError, match=r"experiments/nope does not exist \(experiments: other, sprint-v1\)"):
        load_job(tmp_path, environ={}, experiment="nope")
    # a config file given explicitly beats the experiment of system.env, with a warning
    (tmp_path / "other.env").write_text("DR_WORLD_NAME=Austin\n")
    job = load_job(tmp_path, environ={}, config=tmp_path / "other.env")
    assert job.run.world_name == "Austin" and job.experiment is None
    assert job.custom_files_dir == tmp_path / "custom_files" and job.worker_env_files == [tmp_path / "worker-2.env"]
    assert any("DR_EXPERIMENT_NAME=other" in w and "is not used" in w for w in job.warnings)
    with pytest.raises(DrlocalError, match="give one of them"):
        load_job(tmp_path, environ={}, experiment="other", config=Path("other.env"))
    with pytest.raises(DrlocalError, match=r"missing\.env: config file not found"):
        load_job(tmp_path, environ={}, config=Path("missing.env"))


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


def test_results_changing_settings_warn_loudly_infrastructure_in_one_line(tmp_path: Path) -> None:
    init_workdir(tmp_path)
    env = {"DR_GUI_ENABLE": "True", "DR_DOCKER_STYLE": "swarm", "DR_SIMAPP_SOURCE": "awsdeepracercommunity/"
           "deepracer-simapp", "DR_KINESIS_STREAM_NAME": "", "DR_SAGEMAKER_CUDA_DEVICES": "1"}
    with (tmp_path / "run.env").open("a") as f:
        f.write("DR_ENABLE_DOMAIN_RANDOMIZATION=True\nDR_TRAIN_MULTI_CONFIG=True\nDR_EVAL_SAVE_MP4=True\n"
                "DR_WORKERS=3\nDR_EVAL_RESET_BEHIND_DIST=2.0\nDR_OA_NUMBER_OF_OBSTACLES=3\n")
    job = load_job(tmp_path, environ=env)
    ignored = [w for w in job.warnings if w.startswith("ignored (infrastructure")]
    assert ignored == ["ignored (infrastructure that drlocal does not need): DR_DOCKER_STYLE, DR_GUI_ENABLE"]
    other_race = [w for w in job.warnings if " only appl" in w]
    assert other_race == ["DR_OA_NUMBER_OF_OBSTACLES (run.env:69) only applies to OBJECT_AVOIDANCE races; ignored "
                          "with DR_RACE_TYPE=TIME_TRIAL"]
    loud = {w.split("=")[0]: w for w in job.warnings if not w.startswith("ignored") and w not in other_race}
    # DR_EVAL_RESET_BEHIND_DIST, DR_EVAL_SAVE_MP4, DR_WORKERS and DR_TRAIN_MULTI_CONFIG are honoured
    assert set(loud) == {"DR_ENABLE_DOMAIN_RANDOMIZATION", "DR_SAGEMAKER_CUDA_DEVICES"}
    assert job.run.eval_reset_behind_dist == 2.0 and job.run.origins["DR_EVAL_RESET_BEHIND_DIST"] == "run.env:68"
    assert job.run.oa_number_of_obstacles == 6  # a setting of another race type keeps its default
    assert job.run.origins["DR_OA_NUMBER_OF_OBSTACLES"] == "run.env:69 (ignored: DR_RACE_TYPE=TIME_TRIAL)"
    assert "CUDA_VISIBLE_DEVICES" in loud["DR_SAGEMAKER_CUDA_DEVICES"]
    assert job.run.workers == 3 and job.run.train_multi_config is True and job.run.eval_save_mp4 is True


def test_other_race_types_are_accepted_and_an_invalid_one_names_the_ignored_settings(tmp_path: Path) -> None:
    init_workdir(tmp_path)
    with (tmp_path / "run.env").open("a") as f:
        f.write("DR_RACE_TYPE=object_avoidance\n")
    job = load_job(tmp_path, environ={})
    assert job.run.race_type == "OBJECT_AVOIDANCE" and job.run.race_options(training=True).n_obstacles == 6
    assert not [w for w in job.warnings if "only appl" in w]  # DRfC's template values: nothing to say
    with (tmp_path / "run.env").open("a") as f:
        f.write("DR_RACE_TYPE=F1\nDR_H2B_BOT_CAR_SPEED=0.5\n")
    with pytest.raises(DrlocalError) as err:
        load_job(tmp_path, environ={})
    msg = str(err.value)
    assert "run.env:65: DR_RACE_TYPE='F1': Input should be 'TIME_TRIAL', 'OBJECT_AVOIDANCE', 'HEAD_TO_BOT' or " \
           "'HEAD_TO_MODEL'" in msg
    assert "DR_H2B_BOT_CAR_SPEED (run.env:66) only applies to HEAD_TO_BOT races" in msg
    assert "DR_OA_NUMBER_OF_OBSTACLES" not in msg  # left at the template value


def test_legacy_names_and_penalties(tmp_path: Path) -> None:
    run, warnings = build_run_config({}, environ={"DR_CHANGE_START_POSITION": "False",
                                                  "DR_ALTERNATE_DRIVING_DIRECTION": "True",
                                                  "DR_COLLISION_PENALTY": "7", "DR_EVAL_OFF_TRACK_PENALTY": "120"})
    assert run.change_start_position is False and run.alternate_driving_direction is True
    assert run.eval_collision_penalty == 7.0 and run.eval_off_track_penalty == 120.0  # DRfC accepts any value >= 0
    assert warnings == []
    assert run.origins["DR_TRAIN_CHANGE_START_POSITION"] == "environment (as DR_CHANGE_START_POSITION)"
    both = {"DR_CHANGE_START_POSITION": "False", "DR_TRAIN_CHANGE_START_POSITION": "True"}
    run, _ = build_run_config({}, environ=both)
    assert run.change_start_position is True  # the current name wins, as in DRfC's prepare-config.py
    with pytest.raises(DrlocalError, match="greater than or equal to 0"):
        build_run_config({}, environ={"DR_EVAL_OFF_TRACK_PENALTY": "-1"})


def test_unsupported_model_metadata_values_are_named(tmp_path: Path) -> None:
    init_workdir(tmp_path)
    md_path = tmp_path / "custom_files" / "model_metadata.json"
    md = json.loads(md_path.read_text())
    md_path.write_text(json.dumps(md | {"sensor": ["FRONT_FACING_CAMERA", "IMU"], "training_algorithm": "llm"}))
    with pytest.raises(DrlocalError) as err:
        load_job(tmp_path, environ={})
    msg = str(err.value)
    assert "sensor IMU" in msg and "is not supported by drlocal; supported sensors: FRONT_FACING_CAMERA" in msg
    assert "'llm'" in msg and "is not supported by drlocal; use clipped_ppo or sac" in msg


def test_hyperparameter_typo_is_a_warning_with_a_suggestion(tmp_path: Path) -> None:
    init_workdir(tmp_path)
    hp_path = tmp_path / "custom_files" / "hyperparameters.json"
    hp_path.write_text(json.dumps(json.loads(hp_path.read_text()) | {"num_episode_between_training": 5}))
    job = load_job(tmp_path, environ={})
    assert job.hyperparameters.num_episodes_between_training == 20
    assert any("unknown hyperparameter 'num_episode_between_training'" in w
               and "did you mean num_episodes_between_training?" in w for w in job.warnings)


DRFC_GIT = Path(os.environ.get("DRFC_MIRROR", "/work/.mirror/aws-deepracer-community+deepracer-for-cloud/repo"))


def _drfc_file(path: str) -> str:
    """A file of DeepRacer-for-Cloud's source (a local git mirror), or skip the test."""
    if not DRFC_GIT.is_dir() or shutil.which("git") is None:
        pytest.skip("no DeepRacer-for-Cloud mirror (set DRFC_MIRROR to a clone)")
    r = subprocess.run(["git", "-C", str(DRFC_GIT), "show", f"HEAD:{path}"], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"mirror lacks {path}")
    return r.stdout


def _env_lines(text: str) -> dict[str, str]:
    return dict(ln.split("=", 1) for ln in text.splitlines() if "=" in ln and not ln.lstrip().startswith("#"))


def test_init_reward_function_pays_what_drfc_default_pays(tmp_path: Path) -> None:
    (tmp_path / "drfc_reward.py").write_text(_drfc_file("defaults/reward_function.py"))
    init_workdir(tmp_path / "job")
    ours = load_reward_function(tmp_path / "job" / "custom_files" / "reward_function.py")
    theirs = load_reward_function(tmp_path / "drfc_reward.py")
    width = 0.76
    for frac in (0.0, 0.05, 0.1, 0.1001, 0.2, 0.25, 0.3, 0.5, 0.5001, 0.8):
        for steering in (-30.0, -15.0001, -15.0, 0.0, 14.9, 15.0, 15.0001, 30.0):
            params = {"track_width": width, "distance_from_center": frac * width, "steering_angle": steering}
            assert ours(params) == theirs(params), params
    assert DEFAULT_REWARD_SOURCE != DRFC_REWARD_SOURCE  # the env's default reward stays the plain centre line


def test_init_env_files_look_like_drfc_templates(tmp_path: Path) -> None:
    init_workdir(tmp_path)
    template_run = _env_lines(_drfc_file("defaults/template-run.env"))
    assert _env_lines((tmp_path / "run.env").read_text()) == template_run
    template_system = _env_lines(_drfc_file("defaults/template-system.env"))
    system = _env_lines((tmp_path / "system.env").read_text())
    assert "DR_CLOUD" not in system and "#DR_CLOUD=local" in (tmp_path / "system.env").read_text()
    assert set(system) <= set(template_system)
    assert system["DR_LOCAL_S3_BUCKET"] == template_system["DR_LOCAL_S3_BUCKET"]
