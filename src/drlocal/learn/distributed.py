"""Data-parallel learners (DD-PPO, Wijmans et al. 2020) as Ray actors (`drlocal train --learners K`).

Imported only with K > 1 (it imports Ray). K actors each hold a copy of the actor-critic and its
Adam state. Per iteration the trainer splits the iteration's transitions into K shards of whole
episodes (about equal in size), and every learner runs `PPOLearner.update` on its shard with a
`torch.distributed` reducer (gloo on CPU, NCCL on GPU): values, GAE and π_old on its own rows; the
advantage mean and std over the whole iteration; the same global minibatch permutation on every
learner (the trainer's generator state goes to all of them); gradients summed, each learner's
weighted by its rows' share of the global minibatch, before every Adam step. So the weights stay
identical on every learner and equal those of the one-process update (to float rounding), and
DeepRacer's semantics hold: the global minibatch is `batch_size`, one Adam step per global minibatch,
the remainder dropped. Learner 0 returns the new weights, the optimizer state (for the checkpoint)
and the generator state; the trainer keeps acting with and saving those.

SAC the same way: every learner keeps an identical copy of the replay memory (the trainer sends each
iteration's transitions to all), draws the same minibatches and policy noise (the trainer's random
states go to all), computes the losses of its slice of each minibatch weighted by its share, and the
gradients are summed before each of the Q, V and policy Adam steps.
"""

from __future__ import annotations

import datetime
import socket
import warnings
from dataclasses import asdict
from typing import Any

import numpy as np
import ray
import torch
import torch.distributed as dist

from drlocal.errors import DrlocalError
from drlocal.learn.networks import PPOActorCritic
from drlocal.learn.ppo import PPOConfig, PPOLearner, Shard, UpdateStats


