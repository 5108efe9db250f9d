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


def test_render_and_reward_test_with_objects(tmp_path: Path) -> None:
    r = drlocal("render", "--race-type", "OBJECT_AVOIDANCE", "--objects", "3", "--at", "0.0", "--out", "oa.png",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert png_size(tmp_path / "oa.png")[0] > 600
    avoid = tmp_path / "avoid.py"
    avoid.write_text("def reward_function(params):\n    if params['is_crashed']:\n        return 0.001\n"
                     "    nxt = params['closest_objects'][1]\n"
                     "    same = params['objects_left_of_center'][nxt] == params['is_left_of_center']\n"
                     "    return 0.5 if same else 1.0\n")
    r = drlocal("reward", "test", str(avoid), "--race-type", "object_avoidance", "--out", "heat.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = {ln.split("│")[1].strip(): ln for ln in r.stdout.splitlines() if ln.count("│") >= 5}
    assert {"object ahead, same lane", "object ahead, other lane", "touching an object"} <= set(rows)
    mean = {k: float(v.split("│")[4]) for k, v in rows.items()}
    assert mean["touching an object"] == pytest.approx(0.001, abs=1e-4)  # every touching pose is a crash
    # (with DRfC's 6 boxes on alternating lanes a few of these poses also have another box just ahead)
    assert mean["object ahead, same lane"] < 0.6 and mean["object ahead, other lane"] > 0.8
    bad = drlocal("render", "--race-type", "DRAG_RACE", cwd=tmp_path)
    assert bad.returncode == 1 and "unknown --race-type" in bad.stderr and "Traceback" not in bad.stderr


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


# ----- every input error is one "error: … / fix: …" message with exit status 1, never a traceback -----


def assert_input_error(r: subprocess.CompletedProcess, *fragments: str, fix: bool = True) -> None:
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "Traceback" not in out
    flat = " ".join(r.stderr.split())  # rich wraps long lines
    assert flat.startswith("error: ") and (" fix: " in flat or not fix), flat
    for f in fragments:
        assert f in flat, (f, flat)


@pytest.fixture(scope="module")
def trained_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DRfC folder whose model has checkpoint 0 only (`train --iterations 0` trains no iteration)."""
    cwd = tmp_path_factory.mktemp("cli")
    assert drlocal("init", "job", cwd=cwd).returncode == 0
    r = drlocal("train", "--dir", "job", "--iterations", "0", "--plain", cwd=cwd)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "up to 0 iterations" in r.stdout and "iter 1/" not in r.stdout
    model = cwd / "job" / "data" / "bucket" / "rl-deepracer-sagemaker" / "model"
    assert sorted(p.name for p in model.glob("*.ckpt.pt")) == ["0_Step-0.ckpt.pt"]
    (cwd / "afile").write_text("not a folder\n")
    return cwd


def test_render_input_errors(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    assert_input_error(drlocal("render", "--camera", "foo", cwd=tmp_path),
                       "unknown --camera 'foo'", "front, left or stereo")
    assert_input_error(drlocal("render", "--at", "2", cwd=tmp_path), "--at 2.0 is outside the lap", "between 0 and 1")
    assert_input_error(drlocal("render", "--at", "-0.1", cwd=tmp_path), "--at -0.1 is outside the lap")
    assert_input_error(drlocal("render", "--track", "reinvent_bse", cwd=tmp_path), "Unknown track 'reinvent_bse'")
    assert_input_error(drlocal("render", "--out", "afile/view.png", cwd=tmp_path),
                       "--out afile/view.png", "afile is a file, not a folder")
    assert not (tmp_path / "view.png").exists()
    r = drlocal("render", "--camera", "STEREO_CAMERAS", "--out", "new/dir/view.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr  # the sensor names work too, and the output folder is created
    assert png_size(tmp_path / "new" / "dir" / "view.png")[0] > 900  # two camera views and the map


def test_tracks_input_errors(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    assert_input_error(drlocal("tracks", "show", "nope", cwd=tmp_path), "Unknown track 'nope'")
    assert_input_error(drlocal("tracks", "show", "reinvent_base", "--out", "afile/map.png", cwd=tmp_path),
                       "afile is a file, not a folder")


def test_reward_test_input_errors(tmp_path: Path) -> None:
    for bad in ("0", "-1", "nan"):
        r = drlocal("reward", "test", str(EXAMPLE), "--spacing", bad, cwd=tmp_path)
        assert_input_error(r, f"--spacing {float(bad)} is out of range", "above 0")
    assert_input_error(drlocal("reward", "test", str(EXAMPLE), "--track", "nope", cwd=tmp_path),
                       "Unknown track 'nope'")
    assert_input_error(drlocal("reward", "test", "missing.py", cwd=tmp_path),
                       "missing.py: reward function file not found")
    assert not (tmp_path / "reward_heatmap.png").exists()


def test_demo_input_errors(tmp_path: Path) -> None:
    assert_input_error(drlocal("demo", "--cars", "0", cwd=tmp_path), "--cars 0 is out of range", "1 or more")
    assert_input_error(drlocal("demo", "--cars", "-1", cwd=tmp_path), "--cars -1 is out of range")
    for bad in ("0", "-1.5", "nan"):
        assert_input_error(drlocal("demo", "--speed", bad, cwd=tmp_path), f"--speed {float(bad)} is out of range")
    assert_input_error(drlocal("demo", "--track", "nope", cwd=tmp_path), "Unknown track 'nope'")
    assert_input_error(drlocal("demo", "-r", "missing.py", cwd=tmp_path), "reward function file not found")


def test_demo_no_longer_says_training_is_missing(tmp_path: Path) -> None:
    r = drlocal("demo", "--cars", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "not implemented" not in text.lower()
    assert "drlocal train --dir DIR" in text


def test_train_input_errors(tmp_path: Path) -> None:
    assert drlocal("init", "job", cwd=tmp_path).returncode == 0
    assert_input_error(drlocal("train", "--dir", "job", "--iterations", "-1", cwd=tmp_path),
                       "--iterations -1 is negative", "use 0 or more")
    assert_input_error(drlocal("train", "--dir", "job", "--minutes", "-2", cwd=tmp_path), "--minutes -2.0 is negative")
    assert_input_error(drlocal("train", "--dir", "job", "--minutes", "nan", cwd=tmp_path),
                       "--minutes nan is not a number")
    assert_input_error(drlocal("train", "--dir", "job", "--seed", "-1", cwd=tmp_path),
                       "--seed -1 is out of range", "from 0 to 4294967295")
    assert_input_error(drlocal("train", "--dir", "missing", cwd=tmp_path), "missing: no such folder")
    r = drlocal("train", "--dir", "job", "--iterations", "two", cwd=tmp_path)  # not a number: typer's usage error
    assert r.returncode == 2 and "Traceback" not in r.stderr and "Invalid value for '--iterations'" in r.stderr
    assert not (tmp_path / "job" / "data" / "bucket" / "rl-deepracer-sagemaker").exists()  # nothing trained


def test_evaluate_input_errors(trained_folder: Path) -> None:
    cwd = trained_folder
    for bad in ("foo", "-1"):
        assert_input_error(drlocal("evaluate", "--dir", "job", "--checkpoint", bad, cwd=cwd),
                           f"unknown checkpoint '{bad}'", "best, last or a checkpoint number")
    # the store's message names the checkpoints there are, without a "fix:" line (store/local.py)
    assert_input_error(drlocal("evaluate", "--dir", "job", "--checkpoint", "7", cwd=cwd), "no checkpoint 7 (have 0)",
                       fix=False)
    for bad in ("0", "-1", "1001"):
        assert_input_error(drlocal("evaluate", "--dir", "job", "--trials", bad, cwd=cwd),
                           f"--trials {bad} is out of range", "1 to 1000")
    assert_input_error(drlocal("evaluate", "--dir", "job", "--track", "nope", cwd=cwd), "Unknown track 'nope'")
    assert_input_error(drlocal("evaluate", "--dir", "job", "--prefix", "nope", cwd=cwd), "nope/model: no checkpoints")


def test_export_input_errors(trained_folder: Path) -> None:
    cwd = trained_folder
    assert_input_error(drlocal("export", "--dir", "job", "--format", "tflite", cwd=cwd),
                       "unknown --format 'tflite'", "car, onnx, droa or all")
    for bad in ("foo", "-1"):
        assert_input_error(drlocal("export", "--dir", "job", "--checkpoint", bad, cwd=cwd),
                           f"unknown checkpoint '{bad}'")
    assert_input_error(drlocal("export", "--dir", "job", "--out", "afile", cwd=cwd), "--out afile is a file")
    assert_input_error(drlocal("export", "--dir", "job", "--out", "afile/car", cwd=cwd),
                       "afile is a file, not a folder")


def test_increment_input_errors(trained_folder: Path) -> None:
    cwd = trained_folder
    before = (cwd / "job" / "run.env").read_text()
    for bad in ("foo", "-1"):
        assert_input_error(drlocal("increment", "--dir", "job", "--checkpoint", bad, cwd=cwd),
                           f"unknown checkpoint '{bad}'")
    assert (cwd / "job" / "run.env").read_text() == before


def test_import_input_errors(trained_folder: Path) -> None:
    cwd = trained_folder
    model = "job/data/bucket/rl-deepracer-sagemaker"
    for bad in ("foo", "-1"):
        assert_input_error(drlocal("import", model, "--dir", "job", "--checkpoint", bad, "--prefix", "copy", cwd=cwd),
                           f"unknown checkpoint '{bad}'")
    assert_input_error(drlocal("import", "missing.tar.gz", "--dir", "job", cwd=cwd), "missing.tar.gz: no such file")
    assert_input_error(drlocal("import", model, "--dir", "job", "--metadata", "nope.json", "--prefix", "copy", cwd=cwd),
                       "nope.json: no such file", "leave out --metadata")
    assert not (cwd / "job" / "data" / "bucket" / "copy" / "model").exists()


def test_init_input_errors(tmp_path: Path) -> None:
    assert drlocal("init", "job", cwd=tmp_path).returncode == 0
    assert_input_error(drlocal("init", "job", cwd=tmp_path), "already has system.env", "--force")


def test_store_commands_input_errors(trained_folder: Path) -> None:
    cwd = trained_folder
    assert_input_error(drlocal("upload", "--dir", "job", "--local", "--dry-run", "--checkpoint", "foo", cwd=cwd))
    assert_input_error(drlocal("download", "--dir", "job", "--source", "foo", "--target", "x", cwd=cwd), "foo")
    assert_input_error(drlocal("custom-files", "sideways", "--dir", "job", cwd=cwd), "sideways")


def test_the_command_line_starts_without_torch() -> None:
    """`drlocal --help` and every argument check answer in well under a second: the CLI module does not import
    torch (or Ray); commands import what they need when they run."""
    code = "import sys, drlocal.cli; print(sorted(m for m in ('torch', 'ray', 'tensorflow') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGUSR1"), reason="POSIX signal")
def test_sigusr1_prints_every_threads_stack_and_the_run_goes_on() -> None:
    """`kill -USR1 <pid>` on a drlocal process: the stacks of all its threads on stderr, then it carries on."""
    code = (
        "import os, signal, threading, time\n"
        "from drlocal.cli import _stacks_on_sigusr1\n"
        "_stacks_on_sigusr1()\n"
        "def uploader_like():\n    time.sleep(5)\n"
        "threading.Thread(target=uploader_like, name='drlocal-upload', daemon=True).start()\n"
        "time.sleep(0.2)\n"
        "os.kill(os.getpid(), signal.SIGUSR1)\n"
        "time.sleep(0.2)\n"
        "print('still running')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "still running"
    assert "Current thread" in res.stderr and "uploader_like" in res.stderr  # the main thread and the other one
