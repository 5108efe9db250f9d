"""The colour top-down ground texture the cameras for people sample: one RGB raster plus a mip chain.

The same picture as the model camera's grey texture (`drlocal.sensors._camera_texture`, whose
rasterisers and noise this module reuses): road, border lines, dashed centre line, kerbs and field,
each edge antialiased by its exact texel coverage, with deterministic world-anchored texture grain;
but in colour. Colours are the simapp's measured albedos (`appearance.json`, the same source as the
grey levels) lit like the flat ground under the worlds' lights (`appearance.light_factor((0, 0, 1))`,
ambient 0.5 + the sun), clipped to 0-255; the grain is the part's grey standard deviation added to all
three channels alike.

Storage: every texel is one int32 ``R | G << 8 | B << 16`` (signed: AVX2 converts signed integers to
float in one instruction, unsigned ones not) so that a bilinear lookup is four loads;
all levels sit in one flat array (`packed`, level i at `lev_off[i]`, row-major, rows growing with world
y, columns with x). Each further level halves the resolution by 2×2 box averaging. Level 0 has
TEXEL_M texels unless the track's texture would exceed MAX_TEXELS (then texels grow); a 4 × 3 m
follow-camera footprint near the car needs ~5 mm to keep the 2.5 cm centre line crisp.
Textures are cached in memory per (track, world, seed).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numba
import numpy as np

from drlocal.sensors import appearance as appearance_mod
from drlocal.sensors._camera_texture import (
    NOISE_AMPS,
    NOISE_SCALES,
    _noise,
    _noise_std,
    track_coverage,
)
from drlocal.sensors.appearance import (
    DEFAULT_SKY_RGB,
    KERB_STRIPE_M,
    NEUTRAL_GROUND_RGB,
    Appearance,
    light_factor,
)
from drlocal.tracks.track import Track

#: Level-0 texel size [m] and the cap on level-0 texels (32 MB of uint32; larger tracks get larger texels).
TEXEL_M = 0.005
MAX_TEXELS = 8_000_000
#: Stop the mip chain when a level's smaller side is below this many texels.
MIN_LEVEL_SIDE = 4


@dataclass(frozen=True)
class WorldColours:
    """Lit 8-bit RGB colours of one world, as float arrays (3,), plus the grain std of each ground part.

    Ground parts are lit as a flat upward surface; the sky is unlit (a background colour); `wall` is the
    wall's albedo (the renderer lights each face by its normal); kerb colours are None off city tracks.
    """

    road: np.ndarray
    field: np.ndarray
    border: np.ndarray
    centre: np.ndarray
    neutral: np.ndarray
    kerb_white: np.ndarray | None
    kerb_red: np.ndarray | None
    sky: np.ndarray
    wall: np.ndarray | None
    std: dict[str, float]


def _lit(rgb) -> np.ndarray:
    return np.clip(np.asarray(rgb, dtype=np.float64) * light_factor((0.0, 0.0, 1.0)), 0.0, 255.0)


def world_colours(app: Appearance) -> WorldColours:
    """The RGB counterpart of `app`'s grey materials (same json entry, same lighting)."""
    entry = appearance_mod._data()[app.world]

    def rgb(part: str, fallback=NEUTRAL_GROUND_RGB) -> np.ndarray:
        p = entry.get(part)
        return np.asarray(p["rgb"] if p and p.get("rgb") else fallback, dtype=np.float64)

    border = rgb("border_line")
    kerb = entry.get("kerb")
    kerb_white = kerb_red = None
    if app.kerb_white is not None and kerb and kerb.get("rgb"):
        kerb_white = _lit(border)
        kerb_red = _lit(np.clip(2.0 * np.asarray(kerb["rgb"], dtype=np.float64) - border, 0, 255))
    sky = entry.get("sky")
    return WorldColours(
        road=_lit(rgb("road")),
        field=_lit(rgb("field")),
        border=_lit(border),
        centre=_lit(rgb("centre_line")),
        neutral=_lit(NEUTRAL_GROUND_RGB),
        kerb_white=kerb_white,
        kerb_red=kerb_red,
        sky=np.asarray(sky["rgb"] if sky and sky.get("rgb") else DEFAULT_SKY_RGB, dtype=np.float64),
        wall=np.asarray(app.wall.rgb, dtype=np.float64) if app.wall is not None else None,
        std={
            "road": app.road.std,
            "field": app.field.std,
            "border": app.border.std,
            "centre": app.centre.std,
            "neutral": app.neutral.std,
        },
    )


