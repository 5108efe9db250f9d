"""Watching real runs: the trainer's and evaluator's watch hooks, evaluation MP4s, replays, the live frame hub."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from drlocal.config.workdir import load_job
from drlocal.learn.evaluate import evaluate
from drlocal.learn.trainer import Trainer
from drlocal.learn.watch import Watches
from drlocal.sim.episode import LAP_COMPLETE, World
from drlocal.tracks import load_track
from drlocal.view import hub as hub_module
from drlocal.view.hub import FrameHub
from drlocal.view.progress import IterationProgress
from drlocal.view.replay import Episode, Replayer, ghost_delta, read_episodes
from drlocal.view.video import probe
from test_cli import assert_input_error, drlocal
from test_train import small_job


class Counting:
    """A watch that remembers what the loops told it."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, int]] = []
        self.steps: list[int] = []  # active cars per step of the current batch
        self.ended = 0
        self.fields: dict = {}

    def begin(self, world, *, phase, evaluation=False):
        self.batches.append((phase, world.n))
        self.steps.append(0)

    def step(self, world, res, speed, steer, active):
        self.steps[-1] += int(np.count_nonzero(active))

    def end(self):
        self.ended += 1

    def status(self, **fields):
        self.fields.update(fields)


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Counting]:
    root = small_job(tmp_path_factory.mktemp("view"))
    with (root / "run.env").open("a") as f:
        f.write("DR_EVAL_MAX_RESETS=0\n")  # evaluations end at the first off-track: short videos, fast tests
    watch = Counting()
    terminal = Console(file=io.StringIO(), force_terminal=True, width=150)
    with IterationProgress(terminal) as bar:
        Trainer(load_job(root, environ={}), max_iterations=1, seed=3, watch=Watches(watch, bar)).train()
    watch.terminal = terminal.file.getvalue()  # type: ignore[attr-defined]
    return root, watch


def test_the_progress_bar_counts_the_iterations_episodes(run: tuple[Path, Counting]) -> None:
    _, watch = run
    out = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", watch.terminal)  # type: ignore[attr-defined]  # no colour codes
    assert "iteration 1" in out and "3/3 episodes" in out and "evaluating" in out


def prefix(root: Path) -> Path:
    return root / "data" / "bucket" / "rl-deepracer-sagemaker"


def test_the_trainer_reports_every_step_of_every_car(run: tuple[Path, Counting]) -> None:
    root, watch = run
    # one training batch (3 cars) then the greedy evaluation (DR_TRAIN_MIN_EVAL_TRIALS=2 cars)
    assert watch.batches == [("Training", 3), ("Evaluating", 2)] and watch.ended == 2
    assert watch.steps[0] == len(rows(prefix(root) / "training-simtrace" / "0-iteration.csv"))
    assert watch.fields["iteration"] == 1 and watch.fields["checkpoint"] == 1
    assert set(watch.fields["shares"]) == {"sim", "inference", "learn"}


def test_evaluation_writes_the_three_mp4s_one_frame_per_step(run: tuple[Path, Counting]) -> None:
    root, _ = run
    res = evaluate(load_job(root, environ={}), trials=2, continuous=False, mp4=True)
    steps = len(rows(Path(res.simtrace_path)))
    videos = [Path(p) for p in res.extra["mp4"]]
    base = prefix(root) / "mp4"
    assert videos == [base / d / "0-video.mp4" for d in ("camera-pip", "camera-45degree", "camera-topview")]
    for v in videos:
        info = probe(v)
        assert (info["frames"], info["width"], info["height"], info["codec"]) == (steps, 640, 480, "h264")
        assert info["fps"] == pytest.approx(15.0)
    assert not list(base.rglob("*.tmp*"))  # nothing half-written left behind


def test_without_mp4_no_video_is_written(run: tuple[Path, Counting], tmp_path: Path) -> None:
    root, _ = run
    res = evaluate(load_job(root, environ={}), trials=1, mp4=False)
    assert res.extra["mp4"] == []


def test_replay_renders_one_frame_per_simtrace_row(run: tuple[Path, Counting], tmp_path: Path) -> None:
    root, _ = run
    trace = prefix(root) / "training-simtrace" / "0-iteration.csv"
    ep = read_episodes(trace)
    first = min(ep)
    out = tmp_path / "r.mp4"
    rp = Replayer(prefix(root), load_track("reinvent_base"), world="reinvent_base")
    n = rp.write(out, 0, first, camera="main_camera")
    assert n == len(ep[first].t) and probe(out)["frames"] == n
    assert ep[first].yaw[0] == pytest.approx(np.radians(float(rows(trace)[0]["yaw"])))


