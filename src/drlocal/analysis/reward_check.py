"""`drlocal reward test`: run a reward function over a sweep of poses before spending time training.

Poses are laid out along the whole centre line at several lateral offsets and headings, with
speeds and steering angles cycled through the DeepRacer range, so that a division by zero at
the track edge or a NaN when reversed shows up in seconds instead of hours into a run.

With a race type that puts objects on the track (obstacles, bot cars) the objects are placed as the
first training episode places them, every pose's params carry the object keys (`objects_location`,
`closest_objects`, `object_in_camera`, `is_crashed`, …) and three more categories approach each object:
from behind in its lane, from behind in the other lane, and touching it (a crash).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from drlocal.sim.objects import TrackObjects, lane_pose
from drlocal.sim.params import compute_geometry
from drlocal.sim.race import RaceOptions
from drlocal.sim.reward import RewardFunction
from drlocal.tracks.track import Track

#: category -> (lateral offset as a fraction of the half width (+ = left), heading offset [deg])
CATEGORIES: dict[str, tuple[float, float]] = {
    "centre": (0.0, 0.0),
    "left half": (0.5, 0.0),
    "right half": (-0.5, 0.0),
    "left edge": (0.95, 0.0),
    "right edge": (-0.95, 0.0),
    "off track left": (1.8, 0.0),
    "off track right": (-1.8, 0.0),
    "angled +30°": (0.0, 30.0),
    "angled -30°": (0.0, -30.0),
    "reversed heading": (0.0, 180.0),
}
HEATMAP_OFFSETS = np.linspace(-1.3, 1.3, 27)  # fractions of the half width, for the PNG


@dataclass
class CategoryStats:
    name: str
    rewards: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.rewards)


@dataclass
class SweepResult:
    stats: list[CategoryStats]
    heat_xy: np.ndarray  # (K, 2) car centres [m]
    heat_reward: np.ndarray  # (K,)
    calls: int
    objects: TrackObjects | None = None  # the objects the poses were judged with


def _frames(track: Track, spacing: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sample points along the centre line: (s [m] (K,), point (K, 2), tangent angle (K,), half width (K,))."""
    lines = track.forward
    k = max(int(lines.length / spacing), 8)
    s = np.linspace(0.0, lines.length, k, endpoint=not track.is_loop)
    pts = lines.interpolate(s)
    ahead = lines.interpolate(np.minimum(s + 0.05, lines.length) if not track.is_loop else (s + 0.05) % lines.length)
    tangent = np.arctan2(ahead[:, 1] - pts[:, 1], ahead[:, 0] - pts[:, 0])
    near_in = lines.nearest_on("inner", pts)
    near_out = lines.nearest_on("outer", pts)
    half = 0.5 * np.linalg.norm(near_in - near_out, axis=1)
    return s, pts, tangent, half


def _params_for(
    track: Track, pts: np.ndarray, tangent: np.ndarray, half: np.ndarray, s: np.ndarray, lateral: float,
    dheading: float, objects: TrackObjects | None = None,
) -> tuple[list[dict], np.ndarray]:
    normal = np.stack([-np.sin(tangent), np.cos(tangent)], axis=-1)  # left of the driving direction
    front = pts + (lateral * half)[:, None] * normal
    yaw = tangent + np.radians(dheading)
    base = front - 0.14 * np.stack([np.cos(yaw), np.sin(yaw)], axis=-1)
    return _params_at(track, base, yaw, s, objects), base


def _params_at(track: Track, base: np.ndarray, yaw: np.ndarray, s: np.ndarray,
               objects: TrackObjects | None) -> list[dict]:
    """Params of car poses (base (K, 2), yaw (K,)) at centre-line distances s (K,), with `objects` around."""
    n = len(s)
    progress_guess = 100.0 * s / track.length
    prev = np.maximum(progress_guess - 0.5, 0.0)  # as in a running episode
    geo = compute_geometry(track, False, base[:, 0], base[:, 1], yaw, np.zeros(n), prev)
    speeds = np.array([0.5, 1.0, 1.5, 2.0, 3.0, 4.0])
    steers = np.array([-30.0, -15.0, 0.0, 15.0, 30.0])
    extra: list[dict | None] = [None] * n
    crashed = np.zeros(n, dtype=bool)
    if objects is not None and objects.k:
        many = _replicate(objects, n)
        view = many.observe(np.stack([geo.x, geo.y], axis=-1), base[:, 0], base[:, 1], yaw)
        hit = many.collide(base[:, 0], base[:, 1], yaw)
        for i in range(n):
            extra[i] = many.params(i, view)
            crashed[i] = hit[i] >= 0 and many.crash_counts(i, int(hit[i]), float(geo.progress[i]), 0.0)[0]
    return [
        geo.params_dict(i, speed=float(speeds[i % len(speeds)]), steering_angle=float(steers[i % len(steers)]),
                        steps=float(2 + (7 * i) % 400), sim_time=(2 + (7 * i) % 400) / 15.0,
                        is_crashed=bool(crashed[i]), objects=extra[i])
        for i in range(n)
    ]


