"""Memory over a long training run: does RSS stay flat?

Trains the DRfC default model and a continuous-action model (0.5-4 m/s, the speed-aware example
reward, DRfC's default hyperparameters), each alone and beside a busy neighbour process competing
for the CPU (the condition under which glibc's per-thread arenas grew memory before), as real
`drlocal train` processes. RSS of the training process is sampled every `--every` seconds;
growth is the least-squares slope of RSS over time after iteration `--after` (MB per hour).

    python benchmarks/soak.py [--minutes 60] [--every 30] [--after 10] [--models default,continuous]
        [--neighbour both|alone|busy] [--together] [--csv FILE] [--drlocal PATH]

`--together` trains the models at the same time (each the other's busy neighbour, two trainings
sharing a laptop). Prints one line per run and, last, `soak minutes=<m> peak_mb=<p> growth_mb_per_h=<g>` (the worst
run's peak and growth).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONTINUOUS = {
    "action_space": {"steering_angle": {"low": -30.0, "high": 30.0}, "speed": {"low": 0.5, "high": 4.0}},
    "sensor": ["FRONT_FACING_CAMERA"], "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
    "training_algorithm": "clipped_ppo", "action_space_type": "continuous", "version": "5",
}


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return None


def make_folder(drlocal: str, kind: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=f"drlocal-soak-{kind}-"))
    subprocess.run([drlocal, "init", str(folder), "--force"], check=True, capture_output=True)
    if kind == "continuous":
        (folder / "custom_files" / "model_metadata.json").write_text(json.dumps(CONTINUOUS, indent=4))
        shutil.copy(ROOT / "src" / "drlocal" / "templates" / "race" / "reward_function.py",
                    folder / "custom_files" / "reward_function.py")
        with (folder / "run.env").open("a") as f:
            f.write("DR_WORLD_NAME=reInvent2019_track\n")
    return folder


class Run:
    """One `drlocal train` process being sampled: (seconds, RSS MB, iterations done) every poll."""

    def __init__(self, drlocal: str, kind: str, minutes: float, csv: Path | None) -> None:
        self.kind = kind
        self.folder = make_folder(drlocal, kind)
        self.log = self.folder / "train.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [drlocal, "train", "--dir", str(self.folder), "--minutes", str(minutes), "--plain"],
                stdout=out, stderr=subprocess.STDOUT)
        self.samples: list[tuple[float, float, int]] = []
        self.steps_at: dict[int, int] = {}  # iterations done -> transitions so far (first sample that saw it)
        self.csv = csv

    def steps(self) -> int:
        """Training transitions so far: the M of the newest checkpoint's name N_Step-M."""
        best = (-1, 0)
        for p in (self.folder / "data" / "bucket" / "rl-deepracer-sagemaker" / "model").glob("*_Step-*.ckpt.pt"):
            m = re.match(r"(\d+)_Step-(\d+)", p.name)
            if m:
                best = max(best, (int(m.group(1)), int(m.group(2))))
        return best[1]

    def sample(self, t: float) -> None:
        rss = rss_mb(self.proc.pid)
        iters = len(re.findall(r"^iter ", self.log.read_text(errors="replace"), flags=re.M))
        if rss is not None:
            steps = self.steps()
            self.samples.append((t, rss, iters))
            self.steps_at.setdefault(iters, steps)
            if self.csv is not None:  # the cumulative transitions tell how large each iteration was
                with self.csv.open("a") as f:
                    f.write(f"{self.kind},{t:.0f},{rss:.1f},{iters},{steps}\n")

    def result(self, after: int) -> dict[str, float]:
        late = [(t, r) for t, r, k in self.samples if k >= after]
        growth = float("nan")
        if len(late) >= 3:
            t = np.array([s[0] for s in late]) / 3600.0
            r = np.array([s[1] for s in late])
            growth = float(np.polyfit(t, r, 1)[0])
        iters = self.samples[-1][2] if self.samples else 0
        peak = max((r for _, r, _ in self.samples), default=float("nan"))
        return {"peak": peak, "growth": growth, "iterations": iters, "samples": len(late),
                "fixed": self.fixed_size_growth(after)}

    def fixed_size_growth(self, after: int) -> float:
        """RSS growth [MB/h] at a fixed iteration size: the time coefficient of RSS ~ 1 + t + transitions of the
        iteration in progress, over the samples after iteration `after`. An iteration's frames are held until
        its update is done, so RSS follows the iteration's size; a leak shows as growth at a fixed size."""
        size = {i: self.steps_at[i + 1] - self.steps_at[i] for i in self.steps_at if i + 1 in self.steps_at}
        rows = [(t / 3600.0, size[k] / 1000.0, r) for t, r, k in self.samples if k >= after and k in size]
        if len(rows) < 4:
            return float("nan")
        a = np.array(rows)
        coef = np.linalg.lstsq(np.column_stack([np.ones(len(a)), a[:, 0], a[:, 1]]), a[:, 2], rcond=None)[0]
        return float(coef[1])


