"""A DRfC-style working folder: `run.env`, `system.env`, `custom_files/…`, and `data/<bucket>/<prefix>/`.

`drlocal init DIR` writes one with DRfC's defaults; every other command reads one (the current
directory by default), so an existing DRfC folder trains without edits.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from drlocal.config.envfile import EnvValue, parse_env_file, read_env_files
from drlocal.config.hyperparameters import DRFC_HYPERPARAMETERS, Hyperparameters, load_hyperparameters
from drlocal.config.model_metadata import DRFC_DEFAULT, ModelMetadata, load_model_metadata
from drlocal.config.run import RunConfig, build_run_config
from drlocal.errors import DrlocalError
from drlocal.sim.reward import DRFC_REWARD_SOURCE

if TYPE_CHECKING:
    from drlocal.store.select import StoreChoice

SYSTEM_ENV = """\
# DeepRacer-for-Cloud's system.env (defaults/template-system.env as `bin/init.sh -c local` fills it in),
# without the Docker, GPU, viewer and streaming settings drlocal does not need.
# Storage: DR_CLOUD is not set, so models are kept on this disk in data/<DR_LOCAL_S3_BUCKET>/.
# Set DR_CLOUD=local|aws|remote to use a MinIO or S3 store as DRfC does.
#DR_CLOUD=local
DR_AWS_APP_REGION=us-east-1
DR_UPLOAD_S3_PROFILE=default
DR_UPLOAD_S3_BUCKET=not-defined
DR_LOCAL_S3_BUCKET=bucket
DR_LOCAL_S3_PROFILE=minio
DR_WORKERS=1
# DR_REMOTE_MINIO_URL=http://mynas:9000
# DR_EXPERIMENT_NAME=
"""

RUN_ENV = """\
# Run settings: DRfC's names and defaults (defaults/template-run.env), in DRfC's order.
DR_RUN_ID=0
DR_WORLD_NAME=reinvent_base
DR_RACE_TYPE=TIME_TRIAL
DR_CAR_NAME=FastCar
DR_CAR_BODY_SHELL_TYPE=deepracer
DR_CAR_COLOR=Red
DR_DISPLAY_NAME=$DR_CAR_NAME
DR_RACER_NAME=$DR_CAR_NAME
DR_ENABLE_DOMAIN_RANDOMIZATION=False
DR_EVAL_NUMBER_OF_TRIALS=3
DR_EVAL_IS_CONTINUOUS=True
DR_EVAL_MAX_RESETS=100
DR_EVAL_OFF_TRACK_PENALTY=5.0
DR_EVAL_COLLISION_PENALTY=5.0
DR_EVAL_SAVE_MP4=False
DR_EVAL_CHECKPOINT=last
DR_EVAL_OPP_S3_MODEL_PREFIX=rl-deepracer-sagemaker
DR_EVAL_OPP_CAR_BODY_SHELL_TYPE=deepracer
DR_EVAL_OPP_CAR_NAME=FasterCar
DR_EVAL_OPP_DISPLAY_NAME=$DR_EVAL_OPP_CAR_NAME
DR_EVAL_OPP_RACER_NAME=$DR_EVAL_OPP_CAR_NAME
DR_EVAL_DEBUG_REWARD=False
DR_EVAL_RESET_BEHIND_DIST=1.0
DR_EVAL_REVERSE_DIRECTION=False
#DR_EVAL_RTF=1.0
DR_TRAIN_CHANGE_START_POSITION=True
DR_TRAIN_REVERSE_DIRECTION=False
DR_TRAIN_ALTERNATE_DRIVING_DIRECTION=False
DR_TRAIN_START_POSITION_OFFSET=0.0
DR_TRAIN_ROUND_ROBIN_ADVANCE_DIST=0.05
DR_TRAIN_MULTI_CONFIG=False
DR_TRAIN_MIN_EVAL_TRIALS=5
DR_TRAIN_BEST_MODEL_METRIC=progress
#DR_TRAIN_RTF=1.0
#DR_TRAIN_MAX_STEPS_PER_ITERATION=10000
DR_LOCAL_S3_MODEL_PREFIX=rl-deepracer-sagemaker
DR_LOCAL_S3_PRETRAINED=False
DR_LOCAL_S3_PRETRAINED_PREFIX=rl-sagemaker-pretrained
DR_LOCAL_S3_PRETRAINED_CHECKPOINT=last
DR_LOCAL_S3_CUSTOM_FILES_PREFIX=custom_files
DR_LOCAL_S3_TRAINING_PARAMS_FILE=training_params.yaml
DR_LOCAL_S3_EVAL_PARAMS_FILE=evaluation_params.yaml
DR_LOCAL_S3_MODEL_METADATA_KEY=$DR_LOCAL_S3_CUSTOM_FILES_PREFIX/model_metadata.json
DR_LOCAL_S3_HYPERPARAMETERS_KEY=$DR_LOCAL_S3_CUSTOM_FILES_PREFIX/hyperparameters.json
DR_LOCAL_S3_REWARD_KEY=$DR_LOCAL_S3_CUSTOM_FILES_PREFIX/reward_function.py
DR_LOCAL_S3_METRICS_PREFIX=$DR_LOCAL_S3_MODEL_PREFIX/metrics
DR_UPLOAD_S3_PREFIX=$DR_LOCAL_S3_MODEL_PREFIX-1
DR_OA_NUMBER_OF_OBSTACLES=6
DR_OA_MIN_DISTANCE_BETWEEN_OBSTACLES=2.0
DR_OA_RANDOMIZE_OBSTACLE_LOCATIONS=False
DR_OA_IS_OBSTACLE_BOT_CAR=False
DR_OA_OBSTACLE_TYPE=box_obstacle
DR_OA_OBJECT_POSITIONS=
DR_H2B_IS_LANE_CHANGE=False
DR_H2B_LOWER_LANE_CHANGE_TIME=3.0
DR_H2B_UPPER_LANE_CHANGE_TIME=5.0
DR_H2B_LANE_CHANGE_DISTANCE=1.0
DR_H2B_NUMBER_OF_BOT_CARS=3
DR_H2B_MIN_DISTANCE_BETWEEN_BOT_CARS=2.0
DR_H2B_RANDOMIZE_BOT_CAR_LOCATIONS=False
DR_H2B_BOT_CAR_SPEED=0.2
DR_H2B_BOT_CAR_PENALTY=5.0
"""


def init_workdir(path: str | Path, *, force: bool = False, template: str | None = None) -> list[Path]:
    """Write DRfC's default folder layout into `path`; refuses to overwrite unless `force`.

    `template` ("race", "race-continuous"): the racer's starting files instead of DRfC's defaults
    (`drlocal.templates`): its reward function, model metadata and hyperparameters, its run.env settings in
    place of DRfC's defaults, and RACE-TEMPLATE.md explaining them."""
    root = Path(path)
    run_env = RUN_ENV
    extra: dict[Path, str] = {}
    custom = {
        "custom_files/reward_function.py": DRFC_REWARD_SOURCE,
        "custom_files/model_metadata.json": json.dumps(DRFC_DEFAULT, indent=4) + "\n",
        "custom_files/hyperparameters.json": json.dumps(DRFC_HYPERPARAMETERS, indent=4) + "\n",
    }
    if template is not None:
        from drlocal.templates import NAMES, template_files

        if template not in NAMES:
            raise DrlocalError(f"unknown template {template!r}.", hint=f"use one of: {', '.join(NAMES)}.")
        files_t = template_files(template)
        custom.update({k: v for k, v in files_t.items() if k.startswith("custom_files/")})
        settings = dict(line.split("=", 1) for line in files_t["run.env.add"].splitlines() if "=" in line)
        run_env = "".join(f"{k}={settings.pop(k)}\n" if k in settings else line + "\n"
                          for k, line in ((ln.split("=", 1)[0], ln) for ln in RUN_ENV.splitlines()))
        run_env += "".join(f"{k}={v}\n" for k, v in settings.items())
        extra[root / "RACE-TEMPLATE.md"] = files_t["RACE-TEMPLATE.md"]
    files = {root / "system.env": SYSTEM_ENV, root / "run.env": run_env,
             **{root / k: v for k, v in custom.items()}, **extra}
    existing = [p for p in files if p.exists()]
    if existing and not force:
        raise DrlocalError(
            f"{root}: already has {', '.join(str(p.relative_to(root)) for p in existing)}.",
            hint="use another folder, or --force to overwrite these files.",
        )
    for p, text in files.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return list(files)


