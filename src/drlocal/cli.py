"""The `drlocal` command line (typer + rich). Errors caused by user input print one message, no traceback."""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from drlocal import cli_analyze as _analyze
from drlocal import cli_race as _race_cli
from drlocal import cli_view as _view
from drlocal.cli_options import CfgOpt, DirOpt, ExpOpt
from drlocal.cli_view import HostOpt, PortOpt, ViewOpt
from drlocal.errors import DrlocalError

app = typer.Typer(
    help="drlocal: AWS DeepRacer training on one laptop.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
tracks_app = typer.Typer(help="List the bundled tracks or draw one.", invoke_without_command=True)
reward_app = typer.Typer(help="Check a reward function before training.", no_args_is_help=True)
app.add_typer(tracks_app, name="tracks")
app.add_typer(reward_app, name="reward")

console = Console()
err_console = Console(stderr=True)

TrackOpt = Annotated[str, typer.Option("--track", "-t", help="World name (e.g. reinvent_base) or .npy route file.")]
CAMERAS = ("front", "left", "stereo")
CAMERA_SENSORS = ("FRONT_FACING_CAMERA", "LEFT_CAMERA", "STEREO_CAMERAS")
MAX_SEED = 2**32 - 1


def _require(ok: bool, flag: str, value: object, hint: str) -> None:
    """Reject a command-line value with the one-line error (a NaN fails every comparison, so it is rejected too)."""
    if not ok:
        raise DrlocalError(f"{flag} {value} is out of range.", hint=hint)


def _check_out(path: Path, *, folder: bool = False, flag: str = "--out") -> None:
    """Say in one line, before any work, why an output file (or folder) cannot be written; creates nothing."""
    hint = f"choose another {flag}, in a folder you can write."
    if path.is_dir() != folder and path.exists():
        raise DrlocalError(f"{flag} {path} is {'a file' if folder else 'a folder'}.",
                           hint=hint if folder else f"give a file name, e.g. {path / 'out.png'}.")
    existing = (path if folder else path.parent).absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise DrlocalError(f"{flag} {path}: {existing} is a file, not a folder.", hint=hint)
    if not os.access(existing, os.W_OK):
        raise DrlocalError(f"{flag} {path}: the folder {existing} is not writable.", hint=hint)


def _prepare_out(path: Path, *, flag: str = "--out") -> None:
    """`_check_out` for an output file, then create its folder."""
    _check_out(path, flag=flag)
    path.parent.mkdir(parents=True, exist_ok=True)


@tracks_app.callback()
def tracks_list(
    ctx: typer.Context,
    name_filter: Annotated[str, typer.Option("--filter", "-f", help="Only names containing this text.")] = "",
) -> None:
    """List every bundled track with its length, mean width and direction."""
    if ctx.invoked_subcommand is not None:
        return
    from drlocal.tracks import load_track, track_names

    table = Table(title="DeepRacer tracks (bundled route files, Apache-2.0)")
    table.add_column("world name")
    table.add_column("length (m)", justify="right")
    table.add_column("width (m)", justify="right")
    table.add_column("waypoints", justify="right")
    table.add_column("direction")
    shown = 0
    for name in track_names():
        if name_filter.lower() not in name.lower():
            continue
        t = load_track(name)
        direction = ("ccw" if t.forward.is_ccw else "cw") if t.is_loop else "open"
        table.add_row(name, f"{t.length:.2f}", f"{t.width:.3f}", str(len(t.waypoints)), direction)
        shown += 1
    console.print(table)
    console.print(f"{shown} tracks. Draw one with: drlocal tracks show NAME")


@tracks_app.command("show")
def tracks_show(
    name: Annotated[str, typer.Argument(help="World name or .npy route file.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="PNG to write (default NAME.png).")] = None,
    reverse: Annotated[bool, typer.Option(help="Draw the reversed driving direction.")] = False,
) -> None:
    """Write a PNG map of a track: road, borders, start line, direction and waypoint indices."""
    from drlocal.tracks import load_track
    from drlocal.tracks.plot import save_track_png

    t = load_track(name)
    out = out or Path(f"{t.name}.png")
    _prepare_out(out)
    save_track_png(t, str(out), reverse=reverse)
    console.print(f"{t!r}\nwrote {out}")


RaceOpt = Annotated[str, typer.Option("--race-type", help="TIME_TRIAL, OBJECT_AVOIDANCE or HEAD_TO_BOT: place "
                                     "that race's obstacles / bot cars as its first training episode does.")]
ObjectsOpt = Annotated[int | None, typer.Option("--objects", help="Number of obstacles (OBJECT_AVOIDANCE, default 6) "
                                                "or bot cars (HEAD_TO_BOT, default 3), DRfC's defaults.")]


def _race(race_type: str, objects: int | None):
    """RaceOptions for a CLI --race-type / --objects pair, with DRfC's template defaults."""
    from drlocal.sim.race import HEAD_TO_MODEL, RACE_TYPES, RaceOptions

    rt = race_type.strip().upper()
    if rt not in RACE_TYPES or rt == HEAD_TO_MODEL:
        raise DrlocalError(f"unknown --race-type {race_type!r}.",
                           hint="use TIME_TRIAL, OBJECT_AVOIDANCE or HEAD_TO_BOT (HEAD_TO_MODEL is `drlocal evaluate "
                           "--opponent PREFIX`).")
    _require(objects is None or 0 <= objects <= 50, "--objects", objects, "use 0 to 50 objects.")
    if objects is None:
        return RaceOptions(race_type=rt, seed=0)
    return RaceOptions(race_type=rt, number_of_obstacles=objects, number_of_bot_cars=objects, seed=0)


@reward_app.command("test")
def reward_test(
    file: Annotated[Path, typer.Argument(help="reward_function.py to check.")],
    track: TrackOpt = "reinvent_base",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Heat-map PNG (default reward_heatmap.png).")] = None,
    spacing: Annotated[float, typer.Option(help="Distance between sampled poses along the track [m].")] = 0.1,
    race_type: RaceOpt = "TIME_TRIAL",
    objects: ObjectsOpt = None,
) -> None:
    """Call the reward function over the whole track (centre, edges, off track, reversed) and map it."""
    from drlocal.analysis.reward_check import save_heatmap, sweep
    from drlocal.sim.reward import load_reward_function
    from drlocal.tracks import load_track

    _require(0.0 < spacing < math.inf, "--spacing", spacing, "use a distance in metres above 0, e.g. --spacing 0.1.")
    race = _race(race_type, objects)
    out = out or Path("reward_heatmap.png")
    _prepare_out(out)
    fn = load_reward_function(file)
    fn.on_warning = lambda m: console.print(f"[yellow]warning:[/] {m}", highlight=False)  # as soon as it shows
    t = load_track(track)
    t0 = time.perf_counter()
    result = sweep(fn, t, spacing=spacing, race=race)
    elapsed = time.perf_counter() - t0
    table = Table(title=f"{file} on {t.name}: reward by pose")
    for col in ("poses", "calls", "min", "mean", "max"):
        table.add_column(col, justify="right" if col != "poses" else "left")
    for cat in result.stats:
        r = np.asarray(cat.rewards)
        table.add_row(cat.name, str(cat.n), f"{r.min():.4g}", f"{r.mean():.4g}", f"{r.max():.4g}")
    console.print(table)
    save_heatmap(result, t, str(out), f"{file.name} on {t.name}")
    per_call = elapsed / max(result.calls, 1) * 1e6
    console.print(f"{result.calls} calls, no errors, {per_call:.0f} µs per call. Heat map: {out}")
    fn.check_slow()  # the reward's own time, without drlocal's geometry; printed once
    stats = {c.name: np.asarray(c.rewards) for c in result.stats}
    if stats["off track left"].mean() >= stats["centre"].mean():
        console.print("[yellow]note:[/] off-track poses earn as much as the centre line on average.")
    if stats["reversed heading"].mean() >= stats["centre"].mean():
        console.print("[yellow]note:[/] driving the wrong way earns as much as driving the right way.")


@app.command()
def render(
    track: TrackOpt = "reinvent_base",
    at: Annotated[float, typer.Option(help="Position on the lap, fraction 0-1 from the start line.")] = 0.0,
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write.")] = Path("view.png"),
    camera: Annotated[str, typer.Option(help="front, left or stereo (or FRONT_FACING_CAMERA, LEFT_CAMERA, "
                                        "STEREO_CAMERAS).")] = "front",
    reverse: Annotated[bool, typer.Option(help="Drive the track in the reversed direction.")] = False,
    race_type: RaceOpt = "TIME_TRIAL",
    objects: ObjectsOpt = None,
) -> None:
    """Write what the car's camera sees at a point of the lap, next to a map with the car drawn."""
    from drlocal.sensors.camera import save_view_png
    from drlocal.tracks import load_track

    if not 0.0 <= at <= 1.0:
        raise DrlocalError(f"--at {at} is outside the lap.", hint="use a fraction between 0 and 1, e.g. --at 0.3.")
    if camera not in CAMERAS + CAMERA_SENSORS:
        raise DrlocalError(f"unknown --camera {camera!r}.",
                           hint=f"use {', '.join(CAMERAS[:-1])} or {CAMERAS[-1]} (or a DeepRacer sensor name: "
                           f"{', '.join(CAMERA_SENSORS)}).")
    race = _race(race_type, objects)
    t = load_track(track)
    _prepare_out(out)
    placed = None
    if race.race_type != "TIME_TRIAL":
        from drlocal.sim.objects import TrackObjects

        objs = TrackObjects(t, 1, race)
        objs.place(np.ones(1, dtype=bool), np.array([reverse]), np.zeros(1, dtype=np.int64))
        placed = (objs.xy[0], objs.yaw[0], objs.kinds)
    save_view_png(t, at, str(out), camera=camera, reverse=reverse, objects=placed)
    console.print(f"wrote {out} ({camera} camera at {at:.0%} of {t.name})", highlight=False)


@app.command()
def demo(
    track: TrackOpt = "reinvent_base",
    cars: Annotated[int, typer.Option(help="Number of cars driven at once.")] = 4,
    speed: Annotated[float, typer.Option(help="Commanded speed [m/s].")] = 1.5,
    reward_function: Annotated[
        Path | None, typer.Option("--reward-function", "-r", help="reward_function.py (default: centre line).")
    ] = None,
) -> None:
    """Drive scripted pure-pursuit cars for one episode each (a simulator check; not training)."""
    from drlocal.sim.episode import EpisodeOptions, World
    from drlocal.sim.pursuit import drive_laps
    from drlocal.sim.reward import load_reward_function
    from drlocal.tracks import load_track

    _require(cars >= 1, "--cars", cars, "use 1 or more cars.")
    _require(0.0 < speed < math.inf, "--speed", speed, "use a speed in m/s above 0, e.g. --speed 1.5.")
    t = load_track(track)
    fn = load_reward_function(reward_function)
    starts = np.arange(cars) / max(cars, 1)
    world = World(t, cars, fn, EpisodeOptions(training=False), start_ndist=starts)
    t0 = time.perf_counter()
    results = drive_laps(world, speed)
    elapsed = time.perf_counter() - t0
    table = Table(title=f"pure pursuit at {speed} m/s on {t.name} ({t.length:.2f} m)")
    for col in ("car", "start", "status", "progress %", "lap time s", "reward"):
        table.add_column(col, justify="right")
    for i, r in enumerate(results):
        lap = f"{r['lap_time']:.2f}" if r["lap_time"] is not None else "-"
        table.add_row(str(i), f"{starts[i]:.2f}", r["status"], f"{r['progress']:.1f}", lap, f"{r['reward']:.1f}")
    console.print(table)
    steps = sum(r["steps"] + 1 for r in results)
    console.print(
        f"{steps} car-steps of simulated time in {elapsed:.2f} s wall clock "
        f"({steps / elapsed:.0f} steps/s; Gazebo runs 15 steps/s per worker)."
    )
    console.print("This drives a scripted car through the DeepRacer world that training uses; train a model "
                  "with `drlocal init DIR` and `drlocal train --dir DIR`.")




def _load_job(directory: Path, experiment: str | None = None, config: Path | None = None, strict: bool = True):
    """Read the folder, print its warnings, open its store (saying which one when it is not the plain disk).

    `strict=False` for commands that only move files: a custom file missing from the bucket is then
    taken from the local custom_files/ with a warning instead of stopping."""
    from drlocal.config.workdir import load_job

    job = load_job(directory, experiment=experiment, config=config, strict_custom_files=strict)
    for w in job.warnings:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False)
    store = getattr(job, "store", None)
    if store is not None:
        for n in store.notes:
            err_console.print(f"[yellow]note:[/] {n}", highlight=False)
        if store.remote is not None:
            err_console.print(f"store: {store.describe()}", highlight=False)
    return job


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create (DRfC layout).")] = Path("."),
    force: Annotated[bool, typer.Option(help="Overwrite existing files.")] = False,
    template: Annotated[str | None, typer.Option(help="Start from a racer's template instead of DRfC's defaults: "
                                                 "race (discrete actions) or race-continuous; explained in "
                                                 "RACE-TEMPLATE.md.")] = None,
) -> None:
    """Write run.env, system.env and custom_files/ with DRfC's defaults (or a race template)."""
    from drlocal.config.workdir import init_workdir

    files = init_workdir(directory, force=force, template=template)
    for f in files:
        console.print(f"wrote {f}")
    console.print(f"Edit custom_files/reward_function.py, then: drlocal train --dir {directory}")


@contextlib.contextmanager
def _progress(live: bool):
    """The live progress bar of the running iteration on a terminal (None otherwise)."""
    if not live:
        yield None
        return
    from drlocal.view.progress import IterationProgress

    with IterationProgress(console) as bar:
        yield bar


def _fmt_time(s: float) -> str:
    s = int(max(s, 0))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


@app.command()
def train(
    directory: DirOpt = Path("."),
    minutes: Annotated[float | None, typer.Option(help="Stop after this many minutes (at an iteration end).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the stopped run of this model prefix.")] = False,
    iterations: Annotated[int | None, typer.Option(help="Stop when this many iterations are done in all (with "
                                                   "--resume, counting those already done; 0 trains none).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    plain: Annotated[bool, typer.Option(help="Plain progress lines even on a terminal.")] = False,
    wipe: Annotated[bool, typer.Option("--wipe", "-w", help="Delete an existing model prefix first (DRfC's "
                                       "dr-start-training -w).")] = False,
    check: Annotated[bool, typer.Option("--check", help="Parse and validate everything (config, reward function, "
                                        "track, store, prefix); train nothing, write nothing.")] = False,
    view: ViewOpt = False,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = None,
    analysis: Annotated[bool, typer.Option("--report/--no-report", help="Refresh the HTML report "
                                           "(<model folder>/report/index.html) after every iteration.")] = True,
    tensorboard: Annotated[Path | None, typer.Option("--tensorboard", help="Also write TensorBoard scalars "
                                                     "(reward, progress, lap time, entropy, losses, KL, steps/s) "
                                                     "into this folder.")] = None,
    experiment: ExpOpt = None,
    config: CfgOpt = None,
    workers: Annotated[int | None, typer.Option(help="Rollout workers that share each iteration's episodes "
                                                "(DR_WORKERS); more than one runs them as Ray actors.")] = None,
    learners: Annotated[int, typer.Option(help="Data-parallel PPO learners (Ray actors averaging gradients with "
                                          "torch.distributed); 1 learns in this process.")] = 1,
    address: Annotated[str | None, typer.Option(help="Join this Ray cluster (ray://HOST:10001 or HOST:6379; "
                                                "default RAY_ADDRESS) instead of starting Ray here.")] = None,
) -> None:
    """Train the folder's model (reward function, model_metadata.json, hyperparameters.json)."""
    from drlocal.learn.trainer import IterationReport, Trainer
    from drlocal.learn.watch import Watches

    if iterations is not None and iterations < 0:
        raise DrlocalError(f"--iterations {iterations} is negative.", hint="use 0 or more.")
    if minutes is not None and not minutes >= 0:  # also NaN
        raise DrlocalError(f"--minutes {minutes} is {'negative' if minutes < 0 else 'not a number'}.",
                           hint="use 0 or more.")
    _require(0 <= seed <= MAX_SEED, "--seed", seed, f"use a whole number from 0 to {MAX_SEED}.")
    job = _load_job(directory, experiment, config)
    if check:
        _check_training(job, resume=resume, wipe=wipe, workers=workers)
        return

    reporter = None
    board = _analyze.TensorBoardLog(tensorboard) if tensorboard is not None else None

    def say(m: str) -> None:
        console.print(m, highlight=False)

    def report(r: IterationReport) -> None:
        best = f"{r.best_metric:.1f}" if r.best_metric is not None else "-"
        shares = " ".join(f"{k} {v:.0%}" for k, v in r.time_shares.items())
        line = (
            f"iter {r.iteration}/{r.iterations_total}  episodes {r.episodes}  reward {r.mean_reward:.1f}  "
            f"progress {r.mean_progress:.1f}%  laps {r.laps}  eval {r.eval_progress:.1f}%  best {best}  "
            f"{r.steps_per_s:.1f} steps/s  elapsed {_fmt_time(r.elapsed_s)}  eta {_fmt_time(r.eta_s)}  "
            f"[{shares}]  mem {r.peak_memory_mb:.0f} MB"
        )
        lap = f"lap {r.lap_time_s:.2f} s" if r.lap_time_s is not None else ""
        racer = "  ".join(x for x in (lap, r.racer.line()) if x)
        if racer:
            line += "  " + racer
        if plain or not console.is_terminal:
            print(line, flush=True)
        else:
            console.print(line, highlight=False)
        if reporter is not None:
            reporter.iteration()
        if board is not None:
            board.write(r)

    live = not plain and console.is_terminal
    with _view.viewer(job, console, enabled=view, host=host, port=port) as hub, _progress(live) as bar:
        trainer = Trainer(job, minutes=minutes, resume=resume, seed=seed, on_iteration=report,
                          on_message=lambda m: console.print(m, highlight=False), max_iterations=iterations,
                          wipe=wipe, watch=Watches(bar, hub), workers=workers, learners=learners, address=address)
        _view.attach_replays(hub, job, trainer.store.root)
        reporter = _analyze.Reporter(trainer.store.root, trainer.track, say) if analysis else None
        tracks = ", ".join(dict.fromkeys(trainer.plan.tracks))
        console.print(
            f"training {job.run.model_prefix} on {tracks}: {trainer.episodes_per_iter} episodes/iteration, "
            f"up to {trainer.iterations_total} iterations, device {trainer.device}", highlight=False,
        )
        with _ctrl_c_stops(trainer):
            state = trainer.train()
    if reporter is not None:
        reporter.final()
    if board is not None:
        board.close()
    best = state.best["name"] if state.best else "-"
    where = trainer.bucket.url(trainer.prefix) if trainer.bucket.remote is not None else trainer.store.root
    console.print(f"model: {where}  (last checkpoint {state.checkpoint}, best {best})", highlight=False)


def _race_summary(race) -> str:
    """One line on the race type's objects, for `train --check`."""
    if race.n_obstacles:
        where = ("at " + ", ".join(f"{nd:g}/{'outer' if lane == -1 else 'inner'}" for nd, lane in race.object_positions)
                 if race.object_positions else "randomised every episode" if race.randomize_obstacle_locations
                 else "spread over the lap")
        return f"{race.race_type}: {race.n_obstacles} {race.obstacle_kind} {where}"
    if race.n_bots:
        return (f"{race.race_type}: {race.n_bots} bot cars at {race.bot_car_speed:g} m/s"
                + (", changing lanes" if race.is_lane_change else ""))
    return race.race_type


def _check_training(job, *, resume: bool, wipe: bool, workers: int | None = None) -> None:
    """`drlocal train --check`: everything a training start reads, validated; nothing written."""
    from drlocal.config.workers import plan_workers, worker_files_note
    from drlocal.learn.trainer import worker_tracks
    from drlocal.sim.reward import load_reward_function
    from drlocal.store.select import store_of
    from drlocal.tracks import load_track

    run = job.run
    load_reward_function(job.reward_path)
    track = load_track(run.world_name)
    plan = plan_workers(job, workers)
    worker_tracks(plan, track)
    for w in plan.warnings:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False)
    race = run.race_options(training=True)  # HEAD_TO_MODEL is refused here, as `train` would
    bucket = store_of(job)
    existing = bucket.prefix_objects(run.model_prefix)
    lines = [f"config: {', '.join(str(p) for p in getattr(job, 'config_files', []) or [job.root])}",
             f"track: {track.name} ({track.length:.2f} m)", f"race: {_race_summary(race)}",
             f"model_metadata: {job.metadata_path} ({job.metadata.training_algorithm}, {job.metadata.neural_network})",
             f"hyperparameters: {job.hyperparameters_path}", f"reward function: {job.reward_path} (loads)",
             f"store: {bucket.kind}: {bucket.describe()}",
             f"workers: {worker_files_note(plan)}"]
    problems = []
    if existing and not (resume or wipe):
        problems.append(f"{bucket.url(run.model_prefix)} exists ({len(existing)} objects): train would refuse it "
                        "(use --resume, --wipe or another DR_LOCAL_S3_MODEL_PREFIX)")
    if resume and not existing:
        problems.append(f"--resume: {bucket.url(run.model_prefix)} holds nothing to resume")
    if run.pretrained:
        pre = bucket.prefix_objects(run.pretrained_prefix)
        lines.append(f"pretrained: {bucket.url(run.pretrained_prefix)} ({len(pre)} objects)")
        if not pre:
            problems.append(f"DR_LOCAL_S3_PRETRAINED_PREFIX={run.pretrained_prefix}: no such model")
    for line in lines:
        console.print(line, highlight=False)
    if problems:
        raise DrlocalError("train --check found:\n" + "\n".join(f"  - {p}" for p in problems))
    console.print("ok: `drlocal train` would start", highlight=False)


@app.command()
def evaluate(
    directory: DirOpt = Path("."),
    checkpoint: Annotated[str | None, typer.Option(help="best, last or a number (default DR_EVAL_CHECKPOINT).")] = None,
    trials: Annotated[int | None, typer.Option(help="Laps / trials (default DR_EVAL_NUMBER_OF_TRIALS).")] = None,
    continuous: Annotated[bool | None, typer.Option(help="One continuous run (default DR_EVAL_IS_CONTINUOUS).")] = None,
    track: Annotated[str | None, typer.Option("--track", "-t", help="Evaluate on another track.")] = None,
    prefix: Annotated[str | None, typer.Option("--prefix", "-p", help="Model prefix (default "
                                               "DR_LOCAL_S3_MODEL_PREFIX).")] = None,
    opponent: Annotated[str | None, typer.Option(
        help="Head-to-model: race this model prefix (default DR_EVAL_OPP_S3_MODEL_PREFIX when "
        "DR_RACE_TYPE=HEAD_TO_MODEL).")] = None,
    opponent_checkpoint: Annotated[str | None, typer.Option(help="The opponent's checkpoint (default as "
                                                            "--checkpoint).")] = None,
    done_condition: Annotated[str | None, typer.Option(help="Head-to-model: stop when 'any' car is done "
                                                       "(default) or when 'all' are.")] = None,
    mp4: Annotated[bool | None, typer.Option("--mp4/--no-mp4", help="Write the three MP4s under <prefix>/mp4/ "
                                             "(default DR_EVAL_SAVE_MP4).")] = None,
    view: ViewOpt = False,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = None,
    experiment: ExpOpt = None,
    config: CfgOpt = None,
) -> None:
    """Evaluate a trained model with greedy actions and print lap times (or race it against another model)."""
    from drlocal.learn.evaluate import evaluate as run_eval

    _require(trials is None or 1 <= trials <= 1000, "--trials", trials,
             "use 1 to 1000 trials (the range of DR_EVAL_NUMBER_OF_TRIALS).")
    _require(done_condition in (None, "any", "all"), "--done-condition", done_condition, "use 'any' or 'all'.")
    job = _load_job(directory, experiment, config)
    with _view.viewer(job, console, enabled=view, host=host, port=port, evaluation=True) as hub:
        res = run_eval(job, checkpoint=checkpoint, trials=trials, continuous=continuous, world=track, prefix=prefix,
                       opponent=opponent, opponent_checkpoint=opponent_checkpoint, done_condition=done_condition,
                       mp4=mp4, watch=hub)
    where = track or job.run.world_name
    race_type = res.extra.get("race_type", "TIME_TRIAL")
    runs = [(prefix or job.run.model_prefix, res)]
    if "opponent" in res.extra:
        runs.append((res.extra["opponent_prefix"], res.extra["opponent"]))
    for name, r in runs:
        kind = "" if race_type == "TIME_TRIAL" else f" ({race_type})"
        table = Table(title=f"evaluation of {name} checkpoint {r.checkpoint} on {where}{kind}")
        for col in ("trial", "status", "progress %", "time s", "off track", "crashes", "resets"):
            table.add_column(col, justify="right")
        for lap in r.laps:
            table.add_row(str(lap.trial), lap.status, f"{lap.completion:.1f}", f"{lap.elapsed_ms / 1000:.2f}",
                          str(lap.off_track), str(lap.crashes), str(lap.resets))
        console.print(table)
        done = r.completed
        avg = f"{np.mean([lap.elapsed_ms for lap in done]) / 1000:.2f} s" if done else "-"
        console.print(f"{name}: laps completed {len(done)}/{len(r.laps)}, average lap {avg}", highlight=False)
    console.print(f"metrics: {res.drfc_metrics_path} (and {Path(res.metrics_path).name})\n"
                  f"simtrace: {res.simtrace_path}", highlight=False)
    for video in res.extra.get("mp4", []):
        console.print(f"mp4: {video}", highlight=False)


@app.command()
def increment(
    directory: DirOpt = Path("."),
    checkpoint: Annotated[str, typer.Option(help="Checkpoint of the current model to start from.")] = "last",
    new_prefix: Annotated[str | None, typer.Option("--prefix", "-p", help="Name of the new model prefix "
                                                   "(DRfC -p; default: bump the number).")] = None,
    delimiter: Annotated[str, typer.Option("--delimiter", help="Delimiter before the number (DRfC -d).")] = "-",
    wipe: Annotated[bool, typer.Option("--wipe", "-w", help="Delete the new prefix if it exists (DRfC -w).")] = False,
    experiment: ExpOpt = None,
    config: CfgOpt = None,
) -> None:
    """Make the current model the pretrained one and bump the model prefix (DRfC dr-increment-training)."""
    from drlocal.config.workdir import increment_run_env

    job = _load_job(directory, experiment, config)
    old, new = increment_run_env(job, checkpoint, new_prefix=new_prefix, delimiter=delimiter, wipe=wipe)
    target = getattr(job, "run_config_file", None) or (job.root / "run.env")
    console.print(f"{target}: DR_LOCAL_S3_PRETRAINED_PREFIX={old}, DR_LOCAL_S3_MODEL_PREFIX={new}, "
                  f"DR_LOCAL_S3_PRETRAINED=True (checkpoint {checkpoint})", highlight=False)


@app.command("export")
def export_cmd(
    directory: DirOpt = Path("."),
    checkpoint: Annotated[str, typer.Option(help="best, last or a checkpoint number.")] = "best",
    fmt: Annotated[str, typer.Option("--format", "-f", help="car (model.tar.gz), onnx, droa (DeepRacer-on-AWS "
                                     "import folder) or all.")] = "car",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default <prefix>/export).")] = None,
    check: Annotated[bool, typer.Option(help="Run the exported graph with TensorFlow, OpenVINO, TFLite (and "
                                        "onnxruntime) on rendered frames; compare with the PyTorch policy.")] = False,
    prefix: Annotated[str | None, typer.Option(help="Model prefix (default DR_LOCAL_S3_MODEL_PREFIX).")] = None,
    experiment: ExpOpt = None,
    config: CfgOpt = None,
) -> None:
    """Write the model for the physical car (TensorFlow frozen graph), ONNX runtimes or DeepRacer-on-AWS."""
    from drlocal.export import car
    from drlocal.store.local import ModelStore
    from drlocal.store.select import store_of

    formats = {"car", "onnx", "droa"} if fmt == "all" else {fmt}
    if not formats <= {"car", "onnx", "droa"}:
        raise DrlocalError(f"unknown --format {fmt!r}.", hint="use car, onnx, droa or all.")
    if out is not None:
        _check_out(out, folder=True)
    job = _load_job(directory, experiment, config)
    bucket = store_of(job)
    store = ModelStore(bucket.pull(prefix or job.run.model_prefix,
                                   ["model/*", "ip/*", "reward_function.py", "training_params.yaml"]))
    model, metadata, name = car.load_trained(store, checkpoint)
    spec = car.spec_of(model, metadata)
    out_dir = out or store.root / "export"
    console.print(f"exporting {store.root.name} checkpoint {name} ({metadata['training_algorithm']}, "
                  f"{spec.network}, sensors {', '.join(spec.sensor_names)}) to {out_dir}", highlight=False)
    results = []
    obs = car.check_observations(metadata, job.run.world_name) if check else None
    if "car" in formats:
        paths = car.export_car(spec, metadata, out_dir)
        console.print(f"car model: {paths['tar']}  (model.pb + model_metadata.json; upload it in the car's "
                      "console under Models, or copy it to a USB stick's models/ folder)", highlight=False)
        if obs is not None:
            results += car.check_car(spec, model, paths["pb"].read_bytes(), obs)
    if "onnx" in formats:
        path = car.export_onnx(spec, out_dir)
        console.print(f"ONNX model: {path}", highlight=False)
        if obs is not None:
            results.append(car.check_onnx(spec, model, path.read_bytes(), obs))
    if "droa" in formats:
        folder, missing = car.export_droa(spec, metadata, store, name, out_dir, run_values=job)
        console.print(f"DeepRacer-on-AWS import folder: {folder}", highlight=False)
        if missing:
            err_console.print(f"[yellow]warning:[/] the model prefix has no {', '.join(missing)}; DeepRacer-on-AWS "
                              "requires them: copy them into the folder before importing.", highlight=False)
    if out is None:
        bucket.publish_tree(out_dir)
        bucket.finish()
    if results:
        console.print(f"checks on {len(next(iter(obs.values())))} rendered frames of {job.run.world_name} "  # type: ignore[union-attr]
                      "against the PyTorch policy:", highlight=False)
        for r in results:
            console.print("  " + r.line(), highlight=False)
        if not all(r.ok for r in results):
            raise DrlocalError("the exported model does not reproduce the PyTorch policy (see the checks above).")


@app.command("import")
def import_cmd(
    path: Annotated[Path, typer.Argument(help="model.tar.gz, model.pb, or a DRfC / console / DeepRacer-on-AWS "
                                         "model folder.")],
    directory: DirOpt = Path("."),
    prefix: Annotated[str | None, typer.Option(help="Model prefix to create under data/<bucket>/ "
                                               "(default imported-<name>).")] = None,
    metadata: Annotated[Path | None, typer.Option(help="model_metadata.json to use (default: the one in "
                                                  "the archive or folder).")] = None,
    force: Annotated[bool, typer.Option(help="Replace a model already stored under that prefix.")] = False,
    checkpoint: Annotated[str, typer.Option("--checkpoint", "-c", help="For a model folder: last (default), best "
                                            "or a checkpoint number.")] = "last",
    experiment: ExpOpt = None,
) -> None:
    """Read an existing DeepRacer model's weights into a drlocal model prefix (evaluate it or train on top)."""
    import tempfile

    from drlocal.export.importer import import_model
    from drlocal.store.select import store_of

    job = _load_job(directory, experiment)
    bucket = store_of(job)
    text = str(path)
    with tempfile.TemporaryDirectory(prefix="drlocal-import-") as tmp:
        if text.startswith("s3:/"):  # a model in S3 (read with DR_UPLOAD_S3_PROFILE, as dr-download-model does)
            from drlocal.store.objects import parse_s3_url
            from drlocal.store.transfer import source_store

            src_bucket, src_prefix = parse_s3_url(text.replace("s3:/", "s3://", 1) if "s3://" not in text else text)
            src = source_store(job)(src_bucket)
            for o in src.list(src_prefix + "/"):
                src.download(o.key, Path(tmp) / o.key[len(src_prefix) + 1:])
            path = Path(tmp)
            stem = Path(src_prefix).name or "model"
        else:
            stem = path.name.removesuffix(".gz").removesuffix(".tar").removesuffix(".tgz").removesuffix(".pb") \
                or "model"
        name = prefix or f"imported-{stem}"
        if bucket.prefix_objects(name) and not force:
            raise DrlocalError(f"{bucket.url(name)}: already holds a model.",
                               hint="choose another --prefix, or --force to replace it.")
        res = import_model(path, bucket.local_root / name, metadata_path=metadata, force=force,
                           checkpoint=checkpoint)
    bucket.publish_tree(bucket.local_root / name)
    bucket.finish()
    spec = res.spec
    kind = "continuous" if spec.continuous else f"{spec.num_outputs} discrete actions"
    console.print(f"imported {path} -> {res.root} (checkpoint {res.checkpoint}): {spec.algorithm}, {spec.network}, "
                  f"sensors {', '.join(spec.sensor_names)}, {kind}", highlight=False)
    if res.fresh:
        console.print(f"not in the source, initialised fresh: {', '.join(res.fresh)}", highlight=False)
    console.print(f"evaluate: drlocal evaluate --dir {directory} --prefix {name}\n"
                  f"train on top: set DR_LOCAL_S3_PRETRAINED=True, DR_LOCAL_S3_PRETRAINED_PREFIX={name} in run.env",
                  highlight=False)


from drlocal.cli_store import register as _register_store_commands  # noqa: E402

_register_store_commands(app, console, err_console, _load_job)
_view.register(app, console, _load_job)
_analyze.register(app, console, _load_job)
_race_cli.register(app, console, _load_job)


@contextlib.contextmanager
def _ctrl_c_stops(trainer: Any) -> Iterator[None]:
    """Ctrl-C stops `trainer` with its last finished iteration kept, even if the KeyboardInterrupt is lost.

    The interrupt is raised wherever the main thread happens to be; code that swallows it there (a finalizer, a
    library's or a callback's broad except) would let training run on. So the handler also sets
    `trainer.stop_requested`, which the loop checks at every iteration boundary. A second Ctrl-C raises again.
    Only Python's default handler is replaced: an ignored SIGINT (`nohup`, `cmd &` in a script) stays ignored."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return

    def on_sigint(signum: int, frame: Any) -> None:
        trainer.stop_requested = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _stacks_on_sigusr1() -> None:
    """`kill -USR1 <pid>` prints every thread's Python stack to stderr and the run goes on: where a run that looks
    stuck is (the standard library's faulthandler; POSIX only, and only when stderr is a real file or pipe)."""
    import faulthandler
    import signal

    if hasattr(signal, "SIGUSR1"):
        with contextlib.suppress(ValueError, OSError, AttributeError, RuntimeError):
            faulthandler.register(signal.SIGUSR1, all_threads=True)


def main() -> None:
    """Entry point: run the app, turning DrlocalError into one readable message and exit status 1."""
    _stacks_on_sigusr1()
    try:
        app()
    except DrlocalError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
