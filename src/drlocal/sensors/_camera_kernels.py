"""numba kernels of the camera renderer (see `drlocal.sensors.camera` for the design).

One kernel renders every car's image(s): ground from the mip-mapped texture (precomputed car-frame
sample points per image row), then walls (per-pixel ray against axis-aligned wall boxes with analytic
antialiasing of their bottom and top edges), then obstacle boxes and cars (ray/box tests inside each box's
projected screen rectangle, nearest hit per ray; one ray per pixel where a pixel sees what its neighbours
see, 2×2 subsample rays at edges), then the conversion to uint8.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import float32 as f32

# Column layout of the `boxes` array the kernel receives (world frame, per box), float64:
# 0 cx, 1 cy, 2 yaw [m, m, rad], 3 length (along local x), 4 width, 5 height [m],
# 6-9 lit grey of the face seen by a ray going +x, -x, +y, -y (local axes; i.e. the faces with outward
# normals -x, +x, -y, +y), 10 top face grey, 11 z0: height of the bottom above the ground [m].
# The first six columns are the plain box format [cx, cy, yaw, length, width, height] (LIDAR, camera API).
# A row with length, width or height <= 0 is skipped (an empty slot).
BOX_COLS = 12
# Wall layout: xmin, ymin, xmax, ymax, height, face luma seen going +x, -x, +y, -y, inside-visible flag.
WALL_COLS = 10


@numba.njit(cache=True, inline="always", error_model="numpy")
def _tri_cdf(x):  # pragma: no cover - numba
    """Coverage of a step edge at signed distance x [px] under PIL's bilinear (triangle, radius 1) filter."""
    x = min(max(x, f32(-1.0)), f32(1.0))
    return f32(0.5) + x - f32(0.5) * x * abs(x)


# fmt: off
@numba.njit(cache=True, fastmath=True, boundscheck=False, error_model="numpy")
def _ground(
    acc, ox, oy, c, s, packed, lev_off, lev_w, lev_h, lev_inv, x0, y0, slot_row, slot_level, slot_weight,
    slot_gx, slot_gy, kb, fub, fvb, q0b, q1b, sl_begin, sl_end,
):  # pragma: no cover - numba
# fmt: on
    """Accumulate the weighted bilinear texture samples of ground slots sl_begin..sl_end-1 into acc."""
    ncol = slot_gx.shape[1]
    for sl in range(sl_begin, sl_end):
        lv = slot_level[sl]
        inv = lev_inv[lv]
        w = np.int32(lev_w[lv])
        off = np.int32(lev_off[lv])
        ub = f32((ox - x0) * inv - 0.5)
        vb = f32((oy - y0) * inv - 0.5)
        ci = f32(c * inv)
        si = f32(s * inv)
        umax = f32(w - 1.001)
        vmax = f32(lev_h[lv] - 1.001)
        gx = slot_gx[sl]
        gy = slot_gy[sl]
        # phase 1 (vectorised): texel coordinates
        for p in range(ncol):
            u = ub + ci * gx[p] - si * gy[p]
            v = vb + si * gx[p] + ci * gy[p]
            u = min(max(u, f32(0.0)), umax)
            v = min(max(v, f32(0.0)), vmax)
            iu = np.int32(u)
            iv = np.int32(v)
            fub[p] = u - f32(iu)
            fvb[p] = v - f32(iv)
            kb[p] = off + iv * w + iu
        # phase 2 (scalar): two loads per sample (each uint16 holds a texel and its right neighbour)
        for p in range(ncol):
            k = kb[p]
            q0b[p] = packed[k]
            q1b[p] = packed[k + w]
        # phase 3 (vectorised): bilinear blend and accumulate
        wt = slot_weight[sl]
        row = acc[slot_row[sl]]
        for p in range(ncol):
            q0 = q0b[p]
            q1 = q1b[p]
            t00 = f32(q0 & 255)
            t01 = f32(q0 >> 8)
            t10 = f32(q1 & 255)
            t11 = f32(q1 >> 8)
            fu = fub[p]
            a = t00 + fu * (t01 - t00)
            b = t10 + fu * (t11 - t10)
            row[p] += wt * (a + fvb[p] * (b - a))