@dataclass
class Job:
    """Everything a command needs from a working folder."""

    root: Path
    run: RunConfig
    metadata: ModelMetadata
    hyperparameters: Hyperparameters
    reward_path: Path
    metadata_path: Path
    hyperparameters_path: Path
    warnings: list[str] = field(default_factory=list)
    #: the folder of the local custom files: <root>/custom_files, or experiments/<name>/custom_files
    custom_files_dir: Path = None  # type: ignore[assignment]  # set in __post_init__
    #: the run config file: run.env, experiments/<name>/run.env or the --config file (it may not exist)
    run_config_file: Path = None  # type: ignore[assignment]  # set in __post_init__
    #: DRfC's per-worker files worker-2.env, worker-3.env, … next to the run config, by number (not read yet)
    worker_env_files: list[Path] = field(default_factory=list)
    #: the env files actually read, in order (system.env, then the run config)
    config_files: list[Path] = field(default_factory=list)
    #: the bucket (local disk, DRfC's MinIO or S3) and drlocal's working copy of it
    store: StoreChoice | None = None
    #: what `run` was built from (the env files' values, the environment, the caller's overrides): the
    #: per-worker run configs of multi-config training are built from them (drlocal.config.workers)
    env_values: dict[str, EnvValue] = field(default_factory=dict)
    environ: dict[str, str] = field(default_factory=dict)
    env_overrides: dict[str, str | EnvValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.custom_files_dir is None:
            self.custom_files_dir = self.root / "custom_files"
        if self.run_config_file is None:
            self.run_config_file = self.root / "run.env"

    @property
    def experiment(self) -> str | None:
        """DRfC's experiment name (`-e` / DR_EXPERIMENT_NAME), or None."""
        return self.run.experiment_name

    @property
    def origins(self) -> dict[str, str]:
        """DR_* name -> where its value came from: "run.env:12", "environment", "default", …"""
        return self.run.origins

    @property
    def data_root(self) -> Path:
        """The bucket's folder on this machine: `data/<bucket>/` (local disk), `data/minio/<bucket>/`, or the
        working copy of a MinIO/S3 bucket (`data/s3-cache/<host>/<bucket>/`)."""
        if self.store is not None:
            return self.store.local_root
        return self.root / "data" / self.run.bucket

    def model_root(self, prefix: str | None = None) -> Path:
        return self.data_root / (prefix or self.run.model_prefix)


def _custom_files(root: Path, run: RunConfig, store: StoreChoice, custom_dir: Path,
                  warnings: list[str], strict: bool = True) -> tuple[Path, Path, Path]:
    """(model_metadata, hyperparameters, reward function) paths, resolved as DRfC resolves the *_KEY settings.

    With a DRfC store (MinIO, S3, or data/minio) the keys are objects in the bucket: DRfC's trainer reads
    the bucket copy (`dr-upload-custom-files` puts it there), so drlocal does too, and says so when the
    local custom_files/ differ. On drlocal's local disk a key under DR_LOCAL_S3_CUSTOM_FILES_PREFIX is the
    local custom_files/ folder (or the experiment's); other keys are looked up in the folder, then in the
    bucket folder. A key that is nowhere is an error naming every place looked in: no silent fallback.
    `strict=False` (commands that only move files) takes the local copy of a missing bucket file, saying so.
    """
    prefix = run.custom_files_prefix.strip("/") + "/"
    paths = []
    missing = []
    for key in (run.model_metadata_key, run.hyperparameters_key, run.reward_key):
        key = key.strip("/")
        local_copy = custom_dir / key[len(prefix):] if key.startswith(prefix) else None
        if store.is_drfc:
            path = store.local_root / key
            if store.remote is not None:
                from drlocal.store.objects import ObjectMissing

                try:
                    store.remote.download(key, path)
                except ObjectMissing:
                    path.unlink(missing_ok=True)
            if not path.is_file() and not strict and local_copy is not None and local_copy.is_file():
                warnings.append(f"{store.url(key)} does not exist; using {local_copy}")
                path = local_copy
            elif not path.is_file():
                missing.append(f"{store.url(key)}")
            elif local_copy is not None and local_copy.is_file() and local_copy.read_bytes() != path.read_bytes():
                warnings.append(f"{local_copy} differs from the bucket copy {store.url(key)}: drlocal trains the "
                                "bucket copy, as DRfC does (`drlocal custom-files upload` = dr-upload-custom-files)")
            paths.append(path)
            continue
        candidates = [local_copy] if local_copy is not None else [root / key, store.local_root / key]
        found = next((c for c in candidates if c is not None and c.is_file()), None)
        if found is None:
            missing.append(" or ".join(str(c) for c in candidates if c is not None))
            found = candidates[0]
        paths.append(found)  # type: ignore[arg-type]
    if missing:
        fix = ("upload them: `drlocal custom-files upload` (DRfC: dr-upload-custom-files)" if store.is_drfc else
               "create them (`drlocal init DIR` writes DRfC's defaults) or fix the DR_LOCAL_S3_*_KEY settings")
        raise DrlocalError("custom files not found (DR_LOCAL_S3_MODEL_METADATA_KEY, _HYPERPARAMETERS_KEY, "
                           "_REWARD_KEY): " + ", ".join(missing) + ".", hint=fix)
    return paths[0], paths[1], paths[2]


def _experiment_name(
    experiment: str | None, environ: Mapping[str, str], system: dict[str, EnvValue],
) -> EnvValue | None:
    """The experiment name and where it came from, by DRfC's precedence: `-e`, the environment, system.env."""
    if experiment:
        return EnvValue(experiment, "--experiment", 0)
    if environ.get("DR_EXPERIMENT_NAME", "").strip():
        return EnvValue(environ["DR_EXPERIMENT_NAME"].strip(), "environment", 0)
    ev = system.get("DR_EXPERIMENT_NAME")
    if ev is not None and ev.value.strip():
        return EnvValue(ev.value.strip(), ev.file, ev.line)
    return None


def _experiment_dir(root: Path, name: str, origin: str) -> Path:
    """experiments/<name>/, with DRfC's checks (the folders must exist) as one clear error each."""
    said = f"experiment {name!r} (from {origin})"
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise DrlocalError(f"{said}: not a folder name.", hint="give the name of a folder under experiments/.")
    experiments = root / "experiments"
    if not experiments.is_dir():
        raise DrlocalError(
            f"{said}: {experiments} does not exist.",
            hint=f"create {experiments / name}/ with its own run.env (and custom_files/), "
                 "or unset DR_EXPERIMENT_NAME / drop --experiment.",
        )
    folder = experiments / name
    if not folder.is_dir():
        have = sorted(p.name for p in experiments.iterdir() if p.is_dir())
        raise DrlocalError(
            f"{said}: {folder} does not exist" + (f" (experiments: {', '.join(have)})." if have else "."),
            hint=f"create it (e.g. copy run.env and custom_files/ into {folder}/), or choose another experiment.",
        )
    if not (folder / "run.env").is_file():
        raise DrlocalError(
            f"{said}: {folder / 'run.env'} does not exist.",
            hint=f"every experiment has its own run.env: copy one into {folder}/.",
        )
    return folder


def _config_file(root: Path, config: Path) -> Path:
    """The --config file: as given (absolute or relative to the current folder), else relative to the folder."""
    for candidate in (config, root / config) if not config.is_absolute() else (config,):
        if candidate.is_file():
            return candidate
    raise DrlocalError(
        f"{config}: config file not found" + ("." if config.is_absolute() else f" (looked in . and {root})."),
        hint="give the path of a run.env-style file.",
    )


def _worker_files(folder: Path) -> list[Path]:
    """worker-2.env, worker-3.env, … in `folder`, sorted by number (DRfC reads them for workers 2..N)."""
    found = []
    for p in folder.glob("worker-*.env"):
        m = re.fullmatch(r"worker-(\d+)\.env", p.name)
        if m and int(m.group(1)) >= 2 and p.is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


@dataclass
class _Sources:
    """Which env files a job reads, and what that choice needs to say."""

    run_file: Path
    custom_files_dir: Path
    worker_files: list[Path]
    forced: dict[str, EnvValue]
    warnings: list[str]


def _choose_sources(
    root: Path, environ: Mapping[str, str], system: dict[str, EnvValue], experiment: str | None, config: Path | None,
) -> _Sources:
    """DRfC's activate.sh: an experiment's run.env, else a given config file, else run.env; system.env always."""
    warnings: list[str] = []
    chosen = _experiment_name(experiment, environ, system)
    if config is not None and experiment:
        raise DrlocalError(
            f"both --experiment {experiment} and --config {config} name the run config.", hint="give one of them."
        )
    if config is not None:
        if chosen:
            warnings.append(f"DR_EXPERIMENT_NAME={chosen.value} ({chosen.where}) is not used: --config {config} names "
                            "the run config (DRfC's activate.sh would load the experiment instead)")
        run_file = _config_file(root, config)
        return _Sources(run_file, root / "custom_files", _worker_files(root),
                        {"DR_EXPERIMENT_NAME": EnvValue("", "--config", 0)}, warnings)
    if chosen:
        folder = _experiment_dir(root, chosen.value, chosen.where)
        forced = {"DR_EXPERIMENT_NAME": chosen}
        return _Sources(folder / "run.env", folder / "custom_files", _worker_files(folder), forced, warnings)
    run_file = root / "run.env"
    shell_config = environ.get("DR_CONFIG", "").strip()
    if shell_config:  # `source bin/activate.sh other.env` in this very folder
        other = Path(shell_config)
        if root.resolve() in other.resolve().parents and other.resolve() != run_file.resolve():
            warnings.append(f"DR_CONFIG={other} in the environment (set by DRfC's activate.sh) is not read: drlocal "
                            f"reads {run_file}; pass --config {other} to use that file")
    return _Sources(run_file, root / "custom_files", _worker_files(root), {}, warnings)


def load_job(
    path: str | Path = ".",
    environ: Mapping[str, str] | None = None,
    experiment: str | None = None,
    config: Path | None = None,
    overrides: Mapping[str, str] | None = None,
    strict_custom_files: bool = True,
) -> Job:
    """Read a working folder: env files (+ environment), model metadata, hyperparameters.

    The env files are chosen as DRfC's activate.sh does: system.env from the folder, then the run
    config: experiments/<name>/run.env when an experiment is selected (`experiment`, else
    DR_EXPERIMENT_NAME in the environment, else in system.env), else the `config` file, else
    run.env. File values win over the environment (`environ`, default os.environ), as DRfC
    re-exports them before every command; `overrides` (DR_* name -> value) win over both.
    """
    root = Path(path)
    if not root.is_dir():
        raise DrlocalError(f"{root}: no such folder.", hint="create one with `drlocal init DIR`.")
    environ = dict(os.environ) if environ is None else environ
    system_env = root / "system.env"
    problems: list[str] = []  # report every invalid file and value at once
    try:
        system = read_env_files(system_env, environ=environ)
    except DrlocalError as exc:
        problems.append(Exception.__str__(exc))
        system = {}
    src = _choose_sources(root, environ, system, experiment, Path(config) if config is not None else None)
    env_files = [system_env, src.run_file]
    if not any(p.exists() for p in env_files) and not src.custom_files_dir.is_dir():
        raise DrlocalError(
            f"{root}: not a drlocal/DRfC folder (no run.env, system.env or custom_files/).",
            hint=f"run `drlocal init {root}` to create one, or pass the folder with --dir.",
        )
    config_files = [p for p in env_files if p.is_file()]
    forced: dict[str, str | EnvValue] = {**src.forced, **(overrides or {})}
    values: dict[str, EnvValue] = system
    try:
        values = parse_env_file(src.run_file, system, environ) if src.run_file.is_file() else system
        run, warnings = build_run_config(values, environ, overrides=forced, base=root)
        warnings = src.warnings + warnings
    except DrlocalError as exc:
        problems.append(Exception.__str__(exc))
        run, warnings = RunConfig(), list(src.warnings)
    if problems:
        raise DrlocalError("\n".join(problems), hint="fix the values in run.env / system.env.")
    from drlocal.store.select import open_store

    store = open_store(root, run)
    md_path, hp_path, rw_path = _custom_files(root, run, store, src.custom_files_dir, warnings,
                                              strict_custom_files)
    metadata = hyper = None
    try:
        metadata = load_model_metadata(md_path)
    except DrlocalError as exc:
        problems.append(Exception.__str__(exc))
    try:
        hyper = load_hyperparameters(hp_path)
    except DrlocalError as exc:
        problems.append(Exception.__str__(exc))
    if not rw_path.is_file():
        problems.append(f"{rw_path}: reward function file not found.")
    if problems or metadata is None or hyper is None:
        raise DrlocalError("\n".join(problems), hint="fix the files above; `drlocal init DIR` writes valid defaults.")
    return Job(root, run, metadata, hyper, rw_path, md_path, hp_path, warnings + hyper.warnings,
               custom_files_dir=src.custom_files_dir, run_config_file=src.run_file,
               worker_env_files=src.worker_files, config_files=config_files, store=store, env_values=values,
               environ=dict(environ), env_overrides=forced)


def _bump(prefix: str, delimiter: str = "-") -> str:
    """rl-deepracer-sagemaker -> rl-deepracer-sagemaker-1, my-model-3 -> my-model-4.

    DRfC's awk/bc rule does the same for names ending in a number; for other names it replaces
    the last word with 1 (rl-deepracer-sagemaker -> rl-deepracer-1), which drlocal does not copy.
    """
    head, sep, tail = prefix.rpartition(delimiter)
    if sep and tail.isdigit():
        return f"{head}{delimiter}{int(tail) + 1}"
    return f"{prefix}{delimiter}1"


def set_env_values(path: Path, values: dict[str, str]) -> None:
    """Rewrite KEY=VALUE lines of an env file in place (appending missing keys), keeping everything else."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    seen = set()
    out = []
    for line in lines:
        key = line.split("=", 1)[0].strip().removeprefix("export ").strip() if "=" in line else None
        if key in values and not line.lstrip().startswith("#"):
            out.append(f"{key}={values[key]}")
            seen.add(key)
        else:
            out.append(line)
    out += [f"{k}={v}" for k, v in values.items() if k not in seen]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def increment_run_env(job: Job, checkpoint: str = "last", *, new_prefix: str | None = None, delimiter: str = "-",
                      wipe: bool = False) -> tuple[str, str]:
    """DRfC's dr-increment-training: the current prefix becomes the pretrained one, a new prefix is chosen.

    Edits the run config in use (run.env, the experiment's or the --config file), as DRfC edits $DR_CONFIG.
    """
    from drlocal.store.local import ModelStore
    from drlocal.store.select import store_of

    bucket = store_of(job)
    old = job.run.model_prefix
    ModelStore(bucket.pull(old, ["model/*"])).resolve_checkpoint(checkpoint)  # fails clearly if nothing is trained
    new = new_prefix or _bump(old, delimiter)
    if bucket.prefix_objects(new):
        if wipe:
            bucket.wipe(new)
        elif new_prefix:
            raise DrlocalError(f"{bucket.url(new)} exists already.", hint="pick another name, or --wipe it.")
        else:
            while bucket.prefix_objects(new):
                new = _bump(new, delimiter)
    set_env_values(Path(getattr(job, "run_config_file", None) or job.root / "run.env"), {
        "DR_LOCAL_S3_PRETRAINED": "True",
        "DR_LOCAL_S3_PRETRAINED_PREFIX": old,
        "DR_LOCAL_S3_PRETRAINED_CHECKPOINT": checkpoint,
        "DR_LOCAL_S3_MODEL_PREFIX": new,
    })
    return old, new


def increment_upload_prefix(job: Job, delimiter: str = "-") -> tuple[str, str]:
    """DRfC's dr-increment-upload-model: bump DR_UPLOAD_S3_PREFIX in the run config in use."""
    old = job.run.upload_prefix or f"{job.run.model_prefix}"
    new = _bump(old, delimiter)
    set_env_values(Path(getattr(job, "run_config_file", None) or job.root / "run.env"), {"DR_UPLOAD_S3_PREFIX": new})
    job.run.upload_prefix = new
    return old, new
