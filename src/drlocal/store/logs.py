"""Simtrace CSVs and metrics JSON in the formats deepracer-utils and the DeepRacer console read (contract §9).

Simtrace: one row per step, 19 columns in the simapp's order, values written with Python `str()`
(full precision, `True`/`False`). TrainingMetrics: one entry per episode, the whole file
rewritten atomically after every episode, with `version: 2.0` and `best_model_metric`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from drlocal.sim.episode import STATUS_LABELS
from drlocal.store.local import StoreWriteError, atomic_write_json, write_error

SIMTRACE_COLUMNS = (
    "episode", "steps", "X", "Y", "yaw", "steer", "throttle", "action", "reward", "done",
    "all_wheels_on_track", "progress", "closest_waypoint", "track_len", "tstamp", "episode_status",
    "pause_duration", "obstacle_crash_counter", "wall_clock",
)


def _cell(v: Any) -> str:
    s = str(v)
    return f'"{s}"' if "," in s else s


def format_row(row: dict[str, Any]) -> str:
    """One simtrace CSV line (with its newline) in the column order."""
    return ",".join(_cell(row[c]) for c in SIMTRACE_COLUMNS) + "\n"


class SimtraceWriter:
    """Appends rows to `<K>-iteration.csv`; the header is written when the file is created."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._writing():
            path.parent.mkdir(parents=True, exist_ok=True)
            self._f = path.open("w", encoding="utf-8", newline="")
            self._f.write(",".join(SIMTRACE_COLUMNS) + "\n")

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """A full disk or read-only folder: one StoreWriteError naming the file (the CSV is appended, not atomic)."""
        try:
            yield
        except StoreWriteError:
            raise
        except OSError as exc:
            raise write_error(self.path, exc, kept=f"{self.path.name} is incomplete (it is written again when "
                              "the iteration runs again)") from None

    def write(self, row: dict[str, Any]) -> None:
        with self._writing():
            self._f.write(format_row(row))

    def write_lines(self, lines: list[str]) -> None:
        """Rows already formatted by `format_row`."""
        with self._writing():
            self._f.writelines(lines)

    def flush(self) -> None:
        with self._writing():
            self._f.flush()

    def close(self) -> None:
        with self._writing():
            self._f.close()


def simtrace_row(
    *, episode: int, steps: float, x: float, y: float, yaw: float, steer: float, throttle: float, action: Any,
    reward: float, done: bool, on_track: bool, progress: float, closest_waypoint: int, track_len: float,
    tstamp: float, status: str, pause_duration: float = 0.0, obstacle_crash_counter: int = 0,
) -> dict[str, Any]:
    return {
        "episode": int(episode), "steps": float(steps), "X": float(x), "Y": float(y), "yaw": float(yaw),
        "steer": float(steer), "throttle": float(throttle), "action": action, "reward": float(reward),
        "done": bool(done), "all_wheels_on_track": bool(on_track), "progress": float(progress),
        "closest_waypoint": int(closest_waypoint), "track_len": float(track_len), "tstamp": round(float(tstamp), 3),
        "episode_status": status, "pause_duration": float(pause_duration),
        "obstacle_crash_counter": int(obstacle_crash_counter),
        "wall_clock": time.time(),
    }


class TrainingMetrics:
    """`metrics/TrainingMetrics.json`, rewritten after every episode."""

    def __init__(self, path: Path, best_model_metric: str = "progress", entries: list[dict] | None = None) -> None:
        self.path = path
        self.best_model_metric = best_model_metric
        self.entries: list[dict[str, Any]] = list(entries or [])

    @classmethod
    def load(cls, path: Path, best_model_metric: str) -> TrainingMetrics:
        import json

        entries = json.loads(path.read_text())["metrics"] if path.is_file() else []
        return cls(path, best_model_metric, entries)

    def add(
        self, *, episode: int, trial: int, phase: str, reward: float, progress: float, status: str,
        start_ms: int, end_ms: int,
    ) -> None:
        self.entries.append({
            "reward_score": round(reward),
            "metric_time": int(end_ms),
            "start_time": int(start_ms),
            "elapsed_time_in_milliseconds": int(end_ms - start_ms),
            "episode": int(episode),
            "trial": int(trial),
            "phase": phase,
            "completion_percentage": int(progress),
            "episode_status": STATUS_LABELS.get(status, status),
        })

    def save(self) -> None:
        atomic_write_json(
            self.path,
            {"metrics": self.entries, "version": 2.0, "best_model_metric": self.best_model_metric},
        )
