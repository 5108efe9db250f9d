"""`drlocal sweep SPEC.yaml`: train variants of a model (reward, action space, hyperparameters, run settings)
with the same budget each, race every variant's best checkpoint under identical conditions, rank them.

Every variant is a DRfC experiment, `experiments/<name>-<k>/` next to the base folder's `system.env`:
its own `run.env` (the base run config with the variant's DR_* values and
`DR_LOCAL_S3_MODEL_PREFIX=<name>-<k>`) and `custom_files/` (the base files with the variant's changes).
So each variant trains into its own model prefix of the same bucket, and any variant can be trained on,
evaluated or uploaded afterwards with `-e <name>-<k>`, by drlocal or by DRfC.

The spec (YAML; every key but `name`, `budget` and `vary` optional)::

    name: speed              # variants are experiments/speed-1, speed-2, … (and model prefixes of the same name)
    base: .                  # the working folder the variants start from, relative to the spec
    experiment: null         # start from this experiment of the base folder instead of run.env/custom_files
    budget: {minutes: 5}     # per variant: {minutes: M} (wall clock of training) or {iterations: N}
    search: grid             # grid: every combination of `vary`; random: `samples` draws
    samples: 4               # random search: how many variants
    seed: 0                  # training seed of every variant, and the random search's draws
    parallel: null           # variants at once (default: the Ray cluster's CPUs / cpus_per_variant)
    cpus_per_variant: 1      # CPUs (and torch threads) each variant gets
    address: null            # a Ray cluster (ray://HEAD:10001 or HEAD:6379); default a local Ray
    race: {track: null, laps: 3, checkpoint: best}   # the leaderboard race (track default DR_WORLD_NAME)
    vary:
      hyperparameters.discount_factor: [0.99, 0.999]
      hyperparameters.lr: {loguniform: [1.0e-5, 1.0e-3]}     # random search: uniform, loguniform, int
      model_metadata.action_space: [actions-fast.json, actions-safe.json]   # a list, or a JSON file
      reward_function: [rewards/progress.py, rewards/speed.py]               # reward files (relative paths)
      DR_TRAIN_BEST_MODEL_METRIC: [progress, laptime]                        # any run.env setting

Variants run as Ray tasks (`parallel` > 1 or an `address`); with `parallel: 1` and no address they run
one after another in this process (Ray not needed). A variant that fails (a broken reward function, a
diverged update, a lost node) is marked failed in the leaderboard with its reason; the others go on.

Resuming: each finished variant's result is kept in `experiments/<name>-<k>/sweep-result.json`; running the
same spec again skips finished variants, retries failed ones and continues interrupted ones from their last
checkpoint with the rest of their budget (when they ran on this machine; a variant interrupted on another node
starts again). A spec whose variants changed under the same name is refused (`--restart` starts over).

Variants running on other nodes get every file by value; with a local-disk store their model prefix comes back
as an archive and is unpacked into this folder's bucket; with a MinIO/S3 store each node writes to it directly.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import os
import shutil
import socket
import tarfile
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from drlocal.errors import DrlocalError, read_user_text

RESULT_FILE = "sweep-result.json"
VARIANT_FILE = "sweep-variant.json"
PROGRESS_FILE = "sweep-progress.json"
CUSTOM_FILES = ("reward_function.py", "model_metadata.json", "hyperparameters.json")


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    minutes: float | None = Field(default=None, gt=0, le=7 * 24 * 60)
    iterations: int | None = Field(default=None, ge=1, le=100_000)

    @model_validator(mode="after")
    def _one(self) -> Budget:
        if (self.minutes is None) == (self.iterations is None):
            raise ValueError("give exactly one of minutes or iterations")
        return self


class RaceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    track: str | None = None
    laps: int = Field(default=3, ge=1, le=1000)
    checkpoint: str = "best"


class SweepSpec(BaseModel):
    """The YAML spec (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,60}$")
    base: str = "."
    experiment: str | None = None
    budget: Budget
    search: Literal["grid", "random"] = "grid"
    samples: int | None = Field(default=None, ge=1, le=10_000)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    parallel: int | None = Field(default=None, ge=1, le=1024)
    cpus_per_variant: int = Field(default=1, ge=1, le=256)
    address: str | None = None
    race: RaceSpec = RaceSpec()
    vary: dict[str, Any]

    @field_validator("vary")
    @classmethod
    def _keys(cls, vary: dict[str, Any]) -> dict[str, Any]:
        if not vary:
            raise ValueError("name at least one setting to vary")
        for key, values in vary.items():
            kind(key)
            if isinstance(values, dict):
                if len(values) != 1 or next(iter(values)) not in DISTRIBUTIONS:
                    raise ValueError(f"{key}: a distribution is one of {{{', '.join(DISTRIBUTIONS)}: [low, high]}}")
                low_high = next(iter(values.values()))
                if (not isinstance(low_high, list) or len(low_high) != 2
                        or not all(isinstance(x, int | float) and math.isfinite(x) for x in low_high)
                        or not low_high[0] <= low_high[1]):
                    raise ValueError(f"{key}: the range is [low, high] with finite low <= high")
                if next(iter(values)) == "loguniform" and low_high[0] <= 0:
                    raise ValueError(f"{key}: loguniform needs low > 0")
            elif not isinstance(values, list) or not values:
                raise ValueError(f"{key}: give a non-empty list of values")
        return vary

    @model_validator(mode="after")
    def _search(self) -> SweepSpec:
        if self.search == "random" and self.samples is None:
            raise ValueError("search: random needs samples: N")
        if self.search == "grid":
            ranges = [k for k, v in self.vary.items() if isinstance(v, dict)]
            if ranges:
                raise ValueError(f"search: grid needs lists of values; {', '.join(ranges)} give a range "
                                 "(use search: random)")
        return self


