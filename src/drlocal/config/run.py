"""DRfC's `run.env` + `system.env` variables that mean something to drlocal, validated together.

Values come from the files, then from environment variables of the same name (which override,
as in DRfC). Every invalid value is reported at once with file:line, key, value and the allowed
range. Infrastructure variables (Docker, GPUs, viewers, Kinesis, …) are accepted and ignored
with one warning; unknown `DR_*` names get a "did you mean" warning.
"""

from __future__ import annotations

import difflib
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from drlocal.config.envfile import EnvValue
from drlocal.errors import DrlocalError

#: DR_* variable -> RunConfig field
VARIABLES: dict[str, str] = {
    "DR_WORLD_NAME": "world_name",
    "DR_RACE_TYPE": "race_type",
    "DR_RUN_ID": "run_id",
    "DR_CAR_NAME": "car_name",
    "DR_TRAIN_CHANGE_START_POSITION": "change_start_position",
    "DR_TRAIN_REVERSE_DIRECTION": "reverse_direction",
    "DR_TRAIN_ALTERNATE_DRIVING_DIRECTION": "alternate_driving_direction",
    "DR_TRAIN_START_POSITION_OFFSET": "start_position_offset",
    "DR_TRAIN_ROUND_ROBIN_ADVANCE_DIST": "round_robin_advance_dist",
    "DR_TRAIN_MIN_EVAL_TRIALS": "min_eval_trials",
    "DR_TRAIN_BEST_MODEL_METRIC": "best_model_metric",
    "DR_TRAIN_MAX_STEPS_PER_ITERATION": "max_steps_per_iteration",
    "DR_EVAL_NUMBER_OF_TRIALS": "eval_number_of_trials",
    "DR_EVAL_IS_CONTINUOUS": "eval_is_continuous",
    "DR_EVAL_MAX_RESETS": "eval_max_resets",
    "DR_EVAL_OFF_TRACK_PENALTY": "eval_off_track_penalty",
    "DR_EVAL_COLLISION_PENALTY": "eval_collision_penalty",
    "DR_EVAL_CHECKPOINT": "eval_checkpoint",
    "DR_EVAL_REVERSE_DIRECTION": "eval_reverse_direction",
    "DR_LOCAL_S3_BUCKET": "bucket",
    "DR_LOCAL_S3_MODEL_PREFIX": "model_prefix",
    "DR_LOCAL_S3_PRETRAINED": "pretrained",
    "DR_LOCAL_S3_PRETRAINED_PREFIX": "pretrained_prefix",
    "DR_LOCAL_S3_PRETRAINED_CHECKPOINT": "pretrained_checkpoint",
    "DR_LOCAL_S3_CUSTOM_FILES_PREFIX": "custom_files_prefix",
    "DR_LOCAL_S3_MODEL_METADATA_KEY": "model_metadata_key",
    "DR_LOCAL_S3_HYPERPARAMETERS_KEY": "hyperparameters_key",
    "DR_LOCAL_S3_REWARD_KEY": "reward_key",
    "DR_UPLOAD_S3_PREFIX": "upload_prefix",
}
#: Variables that only configure DRfC's infrastructure: accepted, warned about once, ignored.
IGNORED_PREFIXES = (
    "DR_DOCKER", "DR_SIMAPP", "DR_ROBOMAKER", "DR_SAGEMAKER", "DR_MINIO", "DR_ANALYSIS", "DR_GUI", "DR_KINESIS",
    "DR_CAMERA", "DR_ENABLE_EXTRA_KVS", "DR_HOST_X", "DR_DISPLAY", "DR_WEBVIEWER", "DR_CLOUD_WATCH", "DR_TELEGRAF",
    "DR_GAZEBO", "DR_TRAIN_RTF", "DR_EVAL_RTF", "DR_CAR_COLOR", "DR_CAR_BODY_SHELL", "DR_DISPLAY_NAME",
    "DR_RACER_NAME", "DR_CLOUD", "DR_AWS_APP_REGION", "DR_UPLOAD_S3_PROFILE", "DR_UPLOAD_S3_BUCKET",
    "DR_LOCAL_S3_PROFILE", "DR_QUIET", "DR_WORKERS", "DR_REMOTE_MINIO", "DR_EXPERIMENT", "DR_DROA",
    "DR_EVAL_SAVE_MP4", "DR_EVAL_OPP", "DR_EVAL_DEBUG_REWARD", "DR_EVAL_RESET_BEHIND_DIST", "DR_OA_", "DR_H2B_",
    "DR_TRAIN_MULTI_CONFIG", "DR_ENABLE_DOMAIN_RANDOMIZATION", "DR_LOCAL_S3_TRAINING_PARAMS_FILE",
    "DR_LOCAL_S3_EVAL_PARAMS_FILE", "DR_LOCAL_S3_METRICS_PREFIX", "DR_UPLOAD_S3_ROLE", "DR_DIR", "DR_CONFIG",
    "DR_LOCAL_S3_ENDPOINT_URL", "DR_LOCAL_S3_AUTH_MODE", "DR_TRAIN_COMPOSE_FILE", "DR_EVAL_COMPOSE_FILE",
    "DR_REGULAR_UPLOAD", "DR_REGULAR_PHYSICAL", "DR_CONTINUE_ON_SPOT", "DR_IMPORT_MODEL",
)


