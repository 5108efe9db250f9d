"""The reward function's `params` dict, computed exactly as the simapp does (contract §2).

One implementation serves both the public single-car `reward_params()` and the batched
simulator: `compute_geometry()` works on N cars at once (arrays, car axis first) and
`ParamsBatch.params_dict(i, ...)` turns one car's row into the dict a reward function sees.
Hand-written because it is DeepRacer-specific (simapp `agent_ctrl/utils.py::set_reward_and_metrics`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from drlocal.sim.car import FRONT_POINT_OFFSET, wheel_centres
from drlocal.tracks.track import Track, TrackLines


def compute_progress(ndist: np.ndarray, start_ndist: np.ndarray, prev_progress: np.ndarray) -> np.ndarray:
    """Progress in percent of a lap (simapp `compute_current_prog`), all arrays (N,).

    p = 100·(ndist − start_ndist); p ≤ 0 → +100; crossing the line forward (prev > p + 50) → +100;
    crossing it backwards (p > prev + 50) → −100; capped at 100. Can be slightly negative.
    """
    p = 100.0 * (np.asarray(ndist, dtype=np.float64) - start_ndist)
    p = np.where(p <= 0, p + 100.0, p)
    p = np.where(prev_progress > p + 50.0, p + 100.0, p)
    p = np.where(p > prev_progress + 50.0, p - 100.0, p)
    return np.minimum(p, 100.0)


def heading_degrees(yaw: np.ndarray) -> np.ndarray:
    """Yaw [rad] to DeepRacer `heading` [deg] in (−180, 180]."""
    h = np.degrees(np.arctan2(np.sin(yaw), np.cos(yaw)))
    return np.where(h <= -180.0, h + 360.0, h)


@dataclass
class ParamsBatch:
    """Geometric reward params of N cars; every field has shape (N,) unless noted."""

    track: Track
    reversed: np.ndarray  # bool: track direction of each car (`is_reversed`)
    x: np.ndarray  # front point x [m]
    y: np.ndarray  # front point y [m]
    heading: np.ndarray  # [deg]
    ndist: np.ndarray  # normalised projection of the front point [0, 1]
    progress: np.ndarray  # [%]
    distance_from_center: np.ndarray  # [m]
    is_left_of_center: np.ndarray  # bool
    track_width: np.ndarray  # [m]
    closest_prev: np.ndarray  # int
    closest_next: np.ndarray  # int
    closest_waypoint: np.ndarray  # int, simtrace column: Euclidean-closer of prev/next
    wheels_on_track: np.ndarray  # (N, 4) bool
    all_wheels_on_track: np.ndarray  # bool
    is_offtrack: np.ndarray  # bool: no wheel centre on the road

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def params_dict(
        self,
        i: int,
        *,
        speed: float = 0.0,
        steering_angle: float = 0.0,
        steps: float = 2.0,
        is_crashed: bool = False,
        sim_time: float = 0.0,
        objects: dict | None = None,
    ) -> dict:
        """The complete `params` dict of car i: time-trial defaults for the object keys unless `objects`
        (from `TrackObjects.params`) gives them."""
        lines = self.track.lines(bool(self.reversed[i]))
        out = {
            "all_wheels_on_track": bool(self.all_wheels_on_track[i]),
            "x": float(self.x[i]),
            "y": float(self.y[i]),
            "heading": float(self.heading[i]),
            "distance_from_center": float(self.distance_from_center[i]),
            "is_left_of_center": bool(self.is_left_of_center[i]),
            "is_offtrack": bool(self.is_offtrack[i]),
            "is_crashed": bool(is_crashed),
            "is_reversed": bool(lines.reversed),
            "progress": float(self.progress[i]),
            "projection_distance": float(self.ndist[i] * lines.length),
            "speed": float(speed),
            "steering_angle": float(steering_angle),
            "steps": float(steps),
            "track_length": float(lines.length),
            "track_width": float(self.track_width[i]),
            "waypoints": _waypoint_list(lines),
            "closest_waypoints": [int(self.closest_prev[i]), int(self.closest_next[i])],
            "closest_objects": [0, 0],
            "objects_location": [],
            "objects_left_of_center": [],
            "objects_speed": [],
            "objects_heading": [],
            "objects_distance_from_center": [],
            "objects_distance": [],
            "object_in_camera": False,
            "sim_time": float(sim_time),
        }
        if objects:
            out.update(objects)
        return out


_WAYPOINTS_CACHE: dict[int, tuple[tuple[float, float], ...]] = {}


def _waypoint_list(lines: TrackLines) -> list[tuple[float, float]]:
    # A fresh list per call (the simapp passes a deep copy, so a reward function may mutate it);
    # its tuples are immutable and shared, which keeps this cheap at thousands of calls per second.
    key = id(lines)
    cached = _WAYPOINTS_CACHE.get(key)
    if cached is None:
        cached = tuple((float(a), float(b)) for a, b in lines.center)
        _WAYPOINTS_CACHE[key] = cached
    return list(cached)


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise distance of point arrays (N, 2); hypot does not overflow for poses far off the map."""
    return np.hypot(a[:, 0] - b[:, 0], a[:, 1] - b[:, 1])