@dataclass(frozen=True, eq=False)
class RGBTexture:
    """A track's colour ground raster and its mip levels (see module docstring)."""

    x0: float  # world x of the left edge of level 0 [m]
    y0: float  # world y of the bottom edge of level 0 [m]
    texel: float  # level-0 texel size [m]
    packed: np.ndarray  # (sum of level sizes + pad,) int32 R | G << 8 | B << 16
    lev_off: np.ndarray  # (L,) int64
    lev_w: np.ndarray  # (L,) int64
    lev_h: np.ndarray  # (L,) int64

    @property
    def n_levels(self) -> int:
        return int(self.lev_w.shape[0])

    @property
    def lev_inv(self) -> np.ndarray:
        """(L,) float64 texels per metre of each level."""
        return 1.0 / (self.texel * 2.0 ** np.arange(self.n_levels))

    def level(self, i: int) -> np.ndarray:
        """Level `i` as an (H, W, 3) uint8 RGB array (a copy; row 0 = lowest world y)."""
        o, w, h = int(self.lev_off[i]), int(self.lev_w[i]), int(self.lev_h[i])
        q = self.packed[o : o + w * h].reshape(h, w).view(np.uint32)
        return np.stack([(q >> (8 * k)) & 255 for k in range(3)], axis=-1).astype(np.uint8)


# fmt: off
@numba.njit(cache=True, error_model="numpy")
def _composite_rgb(
    x0, y0, t, road_mask, db2, sb, dc2, sc, field_bbox, mats, widths, dash, period, stripe, scales, amps, seed,
    inv_std, out,
):  # pragma: no cover - numba
# fmt: on
    """Level-0 colours, as `_camera_texture._composite` but per channel. mats rows (R, G, B, grain std):
    field, neutral, road, border, centre, kerb white, kerb red. out (H, W) uint32 packed."""
    h, w = out.shape
    hb, hc, kw = widths[0], widths[1], widths[2]
    v = np.empty(3)
    for iv in range(h):
        y = y0 + (iv + 0.5) * t
        for iu in range(w):
            x = x0 + (iu + 0.5) * t
            n = _noise(x, y, scales, amps, seed) * inv_std
            inside_field = field_bbox[0] <= x <= field_bbox[2] and field_bbox[1] <= y <= field_bbox[3]
            m = 0 if inside_field else 1
            if road_mask[iv, iu]:
                m = 2
            for ch in range(3):
                v[ch] = mats[m, ch] + mats[m, 3] * n
            db = np.sqrt(db2[iv, iu])
            if kw > 0.0 and m != 2:
                cov = min(max(0.5 + (db - hb) / t, 0.0), 1.0) * min(max(0.5 + (hb + kw - db) / t, 0.0), 1.0)
                if cov > 0.0:
                    k = 5 + int(np.floor(sb[iv, iu] / stripe)) % 2
                    for ch in range(3):
                        v[ch] += cov * (mats[k, ch] + mats[k, 3] * n - v[ch])
            cov = min(max(0.5 + (hb - db) / t, 0.0), 1.0)
            if cov > 0.0:
                for ch in range(3):
                    v[ch] += cov * (mats[3, ch] + mats[3, 3] * n - v[ch])
            dc = np.sqrt(dc2[iv, iu])
            cov = min(max(0.5 + (hc - dc) / t, 0.0), 1.0)
            if cov > 0.0 and dash > 0.0:
                ph = sc[iv, iu] % period
                sd = min(ph, dash - ph) if ph <= dash else -min(ph - dash, period - ph)
                cov *= min(max(0.5 + sd / t, 0.0), 1.0)
            if cov > 0.0:
                for ch in range(3):
                    v[ch] += cov * (mats[4, ch] + mats[4, 3] * n - v[ch])
            q = np.uint32(0)
            for ch in range(3):
                q |= np.uint32(min(max(v[ch] + 0.5, 0.0), 255.0)) << np.uint32(8 * ch)
            out[iv, iu] = q


