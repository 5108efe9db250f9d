"""The reward function's params (contract §2) against hand-computed numbers and real Gazebo traces."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from drlocal import load_track, reward_params
from drlocal.sim.params import compute_geometry, compute_progress
from drlocal.tracks.track import Track

TRACES = Path(__file__).parent / "data" / "reference-traces" / "console-2022-reinvent_base"

ALL_KEYS = {
    "all_wheels_on_track", "x", "y", "heading", "distance_from_center", "is_left_of_center", "is_offtrack",
    "is_crashed", "is_reversed", "progress", "projection_distance", "speed", "steering_angle", "steps",
    "track_length", "track_width", "waypoints", "closest_waypoints", "closest_objects", "objects_location",
    "objects_left_of_center", "objects_speed", "objects_heading", "objects_distance_from_center",
    "objects_distance", "object_in_camera", "sim_time",
}


def base_for_front(front: np.ndarray, heading_deg: float) -> tuple[float, float]:
    """base_link position whose front point (0.14 m ahead) is `front`."""
    h = np.radians(heading_deg)
    return float(front[0] - 0.14 * np.cos(h)), float(front[1] - 0.14 * np.sin(h))


def vertex(k: int, r: float = 2.0) -> np.ndarray:
    a = np.radians(5.0 * k)
    return np.array([r * np.cos(a), r * np.sin(a)])


def test_all_keys_and_time_trial_defaults(circle: Track) -> None:
    p = reward_params(circle, 2.0, -0.14, 90.0)
    assert set(p) == ALL_KEYS
    assert p["closest_objects"] == [0, 0] and p["objects_location"] == [] and p["object_in_camera"] is False
    assert p["is_crashed"] is False and p["is_reversed"] is False
    assert isinstance(p["steps"], float) and p["steps"] == 2.0
    assert p["waypoints"][0] == p["waypoints"][-1]  # loops include the closing point
    assert len(p["waypoints"]) == 73


def test_front_point_and_heading(circle: Track) -> None:
    p = reward_params(circle, 1.0, 2.0, 30.0)
    assert p["x"] == pytest.approx(1.0 + 0.14 * np.cos(np.radians(30)))
    assert p["y"] == pytest.approx(2.0 + 0.14 * np.sin(np.radians(30)))
    assert p["heading"] == pytest.approx(30.0)
    assert reward_params(circle, 1.0, 2.0, -180.0)["heading"] == pytest.approx(180.0)  # range (-180, 180]
    assert reward_params(circle, 1.0, 2.0, 270.0)["heading"] == pytest.approx(-90.0)


@pytest.mark.parametrize("k", [0, 1, 9, 18, 35, 71])
def test_circle_progress_and_waypoints_at_vertices(circle: Track, k: int) -> None:
    heading = 5.0 * k + 90.0 + 2.5  # chord direction at vertex k
    x, y = base_for_front(vertex(k), heading)
    expected = 100.0 * k / 72
    # prev_progress just behind, as in a running episode (beyond 50 % the wrap rule needs it)
    p = reward_params(circle, x, y, heading, prev_progress=max(expected - 1.0, 0.0))
    assert p["progress"] == pytest.approx(expected, abs=1e-9)
    assert p["distance_from_center"] == pytest.approx(0.0, abs=1e-12)
    assert p["closest_waypoints"] == [k, k + 1]
    # nearest inner point: the inner vertex, 0.3 m radially in. Nearest outer point: the foot on an
    # outer edge, d = 0.3 cos(2.5 deg) away along the edge normal, 2.5 deg off radial. Width is
    # the distance between those two points (law of cosines).
    a = np.radians(2.5)
    d = 0.3 * np.cos(a)
    assert p["track_width"] == pytest.approx(np.sqrt(0.3**2 + d**2 + 2 * 0.3 * d * np.cos(a)), abs=1e-9)
    assert p["projection_distance"] == pytest.approx(k / 72 * circle.length)


def test_circle_distance_side_and_wheels(circle: Track) -> None:
    k, heading = 9, 5.0 * 9 + 90.0
    outward = reward_params(circle, *base_for_front(vertex(k, 2.1), heading), heading)
    inward = reward_params(circle, *base_for_front(vertex(k, 1.9), heading), heading)
    assert outward["distance_from_center"] == pytest.approx(0.1)
    assert outward["is_left_of_center"] is False  # CCW: outside of the circle is the right side
    assert inward["distance_from_center"] == pytest.approx(0.1 * np.cos(np.radians(2.5)))  # to the edge
    assert inward["is_left_of_center"] is True
    assert outward["all_wheels_on_track"] and not outward["is_offtrack"]
    # Car centre 0.25 m outside centre line: outer wheels (0.08 m further out) cross the 0.3 m border.
    edge = reward_params(circle, *vertex(k, 2.25), heading)
    assert edge["all_wheels_on_track"] is False and edge["is_offtrack"] is False
    # Car centre 0.5 m out: every wheel centre is outside the road.
    off = reward_params(circle, *vertex(k, 2.5), heading)
    assert off["all_wheels_on_track"] is False and off["is_offtrack"] is True


def test_circle_reversed_direction(circle: Track) -> None:
    k = 18
    heading = 5.0 * k - 90.0 - 2.5  # driving clockwise
    p = reward_params(circle, *base_for_front(vertex(k), heading), heading, reverse=True, prev_progress=74.0)
    assert p["is_reversed"] is True
    assert p["progress"] == pytest.approx(100.0 * (72 - k) / 72)
    assert p["closest_waypoints"] == [72 - k, 72 - k + 1]
    assert p["waypoints"][1] == pytest.approx(tuple(vertex(71)))
    outward = reward_params(circle, *base_for_front(vertex(k, 2.1), heading), heading, reverse=True)
    assert outward["is_left_of_center"] is True  # CW: outside of the circle is the left side


def test_rectangle_closest_waypoints_and_duplicates() -> None:
    from conftest import rectangle_route

    plain = Track.from_array("rect", rectangle_route())
    p = reward_params(plain, 1.25 - 0.14, 0.0, 0.0)
    assert p["progress"] == pytest.approx(100 * 1.25 / 12)
    assert p["closest_waypoints"] == [2, 3]
    assert p["track_width"] == pytest.approx(0.6)
    # A duplicated waypoint (as in 59 official routes) shifts the later indices by one, and
    # bisect-right on equal ndists makes `prev` the second copy.
    dup = Track.from_array("rect_dup", rectangle_route(duplicate_at=2))
    assert dup.length == pytest.approx(12.0)
    assert reward_params(dup, 1.25 - 0.14, 0.0, 0.0)["closest_waypoints"] == [3, 4]
    assert reward_params(dup, 0.75 - 0.14, 0.0, 0.0)["closest_waypoints"] == [1, 2]
    assert reward_params(dup, 1.0 - 0.14, 0.0, 0.0)["closest_waypoints"] == [3, 4]  # on the duplicate


def test_track_width_varies(rectangle: Track) -> None:
    # At a corner the nearest inner point is the inner corner (3.7, 0.3); the outer border is
    # 0.3 m away on two edges and the first in ring order wins: (4, -0.3). Width = |(0.3, 0.6)|.
    side = reward_params(rectangle, 2.0 - 0.14, 0.0, 0.0)["track_width"]
    corner = reward_params(rectangle, 4.0 - 0.14, 0.0, 0.0)["track_width"]
    assert side == pytest.approx(0.6)
    assert corner == pytest.approx(np.hypot(0.3, 0.6))


def test_progress_formula_wrap_rules() -> None:
    cp = lambda nd, s, prev: float(compute_progress(np.array([nd]), s, prev)[0])  # noqa: E731
    assert cp(0.25, 0.0, 0.0) == pytest.approx(25.0)
    assert cp(0.25, 0.5, 70.0) == pytest.approx(75.0)  # behind the start: +100
    assert cp(0.51, 0.5, 99.0) == pytest.approx(100.0)  # crossed the line forward: 101 capped to 100
    assert cp(0.98, 0.0, 1.0) == pytest.approx(-2.0)  # crossed the line backwards
    # exactly at the start: p <= 0 gives 100, then 100 > prev + 50 takes it back to 0
    assert cp(0.5, 0.5, 0.0) == pytest.approx(0.0)
    assert cp(0.5, 0.5, 99.5) == pytest.approx(100.0)


def test_reinvent_base_start_pose() -> None:
    t = load_track("reinvent_base")
    assert t.length == pytest.approx(17.709, abs=5e-4)
    xy, yaw = t.forward.pose_at(np.array([0.0]))
    p = reward_params(t, xy[0, 0], xy[0, 1], float(np.degrees(yaw[0])))
    # contract §2: the car point is 0.14 m past the start line: 0.14 / 17.709 = 0.79 %
    assert p["progress"] == pytest.approx(0.7905, abs=1e-4)
    # and equals the real Gazebo trace's second row (first RUN step) to 1e-6 m
    assert p["x"] == pytest.approx(3.1997327938476117, abs=1e-6)
    assert p["y"] == pytest.approx(0.6831032114197831, abs=1e-6)


def _read_trace(path: Path) -> dict[str, np.ndarray]:
    rows = list(csv.DictReader(path.open()))
    cols = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    return cols


def test_params_match_real_gazebo_traces() -> None:
    """Recompute progress, closest_waypoint and all_wheels_on_track from logged poses of AWS console runs."""
    files = sorted(TRACES.glob("*-iteration.csv"))
    assert files, f"reference traces missing in {TRACES}"
    t = load_track("reinvent_base")
    n_rows = 0
    for f in files:
        c = _read_trace(f)
        X, Y = c["X"].astype(float), c["Y"].astype(float)
        yaw = np.radians(c["yaw"].astype(float))
        ep = c["episode"].astype(int)
        logged = c["progress"].astype(float)
        prev = np.zeros_like(logged)
        same = ep[1:] == ep[:-1]
        prev[1:] = np.where(same, np.where(logged[:-1] == 100.0, 0.0, logged[:-1]), 0.0)
        g = compute_geometry(t, False, X - 0.14 * np.cos(yaw), Y - 0.14 * np.sin(yaw), yaw, (ep * 0.05) % 1.0, prev)
        assert np.abs(g.progress - logged).max() < 1e-6, f.name
        assert np.array_equal(g.closest_waypoint, c["closest_waypoint"].astype(int)), f.name
        on = c["all_wheels_on_track"] == "True"
        assert (g.all_wheels_on_track != on).mean() < 0.01, f.name
        off_rows = c["episode_status"] == "off_track"
        assert g.is_offtrack[off_rows].all(), f.name
        n_rows += len(X)
    assert n_rows > 1000
