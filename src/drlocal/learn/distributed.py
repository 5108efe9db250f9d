"""Data-parallel PPO learners (DD-PPO, Wijmans et al. 2020) as Ray actors (`drlocal train --learners K`).

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
    """`torch.distributed` all-reduce over the default process group (the `Reducer` PPOLearner takes)."""

    def sum_(self, t: torch.Tensor) -> None:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)

    def max_(self, t: torch.Tensor) -> None:
        dist.all_reduce(t, op=dist.ReduceOp.MAX)


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
    """The actor body: one PPO learner of the group."""

    def __init__(self, rank: int, world: int, model_args: dict[str, Any], config: dict[str, Any],
                 dtype: str = "float32") -> None:
        # Ray hands over the shards' arrays zero-copy and read-only; the learner only reads them
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        self.rank, self.world = rank, world
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = PPOActorCritic(**model_args).to(getattr(torch, dtype))
        self.learner = PPOLearner(self.model, PPOConfig(**config), self.device)
        self.reducer = TorchReducer()

    def address(self) -> tuple[str, int]:
        return ray.util.get_node_ip_address(), _free_port()

    def join(self, init_method: str) -> bool:
        backend = "nccl" if self.device.type == "cuda" else "gloo"
        dist.init_process_group(backend, init_method=init_method, rank=self.rank, world_size=self.world,
                                timeout=datetime.timedelta(minutes=30))
        return True

    def load(self, weights: dict[str, torch.Tensor], optimizer: dict[str, Any] | None) -> bool:
        self.model.load_state_dict(weights)
        if optimizer is not None:
            self.learner.optimizer.load_state_dict(optimizer)
        return True

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

    def weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.model.state_dict().items()}

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


class LearnerGroup:
    """K data-parallel PPO learners on Ray (see the module docstring)."""

    def __init__(self, k: int, model: PPOActorCritic, model_args: dict[str, Any], config: PPOConfig,
                 optimizer_state: dict[str, Any] | None = None) -> None:
        if k < 2:
            raise ValueError("a learner group has at least 2 learners")
        self.k = k
        gpus = 1 if float(ray.cluster_resources().get("GPU", 0)) >= k else 0
        cls = ray.remote(num_cpus=1, num_gpus=gpus, max_restarts=0)(_Learner)
        cfg = asdict(config)
        dtype = str(next(model.parameters()).dtype).removeprefix("torch.")  # the learners compute as the model does
        self.actors = [cls.remote(rank, k, model_args, cfg, dtype) for rank in range(k)]
        ip, port = ray.get(self.actors[0].address.remote(), timeout=600)
        ray.get([a.join.remote(f"tcp://{ip}:{port}") for a in self.actors], timeout=600)
        weights = ray.put({k_: v.detach().cpu() for k_, v in model.state_dict().items()})
        ray.get([a.load.remote(weights, optimizer_state) for a in self.actors])
        self.optimizer_state: dict[str, Any] | None = optimizer_state
        self.sent_bytes = 0  # transitions sent in the last update [bytes]

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