@numba.njit(cache=True, inline="always", error_model="numpy")
def _exit_t(ox, oy, th, x0, y0, x1, y1, inside):  # pragma: no cover - numba
    """Distance along direction th from (ox, oy) to the rectangle's exit (inside) or entry face; 1e9: none."""
    dx = np.cos(th)
    dy = np.sin(th)
    dx = dx if abs(dx) > 1e-12 else 1e-12
    dy = dy if abs(dy) > 1e-12 else 1e-12
    tx1 = (x0 - ox) / dx
    tx2 = (x1 - ox) / dx
    ty1 = (y0 - oy) / dy
    ty2 = (y1 - oy) / dy
    tout = min(max(tx1, tx2), max(ty1, ty2))
    tin = max(min(tx1, tx2), min(ty1, ty2))
    if inside:
        return tout if tout > 0 else 1e9
    return tin if (tin > 0 and tin < tout) else 1e9


@numba.njit(cache=True, error_model="numpy")
def _wall_range(ox, oy, yaw, az, walls, inside):  # pragma: no cover - numba
    """(nearest, farthest) wall distance over the horizontal field of view yaw ± az.

    The exit distance of a rectangle seen from inside is extreme at the ends of the interval, at the
    faces' perpendiculars (minimum) or at the corners (maximum), so those directions are enough. For a
    wall seen from outside the nearest distance is that to the rectangle and the farthest is 1e9.
    """
    dmin = 1e9
    dmax = 0.0
    for k in range(walls.shape[0]):
        x0, y0, x1, y1 = walls[k, 0], walls[k, 1], walls[k, 2], walls[k, 3]
        if not inside[k]:
            ddx = max(max(x0 - ox, ox - x1), 0.0)
            ddy = max(max(y0 - oy, oy - y1), 0.0)
            dmin = min(dmin, np.sqrt(ddx * ddx + ddy * ddy))
            dmax = 1e9
            continue
        for j in range(10):
            if j == 0:
                th = yaw - az
            elif j == 1:
                th = yaw + az
            elif j < 6:
                th = (j - 2) * 0.5 * np.pi
            else:
                cxr = x0 if (j - 6) % 2 == 0 else x1
                cyr = y0 if (j - 6) // 2 == 0 else y1
                th = np.arctan2(cyr - oy, cxr - ox)
            d = (th - yaw + np.pi) % (2.0 * np.pi) - np.pi
            if abs(d) > az + 1e-9:
                continue
            t = _exit_t(ox, oy, th, x0, y0, x1, y1, True)
            dmin = min(dmin, t)
            dmax = max(dmax, t)
    return dmin, dmax


# fmt: off
@numba.njit(cache=True, fastmath=True, boundscheck=False, error_model="numpy")
def _walls(
    acc, ox, oy, c, s, cam_h, walls, inside, dmin, min_last, row_tmax, pix_hx, pix_hy, pix_kz, pix_g, bt, bl, bh, ixb,
    iyb, dxb, dyb,
):  # pragma: no cover - numba
# fmt: on
    """Blend the walls over acc, per pixel, for the rows whose ground reaches `dmin` (nearest wall in view)
    and at least rows 0..min_last.

    Row buffers bt, bl, bh (nearest wall distance, grey, height) and ixb, iyb, dxb, dyb keep every
    inner loop branch-free so that it vectorises.
    """
    nw = walls.shape[0]
    if nw == 0:
        return
    nrow, ncol = acc.shape
    last = min_last
    for r in range(nrow):
        if row_tmax[r] >= dmin:
            last = max(last, r)
    tiny = f32(1e-7)
    for r in range(last + 1):
        hxr = pix_hx[r]
        hyr = pix_hy[r]
        for p in range(ncol):
            dx = c * hxr[p] - s * hyr[p]
            dy = s * hxr[p] + c * hyr[p]
            dx = dx if abs(dx) > tiny else tiny
            dy = dy if abs(dy) > tiny else tiny
            dxb[p] = dx
            dyb[p] = dy
            ixb[p] = f32(1.0) / dx
            iyb[p] = f32(1.0) / dy
            bt[p] = f32(1e9)
        for k in range(nw):
            x0 = walls[k, 0] - ox
            x1 = walls[k, 2] - ox
            y0 = walls[k, 1] - oy
            y1 = walls[k, 3] - oy
            lpx, lnx, lpy, lny, hk = walls[k, 5], walls[k, 6], walls[k, 7], walls[k, 8], walls[k, 4]
            ins = inside[k]
            for p in range(ncol):
                ix = ixb[p]
                iy = iyb[p]
                tx1 = x0 * ix
                tx2 = x1 * ix
                ty1 = y0 * iy
                ty2 = y1 * iy
                txn = min(tx1, tx2)
                txx = max(tx1, tx2)
                tyn = min(ty1, ty2)
                tyx = max(ty1, ty2)
                tout = min(txx, tyx)
                tin = max(txn, tyn)
                t = tout if ins else tin
                xface = (txx < tyx) if ins else (txn > tyn)
                ok = (t > f32(0.0)) & (ins | (tin < tout)) & (t < bt[p])
                lx = lpx if dxb[p] > f32(0.0) else lnx
                ly = lpy if dyb[p] > f32(0.0) else lny
                lum = lx if xface else ly
                bt[p] = t if ok else bt[p]
                bl[p] = lum if ok else bl[p]
                bh[p] = hk if ok else bh[p]
        kzr = pix_kz[r]
        gr = pix_g[r]
        row = acc[r]
        for p in range(ncol):
            it = f32(1.0) / bt[p]
            kz = kzr[p]
            g = gr[p]
            a = _tri_cdf((kz + cam_h * it) * g) * _tri_cdf(((bh[p] - cam_h) * it - kz) * g)
            row[p] += a * (bl[p] - row[p])


