"""The cameras for people (`drlocal.view.cameras`): geometry against the simapp's camera poses, colours,
occlusion, the damped follow, determinism.

Expected pixels come from an independent pinhole model built the way Gazebo places the simapp's cameras
(pose = position + roll/pitch/yaw, looking along the camera's +x with +y to the image left and +z up;
`follow_car_camera.py`, `top_camera.py`, `models/*camera/model.sdf`), never from the renderer's tables.
Continuous image coordinates: pixel (i, j) covers [i, i+1) × [j, j+1), row 0 at the top.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from drlocal.tracks import load_track
from drlocal.tracks.track import Track
from drlocal.view.cameras import FollowCam, PeopleCameras, body_prims, top_hfov
from drlocal.view.scene import CAR_COLORS, Scene

W, H = 640, 480
# the simapp's numbers (follow_car_camera.py, top_camera.py, camera model.sdf, the car's camera in the URDF)
FOLLOW_PITCH, FOLLOW_DIST, FOLLOW_Z, HFOV = 0.314, 1.5, 1.0, 1.13
TOP_Z, TOP_PAD = 6.0, 0.25
CAR_CAM_X, CAR_CAM_Z, CAR_CAM_PITCH = 0.14529, 0.13033, 0.2618
# the worlds' lights: ambient 0.5 and a sun of diffuse (1, 1, 0.8) along (-0.5, 0.1, -0.9)
AMBIENT, SUN_DIFFUSE = 0.5, np.array([1.0, 1.0, 0.8])
SUN = np.array([-0.5, 0.1, -0.9]) / np.linalg.norm([-0.5, 0.1, -0.9])
# reinvent_base's lower straight runs along +x at y = 0.683 (inner border y = 1.064 on the left, outer 0.302);
# its field wall stands on the rectangle (-0.587, -0.613) - (8.575, 5.795), 1 m tall
STRAIGHT_Y = 0.6835
WALL_X1 = 8.575


def rot(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Rz(yaw) Ry(pitch) Rx(roll): the rotation of `euler_to_quaternion(roll, pitch, yaw)`."""
    cr, sr, cp, sp, cy, sy = (f(a) for a in (roll, pitch, yaw) for f in (math.cos, math.sin))
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    return rz @ ry @ rx


class GazeboCam:
    """A Gazebo camera sensor at `pos` with orientation (roll, pitch, yaw), W×H, horizontal fov `hfov`."""

    def __init__(self, pos, roll: float, pitch: float, yaw: float, hfov: float) -> None:
        self.pos = np.asarray(pos, dtype=float)
        self.r = rot(roll, pitch, yaw)
        self.f = (W / 2) / math.tan(hfov / 2)

    def project(self, x: float, y: float, z: float) -> tuple[float, float]:
        d = np.array([x, y, z]) - self.pos
        depth = d @ self.r[:, 0]
        return W / 2 - self.f * (d @ self.r[:, 1]) / depth, H / 2 - self.f * (d @ self.r[:, 2]) / depth


def follow_gazebo(x: float, y: float, yaw: float) -> GazeboCam:
    """The follow camera after `_reset` for a car at (x, y, yaw): 1.5 m back along the pitched axis, z = 1."""
    back = rot(0.0, FOLLOW_PITCH, yaw) @ np.array([-FOLLOW_DIST, 0.0, 0.0])
    return GazeboCam((x + back[0], y + back[1], FOLLOW_Z), 0.0, FOLLOW_PITCH, yaw, HFOV)


def incar_gazebo(x: float, y: float, yaw: float) -> GazeboCam:
    off = rot(0.0, 0.0, yaw) @ np.array([CAR_CAM_X, 0.0, CAR_CAM_Z])
    return GazeboCam((x + off[0], y + off[1], off[2]), 0.0, CAR_CAM_PITCH, yaw, HFOV)


def top_gazebo(track: Track) -> GazeboCam:
    outer = track.route[:, 4:6]
    (x0, y0), (x1, y1) = outer.min(axis=0), outer.max(axis=0)
    wx, wy = (x1 - x0) * (1 + TOP_PAD), (y1 - y0) * (1 + TOP_PAD)
    if wx >= wy:
        hfov = 2 * math.atan(0.5 * wx / TOP_Z)
    else:
        hfov = 2 * math.atan(W / H * math.tan(math.atan(0.5 * wy / TOP_Z)))
    return GazeboCam(((x0 + x1) / 2, (y0 + y1) / 2, TOP_Z), 1.57079, 1.57079, 3.14159, hfov)


