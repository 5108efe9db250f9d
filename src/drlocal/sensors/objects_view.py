"""What obstacles and other cars look like to the camera and the LIDAR (contract §4.3, §11).

`object_boxes` turns object poses into render primitives: oriented boxes in the camera kernel's layout
(`_camera_kernels.BOX_COLS`), each with its own position, size, bottom height and lit grey per face.
The camera draws them with exact per-subsample occlusion; the LIDAR hits a primitive when its vertical
extent holds the laser plane.

Obstacle boxes (simapp `models/*_obstacle/model.sdf`), standing on the ground, local x along the lane:

* ``box_obstacle``: a Gazebo box 0.4 × 0.3 × 0.25 m, one colour, RGB (0.482, 0.38, 0.309) ("#7b614f").
* ``amazon_box_obstacle``: the same size, a textured cardboard mesh. Each face gets the mean colour of
  its texture (measured once from the simapp's JPEGs with Pillow; only the numbers are kept). The
  mesh's node transform puts its "Right"/"Left" textures on the ±x faces (the ends a following car
  sees), "Back"/"Front" on the +y/-y faces and "Top" on top.
* ``deepracer_box_obstacle``: 0.36 × 0.265 × 0.24 m, textured the same way (dark blue).

Cars (``bot_car``: simapp `models/bot_car/model.sdf`; ``racecar``: another agent, `urdf/deepracer`),
base_link on the ground, 7 boxes fitted to the meshes (wheel STL and a height-sliced outline of
`car_body_link_v3.STL` at its model pose (-0.0762, 0, 0.01577)):

* four wheels 0.072 × 0.034 × 0.072 m (radius 0.036) at x -0.0817 (rear, y ±0.081) and +0.0823
  (front, y ±0.080);
* the lower body 0.324 × 0.188 m from 0.05 to 0.105 m (the shell's full width and length; its wheel
  arches leave the wheels visible below it);
* the upper shell 0.225 × 0.136 m from 0.105 to 0.175 m, set forward (x -0.065 to 0.16);
* the camera hump 0.075 × 0.08 m from 0.175 to 0.211 m at the front (x 0.085 to 0.16), the only part
  that reaches the LIDAR plane (0.185 m): the laser of another car sees a bot car's hump, not its body.

Colours: bot car body 0.156 grey and wheels 0.1 (model.sdf); a racecar's shell is the agent's car
colour, default "Black" = 0.1 grey (markov rollout_constants), its wheels Gazebo/Black (no diffuse
colour; 0.03 stands in for the weak specular highlight) and its camera "sensor_black" 0.035.

Lighting: like the walls (`appearance.lit_lumas`): ambient 0.5 plus the sun on each face by its world
normal, so a face's grey depends on the object's heading. Grey = 0.2989 R + 0.587 G + 0.114 B (0-255).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from drlocal.sensors._camera_kernels import BOX_COLS
from drlocal.sensors.appearance import lit_lumas
from drlocal.sim.race import BOX_FOOTPRINT, CAR_FOOTPRINT  # noqa: F401  (collision footprints, for the map plot)

KINDS = ("box_obstacle", "deepracer_box_obstacle", "amazon_box_obstacle", "bot_car", "racecar")

_BROWN = tuple(255.0 * v for v in (0.482, 0.38, 0.309))
# Mean texture colour (RGB 0-255) of each face, in kernel face order: the face seen going +x (its outward
# normal -x: texture "Left"), going -x ("Right"), going +y ("Front"), going -y ("Back"), top ("Top").
_AMAZON_FACES = (
    (182.9, 162.1, 128.4),
    (182.8, 162.1, 128.4),
    (141.9, 126.5, 101.9),
    (141.9, 126.6, 101.9),
    (141.9, 126.6, 101.9),
)
_DEEPRACER_BOX_FACES = (
    (32.2, 35.7, 67.7),
    (31.9, 35.7, 67.2),
    (37.6, 47.2, 66.1),
    (35.5, 46.3, 67.4),
    (35.4, 46.2, 67.4),
)


def _grey(v: float) -> tuple[tuple[float, float, float], ...]:
    return ((255.0 * v,) * 3,) * 5


def _car(body: float, wheel: float, hump: float) -> tuple:
    w = _grey(wheel)
    b = _grey(body)
    return (
        # dx, dy, length, width, height, z0, face colours
        (-0.0817, 0.081, 0.072, 0.034, 0.072, 0.0, w),
        (-0.0817, -0.081, 0.072, 0.034, 0.072, 0.0, w),
        (0.0823, 0.080, 0.072, 0.034, 0.072, 0.0, w),
        (0.0823, -0.080, 0.072, 0.034, 0.072, 0.0, w),
        (0.004, 0.0, 0.324, 0.188, 0.055, 0.05, b),
        (0.0475, 0.0, 0.225, 0.136, 0.070, 0.105, b),
        (0.1225, 0.0, 0.075, 0.080, 0.036, 0.175, _grey(hump)),
    )


#: Primitives of each kind in its own frame: (dx, dy, length, width, height, z0, 5 face RGBs).
PARTS: dict[str, tuple] = {
    "box_obstacle": ((0.0, 0.0, 0.4, 0.3, 0.25, 0.0, (_BROWN,) * 5),),
    "amazon_box_obstacle": ((0.0, 0.0, 0.4, 0.3, 0.25, 0.0, _AMAZON_FACES),),
    "deepracer_box_obstacle": ((0.0, 0.0, 0.36, 0.265, 0.24, 0.0, _DEEPRACER_BOX_FACES),),
    "bot_car": _car(0.156, 0.1, 0.156),
    "racecar": _car(0.1, 0.03, 0.035),
}


def is_car(kind: str) -> bool:
    """True for the car kinds (bot_car, racecar), False for the boxes."""
    return kind in ("bot_car", "racecar")


def _template(kinds: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(slot (M,), geometry (M, 6), face colours (M, 5, 3)) of the primitives of `kinds`, concatenated."""
    slot, geo, rgb = [], [], []
    for k, kind in enumerate(kinds):
        if kind not in PARTS:
            raise ValueError(f"unknown object kind {kind!r}; expected one of {KINDS}")
        for part in PARTS[kind]:
            slot.append(k)
            geo.append(part[:6])
            rgb.append(part[6])
    return (
        np.array(slot, dtype=np.int64),
        np.array(geo, dtype=np.float64).reshape(-1, 6),
        np.array(rgb, dtype=np.float64).reshape(-1, 5, 3),
    )


