"""The simapp's cameras for people, in colour at 640×480: follow ("main_camera"), top ("sub_camera"), in-car.

What DeepRacer's Gazebo shows people (geometry from `markov/cameras/handlers/*.py` and
`models/{camera,top_camera}/model.sdf` of the simapp; see docs/watch-analyse.md §2.3):

* Follow camera (`FollowCarCamera`, DRfC's "main_camera", the KVS / MP4 picture): pitched 0.314 rad (18°)
  down, placed 1.5 m behind the car *along its pitched optical axis* (`apply_orientation(q(pitch, yaw),
  [-1.5, 0, 0])`, so 1.5·cos 18° = 1.427 m behind on the ground) and then put at a fixed height of 1.0 m;
  hfov 1.13 rad, 640×480. It follows with a damped lerp (`FollowCam`).
* Top camera (`TopCamera`, "sub_camera"): 6.0 m above the centre of the outer border's bounding box,
  looking straight down with +x to the right and +y up (its orientation is roll = pitch = π/2, yaw = π);
  its hfov makes the bounding box plus 25 % padding fit the frame (`top_hfov`).
* In-car camera ("camera", the picture the model's 160×120 grey image is shrunk from): the car's camera
  geometry of `sensors.camera` (0.145 m ahead of base_link, 0.130 m up, 15° down, hfov 1.13 rad).

How it renders (one core, numba, GIL released; `_view_kernels`):

* A pinhole camera without roll over flat ground maps every image row to a line of constant forward
  distance, and along the row the ground point is linear in the column. So each row's ground is a few
  "slots" (lines of texture coordinates, linear in the column) sampled bilinearly from a colour top-down
  texture with a mip chain (`ground_rgb`): the level is chosen per slot from the pixel's ground footprint,
  and rows whose footprint is long in depth (far ground) get up to 4 slots along depth, so that far
  ground neither shimmers nor smears. The share of a row above the horizon (or beyond the 300 m far
  clip) is sky, so the horizon is antialiased.
* Walls (the world's field wall, `sensors.camera.wall_boxes`, in colour and lit per face) are a per-pixel
  ray exit (enclosing wall) or entry test, their bottom and top edges antialiased analytically; only rows
  whose ground reaches the nearest wall are tested.
* Bodies (`Scene`): cars as 8 boxes (the model camera's 7-box DeepRacer shape of `objects_view` plus a
  black chassis plate) with a lit shell colour, obstacles as one box. Each box is ray-cast inside its
  projected screen rectangle; a depth buffer (t along the optical axis) gives exact occlusion among the
  bodies and against the ground. Pixels on a body's silhouette or between two faces of different colour
  are then supersampled 2×2 (the background under them is kept from before the bodies were drawn).
* The top view's ground and walls never change: they are rendered once, 3×3 supersampled, and cached;
  a frame copies them and draws the bodies.

Lighting is the simapp worlds' (`sensors.appearance`): ambient 0.5 plus a directional sun, no shadows;
each face of a box is lit by its world normal. Image coordinates: (col, row) continuous, pixel (i, j)
covers [i, i+1) × [j, j+1), row 0 at the top.

Cost (benchmarks/view_render.py, reinvent_base, 640×480, one core of a shared 2-core VM, numba warm,
median ms per frame): follow ≈ 2.4-3.0, top ≈ 0.35, in-car ≈ 2.0 with one car; follow ≈ 3.2-3.9,
top ≈ 1.1-1.4, in-car ≈ 3.2-3.9 with 4 cars and 3 boxes near the agent. Building the texture (~0.5 s,
13 MB) and the top background (~0.3 s) happens once. Not thread-safe per instance and camera: each camera
of a PeopleCameras keeps its own scratch buffers, so render one camera from one thread at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from drlocal.sensors.appearance import AMBIENT, SUN_DIFFUSE, SUN_DIRECTION, Appearance, load_appearance, sun_cosine
from drlocal.sensors.camera import (
    CAMERA_HEIGHT,
    CAMERA_PITCH,
    CAMERA_X,
    CLIP_FAR,
    HORIZONTAL_FOV,
    wall_boxes,
)
from drlocal.sensors.objects_view import PARTS
from drlocal.tracks.track import Track
from drlocal.view import _view_kernels as K
from drlocal.view.ground_rgb import RGBTexture, WorldColours, rgb_texture, world_colours
from drlocal.view.scene import CAR_COLORS, Scene

# ----- simapp camera constants -----
#: Follow camera (`follow_car_camera.py`): pitch [rad], offset along the pitched axis [m], height [m], damping [1/s].
FOLLOW_PITCH = 0.314
FOLLOW_DISTANCE = 1.5
FOLLOW_HEIGHT = 1.0
FOLLOW_DAMPING = 1.0
#: Horizontal offset of the follow camera behind the car [m]: 1.5·cos(0.314) = 1.4268.
FOLLOW_BACK = FOLLOW_DISTANCE * math.cos(FOLLOW_PITCH)
#: Follow and in-car cameras' horizontal field of view [rad] (`models/camera/model.sdf`).
FOLLOW_HFOV = 1.13
#: Top camera (`top_camera.py`): height [m], padding around the outer border's bounding box.
TOP_HEIGHT = 6.0
TOP_PADDING = 0.25
WIDTH, HEIGHT = 640, 480

# ----- ground sampling plan -----
#: Largest depth/lateral footprint ratio one bilinear slot may cover before another slot is added along depth.
_MAX_ANISO = 4.0
_MAX_SLOTS = 4
#: Added to each slot's log2 mip level (negative: sharper, more shimmer). With _MAX_ANISO this was chosen
#: against a 4×4 supersampled render (mean absolute error ~1 level of 255 on reinvent_base, 643 slots for
#: 402 ground rows; 2.0 / 0.0 gave 0.8 with 858 slots, i.e. 33 % more samples).
_LEVEL_BIAS = -0.5
#: Supersampling (per axis) of the cached top-view background.
_TOP_SS = 3

# ----- bodies -----
#: Albedo of the cars' black parts: wheels (Gazebo black), chassis plate, camera/sensor hump.
WHEEL_RGB = CAR_COLORS["Black"]
CHASSIS_RGB = (40, 40, 40)
SENSOR_RGB = (20, 20, 20)


def _car_parts() -> tuple[np.ndarray, np.ndarray]:
    """The DeepRacer car: (geometry (P, 6) [dx, dy, length, width, height, z0], role (P,)) with role 0 =
    shell colour, 1 = wheel, 2 = chassis, 3 = sensor. The model camera's 7 boxes (`objects_view`: wheels,
    lower body, upper shell, camera hump) plus a chassis plate between the wheels."""
    geo = [list(p[:6]) for p in PARTS["racecar"]]
    roles = [1, 1, 1, 1, 0, 0, 3]
    geo.append([0.0, 0.0, 0.26, 0.125, 0.03, 0.02])
    roles.append(2)
    return np.array(geo, dtype=np.float64), np.array(roles, dtype=np.int64)


_CAR_GEO, _CAR_ROLE = _car_parts()
#: The obstacle box as the simapp draws it (`box_obstacle` model: 0.4 × 0.3 × 0.25 m; the 0.5 × 0.4 m of
#: `sim.race.BOX_FOOTPRINT` is markov's collision footprint, larger than the model).
_BOX_GEO = np.array([list(PARTS["box_obstacle"][0][:6])], dtype=np.float64)


#: Body templates for `_view_kernels.build_prims`: kind index (0 car, 1 box), boxes, colour roles, palette.
_KIND_INDEX = {"car": 0, "box": 1}
_TGEO = np.ascontiguousarray(np.concatenate([_CAR_GEO, _BOX_GEO]))
_TROLE = np.concatenate([_CAR_ROLE, [0]]).astype(np.int64)
_TSTART = np.array([0, _CAR_GEO.shape[0], _CAR_GEO.shape[0] + 1], dtype=np.int64)
_PALETTE = np.array([(0, 0, 0), WHEEL_RGB, CHASSIS_RGB, SENSOR_RGB], dtype=np.float64)


@lru_cache(maxsize=64)
def _kind_codes(kinds: tuple[str, ...]) -> tuple[np.ndarray, int]:
    """(template index per body, number of boxes) of a kinds tuple (cached: scenes repeat theirs)."""
    try:
        codes = np.array([_KIND_INDEX[k] for k in kinds], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"unknown body kind {exc.args[0]!r}; expected 'car' or 'box'") from None
    n = int((_TSTART[codes + 1] - _TSTART[codes]).sum()) if codes.size else 0
    return codes, n


def body_prims(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Render boxes of every body of `scene`: (prims (P, PRIM_COLS) float64, start (M + 1,) int64) where
    body i's boxes are rows start[i]:start[i + 1]. Faces are lit by their world normal (the worlds' ambient
    + sun); a body with a NaN pose is not drawn."""
    kinds = tuple(scene.kinds)
    codes, n = _kind_codes(kinds)
    m = len(kinds)
    xy = np.ascontiguousarray(scene.xy, dtype=np.float64).reshape(-1, 2)
    yaw = np.ascontiguousarray(scene.yaw, dtype=np.float64).reshape(-1)
    colors = np.ascontiguousarray(scene.colors, dtype=np.float64).reshape(-1, 3)
    if xy.shape[0] != m or yaw.shape[0] != m or colors.shape[0] != m:
        raise ValueError(f"scene arrays disagree: {m} kinds, xy {xy.shape}, yaw {yaw.shape}, colors {colors.shape}")
    out = np.empty((n, K.PRIM_COLS))
    start = np.empty(m + 1, dtype=np.int64)
    K.build_prims(
        xy, yaw, colors, codes, _TGEO, _TROLE, _TSTART, _PALETTE, AMBIENT, SUN_DIFFUSE, SUN_DIRECTION, out, start
    )
    return out, start


