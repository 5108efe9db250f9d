"""Observation spaces and batched observations from the sensor list of model_metadata (contract §5).

Cameras give (120, 160, C) uint8 (C = 1, or 2 for STEREO_CAMERAS), scaled by 1/255 inside the
network as DeepRacer does; LIDAR variants give float32 vectors. With one sensor the observation
is that array; with several it is a dict keyed by sensor name.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
from gymnasium import spaces

from drlocal.config.model_metadata import ModelMetadata
from drlocal.errors import NonFiniteStateError
from drlocal.sensors import lidar as lidarmod
from drlocal.tracks.track import Track

H, W = 120, 160


def single_sensor_space(sensor: str, metadata: ModelMetadata) -> spaces.Box:
    """Gymnasium space of one sensor's observation for one car."""
    cfg = metadata.lidar_config
    if sensor == "STEREO_CAMERAS":
        return spaces.Box(0, 255, shape=(H, W, 2), dtype=np.uint8)
    if sensor in ("FRONT_FACING_CAMERA", "LEFT_CAMERA", "observation"):
        return spaces.Box(0, 255, shape=(H, W, 1), dtype=np.uint8)
    if sensor == "LIDAR":
        return spaces.Box(lidarmod.MIN_RANGE, 1.0, shape=(lidarmod.N_RAYS,), dtype=np.float32)
    if sensor == "SECTOR_LIDAR":
        return spaces.Box(0.0, 1.0, shape=(cfg.num_sectors,), dtype=np.float32)
    if sensor == "DISCRETIZED_SECTOR_LIDAR":
        return spaces.Box(0.0, 1.0, shape=(cfg.num_sectors * cfg.num_values_per_sector,), dtype=np.float32)
    raise ValueError(f"unknown sensor {sensor}")


def wall_segments(world: str) -> np.ndarray:
    """Trackside walls the LIDAR can hit for a world (the 1 m field wall of generated tracks), (K, 4)."""
    try:
        text = (resources.files("drlocal.sensors") / "appearance.json").read_text()
    except FileNotFoundError:
        return np.zeros((0, 4))
    entry = json.loads(text).get(world)
    if not entry or not entry.get("wall_bbox_m") or not entry.get("wall_height_m"):
        return np.zeros((0, 4))
    if entry["wall_height_m"] < lidarmod.LASER_HEIGHT or entry.get("wall_offset_m", 0.0) > 12.0:
        return np.zeros((0, 4))  # below the laser plane, or out of range (city backdrops)
    return lidarmod.rectangle_segments(entry["wall_bbox_m"])


class ObservationBuilder:
    """Renders every sensor of model_metadata for N cars at once."""

    def __init__(self, metadata: ModelMetadata, track: Track, world: str | None = None, seed: int = 0) -> None:
        from drlocal.sensors.camera import CameraRenderer  # heavy (numba); only when an env is built

        self.metadata = metadata
        self.sensors = sorted(metadata.sensor)  # DeepRacer orders inputs by sensor name
        self.camera_sensor = metadata.camera
        self.camera = CameraRenderer(track, world=world, seed=seed)
        self.lidar_sensor = metadata.lidar
        self.lidar = lidarmod.Lidar(wall_segments(world or track.name)) if self.lidar_sensor else None
        subspaces = {s: single_sensor_space(s, metadata) for s in self.sensors}
        self.space: spaces.Space = (
            subspaces[self.sensors[0]] if len(self.sensors) == 1 else spaces.Dict(subspaces)
        )

    def observe(
        self,
        x: np.ndarray,
        y: np.ndarray,
        yaw: np.ndarray,
        rng: np.random.Generator | None = None,
        boxes: np.ndarray | None = None,
    ) -> np.ndarray | dict[str, np.ndarray]:
        """Observations of cars at base_link poses (N,): array (N, ...) or dict of them.

        boxes: obstacles and other cars, seen by the camera and hit by the LIDAR: per car (N, M, cols)
        from `drlocal.sensors.objects_view.object_boxes` (car i sees boxes[i] only; NaN/empty slots are
        skipped), or (K, ≥5) [cx, cy, yaw, length, width, height] shared by all cars.
        """
        _check_pose(x, y, yaw)  # the render kernels index memory from the pose: NaN must not reach them
        out: dict[str, np.ndarray] = {}
        cam = self.camera_sensor
        if cam == "STEREO_CAMERAS":
            out[cam] = self.camera.render(x, y, yaw, camera="stereo", boxes=boxes)
        else:
            which = "left" if cam == "LEFT_CAMERA" else "front"
            out[cam] = self.camera.render(x, y, yaw, camera=which, boxes=boxes)[..., None]
        if self.lidar_sensor and self.lidar is not None:
            ranges = self.lidar.scan(x, y, yaw, boxes=boxes, rng=rng)
            cfg = self.metadata.lidar_config
            if self.lidar_sensor == "LIDAR":
                out["LIDAR"] = lidarmod.lidar_obs(ranges)
            elif self.lidar_sensor == "SECTOR_LIDAR":
                out["SECTOR_LIDAR"] = lidarmod.sector_lidar_obs(ranges, cfg.num_sectors)
            else:
                out["DISCRETIZED_SECTOR_LIDAR"] = lidarmod.discretized_sector_lidar_obs(
                    ranges, cfg.num_sectors, cfg.num_values_per_sector, cfg.clipping_dist
                )
            _check_finite(out[self.lidar_sensor], self.lidar_sensor, x, y, yaw)
        return out[self.sensors[0]] if len(self.sensors) == 1 else out


def _check_pose(x: np.ndarray, y: np.ndarray, yaw: np.ndarray) -> None:
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(yaw)
    if ok.all():
        return
    i = int(np.flatnonzero(~ok)[0])
    raise NonFiniteStateError(
        f"cannot observe car {i}: its pose is not finite (x={float(x[i])!r}, y={float(y[i])!r}, "
        f"yaw={float(yaw[i])!r}); stopping rather than training on NaN.",
        hint="poses must be finite numbers (metres, radians).")


def _check_finite(obs: np.ndarray, sensor: str, x: np.ndarray, y: np.ndarray, yaw: np.ndarray) -> None:
    """A NaN/inf LIDAR reading stops with one message instead of reaching the network (cameras are uint8)."""
    ok = np.isfinite(obs).reshape(obs.shape[0], -1).all(axis=1)
    if ok.all():
        return
    i = int(np.flatnonzero(~ok)[0])
    raise NonFiniteStateError(
        f"{sensor} observation of car {i} holds NaN/inf ({obs[i].tolist()}) at x={float(x[i])!r}, "
        f"y={float(y[i])!r}, yaw={float(yaw[i])!r}; stopping rather than training on NaN.",
        hint="the pose is far outside the track or the sensor model has a bug: please report it with the values above.")
