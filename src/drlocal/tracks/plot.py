"""Drawing tracks with matplotlib (top-down maps for `drlocal tracks show` and other plots)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from drlocal.tracks.track import Track


def draw_track(ax: Axes, track: Track, *, reverse: bool = False, label_every: int = 0) -> None:
    """Draw road, borders, dashed centre line, start line and driving direction on `ax` (metres)."""
    lines = track.lines(reverse)
    road = track.road
    ext = np.asarray(road.exterior.coords)
    ax.fill(ext[:, 0], ext[:, 1], color="#5a5a5a", zorder=0)
    for hole in road.interiors:
        h = np.asarray(hole.coords)
        ax.fill(h[:, 0], h[:, 1], color="white", zorder=1)
    ax.plot(lines.inner[:, 0], lines.inner[:, 1], color="white", lw=1.2, zorder=2)
    ax.plot(lines.outer[:, 0], lines.outer[:, 1], color="white", lw=1.2, zorder=2)
    ax.plot(lines.center[:, 0], lines.center[:, 1], color="#e18f00", lw=0.8, ls=(0, (4, 4)), zorder=2)
    # start line across the road at waypoint 0, and an arrow for the driving direction
    ax.plot([lines.inner[0, 0], lines.outer[0, 0]], [lines.inner[0, 1], lines.outer[0, 1]], color="red", lw=2, zorder=3)
    c0, c1 = lines.center[0], lines.center[2]
    ax.annotate("", xy=c1, xytext=c0, arrowprops={"arrowstyle": "->", "color": "red", "lw": 2}, zorder=4)
    if label_every:
        for i in range(0, len(lines.center) - (1 if track.is_loop else 0), label_every):
            ax.text(*lines.center[i], str(i), fontsize=6, color="black", ha="center", va="center", zorder=5)
    ax.set_aspect("equal")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")


def save_track_png(track: Track, out: str, *, reverse: bool = False) -> None:
    """Write a top-down map of `track` with waypoint indices every 10 points."""
    fig, ax = plt.subplots(figsize=(9, 7), dpi=110)
    draw_track(ax, track, reverse=reverse, label_every=10)
    direction = "counter-clockwise" if track.lines(reverse).is_ccw else "clockwise"
    ax.set_title(
        f"{track.name}: {track.length:.2f} m, width {track.width:.3f} m, {len(track.waypoints)} waypoints, "
        f"{direction}{', reversed' if reverse else ''}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def draw_objects(ax: Axes, xy: np.ndarray, yaw: np.ndarray, kinds: Sequence[str]) -> None:
    """Draw the footprints of obstacles and other cars on a top-down map (metres).

    xy (K, 2) base positions [m], yaw (K,) [rad], kinds: names from `objects_view.KINDS`. Boxes get the
    simapp's 0.5 × 0.4 m collision footprint in brown, cars their 0.32352 × 0.1961 m one in dark grey with
    a tick towards the front. Objects with a NaN position are left out.
    """
    from drlocal.sensors.objects_view import BOX_FOOTPRINT, CAR_FOOTPRINT, is_car

    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    yaw = np.asarray(yaw, dtype=np.float64).reshape(-1)
    corners = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1], [1, 1]], dtype=np.float64) / 2
    for (x, y), a, kind in zip(xy, yaw, kinds, strict=True):
        if not (np.isfinite(x) and np.isfinite(y) and np.isfinite(a)):
            continue
        car = is_car(kind)
        length, width = CAR_FOOTPRINT if car else BOX_FOOTPRINT
        c, s = np.cos(a), np.sin(a)
        lx, ly = corners[:, 0] * length, corners[:, 1] * width
        px, py = x + c * lx - s * ly, y + s * lx + c * ly
        if car:
            ax.fill(px, py, color="#2b2b2b", zorder=6)
            ax.plot([x, x + c * length / 2], [y, y + s * length / 2], color="#f2c200", lw=1.2, zorder=7)
        else:
            ax.fill(px, py, color=(0.482, 0.38, 0.309), ec="#3d2f24", lw=0.6, zorder=6)
