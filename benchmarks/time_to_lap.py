"""Minutes from scratch until a greedy evaluation completes 3 of 3 laps of reinvent_base.

DRfC's default model (5 discrete actions at 0.6 m/s, front camera, SHALLOW network, PPO with
DRfC's hyperparameters) and the default centre-line reward, trained iteration by iteration;
after each iteration the last checkpoint is evaluated (3 trials, greedy, no resets).

Usage: python benchmarks/time_to_lap.py [--max-minutes 30]
Last line: time_to_lap minutes=<m> env_steps=<n> steps_per_s=<s>
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from drlocal.config.workdir import init_workdir, load_job
from drlocal.learn.evaluate import evaluate
from drlocal.learn.trainer import Trainer, peak_memory_mb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-minutes", type=float, default=30.0)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="time_to_lap-"))
    init_workdir(root)
    job = load_job(root, environ={}, overrides={"DR_EVAL_MAX_RESETS": "0", "DR_EVAL_IS_CONTINUOUS": "False"})
    trainer = Trainer(job, seed=0, max_iterations=1)
    t0 = time.perf_counter()
    eval_s = 0.0
    laps = 0
    while (time.perf_counter() - t0) / 60 < args.max_minutes:
        trainer.iterations_total = trainer.state.iteration + 1
        trainer.train()
        te = time.perf_counter()
        res = evaluate(job, checkpoint="last", trials=3, continuous=False)
        eval_s += time.perf_counter() - te
        laps = sum(lap.status == "lap_complete" and lap.completion >= 100 for lap in res.laps)
        elapsed = time.perf_counter() - t0
        print(f"iteration {trainer.state.iteration}: eval laps {laps}/3, {trainer.state.env_steps} env steps, "
              f"{elapsed / 60:.2f} min", flush=True)
        if laps == 3:
            break
    minutes = (time.perf_counter() - t0) / 60
    total = sum(trainer.timers.values()) + eval_s
    shares = {k: v / total for k, v in trainer.timers.items()} | {"evaluation": eval_s / total}
    print("time shares: " + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()))
    print(f"peak memory: {peak_memory_mb():.0f} MB; model folder {job.model_root()}")
    steps = trainer.state.env_steps
    if laps < 3:
        print(f"no 3/3 laps within {args.max_minutes} min")
    print(f"time_to_lap minutes={minutes:.2f} env_steps={steps} steps_per_s={steps / (minutes * 60):.1f}")


if __name__ == "__main__":
    main()
