"""Memory over a long training run: does RSS stay flat?

Trains the DRfC default model and a continuous-action model (0.5-4 m/s, the speed-aware example
reward, DRfC's default hyperparameters), each alone and beside a busy neighbour process competing
for the CPU (the condition under which glibc's per-thread arenas grew memory before), as real
`drlocal train` processes. RSS of the training process is sampled every `--every` seconds;
growth is the least-squares slope of RSS over time after iteration `--after` (MB per hour).

    python benchmarks/soak.py [--minutes 60] [--every 30] [--after 10] [--models default,continuous]
        [--neighbour both|alone|busy] [--drlocal PATH]

Prints one line per run and, last, `soak minutes=<m> peak_mb=<p> growth_mb_per_h=<g>` (the worst
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
        shutil.copy(ROOT / "examples" / "race_reward_function.py", folder / "custom_files" / "reward_function.py")
        with (folder / "run.env").open("a") as f:
            f.write("DR_WORLD_NAME=reInvent2019_track\n")
    return folder


def soak(drlocal: str, kind: str, busy: bool, minutes: float, every: float, after: int) -> dict[str, float]:
    folder = make_folder(drlocal, kind)
    neighbour = None
    if busy:  # a CPU-bound neighbour that also allocates, like another program on the laptop
        code = "import numpy as np\nwhile True:\n    a = np.random.rand(512, 512); a @ a"
        neighbour = subprocess.Popen([sys.executable, "-c", code])
    log = folder / "train.log"
    with log.open("w") as out:
        proc = subprocess.Popen([drlocal, "train", "--dir", str(folder), "--minutes", str(minutes), "--plain"],
                                stdout=out, stderr=subprocess.STDOUT)
    samples: list[tuple[float, float, int]] = []  # (seconds, rss MB, iterations done)
    t0 = time.monotonic()
    try:
        while proc.poll() is None:
            rss = rss_mb(proc.pid)
            iters = len(re.findall(r"^iter ", log.read_text(errors="replace"), flags=re.M))
            if rss is not None:
                samples.append((time.monotonic() - t0, rss, iters))
            time.sleep(every)
    finally:
        if neighbour is not None:
            neighbour.kill()
        proc.wait()
    shutil.rmtree(folder, ignore_errors=True)
    late = [(t, r) for t, r, k in samples if k >= after]
    growth = float("nan")
    if len(late) >= 3:
        t = np.array([s[0] for s in late]) / 3600.0
        r = np.array([s[1] for s in late])
        growth = float(np.polyfit(t, r, 1)[0])
    iters = samples[-1][2] if samples else 0
    peak = max((r for _, r, _ in samples), default=float("nan"))
    return {"peak": peak, "growth": growth, "iterations": iters, "samples": len(late)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--every", type=float, default=30.0, help="RSS sampling interval [s]")
    ap.add_argument("--after", type=int, default=10, help="growth is measured after this many iterations")
    ap.add_argument("--models", default="default,continuous")
    ap.add_argument("--neighbour", choices=("both", "alone", "busy"), default="both")
    ap.add_argument("--drlocal", default=str(Path(sys.executable).parent / "drlocal"))
    a = ap.parse_args()
    busy_modes = {"both": (False, True), "alone": (False,), "busy": (True,)}[a.neighbour]
    worst_peak, worst_growth = 0.0, float("-inf")
    for kind in a.models.split(","):
        for busy in busy_modes:
            r = soak(a.drlocal, kind, busy, a.minutes, a.every, a.after)
            print(f"soak_run model={kind} neighbour={'busy' if busy else 'none'} iterations={r['iterations']} "
                  f"peak_mb={r['peak']:.0f} growth_mb_per_h={r['growth']:.1f} samples_after_{a.after}={r['samples']}",
                  flush=True)
            worst_peak = max(worst_peak, r["peak"])
            if r["growth"] == r["growth"]:
                worst_growth = max(worst_growth, r["growth"])
    print(f"soak minutes={a.minutes:g} peak_mb={worst_peak:.0f} growth_mb_per_h={worst_growth:.1f}")


if __name__ == "__main__":
    main()
