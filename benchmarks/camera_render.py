"""Camera rendering throughput: front-camera images per second on one core (target 10,000 for 64 cars).

Renders N = 1, 16 and 64 cars at poses spread around reinvent_base (on the centre line, heading along
the track, plus small lateral offsets and heading errors), after JIT warm-up, and reports the best of
several timed repetitions (CPU time of this process, so that other load on a shared machine counts
less). Run: `python benchmarks/camera_render.py`; the last line is the summary for 64 cars.
"""

from __future__ import annotations

import os

os.environ["NUMBA_NUM_THREADS"] = "1"  # before numba is imported: the target is per core

import argparse
import time

import numpy as np

from drlocal.sensors.camera import CameraRenderer
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


def bench(renderer: CameraRenderer, n: int, camera: str, reps: int) -> float:
    x, y, yaw = poses(renderer.track, n)
    out = renderer.render(x, y, yaw, camera=camera)  # warm-up (and JIT compile on the first call)
    best = np.inf
    calls = max(1, int(256 // n))
    for _ in range(reps):
        t0 = time.process_time()
        for _ in range(calls):
            renderer.render(x, y, yaw, camera=camera, out=out)
        best = min(best, (time.process_time() - t0) / calls)
    return n / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--track", default="reinvent_base")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--stereo", action="store_true", help="also time STEREO_CAMERAS (two images per car)")
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
            ips = bench(renderer, n, "stereo", args.reps)
            print(f"camera_render stereo cars={n} observations_per_s={ips:.0f} camera_images_per_s={2 * ips:.0f}")
    result = 0.0
    for n in (1, 16, 64):
        result = bench(renderer, n, "front", args.reps)
        print(f"camera_render front cars={n} images_per_s={result:.0f} us_per_image={1e6 / result:.1f}")
    print(f"camera_render cars=64 images_per_s={result:.0f} vs_target={result / TARGET:.2f}x")


if __name__ == "__main__":
    main()
