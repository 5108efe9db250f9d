"""Hooks through which people watch a run: the live progress bar, the live viewer, the evaluation MP4s.

The trainer and the evaluator call these at a few points of their loops; what is done with them lives in
`drlocal.view` (and the CLI), so nothing here imports a renderer, a web server or a video encoder, and a
run nobody watches pays one no-op call per simulator step.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class Watch(Protocol):
    """What the loops report. `world` is a `sim.episode.World`, `res` its `StepResult`; arrays are per car (N,)."""

    def begin(self, world: Any, *, phase: str, evaluation: bool = False) -> None:
        """A batch of episodes starts in `world` (phase: the simapp's label, "Training" or "Evaluating")."""

    def step(self, world: Any, res: Any, speed: np.ndarray, steer: np.ndarray, active: np.ndarray) -> None:
        """One simulator step happened for the `active` cars with commanded speed [m/s] and steering [deg]."""

    def end(self) -> None:
        """The batch of episodes is over."""

    def status(self, **fields: Any) -> None:
        """Run-level facts changed (iteration, checkpoint, steps/s, time shares, activity, …)."""


class NoWatch:
    """Nobody watches."""

    def begin(self, world: Any, *, phase: str, evaluation: bool = False) -> None:
        pass

    def step(self, world: Any, res: Any, speed: np.ndarray, steer: np.ndarray, active: np.ndarray) -> None:
        pass

    def end(self) -> None:
        pass

    def status(self, **fields: Any) -> None:
        pass


class Watches:
    """Several watchers at once (e.g. the progress bar and the viewer)."""

    def __init__(self, *watches: Watch) -> None:
        self.watches = [w for w in watches if w is not None]

    def begin(self, world: Any, *, phase: str, evaluation: bool = False) -> None:
        for w in self.watches:
            w.begin(world, phase=phase, evaluation=evaluation)

    def step(self, world: Any, res: Any, speed: np.ndarray, steer: np.ndarray, active: np.ndarray) -> None:
        for w in self.watches:
            w.step(world, res, speed, steer, active)

    def end(self) -> None:
        for w in self.watches:
            w.end()

    def status(self, **fields: Any) -> None:
        for w in self.watches:
            w.status(**fields)
