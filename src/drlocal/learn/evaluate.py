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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from drlocal.config.model_metadata import ModelMetadata, load_model_metadata
from drlocal.config.workdir import Job
from drlocal.env.actions import ActionMapper
from drlocal.env.observations import ObservationBuilder
from drlocal.env.vector_env import object_boxes_of
from drlocal.errors import DrlocalError
from drlocal.learn.agent import Actor, as_obs_dict, pick_device
from drlocal.learn.networks import PPOActorCritic
from drlocal.learn.sac import SACPolicy
from drlocal.learn.watch import NoWatch, Watch, Watches
from drlocal.sim.episode import LAP_COMPLETE, OFF_TRACK, STATUS_LABELS, EpisodeOptions, World
from drlocal.sim.race import HEAD_TO_MODEL
from drlocal.sim.reward import load_reward_function
from drlocal.store.local import ModelStore, atomic_write_json, atomic_write_text
from drlocal.store.logs import SimtraceWriter, simtrace_row
from drlocal.store.select import store_of
from drlocal.tracks import load_track
from drlocal.view.frames import Composer, racer_colors
from drlocal.view.record import EvalRecorder, require_video, write_videos
from drlocal.view.scene import OverlayData


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


@dataclass
class _Racer:
    """One evaluated model: its policy, sensors and where its files go."""

    name: str
    prefix: str
    store: ModelStore
    checkpoint: str
    actor: Actor
    mapper: ActionMapper
    builder: ObservationBuilder
    sensors: list[str]
    writer: SimtraceWriter
    stereo: bool
    laps: list[LapResult] = field(default_factory=list)


def _drive(w: World, racers: list[_Racer], done_condition: str, continuous: bool, track_length: float,
           watch: Watch) -> None:
    """Run the evaluation episode(s) of `w` with greedy actions, writing simtrace rows and laps per racer."""
    h2m = len(racers) > 1
    watch.begin(w, phase="Evaluating", evaluation=True)
    n_cars = w.n

    def who(i: int) -> _Racer:
        return racers[i] if h2m else racers[0]

    counters = [dict.fromkeys((OFF_TRACK, "reversed", "immobilized", "crashed"), 0) for _ in range(n_cars)]
    lap_start = np.zeros(n_cars)
    active = np.ones(n_cars, dtype=bool)
    completed_laps = np.zeros(n_cars, dtype=np.int64)
    steps = 0
    while active.any() and steps < 100_000:
        boxes = object_boxes_of(w)
        speed = np.zeros(n_cars)
        steer = np.zeros(n_cars)
        labels: list[Any] = [None] * n_cars
        groups = [[i] for i in range(n_cars)] if h2m else [list(range(n_cars))]
        for idx in groups:
            r = who(idx[0])
            sl = np.asarray(idx)
            obs = as_obs_dict(r.builder.observe(w.car.x[sl], w.car.y[sl], w.car.yaw[sl],
                                                boxes=None if boxes is None else boxes[sl]), r.sensors)
            acts = r.actor.act(obs, deterministic=True)
            sp, st = r.mapper.commands(acts)
            speed[sl], steer[sl] = sp, st
            for j, lab in zip(idx, r.mapper.labels(acts, sp, st), strict=True):
                labels[j] = lab
        res = w.step(speed, steer, active=active)
        watch.step(w, res, speed, steer, active)
        g = res.geometry
        for i in np.flatnonzero(active):
            r = who(int(i))
            status = str(res.status[i])
            r.writer.write(simtrace_row(
                episode=int(completed_laps[i]) if continuous else i, steps=res.steps[i], x=g.x[i], y=g.y[i],
                yaw=g.heading[i], steer=steer[i], throttle=speed[i], action=labels[i], reward=res.reward[i],
                done=res.done[i], on_track=g.all_wheels_on_track[i], progress=g.progress[i],
                closest_waypoint=g.closest_waypoint[i], track_len=track_length, tstamp=res.sim_time[i],
                status=status, pause_duration=float(res.pause_duration[i]) if res.pause_duration is not None else 0.0,
                obstacle_crash_counter=int(res.obstacle_crash_counter[i]),
            ))
            if res.reset is not None and res.reset[i]:
                key = status if status in counters[i] else "crashed"
                counters[i][key] += 1
            if status == LAP_COMPLETE or res.done[i]:
                end = res.sim_time[i] + w.dt
                c = counters[i]
                r.laps.append(LapResult(
                    trial=len(r.laps) + 1, status=status, completion=float(g.progress[i]),
                    elapsed_ms=round(float(end - lap_start[i]) * 1000), start_ms=round(float(lap_start[i]) * 1000),
                    off_track=c[OFF_TRACK], reversed=c["reversed"], immobilized=c["immobilized"], crashes=c["crashed"],
                ))
                counters[i] = dict.fromkeys(c, 0)
                lap_start[i] = end
                completed_laps[i] += status == LAP_COMPLETE
        active &= ~res.done
        if h2m and res.done.any():
            if done_condition == "any":
                for i in np.flatnonzero(active):  # the race is over: the others' unfinished laps are reported too
                    c, r = counters[i], who(int(i))
                    end = res.sim_time[i] + w.dt
                    r.laps.append(LapResult(
                        trial=len(r.laps) + 1, status=str(res.status[i]), completion=float(g.progress[i]),
                        elapsed_ms=round(float(end - lap_start[i]) * 1000), start_ms=round(float(lap_start[i]) * 1000),
                        off_track=c[OFF_TRACK], reversed=c["reversed"], immobilized=c["immobilized"],
                        crashes=c["crashed"],
                    ))
                active[:] = False
            else:
                w.parked |= res.done  # finished cars leave the track (simapp PARK phase)
        steps += 1
    watch.end()


