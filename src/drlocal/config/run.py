"""DRfC's `run.env` + `system.env` variables that mean something to drlocal, validated together.

Precedence is DRfC's: before every command DRfC re-exports the values of its env files
(`dr-update-env`), so a value in a file wins over a stale export in the shell, and a variable
that no file sets still comes from the environment. drlocal warns when an environment value is
overridden that way. Every invalid value is reported at once with file:line, key, value and the
allowed range. Where each value came from (file:line, environment, default) is kept in
`RunConfig.origins`.

Variables that are not honoured fall in these groups:

* infrastructure (Docker, GPUs, viewers, Kinesis, images, ports, …): one "ignored" warning
  listing those set to something other than DRfC's template value;
* settings that change results but are not supported yet: one loud warning each, only when set
  to a non-default value;
* settings of the race types other than DR_RACE_TYPE (`DR_OA_*` object avoidance, `DR_H2B_*` head
  to bot, `DR_EVAL_OPP_*` head to model): DRfC reads them only for their race type, so drlocal does
  not validate them either; one warning per race type lists those set to something other than
  DRfC's template value;
* unknown `DR_*` names: a warning with a "did you mean" suggestion.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from drlocal.config.envfile import EnvValue
from drlocal.errors import DrlocalError
from drlocal.sim.race import (
    HEAD_TO_BOT,
    HEAD_TO_MODEL,
    OBJECT_AVOIDANCE,
    OBSTACLE_TYPES,
    TIME_TRIAL,
    RaceOptions,
    parse_object_positions,
)

#: DR_* variable -> RunConfig field
VARIABLES: dict[str, str] = {
    "DR_WORLD_NAME": "world_name",
    "DR_RACE_TYPE": "race_type",
    "DR_RUN_ID": "run_id",
    "DR_CAR_NAME": "car_name",
    "DR_CAR_BODY_SHELL_TYPE": "body_shell_type",
    "DR_CAR_COLOR": "car_color",
    "DR_DISPLAY_NAME": "display_name",
    "DR_RACER_NAME": "racer_name",
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
    "DR_EVAL_SAVE_MP4": "eval_save_mp4",
    "DR_WEBVIEWER_PORT": "webviewer_port",
    "DR_ENABLE_EXTRA_KVS_OVERLAY": "enable_extra_kvs_overlay",
    "DR_EVAL_RESET_BEHIND_DIST": "eval_reset_behind_dist",
    # object avoidance (DR_RACE_TYPE=OBJECT_AVOIDANCE)
    "DR_OA_NUMBER_OF_OBSTACLES": "oa_number_of_obstacles",
    "DR_OA_MIN_DISTANCE_BETWEEN_OBSTACLES": "oa_min_distance_between_obstacles",
    "DR_OA_RANDOMIZE_OBSTACLE_LOCATIONS": "oa_randomize_obstacle_locations",
    "DR_OA_IS_OBSTACLE_BOT_CAR": "oa_is_obstacle_bot_car",
    "DR_OA_OBSTACLE_TYPE": "oa_obstacle_type",
    "DR_OA_OBJECT_POSITIONS": "oa_object_positions",
    # head to bot (DR_RACE_TYPE=HEAD_TO_BOT)
    "DR_H2B_IS_LANE_CHANGE": "h2b_is_lane_change",
    "DR_H2B_LOWER_LANE_CHANGE_TIME": "h2b_lower_lane_change_time",
    "DR_H2B_UPPER_LANE_CHANGE_TIME": "h2b_upper_lane_change_time",
    "DR_H2B_LANE_CHANGE_DISTANCE": "h2b_lane_change_distance",
    "DR_H2B_NUMBER_OF_BOT_CARS": "h2b_number_of_bot_cars",
    "DR_H2B_MIN_DISTANCE_BETWEEN_BOT_CARS": "h2b_min_distance_between_bot_cars",
    "DR_H2B_RANDOMIZE_BOT_CAR_LOCATIONS": "h2b_randomize_bot_car_locations",
    "DR_H2B_BOT_CAR_SPEED": "h2b_bot_car_speed",
    "DR_H2B_BOT_CAR_PENALTY": "h2b_bot_car_penalty",
    # head to model, evaluation only (DR_RACE_TYPE=HEAD_TO_MODEL): the opponent
    "DR_EVAL_OPP_S3_MODEL_PREFIX": "eval_opp_s3_model_prefix",
    "DR_EVAL_OPP_S3_METRICS_PREFIX": "eval_opp_metrics_prefix",
    "DR_EVAL_OPP_CAR_BODY_SHELL_TYPE": "eval_opp_car_body_shell_type",
    "DR_EVAL_OPP_CAR_NAME": "eval_opp_car_name",
    "DR_EVAL_OPP_DISPLAY_NAME": "eval_opp_display_name",
    "DR_EVAL_OPP_RACER_NAME": "eval_opp_racer_name",
    "DR_LOCAL_S3_BUCKET": "bucket",
    "DR_LOCAL_S3_MODEL_PREFIX": "model_prefix",
    "DR_LOCAL_S3_PRETRAINED": "pretrained",
    "DR_LOCAL_S3_PRETRAINED_PREFIX": "pretrained_prefix",
    "DR_LOCAL_S3_PRETRAINED_CHECKPOINT": "pretrained_checkpoint",
    "DR_LOCAL_S3_CUSTOM_FILES_PREFIX": "custom_files_prefix",
    "DR_LOCAL_S3_MODEL_METADATA_KEY": "model_metadata_key",
    "DR_LOCAL_S3_HYPERPARAMETERS_KEY": "hyperparameters_key",
    "DR_LOCAL_S3_REWARD_KEY": "reward_key",
    "DR_LOCAL_S3_METRICS_PREFIX": "metrics_prefix",
    "DR_LOCAL_S3_TRAINING_PARAMS_FILE": "training_params_file",
    "DR_LOCAL_S3_EVAL_PARAMS_FILE": "eval_params_file",
    "DR_UPLOAD_S3_PREFIX": "upload_prefix",
    # where the bucket lives and how to reach it (system.env)
    "DR_CLOUD": "cloud",
    "DR_AWS_APP_REGION": "aws_region",
    "DR_LOCAL_S3_PROFILE": "local_s3_profile",
    "DR_UPLOAD_S3_PROFILE": "upload_s3_profile",
    "DR_UPLOAD_S3_BUCKET": "upload_bucket",
    "DR_MINIO_URL": "minio_url",
    "DR_REMOTE_MINIO_URL": "remote_minio_url",
    "DR_LOCAL_S3_ENDPOINT_URL": "local_s3_endpoint_url",
    "DR_WORKERS": "workers",
    "DR_TRAIN_MULTI_CONFIG": "train_multi_config",
    "DR_EXPERIMENT_NAME": "experiment_name",
}

#: Older names DRfC's prepare-config.py still reads when the current name is not set: old -> current.
LEGACY_NAMES: dict[str, str] = {
    "DR_CHANGE_START_POSITION": "DR_TRAIN_CHANGE_START_POSITION",
    "DR_ALTERNATE_DRIVING_DIRECTION": "DR_TRAIN_ALTERNATE_DRIVING_DIRECTION",
    "DR_COLLISION_PENALTY": "DR_EVAL_COLLISION_PENALTY",
}

#: Variables DRfC's own scripts (`source bin/activate.sh`, `dr-start-*`) export into the user's shell.
#: They are derived, not settings: accepted without a word when they come from the environment.
SHELL_EXPORTS = frozenset({
    "DR_DIR", "DR_CONFIG", "DR_LOCAL_S3_AUTH_MODE", "DR_TRAIN_COMPOSE_FILE", "DR_EVAL_COMPOSE_FILE",
    "DR_MINIO_COMPOSE_FILE", "DR_DOCKER_FILE_SEP", "DR_ROBOMAKER_TRAIN_PORT", "DR_ROBOMAKER_EVAL_PORT",
    "DR_ROBOMAKER_GUI_PORT", "DR_DOCKER_MAJOR_VERSION", "DR_LOCAL_PROFILE_ENDPOINT_URL", "DR_LOCAL_ACCESS_KEY_ID",
    "DR_LOCAL_SECRET_ACCESS_KEY", "DR_UPLOAD_PROFILE", "DR_CURRENT_PARAMS_FILE", "DR_MOUNT_DIR", "DR_VIEWER_HTML",
    "DR_NGINX_CONF",
})

#: Infrastructure that drlocal does not need (containers, images, GPUs, viewers, streams, logs, …).
INFRASTRUCTURE_PREFIXES = (
    "DR_DOCKER", "DR_SIMAPP", "DR_ROBOMAKER", "DR_SAGEMAKER", "DR_MINIO_", "DR_ANALYSIS", "DR_GUI", "DR_USE_GUI",
    "DR_KINESIS", "DR_CAMERA", "DR_ENABLE_EXTRA_KVS", "DR_HOST_X", "DR_DISPLAY", "DR_WEBVIEWER", "DR_CLOUD_WATCH",
    "DR_TELEGRAF", "DR_GAZEBO", "DR_TRAIN_RTF", "DR_EVAL_RTF", "DR_QUIET", "DR_DROA", "DR_EVAL_DEBUG_REWARD",
    "DR_UPLOAD_S3_ROLE", "DR_REGULAR_UPLOAD", "DR_REGULAR_PHYSICAL", "DR_CONTINUE_ON_SPOT", "DR_IMPORT_MODEL",
    "DR_COACH_IMAGE", *sorted(SHELL_EXPORTS),
)

#: DRfC's template values of infrastructure variables: a variable at this value is not worth a warning.
INFRASTRUCTURE_DEFAULTS: dict[str, str] = {
    "DR_GUI_ENABLE": "false", "DR_CAMERA_MAIN_ENABLE": "true", "DR_CAMERA_SUB_ENABLE": "false",
    "DR_CAMERA_KVS_ENABLE": "true", "DR_ENABLE_EXTRA_KVS_OVERLAY": "false",
    "DR_SIMAPP_SOURCE": "awsdeepracercommunity/deepracer-simapp", "DR_MINIO_IMAGE": "latest",
    "DR_ANALYSIS_IMAGE": "cpu", "DR_ROBOMAKER_MOUNT_LOGS": "false", "DR_CLOUD_WATCH_ENABLE": "false",
    "DR_HOST_X": "false", "DR_WEBVIEWER_PORT": "8100", "DR_QUIET_ACTIVATE": "false", "DR_EVAL_DEBUG_REWARD": "false",
    "DR_EVAL_RTF": "1.0", "DR_TRAIN_RTF": "1.0", "DR_TELEGRAF_PORT": "8092",
}

#: race type -> the variables that only it reads; DRfC, too, reads them only when DR_RACE_TYPE selects that race
RACE_VARIABLES: dict[str, tuple[str, ...]] = {
    OBJECT_AVOIDANCE: tuple(k for k in VARIABLES if k.startswith("DR_OA_")),
    HEAD_TO_BOT: tuple(k for k in VARIABLES if k.startswith("DR_H2B_")),
    HEAD_TO_MODEL: tuple(k for k in VARIABLES if k.startswith("DR_EVAL_OPP_")),
}
#: DRfC's template values (defaults/template-run.env) of those variables: a variable left at its template
#: value is not worth a warning when another race type is selected ("" = not in the template;
#: the display and racer names default to $DR_EVAL_OPP_CAR_NAME).
RACE_TEMPLATE: dict[str, str] = {
    "DR_OA_NUMBER_OF_OBSTACLES": "6", "DR_OA_MIN_DISTANCE_BETWEEN_OBSTACLES": "2.0",
    "DR_OA_RANDOMIZE_OBSTACLE_LOCATIONS": "False", "DR_OA_IS_OBSTACLE_BOT_CAR": "False",
    "DR_OA_OBSTACLE_TYPE": "box_obstacle", "DR_OA_OBJECT_POSITIONS": "",
    "DR_H2B_IS_LANE_CHANGE": "False", "DR_H2B_LOWER_LANE_CHANGE_TIME": "3.0", "DR_H2B_UPPER_LANE_CHANGE_TIME": "5.0",
    "DR_H2B_LANE_CHANGE_DISTANCE": "1.0", "DR_H2B_NUMBER_OF_BOT_CARS": "3",
    "DR_H2B_MIN_DISTANCE_BETWEEN_BOT_CARS": "2.0", "DR_H2B_RANDOMIZE_BOT_CAR_LOCATIONS": "False",
    "DR_H2B_BOT_CAR_SPEED": "0.2", "DR_H2B_BOT_CAR_PENALTY": "5.0",
    "DR_EVAL_OPP_S3_MODEL_PREFIX": "rl-deepracer-sagemaker", "DR_EVAL_OPP_S3_METRICS_PREFIX": "",
    "DR_EVAL_OPP_CAR_BODY_SHELL_TYPE": "deepracer", "DR_EVAL_OPP_CAR_NAME": "FasterCar",
    "DR_EVAL_OPP_DISPLAY_NAME": "", "DR_EVAL_OPP_RACER_NAME": "",
}
#: DRfC's prepare-config.py fallbacks where they differ from the template: the value the simapp gets when the
#: variable is in no file and not in the environment (a folder from `drlocal init` / DRfC's init has them all).
RACE_SCRIPT_FALLBACKS: dict[str, Any] = {
    "DR_OA_RANDOMIZE_OBSTACLE_LOCATIONS": True,  # template False
    "DR_H2B_NUMBER_OF_BOT_CARS": 0,  # template 3
    "DR_H2B_BOT_CAR_PENALTY": 2.0,  # template 5.0
}
#: Upper bounds drlocal sets on the object counts (DRfC has none; the simapp places every one on the track).
MAX_OBSTACLES = 100
MAX_BOT_CARS = 100

SECRET_MARKERS = ("SECRET", "ACCESS_KEY", "PASSWORD", "TOKEN", "CREDENTIAL")


def _bool(v: Any) -> Any:
    if isinstance(v, str):
        low = v.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no", ""):
            return False
    return v


def _truthy(value: str) -> bool:
    return _bool(value) is True


def _number_is(value: str, default: float) -> bool:
    try:
        return float(value) == default
    except ValueError:
        return False


def _set(value: str) -> bool:
    return bool(value.strip())


_CUDA = "drlocal does not read it: it trains in one process on the first visible CUDA device; choose the GPU " \
        "with CUDA_VISIBLE_DEVICES (e.g. CUDA_VISIBLE_DEVICES=1 drlocal train)"
_SIMAPP = "drlocal does not run the simapp, so changes in that folder have no effect on training"

#: Settings that change results but are not supported yet: variable -> (is it set to a non-default value?, why).
UNSUPPORTED: dict[str, tuple[Callable[[str], bool], str]] = {
    "DR_ENABLE_DOMAIN_RANDOMIZATION": (
        _truthy, "domain randomisation is not supported yet: every episode uses the same colours and lighting, "
                 "so the model is less robust on the real car"),
    "DR_SAGEMAKER_CUDA_DEVICES": (_set, _CUDA),
    "DR_ROBOMAKER_CUDA_DEVICES": (_set, _CUDA),
    "DR_ROBOMAKER_MOUNT_SIMAPP_DIR": (_set, _SIMAPP),
    "DR_ROBOMAKER_MOUNT_SCRIPTS_DIR": (_set, _SIMAPP),
}
#: Honoured variables that also get a warning when set: what drlocal does not do with them yet.
NOT_YET: dict[str, tuple[Callable[[str], bool], str]] = {}


@dataclass(frozen=True)
class Opponent:
    """The other car of a HEAD_TO_MODEL evaluation (DRfC's DR_EVAL_OPP_* settings).

    Attributes:
        prefix: the opponent model's folder in the bucket [DR_EVAL_OPP_S3_MODEL_PREFIX].
        car_name: [DR_EVAL_OPP_CAR_NAME].
        display_name, racer_name: [DR_EVAL_OPP_DISPLAY_NAME / _RACER_NAME], else the car name.
        body_shell_type: [DR_EVAL_OPP_CAR_BODY_SHELL_TYPE].
        metrics_prefix: where its evaluation metrics go [DR_EVAL_OPP_S3_METRICS_PREFIX, else <prefix>/metrics].
    """

    prefix: str
    car_name: str
    display_name: str
    racer_name: str
    body_shell_type: str
    metrics_prefix: str


def _positions(v: Any) -> Any:
    """DR_OA_OBJECT_POSITIONS "ndist,lane;ndist,lane" -> ((ndist, lane), ...), checked value by value."""
    if not isinstance(v, str):
        return v
    example = "e.g. '0.25,1;0.6,-1': semicolon-separated pairs of a track fraction in [0, 1] and a lane (-1 = " \
              "outer lane, 1 = inner lane)"
    for part in v.split(";"):
        bits = [b.strip() for b in part.strip().strip("\"'").split(",")]
        if bits == [""]:
            continue
        if len(bits) != 2:
            raise PydanticCustomError("object_positions", "'{part}' is not 'ndist,lane'; {example}",
                                      {"part": part.strip(), "example": example})
        try:
            ndist, lane = float(bits[0]), float(bits[1])
        except ValueError:
            raise PydanticCustomError("object_positions", "'{part}' is not two numbers 'ndist,lane'; {example}",
                                      {"part": part.strip(), "example": example}) from None
        if not 0.0 <= ndist <= 1.0:  # NaN too
            raise PydanticCustomError("object_positions", "ndist {ndist} in '{part}' is outside [0, 1]; {example}",
                                      {"ndist": bits[0], "part": part.strip(), "example": example})
        if not math.isfinite(lane) or not lane.is_integer():
            raise PydanticCustomError("object_positions", "lane {lane} in '{part}' is not a whole number; {example}",
                                      {"lane": bits[1], "part": part.strip(), "example": example})
    return parse_object_positions(v)


class RunConfig(BaseModel):
    """The run settings drlocal uses (DRfC names in VARIABLES); defaults are DRfC's templates.

    `origins` maps each DR_* name to where its value came from: "run.env:12" (a file and line,
    relative to the working folder), "environment", "default", or what a caller forced
    ("override", "--experiment").
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    world_name: str = "reinvent_base"
    race_type: Literal["TIME_TRIAL", "OBJECT_AVOIDANCE", "HEAD_TO_BOT", "HEAD_TO_MODEL"] = "TIME_TRIAL"
    run_id: int = 0
    car_name: str = "FastCar"
    body_shell_type: str = "deepracer"
    car_color: str = "Red"
    display_name: str = ""  # "" = car_name (the template's $DR_CAR_NAME)
    racer_name: str = ""  # "" = car_name
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
    eval_off_track_penalty: float = Field(5.0, ge=0.0)  # [s]
    eval_collision_penalty: float = Field(5.0, ge=0.0)  # [s]
    eval_checkpoint: Literal["best", "last"] = "last"
    eval_reverse_direction: bool = False
    eval_save_mp4: bool = False  # evaluation writes <prefix>/mp4/camera-{pip,45degree,topview}/0-video.mp4
    webviewer_port: int = Field(8100, ge=0, le=65535)  # `--view`: the live viewer's port (0 = any free port)
    enable_extra_kvs_overlay: bool = False  # the overlay's extra band (steering, throttle, speed, laps, progress)
    #: after a crash into an obstacle or bot the car is placed this far behind it [m] (the simapp's
    #: RESET_BEHIND_DIST, 1.0 in training where DRfC does not write it)
    eval_reset_behind_dist: float = Field(1.0, ge=0.0)
    # object avoidance: read only with race_type OBJECT_AVOIDANCE; defaults are DRfC's template values
    # (see `race_options` for what DRfC's scripts use when a variable is missing altogether)
    oa_number_of_obstacles: int = Field(6, ge=0, le=MAX_OBSTACLES)
    oa_min_distance_between_obstacles: float = Field(2.0, ge=0.0)
    oa_randomize_obstacle_locations: bool = False
    oa_is_obstacle_bot_car: bool = False
    oa_obstacle_type: Literal[OBSTACLE_TYPES] = "box_obstacle"  # type: ignore[valid-type]
    #: fixed (ndist in [0, 1], lane) pairs; when given, they replace oa_number_of_obstacles
    oa_object_positions: tuple[tuple[float, int], ...] = Field((), max_length=MAX_OBSTACLES)
    # head to bot: read only with race_type HEAD_TO_BOT
    h2b_is_lane_change: bool = False
    h2b_lower_lane_change_time: float = Field(3.0, ge=0.0)  # [s]
    h2b_upper_lane_change_time: float = Field(5.0, ge=0.0, validate_default=True)  # [s], >= the lower one
    h2b_lane_change_distance: float = Field(1.0, gt=0.0)  # [m]
    h2b_number_of_bot_cars: int = Field(3, ge=0, le=MAX_BOT_CARS)
    h2b_min_distance_between_bot_cars: float = Field(2.0, ge=0.0)  # [m]
    h2b_randomize_bot_car_locations: bool = False
    h2b_bot_car_speed: float = Field(0.2, gt=0.0)  # [m/s]
    h2b_bot_car_penalty: float = Field(5.0, ge=0.0)  # [s] the simapp's PENALTY_SECONDS
    # head to model (evaluation): the opponent, read only with race_type HEAD_TO_MODEL
    eval_opp_s3_model_prefix: str = "rl-deepracer-sagemaker"
    eval_opp_metrics_prefix: str = ""  # "" = <eval_opp_s3_model_prefix>/metrics (DRfC's default)
    eval_opp_car_body_shell_type: str = "deepracer"
    eval_opp_car_name: str = "FasterCar"
    eval_opp_display_name: str = ""  # "" = eval_opp_car_name (the template's $DR_EVAL_OPP_CAR_NAME)
    eval_opp_racer_name: str = ""  # "" = eval_opp_car_name
    bucket: str = "bucket"
    model_prefix: str = "rl-deepracer-sagemaker"
    pretrained: bool = False
    pretrained_prefix: str = "rl-sagemaker-pretrained"
    pretrained_checkpoint: str = "last"
    custom_files_prefix: str = "custom_files"
    model_metadata_key: str = "custom_files/model_metadata.json"
    hyperparameters_key: str = "custom_files/hyperparameters.json"
    reward_key: str = "custom_files/reward_function.py"
    metrics_prefix: str = ""  # "" = <model_prefix>/metrics (the template's value)
    training_params_file: str = "training_params.yaml"
    eval_params_file: str = "evaluation_params.yaml"
    upload_prefix: str = ""
    #: where the bucket lives: None = drlocal's own folder data/<bucket>/; local/azure = DRfC's MinIO,
    #: aws = S3, remote = the MinIO at remote_minio_url
    cloud: Literal["local", "azure", "aws", "remote"] | None = None
    aws_region: str = "us-east-1"
    local_s3_profile: str | None = None
    upload_s3_profile: str = "default"
    upload_bucket: str | None = None  # DRfC's init writes "not-defined" until the user sets it
    minio_url: str | None = None  # DRfC's URL of MinIO as seen from its containers
    remote_minio_url: str | None = None
    #: the bucket's S3 endpoint as seen from this machine; when unset, what DRfC's activate.sh derives
    #: from DR_CLOUD (local/azure: http://localhost:9000, remote: remote_minio_url, aws: None = AWS)
    local_s3_endpoint_url: str | None = None
    workers: int = Field(1, ge=1, le=64)
    train_multi_config: bool = False
    experiment_name: str | None = None

    _origins: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def origins(self) -> dict[str, str]:
        """DR_* name -> where its value came from ("run.env:12", "environment", "default", …)."""
        return self._origins

    @field_validator(
        "change_start_position", "reverse_direction", "alternate_driving_direction", "eval_is_continuous",
        "eval_reverse_direction", "pretrained", "eval_save_mp4", "enable_extra_kvs_overlay",
        "oa_randomize_obstacle_locations",
        "oa_is_obstacle_bot_car", "h2b_is_lane_change", "h2b_randomize_bot_car_locations", "train_multi_config",
        mode="before",
    )
    @classmethod
    def _booleans(cls, v: Any) -> Any:
        return _bool(v)

    @field_validator("best_model_metric", "eval_checkpoint", "oa_obstacle_type", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("cloud", mode="before")
    @classmethod
    def _cloud(cls, v: Any) -> Any:
        if isinstance(v, str):
            return v.strip().lower() or None
        return v

    @field_validator("race_type", mode="before")
    @classmethod
    def _race_type(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v

    @field_validator("oa_object_positions", mode="before")
    @classmethod
    def _object_positions(cls, v: Any) -> Any:
        return _positions(v)

    @field_validator("h2b_upper_lane_change_time")
    @classmethod
    def _lane_change_times(cls, v: float, info: ValidationInfo) -> float:
        lower = info.data.get("h2b_lower_lane_change_time")
        if lower is not None and lower > v:
            raise PydanticCustomError(
                "lane_change_time", "DR_H2B_LOWER_LANE_CHANGE_TIME ({lower}) is greater than "
                "DR_H2B_UPPER_LANE_CHANGE_TIME ({upper}): the time between lane changes is drawn from [lower, upper]",
                {"lower": lower, "upper": v, "fields": "h2b_upper_lane_change_time,h2b_lower_lane_change_time"},
            )
        return v

    @field_validator("world_name", "bucket", "model_prefix", "pretrained_prefix", "eval_opp_s3_model_prefix")
    @classmethod
    def _names(cls, v: str, info: ValidationInfo) -> str:
        """Names that become folders and S3 keys: never empty, never outside the bucket (a `--wipe` deletes them)."""
        if not v.strip():
            if info.field_name == "pretrained_prefix" and not info.data.get("pretrained"):
                return v  # only used with DR_LOCAL_S3_PRETRAINED=True
            raise ValueError("must not be empty" + (" when DR_LOCAL_S3_PRETRAINED=True" if info.data.get("pretrained")
                                                    and info.field_name == "pretrained_prefix" else ""))
        if info.field_name == "world_name":
            return v
        parts = v.split("/")
        if info.field_name == "bucket" and len(parts) > 1:
            raise ValueError("a bucket name has no '/'")
        if v.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in v or "\x00" in v:
            raise ValueError("must be a relative name inside the bucket: no leading or doubled '/', no '.' or '..' "
                             "parts, no backslash")
        return v

    @field_validator("max_steps_per_iteration", mode="before")
    @classmethod
    def _empty_none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator(
        "local_s3_profile", "upload_bucket", "minio_url", "remote_minio_url", "local_s3_endpoint_url",
        "experiment_name", mode="before",
    )
    @classmethod
    def _unset_none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v

    @model_validator(mode="after")
    def _derived(self) -> RunConfig:
        """Fill the values DRfC derives from others when they are not set."""
        if not self.metrics_prefix.strip():
            self.metrics_prefix = f"{self.model_prefix}/metrics"
        if not self.display_name.strip():
            self.display_name = self.car_name
        if not self.racer_name.strip():
            self.racer_name = self.car_name
        if not self.eval_opp_metrics_prefix.strip():
            self.eval_opp_metrics_prefix = f"{self.eval_opp_s3_model_prefix}/metrics"
        if not self.eval_opp_display_name.strip():
            self.eval_opp_display_name = self.eval_opp_car_name
        if not self.eval_opp_racer_name.strip():
            self.eval_opp_racer_name = self.eval_opp_car_name
        if self.local_s3_endpoint_url is None:
            if self.cloud in ("local", "azure"):
                self.local_s3_endpoint_url = "http://localhost:9000"
            elif self.cloud == "remote":
                self.local_s3_endpoint_url = self.remote_minio_url
        return self

    def _absent(self, var: str) -> bool:
        """Whether no file, environment variable or override set `var` (only known for a config that
        `build_run_config` made; one built directly counts every variable as set)."""
        return self._origins.get(var) == "default"

    def race_options(self, *, training: bool, seed: int | None = None) -> RaceOptions:
        """The race-type settings as the simapp gets them from DRfC's prepare-config.py.

        The fields hold DRfC's template values (what `drlocal init` and DRfC's init write into run.env),
        but where a variable is missing altogether DRfC's prepare-config.py writes its own fallback into
        the params yaml, and so does this: DR_OA_RANDOMIZE_OBSTACLE_LOCATIONS -> True (template False),
        DR_H2B_NUMBER_OF_BOT_CARS -> 0 (template 3), DR_H2B_BOT_CAR_PENALTY -> 2.0 (template 5.0); see
        RACE_SCRIPT_FALLBACKS. DR_OA_OBJECT_POSITIONS, when set, replaces the number of obstacles.
        DR_EVAL_RESET_BEHIND_DIST counts in training too (the simapp's own default is the template's 1.0).
        HEAD_TO_MODEL is an evaluation race: DRfC's training script has no opponent, so training refuses it.
        """
        if training and self.race_type == HEAD_TO_MODEL:
            raise DrlocalError(
                "DR_RACE_TYPE=HEAD_TO_MODEL is an evaluation race (the opponent is a trained model, "
                "DR_EVAL_OPP_S3_MODEL_PREFIX); DRfC trains TIME_TRIAL, OBJECT_AVOIDANCE and HEAD_TO_BOT races.",
                hint="train with another DR_RACE_TYPE (HEAD_TO_BOT races against bot cars), evaluate with "
                     "HEAD_TO_MODEL.",
            )

        def pick(var: str, value: Any) -> Any:
            return RACE_SCRIPT_FALLBACKS[var] if self._absent(var) else value

        positions = self.oa_object_positions
        return RaceOptions(
            race_type=self.race_type,
            number_of_obstacles=len(positions) if positions else self.oa_number_of_obstacles,
            min_distance_between_obstacles=self.oa_min_distance_between_obstacles,
            randomize_obstacle_locations=pick("DR_OA_RANDOMIZE_OBSTACLE_LOCATIONS",
                                              self.oa_randomize_obstacle_locations),
            is_obstacle_bot_car=self.oa_is_obstacle_bot_car,
            obstacle_type=self.oa_obstacle_type,
            object_positions=positions,
            number_of_bot_cars=pick("DR_H2B_NUMBER_OF_BOT_CARS", self.h2b_number_of_bot_cars),
            min_distance_between_bot_cars=self.h2b_min_distance_between_bot_cars,
            randomize_bot_car_locations=self.h2b_randomize_bot_car_locations,
            bot_car_speed=self.h2b_bot_car_speed,
            is_lane_change=self.h2b_is_lane_change,
            lower_lane_change_time=self.h2b_lower_lane_change_time,
            upper_lane_change_time=self.h2b_upper_lane_change_time,
            lane_change_distance=self.h2b_lane_change_distance,
            penalty_seconds=pick("DR_H2B_BOT_CAR_PENALTY", self.h2b_bot_car_penalty),
            reset_behind_dist=self.eval_reset_behind_dist,
            seed=seed,
        )

    @property
    def opponent(self) -> Opponent | None:
        """The opponent of a HEAD_TO_MODEL evaluation (DR_EVAL_OPP_*); None for the other race types."""
        if self.race_type != HEAD_TO_MODEL:
            return None
        return Opponent(
            prefix=self.eval_opp_s3_model_prefix, car_name=self.eval_opp_car_name,
            display_name=self.eval_opp_display_name, racer_name=self.eval_opp_racer_name,
            body_shell_type=self.eval_opp_car_body_shell_type, metrics_prefix=self.eval_opp_metrics_prefix,
        )


def _show(key: str, value: str) -> str:
    """A value as printed in messages; secrets never are."""
    return "<hidden>" if any(m in key for m in SECRET_MARKERS) else value


def _where(ev: EnvValue, base: Path | None) -> str:
    """file:line relative to the working folder when the file lies in it (else as given)."""
    if base is not None and ev.line:
        try:
            return f"{Path(ev.file).relative_to(base).as_posix()}:{ev.line}"
        except ValueError:
            pass
    return ev.where


def _merge(
    values: Mapping[str, EnvValue], environ: Mapping[str, str], overrides: Mapping[str, EnvValue], base: Path | None,
) -> tuple[dict[str, EnvValue], list[str]]:
    """Environment, then file values (which win, as DRfC re-exports them), then the caller's overrides."""
    merged = {k: EnvValue(v, "environment", 0) for k, v in environ.items() if k.startswith("DR_")}
    warnings: list[str] = []
    for key, ev in values.items():
        env = merged.get(key)
        if env is not None and env.value != ev.value and key not in overrides:
            warnings.append(
                f"{key}={_show(key, env.value)} in the environment is overridden by {_where(ev, base)} "
                f"({_show(key, ev.value)}), as DRfC does"
            )
        merged[key] = ev
    merged.update(overrides)
    return merged, warnings


def _selected_race(merged: Mapping[str, EnvValue]) -> str:
    """DR_RACE_TYPE as RunConfig reads it (stripped, upper case); TIME_TRIAL when unset."""
    return merged["DR_RACE_TYPE"].value.strip().upper() if "DR_RACE_TYPE" in merged else TIME_TRIAL


def _race_of(key: str) -> str | None:
    """The race type whose settings `key` is, or None for a setting of every race type."""
    return next((race for race, keys in RACE_VARIABLES.items() if key in keys), None)


def _differs_from_template(key: str, value: str, merged: Mapping[str, EnvValue]) -> bool:
    """Whether a race-type variable is set to something other than DRfC's template value."""
    v = value.strip()
    default = RACE_TEMPLATE.get(key, "")
    if key in ("DR_EVAL_OPP_DISPLAY_NAME", "DR_EVAL_OPP_RACER_NAME"):  # $DR_EVAL_OPP_CAR_NAME in the template
        car = merged.get("DR_EVAL_OPP_CAR_NAME")
        return v not in ("", car.value.strip() if car is not None else RACE_TEMPLATE["DR_EVAL_OPP_CAR_NAME"])
    if v == default:
        return False
    if default in ("True", "False"):
        return _bool(v) is not (default == "True")
    try:
        return not _number_is(v, float(default))
    except ValueError:  # a name, or "" (not in the template)
        return True


def _classify(
    merged: dict[str, EnvValue], race_type: str, base: Path | None,
) -> tuple[list[str], list[str], dict[str, list[str]], list[str]]:
    """Sort the non-honoured DR_* names: (ignored infrastructure, loud warnings, {other race type: its settings set
    to a non-template value}, unknown)."""
    ignored: list[str] = []
    loud: list[str] = []
    other_race: dict[str, list[str]] = {}
    unknown: list[str] = []
    for key in sorted(merged):
        ev = merged[key]
        if not key.startswith("DR_") or key in LEGACY_NAMES:
            continue
        race = _race_of(key)
        if key in UNSUPPORTED or key in NOT_YET:
            is_set, why = UNSUPPORTED.get(key) or NOT_YET[key]
            if is_set(ev.value):
                loud.append(f"{key}={_show(key, ev.value)} ({_where(ev, base)}): {why}")
        elif race is not None and race != race_type:
            if _differs_from_template(key, ev.value, merged):
                other_race.setdefault(race, []).append(key)
        elif key in VARIABLES:
            continue
        elif key.startswith(INFRASTRUCTURE_PREFIXES):
            if key in SHELL_EXPORTS and ev.file == "environment":
                continue
            value = ev.value.strip()
            if value and value.lower() != INFRASTRUCTURE_DEFAULTS.get(key):
                ignored.append(key)
        else:
            unknown.append(key)
    return ignored, loud, other_race, unknown


def _data(
    merged: dict[str, EnvValue], race_type: str, base: Path | None,
) -> tuple[dict[str, Any], dict[str, EnvValue], dict[str, str]]:
    """(field values, field -> EnvValue, DR_* name -> origin) of the honoured variables, legacy names included.
    Settings of race types other than `race_type` keep their defaults; their origin says they are ignored."""
    data: dict[str, Any] = {}
    source: dict[str, EnvValue] = {}
    origins = dict.fromkeys(VARIABLES, "default")
    for key, ev in merged.items():
        if key.startswith("DR_"):
            origins[key] = _where(ev, base)
        if key in VARIABLES:
            if _race_of(key) not in (None, race_type):
                origins[key] += f" (ignored: DR_RACE_TYPE={race_type})"
                continue
            data[VARIABLES[key]] = ev.value
            source[VARIABLES[key]] = ev
    for old, new in LEGACY_NAMES.items():
        if old in merged and new not in merged:
            ev = merged[old]
            data[VARIABLES[new]] = ev.value
            source[VARIABLES[new]] = ev
            origins[new] = f"{origins[old]} (as {old})"
    return data, source, origins


def _other_race_lines(other_race: dict[str, list[str]], merged: Mapping[str, EnvValue], race_type: str,
                      base: Path | None) -> list[str]:
    """One line per race type whose settings are set although DR_RACE_TYPE selects another one."""
    lines = []
    for race in RACE_VARIABLES:  # in a fixed order: OBJECT_AVOIDANCE, HEAD_TO_BOT, HEAD_TO_MODEL
        keys = other_race.get(race)
        if not keys:
            continue
        names = ", ".join(f"{k} ({_where(merged[k], base)})" for k in keys)
        lines.append(f"{names} only appl{'ies' if len(keys) == 1 else 'y'} to {race} races; ignored with "
                     f"DR_RACE_TYPE={race_type}")
    return lines


def build_run_config(
    values: Mapping[str, EnvValue],
    environ: Mapping[str, str] | None = None,
    *,
    overrides: Mapping[str, str | EnvValue] | None = None,
    base: Path | None = None,
) -> tuple[RunConfig, list[str]]:
    """RunConfig from env-file values, environment variables and overrides; returns (config, warnings).

    File values win over the environment (DRfC re-exports its files before every command);
    variables that no file sets come from the environment; `overrides` (name -> value) win over
    both. `base` is the working folder, for file names relative to it in `RunConfig.origins`.
    """
    environ = dict(os.environ) if environ is None else environ
    forced = {k: v if isinstance(v, EnvValue) else EnvValue(v, "override", 0) for k, v in (overrides or {}).items()}
    merged, warnings = _merge(values, environ, forced, base)
    race_type = _selected_race(merged)
    ignored, loud, other_race, unknown = _classify(merged, race_type, base)
    if ignored:
        warnings.append(f"ignored (infrastructure that drlocal does not need): {', '.join(ignored)}")
    warnings += loud
    other_lines = _other_race_lines(other_race, merged, race_type, base)
    warnings += other_lines
    for key in unknown:
        close = difflib.get_close_matches(key, [*VARIABLES, *LEGACY_NAMES, *UNSUPPORTED], n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"unknown variable {key} ({_where(merged[key], base)}){hint}")
    data, source, origins = _data(merged, race_type, base)
    try:
        run = RunConfig.model_validate(data)
    except ValidationError as err:
        raise _invalid(err, source, other_lines) from None
    run._origins = origins
    return run, warnings


def _invalid(err: ValidationError, source: dict[str, EnvValue], other_race: list[str]) -> DrlocalError:
    field_to_var = {f: k for k, f in VARIABLES.items()}
    lines = [f"{err.error_count()} invalid setting(s):"]
    for e in err.errors():
        fname = str(e["loc"][0]) if e["loc"] else "?"
        # an error about two settings (e.g. the lane-change times) names the one a file sets
        related = [fname, *str((e.get("ctx") or {}).get("fields", "")).split(",")]
        fname = next((f for f in related if f in source), fname)
        ev = source.get(fname)
        where = ev.where if ev else "default"
        value = ev.value if ev else e.get("input")
        lines.append(f"  - {where}: {field_to_var.get(fname, fname)}={value!r}: {e['msg']}")
    if other_race:
        lines.append("  (note: "
                     + "; ".join(other_race) + ")")
    return DrlocalError("\n".join(lines), hint="fix the values in run.env / system.env.")
