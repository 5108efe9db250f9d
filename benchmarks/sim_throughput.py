"""Steps per second of the vector env with camera observations and a trivial Python reward, 1 thread.

Usage: python benchmarks/sim_throughput.py [--seconds 5]
Last line: sim_throughput cars=64 steps_per_s=<n> vs_gazebo=<n/15>x
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import cProfile
import pstats
import time

import numpy as np

from drlocal.env.vector_env import DeepRacerVectorEnv


def trivial_reward(params: dict) -> float:
    return 1.0 if params["all_wheels_on_track"] else 1e-3


def measure(cars: int, seconds: float) -> float:
    env = DeepRacerVectorEnv(cars, "reinvent_base", reward_function=trivial_reward)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(20):  # warm-up (numba JIT, caches)
        env.step(rng.integers(0, 5, cars))
    steps = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        env.step(rng.integers(0, 5, cars))
        steps += cars
    return steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--profile", action="store_true", help="print where the time goes at N=64")
    args = ap.parse_args()
    results = {}
    for n in (1, 16, 64):
        results[n] = measure(n, args.seconds)
        print(f"cars={n:3d}  {results[n]:9.0f} steps/s")
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        measure(64, args.seconds)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
    print(f"sim_throughput cars=64 steps_per_s={results[64]:.0f} vs_gazebo={results[64] / 15:.0f}x")


if __name__ == "__main__":
    main()
