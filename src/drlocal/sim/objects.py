"""Obstacles, bot cars and other racecars on the track, for N cars at once (contract §2, §3, §11).

Hand-written because it is DeepRacer-specific: simapp `agent_ctrl/obstacles_agent_ctrl.py`,
`agent_ctrl/bot_cars_agent_ctrl.py`, `track_geom/spline/*.py`, `track_geom/track_data.py`
(`get_object_reward_params`, `get_collided_object_name`), `cameras/frustum.py` and the reset-pose
logic of `agent_ctrl/rollout_agent_ctrl.py`.

Every car of a `World` runs its own DeepRacer episodes, so every car has its own K objects: state is
held in arrays with the car axis first, `xy` (N, K, 2) and `yaw` (N, K). In HEAD_TO_MODEL the objects of
car i are the other cars of the same World (the World copies their poses in every step).

What the simapp does and this module copies, including its quirks:

* Obstacles (OBJECT_AVOIDANCE) sit on the inner or outer lane at a centre-line distance: the centre-line
  point is projected onto the lane and the pose is the lane's forward-difference pose there. Without
  OBJECT_POSITIONS the distances are ``linspace(m, L - 1, K)`` where ``m`` is MIN_DISTANCE_BETWEEN_OBSTACLES
  read as percent of the track length — and the simapp overwrites ``m`` with the converted value every
  time it places the obstacles (once at start-up, again at every episode reset), so ``m`` is divided by
  100 and multiplied by L again and again: episode e of a worker uses ``m0 · (L / 100) ** (e + 2)``.
* Bot cars (HEAD_TO_BOT) move along cubic periodic splines of the lanes whose parameter is the
  centre-line distance; their distance is ``initial + speed · max(t - crashes · PENALTY_SECONDS, 0)``
  (t = sim time since the episode reset), updated only while their phase is RUN, which starts at the
  agent's second step. A lane change lasts LANE_CHANGE_DISTANCE / speed; between changes they wait
  U(LOWER, UPPER) seconds. When a bot rear-ends the agent (the agent's progress is ahead of the bot's),
  every bot freezes for PENALTY_SECONDS.
* Collision: a corner of the agent's footprint (0.32352 × 0.1961 m around base_link) strictly inside
  another object's footprint (boxes 0.5 × 0.4 m, cars 0.32352 × 0.1961 m), first object in spawn order.
* Reward params: objects sorted by their centre-line projection; `closest_objects` = [prev, next] by
  bisect-right of the car's front point; `object_in_camera` is computed the way the simapp computes it,
  with its index mix-up: the frustum test enumerates *all* objects of the world including the agent
  itself (spawned first, so slot 0 in OBJECT_AVOIDANCE and HEAD_TO_BOT) and compares that index with the
  *filtered* index of the next object. So it reports whether the object listed just before the next one
  is in view, and it is False whenever the next object is object 0 (`track_data.py::get_object_reward_params`,
  identical in v5.3.3, v6 and DRoA's upstream).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely

from drlocal.sim.car import FRONT_POINT_OFFSET
from drlocal.sim.race import (
    BOX_FOOTPRINT,
    CAR_FOOTPRINT,
    CLOSEST_OBJ_GAP,
    HEAD_TO_BOT,
    HEAD_TO_MODEL,
    OBJECT_AVOIDANCE,
    OBSTACLE_TYPES,
    RaceOptions,
)
from drlocal.tracks.track import Track, TrackLines

#: Height of an obstacle's pose (box centre) and of a bot car's pose [m] (simapp OBSTACLE_Z, BOT_CAR_Z);
#: the frustum test uses the footprint corners at this height.
OBSTACLE_Z = 0.1
BOT_CAR_Z = 0.0
#: Camera frustum of `object_in_camera` (simapp `cameras/frustum.py`, model_metadata version >= 3).
FRUSTUM_NEAR, FRUSTUM_FAR = 0.2, 300.0
FRUSTUM_HFOV = 1.13
FRUSTUM_ASPECT = 480.0 / 640.0
FRUSTUM_CAMERA = (0.14529379, 0.13032555)  # x ahead of base_link, z up [m]
FRUSTUM_PITCH = 0.2618
STEREO_DY = 0.03

INNER, OUTER = 0, 1


# ----- lanes -----


def lane_pose(lines: TrackLines, center_dist: np.ndarray, outer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poses on the lanes at centre-line distances (K,) [m]: the centre-line point projected on the lane,
    forward-difference heading there (simapp `lane.interpolate_pose(lane.project(center.interpolate(d)))`).
    Returns xy (K, 2), yaw (K,)."""
    d = np.atleast_1d(np.asarray(center_dist, dtype=np.float64))
    outer = np.broadcast_to(np.asarray(outer, dtype=bool), d.shape)
    xy = np.empty((d.size, 2))
    yaw = np.empty(d.size)
    if d.size == 0:
        return xy, yaw
    centre = lines.interpolate(np.mod(d, lines.length) if lines.is_loop else d)
    for is_outer, name in ((False, "inner_lane"), (True, "outer_lane")):
        sel = outer == is_outer
        if sel.any():
            lane_line = lines._line(name)
            along = shapely.line_locate_point(lane_line, shapely.points(centre[sel]))
            xy[sel], yaw[sel] = lines.pose_at(along, line=name)
    return xy, yaw