def _replicate(objects: TrackObjects, n: int) -> TrackObjects:
    """The one car's objects seen by n cars (one per sampled pose)."""
    many = TrackObjects(objects.track, n, objects.opts)
    for name in ("kinds", "is_obstacle", "length", "width", "z", "k"):
        setattr(many, name, getattr(objects, name))
    many.xy = np.repeat(objects.xy[:1], n, axis=0)
    many.yaw = np.repeat(objects.yaw[:1], n, axis=0)
    many.reverse = np.zeros(n, dtype=bool)
    many.self_slot = np.zeros(n, dtype=np.int64)
    return many


def place_objects(track: Track, race: RaceOptions) -> TrackObjects:
    """The objects of a worker's first training episode for `race` (one car, forward direction)."""
    objs = TrackObjects(track, 1, race)
    objs.place(np.ones(1, dtype=bool), np.zeros(1, dtype=bool), np.zeros(1, dtype=np.int64))
    return objs


def _approach(track: Track, objects: TrackObjects, gaps: np.ndarray, same_lane: bool) -> tuple[np.ndarray, ...]:
    """Car poses `gaps` [m] (centre to centre, along the track) behind every object, in its lane or the other one."""
    lines = track.forward
    base, yaw, s = [], [], []
    for k in range(objects.k):
        d_obj = objects.center_dist(0, k)
        outer = not objects.is_inner(0, k)
        d = (d_obj - gaps) % lines.length
        xy, a = lane_pose(lines, d, np.full(d.shape, outer if same_lane else not outer))
        base.append(xy)
        yaw.append(a)
        s.append(d)
    return np.concatenate(base), np.concatenate(yaw), np.concatenate(s)


def sweep(fn: RewardFunction, track: Track, spacing: float = 0.1, race: RaceOptions | None = None) -> SweepResult:
    """Call `fn` over every category's poses and a lateral heat-map grid; raises on the first bad call.

    `race`: a race type with objects (OBJECT_AVOIDANCE, HEAD_TO_BOT) adds them to every pose's params and
    adds the categories "object ahead, same lane" / "object ahead, other lane" (0.6-2.0 m behind each
    object) and "touching an object" (footprints overlapping: `is_crashed`)."""
    s, pts, tangent, half = _frames(track, spacing)
    objects = place_objects(track, race) if race is not None else None
    objects = objects if objects is not None and objects.k else None
    stats = []
    calls = 0
    for name, (lateral, dheading) in CATEGORIES.items():
        params, _ = _params_for(track, pts, tangent, half, s, lateral, dheading, objects)
        cat = CategoryStats(name)
        for p in params:
            cat.rewards.append(fn(p))
        calls += len(params)
        stats.append(cat)
    if objects is not None:
        for name, gaps, same in (("object ahead, same lane", np.linspace(0.6, 2.0, 8), True),
                                 ("object ahead, other lane", np.linspace(0.6, 2.0, 8), False),
                                 ("touching an object", np.array([0.3, 0.35]), True)):
            base, yaw, s_obj = _approach(track, objects, gaps, same)
            cat = CategoryStats(name)
            for p in _params_at(track, base, yaw, s_obj, objects):
                cat.rewards.append(fn(p))
            calls += cat.n
            stats.append(cat)
    heat_xy, heat_r = [], []
    for lateral in HEATMAP_OFFSETS:
        params, base = _params_for(track, pts, tangent, half, s, float(lateral), 0.0, objects)
        for i, p in enumerate(params):
            p["speed"], p["steering_angle"] = 1.0, 0.0
            heat_r.append(fn(p))
            heat_xy.append(base[i])
        calls += len(params)
    return SweepResult(stats, np.array(heat_xy), np.array(heat_r), calls, objects)


def save_heatmap(result: SweepResult, track: Track, out: str, title: str) -> None:
    """Scatter the reward of heading-aligned poses at 1 m/s over the track map."""
    import matplotlib.pyplot as plt

    from drlocal.tracks.plot import draw_track

    fig, ax = plt.subplots(figsize=(9, 7), dpi=110)
    draw_track(ax, track)
    sc = ax.scatter(result.heat_xy[:, 0], result.heat_xy[:, 1], c=result.heat_reward, s=6, cmap="viridis", zorder=6)
    fig.colorbar(sc, ax=ax, label="reward (heading along the track, 1 m/s, straight)")
    if result.objects is not None:
        from drlocal.tracks.plot import draw_objects

        o = result.objects
        draw_objects(ax, o.xy[0], o.yaw[0], o.kinds)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
