"""Rollout storage for one training iteration, written in place (flat memory however long the run).

The iteration's cars step together, so transitions arrive interleaved (step 1 of every car, then
step 2, …) while PPO wants them episode after episode. Keeping per-step Python lists of frames
costs far more than the frames: a frame taken as `batch[i]` is a view that keeps the whole
N-car batch of that step alive, so a long last episode holds N frames per step. Here every
frame is copied once into a preallocated row of a buffer that is reused by every iteration
(grown by doubling only when an iteration is longer than any before it, never per episode), and
`episode_order` gathers the rows into episode order once, for the learner.

Shapes: observations (capacity, *sensor shape) uint8 or float32 as the env makes them; actions
(capacity,) int64 (discrete) or (capacity, 2) float32 (continuous); rewards (capacity,) float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def cap_ends(ends: np.ndarray, cap: int) -> np.ndarray:
    """The episode ends (T,) of the first `cap` transitions: an episode cut by the cap also bootstraps with 0."""
    out = ends[:cap].copy()
    out[-1] = True
    return out


class RolloutBuffer:
    """Transitions of one iteration, car-interleaved in arrival order, kept in reused arrays."""

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = max(int(capacity), 1)
        self.size = 0
        self.obs: dict[str, np.ndarray] = {}
        self.actions: np.ndarray | None = None
        self.rewards = np.zeros(self.capacity, np.float64)
        self.car = np.zeros(self.capacity, np.int64)
        self.step = np.zeros(self.capacity, np.int64)

    def reset(self) -> None:
        """Start a new iteration; the arrays are kept."""
        self.size = 0

    def _grow(self, need: int) -> None:
        cap = self.capacity
        while cap < need:
            cap *= 2
        if cap == self.capacity:
            return

        def grown(a: np.ndarray) -> np.ndarray:
            b = np.empty((cap, *a.shape[1:]), a.dtype)
            b[: self.size] = a[: self.size]
            return b

        self.obs = {k: grown(v) for k, v in self.obs.items()}
        if self.actions is not None:
            self.actions = grown(self.actions)
        self.rewards, self.car, self.step = grown(self.rewards), grown(self.car), grown(self.step)
        self.capacity = cap

    def add(self, cars: np.ndarray, obs: dict[str, np.ndarray], actions: np.ndarray, rewards: np.ndarray,
            steps: np.ndarray) -> None:
        """Copy the transitions of `cars` (indices into this step's batch arrays) into the next rows."""
        cars = np.asarray(cars, np.int64)
        k = len(cars)
        if k == 0:
            return
        self._grow(self.size + k)
        lo, hi = self.size, self.size + k
        acts = np.asarray(actions)
        for name, batch in obs.items():
            if name not in self.obs:
                self.obs[name] = np.empty((self.capacity, *batch.shape[1:]), batch.dtype)
            self.obs[name][lo:hi] = batch[cars]
        if self.actions is None:
            self.actions = np.empty((self.capacity, *acts.shape[1:]), acts.dtype)
        self.actions[lo:hi] = acts[cars]
        self.rewards[lo:hi] = np.asarray(rewards)[cars]
        self.car[lo:hi] = cars
        self.step[lo:hi] = np.asarray(steps)[cars]
        self.size = hi

    def episode_order(self, n_cars: int, cap: int | None = None) -> dict[str, Any]:
        """Transitions episode after episode (car 0's, then car 1's, …), at most `cap` of them.

        Returns obs (dict of new arrays), actions, rewards, ends (True on each episode's last
        transition and on the last one kept under the cap) and lengths (per car, before the cap)."""
        n = self.size
        order = np.lexsort((self.step[:n], self.car[:n]))
        lengths = np.bincount(self.car[:n], minlength=n_cars)
        ends = np.zeros(n, dtype=bool)
        ends[np.cumsum(lengths)[lengths > 0] - 1] = True
        if cap is not None and n > cap:
            order, ends = order[:cap], cap_ends(ends, cap)
        assert self.actions is not None
        return {
            "obs": {k: v[order] for k, v in self.obs.items()},
            "actions": self.actions[order],
            "rewards": self.rewards[order],
            "ends": ends,
            "lengths": lengths,
        }

    @property
    def nbytes(self) -> int:
        """Memory held by the buffer's arrays [bytes]."""
        arrays = [*self.obs.values(), self.rewards, self.car, self.step]
        if self.actions is not None:
            arrays.append(self.actions)
        return int(sum(a.nbytes for a in arrays))