@numba.njit(cache=True, fastmath=True, boundscheck=False, error_model="numpy")
def _box_rect(bx, ox, oy, c, s, cam_h, cos_p, sin_p, focal, nrow, ncol, pts):  # pragma: no cover - numba
    """Screen rectangle (r0, r1, c0, c1) (end-exclusive) that holds box bx's projection, or an empty one.

    A box whose bounding sphere lies outside the view frustum is rejected at once. Otherwise the box is
    clipped against the near plane (its edges that cross it add their crossing points), so a box beside
    the car, partly behind the camera, still gets a tight rectangle. pts: (3, 8) scratch.
    """
    near = 0.02
    # bounding sphere against the frustum (near plane and the four side planes)
    wx = bx[0] - ox
    wy = bx[1] - oy
    rx = c * wx + s * wy
    rz = bx[11] + 0.5 * bx[5] - cam_h
    rad = 0.5 * np.sqrt(bx[3] * bx[3] + bx[4] * bx[4] + bx[5] * bx[5])
    dc = rx * cos_p - rz * sin_p
    ah = 0.5 * ncol / focal
    av = 0.5 * nrow / focal
    if (
        dc < near - rad
        or abs(-s * wx + c * wy) - ah * dc > rad * np.sqrt(1.0 + ah * ah)
        or abs(rx * sin_p + rz * cos_p) - av * dc > rad * np.sqrt(1.0 + av * av)
    ):
        return 0, 0, 0, 0
    cb = np.cos(bx[2])
    sb = np.sin(bx[2])
    depth = pts[0]
    lat = pts[1]
    up = pts[2]
    for corner in range(8):
        lx = 0.5 * bx[3] if corner & 1 else -0.5 * bx[3]
        ly = 0.5 * bx[4] if corner & 2 else -0.5 * bx[4]
        pz = bx[11] + bx[5] if corner & 4 else bx[11]
        wx = bx[0] + cb * lx - sb * ly - ox
        wy = bx[1] + sb * lx + cb * ly - oy
        # into the camera frame: depth along the optical axis, lateral (left +), up
        rx = c * wx + s * wy
        rz = pz - cam_h
        depth[corner] = rx * cos_p - rz * sin_p
        lat[corner] = -s * wx + c * wy
        up[corner] = rx * sin_p + rz * cos_p
    rmin, rmax, cmin, cmax = 1e9, -1e9, 1e9, -1e9
    for a in range(8):
        for bit in range(4):  # the corner itself (bit 3), then its edges towards higher corners
            if bit < 3:
                b = a | (1 << bit)
                if b == a:
                    continue
                da, db = depth[a], depth[b]
                if (da >= near) == (db >= near):
                    continue
                f = (near - da) / (db - da)  # the edge crosses the near plane here
                d = near
                y = lat[a] + f * (lat[b] - lat[a])
                z = up[a] + f * (up[b] - up[a])
            else:
                if depth[a] < near:
                    continue
                d, y, z = depth[a], lat[a], up[a]
            col = 0.5 * ncol - focal * y / d
            row = 0.5 * nrow - focal * z / d
            rmin = min(rmin, row)
            rmax = max(rmax, row)
            cmin = min(cmin, col)
            cmax = max(cmax, col)
    if rmin > rmax:
        return 0, 0, 0, 0
    r0 = max(int(np.floor(max(rmin, -1.0))) - 1, 0)
    r1 = min(int(np.ceil(min(rmax, nrow + 1.0))) + 1, nrow)
    c0 = max(int(np.floor(max(cmin, -1.0))) - 1, 0)
    c1 = min(int(np.ceil(min(cmax, ncol + 1.0))) + 1, ncol)
    if r0 >= r1 or c0 >= c1:
        return 0, 0, 0, 0
    return r0, r1, c0, c1


