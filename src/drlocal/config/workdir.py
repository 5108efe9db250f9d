"""A DRfC-style working folder: `run.env`, `system.env`, `custom_files/…`, and `data/<bucket>/<prefix>/`.

`drlocal init DIR` writes one with DRfC's defaults; every other command reads one (the current
directory by default), so an existing DRfC folder trains without edits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from drlocal.config.envfile import read_env_files
from drlocal.config.hyperparameters import DRFC_HYPERPARAMETERS, Hyperparameters, load_hyperparameters
from drlocal.config.model_metadata import DRFC_DEFAULT, ModelMetadata, load_model_metadata
from drlocal.config.run import RunConfig, build_run_config
from drlocal.errors import DrlocalError
from drlocal.sim.reward import DEFAULT_REWARD_SOURCE

SYSTEM_ENV = """\
# drlocal reads this DRfC file; Docker/GPU/viewer settings are accepted and ignored.
DR_CLOUD=local
DR_LOCAL_S3_BUCKET=bucket
DR_UPLOAD_S3_BUCKET=not-defined
DR_WORKERS=1
DR_DOCKER_STYLE=compose
"""

RUN_ENV = """\
# Run settings, DRfC names and defaults (defaults/template-run.env).
DR_RUN_ID=0
DR_WORLD_NAME=reinvent_base
DR_RACE_TYPE=TIME_TRIAL
DR_CAR_NAME=FastCar
DR_EVAL_NUMBER_OF_TRIALS=3
DR_EVAL_IS_CONTINUOUS=True
DR_EVAL_MAX_RESETS=100
DR_EVAL_OFF_TRACK_PENALTY=5.0
DR_EVAL_COLLISION_PENALTY=5.0
DR_EVAL_CHECKPOINT=last
DR_EVAL_REVERSE_DIRECTION=False
DR_TRAIN_CHANGE_START_POSITION=True
DR_TRAIN_REVERSE_DIRECTION=False
DR_TRAIN_ALTERNATE_DRIVING_DIRECTION=False
DR_TRAIN_START_POSITION_OFFSET=0.0
DR_TRAIN_ROUND_ROBIN_ADVANCE_DIST=0.05
DR_TRAIN_MIN_EVAL_TRIALS=5
DR_TRAIN_BEST_MODEL_METRIC=progress
#DR_TRAIN_MAX_STEPS_PER_ITERATION=10000
DR_LOCAL_S3_MODEL_PREFIX=rl-deepracer-sagemaker
DR_LOCAL_S3_PRETRAINED=False
DR_LOCAL_S3_PRETRAINED_PREFIX=rl-sagemaker-pretrained
DR_LOCAL_S3_PRETRAINED_CHECKPOINT=last
DR_LOCAL_S3_CUSTOM_FILES_PREFIX=custom_files
DR_LOCAL_S3_MODEL_METADATA_KEY=$DR_LOCAL_S3_CUSTOM_FILES_PREFIX/model_metadata.json
DR_LOCAL_S3_HYPERPARAMETERS_KEY=$DR_LOCAL_S3_CUSTOM_FILES_PREFIX/hyperparameters.json
DR_LOCAL_S3_REWARD_KEY=$DR_LOCAL_S3_CUSTOM_FILES_PREFIX/reward_function.py
DR_UPLOAD_S3_PREFIX=$DR_LOCAL_S3_MODEL_PREFIX-1
"""


def init_workdir(path: str | Path, *, force: bool = False) -> list[Path]:
    """Write DRfC's default folder layout into `path`; refuses to overwrite unless `force`."""
    root = Path(path)
    files = {
        root / "system.env": SYSTEM_ENV,
        root / "run.env": RUN_ENV,
        root / "custom_files" / "reward_function.py": DEFAULT_REWARD_SOURCE,
        root / "custom_files" / "model_metadata.json": json.dumps(DRFC_DEFAULT, indent=4) + "\n",
        root / "custom_files" / "hyperparameters.json": json.dumps(DRFC_HYPERPARAMETERS, indent=4) + "\n",
    }
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

    @property
    def data_root(self) -> Path:
        """`data/<bucket>/` under the folder: the local stand-in for the S3 bucket."""
        return self.root / "data" / self.run.bucket

    def model_root(self, prefix: str | None = None) -> Path:
        return self.data_root / (prefix or self.run.model_prefix)


def _custom_file(root: Path, key: str, default_name: str) -> Path:
    direct = root / key
    if direct.exists():
        return direct
    return root / "custom_files" / (Path(key).name or default_name)


def load_job(path: str | Path = ".", environ: dict[str, str] | None = None) -> Job:
    """Read a working folder: env files (+ environment overrides), model metadata, hyperparameters."""
    root = Path(path)
    if not root.is_dir():
        raise DrlocalError(f"{root}: no such folder.", hint="create one with `drlocal init DIR`.")
    env_files = [root / "system.env", root / "run.env"]
    if not any(p.exists() for p in env_files) and not (root / "custom_files").is_dir():
        raise DrlocalError(
            f"{root}: not a drlocal/DRfC folder (no run.env, system.env or custom_files/).",
            hint=f"run `drlocal init {root}` to create one, or pass the folder with --dir.",
        )
    problems: list[str] = []  # report every invalid file and value at once
    try:
        run, warnings = build_run_config(read_env_files(*env_files), environ)
    except DrlocalError as exc:
        problems.append(Exception.__str__(exc))
        run, warnings = RunConfig(), []
    md_path = _custom_file(root, run.model_metadata_key, "model_metadata.json")
    hp_path = _custom_file(root, run.hyperparameters_key, "hyperparameters.json")
    rw_path = _custom_file(root, run.reward_key, "reward_function.py")
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
    return Job(root, run, metadata, hyper, rw_path, md_path, hp_path, warnings)


def _bump(prefix: str) -> str:
    """rl-deepracer-sagemaker -> rl-deepracer-sagemaker-1, my-model-3 -> my-model-4 (DRfC's rule)."""
    import re

    m = re.match(r"^(.*?)-(\d+)$", prefix)
    return f"{m.group(1)}-{int(m.group(2)) + 1}" if m else f"{prefix}-1"


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


def increment_run_env(job: Job, checkpoint: str = "last") -> tuple[str, str]:
    """DRfC's dr-increment-training: current prefix becomes pretrained, a new prefix is chosen."""
    from drlocal.store.local import ModelStore

    old = job.run.model_prefix
    ModelStore(job.model_root()).resolve_checkpoint(checkpoint)  # fails clearly if nothing is trained
    new = _bump(old)
    while job.model_root(new).exists():
        new = _bump(new)
    set_env_values(job.root / "run.env", {
        "DR_LOCAL_S3_PRETRAINED": "True",
        "DR_LOCAL_S3_PRETRAINED_PREFIX": old,
        "DR_LOCAL_S3_PRETRAINED_CHECKPOINT": checkpoint,
        "DR_LOCAL_S3_MODEL_PREFIX": new,
    })
    return old, new