def compute_geometry(
    track: Track,
    reverse: np.ndarray | bool,
    base_x: np.ndarray,
    base_y: np.ndarray,
    yaw: np.ndarray,
    start_ndist: np.ndarray,
    prev_progress: np.ndarray,
) -> ParamsBatch:
    """Geometric params for N cars whose base_link poses are (base_x, base_y [m], yaw [rad]), each (N,).

    `reverse` (bool or (N,) bool) picks each car's driving direction; `start_ndist` and
    `prev_progress` (N,) feed the progress formula.
    """
    base_x = np.atleast_1d(np.asarray(base_x, dtype=np.float64))
    base_y = np.atleast_1d(np.asarray(base_y, dtype=np.float64))
    yaw = np.atleast_1d(np.asarray(yaw, dtype=np.float64))
    n = base_x.shape[0]
    rev = np.broadcast_to(np.asarray(reverse, dtype=bool), (n,)).copy()
    fx = base_x + FRONT_POINT_OFFSET * np.cos(yaw)
    fy = base_y + FRONT_POINT_OFFSET * np.sin(yaw)
    front = np.stack([fx, fy], axis=-1)

    ndist = np.empty(n)
    prev_i = np.empty(n, dtype=np.int64)
    next_i = np.empty(n, dtype=np.int64)
    dist_c, left, width, closest = np.empty(n), np.empty(n, dtype=bool), np.empty(n), np.empty(n, dtype=np.int64)
    for direction in (False, True):
        sel = rev == direction
        if not sel.any():
            continue
        lines = track.lines(direction)
        f = front[sel]
        nd = lines.project(f, normalized=True)
        p_i, n_i = lines.prev_next(nd)
        near_c = lines.interpolate(nd, normalized=True)
        near_in = lines.nearest_on("inner", near_c)
        near_out = lines.nearest_on("outer", near_c)
        d_in = _dist(f, near_in)
        d_out = _dist(f, near_out)
        c = lines.center
        d_prev = _dist(f, c[p_i])
        d_next = _dist(f, c[n_i])
        ndist[sel], prev_i[sel], next_i[sel] = nd, p_i, n_i
        dist_c[sel] = _dist(f, near_c)
        left[sel] = (d_in < d_out) ^ (not lines.is_ccw)
        width[sel] = _dist(near_in, near_out)
        closest[sel] = np.where(d_next < d_prev, n_i, p_i)
    progress = compute_progress(ndist, start_ndist, prev_progress)

    wheels = track.on_track(wheel_centres(base_x, base_y, yaw))  # (N, 4)
    return ParamsBatch(
        track=track,
        reversed=rev,
        x=fx,
        y=fy,
        heading=heading_degrees(yaw),
        ndist=ndist,
        progress=progress,
        distance_from_center=dist_c,
        is_left_of_center=left,
        track_width=width,
        closest_prev=prev_i,
        closest_next=next_i,
        closest_waypoint=closest,
        wheels_on_track=wheels,
        all_wheels_on_track=wheels.all(axis=1),
        is_offtrack=~wheels.any(axis=1),
    )


