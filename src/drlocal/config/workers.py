"""DRfC's workers: `DR_WORKERS` and multi-config training (`DR_TRAIN_MULTI_CONFIG`, `worker-N.env`).

What DRfC does (scripts/training/prepare-config.py, simapp rollout_worker.py), and so drlocal:
* `DR_WORKERS=W` rollout workers share one trainer; worker i (0-based) plays floor(E / W) of the
  iteration's E = num_episodes_between_training episodes, one more when i < E mod W.
* With `DR_TRAIN_MULTI_CONFIG=True` and W ≥ 2, worker 1 (rollout index 0) uses run.env and worker
  N ≥ 2 reads `worker-N.env` from the run config's folder (the experiment's folder with
  DR_EXPERIMENT_NAME). DRfC loads those files one after another into its environment, so a value a
  worker file sets also holds for the following workers unless their file sets it again; drlocal does
  the same. Only the keys prepare-config.py copies into the worker's training_params_N.yaml count
  (`WORKER_KEYS`); anything else in a worker file gets a warning.
This module is DeepRacer-specific, hence hand-written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from drlocal.config.envfile import EnvValue, parse_env_file
from drlocal.config.run import RACE_VARIABLES, RunConfig, build_run_config
from drlocal.errors import DrlocalError

if TYPE_CHECKING:
    from drlocal.config.workdir import Job

#: The DR_* keys prepare-config.py takes from a worker-N.env (the rest of the run config is shared).
WORKER_KEYS = frozenset({
    "DR_WORLD_NAME", "DR_RACE_TYPE", "DR_CAR_COLOR", "DR_CAR_BODY_SHELL_TYPE", "DR_TRAIN_ALTERNATE_DRIVING_DIRECTION",
    "DR_TRAIN_CHANGE_START_POSITION", "DR_TRAIN_ROUND_ROBIN_ADVANCE_DIST", "DR_ENABLE_DOMAIN_RANDOMIZATION",
    "DR_TRAIN_START_POSITION_OFFSET", "DR_TRAIN_REVERSE_DIRECTION", "DR_CAMERA_MAIN_ENABLE", "DR_CAMERA_SUB_ENABLE",
    "DR_ENABLE_EXTRA_KVS_OVERLAY",
    *RACE_VARIABLES.get("OBJECT_AVOIDANCE", ()), *RACE_VARIABLES.get("HEAD_TO_BOT", ()),
})

#: deepracer-utils finds a multi-worker run's simtraces with the pattern `.*/(.)/training-simtrace/`: one digit.
UTILS_MAX_WORKERS = 10


def episode_shares(episodes: int, workers: int) -> list[int]:
    """The simapp's split of an iteration's episodes: floor(E / W) each, +1 for the first E mod W workers."""
    return [episodes // workers + (1 if i < episodes % workers else 0) for i in range(workers)]


@dataclass
class WorkerPlan:
    """The workers of a training: one run config and episode share each (index 0 = DRfC's worker 1)."""

    runs: list[RunConfig]
    shares: list[int]
    sources: list[str]  # where each worker's config comes from ("run.env", "worker-2.env", ...)
    warnings: list[str]

    @property
    def count(self) -> int:
        return len(self.runs)

    @property
    def tracks(self) -> list[str]:
        return [r.world_name for r in self.runs]


def plan_workers(job: Job, workers: int | None = None) -> WorkerPlan:
    """The workers of `job` (`workers` overrides DR_WORKERS), checked before any work starts.

    Raises DrlocalError (one message) when there are more workers than episodes per iteration, when a
    worker-N.env of a multi-config run is missing, or when a worker file holds an invalid value."""
    n = int(workers if workers is not None else job.run.workers)
    episodes = job.hyperparameters.num_episodes_between_training
    if n < 1:
        raise DrlocalError(f"--workers {n}: at least one worker is needed.", hint="use --workers 1 or more.")
    if n > episodes:
        raise DrlocalError(
            f"{n} workers but num_episodes_between_training = {episodes} ({job.hyperparameters_path}): every "
            "worker plays its share of an iteration's episodes, so a worker would have none.",
            hint=f"use at most {episodes} workers (DR_WORKERS / --workers), or raise num_episodes_between_training.")
    warnings: list[str] = []
    if n > UTILS_MAX_WORKERS:
        warnings.append(f"{n} workers: deepracer-utils reads the simtraces of workers 0-9 only (its folder pattern "
                        "has one digit)")
    shares = episode_shares(episodes, n)
    folder = job.run_config_file.parent
    if not job.run.train_multi_config or n == 1:
        if job.run.train_multi_config:
            warnings.append("DR_TRAIN_MULTI_CONFIG=True has no effect with one worker (DRfC needs DR_WORKERS ≥ 2)")
        return WorkerPlan([job.run] * n, shares, [job.run_config_file.name] * n, warnings)
    missing = [f"worker-{i}.env" for i in range(2, n + 1) if not (folder / f"worker-{i}.env").is_file()]
    if missing:
        raise DrlocalError(
            f"DR_TRAIN_MULTI_CONFIG=True with {n} workers: {folder} has no {', '.join(missing)} (worker 1 uses "
            f"{job.run_config_file.name}, worker N ≥ 2 reads worker-N.env, as DRfC does).",
            hint="create the missing file(s) with the worker's DR_WORLD_NAME and other settings, or lower DR_WORKERS.")
    runs, sources = [job.run], [job.run_config_file.name]
    carried: dict[str, EnvValue] = {}  # DRfC's os.environ.update: earlier worker files hold for later workers
    for i in range(2, n + 1):
        path = folder / f"worker-{i}.env"
        values = parse_env_file(path, {}, job.environ)
        other = sorted(k for k in values if k not in WORKER_KEYS)
        if other:
            warnings.append(f"{path.name}: {', '.join(other)} ignored (a worker file sets the track, race type, "
                            "car and start options only; the rest comes from the run config), as DRfC does")
        carried.update({k: v for k, v in values.items() if k in WORKER_KEYS})
        try:
            run, _ = build_run_config(job.env_values, job.environ, overrides={**job.env_overrides, **carried},
                                      base=folder)
        except DrlocalError as exc:
            raise DrlocalError(f"worker {i} ({path}): {exc.args[0]}", hint=exc.hint) from None
        runs.append(run)
        sources.append(path.name)
    return WorkerPlan(runs, shares, sources, warnings)


def worker_files_note(plan: WorkerPlan) -> str:
    """One line per worker for `train --check` and the start of training."""
    return "; ".join(f"worker {i + 1}: {r.world_name} ({src}), {share} episode(s)/iteration"
                     for i, (r, src, share) in enumerate(zip(plan.runs, plan.sources, plan.shares, strict=True)))

