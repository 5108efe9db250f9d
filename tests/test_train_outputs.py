"""What `drlocal train` leaves for people to look at: the refreshed HTML report and TensorBoard scalars."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from tensorboardX.proto.event_pb2 import Event

from test_cli import drlocal
from test_train import small_job


def read_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the TensorBoard event files in `folder` (TFRecord framing: length, crc, data, crc)."""
    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        i = 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i:i + 8])
            ev = Event.FromString(data[i + 12:i + 12 + n])
            i += 12 + n + 4
            for v in ev.summary.value:
                out.setdefault(v.tag, []).append((ev.step, v.simple_value))
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = small_job(tmp_path_factory.mktemp("outputs"))
    r = drlocal("train", "--iterations", "2", "--plain", "--tensorboard", "tb", cwd=root)
    assert r.returncode == 0, r.stdout + r.stderr
    return root, r.stdout


def test_training_writes_tensorboard_scalars_per_iteration(trained: tuple[Path, str]) -> None:
    root, out = trained
    scalars = read_scalars(root / "tb")
    for tag in ("training/reward", "training/progress", "evaluation/progress", "learner/entropy",
                "learner/policy_loss", "learner/value_loss", "learner/kl", "speed/steps_per_s"):
        assert [step for step, _ in scalars[tag]] == [1, 2], tag
    # the values are the iteration line's (rounded there to one decimal)
    lines = [line for line in out.splitlines() if line.startswith("iter ")]
    for (step, reward), line in zip(scalars["training/reward"], lines, strict=True):
        assert f"iter {step}/2" in line and f"reward {reward:.1f}" in line
    assert all(v >= 0.0 for _, v in scalars["learner/kl"])  # r − 1 − log r ≥ 0
    assert all(v > 0.0 for _, v in scalars["learner/entropy"])  # 5 actions, far from greedy after 2 iterations


def test_training_refreshes_the_report_and_says_where_it_is(trained: tuple[Path, str]) -> None:
    root, out = trained
    index = root / "data" / "bucket" / "rl-deepracer-sagemaker" / "report" / "index.html"
    assert f"report: {index.relative_to(root)}" in out
    html = index.read_text()
    assert "Reward graph" in html and "reward_graph.png" in html
    assert (index.parent / "reward_graph.png").stat().st_size > 5_000


def test_no_report_writes_none(tmp_path: Path) -> None:
    root = small_job(tmp_path)
    r = drlocal("train", "--iterations", "0", "--plain", "--no-report", cwd=root)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (root / "data" / "bucket" / "rl-deepracer-sagemaker" / "report").exists()