def _recorder(job: Job, racers: list[_Racer], race_type: str, trials: int, *, sequential: bool) -> EvalRecorder:
    """The MP4 recorder: each racer's display name and colour (the opponent in a contrasting colour)."""
    run = job.run
    mine, theirs = racer_colors(run.car_color)
    opp = getattr(run, "opponent", None)
    names = [run.display_name, opp.display_name if opp is not None else "Opponent"]
    bases = [OverlayData(phase="Evaluating", name=names[k], race_type=race_type, laps=trials,
                         extra=run.enable_extra_kvs_overlay) for k in range(len(racers))]
    colors = [mine, theirs][: len(racers)]
    return EvalRecorder(bases, colors, sequential=sequential)


def _load_racers(job: Job, bucket: Any, plan: list[tuple[str, Any]], prefix: str, track: Any, world: str | None,
                 stamp: str, device: torch.device) -> tuple[list[_Racer], Any]:
    """The evaluated model (and the opponent) with their policies; the reward function of the first."""
    run = job.run
    racers: list[_Racer] = []
    reward = None
    for pfx, which in plan:
        store = ModelStore(bucket.pull(pfx, ["model/*", "reward_function.py"]))
        try:
            model, md, name = load_policy(store, which, device)
        except DrlocalError as err:
            if pfx == prefix:
                raise
            raise DrlocalError(f"opponent model {pfx!r}: {Exception.__str__(err)}", hint=err.hint) from None
        reward_path = store.root / "reward_function.py"
        if reward is None:
            reward = load_reward_function(reward_path if reward_path.is_file() else job.reward_path)
        sim_path = store.root / f"evaluation-{stamp}" / "evaluation-simtrace" / "0-iteration.csv"
        racers.append(_Racer(
            name=name, prefix=pfx, store=store, checkpoint=name, actor=Actor(model, sorted(md.sensor), device),
            mapper=ActionMapper(md), builder=ObservationBuilder(md, track, world or run.world_name),
            sensors=sorted(md.sensor), writer=SimtraceWriter(sim_path), stereo=md.camera == "STEREO_CAMERAS",
        ))
    return racers, reward


def _save(job: Job, bucket: Any, racers: list[_Racer], stamp: str, trials: int, continuous: bool, checkpoint: Any,
          world: str | None, opponent: str | None) -> list[tuple[_Racer, Path, Path]]:
    """Each racer's metrics (DRfC's and drlocal's names), simtrace and evaluation params, published."""
    run = job.run
    outputs = []
    for r in racers:
        r.writer.close()
        # DRfC's path (DR_LOCAL_S3_METRICS_PREFIX/evaluation/evaluation-<ts>.json) and drlocal's earlier name
        metrics_dir = bucket.local_root / (getattr(run, "metrics_prefix", None) or f"{r.prefix}/metrics") \
            if r.prefix == run.model_prefix else r.store.metrics_dir
        body = {"metrics": [lap.to_json() for lap in r.laps]}
        drfc_path = metrics_dir / "evaluation" / f"evaluation-{stamp}.json"
        metrics_path = metrics_dir / f"EvaluationMetrics-{stamp}.json"
        atomic_write_json(drfc_path, body)
        atomic_write_json(metrics_path, body)
        params_path = r.store.root / (getattr(run, "eval_params_file", None) or "evaluation_params.yaml")
        atomic_write_text(params_path, eval_params_yaml(job, r.prefix, stamp, drfc_path.relative_to(bucket.local_root),
                                                        trials, continuous, checkpoint, world, opponent))
        bucket.publish([r.writer.path, drfc_path, metrics_path, params_path])
        outputs.append((r, metrics_path, drfc_path))
    bucket.finish()
    return outputs