DISTRIBUTIONS = ("uniform", "loguniform", "int")


def kind(key: str) -> tuple[str, str]:
    """A `vary` key -> (where, name): ("hyperparameters", "lr"), ("model_metadata", "action_space"),
    ("reward_function", ""), ("run", "DR_WORLD_NAME")."""
    if key == "reward_function":
        return "reward_function", ""
    head, _, leaf = key.partition(".")
    if head in ("hyperparameters", "model_metadata") and leaf:
        return head, leaf
    name = leaf if head == "run" and leaf else key
    if name.startswith("DR_") and name.replace("_", "").isalnum() and name.upper() == name:
        if name in ("DR_LOCAL_S3_MODEL_PREFIX", "DR_EXPERIMENT_NAME"):
            raise ValueError(f"{key}: the sweep sets each variant's model prefix itself")
        return "run", name
    raise ValueError(f"unknown setting {key!r}: use hyperparameters.<key>, model_metadata.<key>, "
                     "reward_function or a DR_* run setting")


@dataclass
class Variant:
    index: int  # 1-based
    name: str  # experiment folder and model prefix
    settings: dict[str, Any]  # vary key -> value (as in the spec; files by name)


def load_spec(path: Path) -> SweepSpec:
    """The spec file, validated: one error naming the file and every problem."""
    import yaml

    text = read_user_text(path, "the sweep spec")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise DrlocalError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)}).",
                           hint="check the indentation and the quotes of that line.") from None
    if not isinstance(raw, dict):
        raise DrlocalError(f"{path}: a sweep spec is a YAML mapping (name:, budget:, vary:, …).",
                           hint="see `drlocal sweep --help` for an example.")
    try:
        return SweepSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in exc.errors())
        raise DrlocalError(f"{path}: {problems}.", hint="fix these keys (see `drlocal sweep --help`).") from None


