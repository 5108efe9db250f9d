"""Track loading and geometry (contract §12)."""

from __future__ import annotations

import numpy as np
import pytest

from drlocal import UnknownTrackError, load_track, track_names
from drlocal.errors import DrlocalError
from drlocal.tracks.track import Track


def test_all_127_routes_bundled_and_loadable() -> None:
    names = track_names()
    assert len(names) == 127
    for name in names:
        t = load_track(name)
        assert t.route.shape[1] == 6
        assert t.length > 5.0
        assert t.is_loop == (name != "Straight_track")


@pytest.mark.parametrize(
    ("name", "length", "width", "ccw"),
    [
        ("reinvent_base", 17.709, 0.762, True),
        ("reInvent2019_track", 23.12, 1.067, True),
        ("Oval_track", 19.55, 0.71, True),
        ("Spain_track", 60.00, 0.91, False),
        ("Straight_track", 5.71, 0.61, True),
    ],
)
def test_known_lengths_and_widths(name: str, length: float, width: float, ccw: bool) -> None:
    t = load_track(name)
    assert t.length == pytest.approx(length, abs=0.01)
    assert t.width == pytest.approx(width, abs=0.01)
    assert t.forward.is_ccw is ccw
    if t.is_loop:
        assert t.reverse.is_ccw is (not ccw)


def test_duplicate_waypoints_are_kept() -> None:
    # contract §12: reInvent2019_track repeats waypoint 38 at 39; console indexing keeps both.
    t = load_track("reInvent2019_track")
    assert np.array_equal(t.waypoints[38], t.waypoints[39])
    nd = t.forward.waypoint_ndists
    assert nd[38] == nd[39]


def test_unknown_track_lists_closest_names() -> None:
    with pytest.raises(UnknownTrackError) as err:
        load_track("reinvent_bsae")
    msg = str(err.value)
    assert "Unknown track 'reinvent_bsae'" in msg
    assert "reinvent_base" in msg
    assert load_track("REINVENT_BASE").name == "reinvent_base"  # case-insensitive fallback


def test_load_from_npy_path(tmp_path) -> None:
    route = load_track("reinvent_base").route
    path = tmp_path / "my_track.npy"
    np.save(path, route)
    t = load_track(path)
    assert t.name == "my_track"
    assert t.length == pytest.approx(17.709, abs=1e-3)


def test_bad_route_file_names_file(tmp_path) -> None:
    path = tmp_path / "broken.npy"
    np.save(path, np.zeros((10, 4)))
    with pytest.raises(DrlocalError, match=r"broken\.npy.*shape \(10, 4\)"):
        load_track(path)
    with pytest.raises(UnknownTrackError, match="does not exist"):
        load_track(tmp_path / "missing.npy")


def test_circle_geometry(circle: Track) -> None:
    lines = circle.forward
    # 72-gon of radius 2: perimeter = 72 * 2 * 2 sin(pi/72)
    assert lines.length == pytest.approx(72 * 4 * np.sin(np.pi / 72), rel=1e-12)
    assert lines.is_ccw and not circle.reverse.is_ccw
    assert circle.width == pytest.approx(0.6)
    # Road polygon excludes the hole and the outside.
    assert circle.on_track(np.array([[2.0, 0.0], [1.0, 0.0], [2.5, 0.0]])).tolist() == [True, False, False]
    # Lanes sit halfway between centre and borders.
    assert np.allclose(np.linalg.norm(lines.inner_lane[:-1], axis=1), 1.85)
    assert np.allclose(np.linalg.norm(lines.outer_lane[:-1], axis=1), 2.15)


def test_reverse_direction_geometry(circle: Track) -> None:
    f, r = circle.forward, circle.reverse
    assert np.array_equal(r.center, f.center[::-1])
    assert r.length == pytest.approx(f.length)
    # Start pose of the reversed direction points clockwise (heading -90 deg at (2, 0)).
    xy, yaw = r.pose_at(np.array([0.0]))
    assert np.allclose(xy, [[2.0, 0.0]])
    assert np.degrees(yaw[0]) == pytest.approx(-90 - 2.5, abs=1e-9)  # chord to the next vertex, 5 deg on


def test_open_track_is_not_a_loop() -> None:
    t = load_track("Straight_track")
    assert not t.is_loop
    mid = t.waypoints[len(t.waypoints) // 2]
    assert t.on_track(mid[None, :])[0]


def test_projection_of_vertices(rectangle: Track) -> None:
    lines = rectangle.forward
    assert lines.length == pytest.approx(12.0)
    nd = lines.project(np.array([[1.0, 0.0], [4.0, 1.0], [0.0, 1.0]]))
    assert np.allclose(nd, [1 / 12, 5 / 12, 11 / 12])


def test_track_is_immutable() -> None:
    t = load_track("reinvent_base")
    with pytest.raises(ValueError):
        t.route[0, 0] = 1.0
    assert isinstance(t, Track)


def test_numba_queries_match_shapely_on_every_track() -> None:
    """The per-step kernels reproduce GEOS: projection, interpolation, border points, road containment."""
    import shapely

    from drlocal import track_names

    rng = np.random.default_rng(0)
    for name in track_names():
        t = load_track(name)
        lines = t.forward
        lo, hi = t.route[:, 0:2].min(0) - 1.0, t.route[:, 0:2].max(0) + 1.0
        p = rng.uniform(lo, hi, (200, 2))
        ref = shapely.line_locate_point(lines.center_line, shapely.points(p), normalized=True)
        assert np.abs(lines.project(p) - ref).max() < 1e-12, name
        pts = shapely.line_interpolate_point(lines.center_line, ref, normalized=True)
        assert np.abs(lines.interpolate(ref, normalized=True) - shapely.get_coordinates(pts)).max() < 1e-12, name
        inner = lines._line("inner")
        near = shapely.line_interpolate_point(inner, shapely.line_locate_point(inner, shapely.points(p)))
        assert np.abs(lines.nearest_on("inner", p) - shapely.get_coordinates(near)).max() < 1e-12, name
        assert np.array_equal(t.on_track(p), shapely.contains_xy(t.road, p[:, 0], p[:, 1])), name
