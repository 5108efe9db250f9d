"""Obstacles and other cars in the camera (and the LIDAR through ObservationBuilder): geometry against the
pinhole model of the contract, occlusion, per-car object sets, stereo disparity, the bot car's look, and a
brute-force 2×2-supersampled reference.

Expected rows and columns come from the contract geometry (optical centre 0.14529 m ahead of and 0.13033 m
above base_link, 15° pitch, horizontal FOV 1.13 rad, 160×120), never from the renderer's tables. Edges are
measured with sub-pixel precision from the covered share of each pixel: (image - plain) / (face - plain).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest

from drlocal.config.model_metadata import ModelMetadata
from drlocal.env.observations import ObservationBuilder
from drlocal.sensors import appearance as appmod
from drlocal.sensors._camera_kernels import BOX_COLS
from drlocal.sensors.camera import CameraRenderer, save_view_png
from drlocal.sensors.objects_view import KINDS, PARTS, object_boxes
from drlocal.tracks import load_track
from drlocal.tracks.plot import draw_objects

CAM_X, CAM_H, PITCH, HFOV = 0.14529, 0.13033, 0.2618, 1.13
F = 80.0 / math.tan(HFOV / 2)
BASELINE = 0.06


def project(x: float, y: float, z: float, cam_y: float = 0.0) -> tuple[float, float]:
    """Continuous (col, row) of a car-frame point (base_link origin, x fwd, y left, z up)."""
    rx, ry, rz = x - CAM_X, y - cam_y, z - CAM_H
    depth = rx * math.cos(PITCH) - rz * math.sin(PITCH)
    up = rx * math.sin(PITCH) + rz * math.cos(PITCH)
    return 80.0 - F * ry / depth, 60.0 - F * up / depth


def vertical_edge_col(x: float, y: float, row: float, cam_y: float = 0.0) -> tuple[float, float]:
    """Column where the vertical line (x, y, ·) of the car frame crosses image row `row`, and its depth."""
    t = (60.0 - row) / F  # up / depth on that row
    rx = x - CAM_X
    rz = rx * (t * math.cos(PITCH) - math.sin(PITCH)) / (math.cos(PITCH) + t * math.sin(PITCH))
    depth = rx * math.cos(PITCH) - rz * math.sin(PITCH)
    return 80.0 - F * (y - cam_y) / depth, depth


def box_row(cx: float, cy: float, yaw: float, length: float, width: float, height: float, grey: float, z0=0.0):
    """One render primitive in the kernel layout, every face the same grey."""
    row = np.zeros(BOX_COLS)
    row[:6] = cx, cy, yaw, length, width, height
    row[6:11] = grey
    row[11] = z0
    return row


def coverage(img: np.ndarray, plain: np.ndarray, face: float) -> np.ndarray:
    """Covered share of each pixel by a face of grey `face` (0 where the background has that grey)."""
    den = face - plain.astype(float)
    den = np.where(np.abs(den) < 1.0, np.inf, den)
    return np.clip((img.astype(float) - plain.astype(float)) / den, 0.0, 1.0)


@pytest.fixture(scope="module")
def base() -> CameraRenderer:
    return CameraRenderer(load_track("reinvent_base"))


@pytest.fixture(scope="module")
def pose(base: CameraRenderer) -> tuple[float, float, float]:
    """On the centre line of reinvent_base's 3.5 m bottom straight, heading exactly +x."""
    x, y, yaw = base.start_pose(0.0)
    assert abs(yaw) < 0.01
    return x, y, 0.0


def render1(r: CameraRenderer, x: float, y: float, yaw: float, **kw) -> np.ndarray:
    return r.render(np.array([x]), np.array([y]), np.array([yaw]), **kw)[0]


