"""The model prefix folder in DeepRacer's S3 layout (contract §9), on local disk.

    <prefix>/model/{model_metadata.json, <N>_Step-<M>.ckpt.pt, deepracer_checkpoints.json, .coach_checkpoint}
    <prefix>/ip/hyperparameters.json
    <prefix>/metrics/TrainingMetrics.json, EvaluationMetrics-<timestamp>.json
    <prefix>/training-simtrace/<K>-iteration.csv
    <prefix>/evaluation-<timestamp>/evaluation-simtrace/0-iteration.csv
    <prefix>/reward_function.py, training_params.yaml

Every file is written to a temporary name in the same folder and renamed into place, so a
crash or `kill -9` leaves either the old or the new file, never a torn one.

A checkpoint `<N>_Step-<M>.ckpt` can be on disk in three forms, and one checkpoint may have several:

* `drlocal`:      `<N>_Step-<M>.ckpt.pt`, drlocal's torch file (weights, trainer state);
* `tensorflow`:   `<N>_Step-<M>.ckpt.{index,data-00000-of-00001,meta}`, the RL-Coach TF checkpoint that
                  SageMaker / DRfC write (policy and PPO value network; reading it needs the `car` extra);
* `frozen-graph`: `model_<N>.pb`, the policy as the car runs it (parsed without TensorFlow). A `.pb`
                  alone takes its name from `deepracer_checkpoints.json` or `.coach_checkpoint` when
                  they mention N, else `<N>_Step-0`.

A DRfC / SageMaker prefix is therefore read in place: listing, best / last (DeepRacer's
`deepracer_checkpoints.json`, then `.coach_checkpoint`, then the highest number) and loading
work on every form; a foreign checkpoint is converted to drlocal's payload when loaded
(`drlocal.export.drfc`). Pruning keeps the last 4 and the best (the simapp's NUM_MODELS_TO_KEEP)
and deletes every form of the others, `model_<N>.pb` included.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from drlocal.errors import DrlocalError

NUM_MODELS_TO_KEEP = 4
_CKPT = re.compile(r"^(\d+)_Step-(\d+)\.ckpt$")
_CKPT_FILE = re.compile(r"^(\d+)_Step-(\d+)\.ckpt\.(pt|index|meta|data-\d+-of-\d+)$")
_CKPT_IN_TEXT = re.compile(r"(\d+)_Step-(\d+)\.ckpt")
_PB = re.compile(r"^model_(\d+)\.pb$")
#: the forms a checkpoint can have on disk, in the order they are preferred for loading
CHECKPOINT_FORMS = ("drlocal", "tensorflow", "frozen-graph")
TF_CHECKPOINT_SUFFIXES = (".index", ".data-00000-of-00001", ".meta")


class StoreWriteError(DrlocalError, OSError):
    """A file could not be written (disk full, read-only folder, no permission); the previous file is intact.

    Also an OSError (with `errno` and `filename`), for callers that handle those."""

    __str__ = DrlocalError.__str__


_WRITE_HINTS = {
    errno.ENOSPC: "free space on that disk (or move the run to a larger one)",
    errno.EDQUOT: "free space within your disk quota (or move the run to another disk)",
    errno.EROFS: "the folder is on a read-only file system: remount it read-write or move the run to a writable disk",
    errno.EACCES: "the folder is not writable by this user: fix its permissions (chmod / chown) or move the run",
    errno.EPERM: "the folder is not writable by this user: fix its permissions (chmod / chown) or move the run",
}


def write_error(path: Path, exc: OSError, size: int | None = None, existed: bool = True,
                kept: str | None = None) -> StoreWriteError:
    """The one message for a failed write of `path`: what failed, where, what was kept (`kept` says it for files
    that are not written atomically), and the fix."""
    code = exc.errno or 0
    reason = exc.strerror or str(exc)
    name = errno.errorcode.get(code, "")
    what = f"{size / 1e6:.2f} MB" if size is not None and size >= 1e5 else (f"{size} bytes" if size is not None else "")
    if kept is None:
        kept = (f"the previous {path.name} is unchanged" if existed else f"{path.name} was not created") + \
            " and no partial file is left"
    err = StoreWriteError(
        f"could not write {path}" + (f" ({what})" if what else "") + f": {reason}" + (f" [{name}]" if name else "")
        + f"; {kept}.",
        hint=_WRITE_HINTS.get(code, "check the disk and the folder's permissions") + ", then run the command again.",
    )
    err.errno, err.strerror, err.filename = exc.errno, exc.strerror, str(path)
    return err


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder + fsync + rename: readers see the old file or the new one.

    Raises StoreWriteError (a DrlocalError and an OSError) when the disk is full, the folder read-only or not
    writable; the previous file is then intact and the temporary file removed."""
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; MinIO/DRfC containers and other users read these
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, StoreWriteError):
            raise write_error(path, exc, len(data), path.exists()) from None
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any, indent: int | None = 4) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


