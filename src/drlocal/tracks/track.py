"""Track geometry with the exact semantics of the simapp's `track_geom/track_data.py` (contract §12).

A route file is an (M, 6) float array: centre x,y, inner border x,y, outer border x,y, one row
per waypoint in the forward driving direction. Loops repeat the first row at the end and are
treated as rings; `Straight_track` is open. Waypoints are kept raw, duplicate points included,
so reward functions index `params['waypoints']` exactly as on AWS.

Geometry uses shapely, as the simapp does, through shapely 2's vectorised functions so that
N cars are handled in one call. Every query method takes arrays with the car axis first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import shapely
from shapely.geometry import LinearRing, LineString, Polygon

from drlocal.errors import DrlocalError
from drlocal.tracks import _kernels


@dataclass(frozen=True, eq=False)
class TrackLines:
    """The lines of one driving direction: what the simapp's TrackData exposes for that direction.

    Attributes:
        center, inner, outer: centre line and borders, (M, 2) [m], in driving order.
        inner_lane, outer_lane: midpoints of centre and border, (M, 2) [m].
        is_ccw: whether the car drives counter-clockwise in this direction.
        reversed: whether this is the reversed direction of the route file.
    """

    center: np.ndarray
    inner: np.ndarray
    outer: np.ndarray
    is_loop: bool
    is_ccw: bool
    reversed: bool
    _geoms: dict = field(default_factory=dict, repr=False)

    @property
    def inner_lane(self) -> np.ndarray:
        return (self.inner + self.center) / 2

    @property
    def outer_lane(self) -> np.ndarray:
        return (self.outer + self.center) / 2

    def _xy(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        """Contiguous x and y arrays of a line, for the numba kernels."""
        key = "xy:" + which
        if key not in self._geoms:
            coords = np.asarray(getattr(self, which), dtype=np.float64)
            self._geoms[key] = (np.ascontiguousarray(coords[:, 0]), np.ascontiguousarray(coords[:, 1]))
        return self._geoms[key]

    def _line(self, which: str) -> LineString:
        if which not in self._geoms:
            coords = getattr(self, which)
            self._geoms[which] = LinearRing(coords) if self.is_loop else LineString(coords)
        return self._geoms[which]

    @cached_property
    def center_line(self) -> LineString:
        """Centre line as shapely geometry (LinearRing for loops), as in the simapp."""
        return self._line("center")

    @cached_property
    def length(self) -> float:
        """Centre-line length [m] (`track_length`)."""
        return float(self.center_line.length)

    @cached_property
    def waypoint_ndists(self) -> np.ndarray:
        """Normalised projection of each waypoint on the centre line, (M,), last entry 1.0.

        Exactly the simapp's `TrackLine.ndists`; duplicate points share a value, which is why
        `closest_waypoints` skips over them.
        """
        pts = shapely.points(self.center[:-1])
        nd = shapely.line_locate_point(self.center_line, pts, normalized=True)
        return np.append(nd, 1.0)

    @cached_property
    def inner_poly(self) -> Polygon:
        """Area between centre line and inner border (used for objects_left_of_center)."""
        if self.is_loop:
            return Polygon(self.center, [self.inner])
        return Polygon(np.vstack([self.center, self.inner[::-1]]))

    # ----- vectorised queries (car axis first) -----

    def project(self, xy: np.ndarray, *, normalized: bool = True) -> np.ndarray:
        """Projection of points (N, 2) on the centre line: ndist in [0, 1] or metres, (N,).

        Same result as shapely's `line_locate_point` (GEOS), computed by a numba kernel.
        """
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        out = np.empty(xy.shape[0])
        xs, ys = self._xy("center")
        _kernels.project(np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1]), xs, ys, out)
        return out / self.length if normalized else out

    def interpolate(self, dist: np.ndarray, *, normalized: bool = False, line: str = "center") -> np.ndarray:
        """Points at distance(s) `dist` (N,) along `line` (centre-line metres, or [0, 1] if normalized), (N, 2)."""
        xs, ys = self._xy(line)
        d = np.atleast_1d(np.asarray(dist, dtype=np.float64))
        if normalized:
            d = d * (self.length if line == "center" else float(self._line(line).length))
        out = np.empty((d.shape[0], 2))
        _kernels.interpolate(np.ascontiguousarray(d), xs, ys, out)
        return out

    def prev_next(self, ndist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`closest_waypoints` [prev, next] for normalised distances (N,): bisect-right in ndists."""
        nd = self.waypoint_ndists
        nxt = np.searchsorted(nd, np.asarray(ndist), side="right")
        prev = nxt - 1
        prev = np.where(prev == -1, len(nd) - 1, prev)
        nxt = np.where(nxt == len(nd), 0, nxt)
        return prev, nxt

    def nearest_on(self, which: str, xy: np.ndarray) -> np.ndarray:
        """Nearest points on line `which` ('inner', 'outer', …) to points (N, 2); (N, 2) [m].

        shapely's `interpolate(project(p))`, as the simapp computes border points.
        """
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        xs, ys = self._xy(which)
        d = np.empty(xy.shape[0])
        _kernels.project(np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1]), xs, ys, d)
        out = np.empty((xy.shape[0], 2))
        _kernels.interpolate(d, xs, ys, out)
        return out

    def pose_at(self, dist: np.ndarray, line: str = "center") -> tuple[np.ndarray, np.ndarray]:
        """Start/reset poses at centre-line distances (N,) [m] along `line`: (xy (N, 2), yaw (N,) [rad]).

        Heading is the forward difference from the point to the next waypoint of that line,
        as `TrackLine.interpolate_pose(..., FORWARD_DIFFERENCE)` in the simapp.
        """
        dist = np.atleast_1d(np.asarray(dist, dtype=np.float64))
        geom = self.center_line if line == "center" else self._line(line)
        coords = getattr(self, line)
        xy = shapely.get_coordinates(shapely.line_interpolate_point(geom, dist)).reshape(-1, 2)
        if line == "center":
            nd = dist / self.length
            _, nxt = self.prev_next(nd)
        else:
            nd_wp = np.append(
                shapely.line_locate_point(geom, shapely.points(coords[:-1]), normalized=True), 1.0
            )
            nxt = np.searchsorted(nd_wp, dist / geom.length, side="right")
            nxt = np.where(nxt == len(nd_wp), 0, nxt)
        target = coords[nxt]
        yaw = np.arctan2(target[:, 1] - xy[:, 1], target[:, 0] - xy[:, 0])
        return xy, yaw


