"""SAC maths and a SAC run; pretrained starts; e-greedy exploration schedule."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from drlocal.config.workdir import init_workdir, load_job
from drlocal.learn import trainer as trainer_module
from drlocal.learn.agent import Actor
from drlocal.learn.evaluate import evaluate
from drlocal.learn.networks import PPOActorCritic
from drlocal.learn.sac import SACConfig, SACLearner, SACPolicy
from drlocal.learn.trainer import Trainer
from drlocal.store.local import ModelStore

CONTINUOUS_SAC = {
    "action_space": {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 0.5, "high": 1.5}},
    "action_space_type": "continuous",
    "training_algorithm": "sac",
    "sensor": ["FRONT_FACING_CAMERA"],
    "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
    "version": "5",
}


def test_sac_log_prob_matches_tanh_transformed_gaussian() -> None:
    torch.manual_seed(0)
    pol = SACPolicy({"LIDAR": 64}, "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW")
    obs = {"LIDAR": torch.randn(5, 64)}
    torch.manual_seed(1)
    a, logp = pol.sample(obs)
    mean, log_std = pol(obs)
    ref = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.exp()), [torch.distributions.TanhTransform()]
    )
    assert torch.all(a.abs() < 1)
    assert torch.allclose(logp, ref.log_prob(a).sum(-1), atol=2e-3)


def test_sac_update_fits_q_to_rewards() -> None:
    """Terminal one-step transitions: Q(s, a) must approach r (no bootstrap)."""
    torch.manual_seed(0)
    learner = SACLearner({"LIDAR": 64}, "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
                         SACConfig(lr=1e-3, batch_size=64, alpha=0.2), torch.device("cpu"))
    rng = np.random.default_rng(0)
    obs = {"LIDAR": rng.normal(size=(512, 64)).astype(np.float32)}
    act = rng.uniform(-1, 1, (512, 2)).astype(np.float32)
    rew = act[:, 0].astype(np.float64)  # reward = steering component
    learner.replay.add(obs, act, rew, obs, np.ones(512, dtype=bool))
    first = learner.update(1)["q_loss"]
    last = learner.update(300)["q_loss"]
    assert last < 0.2 * first
    with torch.no_grad():
        q1, _ = learner.q({"LIDAR": torch.as_tensor(obs["LIDAR"][:64])}, torch.as_tensor(act[:64]))
    assert np.corrcoef(q1.numpy(), rew[:64])[0, 1] > 0.9


def test_e_greedy_schedule() -> None:
    m = PPOActorCritic({"LIDAR": 64}, "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", 5, False)
    actor = Actor(m, ["LIDAR"], torch.device("cpu"), exploration="e-greedy", e_greedy_value=0.05,
                  epsilon_steps=1000, seed=0)
    assert actor.epsilon() == 1.0
    actor.steps = 500
    assert abs(actor.epsilon() - 0.525) < 1e-12  # linear from 1.0 to 0.05 over 1000 steps
    actor.steps = 5000
    assert abs(actor.epsilon() - 0.05) < 1e-12
    obs = {"LIDAR": np.zeros((2000, 64), dtype=np.float32)}
    greedy = actor.act(obs, deterministic=True)[0]
    acts = actor.act(obs)  # ε = 0.05: about 96 % greedy (random picks can also hit it)
    assert 0.93 < (acts == greedy).mean() < 0.99


def _folder(tmp_path: Path, metadata: dict | None = None) -> Path:
    init_workdir(tmp_path)
    cf = tmp_path / "custom_files"
    h = json.loads((cf / "hyperparameters.json").read_text())
    h.update({"num_episodes_between_training": 2, "num_epochs": 1, "batch_size": 32})
    (cf / "hyperparameters.json").write_text(json.dumps(h))
    if metadata:
        (cf / "model_metadata.json").write_text(json.dumps(metadata))
    return tmp_path


def test_sac_training_iteration_and_evaluation(tmp_path: Path) -> None:
    root = _folder(tmp_path, CONTINUOUS_SAC)
    job = load_job(root, environ={}, overrides={"DR_TRAIN_MIN_EVAL_TRIALS": "1"})
    trainer = Trainer(job, max_iterations=1, seed=0)
    trainer.train()
    state = ModelStore(job.model_root()).load_checkpoint("last")
    assert state["algorithm"] == "sac" and set(state["model"]) == {"policy", "q", "v", "v_target"}
    hp = json.loads((job.model_root() / "ip" / "hyperparameters.json").read_text())
    assert "sac_alpha" in hp and "beta_entropy" not in hp and "num_epochs" not in hp
    res = evaluate(job, checkpoint="last", trials=1, continuous=False)
    assert len(res.laps) == 1


def test_pretrained_start_copies_weights(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    job = load_job(root, environ={}, overrides={"DR_TRAIN_MIN_EVAL_TRIALS": "0"})
    Trainer(job, max_iterations=1, seed=0).train()
    source = ModelStore(job.model_root()).load_checkpoint("last")["model"]
    env = {"DR_LOCAL_S3_PRETRAINED": "True", "DR_LOCAL_S3_PRETRAINED_PREFIX": "rl-deepracer-sagemaker",
           "DR_LOCAL_S3_MODEL_PREFIX": "second", "DR_TRAIN_MIN_EVAL_TRIALS": "0"}
    job2 = load_job(root, environ={}, overrides=env)
    t2 = Trainer(job2, max_iterations=1, seed=5)
    for k, v in t2.model.state_dict().items():
        assert torch.equal(v, source[k]), k
    zero = ModelStore(job2.model_root()).load_checkpoint(0)["model"]  # checkpoint 0 = the pretrained weights
    assert all(torch.equal(zero[k], source[k]) for k in source)


def _sac_trainer(root: Path, seed: int) -> Trainer:
    job = load_job(_folder(root, CONTINUOUS_SAC), environ={}, overrides={"DR_TRAIN_MIN_EVAL_TRIALS": "0"})
    return Trainer(job, max_iterations=0, seed=seed)


def test_sac_replay_sampling_follows_the_run_seed(tmp_path: Path) -> None:
    """The replay minibatches come from the run's seed: other seeds draw other minibatches, the same seed the same."""
    def minibatches(trainer: Trainer) -> list[list[float]]:
        sac = trainer.sac
        assert sac is not None
        n = 200
        obs = {"FRONT_FACING_CAMERA": np.zeros((n, 120, 160, 1), dtype=np.uint8)}
        sac.replay.add(obs, np.zeros((n, 2), dtype=np.float32), np.arange(n, dtype=np.float64), obs,
                       np.zeros(n, dtype=bool))
        return [sac.replay.sample(8, sac.rng)["rew"].tolist() for _ in range(3)]  # rew = index of the transition

    first = minibatches(_sac_trainer(tmp_path / "a", seed=1))
    again = minibatches(_sac_trainer(tmp_path / "b", seed=1))
    other = minibatches(_sac_trainer(tmp_path / "c", seed=2))
    assert first == again
    assert first != other
    expected = np.random.default_rng(2).integers(0, 200, 8)  # the first minibatch of seed 2
    assert other[0] == expected.astype(float).tolist()


def test_sac_config_takes_hyperparameters_by_name(tmp_path: Path, monkeypatch) -> None:
    fields = reversed(dataclasses.fields(SACConfig))  # what a reordering edit of sac.py would do
    reordered = [(f.name, f.type, dataclasses.field(default=f.default)) for f in fields]
    monkeypatch.setattr(trainer_module, "SACConfig", dataclasses.make_dataclass("SACConfig", reordered))
    root = _folder(tmp_path, CONTINUOUS_SAC)
    hp_path = root / "custom_files" / "hyperparameters.json"
    hp_path.write_text(json.dumps(json.loads(hp_path.read_text()) | {"lr": 0.0005, "batch_size": 16,
                                                                       "discount_factor": 0.9, "sac_alpha": 0.3}))
    trainer = Trainer(load_job(root, environ={}, overrides={"DR_TRAIN_MIN_EVAL_TRIALS": "0"}), max_iterations=0)
    assert trainer.sac is not None
    assert dataclasses.asdict(trainer.sac.config) == {"lr": 0.0005, "batch_size": 16, "discount_factor": 0.9,
                                                      "alpha": 0.3, "replay_size": SACConfig().replay_size}