def colour_walls(track: Track, app: Appearance) -> np.ndarray:
    """The walls the model camera draws (`sensors.camera.wall_boxes`), with lit RGB faces: (K, WALL_COLS)."""
    grey = wall_boxes(track, app)
    out = np.zeros((grey.shape[0], K.WALL_COLS))
    if grey.shape[0] == 0 or app.wall is None:
        return out
    rgb = np.asarray(app.wall.rgb, dtype=np.float64)
    normals = np.array([(-1.0, 0, 0), (1.0, 0, 0), (0, -1.0, 0), (0, 1.0, 0)])
    lit = np.clip(rgb * (AMBIENT + SUN_DIFFUSE * sun_cosine(normals)[:, None]), 0.0, 255.0)
    out[:, 0:5] = grey[:, 0:5]
    out[:, 5:17] = lit.reshape(-1)
    out[:, 17] = grey[:, 9]
    return out


def top_hfov(track: Track, reverse: bool = False, width: int = WIDTH, height: int = HEIGHT) -> float:
    """The simapp top camera's horizontal field of view [rad]: outer border bbox + 25 % padding fits."""
    outer = track.lines(reverse).outer
    span_x = float(np.ptp(outer[:, 0])) * (1.0 + TOP_PADDING)
    span_y = float(np.ptp(outer[:, 1])) * (1.0 + TOP_PADDING)
    if span_x >= span_y:
        return 2.0 * math.atan(0.5 * span_x / TOP_HEIGHT)
    half_v = math.atan(0.5 * span_y / TOP_HEIGHT)
    return 2.0 * math.atan(width / height * math.tan(half_v))


