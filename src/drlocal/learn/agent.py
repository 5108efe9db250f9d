"""Acting with a policy network: batched action selection for all cars in one forward pass."""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from drlocal.learn.networks import PPOActorCritic


def pick_device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def as_obs_dict(obs: np.ndarray | dict[str, np.ndarray], sensors: list[str]) -> dict[str, np.ndarray]:
    """The env gives an array for one sensor and a dict for several; networks always take a dict."""
    return obs if isinstance(obs, dict) else {sensors[0]: obs}


class Actor:
    """Chooses actions for a batch of observations with DeepRacer's exploration rules.

    Training: categorical sampling (or e-greedy with ε decaying linearly from 1 to
    `e_greedy_value` over `epsilon_steps`) for discrete spaces, Gaussian sampling for continuous.
    Evaluation: argmax / mean. Continuous actions are returned unclipped (the env clips to [-1, 1]).
    """

    def __init__(
        self,
        model: PPOActorCritic | torch.nn.Module,
        sensors: list[str],
        device: torch.device,
        *,
        exploration: str = "categorical",
        e_greedy_value: float = 0.05,
        epsilon_steps: int = 10000,
        autocast: bool = False,
        seed: int | None = None,
    ) -> None:
        self.model = model
        self.sensors = sensors
        self.device = device
        self.exploration = exploration
        self.e_greedy_value = e_greedy_value
        self.epsilon_steps = epsilon_steps
        self.autocast = autocast
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator(device="cpu")
        if seed is not None:
            self.generator.manual_seed(seed)
        self.steps = 0  # training steps taken (for the e-greedy schedule)

    def epsilon(self) -> float:
        frac = min(self.steps / max(self.epsilon_steps, 1), 1.0)
        return 1.0 + (self.e_greedy_value - 1.0) * frac

    def _ctx(self) -> contextlib.AbstractContextManager:
        if self.autocast:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.no_grad()
    def act(self, obs: np.ndarray | dict[str, np.ndarray], deterministic: bool = False) -> np.ndarray:
        """Actions (N,) int or (N, 2) float for observations of N cars."""
        o = {k: torch.as_tensor(v, device=self.device) for k, v in as_obs_dict(obs, self.sensors).items()}
        self.model.eval()
        if hasattr(self.model, "sample"):  # SAC: tanh-squashed Gaussian
            with self._ctx():
                if deterministic:
                    return torch.tanh(self.model.policy_output(o).float()).cpu().numpy().astype(np.float32)
                a, _ = self.model.sample(o)
            return a.float().cpu().numpy().astype(np.float32)
        with self._ctx():
            out = self.model.policy_output(o).float()
        n = out.shape[0]
        if self.model.continuous:
            if deterministic:
                return out.cpu().numpy().astype(np.float32)
            std = self.model.log_std.clamp(-20.0, 3.0).exp().float()
            noise = torch.randn(out.shape, generator=self.generator).to(out.device)
            return (out + noise * std).cpu().numpy().astype(np.float32)
        probs = out.clamp_min(1e-8)
        if deterministic:
            return probs.argmax(dim=1).cpu().numpy()
        self.steps += n
        if self.exploration == "e-greedy":
            greedy = probs.argmax(dim=1).cpu().numpy()
            rand = self.rng.integers(0, probs.shape[1], n)
            return np.where(self.rng.random(n) < self.epsilon(), rand, greedy)
        return torch.multinomial(probs.cpu(), 1, generator=self.generator).squeeze(1).numpy()