def plan_variants(spec: SweepSpec) -> list[Variant]:
    """Grid: the cartesian product of `vary` in the spec's key order. Random: `samples` independent draws."""
    import numpy as np

    keys = list(spec.vary)
    if spec.search == "grid":
        combos = [dict(zip(keys, values, strict=True)) for values in itertools.product(*spec.vary.values())]
    else:
        rng = np.random.default_rng(spec.seed)
        combos = []
        for _ in range(spec.samples or 1):
            combos.append({k: _draw(rng, v) for k, v in spec.vary.items()})
    return [Variant(k + 1, f"{spec.name}-{k + 1}", c) for k, c in enumerate(combos)]


def _draw(rng: Any, values: Any) -> Any:
    if isinstance(values, list):
        return values[int(rng.integers(len(values)))]
    (dist, (low, high)), = values.items()
    if dist == "uniform":
        return float(rng.uniform(low, high))
    if dist == "loguniform":
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    return int(rng.integers(int(low), int(high) + 1))


def _json_file(value: Any, leaf: str, spec_dir: Path) -> Any:
    """A model_metadata/hyperparameters value given as a .json file: its `leaf` key if it has one, else all."""
    if not (isinstance(value, str) and value.endswith(".json")):
        return value
    path = spec_dir / value
    try:
        data = json.loads(read_user_text(path, "a sweep value file"))
    except json.JSONDecodeError as exc:
        raise DrlocalError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}).", hint="fix the file.") from None
    return data[leaf] if isinstance(data, dict) and leaf in data else data


def variant_files(base_job: Any, variant: Variant, spec_dir: Path) -> dict[str, str]:
    """The variant's experiment files, relative to its folder: run.env and custom_files/*."""
    from drlocal.config.workdir import set_env_values

    md = json.loads(read_user_text(base_job.metadata_path, "model_metadata.json"))
    hp = json.loads(read_user_text(base_job.hyperparameters_path, "hyperparameters.json"))
    reward = read_user_text(base_job.reward_path, "the reward function")
    run_values = {"DR_LOCAL_S3_MODEL_PREFIX": variant.name}
    for key, value in variant.settings.items():
        where, leaf = kind(key)
        if where == "hyperparameters":
            hp[leaf] = _json_file(value, leaf, spec_dir)
        elif where == "model_metadata":
            md[leaf] = _json_file(value, leaf, spec_dir)
        elif where == "reward_function":
            reward = read_user_text(spec_dir / str(value), "a sweep reward function")
        else:
            run_values[leaf] = "True" if value is True else "False" if value is False else str(value)
    with tempfile.TemporaryDirectory() as tmp:
        run_env = Path(tmp) / "run.env"
        src = base_job.run_config_file
        run_env.write_text(read_user_text(src, "the run config") if Path(src).is_file() else "", encoding="utf-8")
        set_env_values(run_env, run_values)
        run_text = run_env.read_text(encoding="utf-8")
    return {"run.env": run_text,
            "custom_files/reward_function.py": reward,
            "custom_files/model_metadata.json": json.dumps(md, indent=4) + "\n",
            "custom_files/hyperparameters.json": json.dumps(hp, indent=4) + "\n"}


def _write_files(folder: Path, files: dict[str, str]) -> None:
    from drlocal.store.local import atomic_write_text

    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / rel, text)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# ----------------------------------------------------------------------------------------------------------------
# one variant: train, race its best checkpoint (runs in this process or as a Ray task on any node)