@dataclass(frozen=True, eq=False)
class Track:
    """One DeepRacer track: the raw route array plus geometry for both driving directions."""

    name: str
    route: np.ndarray  # (M, 6) raw route file, forward direction
    source: str = ""

    @classmethod
    def from_array(cls, name: str, route: np.ndarray, source: str = "") -> Track:
        """Validate an (M, 6) route array and build a Track."""
        route = np.asarray(route, dtype=np.float64)
        where = source or name
        if route.ndim != 2 or route.shape[1] != 6:
            raise DrlocalError(
                f"{where}: route array has shape {route.shape}, expected (N, 6).",
                hint="columns are centre x,y, inner border x,y, outer border x,y, one row per waypoint.",
            )
        if route.shape[0] < 3 or not np.all(np.isfinite(route)):
            raise DrlocalError(
                f"{where}: route needs at least 3 finite waypoints (got {route.shape[0]}).",
                hint="check the file for NaN or missing rows.",
            )
        route.setflags(write=False)
        return cls(name=name, route=route, source=source)

    @cached_property
    def is_loop(self) -> bool:
        """Closed circuit (first row equals last row), as the simapp decides."""
        return bool(np.all(self.route[0] == self.route[-1]))

    @cached_property
    def forward(self) -> TrackLines:
        r = self.route
        ccw = bool(LinearRing(r[:, 0:2]).is_ccw) if self.is_loop else True
        return TrackLines(r[:, 0:2], r[:, 2:4], r[:, 4:6], self.is_loop, ccw, False)

    @cached_property
    def reverse(self) -> TrackLines:
        r = self.route[::-1]
        ccw = (not self.forward.is_ccw) if self.is_loop else False
        return TrackLines(r[:, 0:2], r[:, 2:4], r[:, 4:6], self.is_loop, ccw, True)

    def lines(self, reverse: bool = False) -> TrackLines:
        """Geometry for the forward or reversed driving direction."""
        return self.reverse if reverse else self.forward

    @property
    def length(self) -> float:
        """Centre-line length [m]."""
        return self.forward.length

    @cached_property
    def widths(self) -> np.ndarray:
        """|inner − outer| at each waypoint, (M,) [m]."""
        return np.linalg.norm(self.route[:, 2:4] - self.route[:, 4:6], axis=1)

    @property
    def width(self) -> float:
        """Mean track width [m] (what track tables list)."""
        return float(self.widths.mean())

    @cached_property
    def road(self) -> Polygon:
        """Road polygon: outer border with the inner border as a hole (open tracks: one ring)."""
        r = self.route
        if self.is_loop:
            poly = Polygon(r[:, 4:6], [r[:, 2:4]])
        else:
            poly = Polygon(np.vstack([r[:, 4:6], r[::-1, 2:4]]))
        shapely.prepare(poly)
        return poly

    @cached_property
    def _road_rings(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        ext = np.asarray(self.road.exterior.coords)
        hole = np.asarray(self.road.interiors[0].coords) if self.road.interiors else np.zeros((0, 2))
        c = np.ascontiguousarray
        return c(ext[:, 0]), c(ext[:, 1]), c(hole[:, 0]), c(hole[:, 1])

    def on_track(self, xy: np.ndarray) -> np.ndarray:
        """Whether points (..., 2) lie strictly inside the road polygon, shape (...)."""
        xy = np.asarray(xy, dtype=np.float64)
        flat = xy.reshape(-1, 2)
        out = np.empty(flat.shape[0], dtype=np.bool_)
        _kernels.contains(np.ascontiguousarray(flat[:, 0]), np.ascontiguousarray(flat[:, 1]), *self._road_rings, out)
        return out.reshape(xy.shape[:-1])

    @property
    def waypoints(self) -> np.ndarray:
        """Centre line, (M, 2) [m], forward direction, duplicates kept."""
        return self.route[:, 0:2]

    def __repr__(self) -> str:
        kind = "loop" if self.is_loop else "open"
        return f"Track({self.name!r}, {kind}, length={self.length:.3f} m, width={self.width:.3f} m)"