def test_box_edges_match_the_pinhole_model(base: CameraRenderer, pose) -> None:
    x, y, yaw = pose
    d, length, width, height, grey = 1.0, 0.4, 0.3, 0.25, 250.0  # front face 1 m ahead of the camera
    plain = render1(base, x, y, yaw)
    for z0 in (0.0, 0.05):  # on the ground, and floating like a car body
        box = box_row(x + CAM_X + d + length / 2, y, yaw, length, width, height, grey, z0)[None]
        img = render1(base, x, y, yaw, boxes=box)
        cov = coverage(img, plain, grey)
        # bottom edge: a horizontal line at the row of the front face's bottom (the same in every column)
        _, row_bottom = project(CAM_X + d, 0.0, z0)
        _, row_top = project(CAM_X + d, 0.0, height + z0)
        assert 35 < row_bottom < 45 and row_top < 10  # sanity of the geometry itself (43.2 and 36.8)
        start = int(row_bottom) - 4  # fully inside the face
        for col in (66, 70, 90, 94):  # clear of the centre line
            assert cov[start, col] == 1.0
            measured = start + cov[start:, col].sum()
            assert abs(measured - row_bottom) <= 1.0, (z0, col, measured, row_bottom)
        # left and right edges on a middle row
        r = 20
        exp_l, _ = vertical_edge_col(CAM_X + d, width / 2, r + 0.5)
        exp_r, _ = vertical_edge_col(CAM_X + d, -width / 2, r + 0.5)
        assert 55 < exp_l < 65 and 95 < exp_r < 105
        left = 80 - cov[r, :80].sum()
        right = 80 + cov[r, 80:].sum()
        assert abs(left - exp_l) <= 1.0 and abs(right - exp_r) <= 1.0
    # the same box 0.12 m to the left: both edges move by the computed amount
    shift = 0.12
    box = box_row(x + CAM_X + d + length / 2, y + shift, yaw, length, width, height, grey)[None]
    cov = coverage(render1(base, x, y, yaw, boxes=box), plain, grey)
    r = 20
    exp_l, _ = vertical_edge_col(CAM_X + d, width / 2 + shift, r + 0.5)
    exp_r, _ = vertical_edge_col(CAM_X + d, -width / 2 + shift, r + 0.5)
    left = 80 - cov[r, :80].sum()
    right = 80 - cov[r, :80].sum() + cov[r].sum()
    assert abs(left - exp_l) <= 1.0 and abs(right - exp_r) <= 1.0
    assert exp_l < 55  # it did move (left, by about F·shift/Z ≈ 15 px)


def test_a_box_behind_another_is_hidden(base: CameraRenderer, pose) -> None:
    x, y, yaw = pose
    kinds = ["box_obstacle", "box_obstacle"]
    near_xy = (x + CAM_X + 1.0 + 0.2, y)
    plain = render1(base, x, y, yaw)

    def view(*xys):
        xy = np.array([[xy if xy is not None else (np.nan, np.nan) for xy in xys]])
        return render1(base, x, y, yaw, boxes=object_boxes(xy, np.zeros((1, 2)), kinds))

    near = view(near_xy, None)
    assert (near != plain).sum() > 1000
    # straight behind it, 2.5 m ahead: drawn alone, hidden entirely behind the near box
    far_xy = (x + CAM_X + 2.5 + 0.2, y)
    far = view(None, far_xy)
    assert (far != plain).sum() > 200
    assert np.array_equal(view(near_xy, far_xy), near)
    assert np.array_equal(view(far_xy, near_xy), near)  # the order of the primitives does not matter
    # half hidden: where the near box covers a pixel fully, the near box; far from it, the far box
    far_xy = (x + CAM_X + 2.5 + 0.2, y + 0.4)
    far = view(None, far_xy)
    both = view(near_xy, far_xy)
    near_mask = near != plain
    inner = near_mask.copy()
    for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        inner &= np.roll(near_mask, (dr, dc), axis=(0, 1))
    assert np.array_equal(both[inner], near[inner])
    clear = ~near_mask
    for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        clear &= ~np.roll(near_mask, (dr, dc), axis=(0, 1))
    visible = clear & (far != plain)
    assert visible.sum() > 50 and np.array_equal(both[clear], far[clear])


def test_per_car_object_sets(base: CameraRenderer, pose) -> None:
    x, y, yaw = pose
    xy = np.array([[[x + 1.4, y]], [[np.nan, np.nan]]])  # car 0 has a box ahead, car 1 an empty slot
    boxes = object_boxes(xy, np.zeros((2, 1)), ["box_obstacle"])
    assert boxes.shape == (2, 1, BOX_COLS)
    xs, ys, yaws = np.full(2, x), np.full(2, y), np.full(2, yaw)
    plain = render1(base, x, y, yaw)
    imgs = base.render(xs, ys, yaws, boxes=boxes)
    assert np.array_equal(imgs[1], plain)
    assert (imgs[0] != plain).sum() > 1000
    assert np.array_equal(imgs[0], render1(base, x, y, yaw, boxes=boxes[:1]))
    # shared (M, cols) boxes: every car sees them
    shared = base.render(xs, ys, yaws, boxes=boxes[0])
    assert np.array_equal(shared[0], imgs[0]) and np.array_equal(shared[1], imgs[0])
    # stereo, per car as well
    st = base.render(xs, ys, yaws, camera="stereo", boxes=boxes)
    assert np.array_equal(st[1], render1(base, x, y, yaw, camera="stereo"))
    assert (st[0] != st[1]).sum() > 1000