def _bool(v: Any) -> Any:
    if isinstance(v, str):
        low = v.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no", ""):
            return False
    return v


class RunConfig(BaseModel):
    """The run settings drlocal uses (DRfC names in VARIABLES); defaults are DRfC's templates."""

    model_config = ConfigDict(extra="forbid")
    world_name: str = "reinvent_base"
    race_type: Literal["TIME_TRIAL"] = "TIME_TRIAL"
    run_id: int = 0
    car_name: str = "FastCar"
    change_start_position: bool = True
    reverse_direction: bool = False
    alternate_driving_direction: bool = False
    start_position_offset: float = Field(0.0, ge=0.0, lt=1.0)
    round_robin_advance_dist: float = Field(0.05, gt=0.0, le=1.0)
    min_eval_trials: int = Field(5, ge=0, le=100)
    best_model_metric: Literal["progress", "reward", "laptime"] = "progress"
    max_steps_per_iteration: int | None = Field(None, ge=1)
    eval_number_of_trials: int = Field(3, ge=1, le=1000)
    eval_is_continuous: bool = True
    eval_max_resets: int = Field(100, ge=0)
    eval_off_track_penalty: float = Field(5.0, ge=0.0, le=60.0)
    eval_collision_penalty: float = Field(5.0, ge=0.0, le=60.0)
    eval_checkpoint: Literal["best", "last"] = "last"
    eval_reverse_direction: bool = False
    bucket: str = "bucket"
    model_prefix: str = "rl-deepracer-sagemaker"
    pretrained: bool = False
    pretrained_prefix: str = "rl-sagemaker-pretrained"
    pretrained_checkpoint: str = "last"
    custom_files_prefix: str = "custom_files"
    model_metadata_key: str = "custom_files/model_metadata.json"
    hyperparameters_key: str = "custom_files/hyperparameters.json"
    reward_key: str = "custom_files/reward_function.py"
    upload_prefix: str = ""

    @field_validator(
        "change_start_position", "reverse_direction", "alternate_driving_direction", "eval_is_continuous",
        "eval_reverse_direction", "pretrained", mode="before",
    )
    @classmethod
    def _booleans(cls, v: Any) -> Any:
        return _bool(v)

    @field_validator("best_model_metric", "eval_checkpoint", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("race_type", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v

    @field_validator("max_steps_per_iteration", mode="before")
    @classmethod
    def _empty_none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v


def build_run_config(values: dict[str, EnvValue], environ: dict[str, str] | None = None) -> tuple[RunConfig, list[str]]:
    """RunConfig from env-file values overridden by environment variables; returns (config, warnings)."""
    environ = dict(os.environ) if environ is None else environ
    merged: dict[str, EnvValue] = dict(values)
    for k, v in environ.items():
        if k.startswith("DR_"):
            merged[k] = EnvValue(v, "environment", 0)
    data: dict[str, Any] = {}
    origin: dict[str, EnvValue] = {}
    ignored: list[str] = []
    unknown: list[str] = []
    for key, ev in merged.items():
        if key in VARIABLES:
            data[VARIABLES[key]] = ev.value
            origin[VARIABLES[key]] = ev
        elif key.startswith("DR_"):
            (ignored if key.startswith(IGNORED_PREFIXES) else unknown).append(key)
    warnings: list[str] = []
    if ignored:
        warnings.append(f"ignored (infrastructure that drlocal does not need): {', '.join(sorted(ignored))}")
    for key in sorted(unknown):
        close = difflib.get_close_matches(key, list(VARIABLES), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"unknown variable {key} ({merged[key].where}){hint}")
    try:
        return RunConfig.model_validate(data), warnings
    except ValidationError as err:
        field_to_var = {f: k for k, f in VARIABLES.items()}
        lines = [f"{err.error_count()} invalid setting(s):"]
        for e in err.errors():
            fname = str(e["loc"][0])
            ev = origin.get(fname)
            where = ev.where if ev else "?"
            lines.append(f"  - {where}: {field_to_var.get(fname, fname)}={e.get('input')!r}: {e['msg']}")
        raise DrlocalError("\n".join(lines), hint="fix the values in run.env / system.env.") from None