@numba.njit(cache=True, error_model="numpy")
def _downsample_rgb(src, dst):  # pragma: no cover - numba
    """2×2 box average of packed RGB texels (odd edges repeat the last row/column)."""
    h, w = src.shape
    h2, w2 = dst.shape
    for i in range(h2):
        i0 = 2 * i
        i1 = min(2 * i + 1, h - 1)
        for j in range(w2):
            j0 = 2 * j
            j1 = min(2 * j + 1, w - 1)
            q = np.uint32(0)
            for ch in range(3):
                sh = np.uint32(8 * ch)
                s = ((src[i0, j0] >> sh) & 255) + ((src[i0, j1] >> sh) & 255)
                s += ((src[i1, j0] >> sh) & 255) + ((src[i1, j1] >> sh) & 255)
                q |= ((s + np.uint32(2)) // np.uint32(4)) << sh
            dst[i, j] = q


def _pack_rgb(rgb: np.ndarray) -> np.ndarray:
    q = np.clip(np.round(rgb), 0, 255).astype(np.uint32)
    return q[..., 0] | (q[..., 1] << 8) | (q[..., 2] << 16)


def _flat_border(lv: np.ndarray, x0: float, y0: float, t: float, fb: np.ndarray, field, neutral) -> None:
    """Set the outermost texels of a level to the grain-free field (or neutral) colour: lookups beyond the
    texture clamp to them, and a clamped grainy edge would show as streaks running to the horizon."""
    h, w = lv.shape
    xs = x0 + (np.arange(w) + 0.5) * t
    ys = y0 + (np.arange(h) + 0.5) * t
    f, n = _pack_rgb(np.asarray(field)), _pack_rgb(np.asarray(neutral))

    def colour(x, y):
        inside = (fb[0] <= x) & (x <= fb[2]) & (fb[1] <= y) & (y <= fb[3])
        return np.where(inside, f, n)

    lv[0, :], lv[-1, :] = colour(xs, ys[0]), colour(xs, ys[-1])
    lv[:, 0], lv[:, -1] = colour(xs[0], ys), colour(xs[-1], ys)


def _mats(col: WorldColours) -> np.ndarray:
    zero = np.zeros(3)
    rows = [
        (col.field, col.std["field"]),
        (col.neutral, col.std["neutral"]),
        (col.road, col.std["road"]),
        (col.border, col.std["border"]),
        (col.centre, col.std["centre"]),
        (col.kerb_white if col.kerb_white is not None else zero, 2.0),
        (col.kerb_red if col.kerb_red is not None else zero, 2.0),
    ]
    return np.array([[*rgb, std] for rgb, std in rows], dtype=np.float64)


def build_rgb_texture(track: Track, app: Appearance, *, seed: int = 0, texel: float = TEXEL_M) -> RGBTexture:
    """Rasterise `track` as it looks in world `app`, in colour (see module docstring)."""
    cov = track_coverage(track, app, texel)
    lo_x, lo_y, t = cov.lo_x, cov.lo_y, cov.t
    h, w = cov.mask.shape
    fb = np.array(app.field_bbox if app.field_bbox else (-1e9, -1e9, 1e9, 1e9), dtype=np.float64)
    scales, amps = np.array(NOISE_SCALES), np.array(NOISE_AMPS)
    inv_std = 1.0 / _noise_std(scales, amps, seed, 65536)
    lv0 = np.empty((h, w), dtype=np.uint32)
    _composite_rgb(
        lo_x, lo_y, t, cov.mask, cov.db2, cov.sb, cov.dc2, cov.sc, fb, _mats(world_colours(app)), cov.widths,
        cov.dash, cov.period, KERB_STRIPE_M, scales, amps, seed, inv_std, lv0,
    )  # fmt: skip
    del cov
    levels = [lv0]
    while min(levels[-1].shape) >= 2 * MIN_LEVEL_SIDE:
        prev = levels[-1]
        nxt = np.empty(((prev.shape[0] + 1) // 2, (prev.shape[1] + 1) // 2), dtype=np.uint32)
        _downsample_rgb(prev, nxt)
        levels.append(nxt)
    col = world_colours(app)
    for i, lv in enumerate(levels):
        _flat_border(lv, lo_x, lo_y, t * 2.0**i, fb, col.field, col.neutral)
    sizes = [lv.size for lv in levels]
    off = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    # padding: a bilinear lookup at the last texel of the last level reads one row + one texel beyond it
    packed = np.zeros(int(sum(sizes)) + levels[-1].shape[1] + 8, dtype=np.int32)
    for lv, o in zip(levels, off, strict=True):
        packed[o : o + lv.size] = lv.ravel().view(np.int32)
    lev_w = np.array([lv.shape[1] for lv in levels], dtype=np.int64)
    lev_h = np.array([lv.shape[0] for lv in levels], dtype=np.int64)
    return RGBTexture(lo_x, lo_y, t, packed, off, lev_w, lev_h)


@lru_cache(maxsize=4)
def _cached(key: str, track: Track, app: Appearance, seed: int) -> RGBTexture:
    return build_rgb_texture(track, app, seed=seed)


def rgb_texture(track: Track, app: Appearance, seed: int = 0) -> RGBTexture:
    """The (cached) colour ground texture of `track` in world `app`."""
    digest = hashlib.sha1(np.ascontiguousarray(track.route).tobytes()).hexdigest()
    return _cached(f"{track.name}:{digest}:{app.world}:{seed}", track, app, seed)
