"""DRfC / SageMaker models in place (gaps 3 and 9 of the DRfC audit): TF checkpoints and `model_<N>.pb`
listed, resolved and loaded by ModelStore; DRfC's files written next to drlocal's; pruning of every form;
import keeping the checkpoint's name and the prefix's history; MinIO's xl layout; DeepRacer-on-AWS's
training_params.yaml.

The "DRfC prefix" is written by `write_drfc_checkpoint` (RL-Coach variable names, as SageMaker saves them)
from two DRfC-default networks (PPO, 5 discrete actions, front camera, SHALLOW), so that every loaded
weight can be compared bit for bit with the network it came from.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from drlocal import DrlocalError
from drlocal.config.model_metadata import DRFC_DEFAULT
from drlocal.export import importer
from drlocal.export.droa import (
    TRAINING_MANDATORY_YAML_KEYS,
    droa_training_params,
    parse_training_params,
    run_values_from_training_params,
    training_params_yaml,
)
from drlocal.export.importer import import_model
from drlocal.learn.evaluate import load_policy
from drlocal.learn.networks import PPOActorCritic
from drlocal.learn.trainer import FORMAT, TrainerState
from drlocal.store.local import CheckpointName, ModelStore, is_minio_xl_path

SHALLOW = "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"
CAM = "FRONT_FACING_CAMERA"
SAC_MD: dict[str, Any] = {
    "action_space": {"steering_angle": {"low": -30.0, "high": 30.0}, "speed": {"low": 0.5, "high": 2.0}},
    "action_space_type": "continuous", "sensor": [CAM], "neural_network": SHALLOW,
    "training_algorithm": "sac", "version": "5",
}


def ppo_net(seed: int) -> PPOActorCritic:
    torch.manual_seed(seed)
    return PPOActorCritic({CAM: 0}, SHALLOW, 5, False).eval()


def payload_of(model: torch.nn.Module, metadata: dict[str, Any] = DRFC_DEFAULT, algorithm: str = "clipped_ppo",
               state: Any = None) -> dict[str, Any]:
    return {"format": FORMAT, "algorithm": algorithm, "model": state if state is not None else model.state_dict(),
            "optimizer": None, "trainer": TrainerState().__dict__.copy(), "model_metadata": dict(metadata)}


def frames(n: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    return {CAM: torch.as_tensor(rng.integers(0, 256, (n, 120, 160, 1), dtype=np.uint8))}


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], keys: list[str] | None = None) -> bool:
    keys = list(a) if keys is None else keys
    return all(torch.equal(a[k].cpu(), b[k].cpu()) for k in keys)


HISTORY = {
    "metrics/TrainingMetrics.json": json.dumps({"metrics": [
        {"episode": e, "phase": "training", "completion_percentage": 10 * e} for e in range(1, 21)]}),
    "metrics/EvaluationMetrics-20240101000000.json": '{"metrics": []}',
    "metrics/evaluation/evaluation-20240101000000.json": '{"metrics": [1]}',
    "training-simtrace/0-iteration.csv": "episode,steps\n0,1\n",
    "training-simtrace/1-iteration.csv": "episode,steps\n1,1\n",
    "evaluation-20240101000000/evaluation-simtrace/0-iteration.csv": "episode,steps\n0,2\n",
    "ip/hyperparameters.json": '{"batch_size": 64}',
    "reward_function.py": "def reward_function(params):\n    return 2.0\n",
    "training_params.yaml": "---\n'WORLD_NAME': '2022_april_open_ccw'\n'REVERSE_DIR': 'False'\n",
}


@pytest.fixture(scope="module")
def drfc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A DRfC prefix: TF checkpoints 2 and 3 (+ model_2.pb, model_3.pb), model_5.pb alone (named by the
    json), model_7.pb alone (named by nobody), DeepRacer's pointers, and the prefix's history."""
    pytest.importorskip("tensorflow", reason="writing TF checkpoints needs the `car` extra")
    from drlocal.export.drfc import write_drfc_checkpoint

    root = tmp_path_factory.mktemp("drfc") / "my-old-model"
    store = ModelStore(root)
    a, b = ppo_net(11), ppo_net(12)
    write_drfc_checkpoint(store.model_dir, CheckpointName(2, 800), payload_of(a))
    written = write_drfc_checkpoint(store.model_dir, CheckpointName(3, 1234), payload_of(b))
    shutil.copy(store.model_dir / "model_3.pb", store.model_dir / "model_5.pb")
    shutil.copy(store.model_dir / "model_3.pb", store.model_dir / "model_7.pb")
    (store.model_dir / "model_metadata.json").write_text(json.dumps(DRFC_DEFAULT, indent=4))
    info = {"best_checkpoint": {"name": "2_Step-800.ckpt", "avg_eval_metric": 88.5, "time_stamp": 1700000000.5},
            "last_checkpoint": {"name": "5_Step-2000.ckpt", "avg_eval_metric": 61.0, "time_stamp": 1700000999.0}}
    (store.model_dir / "deepracer_checkpoints.json").write_text(json.dumps(info))
    (store.model_dir / ".coach_checkpoint").write_text("5_Step-2000.ckpt")
    for rel, text in HISTORY.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return {"root": root, "store": store, "a": a, "b": b, "written": written, "info": info}