def test_stereo_disparity_of_a_box(base: CameraRenderer, pose) -> None:
    x, y, yaw = pose
    d, lat, grey = 0.6, 0.03, 250.0
    box = box_row(x + CAM_X + d + 0.1, y + lat, yaw, 0.2, 0.16, 0.4, grey)[None]
    img = render1(base, x, y, yaw, camera="stereo", boxes=box)
    plain = render1(base, x, y, yaw, camera="stereo")
    r = 30
    edges = []
    for ch, cam_y in ((0, BASELINE / 2), (1, -BASELINE / 2)):
        cov = coverage(img[..., ch], plain[..., ch], grey)
        assert cov[r].sum() > 20
        start = int(np.argmax(cov[r] == 1.0))  # first fully covered column
        left = start - cov[r, :start].sum()
        exp_left, depth = vertical_edge_col(CAM_X + d, lat + 0.08, r + 0.5, cam_y)
        assert abs(left - exp_left) <= 1.0
        edges.append(left)
    disparity = edges[0] - edges[1]  # the left camera sees the box further right
    expected = F * BASELINE / depth  # f·B/Z, Z the depth along the optical axis
    assert 10 < expected < 14
    assert abs(disparity - expected) <= 1.0


def _car_rows(x_face: float, z_lo: float, z_hi: float) -> tuple[int, int]:
    """Image rows strictly inside the band z_lo..z_hi of a face at car-frame x (centre column)."""
    _, r_lo = project(x_face, 0.0, z_lo)  # lower z = larger row
    _, r_hi = project(x_face, 0.0, z_hi)
    return math.ceil(r_hi) + 1, math.floor(r_lo) - 1


def test_bot_car_looks_like_a_car(base: CameraRenderer, pose) -> None:
    x, y, yaw = pose
    ahead = 0.9  # base_link to base_link
    plain = render1(base, x, y, yaw).astype(float)
    for facing, x_face in ((0.0, ahead - 0.158), (math.pi, ahead - 0.166)):  # from behind, then head-on
        boxes = object_boxes(np.array([[[x + ahead, y]]]), np.array([[facing]]), ["bot_car"])
        img = render1(base, x, y, yaw, boxes=boxes).astype(float)
        car = img != plain
        # rows below the lower body's near bottom edge (z 0.05) and above where the wheels meet the
        # ground show only the wheels: two dark blobs with the road between them
        _, below_body = project(x_face, 0.0, 0.05)
        _, wheel_ground = project(x_face + 0.04, 0.0, 0.0)
        wheel_rows = range(math.ceil(below_body) + 1, math.floor(wheel_ground) - 1)
        assert len(wheel_rows) >= 3
        wheels = []
        for r in wheel_rows:
            cols = np.flatnonzero(car[r])
            runs = np.split(cols, np.flatnonzero(np.diff(cols) > 1) + 1)
            assert len(runs) == 2, (facing, r, cols)
            assert runs[1][0] - runs[0][-1] > 15  # the gap between the wheels
            wheels += [img[r, run[1:-1]] for run in runs]  # without the antialiased edge pixels
        wheels = np.concatenate(wheels)
        # rows of the lower body's end face (z 0.05-0.105): one wide run, lighter than the wheels
        b0, b1 = _car_rows(x_face, 0.05, 0.105)
        body = np.concatenate([img[r, 70:90] for r in range(b0, b1 + 1)])
        assert np.all(car[b0 : b1 + 1, 70:90])
        body_width = car[b0 : b1 + 1].sum(axis=1).min()
        assert wheels.mean() < body.mean() - 3
        # albedo 0.1 (wheels) and 0.156 (body), lit by ambient 0.5 plus the sun on faces turned to it
        assert 0.4 * 25.5 <= wheels.mean() <= 1.4 * 25.5
        assert 0.4 * 39.8 <= body.mean() <= 1.4 * 39.8
        # the top is narrower than the body: the camera hump, above the shell, in its top rows
        rows = np.flatnonzero(car.any(axis=1))
        top_width = car[rows[0] : rows[0] + 2].sum(axis=1).max()
        assert top_width < 0.6 * body_width
        assert wheel_rows[-1] > b1 > rows[0]


