"""Scale-out on Ray: training env steps per second with 1, 2, 4 workers and 1, 2 learners, what each iteration
sends, and the gradient all-reduce's cost per MB.

A default model (SHALLOW camera network, DRfC's action space, reinvent_base) trains `--iterations`
iterations of `--episodes` episodes each (num_epochs 1, so that a run takes seconds) after one warm-up
iteration, for every (workers, learners) pair, first on a private Ray on this machine, then on a two-node
Ray cluster on this machine (`ray start --head` + `ray start --address`, token authentication).
The figure per configuration is env steps / wall second over the measured iterations (collection,
evaluation, update and checkpoint: everything an iteration does), and its ratio to 1 worker, 1 learner.
Also printed: the bytes sent per iteration (the acting weights to the workers, the transitions back,
the shards to the learners) and the time of one all-reduce of the SHALLOW network's gradients between
two learners, per MB.

On a 2-core machine no speed-up is expected (every worker and learner shares the same two cores);
the numbers say what each part costs so that the README can say where a real cluster's bottleneck is.

Run: `python benchmarks/scale.py [--episodes 8] [--iterations 3] [--no-cluster]`; the last line is
`scale workers=2 learners=1 steps_per_s=<n> vs_one=<ratio> allreduce_ms_per_mb=<t>`.
"""

from __future__ import annotations

import os
import secrets

# Ray reads its token settings when it is imported: the cluster's nodes and this process share one token
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ray

from drlocal.config.workdir import init_workdir, load_job
from drlocal.learn.trainer import Trainer

CONFIGS = [(1, 1), (2, 1), (4, 1), (1, 2), (2, 2)]
RAY = Path(sys.executable).parent / "ray"


def folder(root: Path, episodes: int, iterations: int) -> Path:
    init_workdir(root)
    hp = root / "custom_files" / "hyperparameters.json"
    h = json.loads(hp.read_text())
    h.update({"num_episodes_between_training": episodes, "num_epochs": 1,
              "term_cond_max_episodes": (iterations + 1) * episodes})
    hp.write_text(json.dumps(h))
    with (root / "run.env").open("a") as f:
        f.write("DR_TRAIN_MIN_EVAL_TRIALS=1\n")
    return root


def run(workers: int, learners: int, episodes: int, iterations: int) -> dict[str, float]:
    """One training; env steps per second over the iterations after the first, and transfer sizes."""
    with tempfile.TemporaryDirectory() as tmp:
        job = load_job(folder(Path(tmp), episodes, iterations), environ={})
        marks: list[tuple[float, int]] = []
        sizes = {"weights": 0, "rollouts": 0, "shards": 0}
        trainer = Trainer(job, seed=0, workers=workers, learners=learners,
                          on_iteration=lambda r: marks.append((time.perf_counter(), r.env_steps)))

        def sample_sizes(report) -> None:
            marks.append((time.perf_counter(), report.env_steps))
            if trainer.pool is not None:
                sizes["weights"] = trainer.pool.sent_bytes
                sizes["rollouts"] = trainer.pool.received_bytes
            if trainer.group is not None:
                sizes["shards"] = trainer.group.sent_bytes

        trainer.on_iteration = sample_sizes
        trainer.train()
    (t0, s0), (t1, s1) = marks[0], marks[-1]
    return {"steps_per_s": (s1 - s0) / (t1 - t0), **sizes}


def allreduce_ms_per_mb() -> float:
    """One all-reduce of the SHALLOW actor-critic's gradients (11.7 M floats) between 2 learners [ms per MB]."""
    from drlocal.learn.distributed import LearnerGroup
    from drlocal.learn.networks import PPOActorCritic
    from drlocal.learn.ppo import PPOConfig

    args = {"sensors": {"FRONT_FACING_CAMERA": 0}, "network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
            "num_actions": 5, "continuous": False}
    model = PPOActorCritic(**args)
    nbytes = sum(p.numel() for p in model.parameters()) * 4
    group = LearnerGroup.for_ppo(2, model, args, PPOConfig())
    try:
        secs = ray.get([a.time_all_reduce.remote(nbytes, 10) for a in group.actors])
    finally:
        group.close()
    return max(secs) * 1000.0 / (nbytes / 1e6)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def node_ports() -> list[str]:
    return [f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}", f"--metrics-export-port={free_port()}"]


def start_cluster(temp: str) -> str:
    port = free_port()
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=2", "--disable-usage-stats"]
    subprocess.run([str(RAY), "start", "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}",
                    *common, *node_ports()], check=True, capture_output=True, timeout=180)
    subprocess.run([str(RAY), "start", f"--address=127.0.0.1:{port}", *common, *node_ports()], check=True,
                   capture_output=True, timeout=180)
    return f"127.0.0.1:{port}"


def table(title: str, results: dict[tuple[int, int], dict[str, float]]) -> None:
    base = results[(1, 1)]["steps_per_s"] if (1, 1) in results else None
    print(title)
    for (w, k), r in results.items():
        ratio = f"x{r['steps_per_s'] / base:.2f}" if base else ""
        print(f"  workers={w} learners={k}: {r['steps_per_s']:6.1f} env steps/s {ratio:6s}  weights sent "
              f"{r['weights'] / 1e6:5.1f} MB  transitions back {r['rollouts'] / 1e6:5.1f} MB  shards to learners "
              f"{r['shards'] / 1e6:5.1f} MB per iteration")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--episodes", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--no-cluster", action="store_true", help="skip the two-node cluster on this machine")
    args = ap.parse_args()
    local: dict[tuple[int, int], dict[str, float]] = {}
    for w, k in CONFIGS:
        if w == 1 and k == 1 and ray.is_initialized():
            ray.shutdown()
        if (w > 1 or k > 1) and not ray.is_initialized():
            ray.init(num_cpus=8, include_dashboard=False, logging_level="WARNING")
        local[(w, k)] = run(w, k, args.episodes, args.iterations)
    ms_per_mb = allreduce_ms_per_mb()
    ray.shutdown()
    table(f"this machine ({os.cpu_count()} CPUs), a private Ray:", local)
    print(f"all-reduce between 2 learners (gloo, loopback): {ms_per_mb:.2f} ms per MB of gradients")
    if not args.no_cluster:
        temp = tempfile.mkdtemp(prefix="rs")
        try:
            ray.init(address=start_cluster(temp), logging_level="WARNING")
            cluster = {cfg: run(*cfg, args.episodes, args.iterations) for cfg in [(2, 1), (2, 2)]}
            cluster_ms = allreduce_ms_per_mb()
            ray.shutdown()
            cluster = {(1, 1): local[(1, 1)], **cluster}
            table("two-node Ray cluster on this machine (2 + 2 CPUs):", cluster)
            print(f"all-reduce between 2 learners on the cluster: {cluster_ms:.2f} ms per MB")
        finally:
            subprocess.run([str(RAY), "stop", "--force"], capture_output=True, timeout=120)
            shutil.rmtree(temp, ignore_errors=True)
    r = local[(2, 1)]
    print(f"scale workers=2 learners=1 steps_per_s={r['steps_per_s']:.1f} "
          f"vs_one={r['steps_per_s'] / local[(1, 1)]['steps_per_s']:.2f} allreduce_ms_per_mb={ms_per_mb:.2f}")


if __name__ == "__main__":
    main()
