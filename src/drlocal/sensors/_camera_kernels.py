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


@numba.njit(cache=True, inline="always")
def _tri_cdf(x):  # pragma: no cover - numba
    """Coverage of a step edge at signed distance x [px] under PIL's bilinear (triangle, radius 1) filter."""
    x = min(max(x, f32(-1.0)), f32(1.0))
    return f32(0.5) + x - f32(0.5) * x * abs(x)


@numba.njit(cache=True, fastmath=True, boundscheck=False)
def _ground(
    acc, ox, oy, c, s, packed, lev_off, lev_w, lev_h, lev_inv, x0, y0, slot_row, slot_level, slot_weight,
    slot_gx, slot_gy, kb, fub, fvb, q0b, q1b,
):  # pragma: no cover - numba
    """Accumulate the weighted bilinear texture samples of every ground slot into acc (rows, cols)."""
    ncol = slot_gx.shape[1]
    for sl in range(slot_row.shape[0]):
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


@numba.njit(cache=True, fastmath=True, boundscheck=False)
def _walls(acc, ox, oy, c, s, cam_h, walls, inside, row_tmax, pix_hx, pix_hy, pix_kz, pix_g):  # pragma: no cover
    """Blend the walls over acc, per pixel, for the rows where a wall can be seen."""
    nw = walls.shape[0]
    if nw == 0:
        return
    # nearest distance from the camera to any wall face: rows whose ground is all nearer skip the test
    dmin = f32(1e9)
    for k in range(nw):
        bx0, by0, bx1, by1 = walls[k, 0], walls[k, 1], walls[k, 2], walls[k, 3]
        if inside[k]:
            d = min(min(ox - bx0, bx1 - ox), min(oy - by0, by1 - oy))
        else:
            ddx = max(max(bx0 - ox, ox - bx1), 0.0)
            ddy = max(max(by0 - oy, oy - by1), 0.0)
            d = np.sqrt(ddx * ddx + ddy * ddy)
        dmin = min(dmin, f32(d))
    nrow, ncol = acc.shape
    last = -1
    for r in range(nrow):
        if row_tmax[r] >= dmin:
            last = r
    for r in range(last + 1):
        for p in range(ncol):
            hx = pix_hx[r, p]
            hy = pix_hy[r, p]
            dx = c * hx - s * hy
            dy = s * hx + c * hy
            dx = dx if abs(dx) > 1e-7 else f32(1e-7)
            dy = dy if abs(dy) > 1e-7 else f32(1e-7)
            ix = f32(1.0) / dx
            iy = f32(1.0) / dy
            best = f32(1e9)
            lum = f32(0.0)
            hgt = f32(0.0)
            for k in range(nw):
                tx1 = (walls[k, 0] - ox) * ix
                tx2 = (walls[k, 2] - ox) * ix
                ty1 = (walls[k, 1] - oy) * iy
                ty2 = (walls[k, 3] - oy) * iy
                txn = min(tx1, tx2)
                txx = max(tx1, tx2)
                tyn = min(ty1, ty2)
                tyx = max(ty1, ty2)
                if inside[k]:
                    t = min(txx, tyx)
                    xface = txx < tyx
                    ok = t > 0.0
                else:
                    t = max(txn, tyn)
                    xface = txn > tyn
                    ok = t > 0.0 and t < min(txx, tyx)
                if ok and t < best:
                    best = f32(t)
                    if xface:
                        lum = walls[k, 5] if dx > 0 else walls[k, 6]
                    else:
                        lum = walls[k, 7] if dy > 0 else walls[k, 8]
                    hgt = walls[k, 4]
            if best < 1e8:
                kz = pix_kz[r, p]
                g = pix_g[r, p]
                it = f32(1.0) / best
                a = _tri_cdf((kz + cam_h * it) * g) * _tri_cdf(((hgt - cam_h) * it - kz) * g)
                acc[r, p] += a * (lum - acc[r, p])


