"""numba kernels of the cameras for people (see `drlocal.view.cameras` for the design).

Every camera is a pinhole at (ox, oy, oz) with yaw (c, s) = (cos, sin) and a pitch below horizontal (cp, sp),
focal length `f` in pixels, no roll. In the camera's *yaw frame* (forward, left, up) the ray through pixel
(row r, column p) is ``(row_rx[r], col_ry[p], row_rz[r])`` with ``row_rx = cp - v·sp``, ``col_ry = -u``,
``row_rz = -sp - v·cp`` (u, v: pixel centre offsets from the image centre over f). Along such a ray the
parameter t is the depth along the optical axis [m]; the depth buffer holds it.

Kernels: `ground_rows` (ground from the mip-mapped colour texture, sky, walls), `build_prims` (the boxes
of every body, lit), `draw_bodies` (oriented boxes: nearest hit per ray against the depth buffer, then
2×2 supersampling of the pixels on a body's silhouette or face edges). All are single-threaded and release
the GIL (nogil), so a viewer thread can render while the simulator runs.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import float32 as f32

# Body primitive layout (world frame, float64): 0 cx, 1 cy, 2 yaw [m, m, rad], 3 length (local x), 4 width
# (local y), 5 height, 6 z0 (bottom above the ground) [m], then 5 lit RGB triples (0-255) of the faces seen
# by a ray going +x, -x, +y, -y in the box's own frame (outward normals -x, +x, -y, +y) and of the top.
PRIM_COLS = 22
# Wall layout: xmin, ymin, xmax, ymax, height [m], 4 lit RGB triples of the faces seen going +x, -x, +y, -y
# (world axes), then 1.0 if the wall encloses the field (seen from inside: the ray's exit) else 0.0.
WALL_COLS = 18
#: Depth of "nothing here" (sky) [m].
FAR = 1e9
_NEAR = 0.02  # the simapp cameras' near clip [m]


@numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _clamp01(x):  # pragma: no cover - numba
    return min(max(x, f32(0.0)), f32(1.0))


# fmt: off
@numba.njit(cache=True, nogil=True, fastmath=True, boundscheck=False, error_model="numpy")
def _ground_row(
    fb, sky_w, sky, row_s0, r, slot_fwd, slot_k, slot_lvl, slot_w, col_ry, ox, oy, c, s, packed, lev_off, lev_w,
    lev_h, lev_inv, x0, y0, kb, qb,
):  # pragma: no cover - numba
# fmt: on
    """fb[0:3] (R, G, B rows) = the row's sky share × sky + Σ over its ground slots of weight × bilinear texture
    colour.

    A slot is one line of ground points at forward distance slot_fwd [m] whose lateral offset is
    slot_k · col_ry[p] (the ground point of ray p at depth slot_k), sampled at mip level slot_lvl: texture
    coordinates are linear in col_ry along the line. Three passes per slot (texel index and weights,
    gathers, blend) keep the first and last branch-free so that they vectorise; kb (W,) int32, fb[3:5] and
    qb (4 × (W,) int32) are scratch.
    """
    a0 = fb[0]
    a1 = fb[1]
    a2 = fb[2]
    ncol = a0.shape[0]
    s0 = sky_w * sky[0]
    s1 = sky_w * sky[1]
    s2 = sky_w * sky[2]
    for p in range(ncol):
        a0[p] = s0
        a1[p] = s1
        a2[p] = s2
    fub = fb[3]
    fvb = fb[4]
    q00 = qb[0]
    q01 = qb[1]
    q10 = qb[2]
    q11 = qb[3]
    m8 = np.int32(255)
    for sl in range(row_s0[r], row_s0[r + 1]):
        lv = slot_lvl[sl]
        inv = lev_inv[lv]
        w = np.int32(lev_w[lv])
        off = np.int32(lev_off[lv])
        umax = f32(w - 1.001)
        vmax = f32(lev_h[lv] - 1.001)
        fwd = slot_fwd[sl]
        k = slot_k[sl]
        wt = f32(slot_w[sl])
        u0 = f32((ox + c * fwd - x0) * inv - 0.5)
        du = f32(-s * k * inv)
        v0 = f32((oy + s * fwd - y0) * inv - 0.5)
        dv = f32(c * k * inv)
        for p in range(ncol):
            ry = col_ry[p]
            u = min(max(u0 + du * ry, f32(0.0)), umax)
            v = min(max(v0 + dv * ry, f32(0.0)), vmax)
            iu = np.int32(u)
            iv = np.int32(v)
            fub[p] = u - f32(iu)
            fvb[p] = v - f32(iv)
            kb[p] = off + iv * w + iu
        for p in range(ncol):
            kk = kb[p]
            q00[p] = packed[kk]
            q01[p] = packed[kk + 1]
            q10[p] = packed[kk + w]
            q11[p] = packed[kk + w + 1]
        for p in range(ncol):
            fu = fub[p]
            fv = fvb[p]
            w00 = wt * (f32(1.0) - fu) * (f32(1.0) - fv)
            w01 = wt * fu * (f32(1.0) - fv)
            w10 = wt * (f32(1.0) - fu) * fv
            w11 = wt * fu * fv
            b00 = q00[p]
            b01 = q01[p]
            b10 = q10[p]
            b11 = q11[p]
            a0[p] += (w00 * f32(b00 & m8) + w01 * f32(b01 & m8)) + (w10 * f32(b10 & m8) + w11 * f32(b11 & m8))
            b00 >>= 8
            b01 >>= 8
            b10 >>= 8
            b11 >>= 8
            a1[p] += (w00 * f32(b00 & m8) + w01 * f32(b01 & m8)) + (w10 * f32(b10 & m8) + w11 * f32(b11 & m8))
            b00 >>= 8
            b01 >>= 8
            b10 >>= 8
            b11 >>= 8
            a2[p] += (w00 * f32(b00 & m8) + w01 * f32(b01 & m8)) + (w10 * f32(b10 & m8) + w11 * f32(b11 & m8))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def walls_dmin(ox, oy, walls):  # pragma: no cover - numba
    """Smallest horizontal distance [m] from (ox, oy) at which any wall can be seen (0: maybe anywhere)."""
    dmin = FAR
    for k in range(walls.shape[0]):
        x0, y0, x1, y1 = walls[k, 0], walls[k, 1], walls[k, 2], walls[k, 3]
        dx = max(max(x0 - ox, ox - x1), 0.0)
        dy = max(max(y0 - oy, oy - y1), 0.0)
        d = np.sqrt(dx * dx + dy * dy)
        if d == 0.0 and walls[k, 17] > 0.5:  # inside an enclosing wall: the nearest face
            d = min(min(ox - x0, x1 - ox), min(oy - y0, y1 - oy))
        dmin = min(dmin, d)
    return dmin


@numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _exit_dist(ox, oy, th, x0, y0, x1, y1):  # pragma: no cover - numba
    """Horizontal distance from (ox, oy), inside the rectangle, to its edge along direction th."""
    dx = np.cos(th)
    dy = np.sin(th)
    tx = ((x1 - ox) / dx if dx > 1e-12 else ((x0 - ox) / dx if dx < -1e-12 else FAR))
    ty = ((y1 - oy) / dy if dy > 1e-12 else ((y0 - oy) / dy if dy < -1e-12 else FAR))
    return min(tx, ty)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def walls_dmin_arc(ox, oy, th_r, th_l, walls, dglobal):  # pragma: no cover - numba
    """Smallest horizontal distance [m] to a wall over the directions th_r..th_l (counter-clockwise, less
    than π apart). For an enclosing wall seen from inside it is reached at an end of the arc or where
    the arc crosses a face's normal; otherwise the global bound `dglobal` is used."""
    dmin = FAR
    for k in range(walls.shape[0]):
        x0, y0, x1, y1 = walls[k, 0], walls[k, 1], walls[k, 2], walls[k, 3]
        inside = walls[k, 17] > 0.5 and x0 < ox < x1 and y0 < oy < y1
        if not inside:
            return dglobal
        d = min(_exit_dist(ox, oy, th_r, x0, y0, x1, y1), _exit_dist(ox, oy, th_l, x0, y0, x1, y1))
        span = (th_l - th_r) % (2 * np.pi)
        for q in range(4):
            if (q * 0.5 * np.pi - th_r) % (2 * np.pi) <= span:
                d = min(d, _exit_dist(ox, oy, q * 0.5 * np.pi, x0, y0, x1, y1))
        dmin = min(dmin, d)
    return dmin


