"""Mapping agent actions to DeepRacer commands (contract §1 step 1, §6, §7.1).

Discrete: action i is entry i of model_metadata's action list. Continuous: the agent acts in
[-1, 1]² ordered (steering, speed), linearly rescaled to the metadata's [low, high] ranges, as
the simapp does for clipped PPO; SAC's tanh-squashed actions live in the same box.

Finite continuous actions outside [-1, 1] are clipped (DeepRacer then clips the commands to its
actuator limits, contract §4.1); NaN/inf, non-numeric or wrongly shaped actions and discrete
indices that are not integers in range raise `InvalidActionError` saying what was expected.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from drlocal.config.model_metadata import ModelMetadata
from drlocal.errors import InvalidActionError


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

    def commands(self, actions: np.ndarray, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(speed (N,), steering (N,)) for actions (N,) int or (N, 2) float in [-1, 1].

        With `n` (the number of cars) the shape must be exactly (n,) or (n, 2); without it any array
        holding whole actions is accepted. Raises InvalidActionError for what cannot be executed.
        """
        a = np.asarray(actions)
        if self.continuous:
            return self._continuous(a, n)
        k = len(self.table_speed)
        expected = f"integer action indices 0..{k - 1}" + (f" of shape ({n},)" if n is not None else "")
        if a.dtype.kind not in "iu":
            whole = a.dtype.kind == "f" and a.size > 0 and bool(np.all(np.isfinite(a) & (a == np.round(a))))
            raise InvalidActionError(
                f"discrete actions must be {expected}; got {_show(a)} of dtype {a.dtype}.",
                hint="pass integers, e.g. np.asarray(actions, dtype=np.int64)" if whole
                else f"the action space is Discrete({k}): pick one of the indices of model_metadata's action list.")
        if n is not None and a.shape != (n,):
            raise InvalidActionError(f"expected {expected}, got shape {a.shape}: {_show(a)}.",
                                     hint="one action index per car.")
        idx = a.astype(np.int64, copy=False).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= k):
            bad = np.flatnonzero((idx < 0) | (idx >= k))
            raise InvalidActionError(
                f"action index out of range 0..{k - 1}: car {int(bad[0])} got {int(idx[bad[0]])} ({_show(idx)}).",
                hint=f"model_metadata's action list has {k} entries.")
        return self.table_speed[idx], self.table_steer[idx]

    def _continuous(self, a: np.ndarray, n: int | None) -> tuple[np.ndarray, np.ndarray]:
        expected = "(steering, speed) pairs in [-1, 1]" + (f" of shape ({n}, 2)" if n is not None else "")
        if a.dtype.kind not in "iuf":
            raise InvalidActionError(f"continuous actions must be {expected}; got {_show(a)} of dtype {a.dtype}.",
                                     hint="pass a float array, e.g. np.asarray(actions, dtype=np.float32).")
        if (a.shape != (n, 2)) if n is not None else (a.ndim == 0 or a.shape[-1] != 2):
            raise InvalidActionError(f"expected continuous actions as {expected}, got shape {a.shape}.",
                                     hint="one (steering, speed) pair per car, each scaled to [-1, 1].")
        a = a.astype(np.float64).reshape(-1, 2)
        finite = np.isfinite(a).all(axis=1)
        if not finite.all():
            i = int(np.flatnonzero(~finite)[0])
            raise InvalidActionError(
                f"continuous action of car {i} is {a[i].tolist()}: NaN/inf cannot be driven; expected {expected}.",
                hint="finite values outside [-1, 1] are clipped, as DeepRacer clips; NaN usually means the policy "
                "diverged (check the learning rate) or an upstream computation divided by zero.")
        a = np.clip(a, -1.0, 1.0)
        values = self.low + (a + 1.0) * 0.5 * (self.high - self.low)
        return values[:, 1], values[:, 0]

    def labels(self, actions: np.ndarray, speed: np.ndarray, steer: np.ndarray) -> list[str | int]:
        """Simtrace `action` column: the index, or `[<steer> <speed>]` for continuous actions."""
        if self.continuous:
            return [f"[{s} {v}]" for s, v in zip(steer.tolist(), speed.tolist(), strict=True)]
        return [int(a) for a in np.asarray(actions).reshape(-1)]


def _show(a: np.ndarray, limit: int = 8) -> str:
    """A short repr of an action array for messages."""
    flat = np.asarray(a).reshape(-1)
    items = ", ".join(repr(v.item()) if hasattr(v, "item") else repr(v) for v in flat[:limit])
    return f"[{items}{', …' if flat.size > limit else ''}]" if np.ndim(a) else repr(np.asarray(a).item())
