"""Evaluation MP4s (DR_EVAL_SAVE_MP4 / `drlocal evaluate --mp4`): record while driving, render afterwards.

drlocal drives an evaluation's trials as parallel cars, DeepRacer drives them one after the other and films
them in that order. So the recorder keeps, per car and step, only the scene and the overlay numbers (a few
hundred bytes), and after the evaluation renders trial 1, then trial 2, … into the simapp's three files
(`save_to_mp4.py`): `<prefix>/mp4/camera-pip/0-video.mp4` (follow camera + evaluation overlay),
`camera-45degree/0-video.mp4` (follow camera) and `camera-topview/0-video.mp4` (top camera), 640×480, 15 fps,
H.264, one frame per simulator step (15 steps per sim second, so playback is real time).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from drlocal.errors import DrlocalError
from drlocal.view.frames import BodyColors, Composer, Telemetry, scene_of
from drlocal.view.scene import OverlayData, Scene

#: camera id -> the simapp's MP4 folder
MP4_FOLDERS = {"kvs_stream": "camera-pip", "main_camera": "camera-45degree", "sub_camera": "camera-topview"}
FPS = 15


@dataclass
class Shot:
    """One recorded step of one car: what to draw and when (sim time after the step [s])."""

    scene: Scene
    data: OverlayData
    t: float
    opponent: OverlayData | None = None  # the other racer's numbers in a head-to-model race


def follow_poses(shots: Sequence[Shot], dt: float) -> Iterator[tuple[float, float, float]]:
    """The simapp's damped follow camera along a sequence of shots, reset at the first one."""
    from drlocal.view.cameras import FollowCam

    cam = FollowCam()
    for k, s in enumerate(shots):
        x, y = s.scene.xy[s.scene.ego]
        yaw = float(s.scene.yaw[s.scene.ego])
        if k == 0:
            cam.reset(float(x), float(y), yaw)
        yield cam.update(float(x), float(y), yaw, dt)


def write_videos(composer: Composer, shots: Sequence[Shot], folder: Path, dt: float, *,
                 evaluation: bool = True, name: str = "0-video.mp4") -> list[Path]:
    """Render `shots` into the three MP4 folders under `folder`; returns the files written."""
    from drlocal.view.video import Mp4Writer

    cams = tuple(MP4_FOLDERS)
    paths = [folder / MP4_FOLDERS[c] / name for c in cams]
    with ExitStack() as stack:  # an error leaves no half-written MP4 (the writer renames only on a clean exit)
        writers = []
        for p in paths:
            p.parent.mkdir(parents=True, exist_ok=True)
            writers.append(stack.enter_context(Mp4Writer(p, fps=FPS)))
        for shot, pose in zip(shots, follow_poses(shots, dt), strict=True):
            views = composer.views(cams, shot.scene, shot.data, follow=pose, evaluation=evaluation,
                                   opponent=shot.opponent)
            for c, w in zip(cams, writers, strict=True):
                w.write(views[c])
    return paths


def require_video() -> None:
    """Say in one line, before anything is driven, that MP4s need the `view` extra (PyAV) when it is missing."""
    try:
        import av  # noqa: F401
    except ImportError:
        raise DrlocalError("DR_EVAL_SAVE_MP4 / --mp4 needs PyAV to write the videos, and it is not installed.",
                           hint="pip install 'drlocal[view]' (make install does it), or evaluate without --mp4.") \
            from None


class EvalRecorder:
    """`learn.watch.Watch` that keeps every step of every car of an evaluation for the MP4s.

    `bases[i]` holds car i's fixed overlay fields (display name, race type, number of laps); `colors[i]` its
    body colours (its own shell first). `sequential=True`: the cars are the trials of one evaluation, filmed one
    after the other (lap n/N = trial, race time accumulated over the trials)."""

    def __init__(self, bases: Sequence[OverlayData], colors: Sequence[BodyColors], *, sequential: bool) -> None:
        self.bases, self.colors, self.sequential = list(bases), list(colors), sequential
        self.shots: list[list[Shot]] = []
        self.dt = 1.0 / FPS
        self._tel: Telemetry | None = None

    def begin(self, world: Any, *, phase: str, evaluation: bool = False) -> None:
        self.shots = [[] for _ in range(world.n)]
        self.dt = world.dt
        self._tel = Telemetry(world.n, world.dt)
        for i in range(world.n):
            self.shots[i].append(Shot(scene_of(world, i, self._color(i)), self._base(i), 0.0))

    def step(self, world: Any, res: Any, speed: np.ndarray, steer: np.ndarray, active: np.ndarray) -> None:
        tel = self._tel
        assert tel is not None
        tel.update(res, active)
        for i in np.flatnonzero(active):
            data = tel.overlay(int(i), world, res, phase="Evaluating", steer=float(steer[i]),
                               throttle=float(speed[i]), base=self._base(int(i)))
            self.shots[i].append(Shot(scene_of(world, int(i), self._color(int(i))), data, float(world.sim_time[i])))

    def end(self) -> None:
        pass

    def status(self, **fields: Any) -> None:
        pass

    def _base(self, i: int) -> OverlayData:
        return self.bases[0 if self.sequential else i]

    def _color(self, i: int) -> BodyColors:
        return self.colors[0 if self.sequential else i]

    def film(self, cars: Sequence[int]) -> list[Shot]:
        """The shots of `cars` in filming order, with the overlay's lap, race time, resets and banner set."""
        out: list[Shot] = []
        offset = 0.0
        for n, i in enumerate(cars):
            shots = self.shots[i][1:] or self.shots[i][:1]  # the first shot is the pose before the first step
            for s in shots:
                d = s.data
                if self.sequential:
                    d = replace(d, lap=n + 1, laps=len(cars), race_time=offset + s.t)
                out.append(Shot(s.scene, d, offset + s.t))
            offset = out[-1].t if out else offset
        if not self.sequential and len(cars) == 1 and len(self.shots) == 2:  # head to model: the other's numbers
            other = self.shots[1 - cars[0]][1:] or self.shots[1 - cars[0]][:1]
            out = [replace(s, opponent=other[min(k, len(other) - 1)].data) for k, s in enumerate(out)]
        if out:
            out[-1] = replace(out[-1], data=replace(out[-1].data, done=True))
        return out
