"""Reward functions that hang, crawl or fail mid-run, and NaN states: one message, the last checkpoint intact, resume.

Everything here runs the real components: reward files loaded as users write them, real `Trainer` runs
(tiny iterations, see test_train.small_job), the `drlocal` command line as a subprocess.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from drlocal import DrlocalError, load_reward_function, load_track, reward_params
from drlocal.config.workdir import load_job
from drlocal.env.observations import ObservationBuilder
from drlocal.env.vector_env import DeepRacerVectorEnv
from drlocal.errors import NonFiniteStateError
from drlocal.learn.evaluate import evaluate
from drlocal.learn.trainer import Trainer
from drlocal.sim.car import CarParams
from drlocal.sim.episode import World
from drlocal.sim.reward import (
    DEFAULT_REWARD_TIMEOUT_S,
    TIMEOUT_ENV,
    RewardFunctionError,
    RewardTimeoutError,
)
from drlocal.store.local import ModelStore
from test_cli import assert_input_error, drlocal
from test_train import small_job

HANG = """\
def reward_function(params):
    n = 0
    while True:
        n += 1
"""

STUBBORN = """\
def reward_function(params):
    while True:
        try:
            while True:
                pass
        except BaseException:
            pass
"""

SLEEPY = """\
import time
def reward_function(params):
    time.sleep({seconds})
    return 1.0
"""

#: fails (hang: endless loop, raise: ZeroDivisionError) at the FAIL_AT-th call; a test sets FAIL_AT mid-run
COUNTING = """\
CALLS = 0
FAIL_AT = None
MODE = {mode!r}


def reward_function(params):
    global CALLS
    CALLS += 1
    if FAIL_AT is not None and CALLS >= FAIL_AT:
        if MODE == "hang":
            while True:
                pass
        return 1.0 / (CALLS - CALLS)
    return 1.0 if params["all_wheels_on_track"] else 1e-3
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def params() -> dict:
    t = load_track("reinvent_base")
    return reward_params(t, *t.waypoints[3], heading=10.0, speed=1.5, steering_angle=-12.0)


# ----- the per-call limit -----


def test_a_hung_reward_stops_with_one_message(tmp_path: Path, params: dict) -> None:
    path = write(tmp_path / "reward_function.py", HANG)
    fn = load_reward_function(path, timeout_s=0.2)
    t0 = time.perf_counter()
    with pytest.raises(RewardTimeoutError) as info:
        fn(params)
    assert time.perf_counter() - t0 < 2.0
    text = str(info.value)
    assert text.startswith(f"{path}, line ") and "limit of 0.2 s per call" in text, text
    assert "params: x=" in text and "steering_angle=-12.0" in text and "closest_waypoints=[3, 4]" in text
    assert TIMEOUT_ENV in text and "endless loop" in text
    assert isinstance(info.value, RewardFunctionError) and isinstance(info.value, DrlocalError)
    assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_an_endless_loop_at_the_top_level_stops_the_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from drlocal.sim import reward as reward_module

    monkeypatch.setattr(reward_module, "LOAD_TIMEOUT_S", 0.3)
    path = write(tmp_path / "reward_function.py", "import math\nn = 0\nwhile True:\n    n += 1\n\n"
                 "def reward_function(params):\n    return 1.0\n")
    t0 = time.perf_counter()
    with pytest.raises(RewardTimeoutError) as info:
        load_reward_function(path, timeout_s=1.0)
    assert time.perf_counter() - t0 < 2.0
    text = str(info.value)
    assert text.startswith(f"{path}, line ") and "loading the reward function did not finish within 0.3 s" in text
    assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    # a file whose top level is quick loads as before, and so does a slow top level with the limits off
    assert load_reward_function(write(tmp_path / "ok.py", "def reward_function(params):\n    return 2.0\n"),
                                timeout_s=1.0)({}) == 2.0


