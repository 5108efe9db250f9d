"""`model_metadata.json`: action space, sensors, network, algorithm (contract §5, §6).

Parsed with pydantic and validated with the simapp's rules (`boto/s3/files/model_metadata.py`);
every problem is reported at once with the file, key, value and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from drlocal.config.jsonfile import format_validation_errors, read_json_object
from drlocal.errors import DrlocalError

CAMERA_SENSORS = ("FRONT_FACING_CAMERA", "LEFT_CAMERA", "STEREO_CAMERAS", "observation")
LIDAR_SENSORS = ("LIDAR", "SECTOR_LIDAR", "DISCRETIZED_SECTOR_LIDAR")
NETWORKS = ("DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", "DEEP_CONVOLUTIONAL_NETWORK", "DEEP_CONVOLUTIONAL_NETWORK_DEEP")
LIDAR_RAYS = 64
#: Values that newer simapp versions accept but drlocal does not implement: value -> what it is.
UNSUPPORTED_SENSORS = {"IMU": "the inertial measurement unit sensor of newer simapp versions"}
UNSUPPORTED_ALGORITHMS = {"llm": "the LLM-driven training of newer simapp versions"}

#: DRfC's `defaults/model_metadata.json`: 5 discrete actions at 0.6 m/s, PPO, front camera.
DRFC_DEFAULT: dict[str, Any] = {
    "action_space": [
        {"steering_angle": -30, "speed": 0.6},
        {"steering_angle": -15, "speed": 0.6},
        {"steering_angle": 0, "speed": 0.6},
        {"steering_angle": 15, "speed": 0.6},
        {"steering_angle": 30, "speed": 0.6},
    ],
    "sensor": ["FRONT_FACING_CAMERA"],
    "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
    "training_algorithm": "clipped_ppo",
    "action_space_type": "discrete",
    "version": "5",
}


class DiscreteAction(BaseModel):
    """One entry of a discrete action space; extra keys such as `index` are ignored, as in the simapp."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    steering_angle: float = Field(ge=-30.0, le=30.0)  # [deg], + = left
    speed: float = Field(gt=0.0, le=4.0)  # [m/s]


