"""From simulator state to what a person's camera shows: scenes, overlay numbers and composed frames.

One path serves the live viewer (`hub`), the evaluation MP4s (`record`) and replays (`replay`), so a frame
of a replayed episode looks exactly like the live one. Camera ids are DRfC's (`kvs_stream` = follow camera
with the overlay, `main_camera` = follow camera, `sub_camera` = top camera, `camera` = the in-car camera in
colour); frames are (480, 640, 3) uint8 RGB.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from drlocal.sim.episode import LAP_COMPLETE
from drlocal.view.scene import BOT_COLOR, BOX_COLOR, OverlayData, Scene, car_color

CAMERA_IDS = ("kvs_stream", "camera", "main_camera", "sub_camera")
#: Words the simapp uses for a race type in the evaluation overlay ("Time trial evaluation").
RACE_WORDS = {"TIME_TRIAL": "Time trial", "OBJECT_AVOIDANCE": "Object avoidance", "HEAD_TO_BOT": "Head to bot",
              "HEAD_TO_MODEL": "Head to head"}
#: The ghost car of a replay: a pale, clearly-not-a-racer colour.
GHOST_COLOR = (200, 230, 255)


@dataclass
class BodyColors:
    """Colour of each kind of body: the watched car (DR_CAR_COLOR), other racecars, bots and obstacle boxes."""

    agent: tuple[int, int, int] = car_color("Red")
    opponent: tuple[int, int, int] = car_color("Blue")
    bot: tuple[int, int, int] = BOT_COLOR
    box: tuple[int, int, int] = BOX_COLOR

    def of(self, kind: str) -> tuple[int, int, int]:
        return {"racecar": self.opponent, "bot_car": self.bot}.get(kind, self.box)


def racer_colors(car_color_name: str | None) -> tuple[BodyColors, BodyColors]:
    """The colours of the watched car (DR_CAR_COLOR) and of an opponent in a contrasting colour (Blue, or Orange
    when the car itself is blue), each seen from its own side."""
    mine = car_color(car_color_name)
    theirs = car_color("Orange" if mine == car_color("Blue") else "Blue")
    return BodyColors(agent=mine, opponent=theirs), BodyColors(agent=theirs, opponent=mine)


def scene_of(world: Any, i: int, colors: BodyColors) -> Scene:
    """The bodies car `i` of a `sim.episode.World` shares its track with: itself (body 0, the ego), then its objects.

    Copies the few floats it needs, so the scene stays valid while the world steps on."""
    objs = world.objects
    k = int(objs.k)
    xy = np.empty((1 + k, 2))
    yaw = np.empty(1 + k)
    xy[0] = world.car.x[i], world.car.y[i]
    yaw[0] = world.car.yaw[i]
    if k:
        xy[1:] = objs.xy[i]
        yaw[1:] = objs.yaw[i]
    kinds = ("car", *("car" if kd in ("bot_car", "racecar") else "box" for kd in objs.kinds))
    cols = np.array([colors.agent, *(colors.of(kd) for kd in objs.kinds)], np.uint8)
    return Scene(xy, yaw, kinds, cols)


@dataclass
class Telemetry:
    """Per-car numbers of the overlays that need memory across steps: laps, lap times, resets, race time.

    Updated once per simulator step from the step result (vectorised over the N cars, a few µs), so the viewer
    can show best/last lap even when nobody watched when the lap was driven."""

    n: int
    dt: float
    best: np.ndarray = field(init=False)  # best lap time per car [s], inf = none
    last: np.ndarray = field(init=False)  # last lap time per car [s], nan = none
    resets: np.ndarray = field(init=False)
    lap_start: np.ndarray = field(init=False)  # sim time the current lap started [s]

    def __post_init__(self) -> None:
        self.best = np.full(self.n, np.inf)
        self.last = np.full(self.n, np.nan)
        self.resets = np.zeros(self.n, np.int64)
        self.lap_start = np.zeros(self.n)

    def new_episode(self, mask: np.ndarray | None = None) -> None:
        m = slice(None) if mask is None else mask
        self.resets[m] = 0
        self.lap_start[m] = 0.0

    def update(self, res: Any, active: np.ndarray) -> None:
        """Fold one `StepResult` in: lap times from `lap_complete` steps, resets from `res.reset`."""
        status = np.asarray(res.status)
        lap = active & (status == LAP_COMPLETE)
        if lap.any():
            end = np.asarray(res.sim_time) + self.dt
            t = end - self.lap_start
            self.last = np.where(lap, t, self.last)
            self.best = np.where(lap, np.minimum(self.best, t), self.best)
            self.lap_start = np.where(lap, end, self.lap_start)
        if res.reset is not None:
            self.resets += (active & np.asarray(res.reset, bool)).astype(np.int64)

    def overlay(self, i: int, world: Any, res: Any | None, *, phase: str, steer: float = 0.0,
                throttle: float = 0.0, base: OverlayData | None = None) -> OverlayData:
        """The overlay numbers of car `i` after the step that produced `res` (None before the first step)."""
        d = base or OverlayData()
        best = float(self.best[i])
        last = float(self.last[i])
        laps = 0 if res is None or res.laps is None else int(res.laps[i])
        return replace(
            d, phase=phase, steering=float(steer), throttle=float(throttle), speed=float(abs(world.car.speed[i])),
            progress=0.0 if res is None else float(res.progress[i]),
            best_lap=best if np.isfinite(best) else None, last_lap=last if np.isfinite(last) else None,
            lap=min(laps + 1, max(d.laps, 1)), race_time=float(world.sim_time[i]), resets=int(self.resets[i]),
        )


def minimap_bodies(scene: Scene) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(xy, colors, kinds) the minimap draws: every body of the scene, the ego first."""
    order = [scene.ego, *(j for j in range(len(scene.kinds)) if j != scene.ego)]
    return scene.xy[order], scene.colors[order], [scene.kinds[j] for j in order]


