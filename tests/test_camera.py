"""Camera renderer: geometry against the contract numbers, stereo, boxes, noise, antialiasing, PNG view.

Expected rows and columns are computed here from the contract geometry (optical centre 0.14529 m ahead of
and 0.13033 m above base_link, 15° pitch, horizontal FOV 1.13 rad, 160×120 output) and the track/world
data, never from the renderer's own tables.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from drlocal.sensors import appearance as appmod
from drlocal.sensors._camera_reference import reference_render
from drlocal.sensors.camera import (
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    CameraRenderer,
    CameraRig,
    save_view_png,
)
from drlocal.tracks import load_track
from drlocal.tracks.track import Track

# ----- the contract, independently of the renderer -----
CAM_X, CAM_H, PITCH, HFOV = 0.14529, 0.13033, 0.2618, 1.13
F = 80.0 / math.tan(HFOV / 2)  # focal length in 160-px units
HORIZON = 60.0 - F * math.tan(PITCH)  # continuous row coordinate of the horizon (≈ 26.22)


def project(x: float, y: float, z: float, cam_y: float = 0.0) -> tuple[float, float]:
    """Continuous (col, row) of a car-frame point (base_link origin, x fwd, y left, z up)."""
    rx, ry, rz = x - CAM_X, y - cam_y, z - CAM_H
    depth = rx * math.cos(PITCH) - rz * math.sin(PITCH)
    up = rx * math.sin(PITCH) + rz * math.cos(PITCH)
    return 80.0 - F * ry / depth, 60.0 - F * up / depth


def ground_row(d: float) -> float:
    """Continuous row where the ground straight ahead at horizontal distance d from the camera projects."""
    return 60.0 + F * math.tan(math.atan(CAM_H / d) - PITCH)


@pytest.fixture(scope="module")
def base() -> CameraRenderer:
    return CameraRenderer(load_track("reinvent_base"))


@pytest.fixture(scope="module")
def straight_pose(base: CameraRenderer) -> tuple[float, float, float]:
    """Start of reinvent_base: on the centre line of the 3.5 m bottom straight, heading +x (yaw ≈ 0)."""
    x, y, yaw = base.start_pose(0.0)
    assert abs(yaw) < 0.01
    return x, y, yaw


def render1(r: CameraRenderer, x: float, y: float, yaw: float, **kw) -> np.ndarray:
    return r.render(np.array([x]), np.array([y]), np.array([yaw]), **kw)[0]


def test_shapes_dtypes_and_determinism(base: CameraRenderer, straight_pose) -> None:
    x, y, yaw = straight_pose
    xs, ys, yaws = np.full(3, x), np.full(3, y), np.full(3, yaw) + np.array([0.0, 0.1, -0.1])
    front = base.render(xs, ys, yaws)
    left = base.render(xs, ys, yaws, camera="LEFT_CAMERA")
    stereo = base.render(xs, ys, yaws, camera="stereo")
    assert front.shape == (3, IMAGE_HEIGHT, IMAGE_WIDTH) and front.dtype == np.uint8
    assert left.shape == (3, 120, 160) and left.dtype == np.uint8
    assert stereo.shape == (3, 120, 160, 2) and stereo.dtype == np.uint8
    assert np.array_equal(front, base.render(xs, ys, yaws))  # deterministic
    assert np.array_equal(front, CameraRenderer(load_track("reinvent_base")).render(xs, ys, yaws))
    out = np.zeros_like(stereo)
    assert base.render(xs, ys, yaws, camera="STEREO_CAMERAS", out=out) is out and np.array_equal(out, stereo)
    assert not np.array_equal(front, left)  # the left camera sits 3 cm to the left
    # stereo channel 0 is the left camera with PIL's rounded luma instead of truncation
    diff = stereo[..., 0].astype(int) - left.astype(int)
    assert diff.min() >= 0 and diff.max() <= 1 and diff.mean() > 0.3
    assert not np.array_equal(stereo[..., 0], stereo[..., 1])
    with pytest.raises(ValueError):
        base.render(xs, ys, yaws, camera="rear")
    assert CameraRig.get("FRONT_FACING_CAMERA").channels == 1 and CameraRig.get("stereo").channels == 2


def test_centre_line_and_borders_on_a_straight(base: CameraRenderer, straight_pose) -> None:
    img = render1(base, *straight_pose).astype(float)
    app = base.appearance
    road, centre, border = app.road.mean, app.centre.mean, app.border.mean
    # dashed centre line: its luma band, in the middle columns of the lower half
    lower = img[60:]
    band = np.abs(lower - centre) < 0.4 * (centre - road)
    rows_with_dash = np.flatnonzero(band.any(axis=1))
    assert len(rows_with_dash) > 15
    cols = np.nonzero(band)[1]
    assert 78.0 <= cols.mean() <= 82.0
    assert cols.min() >= 66 and cols.max() <= 94
    # at the row 1.0 m ahead of the camera the borders (centred 0.381 m either side) show symmetrically
    half = 0.381
    r = int(ground_row(1.0))
    d = 1.0 + CAM_X  # car-frame x of that ground point
    exp_left, _ = project(d, half, 0.0)
    exp_right, _ = project(d, -half, 0.0)
    bright = np.flatnonzero(img[r] > (border + road) / 2 + 0.25 * (border - road))
    left_cols, right_cols = bright[bright < 80], bright[bright > 80]
    assert len(left_cols) >= 2 and len(right_cols) >= 2
    assert abs(left_cols.mean() - exp_left) <= 3.0
    assert abs(right_cols.mean() - exp_right) <= 3.0
    assert abs((80 - left_cols.mean()) - (right_cols.mean() - 80)) <= 3.0


def test_facing_the_outside_border_field_and_wall(base: CameraRenderer, straight_pose) -> None:
    x, y, _ = straight_pose
    track = base.track
    outer_y = float(track.route[0, 5])  # outer border (right of the ccw car) on this straight, ≈ 0.30
    yaw = -math.pi / 2  # turn right, towards the outside of the loop
    img = render1(base, x, y, yaw).astype(float)
    app = appmod.load_appearance("reinvent_base")
    cam_y = y - CAM_X  # the optical centre, looking along -y
    bw = app.border_width
    d_in, d_out = cam_y - outer_y - bw / 2, cam_y - outer_y + bw / 2  # border line extent from the camera
    wall_ymin = app.wall.bbox[1]
    d_wall = cam_y - wall_ymin
    mid = img[:, 40:120].mean(axis=1)
    r_in, r_out, r_wall = ground_row(d_in), ground_row(d_out), ground_row(d_wall)
    assert 95 < r_in < 110 and 78 < r_out < 90 and 36 < r_wall < 48  # sanity of the geometry itself
    border_rows = mid[int(r_out) + 2 : int(r_in) - 1]
    assert len(border_rows) >= 8
    assert np.all(border_rows > app.border.mean - 30)
    field_rows = mid[int(r_wall) + 3 : int(r_out) - 2]
    assert len(field_rows) >= 25
    assert np.all(np.abs(field_rows - app.field.mean) < 15)
    road_rows = mid[int(r_in) + 3 :]
    assert np.all(np.abs(road_rows - app.road.mean) < 15)
    # the 1 m wall is 1.15 m away: it fills everything from its foot up to the top of the image
    wall_lum = appmod.lit_luma(app.wall.rgb, (0.0, 1.0, 0.0))  # the face looking +y, towards the car
    wall_rows = img[: int(r_wall) - 2, 40:120]
    assert np.all(np.abs(wall_rows - wall_lum) <= 2)
    # luma ordering of the json survives the lighting
    assert app.road.mean < app.field.mean < app.centre.mean < app.border.mean


def test_horizon_row_from_pitch() -> None:
    r = CameraRenderer(load_track("Straight_track"))  # no wall: the horizon itself is visible
    assert r.walls.shape[0] == 0
    x, y, yaw = r.start_pose(0.0)
    img = render1(r, x, y, yaw).astype(float)
    sky = r.appearance.sky_luma
    last_sky_row = math.floor(HORIZON - 1.5)  # PIL's filter reaches one output pixel below the centre
    assert last_sky_row == 24
    assert np.all(np.abs(img[: last_sky_row + 1] - sky) <= 1.0)
    first_ground_row = math.ceil(HORIZON + 0.5)  # filter entirely below the horizon
    assert first_ground_row == 27
    ground = img[first_ground_row : first_ground_row + 2]  # far field ground (neutral grey/field here)
    assert np.all(np.abs(ground - sky) > 5)
    # the row across the horizon blends both, about a quarter of sky (triangle filter share above 26.22)
    share = 0.5 * (HORIZON - 25.5) ** 2
    blend = (img[26] - ground[0]).mean()
    assert abs(blend - share * (sky - ground[0]).mean()) <= 2.5
    # many poses on a walled track: nothing of the ground (road, lines, their grain) reaches above the
    # horizon, so another noise seed changes rows 27+ but not rows 0-24 (walls and sky only)
    track = load_track("reInvent2019_track")
    d = np.linspace(0, track.length, 24, endpoint=False)
    xy, yaws = track.forward.pose_at(d)
    a = CameraRenderer(track, seed=0).render(xy[:, 0], xy[:, 1], yaws)
    b = CameraRenderer(track, seed=5).render(xy[:, 0], xy[:, 1], yaws)
    assert np.array_equal(a[:, : last_sky_row + 1], b[:, : last_sky_row + 1])
    assert (a[:, 60:] != b[:, 60:]).mean() > 0.5


def test_box_columns_and_exclusion(base: CameraRenderer, straight_pose) -> None:
    x, y, yaw = straight_pose
    front = 1.0  # camera → front face [m]
    width, length = 0.2, 0.2
    box = np.array([[x + CAM_X + front + length / 2, y, yaw, length, width, 0.5, 250.0]])
    img = render1(base, x, y, yaw, boxes=box).astype(float)
    plain = render1(base, x, y, yaw).astype(float)
    r = int(HORIZON)  # rays there are nearly level: they meet the front face at camera height
    exp_l, _ = project(CAM_X + front, width / 2, CAM_H)
    exp_r, _ = project(CAM_X + front, -width / 2, CAM_H)
    face = 250.0 * appmod.luma_gain((-1.0, 0.0, 0.0))
    hit = np.flatnonzero(np.abs(img[r] - face) < np.abs(img[r] - plain[r]) / 2 + 1)
    hit = hit[np.abs(img[r, hit] - plain[r, hit]) > 20]
    assert len(hit) > 10
    assert abs(hit.min() - math.floor(exp_l)) <= 2
    assert abs(hit.max() - (math.ceil(exp_r) - 1)) <= 2
    # a long box beside the car, reaching from behind the camera to ahead of it: seen at the right edge only
    side = np.array([[x, y - 0.2, yaw, 0.8, 0.1, 0.3, 250.0]])
    changed = render1(base, x, y, yaw, boxes=side).astype(int) != plain.astype(int)
    assert changed[:, 140:].sum() > 50 and not changed[:, :80].any()
    # a car does not see its own box; other cars do
    both = base.render(np.full(2, x), np.full(2, y), np.full(2, yaw), boxes=box, exclude=np.array([0, -1]))
    assert np.array_equal(both[0], plain.astype(np.uint8))
    assert np.array_equal(both[1], img.astype(np.uint8))


def test_stereo_disparity(base: CameraRenderer, straight_pose) -> None:
    x, y, yaw = straight_pose
    z_front, lat = 0.5, 0.04  # front face 0.5 m ahead of the cameras, slightly left of the axis
    box = np.array([[x + CAM_X + z_front + 0.05, y + lat, yaw, 0.1, 0.08, 0.5, 250.0]])
    img = render1(base, x, y, yaw, camera="stereo", boxes=box).astype(float)
    plain = render1(base, x, y, yaw, camera="stereo").astype(float)
    r = int(HORIZON)
    centres = []
    for ch in range(2):
        hit = np.flatnonzero(np.abs(img[r, :, ch] - plain[r, :, ch]) > 20)
        assert len(hit) > 5
        centres.append((hit.min() + hit.max()) / 2)
    left_c, right_c = centres
    assert left_c > right_c  # the left camera sees the object further right
    expected = F * 0.06 / (z_front * math.cos(PITCH))  # f·B/Z with Z the depth along the optical axis
    assert abs((left_c - right_c) - expected) <= 2.0
    assert abs(expected - F * 0.06 / z_front) < 1.0


def test_texture_noise_statistics(base: CameraRenderer, straight_pose) -> None:
    img = render1(base, *straight_pose).astype(float)
    patch = img[92:120, 8:62]  # road left of the centre line, 0.15-0.25 m ahead
    road = base.appearance.road.mean
    assert 3.0 <= patch.std() <= 12.0
    assert abs(patch.mean() - road) <= 15.0
    # a different seed changes the grain, not the scene
    other = CameraRenderer(base.track, seed=1)
    img2 = render1(other, *straight_pose).astype(float)
    assert not np.array_equal(img, img2)
    assert abs(img2[92:120, 8:62].mean() - road) <= 15.0 and 3.0 <= img2[92:120, 8:62].std() <= 12.0


def test_antialiasing_matches_supersampled_reference(base: CameraRenderer) -> None:
    for at in (0.0, 0.45):
        x, y, yaw = base.start_pose(at)
        fast = render1(base, x, y, yaw).astype(float)
        ref = reference_render(base, x, y, yaw, ss=2).astype(float)
        assert np.abs(fast - ref).mean() < 4.0
        assert np.abs(fast[27:60] - ref[27:60]).mean() < 6.0  # the far field, where aliasing would show


def test_no_shimmering_when_moving_forward(base: CameraRenderer, straight_pose) -> None:
    x, y, yaw = straight_pose
    steps = np.arange(12) * 0.01  # 1 cm per frame along the straight
    frames = base.render(x + steps * math.cos(yaw), y + steps * math.sin(yaw), np.full(12, yaw)).astype(float)
    far = frames[:, 27:45]  # beyond ~1.2 m: dashes and borders are a few pixels wide or less
    flicker = np.abs(np.diff(far, axis=0)).mean(axis=(1, 2))
    assert flicker.max() < 4.0
    # the far field changes smoothly: no frame jumps much more than the average one
    assert flicker.max() < 2.5 * flicker.mean() + 0.5


def test_unknown_world_falls_back(tmp_path) -> None:
    track = load_track("reinvent_base")
    custom = Track.from_array("my_own_track", np.asarray(track.route))
    r = CameraRenderer(custom)
    assert r.appearance.world == appmod.DEFAULT_WORLD
    r2 = CameraRenderer(track, world="no_such_world")
    assert r2.appearance.world == appmod.DEFAULT_WORLD
    img = render1(r, *r.start_pose(0.2))
    assert img.shape == (120, 160)


def test_save_view_png(tmp_path) -> None:
    out = tmp_path / "view.png"
    save_view_png(load_track("reinvent_base"), 0.3, str(out))
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 600 and height >= 300 and width > height
    stereo = tmp_path / "stereo.png"
    save_view_png(load_track("reinvent_base"), 0.6, str(stereo), camera="stereo", reverse=True)
    assert stereo.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
