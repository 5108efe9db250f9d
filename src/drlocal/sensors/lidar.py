"""The DeepRacer LIDAR: 64 rays cast in the ground plane, and its three observation filters.

Hand-written (DeepRacer-specific, contract §4.5 and §5). The laser sits 0.02913 m ahead of
base_link, 0.185 m above the ground, mounted facing backwards (yaw π): its 64 samples span
±150° in the laser frame, so in the car frame they sweep from +30° (front-left) round the back to
−30° (front-right), leaving a 60° blind cone straight ahead. Range 0.15–12 m, Gaussian noise σ 0.01 m.

Obstacles are vertical segments (field walls, boxes, other cars), all taller than the laser
plane except where noted, so a 2-D ray/segment intersection is exact. The kernel is numba.
"""

from __future__ import annotations

import numba
import numpy as np

N_RAYS = 64
LASER_OFFSET_X = 0.02913  # [m] ahead of base_link (URDF laser joint; the chassis offset is vertical)
LASER_HEIGHT = 0.16145 + 0.023249  # [m] above base_link ≈ ground
HALF_SPAN = 2.61799  # [rad] ±150° in the laser frame
#: Ray directions in the car frame [rad], sample order of the ROS LaserScan (laser yaw = π).
RAY_ANGLES = np.pi + np.linspace(-HALF_SPAN, HALF_SPAN, N_RAYS)
MIN_RANGE, MAX_RANGE = 0.15, 12.0  # [m]
NOISE_STD = 0.01  # [m]


@numba.njit(cache=True, fastmath=True)
def _cast(ox, oy, yaw, angles, segs, seg_owner, exclude, max_range, out):  # pragma: no cover - numba
    n = ox.shape[0]
    for i in range(n):
        for r in range(angles.shape[0]):
            a = yaw[i] + angles[r]
            dx = np.cos(a)
            dy = np.sin(a)
            best = np.inf
            for s in range(segs.shape[0]):
                if seg_owner[s] >= 0 and seg_owner[s] == exclude[i]:
                    continue
                ax, ay, bx, by = segs[s, 0], segs[s, 1], segs[s, 2], segs[s, 3]
                ex, ey = bx - ax, by - ay
                den = dx * ey - dy * ex
                if den == 0.0:
                    continue
                wx, wy = ax - ox[i], ay - oy[i]
                t = (wx * ey - wy * ex) / den  # distance along the ray
                u = (wx * dy - wy * dx) / den  # position along the segment [0, 1]
                if t > 0.0 and 0.0 <= u <= 1.0 and t < best:
                    best = t
            out[i, r] = best if best <= max_range else np.inf


def rectangle_segments(bbox: tuple[float, float, float, float] | np.ndarray) -> np.ndarray:
    """The 4 walls of an axis-aligned rectangle [xmin, ymin, xmax, ymax] as segments (4, 4)."""
    x0, y0, x1, y1 = (float(v) for v in bbox)
    return np.array([[x0, y0, x1, y0], [x1, y0, x1, y1], [x1, y1, x0, y1], [x0, y1, x0, y0]])