#: Depth-buffer value of "nothing hit yet" (horizontal distance [m]).
_FAR = f32(1e30)
#: Key of box k in the centre buffer: _KEY·k + grey (exact in float32 for k < 1024, greys being multiples
#: of 1/64 below _KEY).
_KEY = 256.0
#: Width of the column tiles that group edge pixels [px] (a box tests the edge pixels of its tiles only).
_TILE = 16
#: Grey of a box's bottom face (only seen from below) relative to its top: ambient light only.
_BOTTOM_SHADE = 0.37


@numba.njit(cache=True, fastmath=True, boundscheck=False, error_model="numpy")
def _box_rays(hx2, hy2, ikz2, r0, r1, j0, j1, q, z2, l2, key, dr, dj):  # pragma: no cover - numba
    """Ray/box tests of rays [r0, r1) × [j0, j1) of (hx2, hy2, ikz2) against one box, into a depth buffer.

    Rays: car-frame horizontal direction (hx2, hy2) and 1 / slope (ikz2), from the optical centre. Box q
    (14,): (cr, sr) rotating car-frame directions into the box frame, the optical centre (lox, loy) in
    the box frame, half length and width, bottom and top height relative to the camera, then the greys
    of the faces seen by a ray going +x, -x, +y, -y, down onto the top and up onto the bottom. Distances
    are horizontal [m] (comparable between boxes for the same ray); a hit nearer than z2[r + dr, j + dj]
    replaces it and `key` + its grey goes to l2 there (key = _KEY × the box index tells boxes apart; the
    greys are multiples of 1/64 below _KEY, so that the sum is exact). A camera inside the box sees
    nothing of it. Branch-free,
    so that the inner loop vectorises (the unsigned index matters: with a signed one numba's
    negative-index wraparound stops LLVM's vectoriser).
    """
    cr, sr, lox, loy, hl, hw, zlo, zhi = q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7]
    l_px, l_nx, l_py, l_ny, l_top, l_bot = q[8], q[9], q[10], q[11], q[12], q[13]
    tiny = f32(1e-9)
    zero = f32(0.0)
    udj = np.uint64(dj)
    for r in range(r0, r1):
        hxr = hx2[r]
        hyr = hy2[r]
        ikzr = ikz2[r]
        zr = z2[r + dr]
        lr = l2[r + dr]
        for j in range(np.uint64(j0), np.uint64(j1)):
            hx = hxr[j]
            hy = hyr[j]
            iz = ikzr[j]
            dx = cr * hx - sr * hy
            dy = sr * hx + cr * hy
            dx = dx if abs(dx) > tiny else tiny
            dy = dy if abs(dy) > tiny else tiny
            ix = f32(1.0) / dx
            iy = f32(1.0) / dy
            tx1 = (-hl - lox) * ix
            tx2 = (hl - lox) * ix
            ty1 = (-hw - loy) * iy
            ty2 = (hw - loy) * iy
            tz1 = zlo * iz
            tz2 = zhi * iz
            txn = min(tx1, tx2)
            tyn = min(ty1, ty2)
            tzn = min(tz1, tz2)
            tout = min(min(max(tx1, tx2), max(ty1, ty2)), max(tz1, tz2))
            tside = max(txn, tyn)
            tin = max(tside, tzn)
            lx = l_px if dx > zero else l_nx
            ly = l_py if dy > zero else l_ny
            lz = l_top if iz < zero else l_bot
            lum = lz if tzn >= tside else (lx if txn > tyn else ly)
            z = zr[j + udj]
            hit = (tin < tout) & (tin > zero) & (tin < z)
            zr[j + udj] = tin if hit else z
            lr[j + udj] = (key + lum) if hit else lr[j + udj]


