"""`drlocal.load_model`: run any DeepRacer model from Python, the way the car would.

Notebooks, custom cars and tests want one object that takes observations exactly as the env
(or a car's camera pipeline) produces them and answers with actions, whatever the model's
origin: a drlocal model prefix folder, a car `model.tar.gz`, a bare `model.pb`, or a DRfC /
console / DeepRacer-on-AWS model folder. Frozen graphs are read into the matching PyTorch network
(`drlocal.export.importer`) rather than run with TensorFlow, so inference needs no TensorFlow and
all sources behave identically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from drlocal.errors import DrlocalError
from drlocal.learn.networks import LIDARS


class DeepRacerModel:
    """A loaded policy. Observations: array (one sensor) or dict (several), one car or a batch.

    `act` returns what the env's `step` takes: an action index (discrete), or (steering, speed) in
    [-1, 1] (continuous: PPO's mean clipped, SAC's mean through tanh); greedy unless
    `deterministic=False`, which samples as in training.
    """

    def __init__(self, module: nn.Module, sensors: list[str], metadata: dict[str, Any] | None, source: str,
                 algorithm: str) -> None:
        self.module = module.eval()
        self.sensors = sorted(sensors)
        self.metadata = metadata
        self.source = source
        self.algorithm = algorithm
        self.continuous = bool(getattr(module, "continuous", False))
        self._generator = torch.Generator().manual_seed(0)

    def __repr__(self) -> str:
        kind = "continuous" if self.continuous else "discrete"
        return f"DeepRacerModel({self.algorithm}, {kind}, sensors={self.sensors}, source={self.source!r})"

    # ----- observations -----

    def _batch(self, observation: np.ndarray | dict[str, np.ndarray]) -> tuple[dict[str, torch.Tensor], bool]:
        obs = observation if isinstance(observation, dict) else {self.sensors[0]: observation}
        missing = [s for s in self.sensors if s not in obs]
        if missing:
            raise DrlocalError(f"observation lacks {missing}; the model reads {self.sensors}.")
        single_ndim = {s: 1 if s in LIDARS else 3 for s in self.sensors}
        first = self.sensors[0]
        single = np.ndim(obs[first]) == single_ndim[first]
        out = {}
        for s in self.sensors:
            a = np.asarray(obs[s])
            if single:
                a = a[None]
            if a.ndim != single_ndim[s] + 1:
                raise DrlocalError(f"observation {s}: shape {np.shape(obs[s])} is neither one car's nor a batch's.")
            out[s] = torch.as_tensor(a)
        return out, single

    @torch.no_grad()
    def policy_output(self, observation: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        """The car graph's `policy` tensor: probabilities, PPO's mean, or SAC's pre-tanh mean."""
        obs, single = self._batch(observation)
        out = self.module.policy_output(obs).float().numpy()
        return out[0] if single else out

    def action_probabilities(self, observation: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        """Discrete models: the softmax over the action list, (A,) or (N, A)."""
        if self.continuous:
            raise DrlocalError("action_probabilities: this model has a continuous action space.",
                               hint="use action_mean(observation).")
        return self.policy_output(observation)

    def action_mean(self, observation: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        """Continuous models: the mean action in [-1, 1]² (steering, speed), (2,) or (N, 2)."""
        if not self.continuous:
            raise DrlocalError("action_mean: this model has a discrete action space.",
                               hint="use action_probabilities(observation).")
        out = self.policy_output(observation)
        return np.tanh(out) if self.algorithm == "sac" else out

    @torch.no_grad()
    def act(self, observation: np.ndarray | dict[str, np.ndarray], deterministic: bool = True) -> Any:
        """The env action(s): int / (2,) for one car, (N,) / (N, 2) for a batch."""
        obs, single = self._batch(observation)
        m = self.module
        if self.algorithm == "sac":
            a = torch.tanh(m.policy_output(obs)) if deterministic else m.sample(obs)[0]
            out = a.float().numpy()
        elif self.continuous:
            mean = m.policy_output(obs).float()
            if not deterministic:
                std = m.log_std.clamp(-20.0, 3.0).exp()
                mean = mean + torch.randn(mean.shape, generator=self._generator) * std
            out = mean.clamp(-1.0, 1.0).numpy()
        else:
            probs = m.policy_output(obs).float().clamp_min(1e-8)
            idx = probs.argmax(dim=1) if deterministic else torch.multinomial(probs, 1, generator=self._generator)[:, 0]
            out = idx.numpy()
        if single:
            return int(out[0]) if out.ndim == 1 else out[0]
        return out

    def commands(self, observation: np.ndarray | dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Greedy (steering angle [deg], speed [m/s]) from model_metadata's action space, (N,) each."""
        if self.metadata is None:
            raise DrlocalError(f"{self.source}: no model_metadata.json, so the action space is unknown.")
        from drlocal.config.model_metadata import load_model_metadata
        from drlocal.env.actions import ActionMapper

        speed, steer = ActionMapper(load_model_metadata(dict(self.metadata))).commands(
            np.asarray(self.act(observation)))
        return steer, speed


def _is_drlocal_prefix(p: Path) -> bool:
    """A model prefix (drlocal's, DRfC's or DeepRacer-on-AWS's): best/last/N are honoured for any of them."""
    from drlocal.store.local import ModelStore

    return p.is_dir() and (p / "model").is_dir() and bool(ModelStore(p).checkpoints())


def load_model(path: str | Path, checkpoint: str | int = "best") -> DeepRacerModel:
    """Load a drlocal model prefix (its `checkpoint`: best, last or N), a `model.tar.gz`, a `model.pb`,
    or a DRfC / console / DeepRacer-on-AWS model folder."""
    p = Path(path)
    if _is_drlocal_prefix(p) or (_is_drlocal_prefix(p.parent) and p.name == "model"):
        from drlocal.learn.evaluate import load_policy
        from drlocal.store.local import ModelStore

        root = p if _is_drlocal_prefix(p) else p.parent
        model, md, name = load_policy(ModelStore(root), checkpoint, torch.device("cpu"))
        algorithm = md.training_algorithm
        return DeepRacerModel(model, list(md.sensor), md.to_json_dict(), f"{root} ({name})", algorithm)
    from drlocal.export.importer import read_source, spec_from_source
    from drlocal.export.spec import torch_from_spec

    src = read_source(p)
    spec = spec_from_source(src)
    return DeepRacerModel(torch_from_spec(spec), spec.sensor_names, src.metadata, src.origin, spec.algorithm)
