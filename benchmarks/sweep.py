"""A small sweep on this machine: the race template with 4 variants, each trained for `--minutes`, raced 3 laps.

Variants (grid): discount_factor 0.99 / 0.999 × num_epochs 3 / 5 on reInvent2019_track, `--parallel` at a time
as Ray tasks (1 CPU each) on a local Ray; the leaderboard goes to <dir>/sweeps/bench/leaderboard.csv.

Usage: python benchmarks/sweep.py [--minutes 5] [--parallel 2] [--dir D]
Last line: sweep variants=4 best_avg_lap_s=<t> best=<variant> wall_min=<m>
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

from drlocal.config.workdir import init_workdir
from drlocal.learn.sweep import run_sweep


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--dir", type=Path, default=None)
    a = ap.parse_args()
    root = a.dir or Path(tempfile.mkdtemp(prefix="sweep-"))
    init_workdir(root, force=True, template="race")
    spec = root / "sweep.yaml"
    spec.write_text(f"name: bench\nbudget: {{minutes: {a.minutes}}}\nparallel: {a.parallel}\nrace: {{laps: 3}}\n"
                    "vary:\n  hyperparameters.discount_factor: [0.99, 0.999]\n  hyperparameters.num_epochs: [3, 5]\n")
    run = run_sweep(spec, say=lambda m: print(m, flush=True))
    print(run.csv_path.read_text())
    best = run.board.ranked()[0]
    avg = best.avg_lap_s if best.laps else math.nan
    print(f"sweep variants={len(run.board.entries)} best_avg_lap_s={avg:.2f} best={best.model} "
          f"laps={best.laps}/{best.trials} wall_min={run.wall_s / 60:.1f}")


if __name__ == "__main__":
    main()