def lit(albedo, normal) -> np.ndarray:
    n = np.asarray(normal, dtype=float)
    return np.clip(np.asarray(albedo, float) * (AMBIENT + SUN_DIFFUSE * max(0.0, -(SUN @ n))), 0, 255)


def empty_scene() -> Scene:
    return Scene(np.zeros((0, 2)), np.zeros(0), (), np.zeros((0, 3), np.uint8))


def scene(*bodies: tuple[float, float, float, str, tuple[int, int, int]], ego: int = 0) -> Scene:
    xy = np.array([b[:2] for b in bodies], float)
    return Scene(xy, np.array([b[2] for b in bodies], float), tuple(b[3] for b in bodies),
                 np.array([b[4] for b in bodies], np.uint8), ego)  # fmt: skip


def patch(img: np.ndarray, col: float, row: float, r: int = 2) -> np.ndarray:
    """Median colour of the (2r+1)² pixels around continuous (col, row)."""
    c, w = int(col), int(row)
    return np.median(img[w - r : w + r + 1, c - r : c + r + 1].reshape(-1, 3), axis=0)


def interior(mask: np.ndarray) -> np.ndarray:
    """mask without its boundary pixels (4-neighbourhood)."""
    m = mask.copy()
    m[1:] &= mask[:-1]
    m[:-1] &= mask[1:]
    m[:, 1:] &= mask[:, :-1]
    m[:, :-1] &= mask[:, 1:]
    return m


@pytest.fixture(scope="module")
def base() -> PeopleCameras:
    return PeopleCameras(load_track("reinvent_base"))


RED = CAR_COLORS["Red"]
BLUE = CAR_COLORS["Blue"]


# ----- top camera -----


def test_top_pixel_is_the_simapp_top_camera(base):
    ref = top_gazebo(base.track)
    for x, y, z in [(0.0, 0.0, 0.0), (4.0, STRAIGHT_Y, 0.0), (8.0, 5.0, 0.2), (1.5, 4.0, 1.0)]:
        assert base.top_pixel(x, y, z) == pytest.approx(ref.project(x, y, z), abs=0.05)
    # the outer border's bounding box plus 25 % fills the frame's width (reinvent_base is wider than tall)
    outer = base.track.route[:, 4:6]
    c0, _ = base.top_pixel(outer[:, 0].min(), outer[:, 1].mean())
    c1, _ = base.top_pixel(outer[:, 0].max(), outer[:, 1].mean())
    assert c1 - c0 == pytest.approx(W / (1 + TOP_PAD), abs=1e-6)


def test_top_hfov_fits_wide_and_tall_tracks(rectangle):
    tall = Track.from_array("tall", rectangle.route[:, [1, 0, 3, 2, 5, 4]])  # the 4 × 2 m loop turned upright
    for track, axis in ((rectangle, 0), (tall, 1)):
        f = (W / 2) / math.tan(top_hfov(track) / 2)
        span = np.ptp(track.route[:, 4 + axis]) * (1 + TOP_PAD)
        frame = (W, H)[axis]
        assert span * f / TOP_Z == pytest.approx(frame, rel=1e-9)


def test_top_view_shows_the_car_at_its_pixel(base):
    x, y, yaw = 5.0, STRAIGHT_Y, 0.3
    img = base.top(scene((x, y, yaw, "car", RED)))
    bg, _ = base.top_background()
    # at base_link the top of the car is the upper shell (0.175 m up), in the car colour lit from straight above
    col, row = base.top_pixel(x, y, 0.175)
    assert np.abs(img[int(row), int(col)].astype(float) - lit(RED, (0, 0, 1))).max() <= 2
    # the car covers roughly its footprint (0.32 × 0.19 m at this scale) and nothing far from it changed
    changed = np.any(img != bg, axis=2)
    px_per_m = abs(base.top_pixel(x + 1.0, y)[0] - base.top_pixel(x, y)[0])
    assert 0.6 < changed.sum() / (0.324 * 0.188 * px_per_m**2) < 1.8
    rows, cols = np.nonzero(changed)
    assert np.hypot(cols - col, rows - row).max() < 0.25 * px_per_m
    # away from it, the ground is the road (on the straight) and the field (beyond the inner border)
    road = patch(img, *base.top_pixel(x + 0.8, y + 0.2))
    field = patch(img, *base.top_pixel(x + 0.8, 1.5))
    assert np.abs(road - base.colours.road).max() < 30
    assert np.abs(field - base.colours.field).max() < 30


