"""Reward sanity after each iteration: does the reward function pay more for slower complete laps?

A reward that pays a constant (or anything that does not shrink with speed) per step gives the longest laps the
highest episode reward, so PPO learns to drive slowly, and users find out hours later when lap times stop falling.
The check needs no reward code: over the most recent complete laps it correlates the episode reward with the lap
time (Pearson r). A clearly positive, significant r means slower laps are paid more.

The rule: warn when at least `min_laps` complete laps are known, r ≥ `min_r`, and the correlation is significant
at one-sided 5 % (Fisher z = atanh(r)·√(n − 3) ≥ 1.645), so a handful of noisy laps cannot trigger it. A reward
that is the same for every complete lap (e.g. progress per step, which sums to 100 per lap) has r = 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

RECENT_LAPS = 40  # how many of the latest complete laps are judged
MIN_LAPS = 8
MIN_R = 0.3
Z_ONE_SIDED_5 = 1.645


class EpisodeLike(Protocol):
    """What the check reads of an episode: its summed reward, its duration [s] and its progress [%]."""

    reward: float
    time: float
    progress: float


@dataclass(frozen=True)
class LapTimeCorrelation:
    """Reward against lap time over the latest complete laps.

    r: Pearson correlation (0.0 when reward or time does not vary); n: laps used; slope: least-squares reward
    gained per extra second of lap time [reward/s]; mean_time: their mean lap time [s]."""

    r: float
    n: int
    slope: float
    mean_time: float

    @property
    def significant(self) -> bool:
        """One-sided 5 % test of r > 0 (Fisher z), meaningful from 4 laps."""
        if self.n < 4 or self.r <= 0:
            return False
        r = min(self.r, 0.999999)
        return math.atanh(r) * math.sqrt(self.n - 3) >= Z_ONE_SIDED_5

    def describe(self) -> str:
        """One sentence for the report."""
        if self.r > 0:
            trend = "slower laps earn more reward"
        elif self.r < 0:
            trend = "faster laps earn more reward (what you want)"
        else:
            trend = "the reward does not depend on lap time"
        return (f"over the last {self.n} complete laps (mean {self.mean_time:.2f} s) reward and lap time correlate "
                f"with r = {self.r:+.2f} ({self.slope:+.2f} reward per extra second): {trend}.")


class SlowLapWarning(UserWarning):
    """The reward function pays more for slower complete laps; carries the numbers of the verdict."""

    def __init__(self, corr: LapTimeCorrelation) -> None:
        self.corr = corr
        self.r = corr.r
        self.n = corr.n
        super().__init__(
            f"the reward function pays more for slower laps: {corr.describe()} The car is being taught to drive "
            "slowly; pay for progress per step or speed, or add a lap-time bonus, instead of a constant per step.")


def complete_laps(episodes: Iterable[EpisodeLike]) -> list[EpisodeLike]:
    """Episodes that finished the lap (progress ≥ 100 %), in the given (chronological) order."""
    return [e for e in episodes if float(e.progress) >= 100.0 - 1e-9]


def lap_time_correlation(episodes: Iterable[EpisodeLike], *, recent: int = RECENT_LAPS) -> LapTimeCorrelation | None:
    """Correlation of episode reward and lap time over the last `recent` complete laps; None below 3 laps."""
    laps = complete_laps(episodes)[-recent:]
    if len(laps) < 3:
        return None
    t = np.array([float(e.time) for e in laps])
    r_ = np.array([float(e.reward) for e in laps])
    dt, dr = t - t.mean(), r_ - r_.mean()
    st, sr = float(np.sqrt((dt**2).sum())), float(np.sqrt((dr**2).sum()))
    scale_t, scale_r = max(1.0, float(np.abs(t).max())), max(1.0, float(np.abs(r_).max()))
    if st <= 1e-9 * scale_t * len(t) or sr <= 1e-9 * scale_r * len(t):
        return LapTimeCorrelation(r=0.0, n=len(laps), slope=0.0, mean_time=float(t.mean()))
    r = float((dt * dr).sum() / (st * sr))
    slope = float((dt * dr).sum() / (dt**2).sum())
    return LapTimeCorrelation(r=max(-1.0, min(1.0, r)), n=len(laps), slope=slope, mean_time=float(t.mean()))


def reward_pays_for_slow_laps(episodes: Iterable[EpisodeLike], *, recent: int = RECENT_LAPS,
                              min_laps: int = MIN_LAPS, min_r: float = MIN_R) -> SlowLapWarning | None:
    """A `SlowLapWarning` (with r and the number of laps) when slower recent complete laps were paid more."""
    corr = lap_time_correlation(episodes, recent=recent)
    if corr is None or corr.n < min_laps or corr.r < min_r or not corr.significant:
        return None
    return SlowLapWarning(corr)