@numba.njit(cache=True, fastmath=True, boundscheck=False, error_model="numpy")
def _box_params(bx, ox, oy, yaw, cam_h, q):  # pragma: no cover - numba
    """Fill q (14,) with box bx's parameters for _box_rays, seen from (ox, oy, cam_h) heading yaw."""
    rel = yaw - bx[2]
    cb = np.cos(bx[2])
    sb = np.sin(bx[2])
    q[0] = np.cos(rel)
    q[1] = np.sin(rel)
    q[2] = cb * (ox - bx[0]) + sb * (oy - bx[1])
    q[3] = -sb * (ox - bx[0]) + cb * (oy - bx[1])
    q[4] = 0.5 * bx[3]
    q[5] = 0.5 * bx[4]
    q[6] = bx[11] - cam_h
    q[7] = bx[11] + bx[5] - cam_h
    for j in range(5):
        q[8 + j] = _grey(bx[6 + j])
    q[13] = _grey(_BOTTOM_SHADE * bx[10])


@numba.njit(cache=True, inline="always", error_model="numpy")
def _grey(v):  # pragma: no cover - numba
    """A face grey for the key buffer: clipped to [0, _KEY) and rounded to a multiple of 1/64."""
    return np.floor(min(max(v, 0.0), _KEY - 0.02) * 64.0 + 0.5) / 64.0


@numba.njit(cache=True, fastmath=True, boundscheck=False, error_model="numpy", inline="always")
def _gather(r, b, flag, eb, first, sxr, syr, skr, gat, t, ncol):  # pragma: no cover - numba
    """Append the flagged columns of block b..b+7 of row r to tile t's list eb (from `first`) with their
    subsample rays; returns the new length."""
    ne = first
    for p in range(b, b + 8):
        eb[ne] = p
        ne += 1 if flag[p] > f32(0.0) else 0
    gxt = gat[0, t]
    gyt = gat[1, t]
    gkt = gat[2, t]
    gzt = gat[3, t]
    for e in range(np.uint64(first), np.uint64(ne)):
        p4 = np.uint64(4 * eb[e])
        e4 = np.uint64(4) * e
        for j in range(np.uint64(4)):
            gxt[e4 + j] = sxr[p4 + j]
            gyt[e4 + j] = syr[p4 + j]
            gkt[e4 + j] = skr[p4 + j]
            gzt[e4 + j] = _FAR
        eb[e] += r * ncol
    return ne


# fmt: off
@numba.njit(cache=True, fastmath=True, boundscheck=False, error_model="numpy")
def _box_edges(
    acc, lo_row, hi_row, sub_hx, sub_hy, sub_ikz, zc, lc, gat, flag, rbuf, ebuf,
):  # pragma: no cover - numba
# fmt: on
    """Pass 2 of _boxes, rows lo_row..hi_row-1: uniform pixels take their centre's grey; the others are
    listed by tile with their 4 subsample rays gathered (distances set to _FAR). Resets zc, lc, spans."""
    nrow, ncol = acc.shape
    zero = f32(0.0)
    one = f32(1.0)
    u1 = np.uint64(1)
    u2 = np.uint64(2)
    span_lo = rbuf[0]
    span_hi = rbuf[1]
    tile_ne = rbuf[2]
    row_start = rbuf[3:]
    ntile = gat.shape[1]
    key = f32(_KEY)
    inv_key = f32(1.0 / _KEY)
    tile_ne[:] = 0
    for r in range(lo_row, hi_row + 2):
        if r >= lo_row + 2:  # row r - 2 is no longer anybody's neighbour: reset it
            old = lc[r - 1]
            for p in range(np.uint64(span_lo[r - 2]), np.uint64(span_hi[r - 2])):
                old[p + u1] = f32(-1.0)
            span_lo[r - 2] = ncol
            span_hi[r - 2] = 0
        if r >= hi_row:
            continue
        for t in range(ntile):
            row_start[t, r] = tile_ne[t]
        cmin = span_lo[r]
        cmax = span_hi[r]
        if cmin >= cmax:  # a gap between rectangles
            continue
        up = lc[r]
        mid = lc[r + 1]
        down = lc[r + 2]
        zrow = zc[r + 1]
        row = acc[r]
        # vectorised: uniform pixels take their centre's grey, the others are flagged; whole blocks of 8
        b0 = cmin - (cmin & 7)
        b1 = min(cmax + (-cmax & 7), ncol)
        for p in range(np.uint64(b0), np.uint64(b1)):
            v = mid[p + u1]
            same = (v == mid[p]) & (v == mid[p + u2]) & (v == up[p + u1]) & (v == down[p + u1])
            grey = v - key * np.floor(v * inv_key)  # exact
            row[p] = grey if (same & (v >= zero)) else row[p]
            flag[p] = zero if same else one
            zrow[p + u1] = _FAR
        for b in range(b0, b1, 8):  # compaction of the flagged columns by tile, skipping empty blocks
            if (flag[b] + flag[b + 1] + flag[b + 2] + flag[b + 3] + flag[b + 4] + flag[b + 5] + flag[b + 6]
                    + flag[b + 7]) == zero:
                continue
            t = b // _TILE
            tile_ne[t] = _gather(r, b, flag, ebuf[t], tile_ne[t], sub_hx[r], sub_hy[r], sub_ikz[r], gat, t, ncol)
    for t in range(ntile):
        row_start[t, hi_row] = tile_ne[t]
        for j in range(4 * tile_ne[t], 4 * tile_ne[t] + 8):  # the padding lanes of the last vector
            gat[0, t, j] = zero
            gat[1, t, j] = zero
            gat[2, t, j] = zero


