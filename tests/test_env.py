"""The Gymnasium environments: registration, spaces from model_metadata, batching, seeding, autoreset."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import drlocal  # noqa: F401  (registers drlocal/DeepRacer-v0)
from drlocal.env.vector_env import DeepRacerVectorEnv

LIDAR_META = {
    "action_space": {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 0.5, "high": 2.0}},
    "action_space_type": "continuous",
    "sensor": ["FRONT_FACING_CAMERA", "SECTOR_LIDAR"],
    "version": "5",
}


def test_single_env_passes_gymnasium_checker() -> None:
    env = gym.make("drlocal/DeepRacer-v0", track="reinvent_base").unwrapped
    check_env(env, skip_render_check=True)
    assert env.observation_space == gym.spaces.Box(0, 255, (120, 160, 1), np.uint8)
    assert env.action_space == gym.spaces.Discrete(5)


def test_make_vec_gives_the_native_batched_env() -> None:
    venv = gym.make_vec("drlocal/DeepRacer-v0", num_envs=8, track="reinvent_base")
    assert isinstance(venv.unwrapped, DeepRacerVectorEnv)
    obs, info = venv.reset(seed=0)
    assert obs.shape == (8, 120, 160, 1) and obs.dtype == np.uint8
    assert info["params"].shape == (8,) and info["params"][0]["steps"] == 0.0
    obs, reward, term, trunc, info = venv.step(np.full(8, 2))
    assert list(info["episode_status"]) == ["prepare"] * 8 and reward.tolist() == [0.0] * 8
    obs, reward, _term, _trunc, info = venv.step(np.full(8, 2))
    assert list(info["episode_status"]) == ["in_progress"] * 8
    assert [p["steps"] for p in info["params"]] == [2.0] * 8
    # cars start spread around the lap (round robin, 5 % apart) and progress is relative to each start
    starts = venv.unwrapped.world.start_ndist
    assert np.allclose(np.diff(starts), 0.05)
    assert np.allclose(info["progress"], 0.79, atol=0.05)
    venv.close()


def test_dict_observations_and_continuous_actions() -> None:
    env = DeepRacerVectorEnv(2, "reinvent_base", LIDAR_META)
    assert isinstance(env.single_observation_space, gym.spaces.Dict)
    assert set(env.single_observation_space.spaces) == {"FRONT_FACING_CAMERA", "SECTOR_LIDAR"}
    assert env.single_action_space == gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    obs, _ = env.reset(seed=1)
    assert obs["FRONT_FACING_CAMERA"].shape == (2, 120, 160, 1) and obs["SECTOR_LIDAR"].shape == (2, 8)
    env.step(np.zeros((2, 2), dtype=np.float32))
    _, _, _, _, info = env.step(np.array([[1.0, 1.0], [-1.0, -1.0]], dtype=np.float32))
    assert info["steering_angle"].tolist() == [30.0, -30.0] and info["speed"].tolist() == [2.0, 0.5]
    assert info["action_label"].tolist() == ["[30.0 2.0]", "[-30.0 0.5]"]


def _rollout(seed: int, steps: int = 60) -> tuple[np.ndarray, np.ndarray]:
    env = DeepRacerVectorEnv(3, "reinvent_base", LIDAR_META)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(123)
    rewards, frames = [], []
    for _ in range(steps):
        obs, r, *_ = env.step(rng.uniform(-1, 1, (3, 2)).astype(np.float32))
        rewards.append(r)
        frames.append(obs["FRONT_FACING_CAMERA"].copy())
    return np.array(rewards), np.array(frames)


def test_seeded_resets_are_reproducible() -> None:
    r1, f1 = _rollout(7)
    r2, f2 = _rollout(7)
    assert np.array_equal(r1, r2) and np.array_equal(f1, f2)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_autoreset(mode: AutoresetMode) -> None:
    env = DeepRacerVectorEnv(2, "reinvent_base", autoreset_mode=mode)
    env.reset(seed=0)
    hard_right = np.array([0, 2])  # car 0 steers -30 deg at 0.6 m/s and leaves the road
    for _ in range(300):
        obs, reward, term, trunc, info = env.step(hard_right)
        if term[0]:
            break
    assert term[0] and not term[1] and info["episode_status"][0] == "off_track"
    if mode == AutoresetMode.SAME_STEP:
        assert info["_final_obs"].tolist() == [True, False]
        assert info["final_info"][0]["episode_status"] == "off_track"
        assert env.world.steps[0] == 0.0  # already reset; the next step is PREPARE
    obs, reward, term, trunc, info = env.step(hard_right)
    if mode == AutoresetMode.NEXT_STEP:  # the reset step: action ignored, reward 0
        assert reward[0] == 0.0 and env.world.steps[0] == 0.0
        _obs, reward, term, _trunc, info = env.step(hard_right)
    assert info["episode_status"][0] == "prepare" and reward[0] == 0.0
    # training episodes advance the start of that car by N x 5 % of the lap
    assert env.world.start_ndist[0] == pytest.approx(0.10)


def test_stable_baselines3_ppo_runs_on_the_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env(lambda: gym.make("drlocal/DeepRacer-v0", track="reinvent_base"), n_envs=2, seed=0)
    model = PPO("CnnPolicy", venv, n_steps=256, batch_size=64, n_epochs=1, seed=0, device="cpu",
                policy_kwargs={"features_extractor_kwargs": {"features_dim": 64}})
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path))  # SB3's logger otherwise leaves an SB3-<date> folder in /tmp
    model.learn(total_timesteps=2048)
    logs = model.logger.name_to_value
    for key in ("train/value_loss", "train/policy_gradient_loss", "train/entropy_loss"):
        assert np.isfinite(logs[key]), key
    assert model.num_timesteps >= 2048