class Composer:
    """Renders the four DRfC cameras of a scene: `PeopleCameras` for the image, `overlay` for kvs_stream.

    Built lazily by its users (the textures take a moment): nothing is rendered for a run nobody watches."""

    def __init__(self, track: Any, *, world: str | None = None, reverse: bool = False) -> None:
        from drlocal.view.cameras import PeopleCameras
        from drlocal.view.overlay import Minimap

        self.cams = PeopleCameras(track, world=world, reverse=reverse)
        self.minimap = Minimap(track, reverse=reverse)

    def render(self, camera: str, scene: Scene, data: OverlayData, *, follow: tuple[float, float, float] | None = None,
               evaluation: bool = False) -> np.ndarray:
        """One (480, 640, 3) frame of `camera` (a CAMERA_IDS entry); `follow` is the damped follow-camera pose."""
        if camera not in CAMERA_IDS:
            raise KeyError(camera)
        return self.views((camera,), scene, data, follow=follow, evaluation=evaluation)[camera]

    def views(self, cameras: tuple[str, ...], scene: Scene, data: OverlayData, *,
              follow: tuple[float, float, float] | None = None, evaluation: bool = False,
              opponent: OverlayData | None = None) -> dict[str, np.ndarray]:
        """Several cameras of one scene; the follow camera is rendered once for main_camera and kvs_stream.
        With `opponent` (a head-to-model race) kvs_stream gets the simapp's two-column head-to-head overlay."""
        from drlocal.view.overlay import evaluation_overlay, head_to_head_overlay, training_overlay

        out: dict[str, np.ndarray] = {}
        if "sub_camera" in cameras:
            out["sub_camera"] = self.cams.top(scene)
        if "camera" in cameras:
            out["camera"] = self.cams.incar(scene)
        if "main_camera" in cameras or "kvs_stream" in cameras:
            frame = self.cams.follow(scene, follow)
            if "main_camera" in cameras:
                out["main_camera"] = frame
            if "kvs_stream" in cameras:
                xy, cols, kinds = minimap_bodies(scene)
                data = replace(data, minimap_xy=xy, minimap_colors=cols)
                if opponent is not None:
                    out["kvs_stream"] = head_to_head_overlay(frame, data, opponent, self.minimap, kinds=kinds)
                else:
                    draw = evaluation_overlay if evaluation else training_overlay
                    out["kvs_stream"] = draw(frame, data, self.minimap, kinds=kinds)
        return out
