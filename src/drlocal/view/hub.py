"""The live viewer's frame source: the latest state of every car, rendered only when someone asks.

The trainer / evaluator thread calls `step` once per simulator step (`learn.watch.Watch`). That keeps the
per-car lap telemetry (a few vectorised numpy operations) and, only while a viewer has asked for a frame in
the last IDLE_S seconds, copies the cars' poses and overlay numbers into a snapshot (at most PUBLISH_HZ per
second of wall clock). The viewer's threads call `frame`, which renders from the latest snapshot: the
simulator never waits for a renderer, nothing is drawn for a run nobody watches, and a frame already drawn
for this snapshot is served from a cache to every other viewer of the same stream.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from drlocal.view.frames import BodyColors, Composer, Telemetry, scene_of
from drlocal.view.scene import OverlayData, Scene

#: A viewer that asked for nothing for this long no longer counts as watching [s].
IDLE_S = 3.0
#: Snapshots per second of wall clock while watched (the streams send at most 15 fps).
PUBLISH_HZ = 30.0


@dataclass
class _Snap:
    """The latest published state of one car."""

    scene: Scene
    data: OverlayData
    sim_time: float  # [s]
    evaluation: bool
    version: int


class FrameHub:
    """`learn.watch.Watch` for the run loops and `view.server.FrameSource` for the viewer."""

    def __init__(self, track: Any, *, world: str | None = None, reverse: bool = False,
                 colors: BodyColors | None = None, base: OverlayData | None = None, title: str = "",
                 replayer: Callable[[int, int, str, bool], Iterator[np.ndarray]] | None = None) -> None:
        self.track, self.world_name, self.reverse = track, world, reverse
        self.colors = colors or BodyColors()
        self.base = base or OverlayData()
        self.replayer = replayer
        self._lock = threading.Lock()
        self._render_lock = threading.Lock()
        self._composer: Composer | None = None
        self._snaps: dict[int, _Snap] = {}  # car -> its latest state (updated per car, so a partial publish keeps
        self._n = 1  # the others)                                      cars in the running batch
        self._wanted: dict[int, float] = {}  # car -> when a viewer last asked for it (monotonic [s])
        self._version = 0
        self._asked = -1e9
        self._published = -1e9
        self._telemetry: Telemetry | None = None
        self._phase = "Initializing"
        self._evaluation = False
        self._header: dict[str, Any] = {"title": title, "phase": "Initializing"}
        self._follow: dict[str, tuple[Any, float]] = {}  # robot -> (FollowCam, sim time of its last update)
        self._cache: dict[tuple[str, str], tuple[int, np.ndarray]] = {}
        self.frames_rendered = 0

    # ----- the run's side (learn.watch.Watch) -----

    def watched(self) -> bool:
        return time.monotonic() - self._asked < IDLE_S

    def begin(self, world: Any, *, phase: str, evaluation: bool = False) -> None:
        self._telemetry = Telemetry(world.n, world.dt)
        self._phase, self._evaluation = phase, evaluation
        self._header["phase"] = phase
        with self._lock:
            self._n = int(world.n)
            self._snaps = {}
        self._publish(world, None, None, None, force=True)

    def step(self, world: Any, res: Any, speed: np.ndarray, steer: np.ndarray, active: np.ndarray) -> None:
        if self._telemetry is None or self._telemetry.n != world.n:
            self._telemetry = Telemetry(world.n, world.dt)
        self._telemetry.update(res, active)
        self._publish(world, res, speed, steer)

    def end(self) -> None:
        pass  # the last published state stays on screen while the policy trains, as in DeepRacer

    def status(self, **fields: Any) -> None:
        with self._lock:
            self._header.update(fields)

    def _publish(self, world: Any, res: Any, speed: np.ndarray | None, steer: np.ndarray | None, *,
                 force: bool = False) -> None:
        """Copy the state of the cars viewers asked for in the last IDLE_S (all of them when `force`)."""
        now = time.monotonic()
        if not force and (not self.watched() or now - self._published < 1.0 / PUBLISH_HZ):
            return
        tel = self._telemetry
        assert tel is not None
        cars = range(world.n) if force else sorted(i for i, t in self._wanted.items()
                                                    if now - t < IDLE_S and i < world.n)
        base = replace(self.base, laps=max(self.base.laps, 1))
        version = self._version + 1
        snaps = {i: _Snap(scene_of(world, i, self.colors),
                          tel.overlay(i, world, res, phase=self._phase, base=base,
                                      steer=0.0 if steer is None else float(steer[i]),
                                      throttle=0.0 if speed is None else float(speed[i])),
                          float(world.sim_time[i]), self._evaluation, version) for i in cars}
        with self._lock:
            self._snaps.update(snaps)
            self._version = version
            self._published = now

    # ----- the viewer's side (view.server.FrameSource) -----

    def robots(self) -> list[str]:
        return [str(i) for i in range(self._n)]

    def version(self) -> int:
        self._asked = time.monotonic()
        return self._version

    def header(self) -> dict[str, Any]:
        self._asked = time.monotonic()
        with self._lock:
            return dict(self._header)

    def frame(self, robot: str, camera: str) -> np.ndarray | None:
        now = time.monotonic()
        self._asked = now
        if robot not in self.robots():
            raise KeyError(robot)
        i = int(robot)
        self._wanted[i] = now
        with self._lock:
            snap = self._snaps.get(i)
        if snap is None:
            return None
        with self._render_lock:
            hit = self._cache.get((robot, camera))
            if hit is not None and hit[0] == snap.version:
                return hit[1]
            composer = self._composer_()
            follow = self._follow_pose(robot, snap.scene, snap.sim_time)
            img = composer.render(camera, snap.scene, snap.data, follow=follow, evaluation=snap.evaluation)
            self._cache[(robot, camera)] = (snap.version, img)
            self.frames_rendered += 1
            return img

    def replay(self, iteration: int, episode: int, camera: str, ghost: bool) -> Iterator[np.ndarray]:
        if self.replayer is None:
            raise LookupError("replays need a model folder: start the viewer from `drlocal train --view`")
        return self.replayer(iteration, episode, camera, ghost)

    def _composer_(self) -> Composer:
        if self._composer is None:
            self._composer = Composer(self.track, world=self.world_name, reverse=self.reverse)
        return self._composer

    def _follow_pose(self, robot: str, scene: Scene, sim_time: float) -> tuple[float, float, float]:
        """The damped follow camera of `robot`, advanced by the sim time since its last frame (reset on a new
        episode, when the sim clock went back)."""
        from drlocal.view.cameras import FollowCam

        x, y = scene.xy[scene.ego]
        yaw = float(scene.yaw[scene.ego])
        cam, t = self._follow.get(robot, (None, 0.0))
        if cam is None or sim_time < t:
            cam = FollowCam()
            cam.reset(float(x), float(y), yaw)
        pose = cam.update(float(x), float(y), yaw, max(sim_time - t, 0.0))
        self._follow[robot] = (cam, sim_time)
        return pose
