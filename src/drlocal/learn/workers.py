"""Rollout workers: one DeepRacer worker's training episodes of an iteration (contract §8.3).

A `RolloutWorker` owns a vector env of its E_w cars (its share of num_episodes_between_training,
see `drlocal.config.workers`), a policy network and an `Actor`. `collect()` drives every car through
one training episode with the given weights and returns a `Rollout`: the transitions episode after
episode, the simtrace lines of each episode and each episode's end. It writes no file: the trainer
(the driver) writes simtraces, metrics and checkpoints, so a worker on another machine needs no
shared disk.

The same class serves three ways: in the trainer's process for one worker (sharing the trainer's
model, with the live viewer's hooks), and as a Ray actor for several workers on this machine or a
cluster (`drlocal.learn.ray_workers`), built from a picklable `WorkerSpec` that carries the reward
function's source, the model metadata and the track itself.

`snapshot()` / `restore()` hold everything that makes a worker's next iteration what it is: start
positions and directions, episode counters, exploration schedule and every random stream. The driver
keeps the snapshot taken before each iteration, so a worker lost mid-iteration is replaced by one
that plays exactly the episodes the lost one would have played, and `--resume` continues them.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from drlocal.config.model_metadata import ModelMetadata
from drlocal.config.run import RunConfig
from drlocal.env.vector_env import DeepRacerVectorEnv
from drlocal.learn.agent import Actor, as_obs_dict
from drlocal.learn.rollout import RolloutBuffer, cap_ends
from drlocal.learn.watch import NoWatch, Watch
from drlocal.sim.reward import RewardFunction, reward_from_source
from drlocal.store.logs import format_row, simtrace_row
from drlocal.tracks import Track


@dataclass
class WorkerSpec:
    """What a worker needs, sent by value to wherever it runs (no paths: nothing assumes a shared disk)."""

    index: int  # rollout index, 0-based (DRfC's worker index + 1 names its worker-N.env)
    episodes: int  # its share of an iteration's episodes
    track: Track
    metadata: dict[str, Any]  # model_metadata.json
    reward_source: str
    reward_name: str  # the reward file as the user knows it, for messages
    run: RunConfig  # this worker's run config (multi-config: run.env + its worker-N.env)
    exploration: dict[str, Any]  # exploration_type, e_greedy_value, epsilon_steps
    algorithm: str  # "clipped_ppo" | "sac"
    seed: int = 0
    reward_timeout_s: float | None = 1.0  # the trainer's per-call limit (DRLOCAL_REWARD_TIMEOUT_S there)


@dataclass
class Rollout:
    """One worker's iteration: transitions in episode order (before the trainer's step cap) and its logs.

    Shapes: obs[name] (T, *sensor shape); actions (T,) or (T, 2); rewards (T,) float64; ends (T,) bool,
    True on every episode's last transition; lengths (E_w,) transitions per episode."""

    worker: int
    obs: dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    ends: np.ndarray
    lengths: np.ndarray
    rows: list[list[str]]  # simtrace CSV lines per episode, in episode order
    finals: list[dict[str, Any]]  # per episode: status, progress, reward, steps, end (sim time [s])
    snapshot: dict[str, Any] = field(default_factory=dict)  # the worker's state after this iteration
    timers: dict[str, float] = field(default_factory=dict)  # sim / inference seconds

    @property
    def nbytes(self) -> int:
        """Size of the transitions sent back to the trainer [bytes]."""
        arrays = [*self.obs.values(), self.actions, self.rewards, self.ends, self.lengths]
        return int(sum(a.nbytes for a in arrays))


def policy_network(spec_metadata: ModelMetadata, algorithm: str) -> torch.nn.Module:
    """The network a worker acts with: the PPO actor-critic (only its policy tower is used) or SAC's policy."""
    sizes = spec_metadata.input_sizes()
    if algorithm == "sac":
        from drlocal.learn.sac import SACPolicy

        return SACPolicy(sizes, spec_metadata.neural_network)
    from drlocal.learn.networks import PPOActorCritic

    n_actions = 2 if spec_metadata.is_continuous else len(spec_metadata.action_space)  # type: ignore[arg-type]
    return PPOActorCritic(sizes, spec_metadata.neural_network, n_actions, spec_metadata.is_continuous)