def test_a_reward_that_catches_the_interrupt_is_stopped_anyway(tmp_path: Path, params: dict) -> None:
    fn = load_reward_function(write(tmp_path / "r.py", STUBBORN), timeout_s=0.1)
    t0 = time.perf_counter()
    with pytest.raises(RewardTimeoutError, match=r"limit of 0\.1 s"):
        fn(params)
    assert time.perf_counter() - t0 < 2.0


def test_the_previous_alarm_handler_and_timer_are_restored(tmp_path: Path, params: dict) -> None:
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda s, f: fired.append(s))
    try:
        signal.setitimer(signal.ITIMER_REAL, 5.0)
        fn = load_reward_function(None, timeout_s=0.5)
        for _ in range(1000):
            fn(params)
        with pytest.raises(RewardTimeoutError):
            load_reward_function(write(tmp_path / "r.py", HANG), timeout_s=0.05)(params)
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 4.0 < left < 5.0  # the outer timer kept running, less the time spent
        assert signal.getsignal(signal.SIGALRM) is not signal.SIG_DFL and not fired
        signal.setitimer(signal.ITIMER_REAL, 0.01)
        time.sleep(0.2)
        assert fired == [signal.SIGALRM]  # the outer handler still gets its signal
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, previous)


def test_outside_the_main_thread_a_slow_call_is_reported_when_it_returns(tmp_path: Path, params: dict) -> None:
    fn = load_reward_function(write(tmp_path / "r.py", SLEEPY.format(seconds=0.3)), timeout_s=0.1)
    caught: list[BaseException] = []

    def run() -> None:
        try:
            fn(params)
        except BaseException as exc:  # handed to the test thread
            caught.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join(10)
    assert len(caught) == 1 and isinstance(caught[0], RewardTimeoutError)
    assert "took 0.3" in str(caught[0]) and "over the limit of 0.1 s per call" in str(caught[0])


def test_limit_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert load_reward_function().timeout_s == DEFAULT_REWARD_TIMEOUT_S == 1.0
    monkeypatch.setenv(TIMEOUT_ENV, "2.5")
    assert load_reward_function().timeout_s == 2.5
    assert load_reward_function(timeout_s=0.3).timeout_s == 0.3  # the keyword wins
    for off in ("0", "off"):
        monkeypatch.setenv(TIMEOUT_ENV, off)
        assert load_reward_function().timeout_s is None
    monkeypatch.setenv(TIMEOUT_ENV, "soon")
    with pytest.raises(DrlocalError, match=f"{TIMEOUT_ENV}='soon' is not a time limit"):
        load_reward_function()
    monkeypatch.delenv(TIMEOUT_ENV)
    assert load_reward_function(timeout_s=0).timeout_s is None


def test_per_call_overhead_stays_small(params: dict) -> None:
    limited, bare = load_reward_function(lambda p: 1.0, timeout_s=1.0), load_reward_function(lambda p: 1.0, timeout_s=0)
    n = 20_000
    best = []
    for fn in (limited, bare):
        t0 = time.perf_counter()
        for _ in range(n):
            fn(params)
        best.append((time.perf_counter() - t0) / n)
    assert best[0] - best[1] < 30e-6  # measured ~2.3 µs; generous for busy CI machines


def test_a_slow_reward_is_reported_once(tmp_path: Path, params: dict) -> None:
    fn = load_reward_function(write(tmp_path / "r.py", SLEEPY.format(seconds=0.006)))
    told: list[str] = []
    fn.on_warning = told.append
    for _ in range(40):
        fn(params)
    assert len(told) == 1 and "ms per call on average" in told[0] and "steps/s" in told[0]
    fast = load_reward_function()
    fast.on_warning = told.append
    for _ in range(300):
        fast(params)
    assert len(told) == 1 and fast.slow_warning() is None


