"""LIDAR geometry and observation filters (contract §4.5, §5)."""

from __future__ import annotations

import numpy as np
import pytest

from drlocal.env.observations import wall_segments
from drlocal.sensors import lidar
from drlocal.sensors.lidar import Lidar, rectangle_segments
from drlocal.sensors.objects_view import object_boxes


def test_ray_directions_sweep_behind_the_car() -> None:
    deg = np.degrees(lidar.RAY_ANGLES)
    assert deg[0] == pytest.approx(30.0, abs=1e-3)  # front-left
    assert deg[-1] == pytest.approx(330.0, abs=1e-3)  # front-right (−30°)
    assert np.diff(deg) == pytest.approx(np.full(63, 300 / 63), abs=1e-4)
    # the blind cone straight ahead: no ray within ±30° of the heading
    assert np.all(np.abs(((deg + 180) % 360) - 180) >= 30 - 1e-6)


def test_box_at_known_distance_behind() -> None:
    # car at the origin facing +x; a 0.4 x 0.3 box centred 1.0 m behind, its near face at x = -0.8
    box = np.array([[-1.0, 0.0, 0.0, 0.4, 0.3, 0.25]])
    r = Lidar().scan(np.zeros(1), np.zeros(1), np.zeros(1), boxes=box)[0]
    back = np.argmin(np.abs(((lidar.RAY_ANGLES - np.pi) + np.pi) % (2 * np.pi) - np.pi))
    expected = (0.8 + lidar.LASER_OFFSET_X) / abs(np.cos(lidar.RAY_ANGLES[back] - np.pi))
    assert r[back] == pytest.approx(expected, abs=1e-9)
    # rays that miss the box see nothing (no walls): inf
    assert np.isinf(r[0]) and np.isinf(r[-1])
    hits = np.flatnonzero(np.isfinite(r))
    # the box face spans ±0.15 m at 0.829 m: half-angle atan(0.15/0.829) = 10.3°, rays every 4.76°
    assert len(hits) == 4


def test_rotation_and_own_box_exclusion() -> None:
    box = np.array([[0.0, 0.0, 0.0, 0.32, 0.2, 0.2], [0.0, -1.0, 0.0, 0.4, 0.3, 0.25]])
    # car facing +y (yaw 90°): the second box is straight behind it, 1.0 m away, near face at 0.85 m
    r_own = Lidar().scan(np.zeros(1), np.zeros(1), np.array([np.pi / 2]), boxes=box, exclude=np.array([0]))[0]
    assert np.nanmin(r_own) == pytest.approx(0.85 + lidar.LASER_OFFSET_X, abs=0.01)
    # without exclusion the car's own box (half-diagonal 0.19 m) surrounds the laser: every ray hits it
    r_all = Lidar().scan(np.zeros(1), np.zeros(1), np.array([np.pi / 2]), boxes=box)[0]
    assert r_all.max() < 0.25


def test_walls_of_generated_track_and_range_limit() -> None:
    walls = wall_segments("reinvent_base")
    assert walls.shape == (4, 4)
    sensor = Lidar(rectangle_segments([-20, -20, 20, 20]))
    assert np.isinf(sensor.scan(np.zeros(1), np.zeros(1), np.zeros(1))[0]).all()  # 20 m > 12 m range
    sensor = Lidar(rectangle_segments([-2, -2, 2, 2]))
    r = sensor.scan(np.zeros(2), np.zeros(2), np.zeros(2), rng=np.random.default_rng(0))
    straight_back = (2.0 + lidar.LASER_OFFSET_X) / np.abs(np.cos(lidar.RAY_ANGLES[31] - np.pi))
    assert r[:, 31] == pytest.approx(straight_back, abs=0.05)  # σ = 0.01 noise
    assert r[0, 31] != r[1, 31]


