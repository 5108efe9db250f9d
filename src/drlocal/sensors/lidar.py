"""The DeepRacer LIDAR: 64 rays cast in the ground plane, and its three observation filters.

Hand-written (DeepRacer-specific, contract §4.5 and §5). The laser sits 0.02913 m ahead of
base_link, 0.185 m above the ground, mounted facing backwards (yaw π): its 64 samples span
±150° in the laser frame, so in the car frame they sweep from +30° (front-left) round the back to
−30° (front-right), leaving a 60° blind cone straight ahead. Range 0.15–12 m, Gaussian noise σ 0.01 m.

Walls are vertical segments taller than the laser plane, so a 2-D ray/segment intersection is
exact. Obstacle boxes and the parts of other cars are oriented boxes (`objects_view.object_boxes`
layout, or plain [cx, cy, yaw, length, width, height] rows): one blocks the laser only where its
vertical extent [z0, z0 + height] holds the laser plane (LASER_HEIGHT, 0.185 m): a 0.25 m obstacle box
does, a bot car's wheels and lower body do not, its camera hump (0.175-0.211 m) does. The kernel is numba.
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


@numba.njit(cache=True, error_model="numpy")
def _cast(ox, oy, yaw, angles, segs, boxes, exclude, max_range, out):  # pragma: no cover - numba
    """Nearest hit along each ray of each car: walls (segments) and the car's boxes.

    boxes (B, M, 6) [cx, cy, yaw, half length, half width, active]: B = N (car i sees boxes[i]) or 1
    (shared); a box is skipped when inactive (below/above the laser plane, empty) or when it is the car's
    own (exclude[i], shared boxes). A ray starting inside a box hits its wall on the way out.
    """
    n = ox.shape[0]
    nb = boxes.shape[1]
    for i in range(n):
        bset = boxes[i if boxes.shape[0] > 1 else 0]
        for r in range(angles.shape[0]):
            a = yaw[i] + angles[r]
            dx = np.cos(a)
            dy = np.sin(a)
            best = np.inf
            for s in range(segs.shape[0]):
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
            for k in range(nb):
                b = bset[k]
                if b[5] <= 0.0 or k == exclude[i]:
                    continue
                cb = np.cos(b[2])
                sb = np.sin(b[2])
                # the ray in the box frame; slabs |x| <= half length, |y| <= half width
                lx = cb * (ox[i] - b[0]) + sb * (oy[i] - b[1])
                ly = -sb * (ox[i] - b[0]) + cb * (oy[i] - b[1])
                rx = cb * dx + sb * dy
                ry = -sb * dx + cb * dy
                tin = -np.inf
                tout = np.inf
                if rx != 0.0:
                    t1 = (-b[3] - lx) / rx
                    t2 = (b[3] - lx) / rx
                    tin = max(tin, min(t1, t2))
                    tout = min(tout, max(t1, t2))
                elif abs(lx) > b[3]:
                    continue
                if ry != 0.0:
                    t1 = (-b[4] - ly) / ry
                    t2 = (b[4] - ly) / ry
                    tin = max(tin, min(t1, t2))
                    tout = min(tout, max(t1, t2))
                elif abs(ly) > b[4]:
                    continue
                if tin > tout:
                    continue
                t = tin if tin > 0.0 else tout
                if t > 0.0 and t < best:
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
        self.walls = np.zeros((0, 4)) if walls is None else np.ascontiguousarray(walls, dtype=np.float64).reshape(-1, 4)
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

        boxes: shared by all cars, (K, ≥5) [cx, cy, yaw, length, width, (height), ...]; or per car,
        (N, M, ≥5) (car i sees boxes[i] only), e.g. `objects_view.object_boxes`. Rows with
        `_camera_kernels.BOX_COLS` columns carry their bottom height z0 (column 11); others stand on the
        ground, and without a height column they are taller than the laser. A box blocks the laser only
        if [z0, z0 + height] holds LASER_HEIGHT; rows holding NaN or a non-positive size are ignored.
        exclude: (N,) index of each car's own box (-1 for none). Hits nearer than 0.15 m read 0.15 m.
        Noise is added when `rng` is given.
        """
        x, y, yaw = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (x, y, yaw))
        n = x.shape[0]
        excl = np.full(n, -1, dtype=np.int64) if exclude is None else np.asarray(exclude, dtype=np.int64)
        ox = x + LASER_OFFSET_X * np.cos(yaw)
        oy = y + LASER_OFFSET_X * np.sin(yaw)
        out = np.empty((n, N_RAYS))
        _cast(ox, oy, yaw, RAY_ANGLES, self.walls, laser_boxes(boxes, n), excl, MAX_RANGE, out)
        if rng is not None and self.noise_std > 0:
            finite = np.isfinite(out)
            out[finite] += rng.normal(0.0, self.noise_std, size=int(finite.sum()))
        np.maximum(out, MIN_RANGE, out=out)
        return out


#: Columns of the camera kernel's box layout (`_camera_kernels.BOX_COLS`); its column 11 is z0.
_KERNEL_COLS = 12


def laser_boxes(boxes: np.ndarray | None, n: int) -> np.ndarray:
    """boxes as the LIDAR kernel takes them: (1 or N, M, 6) [cx, cy, yaw, half length, half width, active]."""
    if boxes is None:
        return np.zeros((1, 0, 6))
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        return np.zeros((1, 0, 6))
    if b.ndim == 2:
        b = b[None]
    if b.ndim != 3 or b.shape[-1] < 5 or b.shape[0] not in (1, n):
        raise ValueError(f"boxes must have shape (K, >=5) or ({n}, M, >=5), got {np.shape(boxes)}")
    out = np.zeros((*b.shape[:-1], 6))
    out[..., 0:3] = b[..., 0:3]
    out[..., 3:5] = b[..., 3:5] / 2
    z0 = b[..., 11] if b.shape[-1] >= _KERNEL_COLS else 0.0
    top = z0 + b[..., 5] if b.shape[-1] > 5 else np.inf
    active = (z0 <= LASER_HEIGHT) & (top >= LASER_HEIGHT) & (b[..., 3] > 0) & (b[..., 4] > 0)
    active &= np.isfinite(b[..., 0:5]).all(axis=-1)
    out[..., 5] = active
    out[~active] = 0.0
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