def test_reward_test_command_stops_on_a_hung_reward(tmp_path: Path) -> None:
    write(tmp_path / "hang.py", HANG)
    t0 = time.perf_counter()
    r = drlocal("reward", "test", "hang.py", "--spacing", "1", cwd=tmp_path, env={TIMEOUT_ENV: "0.3"})
    assert time.perf_counter() - t0 < 60
    assert_input_error(r, "hang.py, line", "limit of 0.3 s per call", "params: x=", TIMEOUT_ENV)
    assert r.stderr.count("error:") == 1


def test_reward_test_command_warns_about_a_slow_reward(tmp_path: Path) -> None:
    write(tmp_path / "slow.py", SLEEPY.format(seconds=0.008))
    r = drlocal("reward", "test", "slow.py", "--spacing", "3", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    flat = " ".join(r.stdout.split())
    assert flat.count("warning:") == 1 and "ms per call on average" in flat and "steps/s" in flat, flat


# ----- failures in the middle of a training run -----


def _snapshot(model: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(model.iterdir()) if p.is_file()}


@pytest.mark.parametrize("mode", ["hang", "raise"])
def test_a_reward_failing_mid_run_keeps_the_last_checkpoint_and_resume_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str,
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "0.3")
    root = small_job(tmp_path)
    reward = root / "custom_files" / "reward_function.py"
    write(reward, COUNTING.format(mode=mode))
    job = load_job(root, environ={})
    store = ModelStore(root / "data" / "bucket" / "rl-deepracer-sagemaker")
    snapshots: dict[str, dict[str, bytes]] = {}
    trainer: Trainer | None = None

    def after_iteration(report: object) -> None:
        # iteration 1 is checkpointed: from now on the reward fails 5 calls later (a rare failure mid-run)
        assert trainer is not None
        module = trainer.env.reward_fn.fn.__globals__
        module["FAIL_AT"] = module["CALLS"] + 5
        snapshots["model"] = _snapshot(store.model_dir)
        snapshots["metrics"] = {"m": (store.metrics_dir / "TrainingMetrics.json").read_bytes()}

    trainer = Trainer(job, max_iterations=3, seed=1, on_iteration=after_iteration)
    error = RewardTimeoutError if mode == "hang" else RewardFunctionError
    t0 = time.perf_counter()
    with pytest.raises(error) as info:
        trainer.train()
    assert time.perf_counter() - t0 < 120
    text = " ".join(str(info.value).split())
    assert text.startswith(f"{reward}, line "), text
    assert "params: x=" in text and "training stopped in iteration 2; checkpoint 1" in text
    assert "`drlocal train --resume` continues from checkpoint 1" in text
    assert ("limit of 0.3 s per call" in text) if mode == "hang" else ("ZeroDivisionError" in text)

    # the last finished iteration is intact: every file of model/ as it was after iteration 1, nothing half-written
    assert _snapshot(store.model_dir) == snapshots["model"]
    assert not list(store.root.rglob("*.tmp"))
    last = store.load_checkpoint("last")
    assert last["name"].startswith("1_Step-") and last["trainer"]["iteration"] == 1
    assert json.loads((store.model_dir / "deepracer_checkpoints.json").read_text())["last_checkpoint"]["name"] == \
        last["name"]

    # fixed (a fresh load of the file has FAIL_AT None): --resume continues from checkpoint 1
    resumed = Trainer(load_job(root, environ={}), resume=True, max_iterations=2, seed=1)
    state = resumed.train()
    assert state.iteration == 2 and state.checkpoint == 2
    assert [c.number for c in store.checkpoints()] == [0, 1, 2]
    metrics = json.loads((store.metrics_dir / "TrainingMetrics.json").read_text())["metrics"]
    assert [m["episode"] for m in metrics if m["phase"] == "training"] == list(range(1, 7))