# fmt: off
@numba.njit(cache=True, nogil=True, fastmath=True, boundscheck=False, error_model="numpy")
def _walls_row(fb, ox, oy, oz, c, s, rx, rz, col_ry, walls, g):  # pragma: no cover - numba
# fmt: on
    """The walls seen by one row: per pixel nearest wall depth fb[5], coverage fb[6] and wall·4 + face fb[7].

    Per pixel: the ray's exit from an enclosing wall's rectangle (its inside faces; seen from outside the
    field only the far faces show, as Gazebo culls back faces) or entry into another wall's, the hit's
    height, and the pixel's coverage of the wall between its bottom (where it meets the ground) and top
    edges, antialiased over `g` pixels per unit of slope (rise / horizontal distance). Branch-free per
    pixel so that it vectorises. Returns whether the walls cover the whole row.
    """
    bt, bc, code = fb[5], fb[6], fb[7]
    ncol = bt.shape[0]
    tiny = f32(1e-9)
    one = f32(1.0)
    zero = f32(0.0)
    half = f32(0.5)
    rx32 = f32(rx)
    rz32 = f32(rz)
    c32 = f32(c)
    s32 = f32(s)
    ozf = f32(oz)
    gg = f32(g)
    for p in range(ncol):
        bt[p] = f32(FAR)
        bc[p] = zero
    for k in range(walls.shape[0]):
        sel = one if walls[k, 17] > 0.5 else zero  # 1: enclosing (exit face), 0: entry face
        x0 = f32(walls[k, 0] - ox)
        x1 = f32(walls[k, 2] - ox)
        y0 = f32(walls[k, 1] - oy)
        y1 = f32(walls[k, 3] - oy)
        top = f32(walls[k, 4] - oz)
        fk = f32(4 * k)
        for p in range(ncol):
            ry = col_ry[p]
            dx = c32 * rx32 - s32 * ry
            dy = s32 * rx32 + c32 * ry
            dx = dx if abs(dx) > tiny else tiny
            dy = dy if abs(dy) > tiny else tiny
            ix = one / dx
            iy = one / dy
            rh = np.sqrt(rx32 * rx32 + ry * ry)
            kz = rz32 / rh
            tx1 = x0 * ix
            tx2 = x1 * ix
            ty1 = y0 * iy
            ty2 = y1 * iy
            txx = max(tx1, tx2)
            tyx = max(ty1, ty2)
            txn = min(tx1, tx2)
            tyn = min(ty1, ty2)
            tout = min(txx, tyx)
            tin = max(txn, tyn)
            t = sel * tout + (one - sel) * tin
            xface = sel * f32(txx < tyx) + (one - sel) * f32(txn > tyn)
            idd = one / (t * rh)
            a = min(max(half + (kz + ozf * idd) * gg, zero), one) * min(max(half + (top * idd - kz) * gg, zero), one)
            ok = (t > zero) & (tin < tout) & (t < bt[p]) & (a > zero)
            fx = zero if ix > zero else one
            fy = f32(2.0) if iy > zero else f32(3.0)
            face = fx * xface + fy * (one - xface)
            bt[p] = t if ok else bt[p]
            bc[p] = a if ok else bc[p]
            code[p] = (face + fk) if ok else code[p]
    full = True
    for p in range(ncol):
        full &= bc[p] >= one
    return full