def run_variant(task: dict[str, Any]) -> dict[str, Any]:
    """Train and race one variant; returns {"entry": …, "iterations", "env_steps", "trained_s"} or {"error": …}.

    `task`: base (folder), experiment, files (by value), system_env (text), environ (DR_* of the driver), host
    (the driver's), budget {minutes|iterations}, trained_s (already trained, when resuming), resume, seed,
    race {track, laps, checkpoint}, threads."""
    import torch

    from drlocal.config.workdir import load_job
    from drlocal.learn.leaderboard import error_line, race_models
    from drlocal.learn.trainer import Trainer
    from drlocal.memory import tame_allocator
    from drlocal.store.select import store_of

    tame_allocator()
    if int(task.get("threads", 0)) > 0:  # a Ray task gets its CPUs' worth; in-process keeps torch's default
        torch.set_num_threads(int(task["threads"]))
    name = task["experiment"]
    root = Path(task["base"])
    in_place = socket.gethostname() == task["host"] and (root / "experiments" / name / "run.env").is_file()
    tmp = None
    try:
        if not in_place:  # another machine: rebuild the folder from the files sent with the task
            tmp = Path(tempfile.mkdtemp(prefix=f"drlocal-sweep-{name}-"))
            root = tmp
            (root / "system.env").write_text(task["system_env"], encoding="utf-8")
            _write_files(root / "experiments" / name, task["files"])
        job = load_job(root, environ=task["environ"], experiment=name)
        progress_path = root / "experiments" / name / PROGRESS_FILE
        before = float(task.get("trained_s", 0.0)) if in_place and task.get("resume") else 0.0
        budget = task["budget"]
        minutes = None if budget.get("minutes") is None else max(budget["minutes"] - before / 60.0, 0.0)

        def progress(r: Any) -> None:
            if in_place:
                from drlocal.store.local import atomic_write_json

                atomic_write_json(progress_path, {"trained_s": before + r.elapsed_s, "iteration": r.iteration})

        resume = bool(task.get("resume")) and in_place
        trainer = Trainer(job, minutes=minutes, max_iterations=budget.get("iterations"), seed=task["seed"],
                          resume=resume, wipe=not resume, on_iteration=progress)
        t0 = time.monotonic()
        state = trainer.train()
        trained_s = before + (time.monotonic() - t0)
        race = task["race"]
        board = race_models(job, [(job.run.model_prefix, race["checkpoint"])], track=race["track"],
                            laps=race["laps"])
        if board.entries[0].error:  # trained but could not race: failed (retried by the next run of the spec)
            return {"error": f"race: {board.entries[0].error}", "node": _node()}
        out: dict[str, Any] = {"entry": board.entries[0].to_json(), "iterations": state.iteration,
                               "env_steps": state.env_steps, "trained_s": round(trained_s, 1),
                               "node": _node()}
        store = store_of(job)
        if not in_place and store.remote is None:
            out["archive"] = _archive(store.local_root, job.run.model_prefix)
        return out
    except DrlocalError as err:
        return {"error": error_line(err), "node": _node()}
    except Exception as exc:  # a variant's failure must not stop the sweep
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(),
                "node": _node()}
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _node() -> str:
    """Where the variant ran, the same for finished and failed variants: the Ray node id inside a Ray task,
    else the host name."""
    import sys

    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    return socket.gethostname()


