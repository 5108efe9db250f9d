"""Camera rendering throughput: front-camera images per second on one core (target 10,000 for 64 cars).

Renders N = 1, 16 and 64 cars at poses spread around reinvent_base (on the centre line, heading along
the track, plus small lateral offsets and heading errors), after JIT warm-up, and reports the best of
several timed repetitions (CPU time of this process, so that other load on a shared machine counts
less). Run: `python benchmarks/camera_render.py`; the last line is the summary for 64 cars.

With `--objects K` every car also gets its own K objects ahead of it (an object-avoidance /
head-to-bot scene in view): at 1, 2, ..., K m ahead along the centre line, alternately an obstacle box
and a bot car, on alternating lanes (inner, outer: a quarter track width off the centre line). The cost
per image with and without them is printed, the last line being `camera_objects ratio=<with/without>`
for 64 cars (target ≤ 1.5).
"""

from __future__ import annotations

import os

os.environ["NUMBA_NUM_THREADS"] = "1"  # before numba is imported: the target is per core

import argparse
import time

import numpy as np

from drlocal.sensors.camera import CameraRenderer
from drlocal.sensors.objects_view import object_boxes
from drlocal.tracks import load_track

TARGET = 10_000.0


def poses(track, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    dist = (np.arange(n) + rng.uniform(0, 1, n)) / n * track.length
    xy, yaw = track.forward.pose_at(dist)
    lat = rng.uniform(-0.15, 0.15, n)
    x = xy[:, 0] - np.sin(yaw) * lat
    y = xy[:, 1] + np.cos(yaw) * lat
    return x, y, yaw + rng.uniform(-0.3, 0.3, n)


def objects_ahead(track, n: int, k: int, seed: int = 0) -> np.ndarray:
    """Per-car render primitives (N, M, cols) of k objects 1, 2, ..., k m ahead of each car of `poses`."""
    rng = np.random.default_rng(seed)
    dist = (np.arange(n) + rng.uniform(0, 1, n)) / n * track.length  # the same draw as poses()
    ahead = dist[:, None] + 1.0 + np.arange(k)[None, :]
    xy, yaw = track.forward.pose_at((ahead % track.length).ravel())
    lane = np.where(np.arange(k) % 2 == 0, 1.0, -1.0) * track.width / 4  # inner (left, ccw), outer, ...
    lat = np.broadcast_to(lane, (n, k)).ravel()
    oxy = np.stack([xy[:, 0] - np.sin(yaw) * lat, xy[:, 1] + np.cos(yaw) * lat], -1).reshape(n, k, 2)
    kinds = ["box_obstacle" if j % 2 == 0 else "bot_car" for j in range(k)]
    return object_boxes(oxy, yaw.reshape(n, k), kinds)


def bench(renderer: CameraRenderer, n: int, camera: str, reps: int, objects: int = 0) -> tuple[float, float]:
    """Images per second without objects and, if `objects`, with that many per car (else 0). The two are
    timed alternately, rep by rep, so that a change of machine load hits both alike."""
    x, y, yaw = poses(renderer.track, n)
    sets = [None] + ([objects_ahead(renderer.track, n, objects)] if objects else [])
    out = renderer.render(x, y, yaw, camera=camera)  # warm-up (and JIT compile on the first call)
    for boxes in sets[1:]:
        renderer.render(x, y, yaw, camera=camera, out=out, boxes=boxes)
    best = [np.inf] * len(sets)
    calls = max(1, int(256 // n))
    for _ in range(reps):
        for k, boxes in enumerate(sets):
            t0 = time.process_time()
            for _ in range(calls):
                renderer.render(x, y, yaw, camera=camera, out=out, boxes=boxes)
            best[k] = min(best[k], (time.process_time() - t0) / calls)
    return n / best[0], (n / best[1] if objects else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--track", default="reinvent_base")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--stereo", action="store_true", help="also time STEREO_CAMERAS (two images per car)")
    ap.add_argument("--objects", type=int, default=0, help="also time K objects ahead of every car (e.g. 6)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    renderer = CameraRenderer(load_track(args.track))
    t_init = time.perf_counter() - t0
    t0 = time.perf_counter()
    renderer.render(np.array([1.0]), np.array([1.0]), np.array([0.0]))
    t_jit = time.perf_counter() - t0
    print(
        f"camera_render track={args.track} init_s={t_init:.2f} first_render_s={t_jit:.2f} "
        f"texture={renderer.texture.level0.shape[1]}x{renderer.texture.level0.shape[0]} "
        f"levels={renderer.texture.n_levels} slots={renderer.plan.slot_row.size}"
    )
    if args.stereo:
        for n in (1, 16, 64):
            ips, ips_obj = bench(renderer, n, "stereo", args.reps, args.objects)
            print(f"camera_render stereo cars={n} observations_per_s={ips:.0f} camera_images_per_s={2 * ips:.0f}")
            if args.objects:
                print(f"camera_objects stereo cars={n} objects={args.objects} ratio={ips / ips_obj:.2f}")
    result = ratio = 0.0
    for n in (1, 16, 64):
        result, with_obj = bench(renderer, n, "front", args.reps, args.objects)
        print(f"camera_render front cars={n} images_per_s={result:.0f} us_per_image={1e6 / result:.1f}")
        if args.objects:
            ratio = result / with_obj
            print(
                f"camera_objects front cars={n} objects={args.objects} us_per_image={1e6 / with_obj:.1f} "
                f"plain_us_per_image={1e6 / result:.1f} ratio={ratio:.2f}"
            )
    print(f"camera_render cars=64 images_per_s={result:.0f} vs_target={result / TARGET:.2f}x")
    if args.objects:
        print(f"camera_objects ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