def test_matches_a_brute_force_supersampled_reference(base: CameraRenderer, pose) -> None:
    """Pixels whose centre sees the same as its neighbours' take one sample, the rest are supersampled 2×2:
    that equals 2×2 supersampling everywhere but at a few box corners."""
    x, y, yaw = pose
    xy = np.array([[[x + 1.0, y - 0.1], [x + 1.2, y + 0.25], [x + 2.0, y - 0.25], [x + 0.9, y + 0.6]]])
    yaws = np.array([[0.5, -0.3, 2.0, 1.2]])
    boxes = object_boxes(xy, yaws, ["bot_car", "amazon_box_obstacle", "racecar", "box_obstacle"])
    plain = render1(base, x, y, yaw)
    img = render1(base, x, y, yaw, boxes=boxes).astype(float)
    ref = _reference(plain, boxes[0], x, y, yaw)
    diff = np.abs(img - ref)
    assert (img != plain).sum() > 2000
    assert (diff > 1.5).sum() <= 5  # 1.5: float vs the truncated uint8 base image
    assert diff.mean() < 0.4


def _reference(plain: np.ndarray, prims: np.ndarray, x: float, y: float, yaw: float) -> np.ndarray:
    """Nearest hit of each of the 4 subsample rays (±0.25 px) of every pixel over all primitives, blended
    over the uint8 image without them (numpy, float64)."""
    cp, sp = math.cos(PITCH), math.sin(PITCH)
    col = np.arange(160)[None, None, :] + 0.5 + np.array([-0.25, 0.25, -0.25, 0.25])[:, None, None]
    row = np.arange(120)[None, :, None] + 0.5 + np.array([-0.25, -0.25, 0.25, 0.25])[:, None, None]
    u, v = (col - 80.0) / F, (row - 60.0) / F
    dx, dy, dz = np.broadcast_arrays(cp - v * sp, -u, -sp - v * cp)
    c, s = math.cos(yaw), math.sin(yaw)
    ox, oy = x + c * CAM_X, y + s * CAM_X
    best = np.full(dx.shape, np.inf)
    lum = np.zeros(dx.shape)
    for b in prims:
        cb, sb = math.cos(b[2]), math.sin(b[2])
        lx, ly = cb * (ox - b[0]) + sb * (oy - b[1]), -sb * (ox - b[0]) + cb * (oy - b[1])
        wx, wy = c * dx - s * dy, s * dx + c * dy
        rx, ry = cb * wx + sb * wy, -sb * wx + cb * wy
        slabs = []
        with np.errstate(divide="ignore", invalid="ignore"):
            for o, dd, lo, hi in ((lx, rx, -b[3] / 2, b[3] / 2), (ly, ry, -b[4] / 2, b[4] / 2),
                                  (CAM_H, dz, b[11], b[11] + b[5])):  # fmt: skip
                t1, t2 = (lo - o) / dd, (hi - o) / dd
                slabs.append((np.minimum(t1, t2), np.maximum(t1, t2)))
        tin = np.maximum(np.maximum(slabs[0][0], slabs[1][0]), slabs[2][0])
        tout = np.minimum(np.minimum(slabs[0][1], slabs[1][1]), slabs[2][1])
        hit = (tin < tout) & (tin > 0) & (tin < best)
        side = np.where(slabs[0][0] > slabs[1][0], np.where(rx > 0, b[6], b[7]), np.where(ry > 0, b[8], b[9]))
        face = np.where(slabs[2][0] >= np.maximum(slabs[0][0], slabs[1][0]), b[10], side)
        best = np.where(hit, tin, best)
        lum = np.where(hit, face, lum)
    cover = np.isfinite(best).sum(axis=0)
    return (plain.astype(float) * (4 - cover) + np.where(np.isfinite(best), lum, 0.0).sum(axis=0)) / 4