def box_segments(boxes: np.ndarray) -> np.ndarray:
    """Outline segments of boxes (K, ≥5) [cx, cy, yaw, length, width, ...]: returns (4K, 4)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, boxes.shape[-1] if np.ndim(boxes) > 1 else 6)
    if boxes.shape[0] == 0:
        return np.zeros((0, 4))
    cx, cy, yaw, hl, hw = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3] / 2, boxes[:, 4] / 2
    local = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]], dtype=np.float64)  # corners, CCW order reversed ok
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    lx, ly = local[None, :, 0] * hl[:, None], local[None, :, 1] * hw[:, None]
    px, py = cx[:, None] + c * lx - s * ly, cy[:, None] + s * lx + c * ly  # (K, 4)
    qx, qy = np.roll(px, -1, axis=1), np.roll(py, -1, axis=1)
    return np.stack([px, py, qx, qy], axis=-1).reshape(-1, 4)


class Lidar:
    """Casts the 64 LIDAR rays of N cars against fixed walls plus optional boxes."""

    def __init__(self, walls: np.ndarray | None = None, *, noise_std: float = NOISE_STD) -> None:
        self.walls = np.zeros((0, 4)) if walls is None else np.asarray(walls, dtype=np.float64).reshape(-1, 4)
        self.noise_std = noise_std

    def scan(
        self,
        x: np.ndarray,
        y: np.ndarray,
        yaw: np.ndarray,
        *,
        boxes: np.ndarray | None = None,
        exclude: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Ranges (N, 64) [m] for base_link poses (N,); `inf` where nothing is within 12 m.

        boxes: (K, ≥5) [cx, cy, yaw, length, width, ...]; exclude: (N,) index of each car's own
        box (-1 for none). Hits nearer than 0.15 m read 0.15 m. Noise is added when `rng` is given.
        """
        x, y, yaw = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (x, y, yaw))
        n = x.shape[0]
        segs = self.walls
        owner = np.full(len(segs), -1, dtype=np.int64)
        if boxes is not None and len(boxes):
            bsegs = box_segments(np.asarray(boxes, dtype=np.float64))
            segs = np.vstack([segs, bsegs])
            owner = np.concatenate([owner, np.repeat(np.arange(len(bsegs) // 4), 4)])
        excl = np.full(n, -2, dtype=np.int64) if exclude is None else np.asarray(exclude, dtype=np.int64)
        ox = x + LASER_OFFSET_X * np.cos(yaw)
        oy = y + LASER_OFFSET_X * np.sin(yaw)
        out = np.empty((n, N_RAYS))
        _cast(ox, oy, yaw, RAY_ANGLES, np.ascontiguousarray(segs), owner, excl, MAX_RANGE, out)
        if rng is not None and self.noise_std > 0:
            finite = np.isfinite(out)
            out[finite] += rng.normal(0.0, self.noise_std, size=int(finite.sum()))
        np.maximum(out, MIN_RANGE, out=out)
        return out


# ----- observation filters (simapp sensors/utils.py, contract §5) -----


def lidar_obs(ranges: np.ndarray) -> np.ndarray:
    """LIDAR: ranges clipped to [0.15, 1.0] m, inf → 1.0; (N, 64) float32."""
    return np.clip(np.where(np.isfinite(ranges), ranges, 1.0), MIN_RANGE, 1.0).astype(np.float32)


def _sector_min(ranges: np.ndarray, num_sectors: int, inf_value: float) -> np.ndarray:
    r = np.where(np.isfinite(ranges), ranges, inf_value)
    return r.reshape(r.shape[0], num_sectors, N_RAYS // num_sectors).min(axis=2)


def sector_lidar_obs(ranges: np.ndarray, num_sectors: int = 8, threshold: float = 0.5) -> np.ndarray:
    """SECTOR_LIDAR: 1.0 where the nearest hit of a sector of consecutive rays is < 0.5 m; (N, sectors)."""
    return (_sector_min(ranges, num_sectors, threshold) < threshold).astype(np.float32)


def discretized_sector_lidar_obs(
    ranges: np.ndarray, num_sectors: int = 8, num_values: int = 8, clipping_dist: float = 2.0
) -> np.ndarray:
    """DISCRETIZED_SECTOR_LIDAR: per sector, one-hot of floor(d / (clip / values)) without the
    "nothing within clip" bin; (N, sectors·values) float32."""
    d = np.minimum(_sector_min(ranges, num_sectors, clipping_dist), clipping_dist)
    idx = np.minimum(np.floor(d / (clipping_dist / num_values)).astype(np.int64), num_values)
    onehot = np.zeros((d.shape[0], num_sectors, num_values + 1), dtype=np.float32)
    np.put_along_axis(onehot, idx[..., None], 1.0, axis=2)
    return onehot[..., :num_values].reshape(d.shape[0], num_sectors * num_values)
