"""The racer's benchmark: train from scratch on reInvent2019_track for 30 minutes, then race 3 laps.

A fast discrete action space (8 actions, 1.5–4 m/s), the speed-aware reward of
examples/race_reward_function.py, DRfC's hyperparameters except 3 epochs (the CPU learner is the
bottleneck) and γ = 0.999 (a lap is ~150 steps), the best checkpoint chosen by lap time, then a
3-lap continuous evaluation of it with DRfC's resets.

Usage: python benchmarks/race.py [--minutes 30]
Last line: race minutes=<m> avg_lap_s=<t> laps=<k>/3
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from drlocal.config.workdir import init_workdir, load_job
from drlocal.learn.evaluate import evaluate
from drlocal.learn.trainer import Trainer, peak_memory_mb

ACTIONS = [
    {"steering_angle": -30, "speed": 1.5}, {"steering_angle": -20, "speed": 2.0},
    {"steering_angle": -10, "speed": 2.8}, {"steering_angle": 0, "speed": 4.0},
    {"steering_angle": 0, "speed": 3.2}, {"steering_angle": 10, "speed": 2.8},
    {"steering_angle": 20, "speed": 2.0}, {"steering_angle": 30, "speed": 1.5},
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--dir", type=Path, default=None, help="keep the run in this folder")
    ap.add_argument("--metric", default="laptime", help="DR_TRAIN_BEST_MODEL_METRIC (progress, reward, laptime)")
    ap.add_argument("--discount", type=float, default=0.999, help="discount_factor")
    args = ap.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="race-"))
    init_workdir(root, force=True)
    cf = root / "custom_files"
    md = json.loads((cf / "model_metadata.json").read_text())
    md["action_space"] = ACTIONS
    (cf / "model_metadata.json").write_text(json.dumps(md, indent=2))
    hp = json.loads((cf / "hyperparameters.json").read_text())
    hp.update({"num_epochs": 3, "term_cond_max_episodes": 100000, "discount_factor": args.discount})
    (cf / "hyperparameters.json").write_text(json.dumps(hp, indent=2))
    shutil.copy(Path(__file__).parents[1] / "examples" / "race_reward_function.py", cf / "reward_function.py")
    env = {"DR_WORLD_NAME": "reInvent2019_track", "DR_EVAL_IS_CONTINUOUS": "True", "DR_EVAL_NUMBER_OF_TRIALS": "3",
           "DR_TRAIN_BEST_MODEL_METRIC": args.metric}
    job = load_job(root, environ={}, overrides=env)

    def show(r) -> None:
        print(f"iter {r.iteration}  progress {r.mean_progress:5.1f}%  laps {r.laps}/20  eval {r.eval_progress:5.1f}%  "
              f"{r.steps_per_s:.0f} steps/s  {r.elapsed_s / 60:.1f} min", flush=True)

    trainer = Trainer(job, minutes=args.minutes, seed=0, on_iteration=show)
    t0 = time.perf_counter()
    trainer.train()
    minutes = (time.perf_counter() - t0) / 60
    te = time.perf_counter()
    res = evaluate(job, checkpoint="best", trials=3, continuous=True)
    eval_s = time.perf_counter() - te
    for lap in res.laps:
        print(f"lap {lap.trial}: {lap.status} {lap.completion:.0f}% {lap.elapsed_ms / 1000:.2f} s, resets {lap.resets}")
    done = [lap for lap in res.laps if lap.status == "lap_complete"]
    total = sum(trainer.timers.values()) + eval_s
    print("time shares: " + ", ".join(f"{k} {v / total:.0%}" for k, v in trainer.timers.items())
          + f", evaluation {eval_s / total:.0%}")
    print(f"peak memory: {peak_memory_mb():.0f} MB; env steps {trainer.state.env_steps}; model {job.model_root()}")
    avg = float(np.mean([lap.elapsed_ms for lap in done])) / 1000 if done else float("nan")
    print(f"race minutes={minutes:.1f} avg_lap_s={avg:.2f} laps={len(done)}/3")


if __name__ == "__main__":
    main()
