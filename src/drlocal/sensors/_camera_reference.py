"""A slow brute-force reference for the camera renderer (tests and tuning only).

It does what Gazebo + the simapp do, literally: point-sample the scene at 640×480 (optionally with
ss×ss samples per pixel, box-averaged), then shrink to 160×120 with PIL BILINEAR and convert to grey.
The scene is the same one the fast renderer draws: the level-0 ground texture (bilinear lookups, no
mip levels), the walls and the sky. Boxes are not drawn. Uses numpy and Pillow.
"""

from __future__ import annotations

import numpy as np

from drlocal.sensors import camera as cam


def _bilinear(level0: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    h, w = level0.shape
    u = np.clip(u, 0.0, w - 1.001)
    v = np.clip(v, 0.0, h - 1.001)
    iu, iv = u.astype(np.int64), v.astype(np.int64)
    fu, fv = u - iu, v - iv
    t = level0.astype(np.float32)
    a = t[iv, iu] + fu * (t[iv, iu + 1] - t[iv, iu])
    b = t[iv + 1, iu] + fu * (t[iv + 1, iu + 1] - t[iv + 1, iu])
    return a + fv * (b - a)


def reference_render(
    renderer: cam.CameraRenderer, x: float, y: float, yaw: float, *, camera: str = "front", ss: int = 2
) -> np.ndarray:
    """(120, 160) uint8 ((120, 160, 2) for stereo) image of one pose, the slow way."""
    from PIL import Image

    rig = cam.CameraRig.get(camera)
    tex = renderer.texture
    # sample positions in 160×120 units: 640×480 pixels, ss×ss samples each
    n_c, n_r = cam.RENDER_WIDTH * ss, cam.RENDER_HEIGHT * ss
    cols = (np.arange(n_c) + 0.5) / (ss * 4.0)
    rows = (np.arange(n_r) + 0.5) / (ss * 4.0)
    hx, hy, kz = cam.pixel_rays(cols[None, :], rows[:, None])
    tg = cam.ground_distance(kz)
    c, s = np.cos(yaw), np.sin(yaw)
    dx, dy = c * hx - s * hy, s * hx + c * hy
    channels = []
    for oy_car in rig.offsets_y:
        ox, oy = x - s * oy_car + c * cam.CAMERA_X, y + c * oy_car + s * cam.CAMERA_X
        img = np.full(tg.shape, renderer.sky_luma, dtype=np.float64)
        ground = np.isfinite(tg)
        gx = ox + np.where(ground, tg, 0.0) * dx
        gy = oy + np.where(ground, tg, 0.0) * dy
        val = _bilinear(tex.level0, (gx - tex.x0) / tex.texel - 0.5, (gy - tex.y0) / tex.texel - 0.5)
        img = np.where(ground, val, img)
        for wall in renderer.walls:
            x0, y0, x1, y1, height = (float(v) for v in wall[:5])
            with np.errstate(divide="ignore", invalid="ignore"):
                tx1, tx2 = (x0 - ox) / dx, (x1 - ox) / dx
                ty1, ty2 = (y0 - oy) / dy, (y1 - oy) / dy
            txn, txx = np.minimum(tx1, tx2), np.maximum(tx1, tx2)
            tyn, tyx = np.minimum(ty1, ty2), np.maximum(ty1, ty2)
            inside = wall[9] > 0.5 and x0 < ox < x1 and y0 < oy < y1
            if inside:
                t = np.minimum(txx, tyx)
                xface = txx < tyx
                ok = t > 0
            else:
                t = np.maximum(txn, tyn)
                xface = txn > tyn
                ok = (t > 0) & (t < np.minimum(txx, tyx))
            z = cam.CAMERA_HEIGHT + kz * t
            hit = ok & (z >= 0) & (z <= height) & (t < tg)
            lum = np.where(xface, np.where(dx > 0, wall[5], wall[6]), np.where(dy > 0, wall[7], wall[8]))
            img = np.where(hit, lum, img)
        img = img.reshape(cam.RENDER_HEIGHT, ss, cam.RENDER_WIDTH, ss).mean(axis=(1, 3))
        big = Image.fromarray(img.astype(np.float32), mode="F")
        small = np.asarray(big.resize((cam.IMAGE_WIDTH, cam.IMAGE_HEIGHT), Image.BILINEAR))
        bias = 0.5 if rig.itu_luma else 0.0
        channels.append(np.clip(np.floor(small + bias), 0, 255).astype(np.uint8))
    return channels[0] if len(channels) == 1 else np.stack(channels, axis=-1)
