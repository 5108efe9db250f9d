"""The racer's diagnostics after every training iteration: is the policy still exploring, are its continuous
samples stuck at the action-space bounds, are complete laps getting faster, and does the reward pay slower laps?

* σ per dimension (continuous clipped PPO): the state-independent Gaussian σ of the policy after the update,
  in the action space's units (steering [deg], speed [m/s]): σ_norm · (high − low) / 2, because the
  network acts in [−1, 1] and DeepRacer rescales linearly.
* Clipped share per dimension: the fraction of the iteration's sampled actions outside [−1, 1], which
  DeepRacer clips to the bound. A share that grows while σ stays large means the mean sits at a bound.
* Lap-time trend: the least-squares slope of the mean complete-lap time over the last `TREND_ITERATIONS`
  iterations that had complete laps [s per iteration]; negative = laps getting faster.
* Reward pays slower laps: `drlocal.analysis.sanity` over the latest complete training laps.

Every iteration's readings are also kept in `<prefix>/metrics/drlocal-racer.json` (`RacerLog`), which the
report reads (σ is not in any DeepRacer file). Written by hand: these are DeepRacer-specific readings of the
policy and the episodes.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from drlocal.analysis import sanity
from drlocal.sim.episode import LAP_COMPLETE

TREND_ITERATIONS = 10


@dataclass(frozen=True)
class RacerDiagnostics:
    action_sigma: tuple[float, float] | None = None  # (steering [deg], speed [m/s]); continuous PPO only
    clipped_share: tuple[float, float] | None = None  # share of samples clipped, per dimension
    lap_trend_s: float | None = None  # [s per iteration]; None below 3 iterations with laps
    lap_reward_r: float | None = None  # Pearson r of episode reward vs lap time over recent laps
    slow_laps_paid: bool = False  # r clearly positive and significant (the sanity rule)

    def line(self) -> str:
        """The iteration line's part (empty when nothing is known yet)."""
        parts = []
        if self.lap_trend_s is not None:
            parts.append(f"lap trend {self.lap_trend_s:+.2f} s/iter")
        if self.action_sigma is not None:
            parts.append(f"σ {self.action_sigma[0]:.1f}° {self.action_sigma[1]:.2f} m/s")
        if self.clipped_share is not None:
            parts.append(f"clipped {self.clipped_share[0]:.0%}/{self.clipped_share[1]:.0%}")
        if self.slow_laps_paid and self.lap_reward_r is not None:
            parts.append(f"reward pays slower laps (r={self.lap_reward_r:+.2f})")
        return "  ".join(parts)


@dataclass
class _Lap:
    reward: float
    time: float
    progress: float = 100.0


class RacerMonitor:
    """Keeps the recent lap history of one training run and reads the diagnostics after each iteration."""

    def __init__(self, metadata: Any) -> None:
        self.continuous = bool(metadata.is_continuous)
        self.half_range = None
        if self.continuous:
            cs = metadata.action_space
            self.half_range = np.array([(cs.steering_angle.high - cs.steering_angle.low) / 2.0,
                                        (cs.speed.high - cs.speed.low) / 2.0])
        self.lap_means: deque[tuple[int, float]] = deque(maxlen=TREND_ITERATIONS)
        self.laps: deque[_Lap] = deque(maxlen=sanity.RECENT_LAPS)

    def resume(self, entries: list[dict[str, Any]]) -> None:
        """Continue the lap-time trend from a resumed run's racer log (the recent laps' rewards are not kept)."""
        for e in entries[-TREND_ITERATIONS:]:
            if e.get("lap_time_s") is not None:
                self.lap_means.append((int(e["iteration"]), float(e["lap_time_s"])))

    def update(self, iteration: int, actions: np.ndarray, finals: list[dict[str, Any]], dt: float,
               log_std: Any = None) -> RacerDiagnostics:
        """`actions`: the iteration's sampled actions, (T,) indices or (T, 2) in [−1, 1] before clipping;
        `finals`: the finished episodes ({"reward", "steps", "status", …}); `log_std`: the PPO policy's log σ
        (2,) after the update, or None (discrete, SAC)."""
        lap_times = []
        for f in finals:
            if f["status"] == LAP_COMPLETE:
                t = float(f["steps"]) * dt
                lap_times.append(t)
                self.laps.append(_Lap(float(f["reward"]), t))
        if lap_times:
            self.lap_means.append((iteration, float(np.mean(lap_times))))
        trend = None
        if len(self.lap_means) >= 3:
            x = np.array([i for i, _ in self.lap_means], dtype=float)
            y = np.array([t for _, t in self.lap_means])
            trend = float(np.polyfit(x, y, 1)[0])
        sigma = clipped = None
        if self.continuous and self.half_range is not None:
            a = np.asarray(actions, dtype=np.float64).reshape(-1, 2)
            if len(a):
                clipped = tuple(float(v) for v in (np.abs(a) > 1.0).mean(axis=0))
            if log_std is not None:
                s = np.exp(np.clip(np.asarray(log_std, dtype=np.float64).reshape(2), -20.0, 3.0))
                sigma = tuple(float(v) for v in s * self.half_range)
        corr = sanity.lap_time_correlation(self.laps)
        warn = sanity.reward_pays_for_slow_laps(self.laps)
        return RacerDiagnostics(sigma, clipped, trend, corr.r if corr is not None else None, warn is not None)


RACER_LOG = "drlocal-racer.json"


class RacerLog:
    """`metrics/drlocal-racer.json`: {"version": 1, "iterations": [{"iteration", "lap_time_s", …}, …]}, rewritten
    atomically after every iteration; on resume the entries after the resumed checkpoint are dropped."""

    def __init__(self, path: Path, keep_up_to: int | None = None) -> None:
        self.path = path
        self.entries: list[dict[str, Any]] = []
        if keep_up_to is not None:
            self.entries = [e for e in read_racer_log(path) if int(e.get("iteration", 0)) <= keep_up_to]

    def append(self, iteration: int, lap_time_s: float | None, d: RacerDiagnostics) -> Path:
        from drlocal.store.local import atomic_write_json

        self.entries.append({"iteration": iteration, "lap_time_s": lap_time_s, **asdict(d)})
        atomic_write_json(self.path, {"version": 1, "iterations": self.entries}, indent=None)
        return self.path


def read_racer_log(path: Path) -> list[dict[str, Any]]:
    """The entries of a racer log, [] when it is missing or unreadable (the report then leaves σ out)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    entries = data.get("iterations") if isinstance(data, dict) else None
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