def test_drfc_checkpoints_are_listed_and_resolved_in_place(drfc: dict[str, Any], tmp_path: Path) -> None:
    store = drfc["store"]
    assert store.checkpoints() == [CheckpointName(2, 800), CheckpointName(3, 1234), CheckpointName(5, 2000),
                                   CheckpointName(7, 0)]
    assert store.checkpoint_forms(2) == ["tensorflow", "frozen-graph"]
    assert store.checkpoint_forms("best") == ["tensorflow", "frozen-graph"]
    assert store.checkpoint_forms(CheckpointName(5, 2000)) == ["frozen-graph"]
    assert store.checkpoint_forms(7) == ["frozen-graph"]
    assert store.resolve_checkpoint("best") == CheckpointName(2, 800)  # deepracer_checkpoints.json
    assert store.resolve_checkpoint("last") == CheckpointName(5, 2000)
    assert store.resolve_checkpoint(3) == store.resolve_checkpoint("3") == CheckpointName(3, 1234)
    assert store.resolve_checkpoint("3_Step-1234.ckpt") == CheckpointName(3, 1234)
    with pytest.raises(DrlocalError, match=r"no checkpoint 4 \(have 2, 3, 5, 7\)"):
        store.resolve_checkpoint(4)
    # without deepracer_checkpoints.json: .coach_checkpoint, then the highest number
    copy = ModelStore(tmp_path / "copy")
    shutil.copytree(store.model_dir, copy.model_dir)
    (copy.model_dir / "deepracer_checkpoints.json").unlink()
    (copy.model_dir / ".coach_checkpoint").write_text("3_Step-1234.ckpt\n")
    assert copy.resolve_checkpoint("last") == copy.resolve_checkpoint("best") == CheckpointName(3, 1234)
    (copy.model_dir / ".coach_checkpoint").unlink()
    assert copy.checkpoints()[-2:] == [CheckpointName(5, 0), CheckpointName(7, 0)]  # nobody names model_5.pb now
    assert copy.resolve_checkpoint("last") == CheckpointName(7, 0)
    assert [p.name for p in copy.checkpoint_files(CheckpointName(2, 800))] == [
        "2_Step-800.ckpt.index", "2_Step-800.ckpt.meta", "2_Step-800.ckpt.data-00000-of-00001", "model_2.pb"]


