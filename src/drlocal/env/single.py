"""`DeepRacerEnv`: one DeepRacer car as a plain `gymnasium.Env` (the batched env with N = 1).

Same semantics, arguments and info as `DeepRacerVectorEnv` (see its docstring), unbatched.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from drlocal.env.vector_env import DeepRacerVectorEnv
from drlocal.errors import InvalidActionError


def _unbatch(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _unbatch(v) for k, v in x.items()}
    return x[0]


class DeepRacerEnv(gym.Env):
    """One car on a DeepRacer track; `gymnasium.make("drlocal/DeepRacer-v0", ...)`."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        kwargs.pop("num_envs", None)
        self._venv = DeepRacerVectorEnv(1, autoreset_mode=AutoresetMode.DISABLED, render_mode=render_mode, **kwargs)
        self.render_mode = render_mode
        self.action_space = self._venv.single_action_space
        self.observation_space = self._venv.single_observation_space
        self._needs_reset = True

    @property
    def vector_env(self) -> DeepRacerVectorEnv:
        return self._venv

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        if self._venv._world is None or seed is not None:
            obs, info = self._venv.reset(seed=seed)
        else:
            obs, info = self._venv.reset(options={"reset_mask": np.array([True])})
        self._needs_reset = False
        return _unbatch(obs), _unbatch(info)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if self._needs_reset:
            raise RuntimeError("episode is over: call reset()")
        a = np.asarray(action)
        want = (2,) if self._venv.actions.continuous else ()
        if a.shape != want:
            n = getattr(self.action_space, "n", 0)
            what = "one (steering, speed) pair, shape (2,)" if want else f"one action index, an int 0..{n - 1}"
            raise InvalidActionError(f"expected {what}; got shape {a.shape}: {a!r}.",
                                     hint="the single-car env takes one action; DeepRacerVectorEnv takes one per car.")
        a = a[None, ...]
        self._venv.actions.commands(a)  # dtype, NaN and range errors worded for one car (no batch shape)
        obs, reward, terminated, truncated, info = self._venv.step(a)
        self._needs_reset = bool(terminated[0] or truncated[0])
        return _unbatch(obs), float(reward[0]), bool(terminated[0]), bool(truncated[0]), _unbatch(info)

    def render(self) -> np.ndarray | None:
        frames = self._venv.render()
        return None if frames is None else frames[0]
