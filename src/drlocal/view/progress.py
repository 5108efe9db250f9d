"""The live progress bar of `drlocal train` on a terminal: the running iteration's episodes, steps and ETA.

A `learn.watch.Watch`: it counts finished episodes and steps from each step result (vectorised, µs) and
refreshes the rich bar at most 10 times a second. The bar is transient, so the one line per iteration that
`train` prints stays the log; when the output is not a terminal the CLI does not create this at all.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn


class IterationProgress:
    """Progress of the current batch of episodes (training collection or the evaluation episodes)."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("episodes"),
            TextColumn("{task.fields[steps]:>7,} steps"), TimeRemainingColumn(), console=console, transient=True,
        )
        self.task: TaskID | None = None
        self.iteration = 1
        self.done = 0
        self.steps = 0
        self._shown = 0.0

    def __enter__(self) -> IterationProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def begin(self, world: Any, *, phase: str, evaluation: bool = False) -> None:
        what = f"iteration {self.iteration}" if phase == "Training" else "evaluating"
        self.done, self.steps = 0, 0
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(what, total=int(world.n), steps=0)

    def step(self, world: Any, res: Any, speed: np.ndarray, steer: np.ndarray, active: np.ndarray) -> None:
        self.done += int(np.count_nonzero(np.asarray(res.done) & active))
        self.steps += int(np.count_nonzero(active))
        now = time.monotonic()
        if now - self._shown >= 0.1 and self.task is not None:
            self._shown = now
            self.progress.update(self.task, completed=self.done, steps=self.steps)

    def end(self) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=self.done, steps=self.steps)
            self.progress.refresh()  # show the full bar now: the next batch replaces the task

    def status(self, **fields: Any) -> None:
        if "iteration_running" in fields:
            self.iteration = int(fields["iteration_running"])
