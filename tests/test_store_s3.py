"""drlocal against a real S3 server (SeaweedFS on loopback) configured as a DRfC user's MinIO.

A DRfC folder with `DR_CLOUD=local`, `DR_MINIO_URL` pointing at the server and the `minio` profile:
train -> evaluate -> increment -> train on top -> upload -> download -> import, all through S3;
deepracer-utils reads the prefix with its own S3FileHandler; the server stopped for 20 s
mid-run and the server gone for good.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import pytest
import torch

from drlocal.config.workdir import init_workdir, load_job
from drlocal.errors import DrlocalError
from drlocal.learn.evaluate import evaluate
from drlocal.learn.trainer import Trainer
from drlocal.store import transfer
from drlocal.store.local import ModelStore

EPISODES = 3


def drfc_folder(root: Path, server, bucket: str, upload_bucket: str = "upload-bucket") -> Path:
    """A DRfC-style folder whose bucket is the test server (as `bin/init.sh -c local` + MinIO running)."""
    init_workdir(root)
    hp_path = root / "custom_files" / "hyperparameters.json"
    h = json.loads(hp_path.read_text())
    h.update({"num_episodes_between_training": EPISODES, "num_epochs": 1, "term_cond_max_episodes": 30})
    hp_path.write_text(json.dumps(h))
    with (root / "system.env").open("a") as f:
        f.write(f"DR_CLOUD=local\nDR_MINIO_URL={server.endpoint}\nDR_LOCAL_S3_PROFILE=minio\n"
                f"DR_UPLOAD_S3_PROFILE=upload\nDR_UPLOAD_S3_BUCKET={upload_bucket}\nDR_AWS_APP_REGION=us-east-1\n")
    text = (root / "system.env").read_text().replace("DR_LOCAL_S3_BUCKET=bucket", f"DR_LOCAL_S3_BUCKET={bucket}")
    (root / "system.env").write_text(text)
    with (root / "run.env").open("a") as f:
        f.write("DR_TRAIN_MIN_EVAL_TRIALS=1\n")
    return root


@pytest.fixture
def s3env(s3_server, monkeypatch: pytest.MonkeyPatch):
    for k in list(__import__("os").environ):
        if k.startswith("AWS_") or k.startswith("DR_"):
            monkeypatch.delenv(k, raising=False)
    for k, v in s3_server.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("DRLOCAL_S3_GIVE_UP_S", "120")
    return s3_server


def keys(server, bucket: str, prefix: str) -> list[str]:
    c = server.client()
    out = []
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents", [])]
    return sorted(out)


def get_json(server, bucket: str, key: str) -> dict:
    return json.loads(server.client().get_object(Bucket=bucket, Key=key)["Body"].read())


def test_train_evaluate_increment_upload_download_import_through_s3(s3env, tmp_path: Path) -> None:
    server = s3env
    bucket = f"b-{uuid.uuid4().hex[:8]}"
    server.make_bucket(bucket)
    up_bucket = f"u-{uuid.uuid4().hex[:8]}"
    server.make_bucket(up_bucket)
    root = drfc_folder(tmp_path / "drfc", server, bucket, up_bucket)
    # DRfC trains from the bucket's custom files: without them, one clear error (as dr-start-training)
    with pytest.raises(DrlocalError, match=r"custom files not found(.|\n)*custom-files upload"):
        load_job(root, environ={})
    job = load_job(root, environ={}, strict_custom_files=False)
    assert job.store.kind == "minio"
    keys_up = transfer.upload_custom_files(job)
    assert sorted(keys_up) == ["custom_files/hyperparameters.json", "custom_files/model_metadata.json",
                               "custom_files/reward_function.py"]
    job = load_job(root, environ={})
    Trainer(job, max_iterations=2, seed=1).train()

    prefix = "rl-deepracer-sagemaker"
    got = keys(server, bucket, prefix + "/")
    assert f"{prefix}/model/2_Step-" in " ".join(got)
    pointer = server.client().get_object(Bucket=bucket, Key=f"{prefix}/model/.coach_checkpoint")["Body"].read()
    last = pointer.decode().strip()
    assert f"{prefix}/model/{last}.pt" in got  # the pointer names a checkpoint whose file is there
    info = get_json(server, bucket, f"{prefix}/model/deepracer_checkpoints.json")
    assert info["last_checkpoint"]["name"] == last
    metrics = get_json(server, bucket, f"{prefix}/metrics/TrainingMetrics.json")
    assert [m["episode"] for m in metrics["metrics"] if m["phase"] == "training"] == list(range(1, 2 * EPISODES + 1))
    assert {f"{prefix}/training-simtrace/0-iteration.csv", f"{prefix}/training-simtrace/1-iteration.csv",
            f"{prefix}/reward_function.py", f"{prefix}/ip/hyperparameters.json",
            f"{prefix}/training_params.yaml"} <= set(got)
    if any(k.endswith(".ckpt.index") for k in got):  # DRfC's TF files next to drlocal's (car extra installed)
        n = last.split("_")[0]
        assert f"{prefix}/model/model_{n}.pb" in got and f"{prefix}/model/{last}.index" in got

    # a fresh train refuses the existing prefix, as DRfC does
    with pytest.raises(DrlocalError, match="exists"):
        Trainer(load_job(root, environ={}), max_iterations=1)

    # evaluate: metrics at DRfC's path in the bucket
    res = evaluate(load_job(root, environ={}), trials=1, continuous=False)
    got = keys(server, bucket, prefix + "/")
    assert f"{prefix}/metrics/evaluation/evaluation-{res.timestamp}.json" in got
    assert f"{prefix}/evaluation-{res.timestamp}/evaluation-simtrace/0-iteration.csv" in got

    # deepracer-utils reads the prefix straight from S3 with its own handler
    from deepracer.logs import DeepRacerLog, S3FileHandler

    fh = S3FileHandler(bucket=bucket, prefix=prefix, s3_endpoint_url=server.endpoint, profile="minio",
                       region="us-east-1")
    log = DeepRacerLog(filehandler=fh)
    log.load_training_trace()
    df = log.dataframe()
    assert sorted(df["iteration"].unique()) == [0, 1] and df["episode"].nunique() == 2 * EPISODES

    # increment: the bucket's model becomes the pretrained one, a new prefix trains on top
    from drlocal.config.workdir import increment_run_env

    old, new = increment_run_env(load_job(root, environ={}), "last")
    assert (old, new) == (prefix, f"{prefix}-1")
    job2 = load_job(root, environ={})
    t2 = Trainer(job2, max_iterations=1, seed=2)
    ref = ModelStore(job2.store.local_root / prefix).load_checkpoint(last)
    first = ModelStore(job2.store.local_root / new).load_checkpoint(0)
    for k, v in ref["model"].items():
        assert torch.equal(v.cpu(), first["model"][k].cpu()), k
    t2.train()
    assert f"{new}/model/1_Step-" in " ".join(keys(server, bucket, new + "/"))

    # upload (dr-upload-model) to the upload bucket, best checkpoint
    rep = transfer.upload_model(load_job(root, environ={}), checkpoint="best", prefix=prefix)
    up = keys(server, up_bucket, prefix + "/")
    best = get_json(server, bucket, f"{prefix}/model/deepracer_checkpoints.json")["best_checkpoint"]["name"]
    assert rep.checkpoint == best
    target_info = get_json(server, up_bucket, f"{prefix}/model/deepracer_checkpoints.json")
    assert target_info["best_checkpoint"]["name"] == target_info["last_checkpoint"]["name"] == best
    assert {f"{prefix}/model/model_metadata.json", f"{prefix}/reward_function.py", f"{prefix}/training_params.yaml",
            f"{prefix}/ip/hyperparameters.json", f"{prefix}/model_metadata.json",
            f"{prefix}/metrics/TrainingMetrics.json", f"{prefix}/model/.coach_checkpoint"} <= set(up)

    # download (dr-download-model) it back into the local bucket under another name, then evaluate it
    rep = transfer.download_model(load_job(root, environ={}), f"s3://{up_bucket}/{prefix}", "downloaded")
    assert f"{bucket}" in rep.target or "downloaded" in rep.target
    assert f"downloaded/model/{best}.pt" in keys(server, bucket, "downloaded/")
    res = evaluate(load_job(root, environ={}), trials=1, continuous=False, prefix="downloaded")
    assert res.checkpoint == best

    # import the downloaded prefix (a DRfC model folder) into a drlocal prefix, keeping its numbering
    from drlocal.export.importer import import_model

    job = load_job(root, environ={})
    src = job.store.pull("downloaded")
    imp = import_model(src, job.store.local_root / "imported", checkpoint="last")
    assert imp.checkpoint == best


def test_server_down_20s_mid_run_training_continues(s3env, tmp_path: Path) -> None:
    server = s3env
    bucket = f"b-{uuid.uuid4().hex[:8]}"
    server.make_bucket(bucket)
    root = drfc_folder(tmp_path / "drfc", server, bucket)
    transfer.upload_custom_files(load_job(root, environ={}, strict_custom_files=False))
    job = load_job(root, environ={})
    messages: list[str] = []
    trainer = Trainer(job, max_iterations=5, seed=3, on_message=messages.append)
    outage: dict[str, float] = {}
    result: dict[str, object] = {}

    def train() -> None:
        try:
            result["state"] = trainer.train()
        except BaseException as exc:  # reported below
            result["error"] = exc

    # training runs in a thread; the server is stopped and started from this (main) thread, because
    # the server process is tied to the thread that started it (PR_SET_PDEATHSIG)
    th = threading.Thread(target=train)
    th.start()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(trainer.store.model_dir.glob("1_Step-*.ckpt.pt")):
        time.sleep(0.2)
    server.stop()
    outage["stopped"] = time.monotonic()
    time.sleep(20)
    server.start()
    outage["started"] = time.monotonic()
    th.join()
    assert "error" not in result, str(result.get("error"))  # str: the whole message, with the server's answer
    state = result["state"]
    assert state.iteration == 5 and outage["started"] - outage["stopped"] >= 20
    assert any("not answering" in m for m in messages) and any("store back" in m for m in messages)
    prefix = "rl-deepracer-sagemaker"
    got = keys(server, bucket, prefix + "/")
    local = ModelStore(job.store.local_root / prefix)
    want = {f"{prefix}/model/{p.name}" for p in local.model_dir.iterdir() if p.is_file()}
    assert want <= set(got)  # every checkpoint file the run kept is in the bucket
    assert keys(server, bucket, prefix + "/model/") == sorted(k for k in got if "/model/" in k)
    info = get_json(server, bucket, f"{prefix}/model/deepracer_checkpoints.json")
    assert info["last_checkpoint"]["name"].startswith("5_Step-")
    metrics = get_json(server, bucket, f"{prefix}/metrics/TrainingMetrics.json")
    assert len([m for m in metrics["metrics"] if m["phase"] == "training"]) == 5 * EPISODES
    assert [f"{prefix}/training-simtrace/{k}-iteration.csv" for k in range(5)] == \
        [k for k in got if "training-simtrace" in k]
    assert not (job.store.local_root / ".drlocal-pending.json").exists()


def test_server_gone_for_good_clear_error_and_local_copy(s3env, tmp_path: Path, monkeypatch) -> None:
    server = s3env
    bucket = f"b-{uuid.uuid4().hex[:8]}"
    server.make_bucket(bucket)
    root = drfc_folder(tmp_path / "drfc", server, bucket)
    transfer.upload_custom_files(load_job(root, environ={}, strict_custom_files=False))
    monkeypatch.setenv("DRLOCAL_S3_GIVE_UP_S", "4")
    job = load_job(root, environ={})
    trainer = Trainer(job, max_iterations=30, seed=4)
    trainer.bucket.finish()  # checkpoint 0 is up
    trainer.bucket.mirror(trainer.say)
    server.stop()
    try:
        with pytest.raises(DrlocalError) as err:
            trainer.train()
        msg = str(err.value)
        assert "has not answered" in msg or "could not be uploaded" in msg
        assert str(trainer.store.root) in msg or str(job.store.local_root) in msg
        last = trainer.store.resolve_checkpoint("last")
        assert trainer.store.checkpoint_path(last).is_file() and last.number >= 1  # the local copy is kept
        assert (job.store.local_root / ".drlocal-pending.json").is_file()
    finally:
        server.start()
    # back: the next command on the folder uploads what was waiting, first
    monkeypatch.setenv("DRLOCAL_S3_GIVE_UP_S", "60")
    job = load_job(root, environ={})
    job.store.pull("rl-deepracer-sagemaker", ["model/*"])
    job.store.finish()
    got = keys(server, bucket, "rl-deepracer-sagemaker/model/")
    assert f"rl-deepracer-sagemaker/model/{last}.pt" in got
    assert not (job.store.local_root / ".drlocal-pending.json").exists()
