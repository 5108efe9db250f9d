"""The DeepRacer camera(s): what the car sees, rendered for N cars at once (contract §4.4, §5).

Contract geometry: the optical centre sits (0.14529, 0, 0.13033) m from base_link (x forward, z up;
base_link is taken at ground level, as the LIDAR module does), pitched 15° down, horizontal FOV 1.13 rad,
rendered by Gazebo at 640×480 (square pixels, so the vertical FOV follows from the aspect ratio), no
distortion, clip 0.02-300 m. The simapp shrinks the frame to 160×120 with PIL BILINEAR (antialiased:
a triangle filter one output pixel in radius) and converts it to grey, Y = 0.2989 R + 0.587 G + 0.114 B
truncated to uint8 (front and LEFT_CAMERA), or PIL's rounded ITU-R 601 ``convert('L')`` (stereo).
STEREO_CAMERAS are two such cameras 0.03 m left and right of the centre line (channel 0 = left).

How the renderer works (everything is batched over cars; the kernels are numba, single-threaded):

* The camera is rigid on the car and the ground is flat, so the ground point behind every pixel is a
  constant in the car frame. At construction the renderer precomputes, for each image row, a few
  "sample slots": car-frame ground points for the 160 columns at sub-row offsets inside the PIL filter,
  their triangle weights and the mip level that matches their ground footprint (from the Jacobian of
  the pixel → ground map). Far rows, whose footprint is long in depth and narrow across, get more
  slots along the depth direction (anisotropic filtering); near rows get one.
* The ground is a top-down grey texture of the track (`_camera_texture`: 5 mm texels, antialiased
  lines, baked deterministic noise) with a 2×2 box mip chain. Rendering a car is then, per slot, a
  rotation + translation of the precomputed points and a bilinear lookup at the slot's level; the
  weighted sum approximates "render at 640×480, then bilinear-downscale" without its shimmering.
* Walls are axis-aligned boxes (the 1 m field wall of generated tracks, 2022_reinvent_champ's 0.914 m
  wall, low barriers and terrain rims) cast per pixel from the optical centre: the ray's exit (inside a
  walled field) or entry distance gives the wall's grey (per-face lighting); the wall's bottom edge
  (where it meets the ground) and top edge are antialiased analytically with the exact PIL edge
  response. Tall city/grandstand backdrops tens of metres away (buildings, stands with gaps and varying
  heights) are left out: the sky shows above the horizon there.
* Obstacle boxes and other cars (`boxes`; `objects_view.object_boxes` turns object poses into them: one
  box per obstacle, 7 per car) are oriented boxes, each with a bottom height z0 and a lit grey per face,
  ray-cast from the optical centre. Per car or shared by all cars. Occlusion is exact per ray (nearest
  hit over all boxes, so interpenetrating car parts are right too). Antialiasing is 2×2 supersampling,
  done where it matters: the ray through each pixel centre inside a box's projected screen rectangle is
  tested first; a pixel whose centre sees the same box face (or nothing) as its four neighbours' keeps
  that, any other (an edge pixel) gets its 4 subsample rays tested against the boxes of its rows and
  column tile and blended. For straight edges this equals full 2×2 supersampling; only slivers thinner
  than a pixel that no centre ray sees can differ (tests/test_camera_objects.py compares with a
  brute-force render). With shared boxes a car can skip one of them, its own (`exclude`).
* Above the horizon (row 26.22, from the 15° pitch) is the sky; the row across it gets the exact share
  of sky that PIL's triangle filter gives it. Colours and lighting: see `appearance`.

Numbers (5 mm texels): 171 slots for the 94 ground rows (1 slot per row from 0.3 m in, up to 4 for the
far rows), about 1.8 bilinear lookups per ground pixel; rows that the field wall hides in every column
are skipped. Mean absolute difference to a 1280×960 point-sampled render shrunk by PIL: about 1.2 grey
levels (tests/test_camera.py). Cost: about 65-85 µs per image on one core (benchmarks/camera_render.py);
6 objects 1-6 m ahead of every car (3 boxes, 3 bot cars) add about 40 % (`--objects 6`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from drlocal.sensors import _camera_kernels as K
from drlocal.sensors._camera_texture import GroundTexture, ground_texture
from drlocal.sensors.appearance import DEFAULT_BOX_LUMA, Appearance, load_appearance, luma_gains
from drlocal.tracks.track import Track

IMAGE_HEIGHT, IMAGE_WIDTH = 120, 160
#: Gazebo's render size before the simapp's resize.
RENDER_HEIGHT, RENDER_WIDTH = 480, 640
#: Optical centre relative to base_link [m] (x forward, z up); base_link is at ground level.
CAMERA_X = 0.14529
CAMERA_HEIGHT = 0.13033
#: Pitch of the optical axis below horizontal [rad] (15°).
CAMERA_PITCH = 0.2618
HORIZONTAL_FOV = 1.13  # [rad]
VERTICAL_FOV = 2.0 * np.arctan(np.tan(HORIZONTAL_FOV / 2) * RENDER_HEIGHT / RENDER_WIDTH)  # [rad]
#: Lateral offset of the STEREO_CAMERAS from the car's centre line [m] (left +, right -).
STEREO_OFFSET_Y = 0.03
CLIP_NEAR, CLIP_FAR = 0.02, 300.0  # [m]
#: Focal length in 160×120 pixels (square pixels): 126.07.
FOCAL_PX = (IMAGE_WIDTH / 2) / np.tan(HORIZONTAL_FOV / 2)
#: Row coordinate of the horizon (continuous; row i covers [i, i+1), row 0 at the top): 26.22.
HORIZON_ROW = IMAGE_HEIGHT / 2 - FOCAL_PX * np.tan(CAMERA_PITCH)

# ----- ground sampling plan (tuned against the 640×480 supersampled reference, see tests) -----
#: Gaussian-equivalent radius of PIL's bilinear downscale filter, in output pixels (1/sqrt(6)).
_FILTER_SIGMA = 0.408
#: Blur along depth of each of n slots, in output pixels of depth footprint / n.
_DEPTH_SIGMA = 0.5
#: Allowed over-blur across (lateral) before another slot is added along depth, and the slot cap.
_MAX_ANISO = 3.0
_MAX_SLOTS = 4
#: Added to the log2 level of every slot (negative = sharper).
_LEVEL_BIAS = 0.0


def pixel_rays(col: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rays through image points (continuous 160×120 coordinates, pixel centres at i + 0.5).

    Returns the unit horizontal direction (hx, hy) in the car frame (x forward, y left) and the slope
    kz = rise per metre of horizontal distance (negative below the horizon).
    """
    u = (np.asarray(col, dtype=np.float64) - IMAGE_WIDTH / 2) / FOCAL_PX
    v = (np.asarray(row, dtype=np.float64) - IMAGE_HEIGHT / 2) / FOCAL_PX
    cp, sp = np.cos(CAMERA_PITCH), np.sin(CAMERA_PITCH)
    dx = cp - v * sp
    dy = -u
    dz = -sp - v * cp
    hn = np.hypot(dx, dy)
    return dx / hn, dy / hn, dz / hn