def soak(drlocal: str, kinds: list[str], busy: bool, minutes: float, every: float, after: int,
         csv: Path | None) -> list[dict[str, float]]:
    """Train `kinds` at the same time (each the others' neighbour), plus a numpy neighbour if `busy`."""
    neighbour = None
    if busy:  # a CPU-bound neighbour that also allocates, like another program on the laptop
        code = "import numpy as np\nwhile True:\n    a = np.random.rand(512, 512); a @ a"
        neighbour = subprocess.Popen([sys.executable, "-c", code])
    runs = [Run(drlocal, kind, minutes, csv) for kind in kinds]
    t0 = time.monotonic()
    try:
        while any(r.proc.poll() is None for r in runs):
            for r in runs:
                if r.proc.poll() is None:
                    r.sample(time.monotonic() - t0)
            time.sleep(every)
    finally:
        if neighbour is not None:
            neighbour.kill()
        for r in runs:
            r.proc.wait()
    for r in runs:
        if r.proc.returncode != 0:
            print(r.log.read_text(errors="replace")[-2000:], file=sys.stderr)
        shutil.rmtree(r.folder, ignore_errors=True)
    return [r.result(after) for r in runs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--every", type=float, default=30.0, help="RSS sampling interval [s]")
    ap.add_argument("--after", type=int, default=10, help="growth is measured after this many iterations")
    ap.add_argument("--models", default="default,continuous")
    ap.add_argument("--neighbour", choices=("both", "alone", "busy"), default="both")
    ap.add_argument("--together", action="store_true",
                    help="train the models at the same time, each the other's busy neighbour")
    ap.add_argument("--csv", help="append every sample (model, seconds, RSS MB, iterations, transitions) to this file")
    ap.add_argument("--drlocal", default=str(Path(sys.executable).parent / "drlocal"))
    a = ap.parse_args()
    busy_modes = {"both": (False, True), "alone": (False,), "busy": (True,)}[a.neighbour]
    kinds = a.models.split(",")
    groups = [kinds] if a.together else [[k] for k in kinds]
    csv = Path(a.csv) if a.csv else None
    worst_peak, worst_growth, worst_fixed = 0.0, float("-inf"), float("-inf")
    for group in groups:
        for busy in busy_modes:
            results = soak(a.drlocal, group, busy, a.minutes, a.every, a.after, csv)
            for kind, r in zip(group, results, strict=True):
                others = [g for g in group if g != kind] + (["numpy"] if busy else [])
                print(f"soak_run model={kind} neighbour={'+'.join(others) or 'none'} "
                      f"iterations={r['iterations']} peak_mb={r['peak']:.0f} "
                      f"growth_mb_per_h={r['growth']:.1f} at_fixed_size_mb_per_h={r['fixed']:.1f} "
                    f"samples_after_{a.after}={r['samples']}", flush=True)
                worst_peak = max(worst_peak, r["peak"])
                if r["growth"] == r["growth"]:
                    worst_growth = max(worst_growth, r["growth"])
                if r["fixed"] == r["fixed"]:
                    worst_fixed = max(worst_fixed, r["fixed"])
    print(f"soak minutes={a.minutes:g} peak_mb={worst_peak:.0f} growth_mb_per_h={worst_growth:.1f} "
          f"at_fixed_size_mb_per_h={worst_fixed:.1f}")


if __name__ == "__main__":
    main()