def test_filters() -> None:
    ranges = np.full((1, 64), np.inf)
    ranges[0, 0:8] = 0.3  # sector 0: close
    ranges[0, 8:16] = 0.7  # sector 1: within 2 m
    ranges[0, 16] = 0.1  # sector 2: one very close ray
    flat = lidar.lidar_obs(ranges)
    assert flat.dtype == np.float32 and flat[0, 0] == pytest.approx(0.3)
    assert flat[0, 20] == 1.0 and flat[0, 16] == 0.15
    s = lidar.sector_lidar_obs(ranges)
    assert s.tolist() == [[1, 0, 1, 0, 0, 0, 0, 0]]
    d = lidar.discretized_sector_lidar_obs(ranges, 8, 8, 2.0).reshape(8, 8)
    # bins of 0.25 m: 0.3 -> bin 1, 0.7 -> bin 2, 0.1 -> bin 0, nothing -> all zeros
    assert d[0].tolist() == [0, 1, 0, 0, 0, 0, 0, 0]
    assert d[1].tolist() == [0, 0, 1, 0, 0, 0, 0, 0]
    assert d[2].tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    assert d[3:].sum() == 0


def _back_ray() -> int:
    return int(np.argmin(np.abs(((lidar.RAY_ANGLES - np.pi) + np.pi) % (2 * np.pi) - np.pi)))


def test_per_car_object_boxes_behind() -> None:
    # car 0 has a 0.4 x 0.3 x 0.25 obstacle box 1.0 m behind (near face at x = -0.8), car 1 an empty slot
    xy = np.array([[[-1.0, 0.0]], [[np.nan, np.nan]]])
    boxes = object_boxes(xy, np.zeros((2, 1)), ["box_obstacle"])
    r = Lidar().scan(np.zeros(2), np.zeros(2), np.zeros(2), boxes=boxes)
    back = _back_ray()
    expected = (0.8 + lidar.LASER_OFFSET_X) / abs(np.cos(lidar.RAY_ANGLES[back] - np.pi))
    assert r[0, back] == pytest.approx(expected, abs=0.01)
    assert np.isfinite(r[0]).sum() == 4  # the same 4 rays as the plain (K, 6) box
    assert np.isinf(r[1]).all()
    # the same box as a plain shared row gives the same ranges
    plain = Lidar().scan(np.zeros(1), np.zeros(1), np.zeros(1), boxes=np.array([[-1.0, 0.0, 0.0, 0.4, 0.3, 0.25]]))
    assert np.array_equal(plain[0], r[0])


def test_only_parts_across_the_laser_plane_are_hit() -> None:
    # a bot car 0.8 m behind, facing the same way: of its 7 parts only the camera hump (0.175-0.211 m)
    # holds the laser plane (0.185 m); its front face is 0.8 - 0.16 m behind base_link
    car = object_boxes(np.array([[[-0.8, 0.0]]]), np.zeros((1, 1)), ["bot_car"])
    spans = car[0, :, 11], car[0, :, 11] + car[0, :, 5]
    crossing = (spans[0] <= lidar.LASER_HEIGHT) & (spans[1] >= lidar.LASER_HEIGHT)
    assert crossing.tolist() == [False] * 6 + [True]
    r = Lidar().scan(np.zeros(1), np.zeros(1), np.zeros(1), boxes=car)[0]
    back = _back_ray()
    expected = (0.8 - 0.16 + lidar.LASER_OFFSET_X) / abs(np.cos(lidar.RAY_ANGLES[back] - np.pi))
    assert r[back] == pytest.approx(expected, abs=0.01)
    # its wheels alone (below the laser plane) are not hit, nor is a box floating above the plane
    wheels = car[:, :4]
    assert np.isinf(Lidar().scan(np.zeros(1), np.zeros(1), np.zeros(1), boxes=wheels)).all()
    high = np.array([[-1.0, 0.0, 0.0, 0.4, 0.3, 0.2, 0, 0, 0, 0, 0, 0.19]])  # kernel layout, z0 0.19 m
    assert np.isinf(Lidar().scan(np.zeros(1), np.zeros(1), np.zeros(1), boxes=high)).all()
    low = np.array([[-1.0, 0.0, 0.0, 0.4, 0.3, 0.1]])  # a plain 0.1 m box: under the plane
    assert np.isinf(Lidar().scan(np.zeros(1), np.zeros(1), np.zeros(1), boxes=low)).all()
    # NaN rows are ignored
    nan = np.array([[np.nan, 0.0, 0.0, 0.4, 0.3, 0.25], [-1.0, 0.0, 0.0, 0.4, 0.3, 0.25]])
    assert np.isfinite(Lidar().scan(np.zeros(1), np.zeros(1), np.zeros(1), boxes=nan)[0, back])
