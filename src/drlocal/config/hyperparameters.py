"""`hyperparameters.json` (contract §8.1), with DRfC's defaults and DeepRacer's allowed ranges."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from drlocal.config.jsonfile import format_validation_errors, read_json_object
from drlocal.errors import DrlocalError

#: DRfC `defaults/hyperparameters.json`.
DRFC_HYPERPARAMETERS: dict[str, Any] = {
    "batch_size": 64,
    "beta_entropy": 0.01,
    "discount_factor": 0.99,
    "e_greedy_value": 0.05,
    "epsilon_steps": 10000,
    "exploration_type": "categorical",
    "loss_type": "huber",
    "lr": 0.0003,
    "num_episodes_between_training": 20,
    "num_epochs": 5,
    "stack_size": 1,
    "term_cond_avg_score": 350.0,
    "term_cond_max_episodes": 1000,
    "sac_alpha": 0.2,
}


class Hyperparameters(BaseModel):
    """Validated hyperparameters; ranges follow the DeepRacer console's limits where it had them."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    batch_size: int = Field(64, ge=1, le=4096)
    beta_entropy: float = Field(0.01, ge=0.0, le=1.0)
    discount_factor: float = Field(0.99, gt=0.0, le=1.0)
    e_greedy_value: float = Field(0.05, ge=0.0, le=1.0)
    epsilon_steps: int = Field(10000, ge=1)
    exploration_type: Literal["categorical", "e-greedy"] = "categorical"
    loss_type: Literal["huber", "mean squared error"] = "huber"
    lr: float = Field(3e-4, gt=0.0, le=1.0)
    num_episodes_between_training: int = Field(20, ge=1, le=1000)
    num_epochs: int = Field(5, ge=1, le=100)
    stack_size: int = Field(1, ge=1)  # parsed but ignored, as in DeepRacer
    term_cond_avg_score: float = 350.0  # parsed but unused, as in DeepRacer
    term_cond_max_episodes: int = Field(1000, ge=1)
    sac_alpha: float = Field(0.2, ge=0.0, le=10.0)

    _warnings: list[str] = PrivateAttr(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        """Problems that do not stop training, e.g. unknown keys of the file (ignored, as DeepRacer does)."""
        return self._warnings

    @field_validator("exploration_type", mode="before")
    @classmethod
    def _exploration(cls, v: Any) -> Any:
        return v.strip().lower().replace("_", "-") if isinstance(v, str) else v

    @field_validator("loss_type", mode="before")
    @classmethod
    def _loss(cls, v: Any) -> Any:
        return " ".join(v.strip().lower().replace("-", " ").replace("_", " ").split()) if isinstance(v, str) else v

    def effective_json(self, algorithm: str) -> dict[str, Any]:
        """What the trainer writes to `ip/hyperparameters.json` (sorted keys; PPO drops sac_alpha,
        SAC drops beta_entropy and num_epochs)."""
        d = self.model_dump()
        if algorithm == "sac":
            d.pop("beta_entropy")
            d.pop("num_epochs")
        else:
            d.pop("sac_alpha")
        return dict(sorted(d.items()))


def unknown_key_warnings(where: str, data: dict[str, Any]) -> list[str]:
    """One warning per key that is not a hyperparameter (DeepRacer ignores it), with a "did you mean"."""
    known = list(Hyperparameters.model_fields)
    out = []
    for key in data:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else f" (known keys: {', '.join(known)})"
        out.append(f"{where}: unknown hyperparameter {key!r} is ignored{hint}")
    return out


def load_hyperparameters(source: str | Path | dict[str, Any] | None = None) -> Hyperparameters:
    """Read and validate hyperparameters from a path, dict, or None (DRfC defaults).

    Unknown keys do not stop the run (DeepRacer ignores them too); they are listed in the result's
    `warnings`."""
    if source is None:
        return Hyperparameters.model_validate(DRFC_HYPERPARAMETERS)
    where, data = read_json_object(source, "hyperparameters")
    try:
        hp = Hyperparameters.model_validate(data)
    except ValidationError as err:
        raise DrlocalError(
            format_validation_errors(where, err.errors()), hint="DRfC defaults: `drlocal init` writes a valid file."
        ) from None
    hp._warnings = unknown_key_warnings(where, data)
    return hp
