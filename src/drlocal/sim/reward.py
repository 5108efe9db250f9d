"""Loading and calling user reward functions, with errors that point at the user's file and line.

A DeepRacer reward function is a Python file defining `reward_function(params) -> float`.
The simapp casts the return to float and kills the job on NaN/inf or a value outside
[-1e5, 1e5] (contract §2). drlocal does the same checks but stops with one readable message
naming the file, the line and the params that triggered the problem instead of a traceback.

Time limit. DeepRacer calls the reward function inside its 15 Hz control loop, so a call that
hangs (an endless loop) or crawls stalls the whole job. drlocal gives every call a limit,
`DRLOCAL_REWARD_TIMEOUT_S` seconds (default 1 s; `0` turns it off, `load_reward_function(...,
timeout_s=...)` sets it per function) and stops with one `RewardTimeoutError` naming the file, the
line the call was stopped at, the params and the limit. In the main thread on Unix the call is
interrupted by a SIGALRM timer (`setitimer`, ~2 µs per call); the previous SIGALRM handler and
timer are restored after every call. Elsewhere (another thread, Windows) a call cannot be
interrupted: its duration is checked when it returns.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drlocal.errors import DrlocalError, read_user_text

REWARD_LIMIT = 1e5  # simapp bound on |reward|
#: Per-call time limit of the reward function [s] unless DRLOCAL_REWARD_TIMEOUT_S says otherwise.
DEFAULT_REWARD_TIMEOUT_S = 1.0
TIMEOUT_ENV = "DRLOCAL_REWARD_TIMEOUT_S"
#: Mean call time above which the reward function alone slows training down [s]: 5 ms caps the
#: simulator at 200 steps/s per core, what drlocal's learner takes in on a laptop GPU (45 steps/s on 2 CPU cores).
SLOW_REWARD_S = 0.005
_SLOW_CHECK_EVERY = 256  # calls between two looks at the mean call time

try:  # the C module: `signal.signal` wraps handlers in enums, which costs ~3 µs per call
    import _signal as _sig
except ImportError:  # pragma: no cover - other Python implementations
    import signal as _sig
_CAN_ALARM = hasattr(_sig, "setitimer") and hasattr(_sig, "SIGALRM")  # not on Windows
_MAIN_THREAD = threading.main_thread().ident

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


class RewardTimeoutError(RewardFunctionError):
    """A call of the user's reward function ran past the per-call time limit."""


class _Alarm(BaseException):
    """Raised inside the reward function by the SIGALRM handler (BaseException, so that the user's
    `except Exception:` does not swallow it)."""


class _AlarmState:
    """Which call the SIGALRM handler interrupts: one per process (signals are process-wide)."""

    armed = False
    fired = 0  # alarms during this call
    tracing = False  # raising at every line (a function that swallowed the first alarm)
    prev_trace: Any = None


def _on_alarm(signum: int, frame: Any) -> None:
    if not _AlarmState.armed:
        return
    _AlarmState.fired += 1
    if _AlarmState.fired > 1 and not _AlarmState.tracing:
        # the function caught the first alarm (a bare `except:` in a loop): from now on raise at every line it runs,
        # so that the alarm also leaves its except clauses. Only frames above our own call get the line tracer.
        _AlarmState.tracing = True
        _AlarmState.prev_trace = sys.gettrace()
        sys.settrace(_raise_on_call)
        f = frame
        while f is not None and f.f_code is not _CALL_CODE:
            f.f_trace = _raise_on_line
            f = f.f_back
    raise _Alarm


def _raise_on_line(frame: Any, event: str, arg: Any) -> Any:
    if _AlarmState.armed and event in ("line", "call", "return"):
        raise _Alarm
    return _raise_on_line


def _raise_on_call(frame: Any, event: str, arg: Any) -> Any:
    if _AlarmState.armed:
        raise _Alarm
    return None


