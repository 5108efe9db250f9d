"""The top-down ground texture of a track for the camera renderer: one grey raster plus mip levels.

Level 0 covers the route's bounding box plus a margin (clipped to the field box where the field is
walled in) at TEXEL_M per texel; each further level halves the resolution by 2×2 box averaging. Texels
hold the *lit* grey level (0-255) of what lies there: field (or neutral ground outside the field box),
road, kerb stripes, border lines and the dashed centre line, each edge antialiased by its exact
coverage of the texel, plus deterministic texture noise (value noise on a world-anchored lattice,
so the same world point always has the same grain, whatever the texture extent or resolution).

Geometry choices:

* Border lines are centred on the route's border polylines (half on the road, half outside). The
  route borders are the polylines the simapp's line ribbons were built around; centring also hides
  the road/field boundary under the line, as on the real track.
* The centre line is dashed with the json's dash length; on loops the period is stretched slightly
  so that a whole number of dashes fits the lap (no seam at the start line), starting with a dash.
* Kerbs (city tracks only) are red/white stripes just outside both border lines.

The renderer samples `packed`: each uint16 holds a texel and its right-hand neighbour, so a
bilinear lookup needs two loads. Building takes well under a second for the usual tracks; textures
are cached in memory per (track, world, seed).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numba
import numpy as np

from drlocal.sensors.appearance import KERB_STRIPE_M, Appearance
from drlocal.tracks.track import Track

#: Level-0 texel size [m] (tracks whose texture would exceed MAX_TEXELS get larger texels).
TEXEL_M = 0.005
MAX_TEXELS = 16_000_000
#: Ground drawn beyond the outermost route point [m]; farther ground repeats the edge texels.
MARGIN_M = 1.0
#: Stop the mip chain when a level's smaller side is below this many texels.
MIN_LEVEL_SIDE = 4
#: Texture noise: lattice spacings [m] and amplitudes of the value-noise octaves.
NOISE_SCALES = (0.004, 0.011, 0.03)
NOISE_AMPS = (0.5, 0.8, 0.6)


@dataclass(frozen=True, eq=False)
class GroundTexture:
    """A track's ground raster and its mip levels (row index grows with world y, column with x)."""

    x0: float  # world x of the left edge of level 0 [m]
    y0: float  # world y of the bottom edge of level 0 [m]
    texel: float  # level-0 texel size [m]
    level0: np.ndarray  # (H, W) uint8
    packed: np.ndarray  # (sum of level sizes + pad,) uint16: texel | right neighbour << 8
    lev_off: np.ndarray  # (L,) int64 offset of each level in `packed`
    lev_w: np.ndarray  # (L,) int64
    lev_h: np.ndarray  # (L,) int64

    @property
    def n_levels(self) -> int:
        return int(self.lev_w.shape[0])

    def level(self, i: int) -> np.ndarray:
        """Level `i` as an (H, W) uint8 array (a copy)."""
        o, w, h = int(self.lev_off[i]), int(self.lev_w[i]), int(self.lev_h[i])
        return (self.packed[o : o + w * h] & 255).astype(np.uint8).reshape(h, w)


# ----------------------------------------------------------------------------------------------
# numba kernels


@numba.njit(cache=True, error_model="numpy")
def _raster_polyline(px, py, cum, x0, y0, t, radius, d2buf, sbuf):  # pragma: no cover - numba
    """Squared distance to the polyline and arc length of the nearest point, for texels within radius."""
    h, w = d2buf.shape
    for k in range(px.shape[0] - 1):
        ax, ay, bx, by = px[k], py[k], px[k + 1], py[k + 1]
        ex, ey = bx - ax, by - ay
        l2 = ex * ex + ey * ey
        if l2 <= 0.0:
            continue
        seg_len = np.sqrt(l2)
        iu0 = max(int((min(ax, bx) - radius - x0) / t - 0.5), 0)
        iu1 = min(int((max(ax, bx) + radius - x0) / t + 0.5) + 1, w)
        iv0 = max(int((min(ay, by) - radius - y0) / t - 0.5), 0)
        iv1 = min(int((max(ay, by) + radius - y0) / t + 0.5) + 1, h)
        r2 = radius * radius
        for iv in range(iv0, iv1):
            qy = y0 + (iv + 0.5) * t
            for iu in range(iu0, iu1):
                qx = x0 + (iu + 0.5) * t
                s = ((qx - ax) * ex + (qy - ay) * ey) / l2
                s = min(max(s, 0.0), 1.0)
                dx = qx - (ax + s * ex)
                dy = qy - (ay + s * ey)
                dd = dx * dx + dy * dy
                if dd < r2 and dd < d2buf[iv, iu]:
                    d2buf[iv, iu] = dd
                    sbuf[iv, iu] = cum[k] + s * seg_len


