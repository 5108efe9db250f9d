"""Mapping agent actions to DeepRacer commands (contract §1 step 1, §6, §7.1).

Discrete: action i is entry i of model_metadata's action list. Continuous: the agent acts in
[-1, 1]² ordered (steering, speed), linearly rescaled to the metadata's [low, high] ranges, as
the simapp does for clipped PPO; SAC's tanh-squashed actions live in the same box.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from drlocal.config.model_metadata import ModelMetadata


class ActionMapper:
    """Turns a batch of agent actions into commanded speed [m/s] and steering [deg], each (N,)."""

    def __init__(self, metadata: ModelMetadata) -> None:
        self.metadata = metadata
        if metadata.is_continuous:
            cs = metadata.action_space
            self.low = np.array([cs.steering_angle.low, cs.speed.low])  # type: ignore[union-attr]
            self.high = np.array([cs.steering_angle.high, cs.speed.high])  # type: ignore[union-attr]
            self.space: spaces.Space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        else:
            acts = metadata.action_space
            self.table_steer = np.array([a.steering_angle for a in acts])  # type: ignore[union-attr]
            self.table_speed = np.array([a.speed for a in acts])  # type: ignore[union-attr]
            self.space = spaces.Discrete(len(acts))

    @property
    def continuous(self) -> bool:
        return self.metadata.is_continuous

    def commands(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(speed (N,), steering (N,)) for actions (N,) int or (N, 2) float in [-1, 1]."""
        if self.continuous:
            a = np.clip(np.asarray(actions, dtype=np.float64).reshape(-1, 2), -1.0, 1.0)
            values = self.low + (a + 1.0) * 0.5 * (self.high - self.low)
            return values[:, 1], values[:, 0]
        idx = np.asarray(actions, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self.table_speed)):
            raise ValueError(f"action index out of range 0..{len(self.table_speed) - 1}: {idx}")
        return self.table_speed[idx], self.table_steer[idx]

    def labels(self, actions: np.ndarray, speed: np.ndarray, steer: np.ndarray) -> list[str | int]:
        """Simtrace `action` column: the index, or `[<steer> <speed>]` for continuous actions."""
        if self.continuous:
            return [f"[{s} {v}]" for s, v in zip(steer.tolist(), speed.tolist(), strict=True)]
        return [int(a) for a in np.asarray(actions).reshape(-1)]