def evaluate(
    job: Job,
    *,
    checkpoint: str | int | None = None,
    trials: int | None = None,
    continuous: bool | None = None,
    world: str | None = None,
    device: torch.device | None = None,
    prefix: str | None = None,
    opponent: str | None = None,
    opponent_checkpoint: str | int | None = None,
    done_condition: str | None = None,
    mp4: bool | None = None,
    watch: Watch | None = None,
) -> EvaluationResult:
    """Evaluate the job's model; options default to the DR_EVAL_* settings.

    With DR_RACE_TYPE=HEAD_TO_MODEL (or `opponent=PREFIX`) the model races the opponent model in the same
    episode (racecar_0 on the outer lane at the line, the opponent on the inner lane 0.75 m behind); each
    sees the other as an object; the race ends when any car is done (`done_condition` "any", default) or
    when all are ("all": finished cars are parked off the track). Both models get their lap table, metrics
    and simtrace in their own prefix; the opponent's laps are in `EvaluationResult.extra["opponent"]`.
    With `mp4` (default DR_EVAL_SAVE_MP4) each model also gets the simapp's three MP4s under `<prefix>/mp4/`
    (`extra["mp4"]`); `watch` sees every step (the live viewer).
    """
    run = job.run
    device = device or pick_device()
    bucket = store_of(job)
    prefix = prefix or run.model_prefix
    race = run.race_options(training=False, seed=0)  # the simapp seeds evaluation with 0
    opp = getattr(run, "opponent", None)
    if opponent is None and race.race_type == HEAD_TO_MODEL:
        opponent = opp.prefix if opp is not None else None
        if not opponent:
            raise DrlocalError("DR_RACE_TYPE=HEAD_TO_MODEL needs the opponent's model prefix.",
                               hint="set DR_EVAL_OPP_S3_MODEL_PREFIX in run.env or pass --opponent PREFIX.")
    if opponent is not None:
        race = replace(race, race_type=HEAD_TO_MODEL, done_condition=done_condition or race.done_condition)
    elif race.race_type == HEAD_TO_MODEL:
        race = replace(race, race_type="TIME_TRIAL")
    trials = trials or run.eval_number_of_trials
    continuous = run.eval_is_continuous if continuous is None else continuous
    track = load_track(world or run.world_name)
    stamp = time.strftime("%Y%m%d%H%M%S")
    wanted = checkpoint if checkpoint is not None else run.eval_checkpoint
    plan = [(prefix, wanted)] + ([(opponent, opponent_checkpoint or wanted)] if opponent is not None else [])
    racers, reward = _load_racers(job, bucket, plan, prefix, track, world, stamp, device)
    h2m = len(racers) > 1
    if h2m:
        continuous = True  # one race of `trials` laps for both cars
    n_cars = len(racers) if h2m else (1 if continuous else trials)
    opts = EpisodeOptions(
        training=False, reverse_direction=run.eval_reverse_direction, continuous=continuous,
        number_of_trials=trials if continuous else 1, number_of_resets=run.eval_max_resets,
        off_track_penalty=run.eval_off_track_penalty, collision_penalty=run.eval_collision_penalty,
    )
    w = World(track, n_cars, reward, opts, start_ndist=0.0, race=race, stereo=racers[0].stereo)
    mp4 = run.eval_save_mp4 if mp4 is None else mp4
    if mp4:
        require_video()
    recorder = _recorder(job, racers, race.race_type, trials, sequential=not (h2m or continuous)) if mp4 else None
    _drive(w, racers, race.done_condition, continuous, track.length, Watches(watch or NoWatch(), recorder))
    outputs = _save(job, bucket, racers, stamp, trials, continuous, checkpoint, world, opponent)
    videos: list[Path] = []
    if recorder is not None:  # after the metrics are safe: a video that fails to write loses nothing else
        composer = Composer(track, world=world or run.world_name, reverse=run.eval_reverse_direction)
        for k, r in enumerate(racers):
            shots = recorder.film([k] if h2m else list(range(n_cars)))
            videos += write_videos(composer, shots, r.store.root / "mp4", w.dt)
        bucket.publish(videos)
        bucket.finish()
    me, metrics_path, drfc_path = outputs[0]
    extra: dict[str, Any] = {"race_type": race.race_type, "mp4": [str(p) for p in videos]}
    if h2m:
        o, o_metrics, o_drfc = outputs[1]
        extra["opponent"] = EvaluationResult(o.checkpoint, o.laps, str(o_metrics), str(o.writer.path), stamp,
                                             drfc_metrics_path=str(o_drfc))
        extra["opponent_prefix"] = o.prefix
    return EvaluationResult(me.checkpoint, me.laps, str(metrics_path), str(me.writer.path), stamp, extra=extra,
                            drfc_metrics_path=str(drfc_path))


def eval_params_yaml(job: Job, prefix: str, stamp: str, metrics_key: Any, trials: int, continuous: bool,
                     checkpoint: Any, world: str | None, opponent: str | None = None) -> str:
    """The evaluation's settings as DRfC's scripts/evaluation/prepare-config.py writes them (race-type keys and
    the opponent of a head-to-model race included)."""
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
    from drlocal.export.droa import head_to_model_params, race_type_params

    params.update(race_type_params(run, evaluation=True))
    if opponent is not None and run.race_type == "HEAD_TO_MODEL":
        params = head_to_model_params(params, run, int(time.time()))
    elif opponent is not None:  # --opponent without DR_RACE_TYPE=HEAD_TO_MODEL in run.env
        params["RACE_TYPE"] = "HEAD_TO_MODEL"
        params["MODEL_S3_PREFIX"] = [prefix, opponent]
    return training_params_yaml(params)