def test_tf_checkpoint_loads_as_drlocal_payload_bit_identical(drfc: dict[str, Any]) -> None:
    store, a = drfc["store"], drfc["a"]
    best = store.load_checkpoint("best")
    assert (best["name"], best["source"], best["format"], best["algorithm"]) == (
        "2_Step-800.ckpt", "tensorflow", "tensorflow", "clipped_ppo")
    assert best["fresh"] == [] and best["trainer"] is None
    table = [(a["steering_angle"], a["speed"]) for a in DRFC_DEFAULT["action_space"]]
    assert [(a["steering_angle"], a["speed"]) for a in best["model_metadata"]["action_space"]] == table
    assert set(best["model"]) == set(a.state_dict())
    assert same_state(best["model"], a.state_dict())  # policy AND value network, every bit
    # what `drlocal evaluate` loads
    model, md, name = load_policy(store, "best", torch.device("cpu"))
    assert name == "2_Step-800.ckpt" and len(md.action_space) == 5  # type: ignore[arg-type]
    obs = frames()
    with torch.no_grad():
        assert torch.equal(model.policy_output(obs), a.policy_output(obs))
        assert torch.equal(model.value(obs), a.value(obs))


def test_frozen_graph_alone_loads_the_policy_with_a_fresh_value_tower(drfc: dict[str, Any]) -> None:
    store, b = drfc["store"], drfc["b"]
    last = store.load_checkpoint("last")
    assert (last["name"], last["source"]) == ("5_Step-2000.ckpt", "frozen-graph")
    assert last["fresh"] == ["value tower (network_0)"]
    policy_keys = [k for k in b.state_dict() if k.startswith(("policy_tower.", "policy_head."))]
    value_keys = [k for k in b.state_dict() if k.startswith(("value_tower.", "value_head."))]
    assert len(policy_keys) == len(value_keys) == 10  # 3 convs + 1 middleware dense + head
    assert same_state(last["model"], b.state_dict(), policy_keys)
    assert not same_state(last["model"], b.state_dict(), value_keys)
    model, _, _ = load_policy(store, "last", torch.device("cpu"))
    obs = frames(seed=1)
    with torch.no_grad():
        assert torch.equal(model.policy_output(obs), b.policy_output(obs))


