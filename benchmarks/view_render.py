"""Cost of the cameras for people (`drlocal.view.cameras`): milliseconds per 640×480 RGB frame, one core.

A car drives the centre line of the track at 2 m/s in 1/15 s steps; the follow camera tracks it with
`FollowCam` (the simapp's damped follow), so frames see straights, bends and the walls as a viewer does.
With `--cars N` there are N - 1 more cars (blue bots) spread around the lap, one of them 1.2 m ahead of
the agent in the other lane (always in view), and with `--boxes K` K obstacle boxes at 2, 3, ... m ahead.
Every camera renders every step after numba has compiled (warm-up); the figure is the median CPU time of
this thread per frame (other load on a shared machine counts less), with the 90th percentile alongside.
The texture and the top view's background are built once at start (reported as `setup_s`).

Run: `python benchmarks/view_render.py [--track reinvent_base] [--cars 1] [--boxes 0] [--frames 150]`;
the last line is `view_render follow_ms=… top_ms=… incar_ms=…`.
"""

from __future__ import annotations

import os

os.environ["NUMBA_NUM_THREADS"] = "1"  # before numba is imported: the figure is per core

import argparse
import math
import time

import numpy as np

from drlocal.tracks import load_track
from drlocal.view.cameras import FollowCam, PeopleCameras
from drlocal.view.scene import BOT_COLOR, BOX_COLOR, CAR_COLORS, Scene

SPEED = 2.0  # [m/s]
DT = 1.0 / 15.0  # [s]


def scene_at(track, step: int, cars: int, boxes: int) -> Scene:
    """The agent at lap distance SPEED·DT·step on the centre line plus the other bodies (see docstring)."""
    lines = track.forward
    length = lines.length
    s0 = (SPEED * DT * step) % length
    dist = [s0]
    lat = [0.0]
    kinds = ["car"]
    colors = [CAR_COLORS["Red"]]
    for j in range(1, cars):
        dist.append(s0 + (1.2 if j == 1 else j * length / cars))
        lat.append(-0.25 if j == 1 else 0.0)
        kinds.append("car")
        colors.append(BOT_COLOR)
    for j in range(boxes):
        dist.append(s0 + 2.0 + j)
        lat.append(0.25 if j % 2 == 0 else -0.25)
        kinds.append("box")
        colors.append(BOX_COLOR)
    xy, yaw = lines.pose_at(np.asarray(dist) % length)
    lat = np.asarray(lat)
    xy = xy + lat[:, None] * np.stack([-np.sin(yaw), np.cos(yaw)], axis=1)
    return Scene(xy, yaw, tuple(kinds), np.array(colors, dtype=np.uint8))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--track", default="reinvent_base")
    ap.add_argument("--cars", type=int, default=1)
    ap.add_argument("--boxes", type=int, default=0)
    ap.add_argument("--frames", type=int, default=150)
    args = ap.parse_args()
    track = load_track(args.track)
    t0 = time.perf_counter()
    cams = PeopleCameras(track)
    cams.top_background()
    setup = time.perf_counter() - t0
    follow = FollowCam()
    first = scene_at(track, 0, args.cars, args.boxes)
    follow.reset(float(first.xy[0, 0]), float(first.xy[0, 1]), float(first.yaw[0]))
    out = np.empty((cams.height, cams.width, 3), dtype=np.uint8)
    # warm-up: compile (or load from numba's cache) every kernel
    cams.follow(first, out=out)
    cams.top(first, out=out)
    cams.incar(first, out=out)
    times: dict[str, list[float]] = {"follow": [], "top": [], "incar": []}
    for step in range(args.frames):
        sc = scene_at(track, step, args.cars, args.boxes)
        pose = follow.update(float(sc.xy[0, 0]), float(sc.xy[0, 1]), float(sc.yaw[0]), DT)
        for name, fn in (
            ("follow", lambda sc=sc, pose=pose: cams.follow(sc, pose, out=out)),
            ("top", lambda sc=sc: cams.top(sc, out=out)),
            ("incar", lambda sc=sc: cams.incar(sc, out=out)),
        ):
            a = time.thread_time()
            fn()
            times[name].append(time.thread_time() - a)
    print(
        f"track {args.track}, {args.cars} car(s), {args.boxes} box(es), {args.frames} frames "
        f"{cams.width}×{cams.height}; setup_s={setup:.2f} (texture + top background)"
    )
    ms = {}
    for name, ts in times.items():
        a = np.asarray(ts) * 1e3
        ms[name] = float(np.median(a))
        print(f"  {name:6s} median {ms[name]:.2f} ms  p90 {np.percentile(a, 90):.2f} ms  min {a.min():.2f} ms")
    fps = 1e3 / max(ms["follow"], 1e-9)
    print(f"  follow camera: {fps:.0f} frames/s on one core ({math.ceil(15 / fps * 100)} % of a core at 15 fps)")
    print(f"view_render follow_ms={ms['follow']:.2f} top_ms={ms['top']:.2f} incar_ms={ms['incar']:.2f}")


if __name__ == "__main__":
    main()