@numba.njit(cache=True, fastmath=True, boundscheck=False)
def _box_rect(bx, ox, oy, c, s, cam_h, cos_p, sin_p, focal, nrow, ncol):  # pragma: no cover - numba
    """Screen rectangle (r0, r1, c0, c1) (end-exclusive) that holds box bx's projection, or an empty one."""
    cb = np.cos(bx[2])
    sb = np.sin(bx[2])
    rmin, rmax, cmin, cmax = 1e9, -1e9, 1e9, -1e9
    behind = False
    any_front = False
    for corner in range(8):
        lx = bx[3] if corner & 1 else -bx[3]
        ly = bx[4] if corner & 2 else -bx[4]
        pz = bx[5] if corner & 4 else 0.0
        wx = bx[0] + cb * lx - sb * ly - ox
        wy = bx[1] + sb * lx + cb * ly - oy
        # into the camera's car-aligned frame (x forward, y left), relative to the optical centre
        rx = c * wx + s * wy
        ry = -s * wx + c * wy
        rz = pz - cam_h
        depth = rx * cos_p - rz * sin_p
        up = rx * sin_p + rz * cos_p
        if depth < 0.02:
            behind = True
            continue
        any_front = True
        col = 0.5 * ncol - focal * ry / depth
        row = 0.5 * nrow - focal * up / depth
        rmin = min(rmin, row)
        rmax = max(rmax, row)
        cmin = min(cmin, col)
        cmax = max(cmax, col)
    if not any_front:
        return 0, 0, 0, 0
    if behind:
        return 0, nrow, 0, ncol
    r0 = max(int(np.floor(rmin)) - 1, 0)
    r1 = min(int(np.ceil(rmax)) + 1, nrow)
    c0 = max(int(np.floor(cmin)) - 1, 0)
    c1 = min(int(np.ceil(cmax)) + 1, ncol)
    if r0 >= r1 or c0 >= c1:
        return 0, 0, 0, 0
    return r0, r1, c0, c1


@numba.njit(cache=True, fastmath=True, boundscheck=False)
def _boxes(
    acc, ox, oy, yaw, cam_h, cos_p, sin_p, focal, boxes, own, sub_hx, sub_hy, sub_kz, order, dist,
):  # pragma: no cover - numba
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
                    hx = sub_hx[sub, r, p]
                    hy = sub_hy[sub, r, p]
                    kz = sub_kz[sub, r, p]
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
                    if kz < 0.0:
                        tz_in = (bh - cam_h) / kz if cam_h > bh else -1e9
                        tout = min(tout, -cam_h / kz)  # the ground
                    elif cam_h > bh:
                        continue
                    else:
                        tz_in = -1e9
                        if kz > 0.0:
                            tout = min(tout, (bh - cam_h) / kz)
                    tin = max(max(txn, tyn), tz_in)
                    if tin < tout and tin > 0.0:
                        cover += 1.0
                        if tin == tz_in:
                            col += bx[10]
                        elif txn > tyn:
                            col += bx[6] if dx > 0 else bx[7]
                        else:
                            col += bx[8] if dy > 0 else bx[9]
                if cover > 0.0:
                    acc[r, p] = f32((acc[r, p] * (nsub - cover) + col) / nsub)


@numba.njit(cache=True, fastmath=True, boundscheck=False)
def render_kernel(
    xs, ys, yaws, cam_dy, bias, cam_x, cam_h, cos_p, sin_p, focal,
    packed, lev_off, lev_w, lev_h, lev_inv, x0, y0,
    slot_row, slot_level, slot_weight, slot_gx, slot_gy, row_sky, sky,
    walls, row_tmax, pix_hx, pix_hy, pix_kz, pix_g,
    boxes, exclude, sub_hx, sub_hy, sub_kz, out,
):  # pragma: no cover - numba
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
    for i in range(n):
        c = np.cos(yaws[i])
        s = np.sin(yaws[i])
        for cam in range(ncam):
            # camera origin projected on the ground, world frame (the x offset is inside slot_gx)
            ox = xs[i] - s * cam_dy[cam]
            oy = ys[i] + c * cam_dy[cam]
            for r in range(nrow):
                v = sky * row_sky[r]
                for p in range(ncol):
                    acc[r, p] = v
            _ground(
                acc, ox, oy, c, s, packed, lev_off, lev_w, lev_h, lev_inv, x0, y0, slot_row, slot_level,
                slot_weight, slot_gx, slot_gy, kb, fub, fvb, q0b, q1b,
            )
            # walls and boxes are cast from the optical centre itself
            cx = ox + c * cam_x
            cy = oy + s * cam_x
            for k in range(walls.shape[0]):
                inside[k] = walls[k, 9] > 0.5 and walls[k, 0] < cx < walls[k, 2] and walls[k, 1] < cy < walls[k, 3]
            _walls(acc, f32(cx), f32(cy), f32(c), f32(s), f32(cam_h), walls, inside, row_tmax, pix_hx, pix_hy, pix_kz, pix_g)
            _boxes(
                acc, cx, cy, yaws[i], cam_h, cos_p, sin_p, focal, boxes, exclude[i], sub_hx, sub_hy, sub_kz,
                order, dist,
            )
            for r in range(nrow):
                for p in range(ncol):
                    v = min(max(acc[r, p] + bias, f32(0.0)), f32(255.0))
                    out[i, r, p, cam] = np.uint8(v)