class LaneSplines:
    """Cubic periodic splines of the inner and outer lane parameterised by centre-line distance
    (simapp `track_geom/spline/track_spline.py`), for one driving direction."""

    def __init__(self, lines: TrackLines) -> None:
        from scipy.interpolate import splprep

        self.length = lines.length
        self.tck = []
        for name in ("inner_lane", "outer_lane"):
            lane = np.asarray(getattr(lines, name), dtype=np.float64)
            u = lines.project(lane, normalized=False)
            L = self.length
            for i in range(len(u)):  # leading points that project past half the lap belong before 0
                if u[i] < 0.5 * L:
                    break
                u[i] -= L
            for i in range(len(u) - 1, 0, -1):  # trailing points that project near 0 belong after L
                if u[i] > 0.5 * L:
                    break
                u[i] += L
            u, first = np.unique(u, return_index=True)
            x = lane[first].T.copy()
            lane_line = lines._line(name)
            if u[0] > 0.0:
                p0 = lane_line.interpolate(lane_line.project(shapely.Point(lines.center[0])))
                u[0] = 0.0
                x[:, 0] = (p0.x, p0.y)
            if u[-1] < L:
                pn = lane_line.interpolate(lane_line.project(shapely.Point(lines.center[-1])))
                u[-1] = L
                x[:, -1] = (pn.x, pn.y)
            if lines.is_loop:
                x[:, -1] = x[:, 0]
                tck, _ = splprep(x, u=u, k=3, s=0, per=1)
            else:
                tck, _ = splprep(x, u=u, k=3, s=0)
            self.tck.append(tck)

    def eval(self, lane: int, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points (k, 2) and derivatives d(x, y)/du (k, 2) of lane 0 (inner) / 1 (outer) at distances u (k,)."""
        from scipy.interpolate import splev

        u = np.mod(np.asarray(u, dtype=np.float64), self.length)
        p = np.stack(splev(u, self.tck[lane]), axis=-1)
        dp = np.stack(splev(u, self.tck[lane], der=1), axis=-1)
        return p.reshape(-1, 2), dp.reshape(-1, 2)


@lru_cache(maxsize=32)
def _splines(lines: TrackLines) -> LaneSplines:
    return LaneSplines(lines)


# ----- placement -----


def obstacle_layout(
    length: float, opts: RaceOptions, rng: np.random.Generator, divisions: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Centre-line distances (K,) [m] and outer-lane flags (K,) of the obstacles of one episode.

    `divisions` is how many times the simapp has converted MIN_DISTANCE_BETWEEN_OBSTACLES from percent to
    metres by then (2 for a worker's first episode: start-up and first reset; +1 per later episode).
    """
    if opts.object_positions:
        d = np.array([nd * length for nd, _ in opts.object_positions])
        outer = np.array([lane == -1 for _, lane in opts.object_positions], dtype=bool)
        return d, outer
    k = opts.n_obstacles
    m = float(opts.min_distance_between_obstacles) * (length / 100.0) ** max(int(divisions), 1)
    return _linspace_layout(length, k, m, opts.randomize_obstacle_locations, rng)


def bot_layout(length: float, opts: RaceOptions, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Initial centre-line distances (K,) [m] and outer-lane flags of the bot cars of one episode."""
    return _linspace_layout(
        length, opts.n_bots, float(opts.min_distance_between_bot_cars), opts.randomize_bot_car_locations, rng
    )


def _linspace_layout(length: float, k: int, m: float, randomize: bool, rng: np.random.Generator):
    start, end = m, length - 1.0
    d = np.linspace(start, end, k)
    if randomize:
        for i in rng.permutation(k):
            lo = start if i == 0 else d[i - 1] + m
            hi = end if i == k - 1 else d[i + 1] - m
            if lo < hi:
                d[i] = rng.uniform(lo, hi)
        outer = rng.integers(0, 2, size=k).astype(bool)
    else:
        outer = (np.arange(k) % 2).astype(bool)  # inner, outer, inner, ...
    return d, outer


# ----- the objects of N cars -----


@dataclass
class ObjectView:
    """Object params of N cars' current poses (arrays (N, K) unless noted), from `TrackObjects.observe`."""

    pdist: np.ndarray  # centre-line projection [m]
    dist_center: np.ndarray  # distance to the centre line [m]
    left: np.ndarray  # bool, left of centre in driving direction
    closest_prev: np.ndarray  # (N,) int
    closest_next: np.ndarray  # (N,) int
    in_camera: np.ndarray  # (N,) bool: the simapp's `object_in_camera`


class TrackObjects:
    """The K objects of each of N cars and their rules (see the module docstring).

    Attributes:
        kinds: what each object looks like: an obstacle type, 'bot_car' or 'racecar' (K,).
        is_obstacle: object names contain 'obstacle' (crash resets behind it; no "only when behind" rule).
        length, width: footprints (K,) [m].
        xy: (N, K, 2) base positions [m]; yaw: (N, K) [rad].
        self_slot: index of the agent itself in the simapp's list of all objects (for `object_in_camera`), (N,).
    """

    def __init__(self, track: Track, n: int, opts: RaceOptions, rng: np.random.Generator | None = None) -> None:
        self.track = track
        self.n = int(n)
        self.opts = opts
        self.rng = rng if rng is not None else np.random.default_rng(opts.seed)
        rt = opts.race_type
        if rt == OBJECT_AVOIDANCE:
            k = opts.n_obstacles
            self.kinds = (opts.obstacle_kind,) * k
            self.is_obstacle = np.ones(k, dtype=bool)
            fp = CAR_FOOTPRINT if opts.is_obstacle_bot_car else BOX_FOOTPRINT
            self.z = BOT_CAR_Z if opts.is_obstacle_bot_car else OBSTACLE_Z
        elif rt == HEAD_TO_BOT:
            k = opts.n_bots
            self.kinds = ("bot_car",) * k
            self.is_obstacle = np.zeros(k, dtype=bool)
            fp = CAR_FOOTPRINT
            self.z = BOT_CAR_Z
        elif rt == HEAD_TO_MODEL:
            k = max(self.n - 1, 0)
            self.kinds = ("racecar",) * k
            self.is_obstacle = np.zeros(k, dtype=bool)
            fp = CAR_FOOTPRINT
            self.z = 0.0
        else:
            k = 0
            self.kinds = ()
            self.is_obstacle = np.zeros(0, dtype=bool)
            fp = CAR_FOOTPRINT
            self.z = 0.0
        self.k = k
        self.z = np.full(k, self.z)
        self.length = np.full(k, fp[0])
        self.width = np.full(k, fp[1])
        self.xy = np.full((self.n, k, 2), np.nan)
        self.yaw = np.zeros((self.n, k))
        self.self_slot = np.arange(self.n) if rt == HEAD_TO_MODEL else np.zeros(self.n, dtype=np.int64)
        self.reverse = np.zeros(self.n, dtype=bool)
        # head-to-bot state per car
        self.bot_init = np.zeros((self.n, k))  # initial centre-line distance [m]
        self.bot_outer = np.zeros((self.n, k), dtype=bool)  # current lane (before a pending change)
        self.bot_change_end = np.full((self.n, k), np.inf)  # end time of the current/next lane change [s]
        self.bot_change_u = np.zeros((self.n, k, 2))  # unwrapped centre-line distances where it starts/ends
        self.bot_crashes = np.zeros(self.n, dtype=np.int64)
        self.bot_run = np.zeros(self.n, dtype=bool)  # phase RUN (else PREPARE / PAUSE)
        self.bot_pause = np.zeros(self.n)  # pause left [s]

    @classmethod
    def fixed(cls, track: Track, objects: list, reverse: bool = False) -> TrackObjects:
        """One car's objects at given poses (for `reward_params(objects=...)` and `drlocal reward test`).

        Each object is a dict with `x`, `y` [m], `heading` [deg, default 0], `type` (an OBSTACLE_TYPES box,
        'obstacle_bot_car' = a static DeepRacer car of an object-avoidance race, 'bot_car' = a moving bot of a
        head-to-bot race, 'racecar' = another model's car; default 'box_obstacle') and for bot cars `speed`
        [m/s, default 0.2] — or a tuple (x, y[, heading_deg]) for a box.
        """
        rows = []
        for ob in objects:
            if isinstance(ob, dict):
                rows.append((float(ob["x"]), float(ob["y"]), float(ob.get("heading", 0.0)),
                             str(ob.get("type", "box_obstacle")), float(ob.get("speed", 0.2))))
            else:
                t = tuple(ob)
                if len(t) not in (2, 3):
                    raise ValueError(f"object {ob!r}: expected (x, y) or (x, y, heading_deg) or a dict")
                rows.append((float(t[0]), float(t[1]), float(t[2]) if len(t) == 3 else 0.0, "box_obstacle", 0.0))
        types = [r[3] for r in rows]
        allowed = (*OBSTACLE_TYPES, "obstacle_bot_car", "bot_car", "racecar")
        for t in types:
            if t not in allowed:
                raise ValueError(f"object type {t!r}: expected one of {', '.join(allowed)}")
        bots = [r for r in rows if r[3] == "bot_car"]
        race = RaceOptions(race_type=HEAD_TO_BOT, number_of_bot_cars=len(bots),
                           bot_car_speed=bots[0][4] if bots else 0.2) if bots else RaceOptions()
        self = cls(track, 1, race)
        k = len(rows)
        self.k = k
        self.kinds = tuple("bot_car" if t == "obstacle_bot_car" else t for t in types)
        self.is_obstacle = np.array([t in OBSTACLE_TYPES or t == "obstacle_bot_car" for t in types], dtype=bool)
        car_like = np.array([t in ("obstacle_bot_car", "bot_car", "racecar") for t in types], dtype=bool)
        self.length = np.where(car_like, CAR_FOOTPRINT[0], BOX_FOOTPRINT[0])
        self.width = np.where(car_like, CAR_FOOTPRINT[1], BOX_FOOTPRINT[1])
        self.z = np.where(car_like, BOT_CAR_Z, OBSTACLE_Z)
        self.xy = np.array([[[r[0], r[1]] for r in rows]], dtype=np.float64).reshape(1, k, 2)
        self.yaw = np.radians(np.array([[r[2] for r in rows]], dtype=np.float64)).reshape(1, k)
        self.reverse = np.array([bool(reverse)])
        self.self_slot = np.zeros(1, dtype=np.int64)
        return self

    @property
    def moving(self) -> bool:
        """Whether objects move during an episode (bots; other racecars)."""
        return self.opts.race_type in (HEAD_TO_BOT, HEAD_TO_MODEL) and self.k > 0

    @property
    def bot_speeds(self) -> bool:
        """`objects_speed` / `objects_heading` are filled (the simapp checks NUMBER_OF_BOT_CARS > 0)."""
        return self.opts.race_type == HEAD_TO_BOT and self.k > 0

    # ----- episode resets -----

    def place(self, mask: np.ndarray, reverse: np.ndarray, ordinal: np.ndarray) -> None:
        """New episode for the cars in `mask`: obstacles re-placed (OA), bots back to their start (H2B).

        reverse (N,) is each car's driving direction; ordinal (N,) the episode's number within its
        worker (0 = first), which the OA distance quirk depends on.
        """
        self.reverse = np.asarray(reverse, dtype=bool).copy()
        rt = self.opts.race_type
        if self.k == 0 or rt == HEAD_TO_MODEL:
            return
        for i in np.flatnonzero(mask):
            lines = self.track.lines(bool(self.reverse[i]))
            if rt == OBJECT_AVOIDANCE:
                d, outer = obstacle_layout(lines.length, self.opts, self.rng, int(ordinal[i]) + 2)
                self.xy[i], self.yaw[i] = lane_pose(lines, d, outer)
            else:
                d, outer = bot_layout(lines.length, self.opts, self.rng)
                self.bot_init[i] = d
                self.bot_outer[i] = outer
                self.bot_change_end[i] = 0.0 if self.opts.is_lane_change else np.inf
                self.bot_crashes[i] = 0
                self.bot_run[i] = False
                self.bot_pause[i] = 0.0
                self._bot_poses(i, 0.0)

    # ----- bots -----

    def _bot_u(self, i: int, t: np.ndarray | float) -> np.ndarray:
        """Unwrapped centre-line distance of car i's bots at episode time(s) t [s]."""
        o = self.opts
        seconds = np.maximum(np.asarray(t, dtype=np.float64) - self.bot_crashes[i] * o.penalty_seconds, 0.0)
        return self.bot_init[i] + seconds * o.bot_car_speed

    def _bot_poses(self, i: int, t: float) -> None:
        """Pose of car i's bots at episode time t: on their lane, or blended across a lane change."""
        lines = self.track.lines(bool(self.reverse[i]))
        sp = _splines(lines)
        u = self._bot_u(i, t)
        lane = self.bot_outer[i].astype(np.int64)
        xy = np.empty((self.k, 2))
        dxy = np.empty((self.k, 2))
        for lane_id in (INNER, OUTER):
            sel = lane == lane_id
            if sel.any():
                xy[sel], dxy[sel] = sp.eval(lane_id, u[sel])
        # inside a lane change: blend start lane -> other lane with a smoothstep along the distance
        # (the simapp fits a cubic through start-lane points, the two end points and end-lane points)
        u0, u1 = self.bot_change_u[i, :, 0], self.bot_change_u[i, :, 1]
        started = np.isfinite(self.bot_change_end[i]) & (u1 > u0) & (u > u0)
        for kk in np.flatnonzero(started):
            s_lin = min((u[kk] - u0[kk]) / (u1[kk] - u0[kk]), 1.0)
            s = s_lin * s_lin * (3.0 - 2.0 * s_lin)
            ds = 6.0 * s_lin * (1.0 - s_lin) / (u1[kk] - u0[kk]) if s_lin < 1.0 else 0.0
            pb, db = sp.eval(1 - lane[kk], u[kk : kk + 1])
            pa, da = xy[kk].copy(), dxy[kk].copy()
            xy[kk] = (1.0 - s) * pa + s * pb[0]
            dxy[kk] = (1.0 - s) * da + s * db[0] + ds * (pb[0] - pa)
        self.xy[i] = xy
        self.yaw[i] = np.arctan2(dxy[:, 1], dxy[:, 0])

    def send_action(self, act: np.ndarray, sim_time: np.ndarray) -> None:
        """Start of a step (simapp `BotCarsCtrl.send_action`): bots in RUN schedule lane changes and move to
        their pose at the step's sim time; bots in PREPARE / PAUSE stay where they are."""
        if self.opts.race_type != HEAD_TO_BOT or self.k == 0:
            return
        o = self.opts
        duration = o.lane_change_distance / o.bot_car_speed
        for i in np.flatnonzero(act & self.bot_run):
            t = float(sim_time[i])
            if o.is_lane_change:
                due = t >= self.bot_change_end[i]
                for kk in np.flatnonzero(due):
                    if self.bot_change_end[i, kk] > 0.0:
                        self.bot_outer[i, kk] = ~self.bot_outer[i, kk]  # the finished change: now on the other lane
                    end = t + self.rng.uniform(o.lower_lane_change_time, o.upper_lane_change_time) + duration
                    self.bot_change_end[i, kk] = end
                    self.bot_change_u[i, kk] = (self._bot_u(i, end - duration)[kk], self._bot_u(i, end)[kk])
            self._bot_poses(i, t)

    def judge(self, act: np.ndarray, rear_ended: np.ndarray, dt: float) -> None:
        """End of a step (simapp `BotCarsCtrl.judge_action` + the sim-clock countdown): a bot that rear-ended
        the agent freezes every bot for PENALTY_SECONDS; PREPARE / PAUSE turn into RUN when the pause is over."""
        if self.opts.race_type != HEAD_TO_BOT or self.k == 0:
            return
        o = self.opts
        run = act & self.bot_run
        hit = run & rear_ended
        self.bot_pause[run] = 0.0
        if hit.any():
            self.bot_change_end[hit] += o.penalty_seconds
            self.bot_crashes[hit] += 1
            self.bot_pause[hit] += o.penalty_seconds
            self.bot_run[hit] = False
        wake = act & ~run & (self.bot_pause <= 0.0)
        self.bot_run[wake] = True
        # the sim clock runs one step until the next judge
        self.bot_pause[act] = np.where(self.bot_pause[act] > 0.0, self.bot_pause[act] - dt, self.bot_pause[act])

    def set_racecars(self, x: np.ndarray, y: np.ndarray, yaw: np.ndarray) -> None:
        """HEAD_TO_MODEL: the objects of car i are the other cars, in car order."""
        if self.opts.race_type != HEAD_TO_MODEL or self.k == 0:
            return
        for i in range(self.n):
            others = [j for j in range(self.n) if j != i]
            self.xy[i, :, 0] = x[others]
            self.xy[i, :, 1] = y[others]
            self.yaw[i] = yaw[others]

    # ----- geometry -----

    def collide(self, x: np.ndarray, y: np.ndarray, yaw: np.ndarray) -> np.ndarray:
        """Index of the first object (spawn order) whose footprint strictly contains a corner of each car's
        footprint, or -1: (N,) int. Cars at base_link poses (N,)."""
        n = self.n
        if self.k == 0:
            return np.full(n, -1, dtype=np.int64)
        hl, hw = CAR_FOOTPRINT[0] / 2, CAR_FOOTPRINT[1] / 2
        local = np.array([[hl, hw], [hl, -hw], [-hl, -hw], [-hl, hw]])
        c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
        cx = x[:, None] + c * local[None, :, 0] - s * local[None, :, 1]  # (N, 4)
        cy = y[:, None] + s * local[None, :, 0] + c * local[None, :, 1]
        dx = cx[:, None, :] - self.xy[:, :, 0:1]  # (N, K, 4)
        dy = cy[:, None, :] - self.xy[:, :, 1:2]
        oc, os_ = np.cos(self.yaw)[:, :, None], np.sin(self.yaw)[:, :, None]
        lx = oc * dx + os_ * dy
        ly = -os_ * dx + oc * dy
        inside = (np.abs(lx) < self.length[None, :, None] / 2) & (np.abs(ly) < self.width[None, :, None] / 2)
        hit = inside.any(axis=2)  # (N, K); NaN positions compare False
        first = np.argmax(hit, axis=1)
        return np.where(hit.any(axis=1), first, -1)

    def crash_counts(self, i: int, kk: int, progress: float, start_ndist: float) -> tuple[bool, bool]:
        """(the agent's crash counts, a bot rear-ended the agent) when car i's footprint touches object kk.

        An obstacle always counts. Another car or bot only when the agent is behind it: progress
        normalised to the start line (simapp `get_normalized_progress`) below the object's; a bot car
        ahead of which the agent is has hit it from behind (simapp `BotCarsCtrl.judge_action`).
        """
        if self.is_obstacle[kk]:
            return True, False
        agent = (progress + start_ndist * 100.0) % 100.0
        other = self.ndist_of(i, kk) * 100.0 % 100.0
        return agent < other, agent > other and self.kinds[kk] == "bot_car"

    def ndist_of(self, i: int, kk: int) -> float:
        """Normalised centre-line projection of object kk's front point (its progress / 100 from the line)."""
        lines = self.track.lines(bool(self.reverse[i]))
        yaw = self.yaw[i, kk]
        p = self.xy[i, kk] + FRONT_POINT_OFFSET * np.array([np.cos(yaw), np.sin(yaw)])
        return float(lines.project(p[None, :], normalized=True)[0])

    def observe(self, front_xy: np.ndarray, x: np.ndarray, y: np.ndarray, yaw: np.ndarray,
                stereo: bool = False) -> ObjectView:
        """Object params of every car: front_xy (N, 2) car front points, (x, y, yaw) (N,) base_link poses."""
        n, k = self.n, self.k
        pdist = np.zeros((n, k))
        dist_c = np.zeros((n, k))
        left = np.zeros((n, k), dtype=bool)
        prev = np.zeros(n, dtype=np.int64)
        nxt = np.zeros(n, dtype=np.int64)
        in_cam = np.zeros(n, dtype=bool)
        if k == 0:
            return ObjectView(pdist, dist_c, left, prev, nxt, in_cam)
        visible = self.in_frustum(x, y, yaw, stereo)  # (N, K)
        for direction in (False, True):
            sel = np.flatnonzero(self.reverse == direction)
            if sel.size == 0:
                continue
            lines = self.track.lines(direction)
            pts = self.xy[sel].reshape(-1, 2)
            ok = np.isfinite(pts).all(axis=1)
            safe = np.where(ok[:, None], pts, 0.0)
            pd = lines.project(safe, normalized=False)
            near = lines.interpolate(pd)
            dc = np.hypot(safe[:, 0] - near[:, 0], safe[:, 1] - near[:, 1])
            lf = shapely.contains_xy(lines.inner_poly, safe[:, 0], safe[:, 1]) ^ (not lines.is_ccw)
            pdist[sel] = pd.reshape(-1, k)
            dist_c[sel] = dc.reshape(-1, k)
            left[sel] = lf.reshape(-1, k)
            model = lines.project(front_xy[sel], normalized=False)
            for row, i in enumerate(sel):
                order = np.argsort(pdist[i], kind="stable")
                ordered = pdist[i][order].tolist()
                j = bisect.bisect_right(ordered, float(model[row]))
                p_i, n_i = j - 1, j
                if p_i == -1:
                    p_i = k - 1
                if n_i == k:
                    n_i = 0
                prev[i], nxt[i] = order[p_i], order[n_i]
                slot = int(self.self_slot[i])
                nx = int(nxt[i])
                if nx != slot:  # the simapp's index into the list of all objects, agent included
                    in_cam[i] = bool(visible[i, nx if nx < slot else nx - 1])
        return ObjectView(pdist, dist_c, left, prev, nxt, in_cam)

    def in_frustum(self, x: np.ndarray, y: np.ndarray, yaw: np.ndarray, stereo: bool = False) -> np.ndarray:
        """(N, K) bool: any footprint corner (at the object's pose height) or the pose itself inside the camera
        frustum of car i (simapp `Frustum.is_visible` over the bounding rectangle plus the position)."""
        n, k = self.n, self.k
        hl, hw = self.length / 2, self.width / 2
        local = np.stack([
            np.stack([hl, hw], -1), np.stack([hl, -hw], -1), np.stack([-hl, -hw], -1), np.stack([-hl, hw], -1),
            np.zeros((k, 2)),
        ], axis=1)  # (K, 5, 2)
        oc, os_ = np.cos(self.yaw)[:, :, None], np.sin(self.yaw)[:, :, None]
        px = self.xy[:, :, 0:1] + oc * local[None, :, :, 0] - os_ * local[None, :, :, 1]  # (N, K, 5)
        py = self.xy[:, :, 1:2] + os_ * local[None, :, :, 0] + oc * local[None, :, :, 1]
        pz = self.z[None, :, None]
        out = np.zeros((n, k), dtype=bool)
        tan_h = np.tan(FRUSTUM_HFOV / 2)
        tan_v = tan_h * FRUSTUM_ASPECT
        cp, sp = np.cos(FRUSTUM_PITCH), np.sin(FRUSTUM_PITCH)
        c, s = np.cos(yaw)[:, None, None], np.sin(yaw)[:, None, None]
        for dy_cam in ((STEREO_DY, -STEREO_DY) if stereo else (0.0,)):
            camx = x[:, None, None] + c * FRUSTUM_CAMERA[0] - s * dy_cam
            camy = y[:, None, None] + s * FRUSTUM_CAMERA[0] + c * dy_cam
            wx, wy, wz = px - camx, py - camy, pz - FRUSTUM_CAMERA[1]
            fwd = c * wx + s * wy  # car frame: forward, left, up
            lat = -s * wx + c * wy
            depth = fwd * cp - wz * sp  # optical axis pitched down
            up = fwd * sp + wz * cp
            vis = ((depth >= FRUSTUM_NEAR) & (depth <= FRUSTUM_FAR) & (np.abs(lat) <= depth * tan_h)
                   & (np.abs(up) <= depth * tan_v))
            out |= vis.any(axis=2)
        return out

    def params(self, i: int, view: ObjectView) -> dict:
        """The object keys of car i's reward params (time-trial defaults when there are no objects)."""
        if self.k == 0:
            return {}
        ok = np.isfinite(self.xy[i]).all(axis=1)
        if not ok.all():
            return {}
        speeds = [float(self.opts.bot_car_speed) if self.bot_speeds else 0.0] * self.k
        headings = [float(h) for h in self.yaw[i]] if self.bot_speeds else [0.0] * self.k
        return {
            "closest_objects": [int(view.closest_prev[i]), int(view.closest_next[i])],
            "objects_location": [[float(a), float(b)] for a, b in self.xy[i]],
            "objects_left_of_center": [bool(v) for v in view.left[i]],
            "objects_speed": speeds,
            "objects_heading": headings,
            "objects_distance_from_center": [float(v) for v in view.dist_center[i]],
            "objects_distance": [float(v) for v in view.pdist[i]],
            "object_in_camera": bool(view.in_camera[i]),
        }

    # ----- start and reset poses -----

    def closest(self, i: int, dist: float, obstacles_only: bool) -> int:
        """Object of car i within CLOSEST_OBJ_GAP of centre-line distance `dist` (simapp `_get_closest_obj`,
        its `abs(gap) % L` included: no wrap-around), or -1."""
        if self.k == 0:
            return -1
        lines = self.track.lines(bool(self.reverse[i]))
        best, best_gap = -1, CLOSEST_OBJ_GAP
        ok = np.isfinite(self.xy[i]).all(axis=1)
        if not ok.any():
            return -1
        pd = lines.project(np.where(ok[:, None], self.xy[i], 0.0), normalized=False)
        for kk in range(self.k):
            if not ok[kk] or (obstacles_only and not self.is_obstacle[kk]):
                continue
            gap = abs(pd[kk] - dist) % lines.length
            if gap < best_gap:
                best, best_gap = kk, gap
        return best

    def is_inner(self, i: int, kk: int) -> bool:
        """Object kk of car i is nearer the inner border than the outer one (nearest border points found
        through its centre-line projection, as for `is_left_of_center`)."""
        lines = self.track.lines(bool(self.reverse[i]))
        p = self.xy[i, kk][None, :]
        c = lines.interpolate(lines.project(p, normalized=False))
        d_in = np.hypot(*(p - lines.nearest_on("inner", c))[0])
        d_out = np.hypot(*(p - lines.nearest_on("outer", c))[0])
        return bool(d_in < d_out)

    def center_dist(self, i: int, kk: int) -> float:
        """Centre-line projection of object kk of car i [m]."""
        lines = self.track.lines(bool(self.reverse[i]))
        return float(lines.project(self.xy[i, kk][None, :], normalized=False)[0])