def test_object_boxes_layout_and_colours() -> None:
    xy = np.array([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]])
    yaw = np.array([[0.0, 0.5, 1.0, 1.5, 2.0]])
    b = object_boxes(xy, yaw, KINDS)
    assert b.shape == (1, 1 + 1 + 1 + 7 + 7, BOX_COLS) and all(len(PARTS[k]) <= 7 for k in KINDS)
    box = b[0, 0]
    assert box[:6].tolist() == [1.0, 2.0, 0.0, 0.4, 0.3, 0.25] and box[11] == 0.0
    brown = np.array([0.482, 0.38, 0.309]) * 255
    normals = [(-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0), (0, 0, 1)]  # faces seen going +x, -x, +y, -y, top
    assert box[6:11] == pytest.approx([appmod.lit_luma(brown, n) for n in normals])
    assert b[0, 1, 3:6].tolist() == [0.36, 0.265, 0.24]  # deepracer_box_obstacle
    assert b[0, 2, 6:11].min() > 60 and b[0, 1, 6:11].max() < 70  # cardboard vs dark blue
    car = b[0, 3:10]
    assert car[:4, 5].max() < 0.1 and car[:, 11].max() + car[:, 5].max() < 0.25  # wheels low, car ≲ 0.21 m
    wheel, body = car[0, 6:11], car[4, 6:11]
    assert np.all(wheel < body)  # albedo 0.1 < 0.156
    # a car part's position follows the car's yaw
    c, s = math.cos(1.5), math.sin(1.5)
    dx, dy = PARTS["bot_car"][0][:2]
    assert car[0, :2] == pytest.approx([7.0 + c * dx - s * dy, 8.0 + s * dx + c * dy])
    # NaN slots hold no object: zero size
    xy[0, 1] = np.nan
    e = object_boxes(xy, yaw, KINDS)
    assert np.all(e[0, 1, 3:6] == 0) and np.array_equal(e[0, 0], b[0, 0]) and np.array_equal(e[0, 3:], b[0, 3:])
    with pytest.raises(ValueError):
        object_boxes(xy, yaw, ["box_obstacle"] * 4 + ["cone"])
    with pytest.raises(ValueError):
        object_boxes(xy[0], yaw, KINDS)


def test_observations_with_objects() -> None:
    track = load_track("reinvent_base")
    md = ModelMetadata.model_validate(
        {"action_space": [{"steering_angle": 0, "speed": 1}], "sensor": ["STEREO_CAMERAS", "LIDAR"], "version": 5}
    )
    builder = ObservationBuilder(md, track)
    x, y, _ = builder.camera.start_pose(0.0)
    xs, ys, yaws = np.full(2, x), np.full(2, y), np.zeros(2)
    # car 0: a box 1 m ahead (camera) and a bot car 0.8 m behind (LIDAR); car 1: nothing
    xy = np.array([[[x + 1.2, y], [x - 0.8, y]], [[np.nan, np.nan], [np.nan, np.nan]]])
    boxes = object_boxes(xy, np.zeros((2, 2)), ["box_obstacle", "bot_car"])
    obs = builder.observe(xs, ys, yaws, boxes=boxes)
    plain = builder.observe(xs, ys, yaws)
    for key in ("STEREO_CAMERAS", "LIDAR"):
        assert np.array_equal(obs[key][1], plain[key][1])
        assert not np.array_equal(obs[key][0], plain[key][0])
    # the ray straight back meets the hump's front face, 0.8 - 0.16 m behind base_link
    back = obs["LIDAR"][0, 31:33]
    assert back.max() == pytest.approx(0.8 - 0.16 + 0.02913, abs=0.03)


def test_save_view_png_with_objects_and_pose(tmp_path) -> None:
    track = load_track("reinvent_base")
    x, y, yaw = CameraRenderer(track).start_pose(0.0)
    xy = np.array([[x + 1.2, y + 0.15], [x + 2.2, y - 0.15], [np.nan, np.nan]])
    out = tmp_path / "view.png"
    objects = (xy, np.zeros(3), ["box_obstacle", "bot_car", "racecar"])
    save_view_png(track, 0.0, str(out), camera="stereo", objects=objects, pose=(x + 0.3, y, 0.05))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig, ax = plt.subplots()
    draw_objects(ax, *objects)
    assert len(ax.patches) == 2 and len(ax.lines) == 1  # the NaN slot is left out; the car has a tick
    plt.close(fig)