def test_a_diverged_update_never_writes_a_nan_checkpoint(tmp_path: Path) -> None:
    root = small_job(tmp_path)
    store = ModelStore(root / "data" / "bucket" / "rl-deepracer-sagemaker")
    trainer = Trainer(load_job(root, environ={}), max_iterations=3, seed=1)
    real_update = trainer.learner.update
    calls: list[int] = []

    def diverging(*args: object, **kw: object) -> object:
        out = real_update(*args, **kw)
        calls.append(1)
        if len(calls) == 2:  # the second update blows up
            with torch.no_grad():
                next(trainer.model.parameters()).fill_(float("nan"))
        return out

    trainer.learner.update = diverging  # type: ignore[method-assign]
    with pytest.raises(NonFiniteStateError) as info:
        trainer.train()
    text = " ".join(str(info.value).split())
    assert "weights became NaN/inf" in text and "checkpoint 2_Step-" in text and "was not written" in text
    last = store.load_checkpoint("last")
    assert last["name"].startswith("1_Step-")
    assert all(bool(torch.isfinite(t).all()) for t in last["model"].values() if t.is_floating_point())


def test_evaluation_stops_on_a_hung_reward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "0.2")
    root = small_job(tmp_path)
    job = load_job(root, environ={})
    Trainer(job, max_iterations=0, seed=1).train()  # checkpoint 0 only
    prefix = root / "data" / "bucket" / "rl-deepracer-sagemaker"
    write(prefix / "reward_function.py", HANG)  # what evaluation reads, as DeepRacer does
    with pytest.raises(RewardTimeoutError, match=r"limit of 0\.2 s per call"):
        evaluate(job, trials=1)


# ----- NaN states and observations -----


def test_a_nan_car_state_stops_instead_of_training_on_nan() -> None:
    env = DeepRacerVectorEnv(2, "reinvent_base")
    env.reset(seed=0)
    env.step(np.array([2, 2]))
    env.world.car.x[1] = np.nan
    with pytest.raises(NonFiniteStateError, match=r"car 1 .* the car's state is not finite \(x=nan"):
        env.step(np.array([2, 2]))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_a_state_that_becomes_nan_is_caught_where_it_happens() -> None:
    track = load_track("reinvent_base")
    w = World(track, 2, car_params=CarParams(steer_tau=-1e-5))  # a broken car model: exp(h/|τ|) overflows
    w.step(np.array([1.0, 1.0]), np.array([0.0, 0.0]))  # PREPARE: no physics yet
    before = w.car.x.copy()
    with pytest.raises(NonFiniteStateError, match=r"car 0 .* state is not finite .* after a step from x="):
        w.step(np.array([1.0, 1.0]), np.array([0.0, 0.0]))
    assert np.array_equal(w.car.x, before) and np.isfinite(w.car.steer).all()  # the NaN state was not committed


def test_a_nan_lidar_reading_is_an_error() -> None:
    meta = {"action_space": [{"steering_angle": 0, "speed": 1}], "sensor": ["FRONT_FACING_CAMERA", "LIDAR"],
            "version": "5"}
    from drlocal.config.model_metadata import load_model_metadata

    track = load_track("reinvent_base")
    builder = ObservationBuilder(load_model_metadata(meta), track)
    x, y = track.waypoints[0]
    obs = builder.observe(np.array([x, x]), np.array([y, y]), np.zeros(2))
    assert np.isfinite(obs["LIDAR"]).all()
    with pytest.raises(NonFiniteStateError, match=r"cannot observe car 1: its pose is not finite \(x=nan"):
        builder.observe(np.array([x, np.nan]), np.array([y, y]), np.zeros(2))  # (NaN used to crash the camera)
    with pytest.raises(ValueError, match="camera poses must be finite"):
        builder.camera.render(np.array([x]), np.array([y]), np.array([np.nan]))


def test_a_nan_sensor_reading_is_an_error() -> None:
    from drlocal.env.observations import _check_finite

    z = np.zeros(3)
    _check_finite(np.ones((3, 8), np.float32), "SECTOR_LIDAR", z, z, z)
    reading = np.ones((3, 8), np.float32)
    reading[2, 5] = np.nan
    with pytest.raises(NonFiniteStateError, match="SECTOR_LIDAR observation of car 2 holds NaN/inf"):
        _check_finite(reading, "SECTOR_LIDAR", z, z, z)