def _lap(t_total: float, n: int = 60) -> Episode:
    t = np.linspace(0.0, t_total, n)
    prog = np.linspace(1.0, 100.0, n)
    z = np.zeros(n)
    return Episode(0, z, z, z, z, z, prog, t, ["in_progress"] * (n - 1) + [LAP_COMPLETE])


def test_ghost_delta_is_the_time_behind_the_best_lap_at_the_same_progress() -> None:
    ghost = _lap(10.0)
    assert np.allclose(ghost_delta(ghost, ghost), 0.0)
    slow = _lap(12.0)  # 20 % slower everywhere: behind by 0.2 × the ghost's time at that progress
    d = ghost_delta(slow, ghost)
    assert d[-1] == pytest.approx(2.0) and d[30] == pytest.approx(0.2 * ghost.t[30], rel=1e-6)
    assert np.all(ghost_delta(ghost, slow) <= 1e-9)  # the faster car is ahead (negative)


def test_hub_renders_only_for_a_viewer_and_serves_repeats_from_its_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    track = load_track("reinvent_base")
    world = World(track, 2)
    world.reset()
    hub = FrameHub(track, world="reinvent_base")
    hub.begin(world, phase="Training")
    v0 = hub.version()  # asking for the version counts as watching from now on
    monkeypatch.setattr(hub_module, "IDLE_S", 0.0)  # nobody watches: steps publish nothing
    for _ in range(3):
        res = world.step(np.full(2, 1.0), np.zeros(2))
        hub.step(world, res, np.full(2, 1.0), np.zeros(2), np.ones(2, bool))
    assert hub.version() == v0 and hub.frames_rendered == 0
    monkeypatch.setattr(hub_module, "IDLE_S", 60.0)
    monkeypatch.setattr(hub_module, "PUBLISH_HZ", 1e9)
    res = world.step(np.full(2, 1.0), np.zeros(2))
    hub.step(world, res, np.full(2, 1.0), np.zeros(2), np.ones(2, bool))
    assert hub.version() == v0 + 1 and hub.robots() == ["0", "1"]
    a = hub.frame("1", "kvs_stream")
    assert a is not None and a.shape == (480, 640, 3) and a.dtype == np.uint8
    assert hub.frame("1", "kvs_stream") is a and hub.frames_rendered == 1  # same state: the cached frame
    with pytest.raises(KeyError):
        hub.frame("7", "kvs_stream")


def test_replay_command_errors_are_one_line(run: tuple[Path, Counting], tmp_path: Path) -> None:
    root, _ = run
    assert_input_error(drlocal("replay", cwd=root), "--iteration K")
    assert_input_error(drlocal("replay", "--iteration", "0", "--camera", "x", cwd=root), "not a camera")
    assert_input_error(drlocal("replay", "--iteration", "9", cwd=root), "iterations 0-0")
    assert_input_error(drlocal("replay", "--iteration", "0", "--episode", "99", cwd=root), "episode 99")


def test_dr_eval_save_mp4_in_run_env_makes_evaluate_write_the_videos(run: tuple[Path, Counting]) -> None:
    root, _ = run
    env = root / "run.env"
    before = env.read_text()
    try:
        env.write_text(before + "DR_EVAL_SAVE_MP4=True\nDR_EVAL_NUMBER_OF_TRIALS=1\n")
        r = drlocal("evaluate", cwd=root)
    finally:
        env.write_text(before)
    assert r.returncode == 0, r.stdout + r.stderr
    printed = [line.split("mp4: ", 1)[1].strip() for line in r.stdout.splitlines() if line.startswith("mp4: ")]
    assert [Path(p).parent.name for p in printed] == ["camera-pip", "camera-45degree", "camera-topview"]
    assert all(probe(root / p)["frames"] > 0 for p in printed)  # printed relative to the folder it ran in


def test_missing_view_extra_is_one_clear_error(run: tuple[Path, Counting], monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the `view` extra, --mp4 and --view say which extra to install (before any driving)."""
    import sys

    from drlocal.cli_view import viewer
    from drlocal.errors import DrlocalError
    from drlocal.view.record import require_video

    root, _ = run
    monkeypatch.setitem(sys.modules, "av", None)  # an import of av now raises ImportError
    with pytest.raises(DrlocalError, match="PyAV") as err:
        require_video()
    assert "drlocal[view]" in (err.value.hint or "")
    monkeypatch.delitem(sys.modules, "drlocal.view.server", raising=False)
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(DrlocalError, match="--view needs") as err, \
            viewer(load_job(root, environ={}), Console(file=io.StringIO()), enabled=True, host="127.0.0.1", port=0):
        pass
    assert "drlocal[view]" in (err.value.hint or "")