@numba.njit(cache=True, error_model="numpy")
def _fill_polygon(ex0, ey0, ex1, ey1, x0, y0, t, mask):  # pragma: no cover - numba
    """Even-odd scanline fill of the polygon given by its edges into mask (texel centres)."""
    h, w = mask.shape
    n = ex0.shape[0]
    xs = np.empty(n)
    for iv in range(h):
        y = y0 + (iv + 0.5) * t
        m = 0
        for e in range(n):
            ay, by = ey0[e], ey1[e]
            if (ay <= y < by) or (by <= y < ay):
                xs[m] = ex0[e] + (y - ay) * (ex1[e] - ex0[e]) / (by - ay)
                m += 1
        xs_s = np.sort(xs[:m])
        for j in range(0, m - 1, 2):
            iu0 = max(int(np.ceil((xs_s[j] - x0) / t - 0.5)), 0)
            iu1 = min(int(np.ceil((xs_s[j + 1] - x0) / t - 0.5)), w)
            for iu in range(iu0, iu1):
                mask[iv, iu] = 1


@numba.njit(cache=True, inline="always", error_model="numpy")
def _hash01(ix, iy, salt):  # pragma: no cover - numba
    h = (ix * 374761393 + iy * 668265263 + salt * 2246822519) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * 1274126177) & 0xFFFFFFFF
    h = h ^ (h >> 16)
    return h * (2.0 / 4294967296.0) - 1.0


@numba.njit(cache=True, inline="always", error_model="numpy")
def _noise(x, y, scales, amps, seed):  # pragma: no cover - numba
    """Sum of value-noise octaves on world-anchored lattices (smooth-step interpolation)."""
    v = 0.0
    for o in range(scales.shape[0]):
        gx = x / scales[o]
        gy = y / scales[o]
        ix = int(np.floor(gx))
        iy = int(np.floor(gy))
        fx = gx - ix
        fy = gy - iy
        fx = fx * fx * (3.0 - 2.0 * fx)
        fy = fy * fy * (3.0 - 2.0 * fy)
        salt = seed * 16 + o
        a = _hash01(ix, iy, salt)
        b = _hash01(ix + 1, iy, salt)
        c = _hash01(ix, iy + 1, salt)
        d = _hash01(ix + 1, iy + 1, salt)
        top = a + fx * (b - a)
        bot = c + fx * (d - c)
        v += amps[o] * (top + fy * (bot - top))
    return v


@numba.njit(cache=True, error_model="numpy")
def _noise_std(scales, amps, seed, n):  # pragma: no cover - numba
    acc = 0.0
    acc2 = 0.0
    for i in range(n):
        x = 97.0 * _hash01(i, 7, 99991)
        y = 97.0 * _hash01(i, 11, 99991)
        v = _noise(x, y, scales, amps, seed)
        acc += v
        acc2 += v * v
    mean = acc / n
    return np.sqrt(max(acc2 / n - mean * mean, 1e-12))


# fmt: off
@numba.njit(cache=True, error_model="numpy")
def _composite(
    x0, y0, t, road_mask, db2, sb, dc2, sc, field_bbox, mats, widths, dash, period, stripe, scales, amps, seed,
    inv_std, out,
):  # pragma: no cover - numba
# fmt: on
    """Level-0 grey levels. mats rows: field, neutral, road, border, centre, kerb white, kerb red (mean, std).

    widths: border half width, centre half width, kerb width (0: no kerb). dash <= 0: solid centre line.
    """
    h, w = out.shape
    hb, hc, kw = widths[0], widths[1], widths[2]
    for iv in range(h):
        y = y0 + (iv + 0.5) * t
        for iu in range(w):
            x = x0 + (iu + 0.5) * t
            n = _noise(x, y, scales, amps, seed) * inv_std
            inside_field = field_bbox[0] <= x <= field_bbox[2] and field_bbox[1] <= y <= field_bbox[3]
            m = 0 if inside_field else 1
            if road_mask[iv, iu]:
                m = 2
            v = mats[m, 0] + mats[m, 1] * n
            db = np.sqrt(db2[iv, iu])
            if kw > 0.0 and m != 2:
                # kerb band [hb, hb + kw] outside the road, antialiased at both edges
                cov = min(max(0.5 + (db - hb) / t, 0.0), 1.0) * min(max(0.5 + (hb + kw - db) / t, 0.0), 1.0)
                if cov > 0.0:
                    k = 5 + int(np.floor(sb[iv, iu] / stripe)) % 2
                    v += cov * (mats[k, 0] + mats[k, 1] * n - v)
            cov = min(max(0.5 + (hb - db) / t, 0.0), 1.0)
            if cov > 0.0:
                v += cov * (mats[3, 0] + mats[3, 1] * n - v)
            dc = np.sqrt(dc2[iv, iu])
            cov = min(max(0.5 + (hc - dc) / t, 0.0), 1.0)
            if cov > 0.0 and dash > 0.0:
                ph = sc[iv, iu] % period
                sd = min(ph, dash - ph) if ph <= dash else -min(ph - dash, period - ph)
                cov *= min(max(0.5 + sd / t, 0.0), 1.0)
            if cov > 0.0:
                v += cov * (mats[4, 0] + mats[4, 1] * n - v)
            out[iv, iu] = np.uint8(min(max(v + 0.5, 0.0), 255.0))