def ground_distance(kz: np.ndarray) -> np.ndarray:
    """Horizontal distance from the optical centre to where a ray of slope kz meets the ground (inf: never)."""
    kz = np.asarray(kz, dtype=np.float64)
    with np.errstate(divide="ignore"):
        d = np.where(kz < 0, CAMERA_HEIGHT / -np.minimum(kz, -1e-300), np.inf)
    return np.where(d > CLIP_FAR, np.inf, d)


def ground_points(col: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Car-frame ground points (x, y relative to base_link, camera on the centre line) and a validity mask."""
    hx, hy, kz = pixel_rays(col, row)
    d = ground_distance(kz)
    ok = np.isfinite(d)
    d = np.where(ok, d, 0.0)
    return CAMERA_X + d * hx, d * hy, ok


@dataclass(frozen=True)
class CameraRig:
    """Which cameras an observation uses: lateral offsets [m] of each channel, and the grey conversion."""

    name: str
    offsets_y: tuple[float, ...]
    itu_luma: bool  # PIL convert('L') (rounded ITU-R 601) instead of the truncated float formula

    @property
    def channels(self) -> int:
        return len(self.offsets_y)

    @classmethod
    def get(cls, name: str) -> CameraRig:
        """Rig by name: 'front' (FRONT_FACING_CAMERA, 'observation'), 'left' (LEFT_CAMERA), 'stereo'."""
        key = _RIG_ALIASES.get(name, name)
        if key not in RIGS:
            raise ValueError(f"unknown camera {name!r}; expected one of {sorted(RIGS)} or a DeepRacer sensor name")
        return RIGS[key]


RIGS = {
    "front": CameraRig("front", (0.0,), False),
    "left": CameraRig("left", (STEREO_OFFSET_Y,), False),
    "stereo": CameraRig("stereo", (STEREO_OFFSET_Y, -STEREO_OFFSET_Y), True),
}
_RIG_ALIASES = {
    "FRONT_FACING_CAMERA": "front",
    "observation": "front",
    "LEFT_CAMERA": "left",
    "STEREO_CAMERAS": "stereo",
}


@dataclass(frozen=True, eq=False)
class GroundPlan:
    """Per-row ground sample slots (car frame) and per-pixel ray data for walls and boxes."""

    slot_row: np.ndarray  # (S,) int64 output row of each slot
    slot_level: np.ndarray  # (S,) int64 mip level
    slot_weight: np.ndarray  # (S,) float32
    slot_gx: np.ndarray  # (S, W) float32 car-frame ground x [m]
    slot_gy: np.ndarray  # (S, W) float32 car-frame ground y [m]
    row_sky: np.ndarray  # (H,) float32 weight of each row's samples that see the sky
    pix_hx: np.ndarray  # (H, W) float32 horizontal ray direction, car frame
    pix_hy: np.ndarray
    pix_kz: np.ndarray  # (H, W) float32 slope
    pix_g: np.ndarray  # (H, W) float32 output pixels per unit of slope (edge antialiasing)
    row_tmax: np.ndarray  # (H,) float32 farthest ground distance one pixel below each row
    row_kz_lo: np.ndarray  # (H,) float64 lowest slope (minus one pixel) of each row
    row_kz_hi: np.ndarray  # (H,) float64 highest slope (plus one pixel) of each row
    half_fov: float  # largest horizontal angle of any pixel ray from the optical axis [rad]
    sub_hx: np.ndarray  # (4, H, W) float64 rays of the 2×2 subsamples (boxes)
    sub_hy: np.ndarray
    sub_kz: np.ndarray


def plan_ground(texel: float, n_levels: int) -> GroundPlan:
    """Sample slots for a texture of level-0 `texel` [m] with `n_levels` levels (see module docstring)."""
    h, w = IMAGE_HEIGHT, IMAGE_WIDTH
    cols = np.arange(w) + 0.5
    rows_out, levels, weights, gxs, gys = [], [], [], [], []
    row_sky = np.zeros(h)
    for r in range(h):
        rc = r + 0.5
        ok = ground_points(cols, np.full(w, rc))[2]
        gxl, gyl, okl = ground_points(cols - 0.5, np.full(w, rc))
        gxr, gyr, okr = ground_points(cols + 0.5, np.full(w, rc))
        gxu, gyu, oku = ground_points(cols, np.full(w, rc - 0.5))
        gxd, gyd, okd = ground_points(cols, np.full(w, rc + 0.5))
        valid = ok & okl & okr & oku & okd
        if valid.any():
            j_lat = np.median(np.hypot(gxr - gxl, gyr - gyl)[valid])
            j_dep = np.median(np.hypot(gxd - gxu, gyd - gyu)[valid])
        else:  # the horizon row: footprints are huge, the coarsest level will do
            j_lat, j_dep = 1e3, 1e3
        sig_lat = _FILTER_SIGMA * j_lat
        floor_sig = texel / 2  # level 0 cannot be sharper than this
        n = 1
        while n < _MAX_SLOTS and _DEPTH_SIGMA * j_dep / n > _MAX_ANISO * max(sig_lat, floor_sig):
            n += 1
        sigma = max(sig_lat, _DEPTH_SIGMA * j_dep / n if n > 1 else _FILTER_SIGMA * j_dep)
        level = int(np.clip(np.round(np.log2(max(2 * sigma / texel, 1e-9)) + _LEVEL_BIAS), 0, n_levels - 1))
        # the share of the row's filter that lies above the horizon is sky, exactly (triangle CDF)
        above = float(np.clip(HORIZON_ROW - rc, -1.0, 1.0))
        sky = 0.5 + above - 0.5 * above * abs(above)
        row_sky[r] = sky
        delta = -1.0 + (2 * np.arange(n) + 1) / n
        wts = 1.0 - np.abs(delta)
        keep = rc + delta > HORIZON_ROW + 1e-6
        if sky < 1.0 - 1e-9 and not keep.any():  # a sliver of ground: one slot in its middle
            delta, wts, keep = np.array([(above + 1.0) / 2]), np.ones(1), np.ones(1, dtype=bool)
        delta, wts = delta[keep], wts[keep]
        if delta.size == 0:
            continue
        wts = wts / wts.sum() * (1.0 - sky)
        for d, wt in zip(delta, wts, strict=True):
            sx, sy, sok = ground_points(cols, np.full(w, rc + d))
            if not sok.all():  # beyond the far clip: no texture there, keep the farthest point
                far = np.nanmax(np.where(sok, sx, np.nan)) if sok.any() else CAMERA_X + CLIP_FAR
                sx, sy = np.where(sok, sx, far), np.where(sok, sy, 0.0)
            rows_out.append(r)
            levels.append(level)
            weights.append(wt)
            gxs.append(sx)
            gys.append(sy)
    hx, hy, kz = pixel_rays(cols[None, :], (np.arange(h) + 0.5)[:, None])
    _, _, kz_up = pixel_rays(cols[None, :], (np.arange(h) + 0.0)[:, None])
    _, _, kz_dn = pixel_rays(cols[None, :], (np.arange(h) + 1.0)[:, None])
    g = 1.0 / np.abs(kz_up - kz_dn)
    _, _, kz_below = pixel_rays(cols[None, :], (np.arange(h) + 1.5)[:, None])
    tmax = ground_distance(kz_below).max(axis=1)
    sub = [(-0.25, -0.25), (0.25, -0.25), (-0.25, 0.25), (0.25, 0.25)]
    shx, shy, skz = (np.empty((4, h, w)) for _ in range(3))
    for k, (dc, dr) in enumerate(sub):
        shx[k], shy[k], skz[k] = pixel_rays(cols[None, :] + dc, (np.arange(h) + 0.5 + dr)[:, None])
    f32 = np.float32
    return GroundPlan(
        slot_row=np.array(rows_out, dtype=np.int64),
        slot_level=np.array(levels, dtype=np.int64),
        slot_weight=np.array(weights, dtype=f32),
        slot_gx=np.ascontiguousarray(gxs, dtype=f32).reshape(-1, w),
        slot_gy=np.ascontiguousarray(gys, dtype=f32).reshape(-1, w),
        row_sky=row_sky.astype(f32),
        pix_hx=hx.astype(f32),
        pix_hy=hy.astype(f32),
        pix_kz=kz.astype(f32),
        pix_g=g.astype(f32),
        row_tmax=np.where(np.isfinite(tmax), tmax, 1e9).astype(f32),
        row_kz_lo=(kz - 1.0 / g).min(axis=1),
        row_kz_hi=(kz + 1.0 / g).max(axis=1),
        half_fov=float(np.abs(np.arctan2(shy, shx)).max() + 0.01),
        sub_hx=shx,
        sub_hy=shy,
        sub_kz=skz,
    )


# Walls at most this tall are trackside walls/barriers and are drawn; taller ones are city or
# grandstand backdrops tens of metres away, left out (see module docstring).
_MAX_WALL_HEIGHT = 2.5


def wall_boxes(track: Track, app: Appearance) -> np.ndarray:
    """The walls the camera draws for `track` in world `app`: (K, WALL_COLS) float32 (see _camera_kernels)."""
    wall = app.wall
    if wall is None or wall.height > _MAX_WALL_HEIGHT:
        return np.zeros((0, K.WALL_COLS), dtype=np.float32)
    x0, y0, x1, y1 = wall.bbox
    pts = track.route.reshape(-1, 2)
    encloses = bool(np.all((pts[:, 0] > x0) & (pts[:, 0] < x1) & (pts[:, 1] > y0) & (pts[:, 1] < y1)))
    thin = min(x1 - x0, y1 - y0) < 0.5
    if not encloses and not thin:
        # a rectangle through the route would cut the road: the real part (a barrier along the
        # track) cannot be recovered from a bounding box, so it is left out
        return np.zeros((0, K.WALL_COLS), dtype=np.float32)
    lum = wall.face_luma()
    row = [x0, y0, x1, y1, wall.height, *lum, 1.0 if encloses else 0.0]
    return np.array([row], dtype=np.float32)


#: Height of a box given without one [m] (LIDAR-style (K, 5) boxes).
DEFAULT_BOX_HEIGHT = 0.25


def box_array(boxes: np.ndarray | None) -> np.ndarray:
    """Boxes (..., ≥5) [cx, cy, yaw, length, width, (height), (albedo grey), ...] → kernel layout (..., BOX_COLS).

    Without a height column boxes are DEFAULT_BOX_HEIGHT tall; without a grey column their albedo is
    DEFAULT_BOX_LUMA. They stand on the ground (z0 = 0). Faces are lit like the walls (ambient + sun, by
    face normal). Arrays that already have BOX_COLS columns (`objects_view.object_boxes`) pass unchanged.
    """
    if boxes is None:
        return np.zeros((0, K.BOX_COLS))
    b = np.asarray(boxes, dtype=np.float64)
    if b.ndim == 1 and b.size == 0:
        return np.zeros((0, K.BOX_COLS))
    if b.ndim not in (2, 3) or not (5 <= b.shape[-1] <= 7 or b.shape[-1] == K.BOX_COLS):
        raise ValueError(
            "boxes must have shape (K, 6) [cx, cy, yaw, length, width, height] (optionally a 7th albedo column), "
            f"or (K, {K.BOX_COLS}) / (N, M, {K.BOX_COLS}) from objects_view.object_boxes, got {b.shape}"
        )
    if b.shape[-1] == K.BOX_COLS:
        return b
    out = np.zeros((*b.shape[:-1], K.BOX_COLS))
    out[..., 0:5] = b[..., 0:5]
    out[..., 5] = b[..., 5] if b.shape[-1] > 5 else DEFAULT_BOX_HEIGHT
    albedo = b[..., 6] if b.shape[-1] > 6 else np.full(b.shape[:-1], DEFAULT_BOX_LUMA)
    c, s = np.cos(b[..., 2]), np.sin(b[..., 2])
    z = np.zeros_like(c)
    # the face seen by a ray going +x_local has outward normal -x_local, and so on
    normals = np.stack(
        [np.stack(v, -1) for v in ((-c, -s, z), (c, s, z), (s, -c, z), (-s, c, z), (z, z, z + 1.0))], axis=-2
    )
    out[..., 6:11] = np.minimum(albedo[..., None] * luma_gains(normals), 255.0)
    return out


def _kernel_boxes(boxes: np.ndarray | None, n: int) -> np.ndarray:
    """boxes for the kernel: (1, M, BOX_COLS) shared by all cars or (N, M, BOX_COLS) per car, C-contiguous,
    rows with a non-finite value made empty (zero size) so that no NaN reaches the kernel."""
    bx = box_array(boxes)
    if bx.ndim == 2:
        bx = bx[None]
    elif bx.shape[0] != n:
        raise ValueError(f"per-car boxes must have shape ({n}, M, cols) for {n} cars, got {bx.shape}")
    bad = ~np.isfinite(bx).all(axis=-1)
    if bad.any():
        bx = bx.copy()
        bx[bad] = 0.0
    return np.ascontiguousarray(bx, dtype=np.float64)


def _away_from_zero(kz: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    return np.where(np.abs(kz) < eps, np.where(kz < 0, -eps, eps), kz)


class CameraRenderer:
    """Renders DeepRacer camera images of a track for N cars at once (see module docstring)."""

    def __init__(self, track: Track, *, world: str | None = None, seed: int = 0) -> None:
        self.track = track
        self.appearance: Appearance = load_appearance(world or track.name)
        self.seed = int(seed)
        self.texture: GroundTexture = ground_texture(track, self.appearance, self.seed)
        self.plan = plan_ground(self.texture.texel, self.texture.n_levels)
        self.walls = wall_boxes(track, self.appearance)
        tex = self.texture
        self._lev_inv = (1.0 / (tex.texel * 2.0 ** np.arange(tex.n_levels))).astype(np.float64)
        # for the box kernel: 1 / slope of the pixel-centre rays, and the 2×2 subsample rays of each pixel
        # next to each other (rows, cols·4), float32; slopes kept away from 0 (the horizon) so that the
        # reciprocals stay finite
        p = self.plan
        self._pix_ikz = (1.0 / _away_from_zero(p.pix_kz.astype(np.float64))).astype(np.float32)
        self._sub = tuple(
            np.ascontiguousarray(a.transpose(1, 2, 0).reshape(IMAGE_HEIGHT, -1), dtype=np.float32)
            for a in (p.sub_hx, p.sub_hy, 1.0 / _away_from_zero(p.sub_kz))
        )

    @property
    def sky_luma(self) -> float:
        """Grey level of the sky (unlit)."""
        return float(self.appearance.sky_luma)

    def render(
        self,
        x: np.ndarray,
        y: np.ndarray,
        yaw: np.ndarray,
        *,
        camera: str = "front",
        boxes: np.ndarray | None = None,
        exclude: np.ndarray | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Camera images of cars at base_link poses x, y, yaw (N,) [m, m, rad].

        Returns (N, 120, 160) uint8 for 'front'/'left' (or FRONT_FACING_CAMERA/LEFT_CAMERA), and
        (N, 120, 160, 2) for 'stereo' (STEREO_CAMERAS; channel 0 = left). boxes: shared by all cars,
        (K, 6) [cx, cy, yaw, length, width, height] (an optional 7th column is the albedo grey, default
        180) or (K, BOX_COLS); or per car, (N, M, BOX_COLS) from `objects_view.object_boxes` (car i sees
        boxes[i] only). Rows holding NaN are skipped. exclude: (N,) index of a box each car does not see
        (its own, with shared boxes; -1: none). out: optional output array.
        """
        rig = CameraRig.get(camera)
        x, y, yaw = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (x, y, yaw))
        n = x.shape[0]
        if y.shape != (n,) or yaw.shape != (n,):
            raise ValueError(f"x, y, yaw must all have shape (N,), got {x.shape}, {y.shape}, {yaw.shape}")
        if not (np.isfinite(x).all() and np.isfinite(y).all() and np.isfinite(yaw).all()):  # NaN crashes the kernel
            raise ValueError(f"camera poses must be finite, got x={x.tolist()}, y={y.tolist()}, yaw={yaw.tolist()}")
        shape = (n, IMAGE_HEIGHT, IMAGE_WIDTH) + ((rig.channels,) if rig.channels > 1 else ())
        if out is None:
            out = np.empty(shape, dtype=np.uint8)
        elif out.shape != shape or out.dtype != np.uint8 or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous uint8 array of shape {shape}")
        bx = _kernel_boxes(boxes, n)
        excl = np.full(n, -1, dtype=np.int64) if exclude is None else np.asarray(exclude, dtype=np.int64)
        if excl.shape != (n,):
            raise ValueError(f"exclude must have shape ({n},), got {excl.shape}")
        p, t = self.plan, self.texture
        K.render_kernel(
            x, y, yaw, np.array(rig.offsets_y), np.float32(0.5 if rig.itu_luma else 0.0), CAMERA_X, CAMERA_HEIGHT,
            np.cos(CAMERA_PITCH), np.sin(CAMERA_PITCH), FOCAL_PX,
            t.packed, t.lev_off, t.lev_w, t.lev_h, self._lev_inv, t.x0, t.y0,
            p.slot_row, p.slot_level, p.slot_weight, p.slot_gx, p.slot_gy, p.row_sky, np.float32(self.sky_luma),
            self.walls, p.row_tmax, p.row_kz_lo, p.row_kz_hi, p.half_fov, p.pix_hx, p.pix_hy, p.pix_kz, p.pix_g,
            bx, excl, self._pix_ikz, *self._sub, out.reshape(n, IMAGE_HEIGHT, IMAGE_WIDTH, rig.channels),
        )  # fmt: skip
        return out

    def start_pose(self, at: float, *, reverse: bool = False) -> tuple[float, float, float]:
        """base_link pose on the centre line at lap fraction `at`, heading along the track."""
        lines = self.track.lines(reverse)
        xy, yaw = lines.pose_at(np.array([(at % 1.0) * lines.length]))
        return float(xy[0, 0]), float(xy[0, 1]), float(yaw[0])


