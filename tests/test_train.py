"""End-to-end training: output layout, deepracer-utils compatibility, evaluation, kill -9 and resume."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from drlocal.config.workdir import init_workdir, load_job
from drlocal.learn import trainer as trainer_module
from drlocal.learn.evaluate import evaluate
from drlocal.learn.ppo import PPOConfig
from drlocal.learn.trainer import Trainer
from drlocal.store.local import CheckpointName, ModelStore
from drlocal.store.logs import SIMTRACE_COLUMNS

EPISODES = 3


def small_job(tmp_path: Path, **hp: object) -> Path:
    """A DRfC folder with tiny iterations so that a CPU trains one in a few seconds."""
    init_workdir(tmp_path)
    hp_path = tmp_path / "custom_files" / "hyperparameters.json"
    h = json.loads(hp_path.read_text())
    h.update({"num_episodes_between_training": EPISODES, "num_epochs": 1, "term_cond_max_episodes": 3 * EPISODES})
    h.update(hp)
    hp_path.write_text(json.dumps(h))
    with (tmp_path / "run.env").open("a") as f:
        f.write("DR_TRAIN_MIN_EVAL_TRIALS=2\n")
    return tmp_path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = small_job(tmp_path_factory.mktemp("run"))
    job = load_job(root, environ={})
    Trainer(job, max_iterations=2, seed=1).train()
    return root


def test_layout_matches_deepracer(trained: Path) -> None:
    prefix = trained / "data" / "bucket" / "rl-deepracer-sagemaker"
    model = prefix / "model"
    names = sorted(p.name for p in model.glob("*.ckpt.pt"))
    assert names[0] == "0_Step-0.ckpt.pt" and len(names) == 3
    assert (model / ".coach_checkpoint").read_text().strip() == names[-1].removesuffix(".pt")
    ckpts = json.loads((model / "deepracer_checkpoints.json").read_text())
    assert set(ckpts) == {"best_checkpoint", "last_checkpoint"}
    assert set(ckpts["best_checkpoint"]) == {"name", "avg_eval_metric", "time_stamp"}
    assert ckpts["last_checkpoint"]["name"] == names[-1].removesuffix(".pt")
    md = json.loads((model / "model_metadata.json").read_text())
    assert md["sensor"] == ["FRONT_FACING_CAMERA"] and md["action_space"][0]["index"] == 0
    hp = json.loads((prefix / "ip" / "hyperparameters.json").read_text())
    assert list(hp) == sorted(hp) and "sac_alpha" not in hp and hp["num_episodes_between_training"] == EPISODES
    assert (prefix / "reward_function.py").is_file() and "WORLD_NAME" in (prefix / "training_params.yaml").read_text()

    metrics = json.loads((prefix / "metrics" / "TrainingMetrics.json").read_text())
    assert metrics["version"] == 2.0 and metrics["best_model_metric"] == "progress"
    training = [m for m in metrics["metrics"] if m["phase"] == "training"]
    evals = [m for m in metrics["metrics"] if m["phase"] == "evaluation"]
    assert [m["episode"] for m in training] == list(range(1, 2 * EPISODES + 1))  # 1-based, global
    assert [m["trial"] for m in training] == [1, 2, 3, 1, 2, 3]
    assert [m["episode"] for m in evals] == [3, 3, 6, 6]  # repeats the last training episode number
    for m in metrics["metrics"]:
        assert m["elapsed_time_in_milliseconds"] == m["metric_time"] - m["start_time"] >= 0
        assert m["episode_status"] in ("Lap complete", "Off track", "Reversed", "Immobilized")
        assert isinstance(m["completion_percentage"], int) and isinstance(m["reward_score"], int)

    sim = prefix / "training-simtrace"
    assert sorted(p.name for p in sim.glob("*.csv")) == ["0-iteration.csv", "1-iteration.csv"]
    lines = (sim / "0-iteration.csv").read_text().splitlines()
    assert lines[0].split(",") == list(SIMTRACE_COLUMNS) and len(SIMTRACE_COLUMNS) == 19
    first = dict(zip(SIMTRACE_COLUMNS, lines[1].split(","), strict=True))
    assert first["episode"] == "0" and first["steps"] == "1.0" and first["episode_status"] == "prepare"
    assert first["reward"] == "0.0" and first["done"] == "False"
    # episodes are contiguous and in order, each starting with its PREPARE row
    episodes = [int(ln.split(",")[0]) for ln in lines[1:]]
    assert episodes == sorted(episodes) and set(episodes) == {0, 1, 2}


def test_deepracer_utils_reads_it(trained: Path) -> None:
    from deepracer.logs import DeepRacerLog

    log = DeepRacerLog(model_folder=str(trained / "data" / "bucket" / "rl-deepracer-sagemaker"))
    log.load()
    df = log.dataframe()
    assert sorted(df["iteration"].unique()) == [0, 1]
    assert df.groupby("iteration")["episode"].nunique().tolist() == [EPISODES, EPISODES]
    assert df["unique_episode"].nunique() == 2 * EPISODES
    for col in ("x", "y", "yaw", "steering_angle", "speed", "action", "reward", "progress", "on_track",
                "closest_waypoint", "track_len", "tstamp", "episode_status"):
        assert col in df.columns
    assert log.hyperparameters()["num_episodes_between_training"] == EPISODES
    assert log.agent_and_network()["network"] == "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"


def test_evaluate_writes_metrics_and_simtrace(trained: Path) -> None:
    job = load_job(trained, environ={})
    res = evaluate(job, checkpoint="last", trials=2, continuous=False)
    data = json.loads(Path(res.metrics_path).read_text())
    assert len(data["metrics"]) == 2 and "version" not in data
    entry = data["metrics"][0]
    assert set(entry) == {
        "completion_percentage", "metric_time", "start_time", "elapsed_time_in_milliseconds", "episode_status",
        "crash_count", "immobilized_count", "off_track_count", "reversed_count", "reset_count", "trial",
    }
    assert entry["reset_count"] == entry["off_track_count"] + entry["reversed_count"] + entry["immobilized_count"]
    assert Path(res.simtrace_path).parts[-3].startswith("evaluation-")
    assert Path(res.simtrace_path).read_text().splitlines()[0].split(",") == list(SIMTRACE_COLUMNS)


def test_continuous_evaluation_with_resets(trained: Path) -> None:
    job = load_job(trained, environ={}, overrides={"DR_EVAL_MAX_RESETS": "2", "DR_EVAL_OFF_TRACK_PENALTY": "1.0"})
    res = evaluate(job, checkpoint="best", trials=1, continuous=True)
    lap = res.laps[-1]
    # an untrained model goes off track: it is re-placed twice (1 s pause each), then the episode ends
    if lap.status != "lap_complete":
        assert lap.resets == 2
        rows = Path(res.simtrace_path).read_text().splitlines()[1:]
        assert sum(",pause," in r for r in rows) == 2 * 15  # 1 s of 15 Hz steps per reset


def test_checkpoint_pruning_keeps_last_four_and_best(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    best = CheckpointName(1, 10)
    for k in range(8):
        store.save_checkpoint(CheckpointName(k, k * 10), {"w": torch.zeros(1)}, best if k >= 1 else None)
    assert [c.number for c in store.checkpoints()] == [1, 4, 5, 6, 7]


def _wait_for(path: Path, timeout: float) -> None:
    t0 = time.time()
    while not path.exists():
        if time.time() - t0 > timeout:
            raise TimeoutError(path)
        time.sleep(0.2)


def test_kill_9_then_resume(tmp_path: Path) -> None:
    root = small_job(tmp_path)
    cmd = [sys.executable, "-m", "drlocal.cli", "train", "--dir", str(root), "--iterations", "3", "--plain"]
    env = dict(os.environ, COLUMNS="200")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    prefix = root / "data" / "bucket" / "rl-deepracer-sagemaker"
    try:
        _wait_for(prefix / "training-simtrace" / "1-iteration.csv", 240)  # iteration 2 is being played
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    store = ModelStore(prefix)
    have = [c.number for c in store.checkpoints()]
    assert have[:2] == [0, 1]
    for c in store.checkpoints():  # nothing torn: every checkpoint loads
        torch.load(store.checkpoint_path(c), weights_only=False)
    json.loads((prefix / "metrics" / "TrainingMetrics.json").read_text())
    last = have[-1]

    r = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"resuming rl-deepracer-sagemaker at iteration {last}" in r.stdout
    assert [c.number for c in store.checkpoints()][-1] == 3
    assert sorted(p.name for p in (prefix / "training-simtrace").glob("*.csv")) == [
        "0-iteration.csv", "1-iteration.csv", "2-iteration.csv"]
    metrics = json.loads((prefix / "metrics" / "TrainingMetrics.json").read_text())["metrics"]
    training = [m["episode"] for m in metrics if m["phase"] == "training"]
    assert training == list(range(1, 3 * EPISODES + 1))  # no gap, no duplicate
    evals = [m["episode"] for m in metrics if m["phase"] == "evaluation"]
    assert evals == [3, 3, 6, 6, 9, 9]
    # round-robin starts continue across the restart: every iteration's first episode starts elsewhere
    first_x = [(prefix / "training-simtrace" / f"{k}-iteration.csv").read_text().splitlines()[1].split(",")[2]
               for k in range(3)]
    assert len(set(first_x)) == 3
    assert (prefix / "model" / ".finished").exists()


def test_zero_iterations_trains_none(tmp_path: Path) -> None:
    root = small_job(tmp_path)
    state = Trainer(load_job(root, environ={}), max_iterations=0).train()
    assert (state.iteration, state.episodes, state.env_steps, state.checkpoint) == (0, 0, 0, 0)
    prefix = root / "data" / "bucket" / "rl-deepracer-sagemaker"
    assert [c.number for c in ModelStore(prefix).checkpoints()] == [0]
    assert list((prefix / "training-simtrace").glob("*.csv")) == []


def _reordered(cls: type) -> type:
    """The dataclass with its fields in reverse order (what a reordering edit of ppo.py / sac.py would do)."""
    fields = [(f.name, f.type, dataclasses.field(default=f.default)) for f in reversed(dataclasses.fields(cls))]
    return dataclasses.make_dataclass(cls.__name__, fields)


def test_ppo_config_takes_hyperparameters_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trainer_module, "PPOConfig", _reordered(PPOConfig))
    root = small_job(tmp_path, lr=0.0007, num_epochs=2, batch_size=32, beta_entropy=0.02, discount_factor=0.95,
                     loss_type="mean squared error")
    trainer = Trainer(load_job(root, environ={}), max_iterations=0)
    assert dataclasses.asdict(trainer.learner.config) == {
        "lr": 0.0007, "num_epochs": 2, "batch_size": 32, "beta_entropy": 0.02, "discount_factor": 0.95,
        "loss_type": "mean squared error"}
    assert trainer.learner.optimizer.param_groups[0]["lr"] == 0.0007


def test_resume_continues_the_random_streams(tmp_path: Path) -> None:
    """`train --iterations 4` = `train --iterations 2` + `train --resume --iterations 4`: --iterations counts
    every iteration of the model prefix, also those before the resume."""
    tiny = {"num_episodes_between_training": 2, "num_epochs": 1, "batch_size": 32}
    straight = small_job(tmp_path / "straight", **tiny)
    Trainer(load_job(straight, environ={}), max_iterations=4, seed=7).train()
    split = small_job(tmp_path / "split", **tiny)
    Trainer(load_job(split, environ={}), max_iterations=2, seed=7).train()
    resumed = Trainer(load_job(split, environ={}), max_iterations=4, seed=7, resume=True)
    assert resumed.state.iteration == 2
    resumed.train()

    a = ModelStore(straight / "data" / "bucket" / "rl-deepracer-sagemaker")
    b = ModelStore(split / "data" / "bucket" / "rl-deepracer-sagemaker")
    last_a, last_b = a.load_checkpoint("last"), b.load_checkpoint("last")
    assert last_a["name"] == last_b["name"] and last_a["name"].startswith("4_Step-")
    assert last_a["trainer"] == last_b["trainer"]  # episodes, steps, sim clock, best checkpoint, starts
    for k, v in last_a["model"].items():
        assert torch.allclose(v, last_b["model"][k], atol=1e-6), k
    for k in range(4):  # the same cars drove the same episodes, also after the resume (all but the wall clock)
        name = f"training-simtrace/{k}-iteration.csv"
        rows_a, rows_b = ([ln.split(",")[:-1] for ln in (m.root / name).read_text().splitlines()] for m in (a, b))
        assert SIMTRACE_COLUMNS[-1] == "wall_clock" and len(rows_a) > 4 * 2
        assert rows_a == rows_b, name
    # drlocal's racer log (the report's σ, lap trend) continues across the resume: the same entries
    logs = [json.loads((m.root / "metrics" / "drlocal-racer.json").read_text())["iterations"] for m in (a, b)]
    assert [e["iteration"] for e in logs[1]] == [1, 2, 3, 4] and logs[0] == logs[1]


def test_ctrl_c_stops_at_the_iteration_boundary_even_when_the_interrupt_is_swallowed(tmp_path: Path) -> None:
    """`drlocal train`'s Ctrl-C handler: a KeyboardInterrupt that some code catches and drops (here the iteration
    callback) still stops training after that iteration, keeping it; the default handler is back afterwards."""
    from drlocal.cli import _ctrl_c_stops

    # a test run started in the background (`cmd &` in a script) inherits SIGINT ignored, which _ctrl_c_stops
    # rightly leaves alone: give this process Python's default handler, as an interactive `drlocal train` has
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _swallowed_ctrl_c_run(tmp_path, _ctrl_c_stops)
    finally:
        signal.signal(signal.SIGINT, previous)


def _swallowed_ctrl_c_run(tmp_path: Path, _ctrl_c_stops) -> None:
    job = load_job(small_job(tmp_path), environ={})
    messages: list[str] = []
    swallowed: list[int] = []

    def on_iteration(report) -> None:
        try:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C while a callback runs that swallows what it raises
        except KeyboardInterrupt:
            swallowed.append(report.iteration)

    trainer = Trainer(job, max_iterations=5, seed=2, on_iteration=on_iteration, on_message=messages.append)
    with _ctrl_c_stops(trainer):
        state = trainer.train()
    assert swallowed == [1] and state.iteration == 1 and state.checkpoint == 1
    assert any("interrupted: keeping checkpoint 1" in m for m in messages)
    assert trainer.store.resolve_checkpoint("last").number == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
