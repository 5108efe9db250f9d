"""Clipped PPO maths against hand-computed values (contract §8.2) and a learning check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from drlocal.learn.networks import PPOActorCritic, count_parameters
from drlocal.learn.ppo import (
    PPOConfig,
    PPOLearner,
    clipped_surrogate,
    compute_gae,
    effective_batch_size,
    standardize,
    value_loss,
)


def test_gae_by_hand() -> None:
    # γ = 0.9, λ = 0.95; one episode of 3 steps, bootstrap 0 after the last:
    # δ2 = 2 − 0.1 = 1.9                      A2 = 1.9
    # δ1 = 0 + 0.9·0.1 − 0.2 = −0.11           A1 = −0.11 + 0.855·1.9 = 1.5145
    # δ0 = 1 + 0.9·0.2 − 0.5 = 0.68            A0 = 0.68 + 0.855·1.5145 = 1.9748975
    adv, targets = compute_gae(
        np.array([1.0, 0.0, 2.0]), np.array([0.5, 0.2, 0.1]), np.array([False, False, True]), gamma=0.9
    )
    assert adv == pytest.approx([1.9748975, 1.5145, 1.9])
    assert targets == pytest.approx([2.4748975, 1.7145, 2.0])


def test_gae_zero_bootstrap_between_episodes() -> None:
    # two episodes back to back: the first ends at t=1, so V(t=2) must not leak into it
    adv, _ = compute_gae(
        np.array([1.0, 1.0, 5.0]), np.array([0.0, 0.0, 100.0]), np.array([False, True, True]), gamma=1.0
    )
    # A1 = 1 (no bootstrap), A0 = 1 + 0 − 0 + 0.95·1 = 1.95, A2 = 5 − 100 = −95
    assert adv == pytest.approx([1.95, 1.0, -95.0])


def test_standardize() -> None:
    out = standardize(np.array([1.0, 2.0, 3.0, 4.0]))
    assert out == pytest.approx([-1.3416408, -0.4472136, 0.4472136, 1.3416408], rel=1e-6)


def test_batch_shrink_and_remainder() -> None:
    assert effective_batch_size(40, 64) == 32
    assert effective_batch_size(64, 64) == 64
    assert effective_batch_size(1000, 64) == 64
    assert effective_batch_size(1, 64) == 1


@pytest.mark.parametrize(
    ("ratio", "adv", "loss"),
    [(1.5, 1.0, -1.2), (1.5, -1.0, 1.5), (0.5, 1.0, -0.5), (0.5, -1.0, 0.8), (1.1, 2.0, -2.2)],
)
def test_clipped_surrogate(ratio: float, adv: float, loss: float) -> None:
    logp = torch.tensor([np.log(ratio)])
    value, r = clipped_surrogate(logp, torch.zeros(1), torch.tensor([adv]))
    assert float(value) == pytest.approx(loss, rel=1e-6)
    assert float(r) == pytest.approx(ratio)


def test_value_losses() -> None:
    pred, tgt = torch.tensor([0.0, 0.0]), torch.tensor([0.5, 3.0])
    assert float(value_loss(pred, tgt, "mean squared error")) == pytest.approx((0.25 + 9.0) / 2)
    # Huber δ=1: 0.5·0.25 and 3 − 0.5
    assert float(value_loss(pred, tgt, "huber")) == pytest.approx((0.125 + 2.5) / 2)


def test_shallow_tower_parameter_count() -> None:
    m = PPOActorCritic({"FRONT_FACING_CAMERA": 0}, "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", 5, False)
    # contract §7.1: 2,080 + 32,832 + 36,928 + 5,767,680 per tower body
    assert count_parameters(m.policy_tower) == 2080 + 32832 + 36928 + 5767680
    assert count_parameters(m.value_tower) == count_parameters(m.policy_tower)
    out = m.policy_output({"FRONT_FACING_CAMERA": torch.zeros(2, 120, 160, 1, dtype=torch.uint8)})
    assert out.shape == (2, 5) and torch.allclose(out.sum(1), torch.ones(2))


def _bandit(n: int, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    sign = rng.integers(0, 2, n)
    obs = np.zeros((n, 64), dtype=np.float32)
    obs[:, 0] = np.where(sign == 1, 1.0, -1.0)
    return {"LIDAR": obs}, sign


def test_ppo_learns_a_contextual_bandit() -> None:
    """One-step episodes: reward 1 for the action matching the observation's sign, else 0."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = PPOActorCritic({"LIDAR": 64}, "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", 2, False)
    learner = PPOLearner(model, PPOConfig(lr=1e-3, num_epochs=3, batch_size=64), torch.device("cpu"))
    for _ in range(15):
        obs, best = _bandit(256, rng)
        with torch.no_grad():
            act = model.distribution({"LIDAR": torch.as_tensor(obs["LIDAR"])}).sample().numpy()
        reward = (act == best).astype(np.float64)
        stats = learner.update(obs, act, reward, np.ones(256, dtype=bool))
        assert stats.first_epoch_ratio_dev < 1e-5  # π_old is the policy that acted
        assert stats.minibatches == 3 * 4
    obs, best = _bandit(500, rng)
    with torch.no_grad():
        greedy = model.policy_output({"LIDAR": torch.as_tensor(obs["LIDAR"])}).argmax(1).numpy()
    assert (greedy == best).mean() > 0.95


def test_continuous_head() -> None:
    torch.manual_seed(0)
    m = PPOActorCritic({"LIDAR": 64}, "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", 2, True)
    obs = {"LIDAR": torch.zeros(3, 64)}
    mean = m.policy_output(obs).detach()
    assert mean.shape == (3, 2) and float(mean.abs().max()) < 0.2  # std 0.01 init keeps the mean near 0
    d = m.distribution(obs)
    assert torch.allclose(d.stddev, torch.ones(3, 2))  # log σ starts at 0
    assert d.log_prob(torch.zeros(3, 2)).shape == (3,)