# ----------------------------------------------------------------------------------------------
# camera model and ground plan


@dataclass(frozen=True)
class Pinhole:
    """A camera without roll: image size [px], focal length [px], optical centre height [m], pitch below
    horizontal [rad]. Pose (x, y, yaw) comes per frame."""

    width: int
    height: int
    focal: float
    z: float
    pitch: float

    @classmethod
    def from_hfov(cls, width: int, height: int, hfov: float, z: float, pitch: float) -> Pinhole:
        return cls(width, height, (width / 2) / math.tan(hfov / 2), z, pitch)

    def project(self, x: float, y: float, yaw: float, px: float, py: float, pz: float) -> tuple[float, float]:
        """(col, row) of world point (px, py, pz) for the camera at (x, y, yaw); NaN behind the camera."""
        c, s = math.cos(yaw), math.sin(yaw)
        cp, sp = math.cos(self.pitch), math.sin(self.pitch)
        dx, dy, dz = px - x, py - y, pz - self.z
        a = c * dx + s * dy
        b = -s * dx + c * dy
        zc = a * cp - dz * sp
        if zc <= 0:
            return math.nan, math.nan
        return self.width / 2 - self.focal * b / zc, self.height / 2 + self.focal * (-a * sp - dz * cp) / zc


@dataclass(eq=False)
class _Plan:
    """Everything per image row / column the kernels need for one camera (see `_view_kernels`)."""

    cam: Pinhole
    row_rx: np.ndarray  # (H,) float32 forward component of each row's rays (yaw frame)
    row_rz: np.ndarray  # (H,) float32 vertical component
    col_ry: np.ndarray  # (W,) float32 lateral component (left +)
    row_s0: np.ndarray  # (H + 1,) int64 first slot of each row
    slot_fwd: np.ndarray  # (S,) float64 forward ground distance [m]
    slot_k: np.ndarray  # (S,) float64 ground depth t: lateral offset = t · col_ry
    slot_lvl: np.ndarray  # (S,) int64 mip level
    slot_w: np.ndarray  # (S,) float64 weight (share of the row)
    row_sky: np.ndarray  # (H,) float64 share of the row that sees the sky
    row_tg: np.ndarray  # (H,) float32 depth of the ground at the row centre (FAR: sky)
    row_dmax: np.ndarray  # (H,) float64 farthest horizontal ground distance near the row [m]
    row_kzlo: np.ndarray  # (H,) float64 lowest slope (rise per horizontal metre) near the row
    row_g: np.ndarray  # (H,) float64 pixels per unit of slope (wall edge antialiasing)
    scratch: dict = field(default_factory=dict)


