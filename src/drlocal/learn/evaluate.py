"""`drlocal evaluate`: DeepRacer's evaluation worker (contract §10).

Greedy actions (argmax / mean) from the best or last checkpoint. Non-continuous: NUMBER_OF_TRIALS
separate one-lap episodes from the start line, run as parallel cars. Continuous: one episode that
keeps lapping until NUMBER_OF_TRIALS laps. Off track / reversed / immobilized re-place the car on
the nearest lane at its last progress and pause it for the penalty while resets remain
(`DR_EVAL_MAX_RESETS`); the penalty counts in the lap time. Writes
`metrics/EvaluationMetrics-<timestamp>.json` and `evaluation-<timestamp>/evaluation-simtrace/0-iteration.csv`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from drlocal.config.model_metadata import ModelMetadata, load_model_metadata
from drlocal.config.workdir import Job
from drlocal.env.actions import ActionMapper
from drlocal.env.observations import ObservationBuilder
from drlocal.learn.agent import Actor, as_obs_dict, pick_device
from drlocal.learn.networks import PPOActorCritic
from drlocal.learn.sac import SACPolicy
from drlocal.sim.episode import LAP_COMPLETE, OFF_TRACK, STATUS_LABELS, EpisodeOptions, World
from drlocal.sim.reward import load_reward_function
from drlocal.store.local import ModelStore, atomic_write_json, atomic_write_text
from drlocal.store.logs import SimtraceWriter, simtrace_row
from drlocal.store.select import store_of
from drlocal.tracks import load_track


@dataclass
class LapResult:
    """One entry of EvaluationMetrics."""

    trial: int
    status: str
    completion: float  # [%]
    elapsed_ms: int  # sim time incl. penalties
    start_ms: int
    off_track: int = 0
    reversed: int = 0
    immobilized: int = 0
    crashes: int = 0

    @property
    def resets(self) -> int:
        return self.off_track + self.reversed + self.immobilized + self.crashes

    def to_json(self) -> dict[str, Any]:
        return {
            "completion_percentage": int(self.completion),
            "metric_time": self.start_ms + self.elapsed_ms,
            "start_time": self.start_ms,
            "elapsed_time_in_milliseconds": self.elapsed_ms,
            "episode_status": STATUS_LABELS.get(self.status, self.status),
            "crash_count": self.crashes,
            "immobilized_count": self.immobilized,
            "off_track_count": self.off_track,
            "reversed_count": self.reversed,
            "reset_count": self.resets,
            "trial": self.trial,
        }


@dataclass
class EvaluationResult:
    checkpoint: str
    laps: list[LapResult]
    metrics_path: str
    simtrace_path: str
    timestamp: str
    extra: dict[str, Any] = field(default_factory=dict)
    drfc_metrics_path: str = ""  # metrics/evaluation/evaluation-<ts>.json, where DRfC puts it

    @property
    def completed(self) -> list[LapResult]:
        return [lap for lap in self.laps if lap.status == LAP_COMPLETE]


def load_policy(store: ModelStore, which: str | int, device: torch.device) -> tuple[PPOActorCritic, ModelMetadata, str]:
    """The PPO network and model metadata of a checkpoint in `store`."""
    state = store.load_checkpoint(which, map_location=device)
    md = load_model_metadata(state.get("model_metadata") or (store.model_dir / "model_metadata.json"))
    sensors = md.input_sizes()
    if state.get("algorithm") == "sac":
        policy = SACPolicy(sensors, md.neural_network)
        policy.load_state_dict(state["model"]["policy"])
        return policy.to(device).eval(), md, state["name"]  # type: ignore[return-value]
    n_actions = 2 if md.is_continuous else len(md.action_space)  # type: ignore[arg-type]
    model = PPOActorCritic(sensors, md.neural_network, n_actions, md.is_continuous)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), md, state["name"]


def evaluate(
    job: Job,
    *,
    checkpoint: str | int | None = None,
    trials: int | None = None,
    continuous: bool | None = None,
    world: str | None = None,
    device: torch.device | None = None,
    prefix: str | None = None,
) -> EvaluationResult:
    """Evaluate the job's model; options default to the DR_EVAL_* settings."""
    run = job.run
    device = device or pick_device()
    bucket = store_of(job)
    prefix = prefix or run.model_prefix
    store = ModelStore(bucket.pull(prefix, ["model/*", "reward_function.py"]))
    model, md, name = load_policy(store, checkpoint if checkpoint is not None else run.eval_checkpoint, device)
    trials = trials or run.eval_number_of_trials
    continuous = run.eval_is_continuous if continuous is None else continuous
    track = load_track(world or run.world_name)
    reward_path = store.root / "reward_function.py"
    reward = load_reward_function(reward_path if reward_path.is_file() else job.reward_path)
    n_cars = 1 if continuous else trials
    opts = EpisodeOptions(
        training=False, reverse_direction=run.eval_reverse_direction, continuous=continuous,
        number_of_trials=trials if continuous else 1, number_of_resets=run.eval_max_resets,
        off_track_penalty=run.eval_off_track_penalty, collision_penalty=run.eval_collision_penalty,
    )
    w = World(track, n_cars, reward, opts, start_ndist=0.0)
    builder = ObservationBuilder(md, track, world or run.world_name)
    sensors = sorted(md.sensor)
    actor = Actor(model, sensors, device)
    mapper = ActionMapper(md)
    stamp = time.strftime("%Y%m%d%H%M%S")
    sim_path = store.root / f"evaluation-{stamp}" / "evaluation-simtrace" / "0-iteration.csv"
    writer = SimtraceWriter(sim_path)
    laps: list[LapResult] = []
    counters = [dict.fromkeys((OFF_TRACK, "reversed", "immobilized", "crashed"), 0) for _ in range(n_cars)]
    lap_start = np.zeros(n_cars)
    active = np.ones(n_cars, dtype=bool)
    completed_laps = np.zeros(n_cars, dtype=np.int64)
    steps = 0
    while active.any() and steps < 100_000:
        obs = as_obs_dict(builder.observe(w.car.x, w.car.y, w.car.yaw), sensors)
        acts = actor.act(obs, deterministic=True)
        speed, steer = mapper.commands(acts)
        labels = mapper.labels(acts, speed, steer)
        res = w.step(speed, steer, active=active)
        g = res.geometry
        for i in np.flatnonzero(active):
            status = str(res.status[i])
            writer.write(simtrace_row(
                episode=int(completed_laps[i]) if continuous else i, steps=res.steps[i], x=g.x[i], y=g.y[i],
                yaw=g.heading[i], steer=steer[i], throttle=speed[i], action=labels[i], reward=res.reward[i],
                done=res.done[i], on_track=g.all_wheels_on_track[i], progress=g.progress[i],
                closest_waypoint=g.closest_waypoint[i], track_len=track.length, tstamp=res.sim_time[i],
                status=status, pause_duration=float(res.pause_duration[i]) if res.pause_duration is not None else 0.0,
            ))
            if res.reset is not None and res.reset[i]:
                key = status if status in counters[i] else "crashed"
                counters[i][key] += 1
            if status == LAP_COMPLETE or res.done[i]:
                end = res.sim_time[i] + w.dt
                c = counters[i]
                laps.append(LapResult(
                    trial=len(laps) + 1, status=status, completion=float(g.progress[i]),
                    elapsed_ms=round(float(end - lap_start[i]) * 1000), start_ms=round(float(lap_start[i]) * 1000),
                    off_track=c[OFF_TRACK], reversed=c["reversed"], immobilized=c["immobilized"], crashes=c["crashed"],
                ))
                counters[i] = dict.fromkeys(c, 0)
                lap_start[i] = end
                completed_laps[i] += status == LAP_COMPLETE
        active &= ~res.done
        steps += 1
    writer.close()
    # DRfC's path (DR_LOCAL_S3_METRICS_PREFIX/evaluation/evaluation-<ts>.json) and drlocal's earlier name
    metrics_dir = bucket.local_root / (getattr(run, "metrics_prefix", None) or f"{prefix}/metrics") \
        if prefix == run.model_prefix else store.metrics_dir
    body = {"metrics": [lap.to_json() for lap in laps]}
    drfc_path = metrics_dir / "evaluation" / f"evaluation-{stamp}.json"
    metrics_path = metrics_dir / f"EvaluationMetrics-{stamp}.json"
    atomic_write_json(drfc_path, body)
    atomic_write_json(metrics_path, body)
    params_path = store.root / (getattr(run, "eval_params_file", None) or "evaluation_params.yaml")
    atomic_write_text(params_path, eval_params_yaml(job, prefix, stamp, drfc_path.relative_to(bucket.local_root),
                                                    trials, continuous, checkpoint, world))
    bucket.publish([sim_path, drfc_path, metrics_path, params_path])
    bucket.finish()
    return EvaluationResult(name, laps, str(metrics_path), str(sim_path), stamp, drfc_metrics_path=str(drfc_path))