# ----- MinIO's xl format -----

def is_minio_xl_path(path: str | Path, depth: int = 3) -> bool:
    """Whether `path` is (inside) a MinIO data folder in its `xl` format, where every object is a
    folder holding `xl.meta` (MinIO RELEASE.2022-10-29 and later) instead of a plain file: `path`
    is such an object, or one of the first entries within `depth` levels below it is."""
    p = Path(path)
    if p.name == "xl.meta" or (p / "xl.meta").is_file():
        return True
    if not p.is_dir():
        return False
    level, budget = [p], 512  # folders looked into at most: an xl store shows itself at once
    for _ in range(depth):
        nxt = []
        for folder in level:
            try:
                children = sorted(c for c in folder.iterdir() if c.is_dir())
            except OSError:
                continue
            for c in children:
                if (c / "xl.meta").is_file():
                    return True
                budget -= 1
                if budget <= 0:
                    return False
                nxt.append(c)
        level = nxt
    return False


def minio_data_root(path: str | Path) -> Path | None:
    """The folder holding `.minio.sys` above `path` (MinIO's data folder, `data/minio` in DRfC), if any."""
    p = Path(path).resolve()
    for parent in (p, *p.parents):
        if (parent / ".minio.sys").is_dir():
            return parent
    return None


def minio_xl_error(path: str | Path) -> Exception:
    """The one error for a model stored in MinIO's xl format: what it is and how to read it."""
    from drlocal.errors import DrlocalError

    root = minio_data_root(path)
    where = f" (MinIO data folder {root})" if root is not None else ""
    return DrlocalError(
        f"{path}: this is MinIO's internal storage{where}, not plain files. Since RELEASE.2022-10-29 MinIO "
        "keeps every object as a folder holding `xl.meta` (e.g. model/3_Step-1234.ckpt.index/xl.meta), "
        "which only MinIO itself can read.",
        hint="read the model through MinIO's S3 API: start MinIO (DRfC's `source bin/activate.sh` does) and set "
        "DR_CLOUD=local in system.env, so that drlocal reads the bucket from MinIO; or copy the prefix out with "
        "`dr-local-aws s3 sync s3://<bucket>/<prefix> <folder>` and use that folder.",
    )


# ----- checkpoints -----

@dataclass(frozen=True, order=True)
class CheckpointName:
    number: int
    step: int

    def __str__(self) -> str:
        return f"{self.number}_Step-{self.step}.ckpt"

    @classmethod
    def parse(cls, name: str) -> CheckpointName | None:
        m = _CKPT.match(name.removesuffix(".pt"))
        return cls(int(m.group(1)), int(m.group(2))) if m else None