def _ground_at(cam: Pinhole, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At continuous row coordinate y: (forward ground distance [m], ground depth t, valid mask) of the
    central column; valid = below the horizon and within the far clip."""
    cp, sp = math.cos(cam.pitch), math.sin(cam.pitch)
    v = (np.asarray(y, dtype=np.float64) - cam.height / 2) / cam.focal
    rx = cp - v * sp
    rz = -sp - v * cp
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(rz < 0, cam.z / -rz, np.inf)
        dist = t * np.sqrt(rx * rx + rz * rz)
    ok = np.isfinite(t) & (dist <= CLIP_FAR)
    return np.where(ok, t * rx, 0.0), np.where(ok, t, 0.0), ok


def _ground_limit(cam: Pinhole) -> float:
    """Row coordinate above which (smaller y) the ground is not seen (horizon or far clip)."""
    dep = math.asin(min(cam.z / CLIP_FAR, 1.0))  # least depression angle of a ground point within the clip
    ang = dep - cam.pitch
    if ang <= -math.pi / 2 + 1e-9:
        return -math.inf
    return cam.height / 2 + cam.focal * math.tan(ang)


def _level(foot: float, texel: float, n_levels: int) -> int:
    return int(np.clip(np.round(np.log2(max(foot / texel, 1e-9)) + _LEVEL_BIAS), 0, n_levels - 1))


def make_plan(cam: Pinhole, texel: float, n_levels: int, *, hard_edges: bool = False) -> _Plan:
    """Ground slots and ray tables of `cam` for a texture with level-0 `texel` [m] and `n_levels` levels."""
    h, w, f = cam.height, cam.width, cam.focal
    cp, sp = math.cos(cam.pitch), math.sin(cam.pitch)
    v = (np.arange(h) + 0.5 - h / 2) / f
    u = (np.arange(w) + 0.5 - w / 2) / f
    row_rx, row_rz, col_ry = cp - v * sp, -sp - v * cp, -u
    y_lim = _ground_limit(cam)
    eps = 1e-3
    s0, fwd_l, k_l, lvl_l, w_l = [0], [], [], [], []
    row_sky = np.zeros(h)
    for r in range(h):
        ya, yb = max(float(r), y_lim + 1e-6), float(r + 1)
        share = max(yb - ya, 0.0)
        row_sky[r] = 1.0 - share
        if share > 0:
            ym = 0.5 * (ya + yb)
            fm, tm, _ = _ground_at(cam, np.array([ym - eps, ym + eps, ym]))
            j_dep = abs(fm[1] - fm[0]) / (2 * eps)
            j_lat = tm[2] / f
            n = int(np.clip(np.ceil(j_dep * share / (_MAX_ANISO * max(j_lat, texel))), 1, _MAX_SLOTS))
            ys = ya + (np.arange(n) + 0.5) * share / n
            fwd, t, ok = _ground_at(cam, ys)
            for i in range(n):
                if not ok[i]:
                    row_sky[r] += share / n
                    continue
                fd, _, _ = _ground_at(cam, np.array([ys[i] - eps, ys[i] + eps]))
                jd = abs(fd[1] - fd[0]) / (2 * eps) * share / n
                fwd_l.append(fwd[i])
                k_l.append(t[i])
                lvl_l.append(_level(max(t[i] / f, jd), texel, n_levels))
                w_l.append(share / n)
        s0.append(len(fwd_l))
    _, tg, okc = _ground_at(cam, np.arange(h) + 0.5)
    # farthest ground of each row (its top edge, half a pixel of margin) across the widest column
    ya = np.arange(h) - 0.5
    _, ta, oka = _ground_at(cam, ya)
    rx_a = cp - (ya - h / 2) / f * sp
    row_dmax = np.where(oka, ta * np.sqrt(rx_a**2 + col_ry.max() ** 2), np.inf)
    # lowest slope near each row (its bottom edge plus half a pixel), over the columns
    vb = (np.arange(h) + 1.5 - h / 2) / f
    kz_b = (-sp - vb * cp)[:, None] / np.sqrt((cp - vb * sp)[:, None] ** 2 + col_ry[None, :] ** 2)
    row_kzlo = kz_b.min(axis=1)
    # pixels per unit of slope at the central column
    v0, v1 = (np.arange(h) - h / 2) / f, (np.arange(h) + 1 - h / 2) / f
    kz0 = (-sp - v0 * cp) / np.abs(cp - v0 * sp).clip(1e-12)
    kz1 = (-sp - v1 * cp) / np.abs(cp - v1 * sp).clip(1e-12)
    row_g = np.full(h, 1e6) if hard_edges else 1.0 / np.maximum(np.abs(kz0 - kz1), 1e-12)
    f32 = np.float32
    return _Plan(
        cam=cam,
        row_rx=row_rx.astype(f32),
        row_rz=row_rz.astype(f32),
        col_ry=col_ry.astype(f32),
        row_s0=np.array(s0, dtype=np.int64),
        slot_fwd=np.array(fwd_l, dtype=np.float64),
        slot_k=np.array(k_l, dtype=np.float64),
        slot_lvl=np.array(lvl_l, dtype=np.int64),
        slot_w=np.array(w_l, dtype=np.float64),
        row_sky=row_sky,
        row_tg=np.where(okc, tg, K.FAR).astype(f32),
        row_dmax=row_dmax,
        row_kzlo=row_kzlo,
        row_g=row_g,
    )


# ----------------------------------------------------------------------------------------------


class FollowCam:
    """The simapp's damped follow camera (`FollowCarCamera`), as a small state machine.

    Per update with sim-time step dt [s] and fraction a = clip(dt · damping, 0, 1) (damping 1.0 /s):
    the yaw is lerped toward the car's, ``yaw ← yaw + a·(car_yaw − yaw)`` (shortest way round); the target
    position is 1.427 m behind the car along that yaw; the camera's ground position is lerped toward it,
    ``pos ← pos + a·(target − pos)``; and the camera looks along ``atan2(car − previous position)`` (π when
    the x difference is exactly 0, as the simapp's helper). The simapp calls this at every Gazebo clock
    tick; calling it once per 1/15 s step gives nearly the same smoothing ((1 − 1/15)^15 = 0.355 left of
    a step after 1 s, against e^−1 = 0.368).
    """

    def __init__(self, damping: float = FOLLOW_DAMPING) -> None:
        self.damping = float(damping)
        self.x = self.y = self.yaw = 0.0
        self.last_yaw = 0.0

    @staticmethod
    def rigid(x: float, y: float, yaw: float) -> tuple[float, float, float]:
        """The camera pose rigidly behind a car at (x, y, yaw): what reset gives, (cam_x, cam_y, cam_yaw)."""
        return x - FOLLOW_BACK * math.cos(yaw), y - FOLLOW_BACK * math.sin(yaw), float(yaw)

    def reset(self, x: float, y: float, yaw: float) -> tuple[float, float, float]:
        """Put the camera rigidly behind the car (the simapp's `_reset`); returns its pose."""
        self.x, self.y, self.yaw = self.rigid(x, y, yaw)
        self.last_yaw = float(yaw)
        return self.x, self.y, self.yaw

    def update(self, x: float, y: float, yaw: float, dt: float) -> tuple[float, float, float]:
        """Advance by dt [s] toward the car at (x, y, yaw); returns (cam_x, cam_y, cam_yaw) for `follow`."""
        frac = min(max(dt * self.damping, 0.0), 1.0)
        target = float(yaw)
        cur = self.last_yaw
        while cur > target + math.pi:
            target += 2 * math.pi
        while target > cur + math.pi:
            target -= 2 * math.pi
        lyaw = cur + frac * (target - cur)
        tx, ty = x - FOLLOW_BACK * math.cos(lyaw), y - FOLLOW_BACK * math.sin(lyaw)
        dx, dy = x - self.x, y - self.y
        look = math.pi if dx == 0 else math.atan2(dy, dx)
        self.x += frac * (tx - self.x)
        self.y += frac * (ty - self.y)
        self.yaw = look
        self.last_yaw = lyaw
        return self.x, self.y, self.yaw


class PeopleCameras:
    """Follow, top and in-car colour views of one track (see module docstring). Images are (H, W, 3) uint8 RGB.

    world: the simapp world whose look to use (default: the track's name); reverse: driving direction
    (the top camera's framing uses the outer border of that direction, as the simapp; the ground looks
    the same both ways). Plans, the texture and the top background are built on first use.
    """

    def __init__(
        self, track: Track, *, world: str | None = None, reverse: bool = False, width: int = WIDTH, height: int = HEIGHT
    ) -> None:
        if width < 16 or height < 16:
            raise ValueError(f"image size must be at least 16×16, got {width}×{height}")
        self.track = track
        self.reverse = bool(reverse)
        self.width, self.height = int(width), int(height)
        self.appearance: Appearance = load_appearance(world or track.name)
        self.colours: WorldColours = world_colours(self.appearance)
        self.walls = colour_walls(track, self.appearance)
        self._sky = self.colours.sky.astype(np.float32)
        self.follow_cam = Pinhole.from_hfov(self.width, self.height, FOLLOW_HFOV, FOLLOW_HEIGHT, FOLLOW_PITCH)
        self.incar_cam = Pinhole.from_hfov(self.width, self.height, HORIZONTAL_FOV, CAMERA_HEIGHT, CAMERA_PITCH)
        outer = track.lines(self.reverse).outer
        lo, hi = outer.min(axis=0), outer.max(axis=0)
        self.top_centre = (float(lo[0] + hi[0]) / 2, float(lo[1] + hi[1]) / 2)
        self.top_fov = top_hfov(track, self.reverse, self.width, self.height)
        self.top_cam = Pinhole.from_hfov(self.width, self.height, self.top_fov, TOP_HEIGHT, math.pi / 2)
        self._plans: dict[str, _Plan] = {}
        self._texture: RGBTexture | None = None
        self._top_bg: tuple[np.ndarray, np.ndarray] | None = None

    # ----- lazily built parts -----

    @property
    def texture(self) -> RGBTexture:
        """The colour ground texture (built on first use, shared by instances of the same track and world)."""
        if self._texture is None:
            self._texture = rgb_texture(self.track, self.appearance)
        return self._texture

    def _plan(self, name: str) -> _Plan:
        plan = self._plans.get(name)
        if plan is None:
            tex = self.texture
            cam = self.follow_cam if name == "follow" else self.incar_cam
            plan = make_plan(cam, tex.texel, tex.n_levels)
            self._add_scratch(plan)
            self._plans[name] = plan
        return plan

    def _add_scratch(self, plan: _Plan) -> None:
        h, w = plan.cam.height, plan.cam.width
        self._add_row_scratch(plan)
        plan.scratch["ids"] = np.full((h, w), -1, dtype=np.int32)
        plan.scratch["bg"] = np.zeros((h, w, 3), dtype=np.uint8)
        plan.scratch["done"] = np.zeros((h, w), dtype=np.uint8)
        plan.scratch["depth"] = np.empty((h, w), dtype=np.float32)

    @staticmethod
    def _add_row_scratch(plan: _Plan) -> None:
        w = plan.cam.width
        # separate arrays, not rows of one 2-D array: the kernels' row loops vectorise only then
        plan.scratch["fb"] = tuple(np.zeros(w, dtype=np.float32) for _ in range(8))
        plan.scratch["kb"] = np.zeros(w, dtype=np.int32)
        plan.scratch["qb"] = tuple(np.zeros(w, dtype=np.int32) for _ in range(4))

    def _ground(self, plan: _Plan, x: float, y: float, yaw: float, out: np.ndarray, depth: np.ndarray) -> None:
        tex = self.texture
        K.ground_rows(
            float(x), float(y), float(plan.cam.z), math.cos(yaw), math.sin(yaw), plan.row_rx, plan.row_rz,
            plan.col_ry, plan.row_s0, plan.slot_fwd, plan.slot_k, plan.slot_lvl, plan.slot_w, plan.row_sky,
            plan.row_tg, tex.packed, tex.lev_off, tex.lev_w, tex.lev_h, tex.lev_inv, tex.x0, tex.y0, self._sky,
            self.walls, plan.row_dmax, plan.row_kzlo, plan.row_g, out, depth, plan.scratch["fb"], plan.scratch["kb"],
            plan.scratch["qb"],
        )  # fmt: skip

    def _bodies(
        self, plan: _Plan, scene: Scene, x: float, y: float, yaw: float, out: np.ndarray, depth: np.ndarray,
        skip: int = -1,
    ) -> None:  # fmt: skip
        prims, start = body_prims(scene)
        if prims.shape[0] == 0:
            return
        s0, s1 = (int(start[skip]), int(start[skip + 1])) if skip >= 0 else (0, 0)
        cam = plan.cam
        n = prims.shape[0]
        sc = plan.scratch
        if sc.get("rects") is None or sc["rects"].shape[0] < n:
            sc["rects"] = np.zeros((max(n, 16), 4), dtype=np.int64)
            sc["prm"] = np.zeros((max(n, 16), 12))
        K.draw_bodies(
            prims, s0, s1, float(x), float(y), float(cam.z), float(yaw), math.cos(cam.pitch), math.sin(cam.pitch),
            float(cam.focal), plan.row_rx, plan.row_rz, plan.col_ry, out, depth, sc["ids"], sc["bg"], sc["done"],
            sc["rects"], sc["prm"], sc["fb"][5], sc["fb"][6], True,
        )  # fmt: skip

    def _out(self, out: np.ndarray | None) -> np.ndarray:
        shape = (self.height, self.width, 3)
        if out is None:
            return np.empty(shape, dtype=np.uint8)
        if out.shape != shape or out.dtype != np.uint8 or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous uint8 array of shape {shape}")
        return out

    # ----- the three cameras -----

    def follow(
        self, scene: Scene, cam: tuple[float, float, float] | None = None, *, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Follow-camera frame (H, W, 3) uint8. cam: the camera's (x, y, yaw) [m, m, rad] from
        `FollowCam.update`; None = rigidly behind scene.ego (`FollowCam.rigid`)."""
        if cam is None:
            e = scene.ego
            cam = FollowCam.rigid(float(scene.xy[e][0]), float(scene.xy[e][1]), float(scene.yaw[e]))
        x, y, yaw = (float(v) for v in cam)
        if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(yaw)):
            raise ValueError(f"camera pose must be finite, got {cam}")
        plan = self._plan("follow")
        img = self._out(out)
        depth = plan.scratch["depth"]
        self._ground(plan, x, y, yaw, img, depth)
        self._bodies(plan, scene, x, y, yaw, img, depth)
        return img

    def incar(self, scene: Scene, *, out: np.ndarray | None = None) -> np.ndarray:
        """In-car camera frame (H, W, 3) uint8 of scene.ego (its own body is not drawn)."""
        e = scene.ego
        x, y, yaw = float(scene.xy[e][0]), float(scene.xy[e][1]), float(scene.yaw[e])
        if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(yaw)):
            raise ValueError(f"ego pose must be finite, got {(x, y, yaw)}")
        ox, oy = x + CAMERA_X * math.cos(yaw), y + CAMERA_X * math.sin(yaw)
        plan = self._plan("incar")
        img = self._out(out)
        depth = plan.scratch["depth"]
        self._ground(plan, ox, oy, yaw, img, depth)
        self._bodies(plan, scene, ox, oy, yaw, img, depth, skip=e)
        return img

    def top_background(self) -> tuple[np.ndarray, np.ndarray]:
        """The top view without bodies, (H, W, 3) uint8, and its depth (H, W) float32 (cached, read-only)."""
        if self._top_bg is None:
            self._top_bg = self._render_top_background()
        return self._top_bg

    def _render_top_background(self) -> tuple[np.ndarray, np.ndarray]:
        ss = _TOP_SS
        tc = self.top_cam
        big = Pinhole(tc.width * ss, tc.height * ss, tc.focal * ss, tc.z, tc.pitch)
        tex = self.texture
        plan = make_plan(big, tex.texel, tex.n_levels, hard_edges=True)
        self._add_row_scratch(plan)
        img = np.empty((big.height, big.width, 3), dtype=np.uint8)
        depth = np.empty((big.height, big.width), dtype=np.float32)
        x, y = self.top_centre
        self._ground(plan, x, y, math.pi / 2, img, depth)
        h, w = tc.height, tc.width
        small = img.reshape(h, ss, w, ss, 3).astype(np.float32).mean(axis=(1, 3))
        rgb = np.clip(small + 0.5, 0, 255).astype(np.uint8)
        dep = np.ascontiguousarray(depth[ss // 2 :: ss, ss // 2 :: ss])
        rgb.setflags(write=False)
        dep.setflags(write=False)
        top = make_plan(tc, tex.texel, tex.n_levels, hard_edges=True)
        self._add_scratch(top)
        self._plans["top"] = top
        return rgb, dep

    def top(self, scene: Scene, *, out: np.ndarray | None = None) -> np.ndarray:
        """Top-camera frame (H, W, 3) uint8: the cached background with the bodies drawn."""
        bg, bg_depth = self.top_background()
        plan = self._plans["top"]
        img = self._out(out)
        np.copyto(img, bg)
        depth = plan.scratch["depth"]
        np.copyto(depth, bg_depth)
        x, y = self.top_centre
        self._bodies(plan, scene, x, y, math.pi / 2, img, depth)
        return img

    # ----- projections -----

    def top_pixel(self, x: float, y: float, z: float = 0.0) -> tuple[float, float]:
        """(col, row) of world point (x, y, z) [m] in the top view (continuous; pixel (i, j) covers [i, i+1))."""
        cx, cy = self.top_centre
        return self.top_cam.project(cx, cy, math.pi / 2, x, y, z)

    def follow_pixel(self, cam: tuple[float, float, float], x: float, y: float, z: float = 0.0) -> tuple[float, float]:
        """(col, row) of world point (x, y, z) [m] in the follow view of a camera at cam = (x, y, yaw)."""
        return self.follow_cam.project(float(cam[0]), float(cam[1]), float(cam[2]), x, y, z)

    def incar_pixel(self, pose: tuple[float, float, float], x: float, y: float, z: float = 0.0) -> tuple[float, float]:
        """(col, row) of world point (x, y, z) [m] in the in-car view of a car at base_link pose (x, y, yaw)."""
        px, py, yaw = (float(v) for v in pose)
        return self.incar_cam.project(px + CAMERA_X * math.cos(yaw), py + CAMERA_X * math.sin(yaw), yaw, x, y, z)

    def start_pose(self, at: float) -> tuple[float, float, float]:
        """base_link pose on the centre line at lap fraction `at` of this direction, heading along the track."""
        lines = self.track.lines(self.reverse)
        xy, yaw = lines.pose_at(np.array([(at % 1.0) * lines.length]))
        return float(xy[0, 0]), float(xy[0, 1]), float(yaw[0])