@numba.njit(cache=True, nogil=True, fastmath=True, boundscheck=False, error_model="numpy")
def _walls_blend(fb, drow, walls):  # pragma: no cover - numba
    """Blend the walls found by _walls_row over the row's colour (fb[0:3]) and depth (drow)."""
    a0, a1, a2, bt, bc, code = fb[0], fb[1], fb[2], fb[5], fb[6], fb[7]
    for p in range(a0.shape[0]):
        a = bc[p]
        if a > f32(0.0):
            ck = int(code[p] + f32(0.5))
            k = ck // 4
            j = 5 + 3 * (ck % 4)
            if a >= f32(1.0):  # exact (the ground was not sampled in rows the walls cover fully)
                a0[p] = f32(walls[k, j])
                a1[p] = f32(walls[k, j + 1])
                a2[p] = f32(walls[k, j + 2])
            else:
                a0[p] += a * (f32(walls[k, j]) - a0[p])
                a1[p] += a * (f32(walls[k, j + 1]) - a1[p])
                a2[p] += a * (f32(walls[k, j + 2]) - a2[p])
            if a >= f32(0.5):
                drow[p] = bt[p]


# fmt: off
@numba.njit(cache=True, nogil=True, fastmath=True, boundscheck=False, error_model="numpy")
def ground_rows(
    ox, oy, oz, c, s, row_rx, row_rz, col_ry, row_s0, slot_fwd, slot_k, slot_lvl, slot_w, row_sky, row_tg,
    packed, lev_off, lev_w, lev_h, lev_inv, x0, y0, sky, walls, row_dmax, row_kzlo, row_g, out, depth, fb, kb, qb,
):  # pragma: no cover - numba
# fmt: on
    """Ground, sky and walls of a whole frame: out (H, W, 3) uint8 RGB and depth (H, W) float32 [m along the
    optical axis; FAR for sky]. Rows whose ground never reaches the nearest
    wall (row_dmax: farthest ground point of the row and the half row below it [m]), or that look above
    every wall top (row_kzlo: lowest slope in the row), skip the wall test. Scratch: fb, a tuple of 8 (W,)
    float32 arrays; kb (W,) int32; qb, a tuple of 4 (W,) int32 arrays (separate arrays, not rows of one:
    LLVM vectorises the row loops only then).
    """
    nrow, ncol = out.shape[0], out.shape[1]
    nw = walls.shape[0]
    dmin = walls_dmin(ox, oy, walls) if nw > 0 else FAR
    hmax = 0.0
    for k in range(nw):
        hmax = max(hmax, walls[k, 4])
    yaw = np.arctan2(s, c)
    for r in range(nrow):
        drow = depth[r]
        tg = f32(row_tg[r])
        for p in range(ncol):
            drow[p] = tg
        rx = row_rx[r]
        seen = nw > 0 and row_dmax[r] >= dmin and row_kzlo[r] * max(dmin, 1e-3) <= hmax - oz
        if seen and rx > 0.0:  # the row's rays span the horizontal directions between its end columns
            th_l = yaw + np.arctan2(col_ry[0], rx)
            th_r = yaw + np.arctan2(col_ry[ncol - 1], rx)
            seen = row_dmax[r] >= walls_dmin_arc(ox, oy, th_r, th_l, walls, dmin)
        covered = False
        if seen:  # walls first: a row they cover fully needs no ground (the far rows, with the most slots)
            covered = _walls_row(fb, ox, oy, oz, c, s, rx, row_rz[r], col_ry, walls, row_g[r])
        if not covered:
            _ground_row(
                fb, f32(row_sky[r]), sky, row_s0, r, slot_fwd, slot_k, slot_lvl, slot_w, col_ry, ox, oy, c, s,
                packed, lev_off, lev_w, lev_h, lev_inv, x0, y0, kb, qb,
            )  # fmt: skip
        if seen:
            _walls_blend(fb, drow, walls)
        # the accumulators are convex combinations of 0-255 values: no clipping needed
        orow = out[r].reshape(-1)
        a0, a1, a2 = fb[0], fb[1], fb[2]
        for p in range(ncol):
            orow[3 * p] = np.uint8(np.int32(a0[p] + f32(0.5)))
            orow[3 * p + 1] = np.uint8(np.int32(a1[p] + f32(0.5)))
            orow[3 * p + 2] = np.uint8(np.int32(a2[p] + f32(0.5)))


@numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _hit(prm, rx, ry, rz):  # pragma: no cover - numba
    """Entry of ray (rx, ry, rz) (camera yaw frame) into the box of prm (see _box_params): (t, face) or (FAR, -1).

    Faces: 0-3 the sides seen going +x, -x, +y, -y in the box frame, 4 the top (or bottom)."""
    ca, sa = prm[0], prm[1]
    lx = ca * rx - sa * ry
    ly = sa * rx + ca * ry
    lz = rz
    tiny = 1e-12
    lx = lx if abs(lx) > tiny else tiny
    ly = ly if abs(ly) > tiny else tiny
    lz = lz if abs(lz) > tiny else tiny
    ix, iy, iz = 1.0 / lx, 1.0 / ly, 1.0 / lz
    tx1 = (-prm[5] - prm[2]) * ix
    tx2 = (prm[5] - prm[2]) * ix
    ty1 = (-prm[6] - prm[3]) * iy
    ty2 = (prm[6] - prm[3]) * iy
    tz1 = (-prm[7] - prm[4]) * iz
    tz2 = (prm[7] - prm[4]) * iz
    txn, tyn, tzn = min(tx1, tx2), min(ty1, ty2), min(tz1, tz2)
    tout = min(min(max(tx1, tx2), max(ty1, ty2)), max(tz1, tz2))
    tin = max(max(txn, tyn), tzn)
    if not (tin < tout and tin > _NEAR):
        return FAR, -1
    if tin == txn:
        face = 0 if lx > 0.0 else 1
    elif tin == tyn:
        face = 2 if ly > 0.0 else 3
    else:
        face = 4
    return tin, face


