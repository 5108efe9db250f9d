"""A DRfC folder laid out as DRfC makes it, used as a DRfC user would (DRfC semantics, not drlocal's own).

`bin/init.sh -c local` folder: system.env with DR_CLOUD=local and the `minio` profile, run.env,
worker-2.env, an experiment, `data/minio/bucket/custom_files/` (dr-upload-custom-files) and an
existing SageMaker-trained model `my-old-model` with TensorFlow checkpoints only. Docker (MinIO)
is stopped, so the bucket is `data/minio/bucket/` as plain files. Then: evaluate it in place,
refuse a fresh train over it, wipe, increment and train on top from its TF weights, experiments,
and MinIO's xl format. Then the same model inside a running MinIO (the S3 test server), through
the real `drlocal` command: summary, train --check, evaluate, upload, upload --car/--droa, download.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch

from drlocal.config.hyperparameters import DRFC_HYPERPARAMETERS
from drlocal.config.model_metadata import DRFC_DEFAULT
from drlocal.config.workdir import RUN_ENV, increment_run_env, load_job, set_env_values
from drlocal.errors import DrlocalError
from drlocal.learn.evaluate import evaluate
from drlocal.learn.networks import PPOActorCritic
from drlocal.learn.trainer import FORMAT, Trainer, TrainerState
from drlocal.sim.reward import DRFC_REWARD_SOURCE
from drlocal.store.local import CheckpointName

pytest.importorskip("tensorflow", reason="DRfC's TF checkpoints need the `car` extra")
SHALLOW = "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def system_env(minio_url: str, bucket: str = "bucket", upload: str = "upload-bucket") -> str:
    """DRfC's template-system.env as `bin/init.sh -c local -a cpu` fills it in."""
    return (f"DR_CLOUD=local\nDR_AWS_APP_REGION=us-east-1\nDR_UPLOAD_S3_PROFILE=upload\n"
            f"DR_UPLOAD_S3_BUCKET={upload}\nDR_LOCAL_S3_BUCKET={bucket}\nDR_LOCAL_S3_PROFILE=minio\n"
            "DR_GUI_ENABLE=False\nDR_KINESIS_STREAM_NAME=\nDR_CAMERA_MAIN_ENABLE=True\nDR_CAMERA_SUB_ENABLE=False\n"
            "DR_CAMERA_KVS_ENABLE=True\nDR_ENABLE_EXTRA_KVS_OVERLAY=False\n"
            "DR_SIMAPP_SOURCE=awsdeepracercommunity/deepracer-simapp\nDR_SIMAPP_VERSION=6.0.4-cpu\n"
            "DR_MINIO_IMAGE=latest\nDR_ANALYSIS_IMAGE=cpu\nDR_WORKERS=1\nDR_ROBOMAKER_MOUNT_LOGS=False\n"
            "DR_CLOUD_WATCH_ENABLE=False\nDR_DOCKER_STYLE=swarm\nDR_HOST_X=False\nDR_WEBVIEWER_PORT=8100\n"
            f"DR_QUIET_ACTIVATE=False\n# DR_REMOTE_MINIO_URL=http://mynas:9000\nDR_MINIO_URL={minio_url}\n")


