"""Object avoidance (and head-to-bot) race benchmark: train from scratch, then race 3 laps with DeepRacer's
collision penalty.

Defaults: reInvent2019_track, 3 boxes placed at random at every episode reset (DR_OA_RANDOMIZE_OBSTACLE_LOCATIONS),
examples/avoid_reward_function.py, 6 discrete actions up to 3 m/s, DRfC's hyperparameters except 3 epochs, best
checkpoint by progress, then a 3-lap continuous evaluation with DRfC's resets (collision penalty 5 s, off track 5 s).
`--race head_to_bot` races 3 bot cars at DRfC's defaults instead (benchmarks/race_h2b.py does that).

Usage: python benchmarks/race_oa.py [--minutes 30] [--race object_avoidance|head_to_bot]
Last line: race_oa minutes=<m> avg_lap_s=<t> laps=<k>/3 crashes=<c>   (race_h2b … for head-to-bot)
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
    {"steering_angle": -30, "speed": 1.2}, {"steering_angle": -15, "speed": 2.0},
    {"steering_angle": 0, "speed": 3.0}, {"steering_angle": 0, "speed": 2.0},
    {"steering_angle": 15, "speed": 2.0}, {"steering_angle": 30, "speed": 1.2},
]


def main(default_race: str = "object_avoidance") -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--dir", type=Path, default=None, help="keep the run in this folder")
    ap.add_argument("--race", default=default_race, choices=["object_avoidance", "head_to_bot"])
    ap.add_argument("--track", default="reInvent2019_track")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="race-oa-"))
    init_workdir(root, force=True)
    cf = root / "custom_files"
    md = json.loads((cf / "model_metadata.json").read_text())
    md["action_space"] = ACTIONS
    (cf / "model_metadata.json").write_text(json.dumps(md, indent=2))
    hp = json.loads((cf / "hyperparameters.json").read_text())
    hp.update({"num_epochs": 3, "term_cond_max_episodes": 100000, "discount_factor": 0.999})
    (cf / "hyperparameters.json").write_text(json.dumps(hp, indent=2))
    shutil.copy(Path(__file__).parents[1] / "examples" / "avoid_reward_function.py", cf / "reward_function.py")
    env = {"DR_WORLD_NAME": args.track, "DR_EVAL_IS_CONTINUOUS": "True", "DR_EVAL_NUMBER_OF_TRIALS": "3",
           "DR_EVAL_COLLISION_PENALTY": "5.0", "DR_EVAL_OFF_TRACK_PENALTY": "5.0"}
    if args.race == "object_avoidance":
        env.update({"DR_RACE_TYPE": "OBJECT_AVOIDANCE", "DR_OA_NUMBER_OF_OBSTACLES": "3",
                    "DR_OA_RANDOMIZE_OBSTACLE_LOCATIONS": "True", "DR_OA_MIN_DISTANCE_BETWEEN_OBSTACLES": "2.0"})
        label = "race_oa"
    else:
        env.update({"DR_RACE_TYPE": "HEAD_TO_BOT", "DR_H2B_NUMBER_OF_BOT_CARS": "3"})
        label = "race_h2b"
    job = load_job(root, environ={}, overrides=env)

    def show(r) -> None:
        print(f"iter {r.iteration}  progress {r.mean_progress:5.1f}%  laps {r.laps}/20  eval {r.eval_progress:5.1f}%  "
              f"{r.steps_per_s:.0f} steps/s  {r.elapsed_s / 60:.1f} min", flush=True)

    trainer = Trainer(job, minutes=args.minutes, seed=args.seed, on_iteration=show)
    t0 = time.perf_counter()
    trainer.train()
    minutes = (time.perf_counter() - t0) / 60
    res = evaluate(job, checkpoint="best", trials=3, continuous=True)
    for lap in res.laps:
        print(f"lap {lap.trial}: {lap.status} {lap.completion:.0f}% {lap.elapsed_ms / 1000:.2f} s, "
              f"crashes {lap.crashes}, off track {lap.off_track}, resets {lap.resets}")
    done = [lap for lap in res.laps if lap.status == "lap_complete"]
    crashes = sum(lap.crashes for lap in res.laps)
    print(f"peak memory: {peak_memory_mb():.0f} MB; env steps {trainer.state.env_steps}; model {job.model_root()}")
    avg = float(np.mean([lap.elapsed_ms for lap in done])) / 1000 if done else float("nan")
    print(f"{label} minutes={minutes:.1f} avg_lap_s={avg:.2f} laps={len(done)}/3 crashes={crashes}")


if __name__ == "__main__":
    main()
