"""numba kernels of the camera renderer (see `drlocal.sensors.camera` for the design).

One kernel renders every car's image(s): ground from the mip-mapped texture (precomputed car-frame
sample points per image row), then walls (per-pixel ray against axis-aligned wall boxes with analytic
antialiasing of their bottom and top edges), then obstacle boxes (2×2 supersampled ray/box tests inside
each box's projected screen rectangle), then the conversion to uint8.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import float32 as f32

# Column layout of the `boxes` array the kernel receives (world frame, per box):
# cx, cy, yaw, half length, half width, height, face luma seen going +x, -x, +y, -y (local axes), top.
BOX_COLS = 11
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
def _box_rect(bx, ox, oy, c, s, cam_h, cos_p, sin_p, focal, nrow, ncol):  # pragma: no cover - numba
    """Screen rectangle (r0, r1, c0, c1) (end-exclusive) that holds box bx's projection, or an empty one.

    The box is clipped against the near plane first (its edges that cross it add their crossing points),
    so a box beside the car, partly behind the camera, still gets a tight rectangle.
    """
    near = 0.02
    cb = np.cos(bx[2])
    sb = np.sin(bx[2])
    depth = np.empty(8)
    lat = np.empty(8)
    up = np.empty(8)
    for corner in range(8):
        lx = bx[3] if corner & 1 else -bx[3]
        ly = bx[4] if corner & 2 else -bx[4]
        pz = bx[5] if corner & 4 else 0.0
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


@numba.njit(cache=True, inline="always", error_model="numpy")
def _box_hit(hx, hy, kz, cr, sr, lox, loy, hl, hw, bh, cam_h, bx):  # pragma: no cover - numba
    """Grey of the box face a ray (car-frame direction hx, hy, slope kz) meets first, or -1 (miss/ground first).

    The ray starts at (lox, loy, cam_h) in the box frame; (cr, sr) rotate car-frame directions into it.
    """
    dx = cr * hx - sr * hy
    dy = sr * hx + cr * hy
    dx = dx if abs(dx) > 1e-9 else 1e-9
    dy = dy if abs(dy) > 1e-9 else 1e-9
    tx1 = (-hl - lox) / dx
    tx2 = (hl - lox) / dx
    ty1 = (-hw - loy) / dy
    ty2 = (hw - loy) / dy
    txn = min(tx1, tx2)
    tyn = min(ty1, ty2)
    tout = min(max(tx1, tx2), max(ty1, ty2))
    tz_in = -1e9
    if kz < 0.0:
        if cam_h > bh:
            tz_in = (bh - cam_h) / kz  # through the top face
        tout = min(tout, -cam_h / kz)  # the ground hides what lies beyond
    elif cam_h > bh:
        return -1.0
    elif kz > 0.0:
        tout = min(tout, (bh - cam_h) / kz)
    tin = max(max(txn, tyn), tz_in)
    if not (tin < tout and tin > 0.0):
        return -1.0
    if tin == tz_in:
        return bx[10]
    if txn > tyn:
        return bx[6] if dx > 0 else bx[7]
    return bx[8] if dy > 0 else bx[9]


# fmt: off
@numba.njit(cache=True, fastmath=True, boundscheck=False, error_model="numpy")
def _boxes(
    acc, ox, oy, yaw, cam_h, cos_p, sin_p, focal, boxes, own, sub_hx, sub_hy, sub_kz, order, dist,
):  # pragma: no cover - numba
# fmt: on
    """Draw the obstacle boxes (except box `own`) over acc with 2×2 supersampling, far ones first."""
    nb = boxes.shape[0]
    if nb == 0:
        return
    nrow, ncol = acc.shape
    nsub = sub_hx.shape[0]
    c = np.cos(yaw)
    s = np.sin(yaw)
    m = 0
    for k in range(nb):
        if k == own:
            continue
        d = np.hypot(boxes[k, 0] - ox, boxes[k, 1] - oy)
        j = m
        while j > 0 and dist[j - 1] < d:  # insertion sort, farthest first
            dist[j] = dist[j - 1]
            order[j] = order[j - 1]
            j -= 1
        dist[j] = d
        order[j] = k
        m += 1
    for q in range(m):
        k = order[q]
        bx = boxes[k]
        r0, r1, c0, c1 = _box_rect(bx, ox, oy, c, s, cam_h, cos_p, sin_p, focal, nrow, ncol)
        if r0 >= r1:
            continue
        rel = yaw - bx[2]
        cr = np.cos(rel)
        sr = np.sin(rel)
        cb = np.cos(bx[2])
        sb = np.sin(bx[2])
        lox = cb * (ox - bx[0]) + sb * (oy - bx[1])
        loy = -sb * (ox - bx[0]) + cb * (oy - bx[1])
        hl, hw, bh = bx[3], bx[4], bx[5]
        for r in range(r0, r1):
            for p in range(c0, c1):
                cover = 0.0
                col = 0.0
                for sub in range(nsub):
                    lum = _box_hit(
                        sub_hx[sub, r, p], sub_hy[sub, r, p], sub_kz[sub, r, p], cr, sr, lox, loy, hl, hw, bh, cam_h, bx
                    )
                    if lum >= 0.0:
                        cover += 1.0
                        col += lum
                if cover > 0.0:
                    acc[r, p] = f32((acc[r, p] * (nsub - cover) + col) / nsub)


# fmt: off
@numba.njit(cache=True, fastmath=True, boundscheck=False, error_model="numpy")
def render_kernel(
    xs, ys, yaws, cam_dy, bias, cam_x, cam_h, cos_p, sin_p, focal,
    packed, lev_off, lev_w, lev_h, lev_inv, x0, y0,
    slot_row, slot_level, slot_weight, slot_gx, slot_gy, row_sky, sky,
    walls, row_tmax, row_kz_lo, row_kz_hi, half_fov, pix_hx, pix_hy, pix_kz, pix_g,
    boxes, exclude, sub_hx, sub_hy, sub_kz, out,
):  # pragma: no cover - numba
# fmt: on
    """Render N cars × C cameras into out (N, rows, cols, C) uint8.

    cam_dy (C,): lateral offset of each camera in the car frame [m]; bias: added before truncation
    (0 for the float luma, 0.5 for PIL's rounded convert('L')). Everything else: see camera.py.
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
    nb = boxes.shape[0]
    order = np.empty(max(nb, 1), dtype=np.int64)
    dist = np.empty(max(nb, 1), dtype=np.float64)
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
                acc, cx, cy, yaws[i], cam_h, cos_p, sin_p, focal, boxes, exclude[i], sub_hx, sub_hy, sub_kz,
                order, dist,
            )
            for r in range(nrow):
                for p in range(ncol):
                    v = min(max(acc[r, p] + bias, f32(0.0)), f32(255.0))
                    out[i, r, p, cam] = np.uint8(v)