def acting_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The part of the weights a worker acts with (PPO: the policy tower and head; the value tower stays
    with the learner), as CPU tensors: what the trainer sends every worker once per iteration."""
    return {k: v.detach().cpu() for k, v in model.state_dict().items() if not k.startswith("value_")}


def training_env(track: Track, metadata: ModelMetadata, reward: RewardFunction, run: RunConfig, cars: int,
                 seed: int) -> DeepRacerVectorEnv:
    """The vector env of one worker's training episodes: `cars` cars with the run config's start options."""
    env = DeepRacerVectorEnv(
        cars, track, metadata, reward, training=True, change_start_position=run.change_start_position,
        round_robin_advance_dist=run.round_robin_advance_dist, start_position_offset=run.start_position_offset,
        alternate_driving_direction=run.alternate_driving_direction, reverse_direction=run.reverse_direction,
        autoreset_mode=AutoresetMode.DISABLED, race=run.race_options(training=True, seed=seed),
    )
    env.reset(seed=seed)
    return env


class RolloutWorker:
    """Plays one worker's share of every iteration's training episodes; see the module docstring."""

    def __init__(self, env: DeepRacerVectorEnv, actor: Actor, sensors: list[str], *, index: int = 0,
                 watch: Watch | None = None) -> None:
        self.env = env
        self.actor = actor
        self.sensors = sensors
        self.index = index
        self.watch: Watch = watch or NoWatch()
        self.track = env.track
        self.buffer = RolloutBuffer(4096)  # reused by every iteration: flat memory however long the run

    @classmethod
    def from_spec(cls, spec: WorkerSpec) -> RolloutWorker:
        """A worker built from scratch (in a Ray actor): its own network, reward function, env and streams."""
        torch.set_num_threads(1)  # one core per worker: several share a machine
        metadata = ModelMetadata.model_validate(spec.metadata)
        reward = reward_from_source(spec.reward_source, spec.reward_name, timeout_s=spec.reward_timeout_s)
        seed = spec.seed + 1000 * spec.index  # the worker's own streams (worker 0 of a 1-worker run: the trainer's)
        random.seed(seed)  # the global streams a reward function may draw from
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        env = training_env(spec.track, metadata, reward, spec.run, spec.episodes, seed)
        model = policy_network(metadata, spec.algorithm)
        ex = spec.exploration
        actor = Actor(model, sorted(metadata.sensor), torch.device("cpu"), exploration=ex["exploration_type"],
                      e_greedy_value=ex["e_greedy_value"], epsilon_steps=ex["epsilon_steps"], seed=seed)
        return cls(env, actor, sorted(metadata.sensor), index=spec.index)

    # ----- state -----

    def snapshot(self) -> dict[str, Any]:
        """Everything the next iteration depends on (small: positions, counters, random streams)."""
        w = self.env.world
        return {
            "start_ndist": w.start_ndist.copy(), "reverse": w.reverse.copy(), "episode": w.episode.copy(),
            "needs_advance": w.needs_advance.copy(), "actor_steps": self.actor.steps,
            "actor_torch": self.actor.generator.get_state(), "actor_numpy": self.actor.rng.bit_generator.state,
            "sensor_noise": self.env._rng.bit_generator.state, "objects": w.objects.rng.bit_generator.state,
            "python": random.getstate(), "numpy_global": np.random.get_state(),
        }

    def restore(self, snap: dict[str, Any]) -> None:
        """Continue from a `snapshot()` (of this worker or of the one it replaces)."""
        w = self.env.world
        w.start_ndist[:] = snap["start_ndist"]
        w.reverse[:] = snap["reverse"]
        w.episode[:] = snap["episode"]
        w.needs_advance[:] = snap["needs_advance"]
        self.actor.steps = int(snap["actor_steps"])
        self.actor.generator.set_state(torch.as_tensor(snap["actor_torch"]).cpu())
        self.actor.rng.bit_generator.state = snap["actor_numpy"]
        self.env._rng.bit_generator.state = snap["sensor_noise"]
        w.objects.rng.bit_generator.state = snap["objects"]
        random.setstate(snap["python"])
        np.random.set_state(snap["numpy_global"])

    def load_weights(self, weights: dict[str, torch.Tensor] | None) -> None:
        if weights is not None:
            self.actor.model.load_state_dict(weights, strict=False)

    # ----- one iteration -----

    def collect(self, weights: dict[str, torch.Tensor] | None, first_episode: int, start_clock: float,
                snapshot: dict[str, Any] | None = None) -> Rollout:
        """Every car drives one training episode with `weights` (None: the current ones).

        `first_episode` is the worker's 0-based training-episode counter at the start (the simtrace's
        `episode` column counts per worker, as the simapp's do); `start_clock` the sim time [s] the
        iteration starts at; `snapshot` (when given) the state to start from."""
        self.load_weights(weights)
        if snapshot is not None:
            self.restore(snapshot)
        env, w = self.env, self.env.world
        n = env.num_envs
        w.reset()
        self.watch.begin(w, phase="Training")
        buf = self.buffer
        buf.reset()
        active = np.ones(n, dtype=bool)
        ep_reward = np.zeros(n)
        ep_index = first_episode + np.arange(n)
        finals: list[dict[str, Any]] = [{} for _ in range(n)]
        rows: list[list[str]] = [[] for _ in range(n)]  # CSV lines, written per episode, in episode order
        timers = {"sim": 0.0, "inference": 0.0}
        t0 = time.perf_counter()
        obs = as_obs_dict(env._observe(), self.sensors)
        timers["sim"] += time.perf_counter() - t0
        track_len = self.track.length
        while active.any():
            t0 = time.perf_counter()
            acts = self.actor.act(obs)
            t1 = time.perf_counter()
            timers["inference"] += t1 - t0
            speed, steer = env.actions.commands(acts)
            labels = env.actions.labels(acts, speed, steer)
            res = w.step(speed, steer, active=active)
            self.watch.step(w, res, speed, steer, active)
            g = res.geometry
            stepping = np.flatnonzero(active)
            buf.add(stepping, obs, acts, res.reward, res.steps)  # copies the frames: no view keeps a batch alive
            for i in stepping:
                ep_reward[i] += res.reward[i]
                rows[i].append(format_row(simtrace_row(
                    episode=ep_index[i], steps=res.steps[i], x=g.x[i], y=g.y[i], yaw=g.heading[i], steer=steer[i],
                    throttle=speed[i], action=labels[i], reward=res.reward[i], done=res.done[i],
                    on_track=g.all_wheels_on_track[i], progress=g.progress[i], closest_waypoint=g.closest_waypoint[i],
                    track_len=track_len, tstamp=start_clock + res.sim_time[i], status=res.status[i],
                    obstacle_crash_counter=res.obstacle_crash_counter[i],
                )))
                if res.done[i]:
                    finals[i] = {"status": str(res.status[i]), "progress": float(g.progress[i]),
                                 "reward": float(ep_reward[i]), "steps": int(res.steps[i]),
                                 "end": start_clock + res.sim_time[i] + w.dt}
            active &= ~res.done
            obs = as_obs_dict(env._observe(), self.sensors)
            timers["sim"] += time.perf_counter() - t1
        self.watch.end()
        data = buf.episode_order(n)
        return Rollout(self.index, data["obs"], data["actions"], data["rewards"], data["ends"], data["lengths"],
                       rows, finals, self.snapshot(), timers)

    def ping(self) -> int:
        """The worker's index (a cheap call that says the worker is up)."""
        return self.index


def cap_transitions(rollouts: list[Rollout], cap: int) -> dict[str, Any]:
    """The iteration's transitions, worker after worker (each episode-ordered), at most `cap` of them:
    the trainer's per-iteration step cap; an episode cut by it bootstraps with 0 like any episode end."""
    if len(rollouts) == 1:
        r = rollouts[0]
        obs, actions, rewards, ends = r.obs, r.actions, r.rewards, r.ends
    else:
        obs = {k: np.concatenate([r.obs[k] for r in rollouts]) for k in rollouts[0].obs}
        actions = np.concatenate([r.actions for r in rollouts])
        rewards = np.concatenate([r.rewards for r in rollouts])
        ends = np.concatenate([r.ends for r in rollouts])
    n = rewards.shape[0]
    if n > cap:
        obs = {k: v[:cap] for k, v in obs.items()}
        actions, rewards, ends = actions[:cap], rewards[:cap], cap_ends(ends, cap)
    return {"obs": obs, "actions": actions, "rewards": rewards, "ends": ends, "collected": n}