def timeout_from_env(environ: dict[str, str] | None = None) -> float | None:
    """The per-call limit from DRLOCAL_REWARD_TIMEOUT_S [s] (default 1 s); None when it is 0 / off."""
    raw = (os.environ if environ is None else environ).get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_REWARD_TIMEOUT_S
    if raw.lower() in ("0", "off", "none", "no", "false"):
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (value >= 0 and math.isfinite(value)):
        raise DrlocalError(f"{TIMEOUT_ENV}={raw!r} is not a time limit in seconds.",
                           hint=f"set a number of seconds per reward call, e.g. {TIMEOUT_ENV}=2, or 0 for no limit.")
    return value or None


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
    """A loaded reward function: call it with a params dict, get a validated float back.

    `timeout_s` is the per-call time limit (None: no limit); see the module docstring. `calls` and
    `seconds` count the calls and their total duration; `on_warning` (a callable taking a message)
    is told once, as soon as it shows, when the mean call is slower than SLOW_REWARD_S.
    """

    def __init__(self, fn: Callable[[dict], Any], origin: str, source_path: str | None = None,
                 timeout_s: float | None = DEFAULT_REWARD_TIMEOUT_S) -> None:
        self.fn = fn
        self.origin = origin  # shown in messages, e.g. the file path
        self._source_path = source_path
        if timeout_s is not None and not (timeout_s > 0 and math.isfinite(timeout_s)):
            timeout_s = None
        self.timeout_s = timeout_s
        self.calls = 0
        self.seconds = 0.0
        self.on_warning: Callable[[str], None] | None = None
        self.warned = False  # the slow-call warning was given

    @property
    def mean_call_s(self) -> float:
        """Mean duration of one call so far [s] (0 before the first call)."""
        return self.seconds / self.calls if self.calls else 0.0

    def slow_warning(self) -> str | None:
        """A warning when the mean call time alone would cap the simulator below the learner's speed."""
        mean = self.mean_call_s
        if self.calls < 16 or mean <= SLOW_REWARD_S:
            return None
        return (f"{self.origin}: reward_function takes {mean * 1e3:.1f} ms per call on average, which alone caps "
                f"the simulator at {1.0 / mean:.0f} steps/s, below what drlocal's learner takes in "
                f"({1.0 / SLOW_REWARD_S:.0f}+ steps/s); keep it under {SLOW_REWARD_S * 1e3:g} ms "
                "(precompute what does not depend on params at import time).")

    def __call__(self, params: dict[str, Any]) -> float:
        limit = self.timeout_s
        # SIGALRM handlers run in the main thread only, and Windows has no setitimer: elsewhere a call cannot be
        # interrupted, so a hung one hangs, and a slow one is reported when it returns (the elapsed check below).
        alarm = limit is not None and _CAN_ALARM and threading.get_ident() == _MAIN_THREAD
        t0 = time.perf_counter()
        if alarm:
            value, exc = self._call_with_alarm(params, limit, t0)  # type: ignore[arg-type]
        else:
            exc = None
            try:
                value = self.fn(params)
            except Exception as e:
                value, exc = None, e
        elapsed = time.perf_counter() - t0
        self.calls += 1
        self.seconds += elapsed
        if exc is not None:
            if isinstance(exc, _Alarm):
                raise self._timeout_error(params, elapsed, exc) from None
            line = self._user_line(exc)
            where = f"{self.origin}, line {line}" if line else self.origin
            raise RewardFunctionError(
                f"{where}: reward_function raised {type(exc).__name__}: {exc}\n"
                f"  params: {_summarise_params(params)}",
                hint="fix the reward function; `drlocal reward test FILE` checks it over the whole track.",
            ) from None
        if limit is not None and elapsed > limit:  # without an alarm (not the main thread / Windows), or swallowed
            raise self._timeout_error(params, elapsed, None)
        n = self.calls
        if self.on_warning is not None and not self.warned and (n % _SLOW_CHECK_EVERY == 0 or not n & (n - 1)):
            self.check_slow()  # at calls 16, 32, …, 256, then every 256
        return self._validate(value, params)

    def check_slow(self) -> str | None:
        """`slow_warning()`, given to `on_warning` the first time it is not None."""
        message = self.slow_warning()
        if message and not self.warned:
            self.warned = True
            if self.on_warning is not None:
                self.on_warning(message)
        return message

    def _call_with_alarm(self, params: dict[str, Any], limit: float, t0: float) -> tuple[Any, BaseException | None]:
        """Call with a SIGALRM timer that raises `_Alarm` inside the function after `limit` s, and again every
        `limit` s should it catch it; restore the previous handler and timer (their remaining time) afterwards."""
        value: Any = None
        exc: BaseException | None = None
        prev_timer = (0.0, 0.0)
        prev_handler = _sig.signal(_sig.SIGALRM, _on_alarm)
        try:
            prev_timer = _sig.setitimer(_sig.ITIMER_REAL, limit, limit)
            _AlarmState.fired = 0
            _AlarmState.armed = True
            try:
                try:
                    value = self.fn(params)
                except (Exception, _Alarm) as e:
                    exc = e
                finally:
                    _AlarmState.armed = False
            except _Alarm as e:  # the alarm went off between the return and disarming: the call took the limit
                exc = e
        finally:  # also on KeyboardInterrupt: never leave our timer, handler or tracer behind
            _AlarmState.armed = False
            if _AlarmState.tracing:
                sys.settrace(_AlarmState.prev_trace)
                _AlarmState.tracing, _AlarmState.prev_trace = False, None
            _sig.setitimer(_sig.ITIMER_REAL, 0.0)
            _sig.signal(_sig.SIGALRM, prev_handler)
            if prev_timer[0] > 0.0:  # someone else's timer was running: give it the time it had left
                left = prev_timer[0] - (time.perf_counter() - t0)
                _sig.setitimer(_sig.ITIMER_REAL, max(left, 1e-6), prev_timer[1])
        if _AlarmState.fired and exc is None:  # the function caught the alarm and returned anyway
            exc = _Alarm()
        _AlarmState.fired = 0
        return value, exc

    def _timeout_error(self, params: dict[str, Any], elapsed: float, exc: BaseException | None) -> RewardTimeoutError:
        line = self._user_line(exc) if exc is not None else None
        where = f"{self.origin}, line {line}" if line else self.origin
        if exc is not None and exc.__traceback__ is not None:  # interrupted (at `line`)
            what = f"did not return within the limit of {self.timeout_s:g} s per call and was stopped"
        else:
            what = f"took {elapsed:.3g} s, over the limit of {self.timeout_s:g} s per call"
        return RewardTimeoutError(
            f"{where}: reward_function {what}.\n  params: {_summarise_params(params)}",
            hint=f"DeepRacer calls it 15 times a second for every car: look for an endless loop or slow code there. "
            f"If slow calls are intended, raise the limit with {TIMEOUT_ENV}=<seconds> (0 turns it off).",
        )

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