@numba.njit(cache=True, error_model="numpy")
def _downsample(src, dst):  # pragma: no cover - numba
    h, w = src.shape
    h2, w2 = dst.shape
    for i in range(h2):
        i0 = 2 * i
        i1 = min(2 * i + 1, h - 1)
        for j in range(w2):
            j0 = 2 * j
            j1 = min(2 * j + 1, w - 1)
            s = np.int32(src[i0, j0]) + np.int32(src[i0, j1]) + np.int32(src[i1, j0]) + np.int32(src[i1, j1])
            dst[i, j] = np.uint8((s + 2) // 4)


# ----------------------------------------------------------------------------------------------


def _domain(track: Track, app: Appearance) -> tuple[float, float, float, float]:
    r = track.route
    xs, ys = r[:, 0::2], r[:, 1::2]
    xmin, ymin, xmax, ymax = xs.min(), ys.min(), xs.max(), ys.max()
    margin = MARGIN_M + app.kerb_width
    lo_x, lo_y, hi_x, hi_y = xmin - margin, ymin - margin, xmax + margin, ymax + margin
    fb = app.field_bbox
    if fb is not None and fb[0] <= xmin and fb[1] <= ymin and fb[2] >= xmax and fb[3] >= ymax:
        # walled-in field: nothing beyond its edge is ever seen (the wall hides it); keep a strip
        pad = 0.25
        lo_x, lo_y = max(lo_x, fb[0] - pad), max(lo_y, fb[1] - pad)
        hi_x, hi_y = min(hi_x, fb[2] + pad), min(hi_y, fb[3] + pad)
    return float(lo_x), float(lo_y), float(hi_x), float(hi_y)


def _cum(p: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(p, axis=0).T))])


def _road_edges(track: Track) -> tuple[np.ndarray, ...]:
    r = track.route
    rings = [r[:, 4:6], r[:, 2:4]] if track.is_loop else [np.vstack([r[:, 4:6], r[::-1, 2:4]])]
    a, b = [], []
    for ring in rings:
        closed = ring if np.all(ring[0] == ring[-1]) else np.vstack([ring, ring[:1]])
        a.append(closed[:-1])
        b.append(closed[1:])
    a, b = np.vstack(a), np.vstack(b)
    return a[:, 0].copy(), a[:, 1].copy(), b[:, 0].copy(), b[:, 1].copy()