# fmt: off
@numba.njit(cache=True, nogil=True, fastmath=True, boundscheck=False, error_model="numpy")
def _hit_row(prm, rx, rz, col_ry, c0, c1, tb, fcb):  # pragma: no cover - numba
# fmt: on
    """`_hit` for the rays of columns c0..c1-1 of one row, branch-free so that it vectorises (float32):
    tb[p] = entry depth (FAR: miss), fcb[p] = face (as float)."""
    ca = f32(prm[0])
    sa = f32(prm[1])
    ox = f32(prm[2])
    oy = f32(prm[3])
    oz = f32(prm[4])
    hx = f32(prm[5])
    hy = f32(prm[6])
    hz = f32(prm[7])
    rx32 = f32(rx)
    lz = f32(rz)
    tiny = f32(1e-12)
    one = f32(1.0)
    zero = f32(0.0)
    lz = lz if abs(lz) > tiny else tiny
    iz = one / lz
    tz1 = (-hz - oz) * iz
    tz2 = (hz - oz) * iz
    tzn = min(tz1, tz2)
    tzx = max(tz1, tz2)
    for p in range(c0, c1):
        ry = col_ry[p]
        lx = ca * rx32 - sa * ry
        ly = sa * rx32 + ca * ry
        lx = lx if abs(lx) > tiny else tiny
        ly = ly if abs(ly) > tiny else tiny
        ix = one / lx
        iy = one / ly
        tx1 = (-hx - ox) * ix
        tx2 = (hx - ox) * ix
        ty1 = (-hy - oy) * iy
        ty2 = (hy - oy) * iy
        txn = min(tx1, tx2)
        tyn = min(ty1, ty2)
        tout = min(min(max(tx1, tx2), max(ty1, ty2)), tzx)
        tin = max(max(txn, tyn), tzn)
        ok = (tin < tout) & (tin > f32(_NEAR))
        fx = zero if lx > zero else one
        fy = f32(2.0) if ly > zero else f32(3.0)
        face = fx if tin == txn else (fy if tin == tyn else f32(4.0))
        tb[p] = tin if ok else f32(FAR)
        fcb[p] = face


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _box_params(bx, ox, oy, oz, yaw, prm):  # pragma: no cover - numba
    """prm[:8]: cos, sin of (camera yaw − box yaw) (yaw frame → box frame), camera position in the box frame
    (origin at the box centre), half length, width, height (prm[8:12]: the screen bounds, see _box_rect)."""
    d = yaw - bx[2]
    prm[0] = np.cos(d)
    prm[1] = np.sin(d)
    cb = np.cos(bx[2])
    sb = np.sin(bx[2])
    dx = ox - bx[0]
    dy = oy - bx[1]
    prm[2] = cb * dx + sb * dy
    prm[3] = -sb * dx + cb * dy
    prm[4] = oz - (bx[6] + 0.5 * bx[5])
    prm[5] = 0.5 * bx[3]
    prm[6] = 0.5 * bx[4]
    prm[7] = 0.5 * bx[5]


