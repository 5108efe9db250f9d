"""A full disk and a read-only folder: the write fails with one message naming the file, the previous files stay
intact, nothing half-written is visible, and training resumes once there is room.

Real small file systems: a tmpfs mounted for the test (`mount -t tmpfs -o size=…`), filled up, or remounted
read-only. Tests run as root, where chmod does not stop writes, so a read-only folder is a read-only mount
(and, when the `setpriv` tool is there, a chmod-ed folder written by an unprivileged user).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from drlocal.config.workdir import load_job
from drlocal.errors import DrlocalError
from drlocal.learn.trainer import Trainer
from drlocal.store.local import CheckpointName, ModelStore, StoreWriteError, atomic_write_bytes, atomic_write_json
from drlocal.store.logs import SIMTRACE_COLUMNS, SimtraceWriter, TrainingMetrics
from test_train import small_job

Mount = Callable[..., Path]


@pytest.fixture
def small_fs() -> Iterator[Mount]:
    """mount(path, size) mounts a fresh tmpfs there; unmounted after the test. Skips where mounting is not allowed."""
    mounted: list[Path] = []

    def mount(path: Path, size: str = "4m") -> Path:
        path.mkdir(parents=True, exist_ok=True)
        if sys.platform != "linux" or shutil.which("mount") is None:
            pytest.skip("needs Linux and mount(8) to make a small file system")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"mounting a tmpfs is not permitted here ({r.stderr.strip() or r.returncode}); "
                        "the full-disk tests need root in a system that allows mounts")
        mounted.append(path)
        return path

    yield mount
    for p in reversed(mounted):
        subprocess.run(["umount", "-l", str(p)], capture_output=True)


def fill(folder: Path, leave: int = 0) -> Path:
    """Fill the file system of `folder` up, leaving about `leave` bytes; returns the filler file."""
    filler = folder / "filler.bin"
    chunk = b"\0" * 65536
    with filler.open("wb") as f:
        try:
            while True:
                st = os.statvfs(folder)
                free = st.f_bavail * st.f_frsize
                if free <= leave + len(chunk):
                    if free > leave:
                        f.write(b"\0" * (free - leave))
                    f.flush()
                    break
                f.write(chunk)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def remount_ro(path: Path) -> None:
    r = subprocess.run(["mount", "-o", "remount,ro", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"remounting read-only is not permitted here ({r.stderr.strip()})")


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file() and p.name != "filler.bin")


def test_a_full_disk_keeps_the_previous_file(tmp_path: Path, small_fs: Mount) -> None:
    d = small_fs(tmp_path / "fs")
    target = d / "run" / "TrainingMetrics.json"
    atomic_write_json(target, {"metrics": [1, 2, 3]})
    before = target.read_bytes()
    fill(d)
    with pytest.raises(StoreWriteError) as info:
        atomic_write_bytes(target, b"x" * 1_000_000)
    e = info.value
    assert isinstance(e, DrlocalError) and isinstance(e, OSError) and e.errno == errno.ENOSPC
    assert e.filename == str(target)
    text = str(e)
    assert text.startswith(f"could not write {target} (1.00 MB): No space left on device [ENOSPC]"), text
    assert "the previous TrainingMetrics.json is unchanged and no partial file is left" in text
    assert "fix: free space on that disk (or move the run to a larger one), then run the command again." in text
    assert target.read_bytes() == before and visible(d) == ["TrainingMetrics.json"]  # no temp file left behind

    new = d / "run" / "new.json"
    with pytest.raises(StoreWriteError, match=r"new\.json was not created"):
        atomic_write_bytes(new, b"y" * 200_000)
    assert not new.exists() and visible(d) == ["TrainingMetrics.json"]


def test_checkpoint_and_metrics_on_a_full_disk(tmp_path: Path, small_fs: Mount) -> None:
    d = small_fs(tmp_path / "fs", "8m")
    store = ModelStore(d / "prefix")
    weights = {"w": torch.zeros(100_000)}  # 400 kB
    store.save_checkpoint(CheckpointName(0, 0), {"model": weights}, None)
    store.write_checkpoints_json(None, {"name": "0_Step-0.ckpt", "avg_eval_metric": 0.0, "time_stamp": 0.0})
    metrics = TrainingMetrics(store.metrics_dir / "TrainingMetrics.json")
    metrics.add(episode=1, trial=1, phase="training", reward=1.0, progress=5.0, status="off_track", start_ms=0,
                end_ms=10)
    metrics.save()
    before = {name: (store.root / name).read_bytes() for name in
              ("model/0_Step-0.ckpt.pt", "model/.coach_checkpoint", "model/deepracer_checkpoints.json",
               "metrics/TrainingMetrics.json")}
    fill(d, leave=100_000)

    with pytest.raises(StoreWriteError, match=r"1_Step-50\.ckpt\.pt \(0\.40 MB\): No space left on device"):
        store.save_checkpoint(CheckpointName(1, 50), {"model": weights}, None)
    metrics.entries *= 2000  # ~400 kB of JSON
    with pytest.raises(StoreWriteError, match=r"TrainingMetrics\.json .*No space left"):
        metrics.save()

    assert {name: (store.root / name).read_bytes() for name in before} == before
    assert store.checkpoints() == [CheckpointName(0, 0)] and store.load_checkpoint("last")["name"] == "0_Step-0.ckpt"
    assert json.loads((store.metrics_dir / "TrainingMetrics.json").read_text())["metrics"][0]["episode"] == 1
    assert not [n for n in visible(d) if n.endswith(".tmp")]


def test_simtrace_on_a_full_disk(tmp_path: Path, small_fs: Mount) -> None:
    d = small_fs(tmp_path / "fs")
    writer = SimtraceWriter(d / "training-simtrace" / "0-iteration.csv")
    fill(d)
    with pytest.raises(StoreWriteError) as info:  # buffered: the error comes at the latest on close
        writer.write_lines([",".join("1" for _ in SIMTRACE_COLUMNS) + "\n"] * 20_000)
        writer.close()
    text = str(info.value)
    assert "0-iteration.csv" in text and "No space left on device" in text and "is incomplete" in text, text


def test_a_read_only_folder(tmp_path: Path, small_fs: Mount) -> None:
    d = small_fs(tmp_path / "fs")
    target = d / "model" / "deepracer_checkpoints.json"
    atomic_write_json(target, {"last_checkpoint": {"name": "3_Step-9.ckpt"}})
    remount_ro(d)
    with pytest.raises(StoreWriteError) as info:
        atomic_write_json(target, {"last_checkpoint": {"name": "4_Step-12.ckpt"}})
    assert info.value.errno == errno.EROFS
    text = str(info.value)
    assert f"could not write {target}" in text and "Read-only file system [EROFS]" in text
    assert "read-only file system: remount it read-write" in text
    assert json.loads(target.read_text())["last_checkpoint"]["name"] == "3_Step-9.ckpt"
    with pytest.raises(StoreWriteError, match="Read-only file system"):  # a folder that does not exist yet
        atomic_write_bytes(d / "metrics" / "TrainingMetrics.json", b"{}")


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv(1) to write as an unprivileged user")
def test_a_folder_without_write_permission() -> None:
    base = Path(tempfile.mkdtemp(prefix="drlocal-perm-"))  # not under pytest's tmp (0700: closed to other users)
    try:
        base.chmod(0o755)
        folder = base / "model"
        folder.mkdir()
        (folder / ".coach_checkpoint").write_text("2_Step-5.ckpt\n")
        folder.chmod(0o555)
        cache = base / "numba-cache"  # importing drlocal compiles numba kernels; their cache must be writable
        cache.mkdir()
        cache.chmod(0o777)
        code = ("import sys; from pathlib import Path; from drlocal.store.local import atomic_write_text\n"
                "try:\n    atomic_write_text(Path(sys.argv[1]) / '.coach_checkpoint', '3_Step-9.ckpt\\n')\n"
                "except OSError as e:\n    print(type(e).__name__, e.errno); print(e)\n")
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code,
                            str(folder)], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "NUMBA_CACHE_DIR": str(cache), "HOME": str(cache)})
        if r.returncode != 0 and not r.stdout:
            pytest.skip(f"an unprivileged user cannot run drlocal here: {r.stderr.strip()[-300:]}")
        assert r.stdout.startswith(f"StoreWriteError {errno.EACCES}"), r.stdout + r.stderr
        assert "Permission denied [EACCES]" in r.stdout and "fix its permissions" in r.stdout
        assert (folder / ".coach_checkpoint").read_text() == "2_Step-5.ckpt\n"
        assert sorted(p.name for p in folder.iterdir()) == [".coach_checkpoint"]
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_training_on_a_full_disk_stops_cleanly_and_resumes(tmp_path: Path, small_fs: Mount) -> None:
    root = small_job(tmp_path)
    data = small_fs(root / "data", "320m")  # checkpoints of the tiny job are ~47 MB, .optimizer.pt ~93 MB (x2 briefly)
    Trainer(load_job(root, environ={}), max_iterations=1, seed=1).train()
    store = ModelStore(data / "bucket" / "rl-deepracer-sagemaker")
    before = {p.name: p.read_bytes() for p in store.model_dir.iterdir()}
    metrics_before = json.loads((store.metrics_dir / "TrainingMetrics.json").read_text())["metrics"]
    filler = fill(data, leave=2_000_000)  # room for the simtrace and metrics of iteration 2, not for its checkpoint

    with pytest.raises(StoreWriteError) as info:
        Trainer(load_job(root, environ={}), resume=True, max_iterations=3, seed=1).train()
    text = " ".join(str(info.value).split())
    assert "could not write" in text and "2_Step-" in text and "No space left on device" in text, text
    assert "training stopped in iteration 2; checkpoint 1" in text and "--resume` continues from checkpoint 1" in text
    assert {p.name: p.read_bytes() for p in store.model_dir.iterdir()} == before  # checkpoint 1, pointers intact
    assert store.load_checkpoint("last")["name"].startswith("1_Step-")

    filler.unlink()  # room again: resume continues from checkpoint 1
    state = Trainer(load_job(root, environ={}), resume=True, max_iterations=2, seed=1).train()
    assert state.iteration == 2 and [c.number for c in store.checkpoints()] == [0, 1, 2]
    metrics = json.loads((store.metrics_dir / "TrainingMetrics.json").read_text())["metrics"]
    assert metrics[: len(metrics_before)] == metrics_before
    assert [m["episode"] for m in metrics if m["phase"] == "training"] == list(range(1, 7))