_CALL_CODE = RewardFunction._call_with_alarm.__code__  # where the alarm's line tracer stops going up the stack


def load_reward_function(
    source: str | Path | Callable[[dict], Any] | None = None, *, timeout_s: float | None = None,
) -> RewardFunction:
    """Load `reward_function` from a `.py` file (or wrap a callable; None gives the centre-line default).

    `timeout_s` is the time limit per call [s]: None takes DRLOCAL_REWARD_TIMEOUT_S (default 1 s),
    0 turns the limit off. A call over the limit raises RewardTimeoutError.

    Raises:
        RewardFunctionError: the file is missing, has a syntax error, fails on import, or
            defines no callable `reward_function`; the message names the file and line.
    """
    limit = timeout_from_env() if timeout_s is None else (timeout_s or None)
    if source is None:
        return _from_source(DEFAULT_REWARD_SOURCE, "<default centre-line reward>", limit)
    if callable(source):
        name = getattr(source, "__qualname__", repr(source))
        return RewardFunction(source, f"reward function {name}", timeout_s=limit)
    path = Path(source)
    if not path.is_file():
        raise RewardFunctionError(
            f"{path}: reward function file not found.",
            hint="pass the path of a .py file that defines reward_function(params).",
        )
    return _from_source(read_user_text(path, "the reward function"), str(path), limit)


def reward_from_source(source: str, name: str, *, timeout_s: float | None = DEFAULT_REWARD_TIMEOUT_S) -> RewardFunction:
    """A reward function from its source text; `name` (the user's file) is what messages and tracebacks name.
    Rollout workers on other machines load the trainer's reward file this way (no shared disk)."""
    return _from_source(source, name, timeout_s)


#: Time limit for running a reward file's top level (imports, tables) when it is loaded [s]; DeepRacer's
#: reward-function validator allows 5 s. Off when the per-call limit is off (DRLOCAL_REWARD_TIMEOUT_S=0).
LOAD_TIMEOUT_S = 10.0


def _load_limited(code: Any, namespace: dict[str, Any], filename: str, call_limit: float | None) -> None:
    """Run the module's top level, stopped after LOAD_TIMEOUT_S (an endless loop outside reward_function)."""
    if call_limit is None or not _CAN_ALARM or threading.get_ident() != _MAIN_THREAD:
        exec(code, namespace)
        return
    runner = RewardFunction(lambda _params: exec(code, namespace), filename, source_path=filename,
                            timeout_s=LOAD_TIMEOUT_S)
    t0 = time.perf_counter()
    _, exc = runner._call_with_alarm({}, LOAD_TIMEOUT_S, t0)
    if isinstance(exc, _Alarm):
        line = runner._user_line(exc)
        where = f"{filename}, line {line}" if line else filename
        raise RewardTimeoutError(
            f"{where}: loading the reward function did not finish within {LOAD_TIMEOUT_S:g} s and was stopped "
            "(the file's top level, outside reward_function, runs when it is loaded).",
            hint="look for an endless loop or slow code at the top level of the file; DeepRacer's validator allows "
            f"5 s. {TIMEOUT_ENV}=0 turns the limits off.")
    if exc is not None:
        raise exc


def _from_source(text: str, filename: str, timeout_s: float | None = DEFAULT_REWARD_TIMEOUT_S) -> RewardFunction:
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
        _load_limited(code, namespace, filename, timeout_s)
    except RewardTimeoutError:
        raise
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
    return RewardFunction(fn, filename, source_path=filename, timeout_s=timeout_s)