# fmt: off
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _box_rect(bx, ox, oy, oz, c, s, cp, sp, f, nrow, ncol, pts, frect):  # pragma: no cover - numba
# fmt: on
    """Screen rectangle [r0, r1) × [c0, c1) holding the box's projection (plus a pixel), clipped to the image
    and to the near plane (where an edge crosses it, the crossing point is projected); empty if the box is
    wholly behind it. frect (4,) gets the exact bounds (row min, max, col min, max; continuous). pts (8, 3)
    is scratch (corners in camera coordinates: right, down, depth)."""
    cb = np.cos(bx[2])
    sb = np.sin(bx[2])
    hl, hw = 0.5 * bx[3], 0.5 * bx[4]
    for i in range(8):
        lx = hl if (i & 1) else -hl
        ly = hw if (i & 2) else -hw
        z = bx[6] + (bx[5] if (i & 4) else 0.0)
        dx = bx[0] + cb * lx - sb * ly - ox
        dy = bx[1] + sb * lx + cb * ly - oy
        dz = z - oz
        a = c * dx + s * dy
        b = -s * dx + c * dy
        pts[i, 0] = -b
        pts[i, 1] = -a * sp - dz * cp
        pts[i, 2] = a * cp - dz * sp
    cmin, cmax, rmin, rmax = 1e18, -1e18, 1e18, -1e18
    seen = False
    for i in range(8):
        if pts[i, 2] >= _NEAR:
            seen = True
            cmin, cmax = min(cmin, pts[i, 0] / pts[i, 2]), max(cmax, pts[i, 0] / pts[i, 2])
            rmin, rmax = min(rmin, pts[i, 1] / pts[i, 2]), max(rmax, pts[i, 1] / pts[i, 2])
        for bit in (1, 2, 4):  # the box edges from corner i (each edge once: from the corner without the bit)
            j = i | bit
            if j == i:
                continue
            zi, zj = pts[i, 2], pts[j, 2]
            if (zi < _NEAR) != (zj < _NEAR):
                w = (_NEAR - zi) / (zj - zi)
                xc = (pts[i, 0] + w * (pts[j, 0] - pts[i, 0])) / _NEAR
                yc = (pts[i, 1] + w * (pts[j, 1] - pts[i, 1])) / _NEAR
                cmin, cmax = min(cmin, xc), max(cmax, xc)
                rmin, rmax = min(rmin, yc), max(rmax, yc)
    if not seen:
        return 0, 0, 0, 0
    cmin = max(min(0.5 * ncol + f * cmin, 1e9), -1e9)
    cmax = max(min(0.5 * ncol + f * cmax, 1e9), -1e9)
    rmin = max(min(0.5 * nrow + f * rmin, 1e9), -1e9)
    rmax = max(min(0.5 * nrow + f * rmax, 1e9), -1e9)
    frect[0] = rmin
    frect[1] = rmax
    frect[2] = cmin
    frect[3] = cmax
    r0 = max(int(np.floor(rmin - 1.0)), 0)
    r1 = min(int(np.ceil(rmax + 1.0)), nrow)
    c0 = max(int(np.floor(cmin - 1.0)), 0)
    c1 = min(int(np.ceil(cmax + 1.0)), ncol)
    return r0, max(r1, r0), c0, max(c1, c0)


# fmt: off
@numba.njit(cache=True, nogil=True, fastmath=True, boundscheck=False, error_model="numpy")
def draw_bodies(
    prims, skip0, skip1, ox, oy, oz, yaw, cp, sp, f, row_rx, row_rz, col_ry, out, depth, ids, bg, done, rects, prm,
    tb, fcb, aa,
):  # pragma: no cover - numba
# fmt: on
    """Draw the boxes `prims` (K, PRIM_COLS), except rows skip0..skip1-1, over out/depth: per pixel centre
    ray, the nearest entry over all boxes wins if nearer than the depth buffer (exact occlusion, also for
    interpenetrating parts). ids (H, W) int32 must be -1 and done (H, W) uint8 0 everywhere on entry (and
    are left so): ids records the packed RGB drawn per pixel for the edge pass, done marks the pixels it
    visited; bg
    (H, W, 3) uint8 keeps the colour under a drawn pixel.
    rects (K, 4) int64, prm (K, 12), tb and fcb (W,) float32 are scratch. With `aa`, silhouette and face-edge
    pixels are then supersampled 2×2 (`_antialias`).
    """
    nrow, ncol = out.shape[0], out.shape[1]
    c = np.cos(yaw)
    s = np.sin(yaw)
    pts = np.empty((8, 3))
    any_drawn = False
    for k in range(prims.shape[0]):
        bx = prims[k]
        rects[k, 0] = 0
        rects[k, 1] = 0
        rects[k, 2] = 0
        rects[k, 3] = 0
        if (skip0 <= k < skip1) or not (bx[3] > 0.0 and bx[4] > 0.0 and bx[5] > 0.0):
            continue
        r0, r1, c0, c1 = _box_rect(bx, ox, oy, oz, c, s, cp, sp, f, nrow, ncol, pts, prm[k, 8:12])
        if r0 >= r1 or c0 >= c1:
            continue
        rects[k, 0] = r0
        rects[k, 1] = r1
        rects[k, 2] = c0
        rects[k, 3] = c1
        _box_params(bx, ox, oy, oz, yaw, prm[k])
        pk = prm[k]
        for r in range(r0, r1):
            _hit_row(pk, row_rx[r], row_rz[r], col_ry, c0, c1, tb, fcb)
            drow = depth[r]
            for p in range(c0, c1):
                t = tb[p]
                if t >= drow[p]:
                    continue
                face = int(fcb[p])
                if ids[r, p] < 0:
                    bg[r, p, 0] = out[r, p, 0]
                    bg[r, p, 1] = out[r, p, 1]
                    bg[r, p, 2] = out[r, p, 2]
                drow[p] = t
                j = 7 + 3 * face
                c0_ = np.uint8(bx[j])
                c1_ = np.uint8(bx[j + 1])
                c2_ = np.uint8(bx[j + 2])
                ids[r, p] = np.int32(c0_) | (np.int32(c1_) << 8) | (np.int32(c2_) << 16)
                out[r, p, 0] = c0_
                out[r, p, 1] = c1_
                out[r, p, 2] = c2_
                any_drawn = True
    if any_drawn and aa:
        _antialias(prims, cp, sp, f, out, ids, bg, rects, prm, done)
    # leave ids and done clean for the next frame
    for k in range(prims.shape[0]):
        for r in range(max(rects[k, 0] - 1, 0), min(rects[k, 1] + 1, nrow)):
            for p in range(max(rects[k, 2] - 1, 0), min(rects[k, 3] + 1, ncol)):
                ids[r, p] = -1
                done[r, p] = 0