class TorchReducer:
    """`torch.distributed` all-reduce over the default process group (the `Reducer` the learners take).

    NCCL reduces CUDA tensors only: on a GPU learner the small CPU statistics (advantage sums, losses)
    travel through the device; gradients are on the device already."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def _reduce(self, t: torch.Tensor, op: Any) -> None:
        if self.device.type == "cpu" or t.device == self.device:
            dist.all_reduce(t, op=op)
            return
        on_device = t.to(self.device)
        dist.all_reduce(on_device, op=op)
        t.copy_(on_device.cpu())

    def sum_(self, t: torch.Tensor) -> None:
        self._reduce(t, dist.ReduceOp.SUM)

    def max_(self, t: torch.Tensor) -> None:
        self._reduce(t, dist.ReduceOp.MAX)


def shard_bounds(ends: np.ndarray, k: int) -> list[tuple[int, int]]:
    """K (start, stop) row ranges of whole episodes, as equal in rows as episode ends allow (some may be empty).

    `ends` (T,) bool marks each episode's last row; a cut is placed after the episode end nearest to
    each i·T/K."""
    n = int(ends.shape[0])
    cuts_at = np.flatnonzero(ends) + 1  # possible cut points (after an episode's last row)
    bounds, start = [], 0
    for i in range(1, k):
        target = i * n / k
        later = cuts_at[cuts_at >= start]
        stop = int(later[np.argmin(np.abs(later - target))]) if later.size else n
        bounds.append((start, stop))
        start = stop
    bounds.append((start, n))
    return bounds


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


class _Learner:
    """The actor body: one learner of the group (PPO, or SAC with its own copy of the shared replay)."""

    def __init__(self, rank: int, world: int, kind: str, model_args: dict[str, Any], config: dict[str, Any],
                 dtype: str = "float32") -> None:
        # Ray hands over the shards' arrays zero-copy and read-only; the learner only reads them
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        self.rank, self.world, self.kind = rank, world, kind
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if kind == "sac":
            from drlocal.learn.sac import SACConfig, SACLearner

            self.sac = SACLearner(model_args["sensors"], model_args["network"], SACConfig(**config), self.device)
        else:
            self.model = PPOActorCritic(**model_args).to(getattr(torch, dtype))
            self.learner = PPOLearner(self.model, PPOConfig(**config), self.device)
        self.reducer = TorchReducer(self.device)

    def address(self) -> tuple[str, int]:
        return ray.util.get_node_ip_address(), _free_port()

    def join(self, init_method: str) -> bool:
        backend = "nccl" if self.device.type == "cuda" else "gloo"
        dist.init_process_group(backend, init_method=init_method, rank=self.rank, world_size=self.world,
                                timeout=datetime.timedelta(minutes=30))
        return True

    def load(self, weights: dict[str, Any], optimizer: dict[str, Any] | None) -> bool:
        if self.kind == "sac":
            self.sac.load_state_dict(weights)
            if optimizer is not None:
                for name in ("pi", "q", "v"):
                    getattr(self.sac, f"opt_{name}").load_state_dict(optimizer[name])
            return True
        self.model.load_state_dict(weights)
        if optimizer is not None:
            self.learner.optimizer.load_state_dict(optimizer)
        return True

    def add(self, batch: dict[str, Any]) -> int:
        """SAC: the iteration's transitions into this learner's copy of the replay (the same on every learner)."""
        self.sac.replay.add(batch["obs"], batch["actions"], batch["rewards"], batch["next"], batch["ends"])
        return self.sac.replay.size

    def update_sac(self, steps: int, replay_rng: dict[str, Any], torch_rng: torch.Tensor) -> dict[str, Any]:
        self.sac.rng.bit_generator.state = replay_rng  # the same minibatches on every learner
        torch.set_rng_state(torch_rng)  # the same policy noise
        losses = self.sac.update(steps, rank=self.rank, world=self.world, reducer=self.reducer)
        out: dict[str, Any] = {"losses": losses}
        if self.rank == 0:
            out["weights"] = self.sac.state_dict()
            out["optimizer"] = {n: getattr(self.sac, f"opt_{n}").state_dict() for n in ("pi", "q", "v")}
            out["replay_rng"] = self.sac.rng.bit_generator.state
            out["torch_rng"] = torch.get_rng_state()
        return out

    def update(self, data: dict[str, Any], shard: Shard, generator_state: torch.Tensor) -> dict[str, Any]:
        gen = torch.Generator().manual_seed(0)
        gen.set_state(generator_state)
        stats = self.learner.update(data["obs"], data["actions"], data["rewards"], data["ends"], gen,
                                    shard=shard, reducer=self.reducer)
        out: dict[str, Any] = {"stats": asdict(stats)}
        if self.rank == 0:
            out["weights"] = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
            out["optimizer"] = self.learner.optimizer.state_dict()
            out["generator"] = gen.get_state()
        return out

    def time_all_reduce(self, nbytes: int, repeats: int) -> float:
        """Seconds per all-reduce (sum) of a float32 tensor of `nbytes` over the group (benchmarks/scale.py)."""
        import time

        t = torch.ones(nbytes // 4)
        dist.all_reduce(t)  # warm-up (connections)
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(repeats):
            dist.all_reduce(t)
        return (time.perf_counter() - t0) / repeats

    def weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.model.state_dict().items()}

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


class LearnerGroup:
    """K data-parallel learners on Ray (see the module docstring): PPO (`kind="ppo"`) or SAC (`kind="sac"`)."""

    def __init__(self, k: int, model_args: dict[str, Any], config: Any, *, weights: dict[str, Any],
                 optimizer_state: dict[str, Any] | None = None, kind: str = "ppo", dtype: str = "float32") -> None:
        if k < 2:
            raise ValueError("a learner group has at least 2 learners")
        self.k, self.kind = k, kind
        gpus = 1 if float(ray.cluster_resources().get("GPU", 0)) >= k else 0
        cls = ray.remote(num_cpus=1, num_gpus=gpus, max_restarts=0)(_Learner)
        cfg = asdict(config)
        self.actors = [cls.remote(rank, k, kind, model_args, cfg, dtype) for rank in range(k)]
        ip, port = ray.get(self.actors[0].address.remote(), timeout=600)
        ray.get([a.join.remote(f"tcp://{ip}:{port}") for a in self.actors], timeout=600)
        ref = ray.put(weights)
        ray.get([a.load.remote(ref, optimizer_state) for a in self.actors])
        self.optimizer_state: dict[str, Any] | None = optimizer_state
        self.sent_bytes = 0  # transitions sent in the last update [bytes]

    @classmethod
    def for_ppo(cls, k: int, model: PPOActorCritic, model_args: dict[str, Any], config: PPOConfig,
                optimizer_state: dict[str, Any] | None = None) -> LearnerGroup:
        """PPO learners starting from `model`'s weights (the learners compute in the model's dtype)."""
        dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
        weights = {k_: v.detach().cpu() for k_, v in model.state_dict().items()}
        return cls(k, model_args, config, weights=weights, optimizer_state=optimizer_state, dtype=dtype)

    def update_sac(self, batch: dict[str, Any], steps: int, replay_rng: np.random.Generator
                   ) -> tuple[dict[str, float], dict[str, Any]]:
        """SAC: the iteration's transitions go into every learner's replay copy, then `steps` gradient steps with
        summed gradients. Advances `replay_rng` and torch's global stream as one process would; returns the
        losses and the new networks (policy, q, v, v_target)."""
        ref = ray.put(batch)
        self.sent_bytes = sum(v.nbytes for v in batch["obs"].values()) * 2
        ray.get([a.add.remote(ref) for a in self.actors])
        state, noise = replay_rng.bit_generator.state, torch.get_rng_state()
        try:
            results = ray.get([a.update_sac.remote(steps, state, noise) for a in self.actors])
        except ray.exceptions.RayError as exc:
            raise DrlocalError(f"a learner failed during the update: {exc}",
                               hint="`drlocal train --resume` continues from the last checkpoint.") from None
        first = results[0]
        replay_rng.bit_generator.state = first["replay_rng"]
        torch.set_rng_state(first["torch_rng"])
        self.optimizer_state = first["optimizer"]
        return first["losses"], first["weights"]

    def update(self, data: dict[str, Any], generator: torch.Generator) -> tuple[UpdateStats, dict[str, torch.Tensor]]:
        """One PPO step of the whole group on the iteration's (capped, episode-ordered) transitions.
        Returns learner 0's statistics (the group's) and the new weights; advances `generator` as one process
        would."""
        n = int(data["rewards"].shape[0])
        refs, self.sent_bytes = [], 0
        state = generator.get_state()
        for rank, (lo, hi) in enumerate(shard_bounds(data["ends"], self.k)):
            part = {"obs": {k: v[lo:hi] for k, v in data["obs"].items()}, "actions": data["actions"][lo:hi],
                    "rewards": data["rewards"][lo:hi], "ends": data["ends"][lo:hi]}
            self.sent_bytes += sum(v.nbytes for v in part["obs"].values()) + part["actions"].nbytes \
                + part["rewards"].nbytes + part["ends"].nbytes
            refs.append(self.actors[rank].update.remote(part, Shard(lo, n), state))
        try:
            results = ray.get(refs)
        except ray.exceptions.RayError as exc:
            raise DrlocalError(f"a learner failed during the update: {exc}",
                               hint="`drlocal train --resume` continues from the last checkpoint.") from None
        first = results[0]
        generator.set_state(first["generator"])
        self.optimizer_state = first["optimizer"]
        return UpdateStats(**first["stats"]), first["weights"]

    def close(self) -> None:
        for a in self.actors:
            try:
                ray.get(a.close.remote(), timeout=10)
            except Exception:
                pass
            ray.kill(a)
        self.actors = []
