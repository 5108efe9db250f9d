"""The racer's benchmark: a race template trained from scratch for 30 minutes, then a 3-lap race.

`drlocal init --template race` (11 discrete actions 1.8-4 m/s, the racing-line reward paying speed², γ = 0.99,
3 epochs, best checkpoint by lap time; see src/drlocal/templates/race/RACE-TEMPLATE.md) on reInvent2019_track, trained
for `--minutes` on this machine, then its best checkpoint races 3 continuous laps with DRfC's resets.

Usage: python benchmarks/race.py [--template race|race-continuous] [--minutes 30] [--seed 0 | --seeds 0,1,2]
                                [--track T] [--dir D] [--metadata model_metadata.json]
                                [--reward reward_function.py] [--hyperparameters hyperparameters.json]
Last line: race minutes=<m> avg_lap_s=<t> laps=<k>/3; with --seeds (one run after the other, each in
<dir>/seed-<s>): race seeds=<n> minutes=<m> avg_lap_s=<mean over seeds> worst_avg_lap_s=<t> laps=<k>/<3n>
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from drlocal.config.workdir import init_workdir, load_job
from drlocal.learn.evaluate import evaluate
from drlocal.learn.trainer import Trainer, peak_memory_mb


def run_one(args: argparse.Namespace, root: Path, seed: int) -> tuple[float, float, int]:
    """Train the template in `root` for args.minutes with `seed`, race 3 laps; (minutes, avg lap s, laps done)."""
    init_workdir(root, force=True, template=args.template)
    for given, name in ((args.metadata, "model_metadata.json"), (args.reward, "reward_function.py"),
                        (args.hyperparameters, "hyperparameters.json")):
        if given is not None:
            shutil.copy(given, root / "custom_files" / name)
    job = load_job(root, environ={}, overrides={"DR_WORLD_NAME": args.track} if args.track else None)

    def show(r) -> None:
        lap = f"lap {r.lap_time_s:.2f} s" if r.lap_time_s is not None else ""
        print(f"iter {r.iteration}  progress {r.mean_progress:5.1f}%  laps {r.laps}  "
              f"eval {r.eval_progress:5.1f}%  {lap}  {r.racer.line()}  {r.steps_per_s:.0f} steps/s  "
              f"{r.elapsed_s / 60:.1f} min", flush=True)

    trainer = Trainer(job, minutes=args.minutes, seed=seed, on_iteration=show)
    t0 = time.perf_counter()
    trainer.train()
    minutes = (time.perf_counter() - t0) / 60
    te = time.perf_counter()
    res = evaluate(job, checkpoint="best", trials=3, continuous=True)
    eval_s = time.perf_counter() - te
    for lap in res.laps:
        print(f"lap {lap.trial}: {lap.status} {lap.completion:.0f}% {lap.elapsed_ms / 1000:.2f} s, resets {lap.resets}")
    done = [lap for lap in res.laps if lap.status == "lap_complete"]
    clean = [lap for lap in done if lap.resets == 0]
    total = sum(trainer.timers.values()) + eval_s
    print("time shares: " + ", ".join(f"{k} {v / total:.0%}" for k, v in trainer.timers.items())
          + f", evaluation {eval_s / total:.0%}")
    print(f"peak memory: {peak_memory_mb():.0f} MB; iterations {trainer.state.iteration}; env steps "
          f"{trainer.state.env_steps}; best {res.checkpoint}; clean laps {len(clean)}/3; model {job.model_root()}")
    avg = float(np.mean([lap.elapsed_ms for lap in done])) / 1000 if done else float("nan")
    print(f"race seed={seed} minutes={minutes:.1f} avg_lap_s={avg:.2f} laps={len(done)}/3", flush=True)
    return minutes, avg, len(done)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--template", default="race", choices=("race", "race-continuous"))
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", default=None, help="comma-separated seeds, run one after the other (e.g. 0,1,2)")
    ap.add_argument("--track", default=None, help="train and race on this track (default: the template's)")
    ap.add_argument("--dir", type=Path, default=None, help="keep the run(s) in this folder")
    ap.add_argument("--metadata", type=Path, default=None, help="try this model_metadata.json instead of the "
                    "template's (an action space experiment)")
    ap.add_argument("--reward", type=Path, default=None, help="try this reward_function.py instead")
    ap.add_argument("--hyperparameters", type=Path, default=None, help="try this hyperparameters.json instead")
    args = ap.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="race-"))
    if args.seeds is None:
        minutes, avg, laps = run_one(args, root, args.seed)
        print(f"race minutes={minutes:.1f} avg_lap_s={avg:.2f} laps={laps}/3")
        return
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    runs = [run_one(args, root / f"seed-{seed}", seed) for seed in seeds]
    avgs = [avg for _, avg, _ in runs]
    print(f"race seeds={len(seeds)} minutes={np.mean([m for m, _, _ in runs]):.1f} avg_lap_s={np.mean(avgs):.2f} "
          f"worst_avg_lap_s={max(avgs):.2f} laps={sum(k for _, _, k in runs)}/{3 * len(seeds)}")


if __name__ == "__main__":
    main()
