"""The model prefix folder in DeepRacer's S3 layout (contract §9), on local disk.

    <prefix>/model/{model_metadata.json, <N>_Step-<M>.ckpt.pt, deepracer_checkpoints.json, .coach_checkpoint}
    <prefix>/ip/hyperparameters.json
    <prefix>/metrics/TrainingMetrics.json, EvaluationMetrics-<timestamp>.json
    <prefix>/training-simtrace/<K>-iteration.csv
    <prefix>/evaluation-<timestamp>/evaluation-simtrace/0-iteration.csv
    <prefix>/reward_function.py, training_params.yaml

Every file is written to a temporary name in the same folder and renamed into place, so a
crash or `kill -9` leaves either the old or the new file, never a torn one. Checkpoints are
torch files (the TensorFlow export is a separate step); the last 4 and the best are kept.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

NUM_MODELS_TO_KEEP = 4
_CKPT = re.compile(r"^(\d+)_Step-(\d+)\.ckpt$")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder + fsync + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any, indent: int | None = 4) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


@dataclass(frozen=True)
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
        return self.model_dir / f"{name}.pt"

    def checkpoints(self) -> list[CheckpointName]:
        """Checkpoints on disk, oldest first."""
        if not self.model_dir.is_dir():
            return []
        found = [CheckpointName.parse(p.name) for p in self.model_dir.glob("*.ckpt.pt")]
        return sorted((c for c in found if c), key=lambda c: c.number)

    def save_checkpoint(self, name: CheckpointName, state: dict[str, Any], best: CheckpointName | None) -> None:
        """Write a checkpoint, point `.coach_checkpoint` at it, and prune to the last 4 plus `best`."""
        import io

        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(self.checkpoint_path(name), buf.getvalue())
        atomic_write_text(self.model_dir / ".coach_checkpoint", f"{name}\n")
        keep = {c.number for c in self.checkpoints()[-NUM_MODELS_TO_KEEP:]}
        if best is not None:
            keep.add(best.number)
        for c in self.checkpoints():
            if c.number not in keep:
                self.checkpoint_path(c).unlink(missing_ok=True)

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
        p = self.model_dir / "deepracer_checkpoints.json"
        return json.loads(p.read_text()) if p.is_file() else {}

    def write_checkpoints_json(self, best: dict[str, Any] | None, last: dict[str, Any]) -> None:
        """`deepracer_checkpoints.json`: {best_checkpoint: {name, avg_eval_metric, time_stamp}, last_checkpoint: …}."""
        atomic_write_json(
            self.model_dir / "deepracer_checkpoints.json",
            {"best_checkpoint": best or last, "last_checkpoint": last},
        )

    def resolve_checkpoint(self, which: str | int = "last") -> CheckpointName:
        """best | last | a checkpoint number -> the checkpoint on disk (DeepRacer's EVAL_CHECKPOINT)."""
        from drlocal.errors import DrlocalError

        have = self.checkpoints()
        if not have:
            raise DrlocalError(f"{self.model_dir}: no checkpoints.", hint="train a model first (`drlocal train`).")
        if str(which).isdigit():
            for c in have:
                if c.number == int(which):
                    return c
            raise DrlocalError(
                f"{self.model_dir}: no checkpoint {which} (have {', '.join(str(c.number) for c in have)})."
            )
        info = self.read_checkpoints_json()
        key = {"best": "best_checkpoint", "last": "last_checkpoint"}.get(str(which))
        if key is None:
            raise DrlocalError(f"unknown checkpoint {which!r}.", hint="use best, last or a checkpoint number.")
        name = CheckpointName.parse(info.get(key, {}).get("name", "")) if info else None
        if name and self.checkpoint_path(name).exists():
            return name
        return have[-1]

    def load_checkpoint(self, which: str | int = "last", map_location: str | torch.device = "cpu") -> dict[str, Any]:
        name = self.resolve_checkpoint(which)
        state = torch.load(self.checkpoint_path(name), map_location=map_location, weights_only=False)
        state["name"] = str(name)
        return state