class ModelStore:
    """One model prefix folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.last_pruned: list[Path] = []  # files the last save_checkpoint / prune_checkpoints deleted

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def metrics_dir(self) -> Path:
        return self.root / "metrics"

    @property
    def simtrace_dir(self) -> Path:
        return self.root / "training-simtrace"


    # ----- checkpoints -----

    def checkpoint_path(self, name: CheckpointName) -> Path:
        """drlocal's torch file of a checkpoint (`<N>_Step-<M>.ckpt.pt`)."""
        return self.model_dir / f"{name}.pt"

    def _named_in_pointers(self) -> list[CheckpointName]:
        """Checkpoint names that deepracer_checkpoints.json and .coach_checkpoint mention."""
        names = []
        info = self.read_checkpoints_json()
        for key in ("best_checkpoint", "last_checkpoint"):
            entry = info.get(key)
            c = CheckpointName.parse(str(entry.get("name", ""))) if isinstance(entry, dict) else None
            if c is not None:
                names.append(c)
        coach = self.coach_checkpoint()
        if coach is not None:
            names.append(coach)
        return names

    def _scan(self) -> dict[CheckpointName, set[str]]:
        """{checkpoint: forms} of everything in model/; one clear error for MinIO's xl layout."""
        found: dict[CheckpointName, set[str]] = {}
        if not self.model_dir.is_dir():
            if is_minio_xl_path(self.root, depth=1):
                raise minio_xl_error(self.root)
            return found
        pbs = set()
        for p in self.model_dir.iterdir():
            m = _CKPT_FILE.match(p.name)
            pb = _PB.match(p.name) if m is None else None
            if m is None and pb is None:
                continue
            if not p.is_file():
                if (p / "xl.meta").is_file():
                    raise minio_xl_error(self.root)
                continue
            if pb is not None:
                pbs.add(int(pb.group(1)))
            elif m.group(3) in ("pt", "index"):  # type: ignore[union-attr]
                name = CheckpointName(int(m.group(1)), int(m.group(2)))  # type: ignore[union-attr]
                found.setdefault(name, set()).add("drlocal" if m.group(3) == "pt" else "tensorflow")  # type: ignore[union-attr]
        if pbs:
            pointers = self._named_in_pointers()
            for n in sorted(pbs):
                owners = [c for c in found if c.number == n]
                if not owners:
                    owners = [next((c for c in pointers if c.number == n), CheckpointName(n, 0))]
                for c in owners:
                    found.setdefault(c, set()).add("frozen-graph")
        return found

    def checkpoints(self) -> list[CheckpointName]:
        """Checkpoints on disk in any form (drlocal, TensorFlow, frozen graph), oldest first."""
        return sorted(self._scan())

    def checkpoint_forms(self, which: CheckpointName | str | int = "last") -> list[str]:
        """The forms (`drlocal`, `tensorflow`, `frozen-graph`) a checkpoint has on disk, preferred first.

        `which` is a CheckpointName, or best | last | a number as for `resolve_checkpoint`."""
        name = which if isinstance(which, CheckpointName) else self.resolve_checkpoint(which)
        forms = self._scan().get(name, set())
        return [f for f in CHECKPOINT_FORMS if f in forms]

    def checkpoint_files(self, name: CheckpointName) -> list[Path]:
        """Every file of a checkpoint on disk: `.ckpt.pt`, the TF checkpoint files, `model_<N>.pb`."""
        d = self.model_dir
        if not d.is_dir():
            return []
        out = [p for p in (self.checkpoint_path(name), d / f"{name}.index", d / f"{name}.meta") if p.is_file()]
        out += sorted(p for p in d.glob(f"{name}.data-*-of-*") if p.is_file())
        pb = d / f"model_{name.number}.pb"
        if pb.is_file():
            out.append(pb)
        return out

    def prune_checkpoints(self, best: CheckpointName | None = None,
                          keep: int = NUM_MODELS_TO_KEEP) -> list[Path]:
        """Delete every form of all checkpoints but the last `keep` and `best`; returns the deleted paths
        (so that a remote copy of the prefix can delete them too)."""
        have = self.checkpoints()
        keep_numbers = {c.number for c in have[-keep:]} if keep > 0 else set()
        if best is not None:
            keep_numbers.add(best.number)
        deleted: list[Path] = []
        for c in have:
            if c.number in keep_numbers:
                continue
            for p in self.checkpoint_files(c):
                p.unlink(missing_ok=True)
                deleted.append(p)
        self.last_pruned = deleted
        return deleted

    def save_checkpoint(self, name: CheckpointName, state: dict[str, Any],
                        best: CheckpointName | None) -> tuple[list[Path], list[Path]]:
        """Write a checkpoint, point `.coach_checkpoint` at it, and prune to the last 4 plus `best`.

        Returns (written paths, deleted paths); the deleted ones are also kept in `last_pruned`.
        Write DRfC's files of the same checkpoint (`drlocal.export.drfc.write_drfc_checkpoint`)
        before calling this, so that `.coach_checkpoint` never names a checkpoint whose files are missing."""
        import io

        buf = io.BytesIO()
        torch.save(state, buf)
        path = self.checkpoint_path(name)
        atomic_write_bytes(path, buf.getvalue())
        coach = self.model_dir / ".coach_checkpoint"
        atomic_write_text(coach, f"{name}\n")
        deleted = self.prune_checkpoints(best)
        return [path, coach], deleted

    def save_aux(self, name: str, state: dict[str, Any]) -> None:
        """Side state that only the latest checkpoint needs (optimizer moments): `model/.<name>.pt`."""
        import io

        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(self.model_dir / f".{name}.pt", buf.getvalue())

    def load_aux(self, name: str, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
        p = self.model_dir / f".{name}.pt"
        return torch.load(p, map_location=map_location, weights_only=False) if p.is_file() else None

    def read_checkpoints_json(self) -> dict[str, Any]:
        """`deepracer_checkpoints.json`, or {} when it is missing or unreadable."""
        p = self.model_dir / "deepracer_checkpoints.json"
        if not p.is_file():
            return {}
        try:
            info = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return {}
        return info if isinstance(info, dict) else {}

    def coach_checkpoint(self) -> CheckpointName | None:
        """The checkpoint `.coach_checkpoint` names (RL-Coach's "latest checkpoint" pointer)."""
        p = self.model_dir / ".coach_checkpoint"
        if not p.is_file():
            return None
        try:
            m = _CKPT_IN_TEXT.search(p.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            return None
        return CheckpointName(int(m.group(1)), int(m.group(2))) if m else None

    def write_checkpoints_json(self, best: dict[str, Any] | None, last: dict[str, Any]) -> None:
        """`deepracer_checkpoints.json`: {best_checkpoint: {name, avg_eval_metric, time_stamp}, last_checkpoint: …}."""
        atomic_write_json(
            self.model_dir / "deepracer_checkpoints.json",
            {"best_checkpoint": best or last, "last_checkpoint": last},
        )

    def checkpoint_entry(self, name: CheckpointName) -> dict[str, Any] | None:
        """deepracer_checkpoints.json's entry ({name, avg_eval_metric, time_stamp}) for `name`, if it has one."""
        info = self.read_checkpoints_json()
        for key in ("best_checkpoint", "last_checkpoint"):
            entry = info.get(key)
            if isinstance(entry, dict) and CheckpointName.parse(str(entry.get("name", ""))) == name:
                return dict(entry)
        return None

    def resolve_checkpoint(self, which: str | int | CheckpointName = "last") -> CheckpointName:
        """best | last | a checkpoint number (or name) -> the checkpoint on disk (DeepRacer's EVAL_CHECKPOINT).

        best / last: the name in `deepracer_checkpoints.json` when that checkpoint is on disk in any
        form; else (also for best) `.coach_checkpoint`'s, else the highest number."""
        from drlocal.errors import DrlocalError

        have = self.checkpoints()
        if not have:
            raise DrlocalError(
                f"{self.model_dir}: no checkpoints (looked for <N>_Step-<M>.ckpt.pt, TensorFlow "
                "<N>_Step-<M>.ckpt.index and model_<N>.pb).", hint="train a model first (`drlocal train`).")
        listed = ", ".join(str(c.number) for c in have)
        text = str(which).strip()
        if isinstance(which, CheckpointName) or CheckpointName.parse(text.removesuffix(".index")):
            name = which if isinstance(which, CheckpointName) else CheckpointName.parse(text.removesuffix(".index"))
            if name in have:
                return name  # type: ignore[return-value]
            raise DrlocalError(f"{self.model_dir}: no checkpoint {name} (have {listed}).",
                               hint="use best, last or one of the checkpoint numbers listed.")
        if text.isdigit():
            match = [c for c in have if c.number == int(text)]
            if match:
                return match[-1]
            raise DrlocalError(f"{self.model_dir}: no checkpoint {which} (have {listed}).",
                               hint="use best, last or one of the checkpoint numbers listed.")
        key = {"best": "best_checkpoint", "last": "last_checkpoint"}.get(text.lower())
        if key is None:
            raise DrlocalError(f"unknown checkpoint {which!r}.", hint="use best, last or a checkpoint number.")
        info = self.read_checkpoints_json()
        candidates = [info.get(key), info.get("last_checkpoint")]
        names = [CheckpointName.parse(str(e.get("name", ""))) for e in candidates if isinstance(e, dict)]
        names.append(self.coach_checkpoint())
        for name in names:
            if name is not None and name in have:
                return name
        return have[-1]

    def load_checkpoint(self, which: str | int | CheckpointName = "last",
                        map_location: str | torch.device = "cpu") -> dict[str, Any]:
        """The checkpoint as drlocal's payload: {format, algorithm, model, optimizer, trainer, model_metadata,
        name, source, …}. A TensorFlow checkpoint or frozen graph (DRfC, SageMaker, DeepRacer-on-AWS) is
        converted on the fly (`drlocal.export.drfc.foreign_payload`): `source` says which form was read,
        `trainer` is None and `fresh` lists the networks it did not hold (initialised fresh)."""
        name = self.resolve_checkpoint(which)
        forms = self.checkpoint_forms(name)
        if "drlocal" in forms:
            state = torch.load(self.checkpoint_path(name), map_location=map_location, weights_only=False)
            state["name"] = str(name)
            state["source"] = "drlocal"
            return state
        from drlocal.export.drfc import foreign_payload

        state, _spec = foreign_payload(self, name, forms, map_location=map_location)
        return state