def old_model(prefix: Path, seed: int = 7) -> PPOActorCritic:
    """A SageMaker-style model prefix: TF checkpoints 3 and 4 + model_<N>.pb, pointers, metadata, history."""
    from drlocal.export.drfc import write_drfc_checkpoint

    torch.manual_seed(seed)
    net = PPOActorCritic({"FRONT_FACING_CAMERA": 0}, SHALLOW, 5, False).eval()
    payload = {"format": FORMAT, "algorithm": "clipped_ppo", "model": net.state_dict(), "optimizer": None,
               "trainer": TrainerState().__dict__.copy(), "model_metadata": dict(DRFC_DEFAULT)}
    model = prefix / "model"
    write_drfc_checkpoint(model, CheckpointName(3, 1234), payload)
    torch.manual_seed(seed + 1)
    other = PPOActorCritic({"FRONT_FACING_CAMERA": 0}, SHALLOW, 5, False)
    write_drfc_checkpoint(model, CheckpointName(4, 1500), {**payload, "model": other.state_dict()})
    (model / "model_metadata.json").write_text(json.dumps(DRFC_DEFAULT, indent=4))
    (model / "deepracer_checkpoints.json").write_text(json.dumps({
        "best_checkpoint": {"name": "3_Step-1234.ckpt", "avg_eval_metric": 71.0, "time_stamp": 900.0},
        "last_checkpoint": {"name": "4_Step-1500.ckpt", "avg_eval_metric": 55.0, "time_stamp": 1000.0}}))
    (model / ".coach_checkpoint").write_text("4_Step-1500.ckpt")
    (prefix / "reward_function.py").write_text(DRFC_REWARD_SOURCE)
    (prefix / "ip").mkdir(exist_ok=True)
    (prefix / "ip" / "hyperparameters.json").write_text(json.dumps(DRFC_HYPERPARAMETERS))
    (prefix / "metrics").mkdir(exist_ok=True)
    (prefix / "metrics" / "TrainingMetrics.json").write_text(json.dumps({"metrics": [
        {"episode": 1, "trial": 1, "phase": "training", "completion_percentage": 20, "reward_score": 3,
         "metric_time": 2, "start_time": 1, "elapsed_time_in_milliseconds": 1, "episode_status": "Off track"}],
        "version": 2.0, "best_model_metric": "progress"}))
    return net