def _archive(bucket_root: Path, prefix: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(bucket_root / prefix, arcname=prefix)
    return buf.getvalue()


def _unpack(archive: bytes, bucket_root: Path, prefix: str) -> None:
    """A variant's model prefix from another node into this folder's bucket (replacing an older copy)."""
    target = bucket_root / prefix
    if target.exists():
        shutil.rmtree(target)
    bucket_root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(bucket_root, filter="data")


# ----------------------------------------------------------------------------------------------------------------
# the driver


@dataclass
class SweepRun:
    """What `run_sweep` did: the leaderboard and where it is."""

    board: Any  # drlocal.learn.leaderboard.Leaderboard
    json_path: Path
    csv_path: Path
    skipped: int  # variants finished by an earlier run
    failed: int
    wall_s: float


def run_sweep(spec_path: Path, *, restart: bool = False, say: Callable[[str], None] = print) -> SweepRun:
    """Run (or resume) the sweep of `spec_path`; see the module docstring."""
    from drlocal.config.workdir import load_job
    from drlocal.learn.leaderboard import Entry, Leaderboard
    from drlocal.store.select import store_of

    t0 = time.monotonic()
    spec = load_spec(spec_path)
    spec_dir = spec_path.resolve().parent
    base = (spec_dir / spec.base).resolve()
    base_job = load_job(base, experiment=spec.experiment)
    variants = plan_variants(spec)
    if len(variants) > 1000:
        raise DrlocalError(f"{spec_path}: {len(variants)} variants.", hint="vary fewer settings, or use "
                           "search: random with samples: N.")
    world = spec.race.track or base_job.run.world_name
    from drlocal.tracks import load_track

    load_track(world)
    experiments = base / "experiments"
    bucket = store_of(base_job)
    results: dict[int, dict[str, Any]] = {}
    tasks: list[tuple[Variant, dict[str, Any]]] = []
    environ = {k: v for k, v in os.environ.items() if k.startswith("DR_") and k != "DR_EXPERIMENT_NAME"}
    system_env = (base / "system.env").read_text(encoding="utf-8") if (base / "system.env").is_file() else ""
    common = {"base": str(base), "system_env": system_env, "environ": environ, "host": socket.gethostname(),
              "budget": spec.budget.model_dump(), "seed": spec.seed, "race": spec.race.model_dump(),
              "threads": spec.cpus_per_variant}
    for v in variants:
        outcome = _prepare(spec, spec_path, base_job, bucket, v, restart, common, say)
        if isinstance(outcome, dict) and "experiment" in outcome:
            tasks.append((v, outcome))
        else:
            results[v.index] = outcome
            if "error" in outcome:
                say(f"{v.name}: failed before training: {outcome['error']}")
    skipped = len(variants) - len(tasks) - sum(1 for r in results.values() if "error" in r)
    if skipped:
        say(f"{skipped} variant(s) finished earlier: kept")
    bucket_root = bucket.local_root

    def finished(v: Variant, result: dict[str, Any]) -> None:
        archive = result.pop("archive", None)
        if archive is not None:
            _unpack(archive, bucket_root, v.name)
        trace = result.pop("traceback", None)
        if trace:
            (experiments / v.name / "sweep-error.txt").write_text(trace, encoding="utf-8")
        results[v.index] = _save_result(experiments / v.name, result)
        if "error" in result:
            say(f"{v.name}: failed: {result['error']}")
        else:
            from drlocal.learn.leaderboard import describe

            e = Entry.from_json(result["entry"])
            say(f"{v.name}: {result['iterations']} iterations, {result['env_steps']} steps; {describe(e)}")

    if tasks:
        if spec.parallel == 1 and spec.address is None and not os.environ.get("RAY_ADDRESS"):
            for v, task in tasks:
                say(f"{v.name}: training {_settings_text(v.settings)}")
                finished(v, run_variant({**task, "threads": 0}))  # one variant at a time: every core
        else:
            _run_on_ray(spec, tasks, finished, say)
    entries = [_entry(v, results.get(v.index, {"error": "not run"}), spec.race.laps) for v in variants]
    board = Leaderboard(world, spec.race.laps, entries)
    j, c = board.write(base / "sweeps" / spec.name / "leaderboard")
    failed = sum(1 for e in entries if e.error)
    return SweepRun(board, j, c, skipped, failed, time.monotonic() - t0)


def _prepare(spec: SweepSpec, spec_path: Path, base_job: Any, bucket: Any, v: Variant, restart: bool,
             common: dict[str, Any], say: Callable[[str], None]) -> dict[str, Any]:
    """Write (or check) a variant's experiment folder: its earlier result when it finished, an error result when
    its files are bad, else the task that trains it (resuming from its progress file when one is there)."""
    from drlocal.config.workdir import load_job
    from drlocal.sim.reward import load_reward_function
    from drlocal.store.local import atomic_write_json
    from drlocal.tracks import load_track

    base = Path(common["base"])
    folder = base / "experiments" / v.name
    files = variant_files(base_job, v, spec_path.resolve().parent)
    identity = {"sweep": spec.name, "index": v.index, "settings": v.settings, "budget": spec.budget.model_dump(),
                "seed": spec.seed, "race": spec.race.model_dump()}
    old = _read_json(folder / VARIANT_FILE)
    if old is None and bucket.prefix_objects(v.name):
        raise DrlocalError(f"{bucket.url(v.name)} exists and was not made by this sweep.",
                           hint="give the sweep another name: (its variants' prefixes are <name>-<k>).")
    if restart:  # train again: the folder's files are rewritten and its model prefix wiped when training starts
        old = None
        (folder / PROGRESS_FILE).unlink(missing_ok=True)
    elif folder.exists() and (old or {}).get("identity") != identity:
        raise DrlocalError(
            f"{folder} exists from another sweep or another version of {spec_path.name} (its settings, "
            "budget, seed or race differ).",
            hint="give the sweep a new name:, or pass --restart to train every variant again.")
    result = _read_json(folder / RESULT_FILE) if old is not None else None
    if result is not None and "entry" in result:
        if old.get("files") != files:
            say(f"{v.name}: its files changed since it trained; its result is kept (--restart trains it again)")
        return result
    # a failed or interrupted variant runs with the files as they are now (a fixed reward function is picked up)
    _write_files(folder, files)
    atomic_write_json(folder / VARIANT_FILE, {"identity": identity, "files": files})
    (folder / RESULT_FILE).unlink(missing_ok=True)
    progress = _read_json(folder / PROGRESS_FILE) if old is not None else None
    try:  # check the variant's files and track on this machine first: a bad one fails alone, in a second
        job = load_job(base, experiment=v.name)
        load_track(job.run.world_name)
        load_reward_function(job.reward_path)
    except DrlocalError as err:
        return _save_result(folder, {"error": Exception.__str__(err).strip().splitlines()[0]})
    return {**common, "experiment": v.name, "files": files, "resume": progress is not None,
            "trained_s": (progress or {}).get("trained_s", 0.0)}


def _entry(v: Variant, r: dict[str, Any], laps: int) -> Any:
    """A variant's leaderboard entry, its settings, iterations and training minutes as extra columns."""
    from drlocal.learn.leaderboard import Entry

    extra = {k: _show(val) for k, val in v.settings.items()}
    extra.update({"variant": v.name, "iterations": r.get("iterations", ""),
                  "trained_min": round(r["trained_s"] / 60, 1) if "trained_s" in r else ""})
    if "entry" in r:
        e = Entry.from_json(r["entry"])
        e.extra = extra
        return e
    return Entry(model=v.name, trials=laps, error=r.get("error", "failed"), extra=extra)


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "…"


def _settings_text(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_show(v)}" for k, v in settings.items())


def _save_result(folder: Path, result: dict[str, Any]) -> dict[str, Any]:
    from drlocal.store.local import atomic_write_json

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / RESULT_FILE, result)
    return result