# fmt: off
@numba.njit(cache=True, nogil=True, fastmath=True, boundscheck=False, error_model="numpy")
def _antialias(prims, cp, sp, f, out, ids, bg, rects, prm, done):  # pragma: no cover - numba
# fmt: on
    """2×2 supersampling of every pixel whose look (ids: the packed RGB of the face drawn there, -1: the
    background) differs from a 4-neighbour's; two faces of one colour (a car's shell parts) have no edge.

    Visits each drawn box's rectangle plus a pixel around it (done: visited already). A subsample ray that
    hits no box takes the colour behind the bodies at that pixel (bg where a body was drawn, else the pixel
    itself); the background is not re-sampled (its own edges are smooth already). Subsamples are tested
    against the boxes whose rectangles hold the pixel (skipped boxes have empty rectangles). Walls are not
    depth-tested here: a body is never behind a wall in practice (walls stand outside the track).
    """
    nrow, ncol = out.shape[0], out.shape[1]
    hw = 0.5 * ncol
    hh = 0.5 * nrow
    nk = prims.shape[0]
    act = np.empty(nk, dtype=np.int64)
    cand = np.empty(nk, dtype=np.int64)
    na = 0
    for k in range(nk):
        if rects[k, 0] < rects[k, 1]:
            act[na] = k
            na += 1
    for ia in range(na):
        kr = act[ia]
        for r in range(max(rects[kr, 0] - 1, 0), min(rects[kr, 1] + 1, nrow)):
            for p in range(max(rects[kr, 2] - 1, 0), min(rects[kr, 3] + 1, ncol)):
                if done[r, p]:
                    continue
                done[r, p] = 1
                me = ids[r, p]
                edge = False
                if r > 0 and ids[r - 1, p] != me:
                    edge = True
                elif r + 1 < nrow and ids[r + 1, p] != me:
                    edge = True
                elif p > 0 and ids[r, p - 1] != me:
                    edge = True
                elif p + 1 < ncol and ids[r, p + 1] != me:
                    edge = True
                if edge:
                    _aa_pixel(prims, cp, sp, f, out, ids, bg, rects, prm, r, p, hw, hh, act, na, cand)


