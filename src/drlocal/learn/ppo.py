"""Clipped PPO exactly as DeepRacer's RL-Coach runs it (contract §8.2).

Hand-written rather than taken from Stable-Baselines3 because DeepRacer's semantics differ from
every library default: an iteration is a set of whole episodes, advantages are standardised
over the whole iteration, the bootstrap value is zero at every episode end (also for episodes
cut by the step cap), the value and policy live in two separate towers trained by one Adam
step per minibatch, the batch shrinks to a power of two for tiny iterations and the minibatch
remainder is dropped. The later data-parallel scale-out also needs a loop we own. Everything
generic (distributions, Adam, autocast) is torch.

Per iteration:
1. V(s) for every transition from the value tower; per episode GAE(γ, λ = 0.95) with V = 0
   after the last transition; value targets = advantage + V(s).
2. Advantages standardised: (A − mean) / (std + 1e-8) (population std).
3. For `num_epochs` epochs: reshuffle, floor(N / batch) minibatches of the loss
   value_loss + surrogate − β·entropy, surrogate = −mean(min(r·A, clip(r, 0.8, 1.2)·A)),
   r = exp(log π − log π_old) with π_old the policy before this iteration's first step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from drlocal.learn.networks import PPOActorCritic

GAE_LAMBDA = 0.95
CLIP_EPSILON = 0.2
ADV_EPS = 1e-8


def compute_gae(
    rewards: np.ndarray, values: np.ndarray, episode_ends: np.ndarray, gamma: float, lam: float = GAE_LAMBDA
) -> tuple[np.ndarray, np.ndarray]:
    """GAE advantages and value targets for transitions stored episode after episode.

    Args:
        rewards, values: (T,) per transition.
        episode_ends: (T,) bool, True on the last transition of each episode (bootstrap V = 0 after it).
        gamma, lam: discount and GAE λ.

    Returns:
        (advantages (T,), value_targets (T,) = advantages + values).
    """
    t_len = rewards.shape[0]
    adv = np.zeros(t_len, dtype=np.float64)
    last = 0.0
    for t in range(t_len - 1, -1, -1):
        if episode_ends[t]:
            next_value, last = 0.0, 0.0
        else:
            next_value = values[t + 1]
        delta = rewards[t] + gamma * next_value - values[t]
        last = delta + gamma * lam * last
        adv[t] = last
    return adv, adv + values


def standardize(adv: np.ndarray) -> np.ndarray:
    """Iteration-wide advantage standardisation (population std, ε = 1e-8)."""
    return (adv - adv.mean()) / (adv.std() + ADV_EPS)


def effective_batch_size(n: int, batch_size: int) -> int:
    """Coach shrinks the minibatch to the largest power of two ≤ n when n ≤ batch_size."""
    if n > batch_size:
        return batch_size
    return 1 << (max(n, 1).bit_length() - 1)


def value_loss(pred: torch.Tensor, target: torch.Tensor, loss_type: str) -> torch.Tensor:
    """'mean squared error' or 'huber' (TF default δ = 1)."""
    if loss_type.startswith("huber"):
        return F.huber_loss(pred, target, delta=1.0)
    return F.mse_loss(pred, target)


def clipped_surrogate(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, clip: float = CLIP_EPSILON):
    """−mean(min(r·A, clip(r, 1−ε, 1+ε)·A)) and the ratios r."""
    ratio = torch.exp(logp - old_logp)
    surr = torch.minimum(ratio * adv, ratio.clamp(1.0 - clip, 1.0 + clip) * adv)
    return -surr.mean(), ratio


@dataclass
class PPOConfig:
    """The hyperparameters.json keys PPO uses."""

    lr: float = 3e-4
    num_epochs: int = 5
    batch_size: int = 64
    beta_entropy: float = 0.01
    discount_factor: float = 0.99
    loss_type: str = "huber"


@dataclass
class UpdateStats:
    policy_loss: float
    value_loss: float
    entropy: float
    first_epoch_ratio_dev: float  # max |r − 1| on the first minibatch (≈ 0 when rollout and learner agree)
    minibatches: int
    samples: int
    approx_kl: float = 0.0  # mean KL(π_old ‖ π) estimate (r − 1 − log r) over the minibatches, before each step


def to_tensors(obs: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v, device=device) for k, v in obs.items()}


class Reducer(Protocol):
    """What a data-parallel learner needs from its group (see `drlocal.learn.distributed`): in-place sums and
    maxima over every learner of the group, as `torch.distributed.all_reduce` does."""

    def sum_(self, t: torch.Tensor) -> None: ...

    def max_(self, t: torch.Tensor) -> None: ...


def sum_gradients(module: nn.Module, reducer: Reducer) -> None:
    """Sum every learner's (already share-weighted) gradients of `module` in one flat all-reduce, in place."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        if p.grad is None:  # a learner without rows in this minibatch (or an unused head) adds zeros
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])  # type: ignore[union-attr]
    reducer.sum_(flat)
    i = 0
    for p in params:
        k = p.numel()
        p.grad.copy_(flat[i : i + k].view_as(p))  # type: ignore[union-attr]
        i += k