def _run_on_ray(spec: SweepSpec, tasks: list[tuple[Variant, dict[str, Any]]],
                finished: Callable[[Variant, dict[str, Any]], None], say: Callable[[str], None]) -> None:
    """Every variant as a Ray task of `cpus_per_variant` CPUs; at most `parallel` at once; results as they come."""
    try:
        import ray
    except ImportError:
        raise DrlocalError("parallel variants run on Ray, which is not installed.",
                           hint="pip install 'drlocal[ray]' (the Makefile installs it), or set parallel: 1.") from None
    from drlocal.learn.ray_workers import connect

    connect(spec.address, spec.cpus_per_variant, say)
    cpus = float(ray.cluster_resources().get("CPU", 1))
    parallel = min(spec.parallel or max(1, int(cpus // spec.cpus_per_variant)), len(tasks))
    say(f"{len(tasks)} variant(s), {parallel} at a time, {spec.cpus_per_variant} CPU(s) each")
    remote = ray.remote(num_cpus=spec.cpus_per_variant, max_retries=0)(run_variant)
    queue = list(tasks)
    running: dict[Any, Variant] = {}
    try:
        while queue or running:
            while queue and len(running) < parallel:
                v, task = queue.pop(0)
                say(f"{v.name}: training {_settings_text(v.settings)}")
                running[remote.remote(task)] = v
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                v = running.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as exc:  # a lost node or worker fails this variant only
                    result = {"error": f"Ray task failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"}
                finished(v, result)
    finally:
        for ref in running:
            ray.cancel(ref, force=True)