def object_boxes(xy: np.ndarray, yaw: np.ndarray, kinds: Sequence[str]) -> np.ndarray:
    """Render primitives of K objects per car: (N, M, BOX_COLS) float64 (M = primitives of all kinds).

    xy (N, K, 2): base positions [m] of each car's own K objects (car i sees only row i); yaw (N, K) [rad];
    kinds: K names from KINDS. A slot whose xy (or yaw) is NaN holds no object: its primitives get zero
    size (skipped by the camera and the LIDAR). Layout: see `_camera_kernels.BOX_COLS`.
    """
    kinds = tuple(kinds)
    xy = np.asarray(xy, dtype=np.float64)
    yaw = np.asarray(yaw, dtype=np.float64)
    if xy.ndim != 3 or xy.shape[1:] != (len(kinds), 2) or yaw.shape != xy.shape[:2]:
        raise ValueError(
            f"object_boxes needs xy (N, K, 2) and yaw (N, K) for K = {len(kinds)} kinds, got {xy.shape}, {yaw.shape}"
        )
    slot, geo, rgb = _template(kinds)
    n, m = xy.shape[0], slot.size
    out = np.zeros((n, m, BOX_COLS))
    if m == 0:
        return out
    px, py, pyaw = xy[:, slot, 0], xy[:, slot, 1], yaw[:, slot]  # (N, M)
    empty = ~(np.isfinite(px) & np.isfinite(py) & np.isfinite(pyaw))
    px, py, pyaw = np.where(empty, 0.0, px), np.where(empty, 0.0, py), np.where(empty, 0.0, pyaw)
    c, s = np.cos(pyaw), np.sin(pyaw)
    out[..., 0] = px + c * geo[:, 0] - s * geo[:, 1]
    out[..., 1] = py + s * geo[:, 0] + c * geo[:, 1]
    out[..., 2] = pyaw
    out[..., 3:6] = geo[:, 2:5]
    out[..., 11] = geo[:, 5]
    # world normals of the faces seen going +x, -x, +y, -y (outward -x, +x, -y, +y), then the top
    zero = np.zeros_like(c)
    normals = np.stack(
        [
            np.stack([-c, -s, zero], -1),
            np.stack([c, s, zero], -1),
            np.stack([s, -c, zero], -1),
            np.stack([-s, c, zero], -1),
            np.broadcast_to(np.array([0.0, 0.0, 1.0]), (*c.shape, 3)),
        ],
        axis=2,
    )  # (N, M, 5, 3)
    out[..., 6:11] = lit_lumas(rgb[None], normals)
    out[empty, 3:6] = 0.0
    return out
