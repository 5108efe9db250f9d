"""The PPO learner alone: transitions per second through one update, per network preset, before and after.

"Before" is the learner as it was (`PPOLearner(fast=False)`: torch's per-parameter Adam loop, denormals
on, ReLUs that allocate their output); "after" is today's default (`fast=True`: the fused Adam kernel,
denormals flushed to zero, the camera embedders' ReLUs in place). Both
run the same update on the same data (N random camera frames of whole 100-step episodes, batch 64,
the default `num_epochs` = 5; the figure is transitions per second per epoch and includes the value
and π_old passes), interleaved A/B/A/B so that other load on a shared machine hits both alike; the
figure is the median over `--repeats`. The weights of the two variants after an update of 64
transitions are compared too (they must agree to float rounding).

Run: `python benchmarks/learner.py [--n 1024] [--repeats 3] [--presets SHALLOW,STANDARD,DEEP] [--threads T]`;
the last line is `learner preset=SHALLOW samples_per_s=<after> vs_baseline=<after/before>`.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import torch

from drlocal.learn.agent import pick_device
from drlocal.learn.networks import PPOActorCritic
from drlocal.learn.ppo import PPOConfig, PPOLearner

EPOCHS = PPOConfig().num_epochs  # hyperparameters.json's default (5), as `drlocal init` writes it
PRESETS = {"SHALLOW": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", "STANDARD": "DEEP_CONVOLUTIONAL_NETWORK",
           "DEEP": "DEEP_CONVOLUTIONAL_NETWORK_DEEP"}


def data(n: int, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = {"FRONT_FACING_CAMERA": rng.integers(0, 256, (n, 120, 160, 1), dtype=np.uint8)}
    ends = np.zeros(n, dtype=bool)
    ends[99::100] = True
    ends[-1] = True
    return obs, rng.integers(0, 7, n), rng.random(n), ends


def one_update(model: PPOActorCritic, fast: bool, device: torch.device, batch) -> tuple[float, PPOActorCritic]:
    m = copy.deepcopy(model)
    for layer in m.modules():  # before: ReLUs that allocate their output, as they were
        if isinstance(layer, torch.nn.ReLU):
            layer.inplace = fast and layer.inplace
    learner = PPOLearner(m, PPOConfig(num_epochs=EPOCHS, batch_size=64), device, fast=fast)
    gen = torch.Generator().manual_seed(0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    learner.update(*batch, gen)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / EPOCHS, m  # per epoch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--presets", default="SHALLOW,STANDARD,DEEP")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device()
    batch = data(args.n)
    print(f"device={device.type} threads={torch.get_num_threads()} n={args.n} batch=64 epochs={EPOCHS}")
    results = {}
    for short in args.presets.split(","):
        torch.manual_seed(0)
        model = PPOActorCritic({"FRONT_FACING_CAMERA": 0}, PRESETS[short], 7, False).to(device)
        one_update(model, True, device, batch)  # warm-up (allocator, oneDNN primitives)
        before, after = [], []
        for _ in range(args.repeats):
            t0, m0 = one_update(model, False, device, batch)
            t1, m1 = one_update(model, True, device, batch)
            before.append(t0)
            after.append(t1)
        _, m0 = one_update(model, False, device, data(64))  # 64 samples: one minibatch per epoch
        _, m1 = one_update(model, True, device, data(64))
        diff = max(float((a - b).abs().max()) for a, b in zip(m0.state_dict().values(), m1.state_dict().values(),
                                                             strict=True))
        b, a = args.n / statistics.median(before), args.n / statistics.median(after)
        results[short] = (a, a / b)
        print(f"{short:9s} before={b:7.1f}/s after={a:7.1f}/s x{a / b:.2f}  max|Δw| after 64 samples={diff:.1e}")
    last = "SHALLOW" if "SHALLOW" in results else next(iter(results))
    a, ratio = results[last]
    print(f"learner preset={last} samples_per_s={a:.1f} vs_baseline={ratio:.2f}")


if __name__ == "__main__":
    main()