# fmt: off
@numba.njit(cache=True, fastmath=True, boundscheck=False, error_model="numpy")
def _boxes(
    acc, ox, oy, yaw, cam_h, cos_p, sin_p, focal, boxes, own, pix_hx, pix_hy, pix_ikz, sub_hx, sub_hy, sub_ikz,
    zc, lc, gat, flag, rects, act, rbuf, ebuf, prm, pts,
):  # pragma: no cover - numba
# fmt: on
    """Draw the boxes (except box `own`) over acc: nearest hit per ray, antialiased by 2×2 supersampling.

    Pass 1: every box's projected screen rectangle; inside it, the ray through each pixel centre is
    tested against the box and the nearest hit over all boxes kept (distance and grey: an exact
    per-ray depth test, also for boxes that interpenetrate, such as the parts of a car).
    Pass 2 (_box_edges): a pixel whose centre sees the same box with the same grey (or nothing) as its
    four neighbours' centres takes that grey; any other pixel is an edge pixel. The 4 subsample
    rays (±0.25 px) of the edge pixels are gathered by column tile (_TILE px), tested against every box
    whose rows and tiles they lie in, and the nearest hits of each edge pixel blended by their share. For
    a straight edge this is exactly 2×2 supersampling (a subsample across an edge from the centre puts at
    least one neighbour across it too); only features thinner than a pixel that no centre ray sees can
    differ (comparing boxes, not only greys, keeps the sliver of a top face seen edge-on between two
    same-coloured faces). The buffers are reset on the way. Boxes with a non-positive size are skipped.
    The image width must be a multiple of 16.

    Buffers (float32 unless said; their state between calls is the reset one): zc, lc (rows + 2,
    cols + 2): centre distance (reset _FAR) and key _KEY·box + grey (reset -1) of pixel (r, p) at
    [r + 1, p + 1], with a border of empty ones; gat (5, tiles, 4·rows·_TILE + 8), any content: each
    tile's edge pixels' subsample rays (hx, hy, 1/slope), distances and greys; flag
    (cols + 8): a row's edge flags; rects (boxes, 4) int64: screen rectangles; act (boxes,) int64: the
    boxes drawn; rbuf (3 + tiles, rows + 1) int64: each row's column span over all rectangles (reset:
    empty, [cols, 0)), each tile's number of edge pixels, then per tile the index of each row's first
    one; ebuf (tiles, rows·_TILE) int64: each tile's edge pixels (r·cols + p); prm (boxes, 14): box
    parameters (see _box_rays).
    """
    nrow, ncol = acc.shape
    span_lo = rbuf[0]
    span_hi = rbuf[1]
    c = np.cos(yaw)
    s = np.sin(yaw)
    lo_row = nrow
    hi_row = 0
    na = 0
    for k in range(boxes.shape[0]):
        bx = boxes[k]
        if k == own or not (bx[3] > 0.0 and bx[4] > 0.0 and bx[5] > 0.0):
            continue
        r0, r1, c0, c1 = _box_rect(bx, ox, oy, c, s, cam_h, cos_p, sin_p, focal, nrow, ncol, pts)
        if r0 >= r1:
            continue
        act[na] = k
        na += 1
        rects[k, 0] = r0
        rects[k, 1] = r1
        rects[k, 2] = c0
        rects[k, 3] = c1
        for r in range(r0, r1):
            span_lo[r] = min(span_lo[r], c0)
            span_hi[r] = max(span_hi[r], c1)
        lo_row = min(lo_row, r0)
        hi_row = max(hi_row, r1)
        _box_params(bx, ox, oy, yaw, cam_h, prm[k])
        # whole vectors of 8 columns (the padding cannot hit: the rectangle holds the projection)
        p0, p1 = c0 - (c0 & 7), min(c1 + (-c1 & 7), ncol)
        _box_rays(pix_hx, pix_hy, pix_ikz, r0, r1, p0, p1, prm[k], zc, lc, f32(_KEY * k), 1, 1)
    if na == 0:
        return
    _box_edges(acc, lo_row, hi_row, sub_hx, sub_hy, sub_ikz, zc, lc, gat, flag, rbuf, ebuf)
    tile_ne = rbuf[2]
    row_start = rbuf[3:]
    gx, gy, gk, gz, gl = gat[0], gat[1], gat[2], gat[3], gat[4]
    zero = f32(0.0)
    for a in range(na):
        k = act[a]
        # the edge pixels of the box's rows in each tile of its columns, in whole vectors of 8 rays (the
        # extra lanes are other edge pixels' rays: a hit recorded for them is a true one; results past a
        # tile's last edge pixel are never read)
        for t in range(rects[k, 2] // _TILE, (rects[k, 3] - 1) // _TILE + 1):
            e0 = row_start[t, rects[k, 0]]
            e1 = row_start[t, rects[k, 1]]
            if e0 < e1:
                _box_rays(gx, gy, gk, t, t + 1, (4 * e0) & -8, (4 * e1 + 7) & -8, prm[k], gz, gl, zero, 0, 0)
    flat = acc.reshape(-1)
    for t in range(gat.shape[1]):
        eb = ebuf[t]
        gzt = gz[t]
        glt = gl[t]
        for e in range(tile_ne[t]):
            cover = zero
            col = zero
            for j in range(4 * e, 4 * e + 4):
                hit = gzt[j] < _FAR
                cover += f32(1.0) if hit else zero
                col += glt[j] if hit else zero
            i = eb[e]
            flat[i] = (flat[i] * (f32(4.0) - cover) + col) * f32(0.25)


# fmt: off
@numba.njit(cache=True, fastmath=True, boundscheck=False, error_model="numpy")
def render_kernel(
    xs, ys, yaws, cam_dy, bias, cam_x, cam_h, cos_p, sin_p, focal,
    packed, lev_off, lev_w, lev_h, lev_inv, x0, y0,
    slot_row, slot_level, slot_weight, slot_gx, slot_gy, row_sky, sky,
    walls, row_tmax, row_kz_lo, row_kz_hi, half_fov, pix_hx, pix_hy, pix_kz, pix_g,
    boxes, exclude, pix_ikz, sub_hx, sub_hy, sub_ikz, out,
):  # pragma: no cover - numba
# fmt: on
    """Render N cars × C cameras into out (N, rows, cols, C) uint8.

    cam_dy (C,): lateral offset of each camera in the car frame [m]; bias: added before truncation
    (0 for the float luma, 0.5 for PIL's rounded convert('L')). boxes (B, M, BOX_COLS) with B = N (car i
    sees boxes[i]) or B = 1 (every car sees boxes[0]); exclude (N,): a box of its set car i skips (-1: none).
    pix_ikz (rows, cols) float32: 1 / slope of the pixel-centre rays; sub_hx, sub_hy, sub_ikz (rows, cols·4)
    float32: the 2×2 subsample rays of each pixel, consecutive (horizontal car-frame direction, 1 / slope).
    Everything else: see camera.py.
    """
    n = xs.shape[0]
    nrow = out.shape[1]
    ncol = out.shape[2]
    ncam = out.shape[3]
    acc = np.empty((nrow, ncol), dtype=np.float32)
    kb = np.empty(ncol, dtype=np.int32)
    fub = np.empty(ncol, dtype=np.float32)
    fvb = np.empty(ncol, dtype=np.float32)
    q0b = np.empty(ncol, dtype=np.int32)
    q1b = np.empty(ncol, dtype=np.int32)
    nbatch = boxes.shape[0]
    zc = np.full((nrow + 2, ncol + 2), _FAR, dtype=np.float32)
    lc = np.full((nrow + 2, ncol + 2), -1.0, dtype=np.float32)
    ntile = (ncol + _TILE - 1) // _TILE
    gat = np.empty((5, ntile, 4 * nrow * _TILE + 8), dtype=np.float32)  # only the lanes in use are read
    flag = np.zeros(ncol + 8, dtype=np.float32)
    rects = np.zeros((boxes.shape[1], 4), dtype=np.int64)
    act = np.zeros(boxes.shape[1], dtype=np.int64)
    rbuf = np.zeros((3 + ntile, nrow + 1), dtype=np.int64)
    rbuf[0] = ncol  # empty row spans
    ebuf = np.zeros((ntile, nrow * _TILE), dtype=np.int64)
    prm = np.empty((boxes.shape[1], 14), dtype=np.float32)
    pts = np.empty((3, 8))
    inside = np.empty(walls.shape[0], dtype=np.bool_)
    bt = np.empty(ncol, dtype=np.float32)
    bl = np.zeros(ncol, dtype=np.float32)
    bh = np.zeros(ncol, dtype=np.float32)
    ixb = np.empty(ncol, dtype=np.float32)
    iyb = np.empty(ncol, dtype=np.float32)
    dxb = np.empty(ncol, dtype=np.float32)
    dyb = np.empty(ncol, dtype=np.float32)
    for i in range(n):
        c = np.cos(yaws[i])
        s = np.sin(yaws[i])
        for cam in range(ncam):
            # camera origin projected on the ground, world frame (the x offset is inside slot_gx)
            ox = xs[i] - s * cam_dy[cam]
            oy = ys[i] + c * cam_dy[cam]
            # walls and boxes are cast from the optical centre itself
            cx = ox + c * cam_x
            cy = oy + s * cam_x
            nw = walls.shape[0]
            for k in range(nw):
                inside[k] = walls[k, 9] > 0.5 and walls[k, 0] < cx < walls[k, 2] and walls[k, 1] < cy < walls[k, 3]
            dmin, dmax = _wall_range(cx, cy, yaws[i], half_fov, walls, inside)
            # slots of the rows that one enclosing wall hides in every column (bottom and top edge included);
            # those rows form one band, and slots are sorted by row
            skip_lo = 0
            skip_hi = 0
            if nw == 1 and dmax < 1e8:
                top = walls[0, 4] - cam_h
                for sl in range(slot_row.shape[0]):
                    r = slot_row[sl]
                    if row_kz_lo[r] * dmax >= -cam_h and row_kz_hi[r] * dmax <= top:
                        if skip_hi == 0:
                            skip_lo = sl
                        skip_hi = sl + 1
            for r in range(nrow):
                v = sky * row_sky[r]
                for p in range(ncol):
                    acc[r, p] = v
            for part in range(2):
                _ground(
                    acc, ox, oy, c, s, packed, lev_off, lev_w, lev_h, lev_inv, x0, y0, slot_row, slot_level,
                    slot_weight, slot_gx, slot_gy, kb, fub, fvb, q0b, q1b,
                    0 if part == 0 else skip_hi, skip_lo if part == 0 else slot_row.shape[0],
                )
            _walls(
                acc, f32(cx), f32(cy), f32(c), f32(s), f32(cam_h), walls, inside, f32(dmin),
                slot_row[skip_hi - 1] if skip_hi > 0 else -1, row_tmax, pix_hx, pix_hy, pix_kz, pix_g, bt, bl, bh, ixb,
                iyb, dxb, dyb,
            )
            _boxes(
                acc, cx, cy, yaws[i], cam_h, cos_p, sin_p, focal, boxes[i if nbatch > 1 else 0], exclude[i], pix_hx,
                pix_hy, pix_ikz, sub_hx, sub_hy, sub_ikz, zc, lc, gat, flag, rects, act, rbuf, ebuf, prm, pts,
            )
            for r in range(nrow):
                for p in range(ncol):
                    v = min(max(acc[r, p] + bias, f32(0.0)), f32(255.0))
                    out[i, r, p, cam] = np.uint8(v)
