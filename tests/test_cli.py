"""The drlocal command line, run as a user runs it (a real subprocess of the installed entry point)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[1] / "examples" / "reward_function.py"


def drlocal(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "drlocal.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", **(env or {})},
    )


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_tracks_lists_all_with_numbers(tmp_path: Path) -> None:
    r = drlocal("tracks", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "127 tracks" in r.stdout
    line = next(ln for ln in r.stdout.splitlines() if " reinvent_base " in ln)
    assert "17.71" in line and "0.762" in line and "ccw" in line


def test_tracks_show_writes_png(tmp_path: Path) -> None:
    r = drlocal("tracks", "show", "reInvent2019_track", "--out", "map.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    w, h = png_size(tmp_path / "map.png")
    assert w > 500 and h > 400


def test_unknown_track_is_one_clear_error(tmp_path: Path) -> None:
    r = drlocal("tracks", "show", "reinvent_bse", cwd=tmp_path)
    assert r.returncode == 1
    assert "Unknown track 'reinvent_bse'" in r.stderr and "reinvent_base" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_reward_test_summarises_and_maps(tmp_path: Path) -> None:
    r = drlocal("reward", "test", str(EXAMPLE), "--track", "reinvent_base", "--out", "heat.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = {ln.split("│")[1].strip(): ln for ln in r.stdout.splitlines() if ln.count("│") >= 5}
    # the example pays 1e-3 off track and up to 1.0 on the centre line
    assert "0.001" in rows["off track left"]
    assert rows["centre"].rstrip("│ ").endswith("1")
    assert "no errors" in r.stdout
    png_size(tmp_path / "heat.png")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("def reward_function(params):\n    return 1.0 / params['distance_from_center']\n", "line 2"),
        ("def reward_function(params):\n    if params['is_offtrack']:\n        return float('nan')\n    return 1.0\n",
         "returned nan"),
        ("def reward_function(params)\n    return 1.0\n", "SyntaxError"),
    ],
)
def test_reward_test_catches_broken_functions(tmp_path: Path, body: str, fragment: str) -> None:
    f = tmp_path / "reward_function.py"
    f.write_text(body)
    r = drlocal("reward", "test", str(f), cwd=tmp_path)
    assert r.returncode == 1
    assert str(f) in r.stderr.replace("\n", "") and fragment in r.stderr
    assert "Traceback" not in r.stderr


def test_demo_laps_reinvent_base(tmp_path: Path) -> None:
    r = drlocal("demo", "--cars", "2", "--speed", "1.5", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("lap_complete") == 2


def test_render_writes_camera_view(tmp_path: Path) -> None:
    r = drlocal("render", "--track", "reinvent_base", "--at", "0.3", "--out", "view.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    w, h = png_size(tmp_path / "view.png")
    assert w > 600 and h > 250
    bad = drlocal("render", "--at", "1.5", cwd=tmp_path)
    assert bad.returncode == 1 and "outside the lap" in bad.stderr


def test_init_then_invalid_setting_is_reported(tmp_path: Path) -> None:
    assert drlocal("init", "job", cwd=tmp_path).returncode == 0
    with (tmp_path / "job" / "run.env").open("a") as f:
        f.write("DR_TRAIN_BEST_MODEL_METRIC=speed\n")
    r = drlocal("train", "--dir", "job", cwd=tmp_path)
    assert r.returncode == 1 and "DR_TRAIN_BEST_MODEL_METRIC='speed'" in r.stderr
    assert "Traceback" not in r.stderr


def test_run_env_wins_over_a_stale_shell_export(tmp_path: Path) -> None:
    """As in DRfC (dr-update-env re-exports the files): the edited run.env counts, not the old export."""
    assert drlocal("init", "job", cwd=tmp_path).returncode == 0
    with (tmp_path / "job" / "run.env").open("a") as f:
        f.write("DR_TRAIN_BEST_MODEL_METRIC=speed\n")
    shell = {"DR_TRAIN_BEST_MODEL_METRIC": "progress", "DR_LOCAL_SECRET_ACCESS_KEY": "s3cr3t-value"}
    r = drlocal("train", "--dir", "job", cwd=tmp_path, env=shell)
    assert r.returncode == 1 and "DR_TRAIN_BEST_MODEL_METRIC='speed'" in r.stderr
    assert "s3cr3t-value" not in r.stderr + r.stdout and "Traceback" not in r.stderr


def test_missing_experiment_is_one_clear_error(tmp_path: Path) -> None:
    assert drlocal("init", "job", cwd=tmp_path).returncode == 0
    r = drlocal("train", "--dir", "job", cwd=tmp_path, env={"DR_EXPERIMENT_NAME": "sprint-v1"})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    flat = " ".join(r.stderr.split())
    assert "experiment 'sprint-v1' (from environment)" in flat and "experiments does not exist" in flat
