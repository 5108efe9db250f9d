"""Soft Actor-Critic as DeepRacer's RL-Coach runs it (contract §7.2), for continuous action spaces.

Hand-written for the same reasons as PPO (see `ppo.py`): Coach's SAC has a separate state-value
network V with a target copy, twin Q heads on an embedder without middleware, a fixed
temperature α (`sac_alpha`), and trains `rollout_steps` gradient steps per iteration on a
replay memory. Stable-Baselines3's SAC has no V network and tunes α.

Networks (each its own embedders, contract §7.2):
    policy: embedder → middleware → Dense 256 → mean (2) and log σ (2, clipped to [−20, 2]);
            action = tanh(u), u ~ N(mean, σ), in the [-1, 1] box the env rescales.
    q:      embedder (no middleware) → twin heads concat(embedding, action) → 256 → 256 → 1.
    v:      embedder → Dense 512 → V (Xavier init); target V is a slow copy (τ = 0.005 per step).
Losses (½ MSE as Coach): Q_i → r + γ(1 − done)·V'(s'); V → min Q(s, ã) − α log π(ã|s);
policy → mean(α log π(ã|s) − min Q(s, ã)).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from drlocal.learn.networks import Tower, glorot_
from drlocal.learn.ppo import Reducer, sum_gradients

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
TAU = 0.005


class SACPolicy(nn.Module):
    def __init__(self, sensors: dict[str, int], network: str) -> None:
        super().__init__()
        self.tower = Tower(sensors, network)
        self.hidden = nn.Sequential(glorot_(nn.Linear(self.tower.out_dim, 256)), nn.ReLU())
        self.mean = glorot_(nn.Linear(256, 2))
        self.log_std = glorot_(nn.Linear(256, 2))
        self.continuous = True

    def forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(self.tower(obs))
        return self.mean(h), self.log_std(h).clamp(LOG_STD_MIN, LOG_STD_MAX)

    def policy_output(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The graph's `policy` tensor: the pre-tanh mean (consumers squash and scale)."""
        return self.forward(obs)[0]

    def sample(self, obs: dict[str, torch.Tensor],
               noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(action in (-1, 1), log π(action)) with the tanh change-of-variables correction; `noise` (N, 2) is the
        standard normal draw (default: a fresh one from torch's global stream)."""
        mean, log_std = self.forward(obs)
        u = mean + log_std.exp() * (torch.randn_like(mean) if noise is None else noise.to(mean))
        a = torch.tanh(u)
        logp = torch.distributions.Normal(mean, log_std.exp()).log_prob(u).sum(-1)
        logp = logp - torch.log(1.0 - a.pow(2) + 1e-6).sum(-1)
        return a, logp


class TwinQ(nn.Module):
    def __init__(self, sensors: dict[str, int], network: str) -> None:
        super().__init__()
        self.tower = Tower(sensors, network, middleware=False)
        d = self.tower.out_dim + 2

        def head() -> nn.Sequential:
            return nn.Sequential(glorot_(nn.Linear(d, 256)), nn.ReLU(), glorot_(nn.Linear(256, 256)), nn.ReLU(),
                                 glorot_(nn.Linear(256, 1)))

        self.q1, self.q2 = head(), head()

    def forward(self, obs: dict[str, torch.Tensor], action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([self.tower(obs), action], dim=1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


class ValueNet(nn.Module):
    def __init__(self, sensors: dict[str, int], network: str) -> None:
        super().__init__()
        self.tower = Tower(sensors, network, middleware=False)
        self.body = nn.Sequential(glorot_(nn.Linear(self.tower.out_dim, 512)), nn.ReLU(),
                                  glorot_(nn.Linear(512, 1)))

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.body(self.tower(obs)).squeeze(-1)


@dataclass
class SACConfig:
    lr: float = 3e-4
    batch_size: int = 64
    discount_factor: float = 0.99
    alpha: float = 0.2
    replay_size: int = 50_000  # transitions kept (images are 19 kB each; Coach keeps 1e6)


class ReplayBuffer:
    """A ring buffer of transitions (obs dict, action, reward, next obs, done)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.data: dict[str, np.ndarray] = {}
        self.size = 0
        self.pos = 0

    def add(self, obs: dict[str, np.ndarray], act: np.ndarray, rew: np.ndarray, next_obs: dict[str, np.ndarray],
            done: np.ndarray) -> None:
        batch = {"act": act.astype(np.float32), "rew": rew.astype(np.float32), "done": done.astype(np.float32)}
        batch |= {f"obs/{k}": v for k, v in obs.items()} | {f"next/{k}": v for k, v in next_obs.items()}
        n = len(rew)
        if not self.data:
            self.data = {k: np.zeros((self.capacity, *v.shape[1:]), dtype=v.dtype) for k, v in batch.items()}
        idx = (self.pos + np.arange(n)) % self.capacity
        for k, v in batch.items():
            self.data[k][idx] = v
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        idx = rng.integers(0, self.size, n)
        return {k: v[idx] for k, v in self.data.items()}


class SACLearner:
    """Owns the SAC networks and optimisers; `update(steps)` runs that many gradient steps."""

    def __init__(self, sensors: dict[str, int], network: str, config: SACConfig, device: torch.device,
                 seed: int | None = 0) -> None:
        self.device = device
        self.config = config
        self.policy = SACPolicy(sensors, network).to(device)
        self.q = TwinQ(sensors, network).to(device)
        self.v = ValueNet(sensors, network).to(device)
        self.v_target = copy.deepcopy(self.v).requires_grad_(False)
        adam = {"lr": config.lr, "eps": 1e-5}
        self.opt_pi = torch.optim.Adam(self.policy.parameters(), **adam)
        self.opt_q = torch.optim.Adam(self.q.parameters(), **adam)
        self.opt_v = torch.optim.Adam(self.v.parameters(), **adam)
        self.replay = ReplayBuffer(config.replay_size)
        self.rng = np.random.default_rng(seed)  # replay minibatches: the run's seed

    def _obs(self, batch: dict[str, np.ndarray], prefix: str) -> dict[str, torch.Tensor]:
        n = len(prefix) + 1
        return {k[n:]: torch.as_tensor(v, device=self.device) for k, v in batch.items() if k.startswith(prefix + "/")}

    def _step(self, loss: torch.Tensor, module: nn.Module, opt: torch.optim.Optimizer, reducer: Reducer | None) -> None:
        """One Adam step of `module`; in a group the (share-weighted) gradients are summed over the learners first."""
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if reducer is not None:
            sum_gradients(module, reducer)
        opt.step()

    def update(self, steps: int, *, rank: int = 0, world: int = 1, reducer: Reducer | None = None) -> dict[str, float]:
        """`steps` gradient steps on minibatches of the replay memory.

        In a data-parallel group (`drlocal.learn.distributed`) every learner holds the same replay and random
        streams, so all draw the same minibatch and policy noise; learner `rank` of `world` computes the losses
        of its rows [rank·B/world, (rank+1)·B/world), weighted by their share of the minibatch mean, and the
        gradients are summed before each of the three Adam steps: the same steps as one process."""
        cfg = self.config
        out = {"q_loss": 0.0, "v_loss": 0.0, "policy_loss": 0.0}
        bs = cfg.batch_size
        if self.replay.size < bs:
            return out
        lo, hi = rank * bs // world, (rank + 1) * bs // world
        weight = (hi - lo) / bs if reducer is not None else 1.0
        for _ in range(steps):
            b = self.replay.sample(bs, self.rng)
            noise = torch.randn(bs, 2)  # the policy's draw for the whole minibatch (torch's global stream)
            if reducer is not None:
                b = {k: v[lo:hi] for k, v in b.items()}
                noise = noise[lo:hi]
            obs, nxt = self._obs(b, "obs"), self._obs(b, "next")
            act = torch.as_tensor(b["act"], device=self.device)
            rew = torch.as_tensor(b["rew"], device=self.device)
            done = torch.as_tensor(b["done"], device=self.device)
            with torch.no_grad():
                target_q = rew + cfg.discount_factor * (1.0 - done) * self.v_target(nxt)
            q1, q2 = self.q(obs, act)
            q_loss = 0.5 * (F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q))
            self._step(q_loss * weight, self.q, self.opt_q, reducer)

            new_a, logp = self.policy.sample(obs, noise)
            q1n, q2n = self.q(obs, new_a)
            min_q = torch.minimum(q1n, q2n)
            v_loss = 0.5 * F.mse_loss(self.v(obs), (min_q - cfg.alpha * logp).detach())
            self._step(v_loss * weight, self.v, self.opt_v, reducer)

            pi_loss = (cfg.alpha * logp - min_q).mean()
            self._step(pi_loss * weight, self.policy, self.opt_pi, reducer)
            with torch.no_grad():
                for p, tp in zip(self.v.parameters(), self.v_target.parameters(), strict=True):
                    tp.mul_(1.0 - TAU).add_(p, alpha=TAU)
            out["q_loss"] += float(q_loss.detach()) * weight / steps
            out["v_loss"] += float(v_loss.detach()) * weight / steps
            out["policy_loss"] += float(pi_loss.detach()) * weight / steps
        if reducer is not None:
            total = torch.tensor([out["q_loss"], out["v_loss"], out["policy_loss"]], dtype=torch.float64)
            reducer.sum_(total)
            out = dict(zip(out, (float(x) for x in total), strict=True))
        return out

    def state_dict(self) -> dict:
        return {"policy": self.policy.state_dict(), "q": self.q.state_dict(), "v": self.v.state_dict(),
                "v_target": self.v_target.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.q.load_state_dict(state["q"])
        self.v.load_state_dict(state["v"])
        self.v_target.load_state_dict(state["v_target"])