@dataclass(frozen=True)
class Shard:
    """Where one learner's transitions sit in the iteration: rows [offset, offset + n) of `total` (whole episodes)."""

    offset: int
    total: int


def make_adam(params, lr: float, fast: bool) -> torch.optim.Adam:
    """Coach's Adam (β = 0.9, 0.999, ε = 1e-5). `fast` uses torch's fused kernel, the same update in one pass over
    all parameters (measured 56 → 9 ms per step for the SHALLOW network on 2 cores, benchmarks/learner.py)."""
    return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-5, fused=True if fast else None)


class PPOLearner:
    """Owns the actor-critic and its Adam optimiser; `update()` runs one DeepRacer training step.

    `fast` (default) turns on what measured faster on CPU without changing results beyond float
    rounding: the fused Adam kernel and, during `update()` only, denormals flushed to zero. The old
    path stays for the benchmark's baseline (`fast=False`)."""

    def __init__(self, model: PPOActorCritic, config: PPOConfig, device: torch.device | None = None,
                 *, fast: bool = True) -> None:
        self.device = device or next(model.parameters()).device
        self.model = model.to(self.device)
        self.config = config
        self.fast = fast
        self.optimizer = make_adam(model.parameters(), config.lr, fast)

    @torch.no_grad()
    def _batched(self, fn, obs: dict[str, torch.Tensor], chunk: int = 512) -> torch.Tensor:
        n = next(iter(obs.values())).shape[0]
        if n == 0:
            return torch.zeros(0, device=self.device)
        return torch.cat([fn({k: v[i : i + chunk] for k, v in obs.items()}) for i in range(0, n, chunk)])

    def _standardize(self, adv: np.ndarray, reducer: Reducer | None) -> np.ndarray:
        """Iteration-wide standardisation; in a group the mean and population std are the whole iteration's
        (two all-reduces: Σa and n, then Σ(a − mean)²), so every learner scales its shard identically."""
        if reducer is None:
            return standardize(adv)
        s = torch.tensor([adv.sum(), float(adv.size)], dtype=torch.float64)
        reducer.sum_(s)
        mean = float(s[0] / s[1])
        sq = torch.tensor([float(((adv - mean) ** 2).sum())], dtype=torch.float64)
        reducer.sum_(sq)
        std = float(np.sqrt(float(sq[0]) / float(s[1])))
        return (adv - mean) / (std + ADV_EPS)

    def update(
        self,
        obs: dict[str, np.ndarray],
        actions: np.ndarray,
        rewards: np.ndarray,
        episode_ends: np.ndarray,
        generator: torch.Generator | None = None,
        *,
        shard: Shard | None = None,
        reducer: Reducer | None = None,
    ) -> UpdateStats:
        """One PPO training step; see `_update`. With `fast`, denormals are flushed to zero during the step only
        (tiny Adam moments and activations otherwise take a slow CPU path); the flag is the calling thread's
        processor state, so it is switched off again before the simulator (numpy, numba) runs on."""
        if not self.fast:
            return self._update(obs, actions, rewards, episode_ends, generator, shard=shard, reducer=reducer)
        torch.set_flush_denormal(True)
        try:
            return self._update(obs, actions, rewards, episode_ends, generator, shard=shard, reducer=reducer)
        finally:
            torch.set_flush_denormal(False)

    def _update(
        self,
        obs: dict[str, np.ndarray],
        actions: np.ndarray,
        rewards: np.ndarray,
        episode_ends: np.ndarray,
        generator: torch.Generator | None,
        *,
        shard: Shard | None,
        reducer: Reducer | None,
    ) -> UpdateStats:
        """One PPO training step on an iteration's transitions (stored episode after episode).

        Alone, the arguments are the whole iteration. In a data-parallel group (DD-PPO, Wijmans et al. 2020)
        they are this learner's `shard` of whole episodes and `reducer` sums over the group; DeepRacer's
        semantics stay those of one process: the minibatches are the same global permutation of all
        `shard.total` rows (every learner draws it from the same generator state), each learner's loss is
        its rows' share of the global minibatch mean (Σ ℓ_i / batch), gradients are summed before every
        Adam step, so the weights stay identical everywhere and equal the single-process update."""
        cfg = self.config
        m = self.model
        obs_t = to_tensors(obs, self.device)
        act_t = torch.as_tensor(actions, device=self.device)
        n_local = int(rewards.shape[0])
        offset, n = (shard.offset, shard.total) if shard is not None else (0, n_local)
        m.eval()
        values = self._batched(m.value, obs_t).double().cpu().numpy()
        adv, targets = compute_gae(rewards.astype(np.float64), values, episode_ends, cfg.discount_factor)
        adv = self._standardize(adv, reducer)
        old_logp = self._old_logp(obs_t, act_t)  # π_old: the policy before this iteration's first step
        dtype = next(m.parameters()).dtype  # float32 (float64 for a .double() model)
        adv_t = torch.as_tensor(adv, dtype=dtype, device=self.device)
        tgt_t = torch.as_tensor(targets, dtype=dtype, device=self.device)
        bs = effective_batch_size(n, cfg.batch_size)
        m.train()
        sums = torch.zeros(5, dtype=torch.float64)  # policy loss, value loss, entropy, KL, minibatches
        first_dev = torch.zeros(1, dtype=torch.float64)
        for epoch in range(cfg.num_epochs):
            perm = torch.randperm(n, generator=generator)
            for b in range(n // bs):  # the remainder minibatch is dropped
                idx = perm[b * bs : (b + 1) * bs]
                if shard is not None:  # this learner's rows of the global minibatch
                    idx = idx[(idx >= offset) & (idx < offset + n_local)] - offset
                weight = idx.numel() / bs  # share of the global minibatch mean (1 alone)
                idx = idx.to(self.device)
                self.optimizer.zero_grad(set_to_none=True)
                if idx.numel():
                    mb = {k: v[idx] for k, v in obs_t.items()}
                    dist = m.distribution(mb)
                    logp = dist.log_prob(act_t[idx])
                    surr, ratio = clipped_surrogate(logp, old_logp[idx], adv_t[idx])
                    v_loss = value_loss(m.value(mb), tgt_t[idx], cfg.loss_type)
                    entropy = dist.entropy().mean()
                    loss = v_loss + surr - cfg.beta_entropy * entropy
                    (loss * weight if shard is not None else loss).backward()
                    r = ratio.detach()
                    if epoch == 0 and b == 0:
                        first_dev[0] = float((r - 1.0).abs().max())
                    sums += torch.tensor([float(surr.detach()), float(v_loss.detach()), float(entropy.detach()),
                                          float((r - 1.0 - torch.log(r)).mean()), 1.0], dtype=torch.float64) * weight
                if reducer is not None:
                    sum_gradients(self.model, reducer)
                self.optimizer.step()
        if reducer is not None:
            reducer.sum_(sums)
            reducer.max_(first_dev)
        c = max(float(sums[4]), 1.0)
        count = round(float(sums[4]))
        return UpdateStats(float(sums[0]) / c, float(sums[1]) / c, float(sums[2]) / c, float(first_dev[0]), count,
                           n, float(sums[3]) / c)

    @torch.no_grad()
    def _old_logp(self, obs_t: dict[str, torch.Tensor], act_t: torch.Tensor, chunk: int = 512) -> torch.Tensor:
        n = act_t.shape[0]
        out = [torch.zeros(0, device=self.device)]
        for i in range(0, n, chunk):
            o = {k: v[i : i + chunk] for k, v in obs_t.items()}
            out.append(self.model.distribution(o).log_prob(act_t[i : i + chunk]))
        return torch.cat(out)


def count_trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