def test_top_view_is_cheap_to_redraw_and_does_not_touch_the_background(base):
    bg, depth = base.top_background()
    before = bg.copy()
    base.top(scene((5.0, STRAIGHT_Y, 0.0, "car", RED), (6.0, STRAIGHT_Y, 0.0, "box", (235, 235, 235))))
    assert np.array_equal(bg, before)
    assert not bg.flags.writeable and not depth.flags.writeable


# ----- follow camera -----


def test_follow_camera_sits_where_the_simapp_puts_it(base):
    x, y, yaw = 4.0, STRAIGHT_Y, 0.2
    ref = follow_gazebo(x, y, yaw)
    cam = FollowCam.rigid(x, y, yaw)
    assert cam[:2] == pytest.approx(tuple(ref.pos[:2]), abs=1e-12)
    for p in [(x, y, 0.0), (x + 2.0, y + 0.5, 0.0), (x + 1.0, y - 0.3, 0.2)]:
        assert base.follow_pixel(cam, *p) == pytest.approx(ref.project(*p), abs=1e-6)


def test_follow_view_ego_is_centred_and_its_bottom_edge_on_the_expected_row(base):
    x, y, yaw = 4.0, STRAIGHT_Y, 0.0
    img = base.follow(scene((x, y, yaw, "car", RED)))  # cam=None: rigidly behind the ego
    plain = base.follow(empty_scene(), FollowCam.rigid(x, y, yaw))
    mask = np.any(img != plain, axis=2)
    rows, cols = np.nonzero(mask)
    assert (cols.min() + cols.max() + 1) / 2 == pytest.approx(W / 2, abs=1.0)
    # the lowest point of the car on screen: the rear wheels' bottom rear edge (wheel centre 0.0817 m behind
    # base_link, radius 0.036 m), on the ground
    _, bottom = follow_gazebo(x, y, yaw).project(x - 0.0817 - 0.036, y, 0.0)
    assert bottom == pytest.approx(417.5, abs=1.0)  # 1.427 m back, 1 m up, 18° down, f = 503.3 px
    assert rows.max() + 1 == pytest.approx(bottom, abs=2.0)
    # middle-bottom of the frame, the shell colour in the middle of it
    assert rows.min() > H / 2
    shell_side = lit(RED, (-1, 0, 0))  # the car's rear faces the camera (outward normal -x)
    assert any(np.abs(img[r, W // 2].astype(float) - shell_side).max() <= 2 for r in range(rows.min(), rows.max()))


def test_follow_view_road_field_and_wall_colours(base):
    x, y, yaw = 4.0, STRAIGHT_Y, 0.0
    img = base.follow(scene((x, y, yaw, "car", RED)))
    ref = follow_gazebo(x, y, yaw)
    colours = base.colours

    def nearest(c):
        d = {k: np.abs(c - getattr(colours, k)).sum() for k in ("road", "field", "centre", "border")}
        return min(d, key=d.get)

    # the centre line ahead (the straight ends at x = 6.1) projects onto road or its dashes, never the field
    for ahead in (1.0, 1.3, 1.6, 1.9, 2.1):
        assert nearest(patch(img, *ref.project(x + ahead, y, 0.0), r=1)) in ("road", "centre")
    # between centre line and border: road; beyond the borders (inner field, outer field before the wall): field
    assert nearest(patch(img, *ref.project(x + 2.0, y + 0.2, 0.0))) == "road"
    assert np.abs(patch(img, *ref.project(x + 2.0, y + 0.2, 0.0)) - colours.road).max() < 30
    for side_y in (1.45, -0.1):
        assert nearest(patch(img, *ref.project(x + 2.0, side_y, 0.0))) == "field"
    # straight ahead, the far wall (x = 8.575) from its foot up to the horizon (its 1 m top is at camera height)
    _, foot = ref.project(WALL_X1, y, 0.0)
    horizon = H / 2 - ref.f * math.tan(FOLLOW_PITCH)
    wall = lit(base.appearance.wall.rgb, (-1, 0, 0))
    for row in np.linspace(horizon + 2, foot - 2, 6):
        assert np.abs(img[int(row), W // 2].astype(float) - wall).max() <= 1.0
    assert np.abs(img[int(foot) + 3, W // 2].astype(float) - wall).max() > 20  # the ground in front of it
    # above the horizon: the world's sky
    assert np.abs(img[int(horizon) - 3, W // 2].astype(float) - colours.sky).max() <= 1.0


def test_follow_view_occludes_the_car_behind(base):
    x, y, yaw = 4.0, STRAIGHT_Y, 0.0
    cam = FollowCam.rigid(x, y, yaw)
    ego = (x, y, yaw, "car", RED)
    ahead = (x + 0.4, y + 0.05, yaw, "car", BLUE)  # partly hidden behind the ego from 1 m up
    plain = base.follow(empty_scene(), cam)
    both = base.follow(scene(ego, ahead), cam)
    both_rev = base.follow(scene(ahead, ego, ego=1), cam)  # drawing order does not matter
    only_ego = base.follow(scene(ego), cam)
    only_ahead = base.follow(scene(ahead), cam)
    m_ego = np.any(only_ego != plain, axis=2)
    m_ahead = np.any(only_ahead != plain, axis=2)
    overlap = interior(m_ego) & interior(m_ahead)
    assert overlap.sum() > 200
    assert np.array_equal(both[overlap], only_ego[overlap])  # the nearer car wins
    behind_only = interior(m_ahead) & ~interior(m_ego) & ~m_ego
    assert behind_only.sum() > 100
    assert np.array_equal(both[behind_only], only_ahead[behind_only])
    assert np.array_equal(both, both_rev)


def test_follow_damping_matches_the_simapp_formula():
    # hand-computed first steps: a 1 m step ahead, then a 90° turn, dt = 0.1 s (lerp fraction 0.1)
    fc = FollowCam()
    back = FOLLOW_DIST * math.cos(FOLLOW_PITCH)
    assert fc.reset(0.0, 0.0, 0.0) == pytest.approx((-back, 0.0, 0.0))
    assert fc.update(1.0, 0.0, 0.0, 0.1) == pytest.approx((-back + 0.1, 0.0, 0.0))
    lyaw = 0.1 * math.pi / 2
    tx, ty = 1.0 - back * math.cos(lyaw), -back * math.sin(lyaw)
    exp = (-back + 0.1 + 0.1 * (tx - (-back + 0.1)), 0.1 * ty, 0.0)  # looks from the previous position at the car
    assert fc.update(1.0, 0.0, math.pi / 2, 0.1) == pytest.approx(exp, abs=1e-12)
    assert fc.last_yaw == pytest.approx(lyaw)


def simapp_follow(poses, dts):
    """The simapp's FollowCarCamera literally (quaternion offset as a rotation matrix), for comparison."""
    x, y, yaw = poses[0]
    off = rot(0.0, FOLLOW_PITCH, yaw) @ np.array([-FOLLOW_DIST, 0.0, 0.0])
    cam = np.array([x + off[0], y + off[1]])
    last_yaw = yaw
    out = []
    for (x, y, yaw), dt in zip(poses[1:], dts, strict=True):
        frac = float(np.clip(dt * 1.0, 0.0, 1.0))
        target = yaw
        while last_yaw > target + np.pi:
            target += 2 * np.pi
        while target > last_yaw + np.pi:
            target -= 2 * np.pi
        car_yaw = last_yaw + frac * (target - last_yaw)
        off = rot(0.0, FOLLOW_PITCH, car_yaw) @ np.array([-FOLLOW_DIST, 0.0, 0.0])
        new = cam + frac * (np.array([x + off[0], y + off[1]]) - cam)
        dx, dy = x - cam[0], y - cam[1]
        look = math.pi if dx == 0 else math.atan2(dy, dx)
        out.append((new[0], new[1], look))
        cam, last_yaw = new, car_yaw
    return out


def test_follow_damping_tracks_the_simapp_on_a_drive():
    rng = np.random.default_rng(3)
    n = 120
    yaw = np.cumsum(rng.normal(0, 0.15, n)) + 3.0  # crosses ±π several times
    step = 2.0 / 15
    xy = np.cumsum(np.stack([np.cos(yaw), np.sin(yaw)], 1) * step, axis=0)
    poses = [(float(a), float(b), float(math.remainder(c, 2 * math.pi))) for (a, b), c in zip(xy, yaw, strict=True)]
    dts = list(rng.uniform(0.03, 0.1, n - 1))
    fc = FollowCam()
    fc.reset(*poses[0])
    got = [fc.update(*p, dt) for p, dt in zip(poses[1:], dts, strict=True)]
    assert np.allclose(got, simapp_follow(poses, dts), atol=1e-9)


def test_follow_camera_settles_rigidly_behind_a_parked_car_and_wraps_the_short_way():
    fc = FollowCam()
    fc.reset(0.0, 0.0, 3.0)
    fc.update(0.0, 0.0, -3.0, 0.5)  # from 3.0 to -3.0 rad: 0.28 rad the short way, not 6 the long way
    assert fc.last_yaw == pytest.approx(3.0 + 0.5 * (2 * math.pi - 6.0))
    for _ in range(400):
        pose = fc.update(2.0, 1.0, 1.0, 1 / 15)
    rigid = FollowCam.rigid(2.0, 1.0, 1.0)
    assert pose[:2] == pytest.approx(rigid[:2], abs=1e-6)
    assert math.remainder(pose[2] - 1.0, 2 * math.pi) == pytest.approx(0.0, abs=1e-6)
    # the simapp's helper answers π when the x difference is exactly zero
    cam_x, _, _ = fc.reset(0.0, 0.0, 0.0)
    assert fc.update(cam_x, 0.5, 0.0, 0.1)[2] == pytest.approx(math.pi)


# ----- in-car camera -----


def test_incar_view_geometry_and_own_car_not_drawn(base):
    x, y, yaw = 4.0, STRAIGHT_Y, 0.0
    ego = (x, y, yaw, "car", RED)
    box = (x + 1.0, y, 0.0, "box", (235, 235, 235))  # the simapp's box: 0.4 m long, so its near face is 0.8 m ahead
    img = base.incar(scene(ego, box))
    plain = base.incar(scene(ego))
    mask = np.any(img != plain, axis=2)
    rows, cols = np.nonzero(mask)
    ref = incar_gazebo(x, y, yaw)
    _, bottom = ref.project(x + 0.8, y, 0.0)
    assert rows.max() + 1 == pytest.approx(bottom, abs=2.0)
    _, top = ref.project(x + 0.8, y, 0.25)
    assert rows.min() == pytest.approx(top, abs=2.0)
    assert (cols.min() + cols.max() + 1) / 2 == pytest.approx(W / 2, abs=1.0)
    near_face = lit((235, 235, 235), (-1, 0, 0))
    assert np.abs(img[int((top + bottom) / 2), W // 2].astype(float) - near_face).max() <= 2
    # the own car is never drawn: no shell colour anywhere, and the ego's index in the scene does not matter
    shell = (plain[..., 0] > 150) & (plain[..., 1] < 90)
    assert not shell.any()
    far = (x - 3.0, y, 0.0, "car", BLUE)  # behind the camera
    assert np.array_equal(base.incar(scene(far, ego, box, ego=1)), img)


# ----- general -----


def test_rendering_is_deterministic(base):
    sc = scene((4.0, STRAIGHT_Y, 0.1, "car", RED), (4.6, STRAIGHT_Y - 0.2, 0.0, "car", BLUE),
               (5.5, STRAIGHT_Y + 0.2, 0.4, "box", (235, 235, 235)))  # fmt: skip
    cam = (2.7, 0.5, 0.15)
    first = (base.follow(sc, cam), base.top(sc), base.incar(sc))
    other = PeopleCameras(load_track("reinvent_base"))
    for again in ((base.follow(sc, cam), base.top(sc), base.incar(sc)), (other.follow(sc, cam), other.top(sc),
                                                                          other.incar(sc))):  # fmt: skip
        for a, b in zip(first, again, strict=True):
            assert a.shape == (H, W, 3) and a.dtype == np.uint8
            assert np.array_equal(a, b)


def test_bad_input_is_refused(base):
    with pytest.raises(ValueError, match="unknown body kind"):
        body_prims(scene((0.0, 0.0, 0.0, "truck", RED)))
    with pytest.raises(ValueError, match="out must be"):
        base.top(scene((4.0, STRAIGHT_Y, 0.0, "car", RED)), out=np.empty((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="finite"):
        base.follow(empty_scene(), (math.nan, 0.0, 0.0))
    # a body with a NaN pose is simply not drawn
    nan = scene((4.0, STRAIGHT_Y, 0.0, "car", RED), (math.nan, 1.0, 0.0, "box", (235, 235, 235)))
    assert np.array_equal(base.follow(nan), base.follow(scene((4.0, STRAIGHT_Y, 0.0, "car", RED))))