def reward_params(
    track: Track | str,
    x: float,
    y: float,
    heading: float,
    *,
    speed: float = 0.0,
    steering_angle: float = 0.0,
    steps: float = 2.0,
    start_ndist: float = 0.0,
    prev_progress: float | None = None,
    reverse: bool = False,
    objects: list | None = None,
    stereo: bool = False,
) -> dict:
    """The reward function's `params` for one car, exactly as the DeepRacer simulator builds them.

    Args:
        track: a Track or a track name / `.npy` path.
        x, y: car centre (base_link) [m]. The returned `x`, `y` are the front point 0.14 m ahead.
        heading: car yaw [deg], CCW from +x.
        speed, steering_angle: the commanded action [m/s], [deg] (reported as given, not clipped).
        steps: episode step counter; the first reward-function call of an episode sees 2.0.
        start_ndist: normalised start position of the episode on the centre line [0, 1).
        prev_progress: previous step's progress [%] for the lap-line wrap rule (±50 %); None (default): no
            previous step, so the pose's own progress in (0, 100] without the wrap rule.
        reverse: drive the track in the reversed direction (`is_reversed`).
        objects: other objects on the track, in spawn order: dicts with `x`, `y` [m], `heading` [deg],
            `type` ('box_obstacle' (default), 'deepracer_box_obstacle', 'amazon_box_obstacle',
            'obstacle_bot_car', 'bot_car', 'racecar') and `speed` [m/s] for bot cars, or (x, y[, heading])
            tuples for boxes. Fills every object key (`objects_location`, `closest_objects`,
            `object_in_camera`, …) and `is_crashed` exactly as the simulator does for such a scene.
        stereo: the car has STEREO_CAMERAS (`object_in_camera` tests both frustums).

    Example:
        >>> from drlocal import load_track, reward_params
        >>> t = load_track("reinvent_base")
        >>> p = reward_params(t, *t.waypoints[0], heading=0.0)
        >>> round(p["progress"], 2), p["closest_waypoints"]
        (0.79, [0, 1])
    """
    numbers = {"x": x, "y": y, "heading": heading, "speed": speed, "steering_angle": steering_angle, "steps": steps,
               "start_ndist": start_ndist, "prev_progress": 0.0 if prev_progress is None else prev_progress}
    for name, value in numbers.items():
        try:
            ok = math.isfinite(value)
        except TypeError:
            ok = False
        if not ok or isinstance(value, bool):
            raise ValueError(f"reward_params: {name}={value!r} is not a finite number.")
    if isinstance(track, str):
        from drlocal.tracks import load_track

        track = load_track(track)
    # NaN as the previous progress makes both wrap comparisons false: the pose's own progress
    prev = math.nan if prev_progress is None else float(prev_progress)
    bx, by, yaw = np.array([float(x)]), np.array([float(y)]), np.radians([float(heading)])
    batch = compute_geometry(track, reverse, bx, by, yaw, np.array([float(start_ndist) % 1.0]), np.array([prev]))
    if not objects:
        return batch.params_dict(0, speed=speed, steering_angle=steering_angle, steps=steps)
    from drlocal.sim.objects import TrackObjects  # objects build on params, not the other way round

    objs = TrackObjects.fixed(track, list(objects), reverse=reverse)
    view = objs.observe(np.stack([batch.x, batch.y], axis=-1), bx, by, yaw, stereo=stereo)
    hit = int(objs.collide(bx, by, yaw)[0])
    crashed = hit >= 0 and objs.crash_counts(0, hit, float(batch.progress[0]), float(start_ndist) % 1.0)[0]
    return batch.params_dict(0, speed=speed, steering_angle=steering_angle, steps=steps, is_crashed=crashed,
                             objects=objs.params(0, view))