class Range(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class ContinuousActionSpace(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    steering_angle: Range  # [deg]
    speed: Range  # [m/s]


class LidarConfig(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    num_sectors: int = Field(default=8, ge=1, le=LIDAR_RAYS)
    num_values_per_sector: int = Field(default=8, ge=1)
    clipping_dist: float = Field(default=2.0, ge=0.15, le=12.0)  # [m]

    @field_validator("num_sectors")
    @classmethod
    def _divides_64(cls, v: int) -> int:
        if LIDAR_RAYS % v:
            raise ValueError(f"must divide {LIDAR_RAYS} (1, 2, 4, 8, 16, 32 or 64)")
        return v


class ModelMetadata(BaseModel):
    """A validated `model_metadata.json`."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    action_space: list[DiscreteAction] | ContinuousActionSpace
    action_space_type: Literal["discrete", "continuous"] = "discrete"
    training_algorithm: Literal["clipped_ppo", "sac"] = "clipped_ppo"
    sensor: list[str] = Field(default_factory=lambda: ["observation"])
    neural_network: Literal[NETWORKS] = "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"  # type: ignore[valid-type]
    version: float = 5.0
    lidar_config: LidarConfig = Field(default_factory=LidarConfig)

    @field_validator("action_space_type", "training_algorithm", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("training_algorithm", mode="before")
    @classmethod
    def _supported_algorithm(cls, v: Any) -> Any:
        name = v.strip().lower() if isinstance(v, str) else v
        if isinstance(name, str) and name in UNSUPPORTED_ALGORITHMS:  # (a list or dict is not hashable)
            raise PydanticCustomError(
                "not_supported", "'{name}' ({what}) is not supported by drlocal; use clipped_ppo or sac",
                {"name": name, "what": UNSUPPORTED_ALGORITHMS[name]},
            )
        return v

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        return float(v) if isinstance(v, str) and v.strip() else v

    @field_validator("sensor")
    @classmethod
    def _sensors(cls, v: list[str]) -> list[str]:
        for s in v:
            if s in UNSUPPORTED_SENSORS:
                raise PydanticCustomError(
                    "not_supported", "sensor {name} ({what}) is not supported by drlocal; supported sensors: {ok}",
                    {"name": s, "what": UNSUPPORTED_SENSORS[s], "ok": ", ".join(CAMERA_SENSORS + LIDAR_SENSORS)},
                )
        unknown = [s for s in v if s not in CAMERA_SENSORS + LIDAR_SENSORS]
        if unknown:
            raise ValueError(f"unknown sensor(s) {unknown}; allowed: {', '.join(CAMERA_SENSORS + LIDAR_SENSORS)}")
        cameras = [s for s in v if s in CAMERA_SENSORS]
        if len(cameras) != 1:
            raise ValueError(f"exactly one camera sensor is required ({', '.join(CAMERA_SENSORS)}), got {cameras}")
        if len([s for s in v if s in LIDAR_SENSORS]) > 1:
            raise ValueError("at most one LIDAR sensor type is allowed")
        return v

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and "version" not in data:
            data = dict(data)
            data["version"] = 2.0 if "sensor" in data else 1.0  # simapp rule
        if isinstance(data, dict) and "sensor" not in data:
            data = dict(data, sensor=["observation"])
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ModelMetadata:
        continuous = isinstance(self.action_space, ContinuousActionSpace)
        if continuous != (self.action_space_type == "continuous"):
            raise ValueError(
                f"action_space_type is {self.action_space_type!r} but action_space is "
                f"{'an object with low/high ranges' if continuous else 'a list of actions'}"
            )
        if self.training_algorithm == "sac" and not continuous:
            raise ValueError("training_algorithm 'sac' needs a continuous action space")
        if not continuous and not self.action_space:
            raise ValueError("the discrete action space is empty")
        return self

    # ----- derived -----

    @property
    def is_continuous(self) -> bool:
        return isinstance(self.action_space, ContinuousActionSpace)

    @property
    def camera(self) -> str:
        return next(s for s in self.sensor if s in CAMERA_SENSORS)

    @property
    def lidar(self) -> str | None:
        return next((s for s in self.sensor if s in LIDAR_SENSORS), None)

    def input_sizes(self) -> dict[str, int]:
        """Network inputs: sensor name -> vector length (0 for cameras, whose shape is fixed)."""
        cfg = self.lidar_config
        sizes = {"LIDAR": LIDAR_RAYS, "SECTOR_LIDAR": cfg.num_sectors,
                 "DISCRETIZED_SECTOR_LIDAR": cfg.num_sectors * cfg.num_values_per_sector}
        return {s: sizes.get(s, 0) for s in self.sensor}

    def to_json_dict(self) -> dict[str, Any]:
        """The dict to write back to `model_metadata.json` (DeepRacer's key names and value types)."""
        if self.is_continuous:
            space: Any = self.action_space.model_dump()  # type: ignore[union-attr]
        else:
            space = [
                {"steering_angle": a.steering_angle, "speed": a.speed, "index": i}
                for i, a in enumerate(self.action_space)  # type: ignore[arg-type]
            ]
        out = {
            "action_space": space,
            "sensor": list(self.sensor),
            "neural_network": self.neural_network,
            "training_algorithm": self.training_algorithm,
            "action_space_type": self.action_space_type,
            "version": f"{self.version:g}",
        }
        if self.lidar:
            out["lidar_config"] = self.lidar_config.model_dump()
        return out


def _format_errors(where: str, err: ValidationError, data: Any) -> str:
    errors = err.errors()
    # action_space is "a list of actions | an object of ranges": drop the type error of the branch
    # the user clearly did not mean when the other branch reported something specific.
    deep = [e for e in errors if e["loc"][:1] == ("action_space",) and len(e["loc"]) > 2]
    if deep:
        errors = [e for e in errors if not (e["loc"][:1] == ("action_space",) and len(e["loc"]) <= 2
                                            and e["type"] in ("list_type", "model_type", "dict_type"))]
    return format_validation_errors(where, errors, skip_loc=("list[DiscreteAction]", "ContinuousActionSpace"))


def load_model_metadata(source: str | Path | dict[str, Any] | None = None) -> ModelMetadata:
    """Read and validate model metadata from a path, a dict, or None (DRfC's default)."""
    if source is None:
        return ModelMetadata.model_validate(DRFC_DEFAULT)
    where, data = read_json_object(source, "model_metadata")
    try:
        return ModelMetadata.model_validate(data)
    except ValidationError as err:
        raise DrlocalError(
            _format_errors(where, err, data),
            hint="see the DeepRacer model_metadata.json schema; speeds 0-4 m/s, steering ±30°.",
        ) from None
