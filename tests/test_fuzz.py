"""Property-based fuzzing (hypothesis) of what users hand drlocal.

* The DRfC folder: run.env, system.env, worker-N.env, model_metadata.json and hyperparameters.json with random
  deletions, type swaps, unicode, huge numbers, duplicate keys and garbage lines: `load_job` gives a valid job or
  raises the one-message DrlocalError, never another exception.
* The reward params at random poses (far off the map, on the lap's wrap, exactly on waypoints, either direction)
  and the env step with random actions including NaN: no unexpected exception, and the invariants hold.

Examples are few and deadlines off, so that the whole file runs in well under a minute on 2 cores.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from drlocal.config.workdir import init_workdir, load_job
from drlocal.env.vector_env import DeepRacerVectorEnv
from drlocal.errors import DrlocalError, InvalidActionError
from drlocal.export.droa import race_type_params
from drlocal.sim.params import reward_params
from drlocal.tracks import load_track

FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# ----- the DRfC folder -----

HUGE = ["1e308", "-1e308", "1e999", "-1e999", "123456789012345678901234567890", "9" * 400, "nan", "NaN", "inf",
        "-inf", "0", "-0", "-1", "0.0000000001", "0x10", "1_000", "true", "maybe", "", " ", "None", "null"]
NASTY = ["'unterminated", '"unterminated', "${", "$", "${UNDEFINED}", "$DR_WORLD_NAME$DR_WORLD_NAME", "a b c",
         "\\", "`cmd`", "$(echo hi)", "#comment", "x # y", "'a'\"b\"", "🚗", "reInvent2019_track\u200b",
         "é", "\ufeff", "a=b=c"]
ENV_VALUES = st.one_of(st.sampled_from(HUGE + NASTY), st.text(max_size=30),
                       st.integers(min_value=-10**30, max_value=10**30).map(str),
                       st.floats(allow_nan=True, allow_infinity=True).map(repr))
GARBAGE_LINES = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["=", "=value", "KEY", "export", "export =1", "1ABC=2", "DR_ X=1", "DR_WORLD_NAME", "[section]",
                     "DR_WORLD_NAME = reinvent_base", "DR_WORLD_NAME=reinvent_base \\", "\x00", "\r"]),
)
RAW_BYTES = st.binary(min_size=1, max_size=40)


@st.composite
def env_file(draw: st.DrawFn, template: str) -> bytes:
    """A mutated copy of an env file: lines deleted, duplicated, re-valued, renamed, garbage and raw bytes added."""
    lines = template.splitlines()
    keys = [ln.split("=", 1)[0] for ln in lines if "=" in ln and not ln.lstrip().startswith("#")]
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.sampled_from(["delete", "duplicate", "value", "rename", "garbage", "export", "uncomment"]))
        if not lines and op not in ("garbage",):
            continue
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":  # the same key twice, maybe with another value
            key = lines[i].split("=", 1)[0]
            lines.insert(draw(st.integers(0, len(lines))), f"{key}={draw(ENV_VALUES)}")
        elif op == "value" and "=" in lines[i]:
            lines[i] = f"{lines[i].split('=', 1)[0]}={draw(ENV_VALUES)}"
        elif op == "rename" and "=" in lines[i] and keys:
            lines[i] = f"{draw(st.sampled_from(keys))}={lines[i].split('=', 1)[1]}"
        elif op == "garbage":
            lines.insert(i, draw(GARBAGE_LINES))
        elif op == "export":
            lines[i] = "export " + lines[i]
        elif op == "uncomment" and lines[i].startswith("#") and "DR_CLOUD" not in lines[i]:
            lines[i] = lines[i].lstrip("# ")
    text = "\n".join(lines)
    data = text.encode("utf-8", errors="surrogatepass")
    if draw(st.booleans()):
        data = data.replace(b"\n", b"\r\n")
    if draw(st.integers(0, 5)) == 0:  # not UTF-8 at all somewhere
        pos = draw(st.integers(0, len(data)))
        data = data[:pos] + draw(RAW_BYTES) + data[pos:]
    return data


JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**40, max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["", "5", "0.6", "FRONT_FACING_CAMERA", "LIDAR", "continuous", "discrete", "sac", "huber",
                     "🚗", "\u0000"]),
)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _parent(obj: Any, path: tuple) -> Any:
    for p in path[:-1]:
        obj = obj[p]
    return obj


@st.composite
def json_file(draw: st.DrawFn, template: dict[str, Any]) -> bytes:
    """A mutated JSON object: keys deleted, values of other types, huge numbers, unicode keys, duplicate keys,
    truncation and garbage."""
    obj = json.loads(json.dumps(template))
    duplicates: list[tuple[str, Any]] = []
    for _ in range(draw(st.integers(0, 6))):
        paths = _paths(obj)
        op = draw(st.sampled_from(["delete", "swap", "add", "duplicate", "huge"]))
        if op == "add":
            obj[draw(st.text(max_size=12))] = draw(JSON_VALUES)
            continue
        if not paths:
            continue
        path = draw(st.sampled_from(paths))
        parent = _parent(obj, path)
        if op == "delete":
            del parent[path[-1]]
        elif op == "swap":
            parent[path[-1]] = draw(JSON_VALUES)
        elif op == "huge":
            parent[path[-1]] = draw(st.sampled_from([1e308, -1e308, 10**400, -(10**400), math.inf, math.nan, 0,
                                                     -1, 2**63, 1e-320]))
        elif op == "duplicate" and len(path) == 1:
            duplicates.append((str(path[0]), draw(JSON_VALUES)))
    text = json.dumps(obj, indent=2, ensure_ascii=draw(st.booleans()))
    if duplicates and text.endswith("}") and obj:  # the same key twice in the object: the last one counts
        extra = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in duplicates)
        text = text[:-1].rstrip() + ", " + extra + "}"
    data = text.encode("utf-8", errors="surrogatepass")
    damage = draw(st.integers(0, 8))
    if damage == 0:
        data = data[: draw(st.integers(0, len(data)))]  # truncated
    elif damage == 1:
        pos = draw(st.integers(0, len(data)))
        data = data[:pos] + draw(st.one_of(RAW_BYTES, st.text(max_size=10).map(lambda t: t.encode()))) + data[pos:]
    elif damage == 2:
        data = draw(st.sampled_from([b"", b"[]", b"null", b"42", b'"text"', b"{", b"\xef\xbb\xbf{}", b"{,}",
                                     b"// comment\n{}"]))
    return data


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("template")
    init_workdir(root)
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzzed")


def _reset(template: Path, folder: Path) -> None:
    shutil.rmtree(folder)
    shutil.copytree(template, folder)


def _finite_numbers(obj: Any) -> bool:
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_finite_numbers(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return all(_finite_numbers(v) for v in obj)
    return True


def assert_valid_or_one_error(root: Path) -> None:
    """load_job gives a usable job or a DrlocalError; anything else (a traceback for the user) fails the test."""
    try:
        job = load_job(root, environ={})
    except DrlocalError as exc:
        text = str(exc)
        assert text.strip() and "Traceback" not in text
        event("DrlocalError")
        return
    event("valid job")
    # a valid job is usable: what training and the commands read from it works and is finite
    md, hp, run = job.metadata, job.hyperparameters, job.run
    assert md.input_sizes() and md.to_json_dict()
    assert _finite_numbers(md.to_json_dict()), md.to_json_dict()
    algorithm_json = hp.effective_json(md.training_algorithm)
    assert _finite_numbers(algorithm_json), algorithm_json
    assert run.model_prefix.strip() and ".." not in run.model_prefix.split("/") and run.bucket.strip()
    assert math.isfinite(run.round_robin_advance_dist) and math.isfinite(run.start_position_offset)
    assert math.isfinite(run.eval_off_track_penalty) and math.isfinite(run.eval_collision_penalty)
    # the race-type settings map onto the simulator's options and the params yaml without another exception
    opts = run.race_options(training=run.race_type != "HEAD_TO_MODEL")
    assert 0 <= opts.n_obstacles <= 100 and 0 <= opts.n_bots <= 100 and opts.bot_car_speed > 0
    assert _finite_numbers([opts.min_distance_between_obstacles, opts.min_distance_between_bot_cars,
                            opts.penalty_seconds, opts.reset_behind_dist, opts.upper_lane_change_time])
    params = race_type_params(run, evaluation=True)
    assert all(isinstance(v, str | list) for v in params.values())
    assert (run.opponent is not None) == (run.race_type == "HEAD_TO_MODEL")
    try:
        load_track(run.world_name)  # an unknown world name is the one-message error of the command that reads it
    except DrlocalError:
        pass


@FUZZ
@given(data=st.data())
def test_fuzzed_run_env(template: Path, folder: Path, data: st.DataObject) -> None:
    _reset(template, folder)
    (folder / "run.env").write_bytes(data.draw(env_file((template / "run.env").read_text())))
    assert_valid_or_one_error(folder)


@FUZZ
@given(data=st.data(), race=st.sampled_from(["OBJECT_AVOIDANCE", "HEAD_TO_BOT", "HEAD_TO_MODEL", "head_to_bot"]))
def test_fuzzed_race_type_settings(template: Path, folder: Path, data: st.DataObject, race: str) -> None:
    """run.env with a race type selected and its DR_OA_* / DR_H2B_* / DR_EVAL_OPP_* lines mutated."""
    _reset(template, folder)
    lines = (template / "run.env").read_text().replace("DR_RACE_TYPE=TIME_TRIAL", f"DR_RACE_TYPE={race}")
    race_lines = "\n".join(ln for ln in lines.splitlines() if ln.startswith(("DR_OA_", "DR_H2B_", "DR_EVAL_OPP_",
                                                                             "DR_EVAL_RESET")))
    (folder / "run.env").write_bytes(lines.encode() + data.draw(env_file(race_lines)) + b"\n")
    assert_valid_or_one_error(folder)


@FUZZ
@given(data=st.data())
def test_fuzzed_system_env(template: Path, folder: Path, data: st.DataObject) -> None:
    _reset(template, folder)
    (folder / "system.env").write_bytes(data.draw(env_file((template / "system.env").read_text())))
    assert_valid_or_one_error(folder)


@FUZZ
@given(data=st.data(), number=st.sampled_from(["2", "3", "10", "02", "1", "x"]))
def test_fuzzed_worker_env(template: Path, folder: Path, data: st.DataObject, number: str) -> None:
    _reset(template, folder)
    (folder / f"worker-{number}.env").write_bytes(data.draw(env_file((template / "run.env").read_text())))
    assert_valid_or_one_error(folder)


@FUZZ
@given(data=st.data())
def test_fuzzed_model_metadata(template: Path, folder: Path, data: st.DataObject) -> None:
    _reset(template, folder)
    path = folder / "custom_files" / "model_metadata.json"
    base = json.loads(path.read_text())
    if data.draw(st.booleans()):  # a continuous space and a LIDAR too, so that both shapes get fuzzed
        base.update({"action_space": {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 0.5, "high": 2}},
                     "action_space_type": "continuous", "sensor": ["FRONT_FACING_CAMERA", "SECTOR_LIDAR"],
                     "lidar_config": {"num_sectors": 8, "num_values_per_sector": 2, "clipping_dist": 2.0}})
    path.write_bytes(data.draw(json_file(base)))
    assert_valid_or_one_error(folder)


@FUZZ
@given(data=st.data())
def test_fuzzed_hyperparameters(template: Path, folder: Path, data: st.DataObject) -> None:
    _reset(template, folder)
    path = folder / "custom_files" / "hyperparameters.json"
    path.write_bytes(data.draw(json_file(json.loads(path.read_text()))))
    assert_valid_or_one_error(folder)


# ----- reward params and the env step -----

TRACKS = ["reinvent_base", "reInvent2019_track", "Straight_track", "2022_april_open"]


@pytest.fixture(scope="module")
def tracks() -> dict[str, Any]:
    return {name: load_track(name) for name in TRACKS}


def assert_params_invariants(p: dict[str, Any], track: Any) -> None:
    n = len(p["waypoints"])
    prev, nxt = p["closest_waypoints"]
    assert 0 <= prev < n and 0 <= nxt < n
    wp = np.asarray(p["waypoints"])
    between = [(prev + k) % n for k in range(1, (nxt - prev) % n)]  # duplicate points are skipped, as on AWS
    assert nxt == (prev + 1) % n or all(np.allclose(wp[j], wp[nxt]) or np.allclose(wp[j], wp[prev]) for j in between)
    for key in ("x", "y", "heading", "progress", "distance_from_center", "track_width", "projection_distance",
                "track_length", "speed", "steering_angle", "steps"):
        assert math.isfinite(p[key]), (key, p[key])
    assert -180.0 < p["heading"] <= 180.0
    assert 0.0 <= p["distance_from_center"] and 0.0 < p["track_width"]
    assert 0.0 <= p["projection_distance"] <= p["track_length"] + 1e-9
    assert not (p["is_offtrack"] and p["all_wheels_on_track"])


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(TRACKS),
    kind=st.sampled_from(["waypoint", "near", "far", "wrap"]),
    index=st.integers(0, 10**6),
    offset=st.tuples(st.floats(-2, 2), st.floats(-2, 2)),
    far=st.tuples(st.floats(-1e12, 1e12), st.floats(-1e12, 1e12)),
    heading=st.floats(-1e6, 1e6),
    reverse=st.booleans(),
    start=st.floats(0, 1, exclude_max=True),
)
def test_reward_params_invariants(tracks: dict[str, Any], name: str, kind: str, index: int, offset: tuple,
                                  far: tuple, heading: float, reverse: bool, start: float) -> None:
    track = tracks[name]
    wp = track.waypoints
    i = index % len(wp)
    if kind == "waypoint":  # the car point exactly on a waypoint
        h = math.radians(heading)
        x, y = wp[i][0] - 0.14 * math.cos(h), wp[i][1] - 0.14 * math.sin(h)
    elif kind == "near":
        x, y = wp[i][0] + offset[0], wp[i][1] + offset[1]
    elif kind == "far":
        x, y = far
    else:  # on the lap's wrap: around the start line, start at 0
        x, y = wp[0][0] + offset[0] * 0.05, wp[0][1] + offset[1] * 0.05
        start = 0.0
    p = reward_params(track, x, y, heading, reverse=reverse, start_ndist=start)
    assert_params_invariants(p, track)
    assert 0.0 < p["progress"] <= 100.0  # without a previous step: the pose's own progress, no wrap rule
    assert p["is_reversed"] == reverse


@settings(max_examples=60, deadline=None, database=None)
@given(bad=st.sampled_from(["x", "y", "heading", "speed", "steering_angle", "steps", "start_ndist", "prev_progress"]),
       value=st.sampled_from([math.nan, math.inf, -math.inf, "1.0", None, True]))
def test_reward_params_refuses_what_is_not_a_finite_number(bad: str, value: Any) -> None:
    if bad == "prev_progress" and value is None:
        return  # None is the default: no previous step
    track = load_track("reinvent_base")
    kwargs: dict[str, Any] = {"x": 3.0, "y": 0.7, "heading": 0.0, bad: value}
    with pytest.raises(ValueError, match=f"{bad}="):
        reward_params(track, **kwargs)


ACTIONS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.floats(-1.5, 1.5), st.sampled_from([-1.0, 0.0, 1.0]),
)


@pytest.fixture(scope="module")
def envs() -> dict[str, DeepRacerVectorEnv]:
    cont = {"action_space": {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 0.5, "high": 4.0}},
            "action_space_type": "continuous", "sensor": ["FRONT_FACING_CAMERA", "LIDAR"], "version": "5"}
    out = {"continuous": DeepRacerVectorEnv(3, "reInvent2019_track", cont),
           "discrete": DeepRacerVectorEnv(3, "reinvent_base")}
    for env in out.values():
        env.reset(seed=0)
    return out


def _observations_finite(obs: Any) -> bool:
    if isinstance(obs, dict):
        return all(_observations_finite(v) for v in obs.values())
    return bool(np.isfinite(obs).all())


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["continuous", "discrete"]), steps=st.lists(
    st.tuples(ACTIONS, ACTIONS, ACTIONS, ACTIONS, ACTIONS, ACTIONS, st.integers(-2, 6), st.integers(-2, 6),
              st.integers(-2, 6)), min_size=1, max_size=12))
def test_env_step_with_random_actions(envs: dict[str, DeepRacerVectorEnv], kind: str, steps: list) -> None:
    env = envs[kind]
    for s in steps:
        if kind == "continuous":
            action = np.array(s[:6], dtype=np.float64).reshape(3, 2)
            ok = bool(np.isfinite(action).all())
        else:
            action = np.array(s[6:], dtype=np.int64)
            ok = bool(((action >= 0) & (action < 5)).all())
        before = env.world.steps.copy()
        if not ok:
            with pytest.raises(InvalidActionError):
                env.step(action)
            assert np.array_equal(env.world.steps, before)  # a refused action changes nothing
            continue
        obs, reward, terminated, truncated, info = env.step(action)
        assert _observations_finite(obs) and np.isfinite(reward).all()
        car = env.world.car
        assert all(np.isfinite(a).all() for a in (car.x, car.y, car.yaw, car.speed, car.steer))
        assert (info["progress"] <= 100.0).all() and (info["progress"] > -100.0).all()
        for p in info["params"]:
            assert_params_invariants(p, env.track)
        if kind == "continuous":  # DeepRacer's clipping: commands stay in the action space's ranges
            assert ((info["speed"] >= 0.5) & (info["speed"] <= 4.0)).all()
            assert (np.abs(info["steering_angle"]) <= 30.0).all()


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pose=st.tuples(st.floats(-1e9, 1e9), st.floats(-1e9, 1e9), st.floats(-1e3, 1e3)),
       action=st.tuples(st.floats(-1, 1), st.floats(-1, 1)))
def test_env_step_from_random_poses(envs: dict[str, DeepRacerVectorEnv], pose: tuple, action: tuple) -> None:
    """Cars teleported anywhere (far off the map included) step without NaN and end their episode sensibly."""
    env = envs["continuous"]
    env.reset(options={"reset_mask": np.ones(3, dtype=bool)})
    w = env.world
    w.car.place(np.array([False, True, False]), pose[0], pose[1], pose[2])
    for _ in range(3):
        if env._autoreset.any():
            env.reset(options={"reset_mask": env._autoreset.copy()})
        obs, reward, terminated, truncated, info = env.step(np.tile(np.array(action), (3, 1)))
        assert _observations_finite(obs) and np.isfinite(reward).all()
        for p in info["params"]:
            assert_params_invariants(p, env.track)