def drfc_checkout(root: Path, minio_url: str) -> Path:
    """The folder `bin/init.sh -c local` + `dr-upload-custom-files` leave, plus an old model and an experiment."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "system.env").write_text(system_env(minio_url))
    (root / "run.env").write_text(RUN_ENV)
    (root / "worker-2.env").write_text("DR_WORLD_NAME=reInvent2019_track\n")
    custom = {"reward_function.py": DRFC_REWARD_SOURCE,
              "model_metadata.json": json.dumps(DRFC_DEFAULT, indent=4),
              "hyperparameters.json": json.dumps({**DRFC_HYPERPARAMETERS, "num_episodes_between_training": 2,
                                                  "num_epochs": 1})}
    for folder in (root / "custom_files", root / "data" / "minio" / "bucket" / "custom_files"):
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in custom.items():
            (folder / name).write_text(text)
    exp = root / "experiments" / "sprint-v1"
    (exp / "custom_files").mkdir(parents=True)
    (exp / "run.env").write_text(RUN_ENV.replace("reinvent_base", "reInvent2019_track")
                                 .replace("DR_LOCAL_S3_MODEL_PREFIX=rl-deepracer-sagemaker",
                                          "DR_LOCAL_S3_MODEL_PREFIX=sprint-v1"))
    for name, text in custom.items():
        (exp / "custom_files" / name).write_text(text)
    set_env_values(root / "run.env", {"DR_LOCAL_S3_MODEL_PREFIX": "my-old-model", "DR_TRAIN_MIN_EVAL_TRIALS": "1"})
    return root


@pytest.fixture
def checkout(tmp_path: Path) -> tuple[Path, PPOActorCritic]:
    root = drfc_checkout(tmp_path / "deepracer-for-cloud", f"http://127.0.0.1:{free_port()}")  # MinIO stopped
    net = old_model(root / "data" / "minio" / "bucket" / "my-old-model")
    return root, net


def test_minio_stopped_uses_data_minio_as_plain_files_and_the_old_model_in_place(checkout, tmp_path: Path) -> None:
    root, net = checkout
    job = load_job(root, environ={})
    assert job.store.kind == "minio-files" and job.store.local_root == root / "data" / "minio" / "bucket"
    assert "not answering" in job.store.notes[0] and "RELEASE.2022-10-29" in job.store.notes[0]
    # custom files: the bucket copy, as DRfC's trainer reads it
    assert job.reward_path == root / "data" / "minio" / "bucket" / "custom_files" / "reward_function.py"
    assert job.worker_env_files == [root / "worker-2.env"]
    # evaluate the SageMaker model in place: best (3) from its TF checkpoint
    res = evaluate(job, checkpoint="best", trials=1, continuous=False)
    assert res.checkpoint == "3_Step-1234.ckpt"
    assert Path(res.drfc_metrics_path).parent == root / "data/minio/bucket/my-old-model/metrics/evaluation"
    yaml = (root / "data/minio/bucket/my-old-model/evaluation_params.yaml").read_text()  # DR_LOCAL_S3_EVAL_PARAMS_FILE
    assert "'JOB_TYPE': 'EVALUATION'" in yaml and f"- 'my-old-model/evaluation-{res.timestamp}'" in yaml
    # a fresh train into it is refused, as DRfC's dr-start-training does
    with pytest.raises(DrlocalError, match=r"exists(.|\n)*DRfC/SageMaker model(.|\n)*--wipe"):
        Trainer(load_job(root, environ={}), max_iterations=0)
    with pytest.raises(DrlocalError, match="no training state to resume"):
        Trainer(load_job(root, environ={}), resume=True)
    # increment: a new prefix pretrained from the TF weights, bit for bit
    assert increment_run_env(load_job(root, environ={}), "best") == ("my-old-model", "my-old-model-1")
    trainer = Trainer(load_job(root, environ={}), max_iterations=0)
    for k, v in net.state_dict().items():
        assert torch.equal(trainer.model.state_dict()[k].cpu(), v), k
    model_dir = root / "data/minio/bucket/my-old-model-1/model"
    assert {"0_Step-0.ckpt.pt", "0_Step-0.ckpt.index", "model_0.pb"} <= {p.name for p in model_dir.iterdir()}
    # wipe (DRfC's -w): the old model's files go, a new run starts
    set_env_values(root / "run.env", {"DR_LOCAL_S3_MODEL_PREFIX": "my-old-model", "DR_LOCAL_S3_PRETRAINED": "False"})
    Trainer(load_job(root, environ={}), max_iterations=0, wipe=True).train()
    left = sorted(p.name for p in (root / "data/minio/bucket/my-old-model/model").iterdir())
    assert "3_Step-1234.ckpt.index" not in left and "0_Step-0.ckpt.pt" in left


def test_experiment_reads_its_own_run_env_and_bucket_files(checkout) -> None:
    root, _ = checkout
    job = load_job(root, environ={"DR_EXPERIMENT_NAME": "sprint-v1"})
    assert job.run.world_name == "reInvent2019_track" and job.run.model_prefix == "sprint-v1"
    assert job.run_config_file == root / "experiments" / "sprint-v1" / "run.env"
    # the experiment's custom files differ from the bucket copy: DRfC trains the bucket copy, and says so
    (root / "experiments/sprint-v1/custom_files/reward_function.py").write_text(
        "def reward_function(params):\n    return 1.0\n")
    job = load_job(root, environ={}, experiment="sprint-v1")
    assert job.reward_path == root / "data/minio/bucket/custom_files/reward_function.py"
    assert any("differs from the bucket copy" in w for w in job.warnings)


def test_minio_xl_format_with_minio_stopped_is_explained(checkout) -> None:
    root, _ = checkout
    sysdir = root / "data" / "minio" / ".minio.sys"
    sysdir.mkdir()
    (sysdir / "format.json").write_text('{"version": "1", "format": "xl-single"}')
    with pytest.raises(DrlocalError, match=r"xl\.meta(.|\n)*start MinIO"):
        load_job(root, environ={})


def test_no_drfc_store_keeps_drlocal_disk(tmp_path: Path) -> None:
    from drlocal.config.workdir import init_workdir

    init_workdir(tmp_path)
    job = load_job(tmp_path, environ={})
    assert job.store.kind == "disk" and job.store.local_root == tmp_path / "data" / "bucket"
    assert job.store.notes == [] and job.reward_path == tmp_path / "custom_files" / "reward_function.py"


# ----- the real command against a running MinIO (the S3 test server) -----

def drlocal(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "drlocal.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def test_commands_against_a_running_minio(s3_server, tmp_path: Path) -> None:
    bucket = f"d-{uuid.uuid4().hex[:8]}"
    s3_server.make_bucket(bucket)
    up_bucket = f"u-{uuid.uuid4().hex[:8]}"
    s3_server.make_bucket(up_bucket)
    root = drfc_checkout(tmp_path / "drfc", s3_server.endpoint)
    (root / "system.env").write_text(system_env(s3_server.endpoint, bucket, up_bucket))
    net_prefix = tmp_path / "old" / "my-old-model"
    old_model(net_prefix)
    c = s3_server.client()
    for p in sorted(net_prefix.rglob("*")):  # the model inside MinIO, as SageMaker left it
        if p.is_file():
            c.upload_file(str(p), bucket, f"my-old-model/{p.relative_to(net_prefix).as_posix()}")
    env = {**s3_server.subprocess_env(), "PYTHONPATH": os.pathsep.join(sys.path)}
    env = {k: v for k, v in env.items() if not k.startswith("DR_")} | {"COLUMNS": "250"}
    # custom files are not in the bucket yet: train --check says so, custom-files upload puts them there
    r = drlocal(["train", "--check"], env, root)
    assert r.returncode == 1 and "custom-files upload" in r.stderr and "Traceback" not in r.stderr
    r = drlocal(["custom-files", "upload"], env, root)
    assert r.returncode == 0, r.stderr
    r = drlocal(["summary"], env, root)
    assert r.returncode == 0, r.stderr
    assert "reachable" in r.stdout and "3_Step-1234.ckpt (tensorflow, frozen-graph)" in r.stdout, r.stdout
    assert "run.env:" in r.stdout  # where values came from
    r = drlocal(["train", "--check"], env, root)
    assert r.returncode == 1 and "exists" in r.stderr and "--wipe" in r.stderr
    r = drlocal(["evaluate", "--checkpoint", "best", "--trials", "1", "--no-continuous"], env, root)
    assert r.returncode == 0, r.stderr
    assert "checkpoint 3_Step-1234.ckpt" in r.stdout
    keys = [o["Key"] for o in c.list_objects_v2(Bucket=bucket, Prefix="my-old-model/metrics/evaluation/")["Contents"]]
    assert len(keys) == 1 and keys[0].endswith(".json")
    r = drlocal(["upload", "--best"], env, root)
    assert r.returncode == 0, r.stderr
    up = {o["Key"] for o in c.list_objects_v2(Bucket=up_bucket, Prefix="my-old-model-1/")["Contents"]}
    assert {"my-old-model-1/model/3_Step-1234.ckpt.index", "my-old-model-1/model/model_3.pb",
            "my-old-model-1/model/deepracer_checkpoints.json", "my-old-model-1/training_params.yaml"} <= up
    r = drlocal(["upload", "--car"], env, root)
    assert r.returncode == 0, r.stderr
    car = c.get_object(Bucket=up_bucket, Key="my-old-model-1/carfile.tar.gz")["Body"].read()
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(car)) as tar:
        assert sorted(tar.getnames()) == ["model.pb", "model_metadata.json"]
    r = drlocal(["upload", "--droa", "--prefix", "for-droa"], env, root)
    assert r.returncode == 0, r.stderr
    assert "droa-import-model --model-prefix for-droa" in r.stdout
    tp = c.get_object(Bucket=bucket, Key="for-droa/training_params.yaml")["Body"].read().decode()
    assert "'BODY_SHELL_TYPE': 'deepracer'" in tp and "'CAR_COLOR': 'Red'" in tp
    r = drlocal(["download", "-s", f"s3://{up_bucket}/my-old-model-1", "-t", "back-again"], env, root)
    assert r.returncode == 0, r.stderr
    got = {o["Key"] for o in c.list_objects_v2(Bucket=bucket, Prefix="back-again/")["Contents"]}
    assert "back-again/model/3_Step-1234.ckpt.index" in got


def test_relative_folder_refuses_an_existing_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`drlocal train --dir run` (a relative folder) twice: the second is DRfC's refusal, not a crash."""
    from drlocal.config.workdir import init_workdir

    init_workdir(tmp_path / "run")
    monkeypatch.chdir(tmp_path)
    Trainer(load_job(Path("run"), environ={}), max_iterations=0).train()
    job = load_job(Path("run"), environ={})
    assert "rl-deepracer-sagemaker/model/0_Step-0.ckpt.pt" in job.store.prefix_objects("rl-deepracer-sagemaker")
    with pytest.raises(DrlocalError, match="exists"):
        Trainer(job, max_iterations=0)
    Trainer(load_job(Path("run"), environ={}), max_iterations=0, wipe=True).train()