@numba.njit(cache=True, nogil=True, inline="always", fastmath=True, boundscheck=False, error_model="numpy")
def _aa_pixel(prims, cp, sp, f, out, ids, bg, rects, prm, r, p, hw, hh, act, na, cand):  # pragma: no cover - numba
    """Supersample edge pixel (r, p) (see _antialias) against the boxes act[:na] whose rectangles hold it."""
    nc = 0
    for i in range(na):
        k = act[i]
        if rects[k, 0] <= r < rects[k, 1] and rects[k, 2] <= p < rects[k, 3]:
            cand[nc] = k
            nc += 1
    me = ids[r, p]
    if me >= 0:
        b0, b1, b2 = f32(bg[r, p, 0]), f32(bg[r, p, 1]), f32(bg[r, p, 2])
    else:
        b0, b1, b2 = f32(out[r, p, 0]), f32(out[r, p, 1]), f32(out[r, p, 2])
    a0 = f32(0.0)
    a1 = f32(0.0)
    a2 = f32(0.0)
    for sub in range(4):
        dr = -0.25 if sub < 2 else 0.25
        dc = -0.25 if (sub & 1) == 0 else 0.25
        v = (r + 0.5 + dr - hh) / f
        u = (p + 0.5 + dc - hw) / f
        rx = cp - v * sp
        ry = -u
        rz = -sp - v * cp
        best = FAR
        bk = -1
        bf = -1
        sr = r + 0.5 + dr
        sc = p + 0.5 + dc
        for i in range(nc):
            k = cand[i]
            if not (prm[k, 8] <= sr <= prm[k, 9] and prm[k, 10] <= sc <= prm[k, 11]):
                continue
            t, face = _hit(prm[k], rx, ry, rz)
            if face >= 0 and t < best:
                best = t
                bk = k
                bf = face
        if bk >= 0:
            j = 7 + 3 * bf
            a0 += f32(prims[bk, j])
            a1 += f32(prims[bk, j + 1])
            a2 += f32(prims[bk, j + 2])
        else:
            a0 += b0
            a1 += b1
            a2 += b2
    out[r, p, 0] = np.uint8(a0 * f32(0.25) + f32(0.5))
    out[r, p, 1] = np.uint8(a1 * f32(0.25) + f32(0.5))
    out[r, p, 2] = np.uint8(a2 * f32(0.25) + f32(0.5))


# fmt: off
@numba.njit(cache=True, nogil=True, error_model="numpy")
def build_prims(
    xy, yaw, colors, kind, tgeo, trole, tstart, palette, ambient, sun_diffuse, sun_dir, out, start,
):  # pragma: no cover - numba
# fmt: on
    """Render boxes of M bodies into out (P, PRIM_COLS) and start (M + 1,) (body i = rows start[i]:start[i+1]).

    xy (M, 2), yaw (M,) [m, rad]; colors (M, 3) albedo RGB; kind (M,) index into the templates: kind j's
    boxes are tgeo[tstart[j]:tstart[j + 1]] = [dx, dy, length, width, height, z0] in the body frame with
    colour role trole (0: the body's colour, r > 0: palette[r]). Faces are lit ambient + sun_diffuse ·
    max(0, n · −sun_dir) per channel by their world normal, rounded and clipped to 255 (whole numbers, so
    that a face's edge pixels supersampled to the face alone keep its exact colour). A body with a non-finite
    pose gets zero-size boxes (not drawn).
    """
    m = xy.shape[0]
    n = 0
    start[0] = 0
    alb = np.empty(3)
    for i in range(m):
        j = kind[i]
        ok = np.isfinite(xy[i, 0]) and np.isfinite(xy[i, 1]) and np.isfinite(yaw[i])
        bx = xy[i, 0] if ok else 0.0
        by = xy[i, 1] if ok else 0.0
        th = yaw[i] if ok else 0.0
        c = np.cos(th)
        s = np.sin(th)
        # world normals of the faces seen going +x, -x, +y, -y (outward -x, +x, -y, +y), then the top
        nx = (-c, c, s, -s, 0.0)
        ny = (-s, s, -c, c, 0.0)
        nz = (0.0, 0.0, 0.0, 0.0, 1.0)
        for q in range(tstart[j], tstart[j + 1]):
            g = tgeo[q]
            row = out[n]
            row[0] = bx + c * g[0] - s * g[1]
            row[1] = by + s * g[0] + c * g[1]
            row[2] = th
            row[3] = g[2] if ok else 0.0
            row[4] = g[3] if ok else 0.0
            row[5] = g[4] if ok else 0.0
            row[6] = g[5]
            role = trole[q]
            for ch in range(3):
                alb[ch] = colors[i, ch] if role == 0 else palette[role, ch]
            for fc in range(5):
                cosine = max(0.0, -(nx[fc] * sun_dir[0] + ny[fc] * sun_dir[1] + nz[fc] * sun_dir[2]))
                for ch in range(3):
                    row[7 + 3 * fc + ch] = min(np.floor(alb[ch] * (ambient + sun_diffuse[ch] * cosine) + 0.5), 255.0)
            n += 1
        start[i + 1] = n