def save_view_png(
    track: Track,
    at: float,
    out: str,
    *,
    camera: str = "front",
    reverse: bool = False,
    objects: tuple[np.ndarray, np.ndarray, Sequence[str]] | None = None,
    pose: tuple[float, float, float] | None = None,
) -> None:
    """What the car sees at lap fraction `at` (start pose on the centre line there, heading along the
    track; or `pose` = (x, y, yaw) [m, m, rad] if given), upscaled, next to a top-down map with the car
    drawn (for `drlocal render`). objects: (xy (K, 2), yaw (K,), kinds) obstacles and other cars
    (`objects_view.KINDS`), drawn in the view and as footprints on the map."""
    import matplotlib.pyplot as plt

    from drlocal.sensors.objects_view import object_boxes
    from drlocal.tracks.plot import draw_objects, draw_track

    renderer = CameraRenderer(track)
    if pose is None:
        x, y, yaw = renderer.start_pose(at, reverse=reverse)
    else:
        x, y, yaw = (float(v) for v in pose)
    boxes = None
    if objects is not None:
        oxy = np.asarray(objects[0], dtype=np.float64).reshape(-1, 2)
        oyaw = np.asarray(objects[1], dtype=np.float64).reshape(-1)
        kinds = list(objects[2])
        boxes = object_boxes(oxy[None], oyaw[None], kinds)
    img = renderer.render(np.array([x]), np.array([y]), np.array([yaw]), camera=camera, boxes=boxes)[0]
    views = [img[..., k] for k in range(img.shape[-1])] if img.ndim == 3 else [img]
    rig = CameraRig.get(camera)
    titles = ["left", "right"] if rig.channels == 2 else [rig.name]
    fig, axes = plt.subplots(
        1, len(views) + 1, figsize=(4.6 * (len(views) + 1), 4.2), dpi=110,
        gridspec_kw={"width_ratios": [1.0] * len(views) + [1.15]},
    )  # fmt: skip
    for ax, view, title in zip(axes[:-1], views, titles, strict=True):
        ax.imshow(view, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(f"{title} camera, 160×120", fontsize=9)
        ax.set_xticks([0, 40, 80, 120, 159])
        ax.set_yticks([0, 30, 60, 90, 119])
    ax = axes[-1]
    draw_track(ax, track, reverse=reverse)
    if objects is not None:
        draw_objects(ax, oxy, oyaw, kinds)
    c, s = np.cos(yaw), np.sin(yaw)
    body = np.array([[-0.09, -0.09], [0.19, -0.09], [0.19, 0.09], [-0.09, 0.09], [-0.09, -0.09]])
    ax.plot(x + c * body[:, 0] - s * body[:, 1], y + s * body[:, 0] + c * body[:, 1], color="tab:blue", lw=1.5)
    half = HORIZONTAL_FOV / 2
    cx, cy = x + c * CAMERA_X, y + s * CAMERA_X
    reach = 1.5
    for a in (yaw - half, yaw + half):
        ax.plot([cx, cx + reach * np.cos(a)], [cy, cy + reach * np.sin(a)], color="tab:blue", lw=0.8, ls="--")
    where = f"at {at:.3f} of the lap" if pose is None else f"car at ({x:.2f}, {y:.2f})"
    ax.set_title(f"{track.name} {where}{' (reversed)' if reverse else ''}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
