"""Misusing the Gymnasium envs: NaN/inf, out-of-range, wrongly shaped or typed actions give one clear error
(or DeepRacer's clipping where DeepRacer clips), and never a NaN state; the env stays usable afterwards."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import drlocal  # noqa: F401  (registers drlocal/DeepRacer-v0)
from drlocal.env.vector_env import DeepRacerVectorEnv
from drlocal.errors import DrlocalError, InvalidActionError
from drlocal.sim.episode import World
from drlocal.tracks import load_track

CONTINUOUS = {
    "action_space": {"steering_angle": {"low": -20, "high": 30}, "speed": {"low": 0.5, "high": 2.0}},
    "action_space_type": "continuous",
    "sensor": ["FRONT_FACING_CAMERA"],
    "version": "5",
}


@pytest.fixture(scope="module")
def discrete() -> DeepRacerVectorEnv:
    env = DeepRacerVectorEnv(3, "reinvent_base")
    env.reset(seed=0)
    return env


@pytest.fixture(scope="module")
def continuous() -> DeepRacerVectorEnv:
    env = DeepRacerVectorEnv(2, "reinvent_base", CONTINUOUS)
    env.reset(seed=0)
    return env


def assert_still_usable(env: DeepRacerVectorEnv, steps_before: np.ndarray) -> None:
    """A refused action changed nothing: the step counters are as before, the state finite, the next step works."""
    assert np.array_equal(env.world.steps, steps_before)
    car = env.world.car
    assert all(np.isfinite(a).all() for a in (car.x, car.y, car.yaw, car.speed, car.steer))
    action = np.zeros((env.num_envs, 2), np.float32) if env.actions.continuous else np.zeros(env.num_envs, np.int64)
    obs, reward, *_ = env.step(action)
    assert np.isfinite(reward).all() and np.array_equal(env.world.steps, steps_before + 1)


@pytest.mark.parametrize(
    ("action", "fragments"),
    [
        (np.array([0.0, np.nan, 1.0]), ["integer action indices 0..4 of shape (3,)", "float64"]),
        (np.array([0.0, 1.0, 2.0]), ["integer action indices", "dtype=np.int64"]),
        (np.array([0, 7, 1]), ["out of range 0..4", "car 1 got 7"]),
        (np.array([0, -1, 1]), ["out of range 0..4", "car 1 got -1"]),
        (np.array([0, 1]), ["of shape (3,), got shape (2,)"]),
        (np.array([[0], [1], [2]]), ["got shape (3, 1)"]),
        (np.array(["a", "b", "c"]), ["dtype <U1"]),
        (np.array([True, False, True]), ["dtype bool"]),
        (np.array([1, None, 2], dtype=object), ["dtype object"]),
    ],
)
def test_discrete_misuse(discrete: DeepRacerVectorEnv, action: np.ndarray, fragments: list[str]) -> None:
    before = discrete.world.steps.copy()
    with pytest.raises(InvalidActionError) as info:
        discrete.step(action)
    assert isinstance(info.value, ValueError) and isinstance(info.value, DrlocalError)
    for f in fragments:
        assert f in str(info.value), (f, str(info.value))
    assert_still_usable(discrete, before)


@pytest.mark.parametrize(
    ("action", "fragments"),
    [
        (np.array([[0.0, np.nan], [0.0, 0.0]]), ["car 0", "NaN/inf cannot be driven", "(2, 2)"]),
        (np.array([[0.0, 0.0], [np.inf, 0.0]]), ["car 1", "NaN/inf"]),
        (np.array([[0.0, 0.0], [-np.inf, -np.inf]]), ["car 1"]),
        (np.zeros(2), ["of shape (2, 2), got shape (2,)"]),
        (np.zeros((2, 3)), ["got shape (2, 3)"]),
        (np.zeros((3, 2)), ["got shape (3, 2)"]),
        (np.array([["a", "b"], ["c", "d"]]), ["dtype <U1"]),
        (np.array([[1 + 1j, 0], [0, 0]]), ["dtype complex128"]),
    ],
)
def test_continuous_misuse(continuous: DeepRacerVectorEnv, action: np.ndarray, fragments: list[str]) -> None:
    before = continuous.world.steps.copy()
    with pytest.raises(InvalidActionError) as info:
        continuous.step(action)
    for f in fragments:
        assert f in str(info.value), (f, str(info.value))
    assert_still_usable(continuous, before)


def test_out_of_range_continuous_actions_are_clipped_as_deepracer_clips(continuous: DeepRacerVectorEnv) -> None:
    _, reward, _, _, info = continuous.step(np.array([[5.0, 1e30], [-7.0, -2.0]]))
    assert info["steering_angle"].tolist() == [30.0, -20.0] and info["speed"].tolist() == [2.0, 0.5]
    assert np.isfinite(reward).all()
    ints = continuous.step(np.array([[1, 1], [-1, -1]]))[4]  # integer arrays are numbers too
    assert ints["steering_angle"].tolist() == [30.0, -20.0]


def test_single_env_misuse() -> None:
    env = gym.make("drlocal/DeepRacer-v0", track="reinvent_base").unwrapped
    env.reset(seed=0)
    env.step(2)
    for bad, fragment in [(np.array([2]), "one action index, an int 0..4; got shape (1,)"),
                          (2.5, "integer action indices"), (np.nan, "integer action indices"), (9, "out of range"),
                          ("left", "dtype <U4")]:
        with pytest.raises(InvalidActionError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
            env.step(bad)
    _, reward, *_ = env.step(np.int64(2))
    assert np.isfinite(reward)

    cont = gym.make("drlocal/DeepRacer-v0", track="reinvent_base", model_metadata=CONTINUOUS).unwrapped
    cont.reset(seed=0)
    with pytest.raises(InvalidActionError, match=r"one \(steering, speed\) pair, shape \(2,\); got shape \(1, 2\)"):
        cont.step(np.zeros((1, 2)))
    with pytest.raises(InvalidActionError, match="NaN/inf"):
        cont.step(np.array([np.nan, 0.0], np.float32))
    obs, reward, *_ = cont.step(np.array([3.0, -3.0], np.float32))  # clipped
    assert np.isfinite(reward) and obs.dtype == np.uint8


def test_reset_mask_must_match_the_cars(discrete: DeepRacerVectorEnv) -> None:
    with pytest.raises(InvalidActionError, match=r"reset_mask'\] must be a boolean array of shape \(3,\)"):
        discrete.reset(options={"reset_mask": np.array([True, False])})
    with pytest.raises(InvalidActionError, match="reset_mask"):
        discrete.reset(options={"reset_mask": np.array(["yes", "no", "no"])})
    discrete.reset(options={"reset_mask": np.array([True, False, False])})
    assert discrete.world.steps[0] == 0.0


def test_world_refuses_non_finite_commands() -> None:
    w = World(load_track("reinvent_base"), 2)
    with pytest.raises(InvalidActionError, match="car 1: commanded speed nan m/s"):
        w.step(np.array([1.0, np.nan]), np.array([0.0, 0.0]))
    with pytest.raises(InvalidActionError, match=r"car 0: .* steering inf°"):
        w.step(np.array([1.0, 1.0]), np.array([np.inf, 0.0]))
    assert w.steps.tolist() == [0.0, 0.0]
    res = w.step(np.array([9.0, -3.0]), np.array([90.0, -90.0]))  # finite but out of range: the simapp clips
    assert res.status.tolist() == ["prepare", "prepare"]
    for _ in range(5):
        res = w.step(np.array([9.0, -3.0]), np.array([90.0, -90.0]))
    assert np.isfinite(w.car.x).all() and w.car.speed.max() <= 4.0 and np.abs(w.car.steer).max() <= np.radians(30)
