"""Loading and calling user reward functions, with errors that point at the user's file and line.

A DeepRacer reward function is a Python file defining `reward_function(params) -> float`.
The simapp casts the return to float and kills the job on NaN/inf or a value outside
[-1e5, 1e5] (contract §2). drlocal does the same checks but stops with one readable message
naming the file, the line and the params that triggered the problem instead of a traceback.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drlocal.errors import DrlocalError

REWARD_LIMIT = 1e5  # simapp bound on |reward|

#: The reward used when none is given: the classic "follow the centre line" reward.
DEFAULT_REWARD_SOURCE = '''\
def reward_function(params):
    """Reward staying near the centre line: 1.0 / 0.5 / 0.1 in three bands, 1e-3 beyond."""
    width = params["track_width"]
    distance = params["distance_from_center"]
    if distance <= 0.1 * width:
        return 1.0
    if distance <= 0.25 * width:
        return 0.5
    if distance <= 0.5 * width:
        return 0.1
    return 1e-3
'''

#: What `drlocal init` writes to custom_files/reward_function.py: the same rewards as DRfC's
#: defaults/reward_function.py (the centre-line bands above, times 0.8 when steering harder than 15°).
DRFC_REWARD_SOURCE = '''\
def reward_function(params):
    """Stay close to the centre line and avoid sharp steering (DRfC's default reward).

    The reward falls in steps with the distance from the centre line: 1.0 within 10 % of the
    track width, 0.5 within 25 %, 0.1 within 50 % (the edge of the track), 1e-3 beyond.
    Steering more than 15 degrees to either side costs 20 %, which discourages zig-zagging.
    """
    STEERING_LIMIT = 15  # [deg]; adapt it to the steering angles of your action space

    width = params["track_width"]
    distance = params["distance_from_center"]
    if distance <= 0.1 * width:
        reward = 1.0
    elif distance <= 0.25 * width:
        reward = 0.5
    elif distance <= 0.5 * width:
        reward = 0.1
    else:
        reward = 1e-3  # at or past the edge: about to leave the track

    if abs(params["steering_angle"]) > STEERING_LIMIT:
        reward *= 0.8
    return float(reward)
'''


class RewardFunctionError(DrlocalError):
    """The user's reward function could not be loaded, raised, or returned an invalid value."""


def _summarise_params(params: dict[str, Any]) -> str:
    keys = ("x", "y", "heading", "progress", "steps", "speed", "steering_angle",
            "distance_from_center", "track_width", "all_wheels_on_track", "is_offtrack",
            "closest_waypoints", "is_reversed")
    parts = []
    for k in keys:
        if k in params:
            v = params[k]
            parts.append(f"{k}={round(v, 4)}" if isinstance(v, float) else f"{k}={v}")
    return ", ".join(parts)


class RewardFunction:
    """A loaded reward function: call it with a params dict, get a validated float back."""

    def __init__(self, fn: Callable[[dict], Any], origin: str, source_path: str | None = None) -> None:
        self.fn = fn
        self.origin = origin  # shown in messages, e.g. the file path
        self._source_path = source_path

    def __call__(self, params: dict[str, Any]) -> float:
        try:
            value = self.fn(params)
        except Exception as exc:
            line = self._user_line(exc)
            where = f"{self.origin}, line {line}" if line else self.origin
            raise RewardFunctionError(
                f"{where}: reward_function raised {type(exc).__name__}: {exc}\n"
                f"  params: {_summarise_params(params)}",
                hint="fix the reward function; `drlocal reward test FILE` checks it over the whole track.",
            ) from None
        return self._validate(value, params)

    def _validate(self, value: Any, params: dict[str, Any]) -> float:
        try:
            reward = float(value)
        except (TypeError, ValueError):
            raise RewardFunctionError(
                f"{self.origin}: reward_function returned {value!r} ({type(value).__name__}), not a number.\n"
                f"  params: {_summarise_params(params)}",
                hint="return a float, e.g. `return float(reward)`.",
            ) from None
        if not math.isfinite(reward) or abs(reward) > REWARD_LIMIT:
            raise RewardFunctionError(
                f"{self.origin}: reward_function returned {reward!r}; DeepRacer requires a finite "
                f"value within ±{REWARD_LIMIT:g}.\n  params: {_summarise_params(params)}",
                hint="guard divisions and clamp the result, e.g. `return max(min(reward, 1e5), -1e5)`.",
            ) from None
        return reward

    def _user_line(self, exc: BaseException) -> int | None:
        if not self._source_path:
            return None
        line = None
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename == self._source_path:
                line = frame.lineno
        return line


def load_reward_function(source: str | Path | Callable[[dict], Any] | None = None) -> RewardFunction:
    """Load `reward_function` from a `.py` file (or wrap a callable; None gives the centre-line default).

    Raises:
        RewardFunctionError: the file is missing, has a syntax error, fails on import, or
            defines no callable `reward_function`; the message names the file and line.
    """
    if source is None:
        return _from_source(DEFAULT_REWARD_SOURCE, "<default centre-line reward>")
    if callable(source):
        name = getattr(source, "__qualname__", repr(source))
        return RewardFunction(source, f"reward function {name}")
    path = Path(source)
    if not path.is_file():
        raise RewardFunctionError(
            f"{path}: reward function file not found.",
            hint="pass the path of a .py file that defines reward_function(params).",
        )
    return _from_source(path.read_text(encoding="utf-8"), str(path))


def _from_source(text: str, filename: str) -> RewardFunction:
    try:
        code = compile(text, filename, "exec")
    except SyntaxError as exc:
        shown = (exc.text or "").rstrip()
        raise RewardFunctionError(
            f"{filename}, line {exc.lineno}: SyntaxError: {exc.msg}" + (f"\n    {shown.strip()}" if shown else ""),
            hint="fix the syntax; the file must define reward_function(params).",
        ) from None
    namespace: dict[str, Any] = {"__name__": "reward_function", "__file__": filename}
    try:
        exec(code, namespace)
    except Exception as exc:
        line = None
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename == filename:
                line = frame.lineno
        where = f"{filename}, line {line}" if line else filename
        raise RewardFunctionError(
            f"{where}: loading the reward function raised {type(exc).__name__}: {exc}",
            hint="DeepRacer reward functions may import math, random, numpy, scipy and shapely.",
        ) from None
    fn = namespace.get("reward_function")
    if not callable(fn):
        found = sorted(k for k, v in namespace.items() if callable(v) and not k.startswith("__"))
        raise RewardFunctionError(
            f"{filename}: defines no function named `reward_function`"
            + (f" (found: {', '.join(found)})." if found else "."),
            hint="DeepRacer calls `def reward_function(params): ... return float(reward)`.",
        )
    return RewardFunction(fn, filename, source_path=filename)