def _pack(levels: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    sizes = [lv.size for lv in levels]
    off = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    pad = levels[0].shape[1] + 8
    packed = np.zeros(int(sum(sizes)) + pad, dtype=np.uint16)
    for lv, o in zip(levels, off, strict=True):
        a = lv.astype(np.uint16)
        right = np.concatenate([a[:, 1:], a[:, -1:]], axis=1)
        packed[o : o + lv.size] = (a | (right << 8)).ravel()
    lev_w = np.array([lv.shape[1] for lv in levels], dtype=np.int64)
    lev_h = np.array([lv.shape[0] for lv in levels], dtype=np.int64)
    return packed, off, lev_w, lev_h


@dataclass
class Coverage:
    """The track's line and road coverage on a texel grid, before any colour: the shared first half of the
    grey texture here and of the people's colour texture (`view/ground_rgb.py`).

    Grid: level-0 texel `t` [m], origin (lo_x, lo_y), (h, w) texels. db2/sb and dc2/sc: squared distance to and
    arc position along the nearest border / centre-line polyline (float32 (h, w)); mask: road polygon (uint8);
    hb, hc, kw: half border width, half centre-line width, kerb width [m]; dash (-1 = solid) and period [m]."""

    lo_x: float
    lo_y: float
    t: float
    mask: np.ndarray
    db2: np.ndarray
    sb: np.ndarray
    dc2: np.ndarray
    sc: np.ndarray
    hb: float
    hc: float
    kw: float
    dash: float
    period: float

    @property
    def widths(self) -> np.ndarray:
        return np.array([self.hb, self.hc, self.kw])


def track_coverage(track: Track, app: Appearance, texel: float = TEXEL_M) -> Coverage:
    """Rasterise the borders, the centre line and the road polygon of `track` on the texture grid of world `app`."""
    lo_x, lo_y, hi_x, hi_y = _domain(track, app)
    area = (hi_x - lo_x) * (hi_y - lo_y)
    t = max(texel, float(np.sqrt(area / MAX_TEXELS)))
    w = max(int(np.ceil((hi_x - lo_x) / t)), 8)
    h = max(int(np.ceil((hi_y - lo_y) / t)), 8)
    r = track.route
    hb, hc = app.border_width / 2, app.centre_width / 2
    kw = app.kerb_width if app.kerb_white is not None else 0.0

    db2 = np.full((h, w), 1e9, dtype=np.float32)
    sb = np.zeros((h, w), dtype=np.float32)
    for cols in ((2, 3), (4, 5)):
        p = r[:, cols]
        _raster_polyline(p[:, 0].copy(), p[:, 1].copy(), _cum(p), lo_x, lo_y, t, hb + kw + 2 * t, db2, sb)
    dc2 = np.full((h, w), 1e9, dtype=np.float32)
    sc = np.zeros((h, w), dtype=np.float32)
    c = r[:, 0:2]
    cum_c = _cum(c)
    _raster_polyline(c[:, 0].copy(), c[:, 1].copy(), cum_c, lo_x, lo_y, t, hc + 2 * t, dc2, sc)
    mask = np.zeros((h, w), dtype=np.uint8)
    _fill_polygon(*_road_edges(track), lo_x, lo_y, t, mask)

    period = app.dash + app.gap
    if track.is_loop and cum_c[-1] > 0:
        period = cum_c[-1] / max(1, round(cum_c[-1] / period))
    dash = app.dash if app.dashed else -1.0
    return Coverage(lo_x, lo_y, t, mask, db2, sb, dc2, sc, hb, hc, kw, dash, period)


def build_ground_texture(track: Track, app: Appearance, *, seed: int = 0, texel: float = TEXEL_M) -> GroundTexture:
    """Rasterise `track` as it looks in world `app` (see module docstring)."""
    cov = track_coverage(track, app, texel)
    lo_x, lo_y, t = cov.lo_x, cov.lo_y, cov.t
    h, w = cov.mask.shape
    zero = (0.0, 0.0)
    mats = np.array(
        [
            (app.field.mean, app.field.std),
            (app.neutral.mean, app.neutral.std),
            (app.road.mean, app.road.std),
            (app.border.mean, app.border.std),
            (app.centre.mean, app.centre.std),
            (app.kerb_white.mean, app.kerb_white.std) if app.kerb_white else zero,
            (app.kerb_red.mean, app.kerb_red.std) if app.kerb_red else zero,
        ]
    )
    fb = np.array(app.field_bbox if app.field_bbox else (-1e9, -1e9, 1e9, 1e9), dtype=np.float64)
    scales = np.array(NOISE_SCALES)
    amps = np.array(NOISE_AMPS)
    inv_std = 1.0 / _noise_std(scales, amps, seed, 65536)
    lv0 = np.empty((h, w), dtype=np.uint8)
    _composite(
        lo_x, lo_y, t, cov.mask, cov.db2, cov.sb, cov.dc2, cov.sc, fb, mats, cov.widths, cov.dash, cov.period,
        KERB_STRIPE_M, scales, amps, seed, inv_std, lv0,
    )
    del cov
    levels = [lv0]
    while min(levels[-1].shape) >= 2 * MIN_LEVEL_SIDE:
        prev = levels[-1]
        nxt = np.empty(((prev.shape[0] + 1) // 2, (prev.shape[1] + 1) // 2), dtype=np.uint8)
        _downsample(prev, nxt)
        levels.append(nxt)
    packed, off, lev_w, lev_h = _pack(levels)
    return GroundTexture(lo_x, lo_y, t, lv0, packed, off, lev_w, lev_h)


@lru_cache(maxsize=8)
def _cached(key: str, track: Track, app: Appearance, seed: int) -> GroundTexture:
    return build_ground_texture(track, app, seed=seed)


def ground_texture(track: Track, app: Appearance, seed: int = 0) -> GroundTexture:
    """The (cached) ground texture of `track` in world `app`."""
    digest = hashlib.sha1(np.ascontiguousarray(track.route).tobytes()).hexdigest()
    return _cached(f"{track.name}:{digest}:{app.world}:{seed}", track, app, seed)