def test_without_tensorflow_a_tf_only_checkpoint_names_the_car_extra(drfc: dict[str, Any], tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    copy = ModelStore(tmp_path / "tf-only")
    shutil.copytree(drfc["store"].model_dir, copy.model_dir)
    monkeypatch.setattr(importer, "_has_tensorflow", lambda: False)
    # TF files and model_2.pb: the frozen graph is read, and the payload says why
    state = copy.load_checkpoint(2)
    assert state["source"] == "frozen-graph" and "TensorFlow is not installed" in state["note"]
    assert state["fresh"] == ["value tower (network_0)"]
    (copy.model_dir / "model_2.pb").unlink()
    assert copy.checkpoint_forms(2) == ["tensorflow"]
    with pytest.raises(DrlocalError, match=r"pip install 'drlocal\[car\]'") as exc:
        copy.load_checkpoint(2)
    assert "2_Step-800.ckpt is a TensorFlow checkpoint" in str(exc.value)
    with pytest.raises(DrlocalError, match="TensorFlow is not installed"):
        load_policy(copy, 2, torch.device("cpu"))


def test_written_drfc_files_are_what_upload_model_sh_ships_and_read_back_identical(drfc: dict[str, Any],
                                                                                    tmp_path: Path) -> None:
    from drlocal.export.graphdef import parse_graphdef
    from drlocal.export.tfgraph import read_checkpoint

    store, b = drfc["store"], drfc["b"]
    assert [p.name for p in drfc["written"]] == [
        "3_Step-1234.ckpt.index", "3_Step-1234.ckpt.data-00000-of-00001", "3_Step-1234.ckpt.meta", "model_3.pb"]
    variables = read_checkpoint(store.model_dir / "3_Step-1234.ckpt")
    assert len(variables) == 4 * 10  # policy + value network, online + target copies (kernel + bias each)
    k = "main_level/agent/main/{}/network_0/v_values_head_0/output/kernel"
    np.testing.assert_array_equal(variables[k.format("online")], b.value_head.weight.detach().numpy().T)
    np.testing.assert_array_equal(variables[k.format("target")], variables[k.format("online")])
    conv = "main_level/agent/main/online/network_1/FRONT_FACING_CAMERA/Conv2d_0/kernel"
    nodes = {n.name: n for n in parse_graphdef((store.model_dir / "model_3.pb").read_bytes())}
    np.testing.assert_array_equal(nodes[conv].value, variables[conv])
    # DRfC's upload-model.sh -c 3: `model/3*` + model_3.pb + deepracer_checkpoints.json, its own .coach_checkpoint
    up = tmp_path / "upload"
    (up / "model").mkdir(parents=True)
    for f in store.model_dir.iterdir():
        if f.name.startswith("3") or f.name in ("model_3.pb", "model_metadata.json"):
            shutil.copy(f, up / "model" / f.name)
    entry = {"name": "3_Step-1234.ckpt", "time_stamp": 1, "avg_comp_pct": 50.0}
    (up / "model" / "deepracer_checkpoints.json").write_text(json.dumps({"last_checkpoint": entry,
                                                                         "best_checkpoint": entry}))
    (up / "model" / ".coach_checkpoint").write_text("3_Step-1234.ckpt\n")
    assert sorted(p.name for p in (up / "model").iterdir()) == [
        ".coach_checkpoint", "3_Step-1234.ckpt.data-00000-of-00001", "3_Step-1234.ckpt.index",
        "3_Step-1234.ckpt.meta", "deepracer_checkpoints.json", "model_3.pb", "model_metadata.json"]
    res = import_model(up, tmp_path / "imported")
    assert (res.checkpoint, res.source, res.fresh) == ("3_Step-1234.ckpt", "tensorflow", [])
    back = ModelStore(res.root).load_checkpoint("last")
    assert back["source"] == "drlocal" and same_state(back["model"], b.state_dict())


def test_sac_checkpoint_round_trip_keeps_the_policy(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow", reason="the `car` extra is missing")
    from drlocal.export.drfc import write_drfc_checkpoint
    from drlocal.learn.sac import SACPolicy

    torch.manual_seed(4)
    policy = SACPolicy({CAM: 0}, SHALLOW).eval()
    state = {"policy": policy.state_dict(), "q": {}, "v": {}, "v_target": {}}
    store = ModelStore(tmp_path / "sac")
    paths = write_drfc_checkpoint(store.model_dir, CheckpointName(1, 50), payload_of(policy, SAC_MD, "sac", state))
    assert [p.name for p in paths][-1] == "model_1.pb"
    (store.model_dir / "model_metadata.json").write_text(json.dumps(SAC_MD))
    back = store.load_checkpoint("last")
    assert (back["source"], back["algorithm"]) == ("tensorflow", "sac")
    assert back["fresh"] == ["Q networks", "V network"] and set(back["model"]) == {"policy", "q", "v", "v_target"}
    keys = [k for k in policy.state_dict() if not k.startswith("log_std.")]  # the car's graph has the mean only
    assert len(keys) == 12 and same_state(back["model"]["policy"], policy.state_dict(), keys)


def test_pruning_deletes_every_form_and_reports_it(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "p")
    store.model_dir.mkdir(parents=True)
    for n in range(6):
        for suffix in (".ckpt.pt", ".ckpt.index", ".ckpt.meta", ".ckpt.data-00000-of-00001"):
            (store.model_dir / f"{n}_Step-{10 * n}{suffix}").write_bytes(b"x")
        (store.model_dir / f"model_{n}.pb").write_bytes(b"x")
    (store.model_dir / "model_9.pb").write_bytes(b"x")  # a frozen graph alone is a checkpoint too
    written, deleted = store.save_checkpoint(CheckpointName(10, 100), {"format": FORMAT}, best=CheckpointName(1, 10))
    assert [p.name for p in written] == ["10_Step-100.ckpt.pt", ".coach_checkpoint"]
    # kept: the last 4 (5, 9, 10 and 4) and the best (1); deleted: every form of 0, 2, 3
    forms = (".ckpt.pt", ".ckpt.index", ".ckpt.meta", ".ckpt.data-00000-of-00001")
    assert sorted(p.name for p in deleted) == sorted(
        [*(f"{n}_Step-{10 * n}{s}" for n in (0, 2, 3) for s in forms), "model_0.pb", "model_2.pb", "model_3.pb"])
    assert len(deleted) == 15 and store.last_pruned == deleted
    assert not any(p.exists() for p in deleted)
    assert [c.number for c in store.checkpoints()] == [1, 4, 5, 9, 10]
    assert store.checkpoint_forms(4) == ["drlocal", "tensorflow", "frozen-graph"]
    assert store.prune_checkpoints(best=None, keep=2) == [
        store.model_dir / n for n in ("1_Step-10.ckpt.pt", "1_Step-10.ckpt.index", "1_Step-10.ckpt.meta",
                                      "1_Step-10.ckpt.data-00000-of-00001", "model_1.pb",
                                      "4_Step-40.ckpt.pt", "4_Step-40.ckpt.index", "4_Step-40.ckpt.meta",
                                      "4_Step-40.ckpt.data-00000-of-00001", "model_4.pb",
                                      "5_Step-50.ckpt.pt", "5_Step-50.ckpt.index", "5_Step-50.ckpt.meta",
                                      "5_Step-50.ckpt.data-00000-of-00001", "model_5.pb")]


def test_import_keeps_the_checkpoint_name_and_the_history(drfc: dict[str, Any], tmp_path: Path) -> None:
    res = import_model(drfc["root"], tmp_path / "best", checkpoint="best")
    assert (res.checkpoint, res.source, res.fresh) == ("2_Step-800.ckpt", "tensorflow", [])
    dest = ModelStore(res.root)
    assert dest.checkpoints() == [CheckpointName(2, 800)]
    assert dest.checkpoint_forms(2) == ["drlocal", "tensorflow", "frozen-graph"]  # DRfC's files kept beside
    info = json.loads((dest.model_dir / "deepracer_checkpoints.json").read_text())
    assert info["best_checkpoint"] == info["last_checkpoint"] == drfc["info"]["best_checkpoint"]
    assert (dest.model_dir / ".coach_checkpoint").read_text().strip() == "2_Step-800.ckpt"
    for rel, text in HISTORY.items():
        assert (res.root / rel).read_text() == text, rel
    assert (dest.model_dir / "model_metadata.json").read_bytes() == (drfc["store"].model_dir /
                                                                     "model_metadata.json").read_bytes()
    assert sorted(res.history) == sorted(["metrics/", "training-simtrace/", "evaluation-20240101000000/",
                                          "reward_function.py", "ip/hyperparameters.json", "training_params.yaml"])
    state = dest.load_checkpoint("best")
    assert (state["format"], state["source"], state["imported_form"]) == (FORMAT, "drlocal", "tensorflow")
    trainer = state["trainer"]  # numbering and history continue where the source stopped
    assert (trainer["checkpoint"], trainer["env_steps"], trainer["episodes"], trainer["iteration"]) == (2, 800, 20, 2)
    assert same_state(state["model"], drfc["a"].state_dict())
    # a number that deepracer_checkpoints.json does not name, and the frozen-graph-only last
    res3 = import_model(drfc["root"], tmp_path / "three", checkpoint=3)
    assert res3.checkpoint == "3_Step-1234.ckpt"
    assert json.loads((res3.root / "model/deepracer_checkpoints.json").read_text())["last_checkpoint"] == {
        "name": "3_Step-1234.ckpt", "avg_eval_metric": 0.0, "time_stamp": 0.0}
    last = import_model(drfc["root"], tmp_path / "last")
    assert (last.checkpoint, last.source, last.fresh) == ("5_Step-2000.ckpt", "frozen-graph",
                                                          ["value tower (network_0)"])
    assert sorted(p.name for p in (last.root / "model").glob("*5*")) == ["5_Step-2000.ckpt.pt", "model_5.pb"]
    with pytest.raises(DrlocalError, match="already holds a model"):
        import_model(drfc["root"], tmp_path / "last", checkpoint="best")
    again = import_model(drfc["root"], tmp_path / "last", checkpoint="best", force=True)
    assert [c.number for c in ModelStore(again.root).checkpoints()] == [2]


def test_an_offline_race_of_a_drfc_prefix_and_its_imported_copy(drfc: dict[str, Any], tmp_path: Path) -> None:
    """`drlocal race` reads DRfC's TensorFlow checkpoints in place and imported models alike: the same policy
    (checkpoint 2, best in deepracer_checkpoints.json) drives the same race to the millisecond."""
    from drlocal.config.workdir import init_workdir, load_job
    from drlocal.learn.leaderboard import race_models

    init_workdir(tmp_path)
    with (tmp_path / "run.env").open("a") as f:
        f.write("DR_EVAL_MAX_RESETS=2\n")  # an untrained policy's race ends soon
    bucket = tmp_path / "data" / "bucket"
    shutil.copytree(drfc["root"], bucket / "my-old-model")
    import_model(drfc["root"], bucket / "imported", checkpoint="best")
    board = race_models(load_job(tmp_path, environ={}), [("my-old-model", "best"), ("imported", "best")], laps=1)
    old, new = board.entries
    assert old.error == new.error == "" and old.checkpoint == new.checkpoint == "2_Step-800.ckpt"
    for field in ("laps", "total_s", "progress_pct", "resets", "off_track"):
        assert getattr(old, field) == getattr(new, field), field
    assert old.total_s > 0


def test_import_of_a_single_model_stays_checkpoint_0(drfc: dict[str, Any], tmp_path: Path) -> None:
    pb = tmp_path / "model.pb"
    shutil.copy(drfc["store"].model_dir / "model_3.pb", pb)
    (tmp_path / "model_metadata.json").write_text(json.dumps(DRFC_DEFAULT))
    with pytest.raises(DrlocalError, match="holds a single model"):
        import_model(pb, tmp_path / "x", checkpoint=3)
    res = import_model(pb, tmp_path / "x", checkpoint="best")
    assert res.checkpoint == "0_Step-0.ckpt" and ModelStore(res.root).checkpoints() == [CheckpointName(0, 0)]


def test_pretrained_and_increment_start_from_a_drfc_prefix(drfc: dict[str, Any], tmp_path: Path) -> None:
    from drlocal.config.workdir import increment_run_env, init_workdir, load_job, set_env_values
    from drlocal.learn.trainer import Trainer

    init_workdir(tmp_path)
    h = tmp_path / "custom_files" / "hyperparameters.json"
    h.write_text(json.dumps({**json.loads(h.read_text()), "num_episodes_between_training": 2}))
    set_env_values(tmp_path / "run.env", {"DR_LOCAL_S3_MODEL_PREFIX": "my-old-model"})
    job = load_job(tmp_path, environ={})
    shutil.copytree(drfc["root"], job.model_root())
    assert increment_run_env(job, "best") == ("my-old-model", "my-old-model-1")  # resolves best on TF files
    job = load_job(tmp_path, environ={})
    assert (job.run.pretrained, job.run.pretrained_prefix, job.run.pretrained_checkpoint) == (
        True, "my-old-model", "best")
    trainer = Trainer(job, max_iterations=1)
    assert same_state({k: v.cpu() for k, v in trainer.model.state_dict().items()}, drfc["a"].state_dict())
    set_env_values(tmp_path / "run.env", {"DR_LOCAL_S3_MODEL_PREFIX": "my-old-model"})
    with pytest.raises(DrlocalError, match=r"5_Step-2000\.ckpt"):  # resuming a DRfC run in place: refused
        Trainer(load_job(tmp_path, environ={}), resume=True)


def _xl_tree(root: Path) -> Path:
    """DRfC's data/minio with a current MinIO: every object a folder holding xl.meta."""
    (root / ".minio.sys").mkdir(parents=True)
    (root / ".minio.sys" / "format.json").write_text('{"version": "1", "format": "xl-single"}')
    prefix = root / "bucket" / "my-old-model-xl"
    for key in ("model/3_Step-1234.ckpt.index", "model/3_Step-1234.ckpt.meta", "model/model_3.pb",
                "model/model_metadata.json", "reward_function.py"):
        (prefix / key).mkdir(parents=True)
        (prefix / key / "xl.meta").write_bytes(b"XL2 \x01\x00")
    return prefix


def test_minio_xl_folder_gives_one_clear_error(tmp_path: Path) -> None:
    prefix = _xl_tree(tmp_path / "data" / "minio")
    assert is_minio_xl_path(prefix) and is_minio_xl_path(prefix / "model")
    assert is_minio_xl_path(prefix / "model" / "model_3.pb") and is_minio_xl_path(tmp_path / "data" / "minio")
    plain = tmp_path / "plain" / "model"
    plain.mkdir(parents=True)
    (plain / "model_3.pb").write_bytes(b"x")
    assert not is_minio_xl_path(plain.parent) and not is_minio_xl_path(tmp_path / "missing")
    from drlocal import load_model

    for attempt in (lambda: import_model(prefix, tmp_path / "dest"), lambda: ModelStore(prefix).checkpoints(),
                    lambda: load_policy(ModelStore(prefix), "last", torch.device("cpu")),
                    lambda: load_model(prefix)):
        with pytest.raises(DrlocalError) as exc:
            attempt()
        msg = str(exc.value)
        assert "xl.meta" in msg and "RELEASE.2022-10-29" in msg and "DR_CLOUD=local" in msg
        assert str(tmp_path / "data" / "minio") in msg  # the MinIO data folder (.minio.sys) is named


# ----- DeepRacer-on-AWS training_params.yaml -----

def test_droa_training_params_for_drfc_defaults() -> None:
    p = droa_training_params({}, prefix="my-model", bucket="bkt")
    assert set(TRAINING_MANDATORY_YAML_KEYS) <= set(p)
    assert p == {
        "AWS_REGION": "us-east-1", "JOB_TYPE": "TRAINING", "WORLD_NAME": "reinvent_base", "RACE_TYPE": "TIME_TRIAL",
        "CAR_NAME": "FastCar", "DISPLAY_NAME": "FastCar", "RACER_NAME": "FastCar", "BODY_SHELL_TYPE": "deepracer",
        "CAR_COLOR": "Red", "SAGEMAKER_SHARED_S3_BUCKET": "bkt", "SAGEMAKER_SHARED_S3_PREFIX": "my-model",
        "METRICS_S3_BUCKET": "bkt", "METRICS_S3_OBJECT_KEY": "my-model/metrics/TrainingMetrics.json",
        "MODEL_METADATA_FILE_S3_KEY": "my-model/model/model_metadata.json",
        "REWARD_FILE_S3_KEY": "my-model/reward_function.py", "SIMTRACE_S3_BUCKET": "bkt",
        "SIMTRACE_S3_PREFIX": "my-model", "NUM_WORKERS": "1", "REVERSE_DIR": "False",
        "CHANGE_START_POSITION": "True", "ALTERNATE_DRIVING_DIRECTION": "False", "START_POSITION_OFFSET": "0.0",
        "ROUND_ROBIN_ADVANCE_DIST": "0.05", "MIN_EVAL_TRIALS": "5", "BEST_MODEL_METRIC": "progress",
        "ENABLE_DOMAIN_RANDOMIZATION": "False",
    }  # reinvent_base runs one way only: no TRACK_DIRECTION_CLOCKWISE (the simapp would look for reinvent_base_cw)


@pytest.mark.parametrize(("world", "reverse", "name", "clockwise", "reverse_dir"), [
    ("2022_april_open_ccw", False, "2022_april_open", False, "False"),
    ("2022_april_open_ccw", True, "2022_april_open", True, "False"),  # reversed: the car drives clockwise
    ("2022_april_open_cw", False, "2022_april_open", True, "False"),
    ("2024_reinvent_champ_cw", True, "2024_reinvent_champ", False, "False"),
    ("reInvent2019_track", False, "reInvent2019_track", False, "False"),  # the base route runs counter-clockwise
    ("reinvent_base", True, "reinvent_base", None, "True"),  # one direction: REVERSE_DIR keeps the reversal
    ("Albert", False, "Albert", None, "False"),
])
def test_track_direction_clockwise(world: str, reverse: bool, name: str, clockwise: bool | None,
                                   reverse_dir: str) -> None:
    p = droa_training_params({"DR_WORLD_NAME": world, "DR_TRAIN_REVERSE_DIRECTION": str(reverse)})
    assert (p["WORLD_NAME"], p.get("TRACK_DIRECTION_CLOCKWISE"), p["REVERSE_DIR"]) == (name, clockwise, reverse_dir)
    assert droa_training_params(run_values_from_training_params(p)) == p  # read back from the yaml: the same


def test_training_params_yaml_is_written_as_drfc_dumps_it() -> None:
    p = droa_training_params({"world_name": "2022_april_open_ccw", "car_name": "Bob's car", "reverse_direction": True,
                              "DR_CAR_COLOR": "Blue", "DR_AWS_APP_REGION": "eu-west-1"},
                             prefix="p", bucket="b")  # RunConfig field names work too
    text = training_params_yaml(p)
    lines = text.splitlines()
    assert lines[0] == "---" and len(lines) == 1 + len(p) == 28
    assert lines[1:6] == ["'ALTERNATE_DRIVING_DIRECTION': 'False'", "'AWS_REGION': 'eu-west-1'",
                          "'BEST_MODEL_METRIC': 'progress'", "'BODY_SHELL_TYPE': 'deepracer'", "'CAR_COLOR': 'Blue'"]
    assert "'CAR_NAME': 'Bob''s car'" in lines
    assert "'TRACK_DIRECTION_CLOCKWISE': !!bool 'true'" in lines  # DRoA's `=== true` needs a YAML boolean
    assert lines[-1] == "'WORLD_NAME': '2022_april_open'"
    back = parse_training_params(text)
    assert back == p and back["TRACK_DIRECTION_CLOCKWISE"] is True
    from drlocal.config.run import RunConfig  # a RunConfig (or a Job) gives the same as its DR_* values

    run = RunConfig(world_name="2022_april_open_ccw", reverse_direction=True, car_color="Blue", model_prefix="m",
                    bucket="b", metrics_prefix="elsewhere/metrics")
    assert droa_training_params(run) == droa_training_params(
        {"DR_WORLD_NAME": "2022_april_open_ccw", "DR_TRAIN_REVERSE_DIRECTION": "True", "DR_CAR_COLOR": "Blue",
         "DR_LOCAL_S3_MODEL_PREFIX": "m", "DR_LOCAL_S3_BUCKET": "b", "DR_LOCAL_S3_METRICS_PREFIX": "elsewhere/metrics"})
    assert droa_training_params(run)["METRICS_S3_OBJECT_KEY"] == "elsewhere/metrics/TrainingMetrics.json"
    upload = droa_training_params(run, prefix="upload-1")  # another prefix: its own metrics folder
    assert upload["METRICS_S3_OBJECT_KEY"] == "upload-1/metrics/TrainingMetrics.json"
    # drlocal's older style and PyYAML's folding of long values read back too
    assert parse_training_params('WORLD_NAME: "reinvent_base"\nNUM_WORKERS: "1"\nX: plain\n') == {
        "WORLD_NAME": "reinvent_base", "NUM_WORKERS": "1", "X": "plain"}
    assert parse_training_params("---\n'A': 'a b\n  c'\n'L':\n- '1, 2'\n- '3'\n") == {"A": "a b c",
                                                                                    "L": ["1, 2", "3"]}
