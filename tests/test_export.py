"""Car-ready models (issue #5): the TF frozen graph the car loads, its OpenVINO / TFLite conversions,
ONNX, the DeepRacer-on-AWS folder, import back into drlocal, and `drlocal.load_model`.

Every check runs real runtimes on real rendered camera frames (and LIDAR scans) of reinvent_base
and compares with the PyTorch policy. The networks are DeepRacer-sized (SHALLOW: 5.8 M weights
per tower); the policy head is scaled so that the greedy action differs between frames, which
makes "same action" a real test rather than a tie-break.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

pytest.importorskip("tensorflow", reason="the `car` extra (tensorflow-cpu, openvino, onnx, onnxruntime) is missing")
pytest.importorskip("openvino", reason="the `car` extra is missing")
pytest.importorskip("onnxruntime", reason="the `car` extra is missing")

from drlocal import DrlocalError, load_model
from drlocal.cli import app
from drlocal.config.model_metadata import DRFC_DEFAULT
from drlocal.config.workdir import init_workdir, load_job
from drlocal.export import car
from drlocal.export.droa import TRAINING_MANDATORY_YAML_KEYS, parse_training_params
from drlocal.export.graphdef import parse_graphdef
from drlocal.export.importer import import_model, read_source, spec_from_source
from drlocal.export.spec import PPO_OUTPUT, SAC_OUTPUT, input_name, spec_from_torch
from drlocal.learn.evaluate import load_policy
from drlocal.learn.networks import PPOActorCritic
from drlocal.learn.sac import SACPolicy
from drlocal.learn.trainer import FORMAT, TrainerState
from drlocal.store.local import CheckpointName, ModelStore

SHALLOW = "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"
CAM = "FRONT_FACING_CAMERA"
CONTINUOUS_LIDAR_MD: dict[str, Any] = {
    "action_space": {"steering_angle": {"low": -30.0, "high": 30.0}, "speed": {"low": 0.5, "high": 2.0}},
    "action_space_type": "continuous", "sensor": [CAM, "LIDAR"], "neural_network": SHALLOW,
    "training_algorithm": "clipped_ppo", "version": "5",
}
SAC_MD: dict[str, Any] = {**CONTINUOUS_LIDAR_MD, "sensor": [CAM], "training_algorithm": "sac"}


def sharpen(model: torch.nn.Module) -> torch.nn.Module:
    """Scale the policy output layer so that actions are decided (a trained policy's confidence)."""
    head = model.policy_head if isinstance(model, PPOActorCritic) else model.mean
    with torch.no_grad():
        head.weight.mul_(40.0)
        head.bias.uniform_(-0.5, 0.5)
    return model.eval()


def save_prefix(root: Path, model: torch.nn.Module, metadata: dict[str, Any], algorithm: str) -> ModelStore:
    """A drlocal model prefix as training leaves it: checkpoint 0 + model_metadata.json + side files."""
    store = ModelStore(root)
    state: Any = model.state_dict()
    if algorithm == "sac":
        state = {"policy": model.state_dict(), "q": {}, "v": {}, "v_target": {}}
    name = CheckpointName(3, 1234)
    store.save_checkpoint(name, {"format": FORMAT, "algorithm": algorithm, "model": state, "optimizer": None,
                                 "trainer": TrainerState().__dict__, "model_metadata": metadata}, best=None)
    entry = {"name": str(name), "avg_eval_metric": 42.0, "time_stamp": 10.0}
    store.write_checkpoints_json(entry, entry)
    (store.model_dir / "model_metadata.json").write_text(json.dumps(metadata))
    (root / "reward_function.py").write_text("def reward_function(params):\n    return 1.0\n")
    (root / "training_params.yaml").write_text('WORLD_NAME: "reinvent_base"\n')
    (root / "ip").mkdir(exist_ok=True)
    (root / "ip" / "hyperparameters.json").write_text(json.dumps({"batch_size": 64}))
    return store


def torch_out(model: torch.nn.Module, obs: dict[str, np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return model.policy_output({k: torch.as_tensor(v) for k, v in obs.items()}).numpy()


@pytest.fixture(scope="module")
def ppo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The DRfC default model (PPO, 5 discrete actions, front camera, SHALLOW) exported for the car."""
    torch.manual_seed(1)
    model = sharpen(PPOActorCritic({CAM: 0}, SHALLOW, 5, False))
    root = tmp_path_factory.mktemp("ppo")
    store = save_prefix(root / "prefix", model, dict(DRFC_DEFAULT), "clipped_ppo")
    spec = spec_from_torch(model, SHALLOW)
    paths = car.export_car(spec, dict(DRFC_DEFAULT), root / "export")
    obs = car.check_observations(dict(DRFC_DEFAULT))
    return {"model": model, "spec": spec, "paths": paths, "obs": obs, "store": store, "root": root}


def test_car_archive_holds_the_frozen_graph_the_car_loads(ppo: dict[str, Any]) -> None:
    with tarfile.open(ppo["paths"]["tar"]) as tar:
        assert sorted(m.name for m in tar.getmembers()) == ["model.pb", "model_metadata.json"]
        assert json.loads(tar.extractfile("model_metadata.json").read()) == DRFC_DEFAULT  # type: ignore[union-attr]
        pb = tar.extractfile("model.pb").read()  # type: ignore[union-attr]
    nodes = {n.name: n for n in parse_graphdef(pb)}
    inp = nodes[input_name(CAM, "clipped_ppo")]
    assert (inp.op, inp.dtype, inp.shape) == ("Placeholder", 1, [-1, 120, 160, 1])  # float32, contract §7.3
    assert nodes[PPO_OUTPUT].op == "Softmax"
    assert "main_level/agent/main/online/network_0/FRONT_FACING_CAMERA/FRONT_FACING_CAMERA" == inp.name
    # the policy tower's weights, RL-Coach names, TF layout
    k = nodes["main_level/agent/main/online/network_1/FRONT_FACING_CAMERA/Conv2d_0/kernel"].value
    assert k.shape == (8, 8, 1, 32)
    w = ppo["model"].policy_tower.embedders[CAM].body[0].weight.detach().numpy()
    np.testing.assert_array_equal(k, w.transpose(2, 3, 1, 0))
    assert nodes["main_level/agent/main/online/network_1/middleware_fc_embedder/Dense_0/kernel"].value.shape == (
        11264, 512)


def test_tensorflow_runs_the_graph_like_pytorch(ppo: dict[str, Any]) -> None:
    res = car.check_tensorflow(ppo["spec"], ppo["model"], ppo["paths"]["pb"].read_bytes(), ppo["obs"])
    assert res.max_abs_diff <= 1e-4 and res.same_actions == res.frames == 8 and res.ok
    assert len(set(torch_out(ppo["model"], ppo["obs"]).argmax(1))) >= 2  # frames lead to different actions


def test_openvino_and_tflite_conversions_choose_the_same_actions(ppo: dict[str, Any]) -> None:
    results = car.check_car(ppo["spec"], ppo["model"], ppo["paths"]["pb"].read_bytes(), ppo["obs"])
    by = {r.runtime.split()[0]: r for r in results}
    assert set(by) == {"TensorFlow", "OpenVINO", "TFLite"}
    for r in results:
        assert r.same_actions == r.frames == 8, r.line()
        assert r.max_abs_diff < 1e-3, r.line()


def test_onnx_matches_pytorch_in_onnxruntime(ppo: dict[str, Any]) -> None:
    path = car.export_onnx(ppo["spec"], ppo["root"] / "export")
    res = car.check_onnx(ppo["spec"], ppo["model"], path.read_bytes(), ppo["obs"])
    assert res.max_abs_diff <= 1e-4 and res.ok, res.line()


def test_export_then_import_gives_identical_actions(ppo: dict[str, Any], tmp_path: Path) -> None:
    res = import_model(ppo["paths"]["tar"], tmp_path / "imported")
    assert res.fresh == ["value tower (network_0)"] and res.metadata["neural_network"] == SHALLOW
    store = ModelStore(res.root)
    assert store.resolve_checkpoint("last") == store.resolve_checkpoint("best") == CheckpointName(0, 0)
    assert (store.model_dir / ".coach_checkpoint").read_text().strip() == "0_Step-0.ckpt"
    model, md, _ = load_policy(store, "last", torch.device("cpu"))  # what `drlocal evaluate` loads
    assert md.action_space == load_policy(ppo["store"], "best", torch.device("cpu"))[1].action_space
    a, b = torch_out(ppo["model"], ppo["obs"]), torch_out(model, ppo["obs"])
    assert np.abs(a - b).max() <= 1e-5
    np.testing.assert_array_equal(a.argmax(1), b.argmax(1))


def test_import_of_a_drlocal_prefix_keeps_its_checkpoint(ppo: dict[str, Any], tmp_path: Path) -> None:
    res = import_model(ppo["store"].root, tmp_path / "copy", checkpoint="best")
    assert (res.checkpoint, res.source, res.fresh) == ("3_Step-1234.ckpt", "drlocal", [])
    assert sorted(res.history) == ["ip/hyperparameters.json", "reward_function.py", "training_params.yaml"]
    store = ModelStore(res.root)
    assert store.checkpoints() == [CheckpointName(3, 1234)]
    assert store.read_checkpoints_json()["best_checkpoint"] == {"name": "3_Step-1234.ckpt", "avg_eval_metric": 42.0,
                                                               "time_stamp": 10.0}
    model, _, _ = load_policy(store, "best", torch.device("cpu"))
    a, b = torch_out(ppo["model"], ppo["obs"]), torch_out(model, ppo["obs"])
    np.testing.assert_array_equal(a, b)


def test_load_model_agrees_on_folder_tarball_and_pb(ppo: dict[str, Any]) -> None:
    obs = ppo["obs"][CAM]
    models = [load_model(ppo["store"].root), load_model(ppo["paths"]["tar"]), load_model(ppo["paths"]["pb"])]
    ref = torch_out(ppo["model"], ppo["obs"])
    for m in models:
        assert not m.continuous
        np.testing.assert_allclose(m.action_probabilities(obs), ref, atol=1e-5)
        np.testing.assert_array_equal(m.act(obs), ref.argmax(1))  # batch
        assert m.act(obs[3]) == int(ref[3].argmax())  # one car, as the single-car env gives it
        assert m.action_probabilities(obs[3]).shape == (5,)
    steer, speed = models[1].commands(obs)  # the tarball's model_metadata.json maps actions to commands
    table = DRFC_DEFAULT["action_space"]
    assert steer.tolist() == [table[i]["steering_angle"] for i in ref.argmax(1)]
    assert speed.tolist() == [table[i]["speed"] for i in ref.argmax(1)]
    with pytest.raises(DrlocalError, match="discrete"):
        models[0].action_mean(obs)
    import gymnasium as gym  # the env's own observation goes straight in, the action straight back

    env = gym.make("drlocal/DeepRacer-v0", track="reinvent_base")
    o, _ = env.reset(seed=0)
    for _ in range(3):
        a = models[1].act(o)
        assert isinstance(a, int) and a == models[0].act(o)
        o, *_ = env.step(a)


def test_deepracer_on_aws_folder_round_trips_through_its_tf_checkpoint(ppo: dict[str, Any], tmp_path: Path) -> None:
    folder, missing = car.export_droa(ppo["spec"], dict(DRFC_DEFAULT), ppo["store"], "3_Step-1234.ckpt", tmp_path)
    assert missing == []
    for rel in ("model_metadata.json", "reward_function.py", "training_params.yaml", "hyperparameters.json",
                "model/.coach_checkpoint", "model/3_Step-1234.ckpt.index", "model/3_Step-1234.ckpt.meta",
                "model/3_Step-1234.ckpt.data-00000-of-00001", "model/model_3.pb"):
        assert (folder / rel).is_file(), rel
    assert (folder / "model/.coach_checkpoint").read_text().strip() == "3_Step-1234.ckpt"
    # DRoA's import API reads ip/hyperparameters.json, its website wants hyperparameters.json at the root
    assert (folder / "ip/hyperparameters.json").read_bytes() == (folder / "hyperparameters.json").read_bytes()
    text = (folder / "training_params.yaml").read_text()
    params = parse_training_params(text)
    assert text.startswith("---\n'ALTERNATE_DRIVING_DIRECTION': 'False'\n")
    assert set(TRAINING_MANDATORY_YAML_KEYS) <= set(params) and len(params) == 26
    assert (params["WORLD_NAME"], params["SAGEMAKER_SHARED_S3_PREFIX"], params["METRICS_S3_OBJECT_KEY"]) == (
        "reinvent_base", "prefix", "prefix/metrics/TrainingMetrics.json")  # from the prefix's own yaml
    assert "TRACK_DIRECTION_CLOCKWISE" not in params  # reinvent_base has one direction only
    from drlocal.export.tfgraph import read_checkpoint

    names = read_checkpoint(folder / "model" / "3_Step-1234.ckpt")
    for net in ("online", "target"):
        for key in ("network_0/FRONT_FACING_CAMERA/Conv2d_0/kernel", "network_0/v_values_head_0/output/kernel",
                    "network_1/middleware_fc_embedder/Dense_0/bias", "network_1/ppo_head_0/policy_fc/kernel"):
            assert f"main_level/agent/main/{net}/{key}" in names
    # import from the checkpoint alone (drop the frozen graph): policy AND value tower come back
    (folder / "model" / "model_3.pb").unlink()
    src = read_source(folder)
    assert src.pb is None and src.metadata == DRFC_DEFAULT
    res = import_model(folder, tmp_path / "from-droa")
    assert res.fresh == []
    model, _, _ = load_policy(ModelStore(res.root), "last", torch.device("cpu"))
    obs = {k: torch.as_tensor(v) for k, v in ppo["obs"].items()}
    with torch.no_grad():
        assert torch.equal(model.policy_output(obs), ppo["model"].policy_output(obs))
        assert torch.equal(model.value(obs), ppo["model"].value(obs))


def test_deepracer_on_aws_training_params_from_the_run(ppo: dict[str, Any], tmp_path: Path) -> None:
    """With the run's DR_* values: a two-direction track gets its base name and TRACK_DIRECTION_CLOCKWISE as
    the YAML boolean DRoA compares with `=== true`; the training metrics go where DRoA looks for them."""
    store = ModelStore(tmp_path / "bucket" / "two-way")
    shutil.copytree(ppo["store"].root, store.root)
    (store.root / "training_params.yaml").unlink()
    (store.metrics_dir).mkdir()
    (store.metrics_dir / "TrainingMetrics.json").write_text('{"metrics": []}')
    folder, missing = car.export_droa(ppo["spec"], dict(DRFC_DEFAULT), store, "3_Step-1234.ckpt", tmp_path / "a")
    assert missing == ["training_params.yaml"]  # neither run values nor a yaml: DRfC's defaults, and a warning
    assert parse_training_params((folder / "training_params.yaml").read_text())["WORLD_NAME"] == "reinvent_base"
    assert (folder / "metrics/training/training-metrics.json").read_text() == '{"metrics": []}'
    run = {"DR_WORLD_NAME": "reInvent2019_track_cw", "DR_TRAIN_REVERSE_DIRECTION": "False", "DR_CAR_COLOR": "Blue"}
    folder, missing = car.export_droa(ppo["spec"], dict(DRFC_DEFAULT), store, "3_Step-1234.ckpt", tmp_path / "b",
                                      run_values=run)
    assert missing == []
    text = (folder / "training_params.yaml").read_text()
    assert "'TRACK_DIRECTION_CLOCKWISE': !!bool 'true'\n'WORLD_NAME': 'reInvent2019_track'\n" in text
    params = parse_training_params(text)
    assert (params["CAR_COLOR"], params["SAGEMAKER_SHARED_S3_BUCKET"], params["SAGEMAKER_SHARED_S3_PREFIX"]) == (
        "Blue", "bucket", "two-way")


def test_continuous_camera_and_lidar_model(tmp_path: Path) -> None:
    torch.manual_seed(2)
    model = PPOActorCritic({CAM: 0, "LIDAR": 64}, SHALLOW, 2, True)
    with torch.no_grad():
        model.policy_head.weight.mul_(1500.0)  # means spread over [-1, 1] (init std is 0.01)
        model.log_std.fill_(-0.7)
    model.eval()
    spec = spec_from_torch(model, SHALLOW)
    paths = car.export_car(spec, CONTINUOUS_LIDAR_MD, tmp_path)
    obs = car.check_observations(CONTINUOUS_LIDAR_MD, n=6)
    assert obs["LIDAR"].shape == (6, 64) and obs[CAM].dtype == np.uint8
    nodes = {n.name: n for n in parse_graphdef(paths["pb"].read_bytes())}
    assert nodes[input_name("LIDAR", "clipped_ppo")].shape == [-1, 64]
    assert nodes[PPO_OUTPUT].op == "Identity"  # the unclipped mean
    for r in car.check_car(spec, model, paths["pb"].read_bytes(), obs):  # two inputs through all converters
        assert r.ok, r.line()
    assert car.check_onnx(spec, model, car.export_onnx(spec, tmp_path).read_bytes(), obs).ok
    loaded = load_model(paths["tar"])
    assert loaded.continuous and loaded.sensors == [CAM, "LIDAR"]
    mean = torch_out(model, obs)
    np.testing.assert_allclose(loaded.action_mean(obs), mean, atol=1e-5)
    np.testing.assert_allclose(loaded.act(obs), np.clip(mean, -1, 1), atol=1e-5)
    assert np.abs(mean).max() > 0.3
    res = import_model(paths["tar"], tmp_path / "imported")
    back, _, _ = load_policy(ModelStore(res.root), "last", torch.device("cpu"))
    assert np.abs(torch_out(back, obs) - mean).max() <= 1e-5
    assert torch.equal(back.log_std, torch.zeros(2))  # a frozen graph has no log σ: DeepRacer's initial 0


def test_sac_policy_uses_the_sac_tensor_names(tmp_path: Path) -> None:
    torch.manual_seed(3)
    model = sharpen(SACPolicy({CAM: 0}, SHALLOW))
    spec = spec_from_torch(model, SHALLOW)
    paths = car.export_car(spec, SAC_MD, tmp_path)
    nodes = {n.name: n for n in parse_graphdef(paths["pb"].read_bytes())}
    assert SAC_OUTPUT in nodes and PPO_OUTPUT not in nodes
    assert input_name(CAM, "sac") == "main_level/agent/policy/online/network_0/FRONT_FACING_CAMERA/FRONT_FACING_CAMERA"
    assert nodes[input_name(CAM, "sac")].op == "Placeholder"
    obs = car.check_observations(SAC_MD, n=4)
    for r in car.check_car(spec, model, paths["pb"].read_bytes(), obs):
        assert r.ok, r.line()
    loaded = load_model(paths["pb"])
    assert loaded.algorithm == "sac" and loaded.metadata == SAC_MD  # model_metadata.json next to model.pb
    np.testing.assert_allclose(loaded.act(obs[CAM]), np.tanh(torch_out(model, obs)), atol=1e-5)
    res = import_model(paths["tar"], tmp_path / "imported")
    assert res.spec.algorithm == "sac" and set(res.fresh) == {"Q networks", "V network"}
    state = ModelStore(res.root).load_checkpoint("last")
    assert set(state["model"]) == {"policy", "q", "v", "v_target"}  # what the SAC trainer loads as pretrained
    back, _, _ = load_policy(ModelStore(res.root), "last", torch.device("cpu"))
    assert isinstance(back, SACPolicy)
    assert np.abs(torch_out(back, obs) - torch_out(model, obs)).max() <= 1e-5


def _tiny_graph(tmp_path: Path, conv_shape: tuple[int, ...], placeholder: str) -> Path:
    from drlocal.export.tfgraph import import_tf

    tf = import_tf()
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 120, 160, 1], name=placeholder)
        k = tf.constant(np.zeros(conv_shape, np.float32),
                        name="main_level/agent/main/online/network_1/FRONT_FACING_CAMERA/Conv2d_0/kernel")
        y = tf.nn.conv2d(x, k, [1, 4, 4, 1], "VALID")
        tf.nn.softmax(tf.reduce_mean(y, axis=[1, 2]), name=PPO_OUTPUT)
    p = tmp_path / "model.pb"
    p.write_bytes(g.as_graph_def().SerializeToString())
    return p


def test_import_refuses_graphs_it_cannot_map(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pb"
    garbage.write_bytes(b"\x0a\xff\xff\xff\x0f not a graph")
    with pytest.raises(DrlocalError, match="not a TensorFlow frozen graph"):
        read_source(garbage)
    odd = _tiny_graph(tmp_path, (5, 5, 1, 16), input_name(CAM, "clipped_ppo"))
    with pytest.raises(DrlocalError, match="match no DeepRacer network") as exc:
        spec_from_source(read_source(odd))
    assert "(5, 5, 1, 16)" in str(exc.value) and "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW expects" in str(exc.value)
    assert "(8, 8, 1, 32)" in str(exc.value)
    renamed = _tiny_graph(tmp_path, (8, 8, 1, 32), "input_1")
    with pytest.raises(DrlocalError, match="no DeepRacer input placeholder"):
        spec_from_source(read_source(renamed))


def test_cli_export_check_and_import(ppo: dict[str, Any], tmp_path: Path) -> None:
    """`drlocal export --check` on a working folder, then `drlocal import` and the pretrained path."""
    init_workdir(tmp_path)
    h = tmp_path / "custom_files" / "hyperparameters.json"
    h.write_text(json.dumps({**json.loads(h.read_text()), "num_episodes_between_training": 2}))
    prefix = tmp_path / "data" / "bucket" / "rl-deepracer-sagemaker"
    save_prefix(prefix, ppo["model"], dict(DRFC_DEFAULT), "clipped_ppo")
    runner = CliRunner()
    r = runner.invoke(app, ["export", "--dir", str(tmp_path), "--format", "car", "--check"])
    assert r.exit_code == 0, r.output
    assert r.output.count(" ok") == 3 and "TFLite" in r.output and "OpenVINO" in r.output
    tar = prefix / "export" / "model.tar.gz"
    assert tar.is_file()
    r = runner.invoke(app, ["import", str(tar), "--dir", str(tmp_path), "--prefix", "from-car"])
    assert r.exit_code == 0, r.output
    assert "initialised fresh: value tower" in r.output
    r = runner.invoke(app, ["import", str(tar), "--dir", str(tmp_path), "--prefix", "from-car"])
    assert r.exit_code != 0 and "already holds a model" in str(r.exception)
    # the imported prefix as DR_LOCAL_S3_PRETRAINED_PREFIX: the trainer starts from its weights
    from drlocal.learn.trainer import Trainer

    job = load_job(tmp_path, environ={}, overrides={"DR_LOCAL_S3_PRETRAINED": "True",
                                                   "DR_LOCAL_S3_PRETRAINED_PREFIX": "from-car",
                                                   "DR_LOCAL_S3_MODEL_PREFIX": "on-top"})
    trainer = Trainer(job, max_iterations=1)
    assert np.abs(torch_out(trainer.model.cpu(), ppo["obs"]) - torch_out(ppo["model"], ppo["obs"])).max() <= 1e-5


def test_import_reads_a_coach_style_frozen_graph(tmp_path: Path) -> None:
    """A graph laid out as RL-Coach builds it: variables frozen by convert_variables_to_constants (Const +
    read ops), dense layers on the channel axis as tensordot, DEEP_CONVOLUTIONAL_NETWORK_DEEP, 3 actions."""
    from drlocal.export.tfgraph import import_tf

    tf = import_tf()
    v1 = tf.compat.v1
    rng = np.random.default_rng(5)
    net = "main_level/agent/main/online/network_1"
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [None, 120, 160, 1], name=input_name(CAM, "clipped_ppo"))

        def var(name: str, shape: tuple[int, ...], scale: float) -> Any:
            init = v1.constant_initializer(rng.normal(0.0, scale, shape).astype(np.float32))
            return v1.get_variable(name, shape, initializer=init)

        with v1.variable_scope(f"{net}/{CAM}"):
            h = x / 255.0
            c = 1
            for i, (out, k, s) in enumerate([(32, 8, 4), (32, 4, 2), (64, 4, 2), (64, 3, 1)]):
                with v1.variable_scope(f"Conv2d_{2 * i}"):
                    w, b = var("kernel", (k, k, c, out), (2 / (k * k * c)) ** 0.5), var("bias", (out,), 0.05)
                    h = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(h, w, [1, s, s, 1], "VALID"), b))
                c = out
            for j, out in enumerate([512, 512]):
                with v1.variable_scope(f"Dense_{8 + 2 * j}"):
                    w, b = var("kernel", (c, out), (2 / c) ** 0.5), var("bias", (out,), 0.05)
                    h = tf.nn.relu(tf.tensordot(h, w, [[3], [0]]) + b)
                c = out
            h = tf.reshape(h, [-1, 3 * 6 * 512])
        with v1.variable_scope(f"{net}/middleware_fc_embedder"):
            for j, (d_in, out) in enumerate([(9216, 256), (256, 128)]):
                with v1.variable_scope(f"Dense_{2 * j}"):
                    w, b = var("kernel", (d_in, out), (2 / d_in) ** 0.5), var("bias", (out,), 0.05)
                    h = tf.nn.relu(tf.matmul(h, w) + b)
        with v1.variable_scope(f"{net}/ppo_head_0"):
            with v1.variable_scope("policy_fc"):
                logits = tf.matmul(h, var("kernel", (128, 3), 0.5)) + var("bias", (3,), 0.1)
            tf.nn.softmax(logits, name="policy")
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            frozen = v1.graph_util.convert_variables_to_constants(sess, g.as_graph_def(), [PPO_OUTPUT])
    pb = frozen.SerializeToString()
    spec = spec_from_source(read_source_bytes(pb, tmp_path))
    assert (spec.network, spec.num_outputs, spec.continuous) == ("DEEP_CONVOLUTIONAL_NETWORK_DEEP", 3, False)
    from drlocal.export.spec import torch_from_spec
    from drlocal.export.tfgraph import run_frozen_graph

    md = {**DRFC_DEFAULT, "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_DEEP"}
    obs = car.check_observations(md, n=6)
    want = run_frozen_graph(pb, {input_name(CAM, "clipped_ppo"): obs[CAM].astype(np.float32)}, PPO_OUTPUT)
    got = torch_out(torch_from_spec(spec), obs)
    assert np.abs(got - want).max() <= 1e-4
    np.testing.assert_array_equal(got.argmax(1), want.argmax(1))
    assert np.ptp(want, axis=0).max() > 0.2  # the frames are told apart


def read_source_bytes(pb: bytes, where: Path) -> Any:
    p = where / "coach.pb"
    p.write_bytes(pb)
    return read_source(p)