def eval_params_yaml(job: Job, prefix: str, stamp: str, metrics_key: Any, trials: int, continuous: bool,
                     checkpoint: Any, world: str | None) -> str:
    """The evaluation's settings as DRfC's scripts/evaluation/prepare-config.py writes them (time trial)."""
    from drlocal.export.droa import training_params_yaml

    run = job.run
    g = lambda name, default: str(getattr(run, name, None) or default)  # noqa: E731
    params: dict[str, Any] = {
        "AWS_REGION": g("aws_region", "us-east-1"), "JOB_TYPE": "EVALUATION",
        "MODEL_S3_PREFIX": [prefix], "MODEL_S3_BUCKET": [run.bucket],
        "SIMTRACE_S3_PREFIX": [f"{prefix}/evaluation-{stamp}"], "SIMTRACE_S3_BUCKET": [run.bucket],
        "METRICS_S3_BUCKET": [run.bucket], "METRICS_S3_OBJECT_KEY": [str(metrics_key)],
        "EVAL_CHECKPOINT": str(checkpoint if checkpoint is not None else run.eval_checkpoint),
        "BODY_SHELL_TYPE": [g("body_shell_type", "deepracer")], "CAR_COLOR": [g("car_color", "Red")],
        "DISPLAY_NAME": [g("display_name", run.car_name)], "RACER_NAME": [g("racer_name", run.car_name)],
        "RACE_TYPE": run.race_type, "WORLD_NAME": world or run.world_name, "NUMBER_OF_TRIALS": str(trials),
        "IS_CONTINUOUS": str(continuous), "NUMBER_OF_RESETS": str(run.eval_max_resets),
        "OFF_TRACK_PENALTY": str(run.eval_off_track_penalty), "COLLISION_PENALTY": str(run.eval_collision_penalty),
        "REVERSE_DIR": str(run.eval_reverse_direction),
    }
    return training_params_yaml(params)
