"""The report's figures (matplotlib, Agg, no pyplot state): one function per panel, each returning a `Figure`.

Every panel is the drlocal drawing of a plot DeepRacer users know (the console's reward graph, the deepracer-analysis
notebooks' panels); the docstrings name the counterpart. Track panels draw the road with `drlocal.tracks.plot`
(grey road, white borders, dashed centre line, red start line and driving-direction arrow), positions in metres.
Functions take plain numpy arrays (one value per simtrace step, shape (N,)) so that they work without pandas;
only `training_progress_figure` and `scatter_aggregates_figure` take deepracer-utils' aggregate DataFrame.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from drlocal.analysis import console as cg
from drlocal.tracks.plot import draw_track
from drlocal.tracks.track import Track

DPI = 90
TRAIN = "#1f77b4"  # the notebooks' training blue
EVAL = "#ff7f0e"  # the notebooks' evaluation orange
# the console's reward graph: reward green, training completion blue, evaluation completion red
C_TRAIN_REWARD, C_EVAL_REWARD = "#2e7d32", "#8e24aa"
C_TRAIN_DONE, C_EVAL_DONE = "#1565c0", "#c62828"
RC = {
    "font.size": 9, "axes.titlesize": 10, "axes.titleweight": "bold", "axes.labelsize": 9, "axes.grid": True,
    "grid.alpha": 0.3, "grid.linewidth": 0.6, "axes.spines.top": False, "axes.spines.right": False,
    "legend.fontsize": 8, "legend.framealpha": 0.85, "figure.dpi": DPI, "savefig.dpi": DPI,
    "figure.facecolor": "white", "image.cmap": "viridis",
    "axes.titley": 1.0, "axes.titlepad": 5.0,  # a fixed title place: no tick-bbox measuring per axes (≈15 % faster)
}


def styled(fn: Callable[..., Figure]) -> Callable[..., Figure]:
    """Build the figure under the report's rc style (fonts, grid, no top/right spines)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with matplotlib.rc_context(RC):
            return fn(*args, **kwargs)

    return wrapper


def save(fig: Figure, path: Any) -> None:
    """Write a figure as PNG at the report's resolution."""
    fig.savefig(path, dpi=DPI, facecolor=fig.get_facecolor())


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


# ----- the console's reward graph and the Metrics notebook -----

def _series(ax: Axes, pts: Sequence[cg.Point], label: str, color: str, **kw: Any) -> None:
    if pts:
        ax.plot([p.x for p in pts], [p.y for p in pts], marker="o", ms=3.5, lw=1.6, color=color, label=label, **kw)


@styled
def reward_graph_figure(graph: cg.RewardGraph, best_checkpoint: int | None = None) -> Figure:
    """DRoA's "Reward graph": average reward (training, evaluation) on the left axis, average completion [%]
    (training, evaluation) on the right one, the "Best model" marker, and the checkpoint the simapp kept as best
    (`deepracer_checkpoints.json`, chosen by evaluation progress) when it differs. x = iteration (1-based)."""
    fig = Figure(figsize=(10, 4.4))
    fig.subplots_adjust(left=0.07, right=0.93, top=0.92, bottom=0.28)
    ax = fig.add_subplot()
    if not graph.train_reward and not graph.eval_reward:
        _empty(ax, "No training metrics yet")
        return fig
    ax2 = ax.twinx()
    ax2.grid(False)
    ax2.spines["right"].set_visible(True)
    _series(ax, graph.train_reward, "Average reward (Training)", C_TRAIN_REWARD)
    _series(ax, graph.eval_reward, "Average reward (Evaluation)", C_EVAL_REWARD, ls="--")
    _series(ax2, graph.train_completion, "Average completion (Training)", C_TRAIN_DONE)
    _series(ax2, graph.eval_completion, "Average completion (Evaluation)", C_EVAL_DONE, ls="--")
    if graph.best_model is not None:
        ax.axvline(graph.best_model.x, color="#424242", ls=(0, (5, 3)), lw=1.2,
                   label=f"Best model (iteration {graph.best_model.x:g})")
    if best_checkpoint is not None and (graph.best_model is None or best_checkpoint != graph.best_model.x):
        ax.axvline(best_checkpoint, color="#9e9e9e", ls=":", lw=1.4,
                   label=f"Best checkpoint kept by the simapp ({best_checkpoint}, by progress)")
    ax.set_xlabel("Iteration")
    ax.set_ylabel("Reward")
    ax2.set_ylabel("Completion [%]")
    ax2.set_ylim(0, 105)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"Reward graph ({graph.iterations} iterations of {graph.iteration_size} episodes)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    fig.legend(h1 + h2, l1 + l2, loc="lower center", ncol=3, bbox_to_anchor=(0.5, 0.0))
    return fig


def _summary_lines(ax: Axes, entries: Sequence[cg.Entry], epi: int, method: str, attr: str, window: int,
                   scale: float = 1.0, completed_only: bool = False, ls: str = "-", tag: str = "") -> bool:
    """Dots per iteration and the rolling line for training and evaluation; False when there is nothing."""
    drew = False
    for phase, label, color in ((cg.EVALUATION, "Evaluation", EVAL), (cg.TRAINING, "Training", TRAIN)):
        s = cg.summarize(entries, phase, method, episodes_per_iteration=epi, completed_laps_only=completed_only)
        if not len(s.iteration):
            continue
        y = getattr(s, attr) * scale
        ax.scatter(s.iteration, y, s=9, alpha=0.45, color=color)
        ax.plot(s.iteration, cg.rolling(y, window), color=color, ls=ls, lw=1.6, label=f"{label}{tag}")
        drew = True
    return drew


@styled
def metrics_completion_figure(entries: Sequence[cg.Entry], epi: int) -> Figure:
    """Metrics notebook M4: "Completion per Iteration" with the median, mean and max of each iteration's episodes
    (dots) and a rolling average over 5 iterations (lines), training blue, evaluation orange."""
    fig = Figure(figsize=(13, 3.8))
    fig.subplots_adjust(left=0.06, right=0.99, top=0.91, bottom=0.14, wspace=0.08)
    axes = fig.subplots(1, 3, sharey=True)
    for ax, method in zip(axes, ("median", "mean", "max"), strict=True):
        if not _summary_lines(ax, entries, epi, method, "completion", 5):
            _empty(ax, "No episodes yet")
            continue
        ax.set_title(f"Completion per iteration ({method})")
        ax.set_xlabel("Iteration")
        ax.set_ylim(-2, 105)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="upper left")
    axes[0].set_ylabel("Completion [%] (rolling mean of 5)")
    return fig


@styled
def metrics_laps_figure(entries: Sequence[cg.Entry], epi: int) -> Figure:
    """Metrics notebook M5, M8 and M9: percent of episodes that are full laps (rolling 20), lap time of complete laps
    (min solid, mean dashed, rolling 15) and the "Best lap progression" (every complete lap, and the best so far)."""
    fig = Figure(figsize=(13, 3.8))
    fig.subplots_adjust(left=0.06, right=0.99, top=0.91, bottom=0.14, wspace=0.25)
    a, b, c = fig.subplots(1, 3)
    if _summary_lines(a, entries, epi, "mean", "completed", 20, scale=100.0):
        a.set_ylim(-2, 105)
        a.legend(loc="upper left")
    else:
        _empty(a, "No episodes yet")
    a.set_title("Percent completed laps")
    a.set_ylabel("Complete laps [%] (rolling mean of 20)")
    drew = _summary_lines(b, entries, epi, "min", "time", 15, completed_only=True, tag=" min")
    _summary_lines(b, entries, epi, "mean", "time", 15, completed_only=True, ls="--", tag=" mean")
    b.set_title("Lap time of complete laps")
    b.set_ylabel("Lap time [s] (rolling 15)")
    if drew:
        b.legend(loc="upper right")
    else:
        _empty(b, "No complete laps yet")
    c.set_title("Best lap progression")
    c.set_ylabel("Lap time [s]")
    laps_any = False
    for phase, label, color in ((cg.TRAINING, "Training", TRAIN), (cg.EVALUATION, "Evaluation", EVAL)):
        laps = cg.complete_laps(entries, phase, epi)
        if not laps:
            continue
        laps_any = True
        it = np.array([i for i, _ in laps])
        t = np.array([s for _, s in laps])
        c.scatter(it, t, s=12, alpha=0.6, color=color, label=f"{label} laps")
        c.step(it, np.minimum.accumulate(t), where="post", color=color, lw=1.3, label=f"{label} best so far")
    if laps_any:
        c.legend(loc="upper right")
    else:
        _empty(c, "No complete laps yet")
    for ax in (a, b, c):
        ax.set_xlabel("Iteration")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


# ----- track panels -----

def track_extent(track: Track, margin: float = 0.5) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1) [m]: the borders' bounding box grown by `margin`."""
    pts = np.vstack([track.route[:, 2:4], track.route[:, 4:6]])
    lo, hi = pts.min(axis=0) - margin, pts.max(axis=0) + margin
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def reward_raster(x: np.ndarray, y: np.ndarray, values: np.ndarray, extent: tuple[float, float, float, float],
                  cell: float = 0.05) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Mean of `values` per square cell of `cell` metres: the reward heat map's image.

    x, y, values: (N,) step positions [m] and values. Returns (img (H, W) with NaN in cells no step reached,
    (x0, x1, y0, y1) for `imshow(img, origin="lower", extent=...)`). Row i covers y0 + [i, i+1)·cell, column j
    covers x0 + [j, j+1)·cell. The notebook's `plot_track` writes each step's value into a 1 cm raster (the last
    step wins); the mean per cell is steadier and readable at report size."""
    x0, x1, y0, y1 = extent
    nx, ny = max(1, math.ceil((x1 - x0) / cell)), max(1, math.ceil((y1 - y0) / cell))
    x, y, v = (np.asarray(a, dtype=float).ravel() for a in (x, y, values))
    ix = np.floor((x - x0) / cell)
    iy = np.floor((y - y0) / cell)
    ok = np.isfinite(ix) & np.isfinite(iy) & np.isfinite(v) & (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    flat = iy[ok].astype(np.int64) * nx + ix[ok].astype(np.int64)
    sums = np.bincount(flat, weights=v[ok], minlength=nx * ny)
    counts = np.bincount(flat, minlength=nx * ny)
    with np.errstate(invalid="ignore", divide="ignore"):
        img = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return img.reshape(ny, nx), (x0, x0 + nx * cell, y0, y0 + ny * cell)


def _aspect(track: Track) -> float:
    """Height over width of the track's drawing area (borders plus margin); clipped so that a long thin
    track still gets a readable panel."""
    x0, x1, y0, y1 = track_extent(track)
    return float(min(max((y1 - y0) / max(x1 - x0, 1e-6), 0.25), 1.6))


def _track_ax(fig: Figure, track: Track, left: float, bottom: float, width: float, fig_w: float, fig_h: float,
              reverse: bool) -> Axes:
    """An axes placed in inches (left, bottom, width; height from the track's aspect) with the track drawn, so the
    equal-aspect drawing fills its box instead of floating in white space."""
    height = width * _aspect(track)
    ax = fig.add_axes((left / fig_w, bottom / fig_h, width / fig_w, height / fig_h))
    draw_track(ax, track, reverse=reverse)
    x0, x1, y0, y1 = track_extent(track)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("auto")  # the box already has the data's aspect
    ax.set_xlabel("")
    ax.set_ylabel("")
    return ax


def _limits(values: np.ndarray, robust: bool = False) -> tuple[float, float]:
    """Colour-scale limits: min..max (1st..99th percentile when `robust`), widened when all values are equal."""
    v = values[np.isfinite(values)]
    if not v.size:
        return 0.0, 1.0
    lo, hi = (np.percentile(v, [1, 99]) if robust else (v.min(), v.max()))
    lo, hi = float(lo), float(hi)
    if hi - lo < 1e-9 * max(1.0, abs(hi)):
        pad = max(0.05 * abs(hi), 0.05)
        return lo - pad, hi + pad
    return lo, hi


def _colorbar(fig: Figure, mappable: Any, rect: tuple[float, float, float, float], label: str) -> None:
    cb = fig.colorbar(mappable, cax=fig.add_axes(rect), label=label)
    cb.formatter.set_useOffset(False)
    cb.update_ticks()


@styled
def heatmap_figure(track: Track, x: np.ndarray, y: np.ndarray, reward: np.ndarray, *, reverse: bool = False,
                   cell: float = 0.05, title: str = "Reward distribution for all actions") -> Figure:
    """Training notebook T19 (`pu.plot_track`): the mean reward of the steps in each `cell`-metre square, drawn on
    the track with the notebook's "hot" colour map (white = high). x, y, reward: (N,) per simtrace step."""
    wa = 8.5
    fw, fh = 0.75 + wa + 1.3, 0.6 + wa * _aspect(track) + 0.45
    fig = Figure(figsize=(fw, fh))
    ax = _track_ax(fig, track, 0.75, 0.6, wa, fw, fh, reverse)
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    if len(reward):
        img, ext = reward_raster(x, y, reward, track_extent(track), cell)
        vmin, vmax = _limits(img, robust=True)
        im = ax.imshow(img, origin="lower", extent=ext, cmap="hot", interpolation="nearest", zorder=3,
                       vmin=vmin, vmax=vmax, aspect="auto")
        _colorbar(fig, im, ((0.75 + wa + 0.15) / fw, 0.6 / fh, 0.18 / fw, wa * _aspect(track) / fh),
                  f"mean reward per step ({cell * 100:.0f} cm cells)")
    ax.set_title(f"{title} ({len(reward)} steps)")
    return fig


@dataclass(frozen=True)
class Lap:
    """One path to draw: title, positions (N,) [m] and the value (N,) that colours the dots."""

    title: str
    x: np.ndarray
    y: np.ndarray
    value: np.ndarray


@styled
def laps_figure(track: Track, laps: Sequence[Lap], *, reverse: bool = False, label: str = "commanded speed [m/s]",
                title: str = "", cmap: str = "plasma", columns: int = 3, robust: bool = False) -> Figure:
    """Paths on the track, one panel per lap, dots coloured by `value` on one shared scale (1st–99th percentile
    with `robust`), the start marked by a green dot.

    Training notebook T18/T21 (`pu.plot_selected_laps`) for the best laps, Evaluation notebook E7
    (`pu.plot_evaluations`, coloured by speed) for the trials and E8 (`pu.plot_grid_world`) for the fastest lap."""
    n = max(len(laps), 1)
    cols = min(n, columns)
    rows = math.ceil(n / cols)
    wa = 5.0 if cols > 1 else 8.0
    ha = wa * _aspect(track)
    pad = 0.15 + 0.19 * max([lap.title.count("\n") + 1 for lap in laps] + [1])  # room for the panel titles
    head, gap, left, right, bottom = (0.35 if title else 0.05), 0.45, 0.45, 1.25, 0.3
    fw = left + cols * wa + (cols - 1) * gap + right
    fh = head + rows * (ha + pad) + bottom
    fig = Figure(figsize=(fw, fh))
    allv = np.concatenate([lap.value for lap in laps]) if laps else np.zeros(0)
    vmin, vmax = _limits(allv, robust)
    sc = None
    for k, lap in enumerate(laps):
        r, c = divmod(k, cols)
        ax = _track_ax(fig, track, left + c * (wa + gap), bottom + (rows - 1 - r) * (ha + pad), wa, fw, fh, reverse)
        sc = ax.scatter(lap.x, lap.y, c=lap.value, s=7, cmap=cmap, vmin=vmin, vmax=vmax, zorder=5)
        ax.plot(lap.x[:1], lap.y[:1], "o", ms=7, mfc="lime", mec="black", zorder=6)
        ax.set_title(lap.title, fontsize=9)
    if sc is None:
        _empty(fig.add_subplot(), "Nothing to draw")
    else:
        _colorbar(fig, sc, ((fw - right + 0.2) / fw, bottom / fh, 0.16 / fw, (fh - head - bottom - pad) / fh), label)
    if title:
        fig.suptitle(title, fontweight="bold", y=1 - 0.08 / fh, va="top")
    return fig


@styled
def reward_per_waypoint_figure(waypoint: np.ndarray, reward: np.ndarray, n_waypoints: int, title: str) -> Figure:
    """Training notebook T17 (`df[df.episode==E].plot.bar(x='closest_waypoint', y='reward')`): the reward one
    episode collected at each closest waypoint (sum of its steps there), with the number of steps as a line."""
    fig = Figure(figsize=(12, 3.6))
    fig.subplots_adjust(left=0.06, right=0.94, top=0.9, bottom=0.14)
    ax = fig.add_subplot()
    wp = np.asarray(waypoint, dtype=int)
    size = max(n_waypoints, int(wp.max()) + 1 if wp.size else 1)
    sums = np.bincount(wp, weights=np.asarray(reward, dtype=float), minlength=size)
    counts = np.bincount(wp, minlength=size)
    idx = np.arange(size)
    ax.stairs(sums, np.arange(size + 1) - 0.5, fill=True, color="#ef6c00", label="reward collected")
    ax2 = ax.twinx()
    ax2.grid(False)
    ax2.spines["right"].set_visible(True)
    ax2.plot(idx, np.where(counts > 0, counts, np.nan), color="#455a64", lw=1.0, label="steps")
    ax2.set_ylabel("steps at the waypoint")
    ax.set_xlabel("closest waypoint")
    ax.set_ylabel("reward (sum over the steps)")
    ax.set_xlim(-1, size)
    ax.set_title(title)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper right")
    return fig


# ----- action space -----

def action_label(a: Mapping[str, Any]) -> str:
    """"-15° 1.2 m/s" for one discrete action of model_metadata.json."""
    return f"{float(a['steering_angle']):g}° {float(a['speed']):g} m/s"


def _steer_color(steer: float) -> str:
    return "#d32f2f" if steer > 1e-9 else ("#388e3c" if abs(steer) <= 1e-9 else "#1976d2")


@styled
def action_space_figure(action_space: Any, usage: np.ndarray | None = None) -> Figure:
    """ActionSpace notebook's "Action Index Map": each discrete action a circle at (steering, speed), area ∝ speed,
    red = left, green = straight, blue = right, its index inside and (with `usage`, (A,) step counts) the share
    of training steps that took it underneath. A continuous space is drawn as its steering × speed box."""
    fig = Figure(figsize=(7.5, 4.6))
    fig.subplots_adjust(left=0.1, right=0.97, top=0.91, bottom=0.13)
    ax = fig.add_subplot()
    if isinstance(action_space, Mapping):
        st, sp = action_space.get("steering_angle", {}), action_space.get("speed", {})
        lo_s, hi_s = float(st.get("low", -30)), float(st.get("high", 30))
        lo_v, hi_v = float(sp.get("low", 0.5)), float(sp.get("high", 1.0))
        ax.add_patch(Rectangle((lo_s, lo_v), hi_s - lo_s, hi_v - lo_v, fc="#90caf9", ec="#1565c0", alpha=0.6))
        ax.set_xlim(max(hi_s, 30) + 3, min(lo_s, -30) - 3)  # left turns on the left
        ax.set_ylim(0, hi_v * 1.15 + 0.1)
        ax.set_title(f"Continuous action space: steering {lo_s:g}…{hi_s:g}°, speed {lo_v:g}…{hi_v:g} m/s")
    elif action_space:
        steer = np.array([float(a["steering_angle"]) for a in action_space])
        speed = np.array([float(a["speed"]) for a in action_space])
        total = float(usage.sum()) if usage is not None and usage.sum() else 0.0
        ax.scatter(steer, speed, s=250 + 900 * speed / max(speed.max(), 1e-6), c=[_steer_color(s) for s in steer],
                   alpha=0.75, edgecolors="black", linewidths=0.6, zorder=3)
        for k, a in enumerate(action_space):
            ax.text(steer[k], speed[k], str(a.get("index", k)), ha="center", va="center", color="white",
                    fontweight="bold", zorder=4)
            if total:
                n = usage[k] if k < len(usage) else 0
                ax.annotate(f"{100 * n / total:.0f} %", (steer[k], speed[k]), xytext=(0, -27),
                            textcoords="offset points", ha="center", fontsize=7, color="#333")
        ax.set_xlim(max(steer.max(), 30) + 6, min(steer.min(), -30) - 6)  # left turns on the left
        ax.set_ylim(0, speed.max() * 1.25 + 0.1)
        ax.set_title(f"Action index map ({len(action_space)} actions"
                     + (", with the share of training steps)" if total else ")"))
    else:
        _empty(ax, "No action space (model_metadata.json missing)")
        return fig
    ax.set_xlabel("steering angle [°]   (← left turns +   |   − right turns →)")
    ax.set_ylabel("speed [m/s]")
    return fig


def _edges(values: np.ndarray, default_bins: int) -> np.ndarray | int:
    """Bin edges centred on the distinct values of a discrete action space (≤ 21 values), else `default_bins`."""
    u = np.unique(values[np.isfinite(values)])
    if 1 <= u.size <= 21:
        if u.size == 1:
            half = 0.05 * max(abs(float(u[0])), 1.0)
            return np.array([u[0] - half, u[0] + half])
        mids = (u[1:] + u[:-1]) / 2
        return np.concatenate([[u[0] - (mids[0] - u[0])], mids, [u[-1] + (u[-1] - mids[-1])]])
    return default_bins


@styled
def action_histograms_figure(steer: np.ndarray, speed: np.ndarray, title: str = "all training steps") -> Figure:
    """ActionSpace notebook's 4-in-1 histograms (without the polar one): steering × speed 2-D histogram, steering
    histogram and speed histogram of the commanded actions. steer [°], speed [m/s], (N,) per step."""
    fig = Figure(figsize=(13, 3.8))
    fig.subplots_adjust(left=0.05, right=0.99, top=0.83, bottom=0.14, wspace=0.42)
    a, b, c = fig.subplots(1, 3)
    steer = np.asarray(steer, dtype=float)
    speed = np.asarray(speed, dtype=float)
    if not steer.size:
        for ax in (a, b, c):
            _empty(ax, "No steps yet")
        return fig
    es, ev = _edges(steer, 31), _edges(speed, 20)
    h = a.hist2d(steer, speed, bins=[es, ev], cmap="Blues", cmin=1)
    fig.colorbar(h[3], ax=a, fraction=0.05, pad=0.02, label="steps")
    a.set_xlabel("steering angle [°]")
    a.set_ylabel("speed [m/s]")
    a.set_title("Steering × speed")
    hs, be = np.histogram(steer, bins=es)
    b.stairs(hs, be, fill=True, color="#5c6bc0")
    b.set_xlabel("steering angle [°]")
    b.set_ylabel("steps")
    b.set_title("Steering")
    hv, bv = np.histogram(speed, bins=ev)
    c.stairs(hv, bv, fill=True, color="#26a69a", orientation="horizontal")
    c.set_ylabel("speed [m/s]")
    c.set_xlabel("steps")
    c.set_title("Speed")
    fig.suptitle(f"Action histograms ({title}, {steer.size} steps)", fontweight="bold")
    return fig


@styled
def action_breakdown_figure(track: Track, x: np.ndarray, y: np.ndarray, action: np.ndarray, waypoint: np.ndarray,
                            labels: Sequence[str], n_waypoints: int, *, reverse: bool = False) -> Figure:
    """Training notebook T24 (`abu.action_breakdown`) in two panels instead of one row per action: where on the
    track each action was taken (dots coloured by action index) and how often each action was taken at each
    closest waypoint (stacked bars). action: (N,) discrete indices, waypoint: (N,) closest waypoints."""
    n = max(len(labels), int(action.max()) + 1 if action.size else 1)
    base = matplotlib.colormaps["tab20" if n > 10 else "tab10"]
    cmap = ListedColormap([base(i % base.N) for i in range(n)])
    wa, wb = 6.0, 7.0
    ha = wa * _aspect(track)
    fw, fh = 0.45 + wa + 0.8 + wb + 2.2, max(ha, 3.4) + 0.9
    fig = Figure(figsize=(fw, fh))
    a = _track_ax(fig, track, 0.45, 0.35, wa, fw, fh, reverse)
    a.scatter(x, y, c=action, cmap=cmap, vmin=-0.5, vmax=n - 0.5, s=5, zorder=5)
    a.set_title("Where each action was taken")
    b = fig.add_axes(((0.45 + wa + 0.8) / fw, 0.55 / fh, wb / fw, (fh - 0.95) / fh))
    size = max(n_waypoints, int(waypoint.max()) + 1 if waypoint.size else 1)
    bottom = np.zeros(size)
    for k in range(n):
        counts = np.bincount(waypoint[action == k].astype(int), minlength=size).astype(float)
        name = f"{k}: {labels[k]}" if k < len(labels) else str(k)
        b.stairs(bottom + counts, np.arange(size + 1) - 0.5, baseline=bottom.copy(), fill=True, color=cmap(k),
                 label=name)
        bottom += counts
    b.set_xlabel("closest waypoint")
    b.set_ylabel("steps")
    b.set_xlim(-1, size)
    b.set_title("Actions per waypoint")
    b.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, title="action")
    return fig


# ----- deepracer-utils aggregates (pandas) -----

def _scatter(ax: Axes, x: Any, y: Any, xlabel: str, ylabel: str, title: str, color: str = TRAIN) -> None:
    ax.plot(x, y, "o", ms=3, alpha=0.7, color=color)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)


@styled
def training_progress_figure(agg: Any, title: str = "Training progress") -> Figure:
    """Training notebook T6 (`au.analyze_training_progress`) from deepracer-utils' `simulation_agg` DataFrame:
    columns reward / time / progress; rows mean per iteration, std per iteration, and total reward per episode,
    mean complete-lap time per iteration, completion rate per iteration (overall rate in the title)."""
    fig = Figure(figsize=(13, 10))
    fig.subplots_adjust(left=0.06, right=0.99, top=0.93, bottom=0.06, wspace=0.28, hspace=0.38)
    axes = fig.subplots(3, 3)
    g = agg.groupby("iteration")
    ep = "unique_episode" if "unique_episode" in agg else "episode"
    for col, (name, unit) in enumerate((("reward", ""), ("time", " [s]"), ("progress", " [%]"))):
        stats = g[name].agg(["mean", "std"]).reset_index()
        _scatter(axes[0, col], stats["iteration"], stats["mean"], "iteration K", f"mean {name}{unit}",
                 f"Mean {name} per iteration")
        _scatter(axes[1, col], stats["iteration"], stats["std"], "iteration K", f"std of {name}{unit}",
                 f"Std dev of {name} per iteration")
    _scatter(axes[2, 0], agg[ep], agg["reward"], "episode", "total reward", "Total reward per episode")
    done = agg[agg["progress"] == 100]
    if len(done):
        t = done.groupby("iteration")["time"].mean().reset_index()
        _scatter(axes[2, 1], t["iteration"], t["time"], "iteration K", "lap time [s]", "Mean complete-lap time")
    else:
        _empty(axes[2, 1], "No complete laps yet")
        axes[2, 1].set_title("Mean complete-lap time")
    rate = g["complete"].mean().reset_index()
    overall = float(agg["complete"].mean()) if len(agg) else 0.0
    _scatter(axes[2, 2], rate["iteration"], rate["complete"] * 100, "iteration K", "complete laps [%]",
             f"Completion rate (overall {overall * 100:.1f} %)")
    axes[2, 2].set_ylim(-3, 103)
    for ax in axes.ravel():
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"{title}: {len(agg)} episodes, {agg['iteration'].nunique()} iterations", fontweight="bold")
    return fig


@styled
def scatter_aggregates_figure(agg: Any, title: str) -> Figure:
    """Training notebook T7/T8 (`au.scatter_aggregates`) from `simulation_agg`: time against progress, steps and
    reward; histograms of time and progress; reward against progress; start waypoint against progress,
    time-if-complete and reward. (The notebook's new_reward panel is reward against progress here: drlocal
    has no second reward function to compare.)"""
    fig = Figure(figsize=(13, 10))
    fig.subplots_adjust(left=0.06, right=0.99, top=0.93, bottom=0.06, wspace=0.28, hspace=0.38)
    ax = fig.subplots(3, 3)
    _scatter(ax[0, 0], agg["time"], agg["progress"], "time [s]", "progress [%]", "Time → progress")
    _scatter(ax[0, 1], agg["time"], agg["steps"], "time [s]", "steps", "Time → steps")
    _scatter(ax[0, 2], agg["time"], agg["reward"], "time [s]", "reward", "Time → reward")
    ax[1, 0].stairs(*np.histogram(agg["time"], bins=20), fill=True, color=TRAIN)
    ax[1, 0].set(xlabel="time [s]", ylabel="episodes", title="Time")
    ax[1, 1].stairs(*np.histogram(agg["progress"], bins=20), fill=True, color=TRAIN)
    ax[1, 1].set(xlabel="progress [%]", ylabel="episodes", title="Progress")
    _scatter(ax[1, 2], agg["progress"], agg["reward"], "progress [%]", "reward", "Progress → reward")
    _scatter(ax[2, 0], agg["start_at"], agg["progress"], "start waypoint", "progress [%]", "Start → progress")
    _scatter(ax[2, 1], agg["start_at"], agg["time_if_complete"], "start waypoint", "time if complete [s]",
             "Start → time if complete")
    _scatter(ax[2, 2], agg["start_at"], agg["reward"], "start waypoint", "reward", "Start → reward")
    fig.suptitle(f"{title} ({len(agg)} episodes)", fontweight="bold")
    return fig


@styled
def quintiles_figure(agg: Any) -> Figure:
    """Training notebook T9 (`au.scatter_by_groups`, "Quintiles") from `simulation_agg`: the episodes split into
    five buckets by order (its `quintile` column: first 20 % of episodes, second 20 %, …), one row each: time →
    reward, progress → reward, and the time and progress histograms, so the rows show how training moved on."""
    groups = [(q, agg[agg["quintile"] == q]) for q in sorted(agg["quintile"].unique())]
    fig = Figure(figsize=(13, 2.3 * max(len(groups), 1) + 0.8))
    fig.subplots_adjust(left=0.06, right=0.99, top=1 - 0.6 / fig.get_figheight(), bottom=0.05, wspace=0.28,
                        hspace=0.55)
    axes = np.atleast_2d(fig.subplots(max(len(groups), 1), 4))
    t_max = float(agg["time"].max()) if len(agg) else 1.0
    for row, (q, g) in zip(axes, groups, strict=False):
        _scatter(row[0], g["time"], g["reward"], "time [s]", "reward", f"Quintile {q}: time → reward")
        _scatter(row[1], g["progress"], g["reward"], "progress [%]", "reward", f"Quintile {q}: progress → reward")
        row[2].stairs(*np.histogram(g["time"], bins=20, range=(0.0, max(t_max, 1e-6))), fill=True, color=TRAIN)
        row[2].set(xlabel="time [s]", ylabel="episodes", title=f"Quintile {q}: time")
        row[3].stairs(*np.histogram(g["progress"], bins=20, range=(0.0, 100.0)), fill=True, color=TRAIN)
        row[3].set(xlabel="progress [%]", ylabel="episodes", title=f"Quintile {q}: progress", xlim=(0, 100))
    fig.suptitle(f"Quintiles: {len(agg)} episodes in five buckets by training order", fontweight="bold")
    return fig


@styled
def sanity_figure(time_s: Sequence[float], reward: Sequence[float], r: float, slope: float) -> Figure:
    """The reward-sanity check drawn: episode reward against lap time of the recent complete laps, with the
    least-squares line (a rising line = slower laps are paid more)."""
    fig = Figure(figsize=(6.5, 3.6))
    fig.subplots_adjust(left=0.12, right=0.97, top=0.88, bottom=0.15)
    ax = fig.add_subplot()
    t, rw = np.asarray(time_s, dtype=float), np.asarray(reward, dtype=float)
    rising = r > 0
    ax.scatter(t, rw, s=16, color="#ef6c00" if rising else TRAIN, alpha=0.8)
    if t.size >= 2 and np.ptp(t) > 0:
        xs = np.array([t.min(), t.max()])
        ax.plot(xs, rw.mean() + slope * (xs - t.mean()), color="#424242", lw=1.2, ls="--",
                label=f"fit: {slope:+.2f} reward/s, r = {r:+.2f}")
        ax.legend(loc="best")
    ax.set_xlabel("lap time [s]")
    ax.set_ylabel("episode reward")
    ax.set_title(f"Reward against lap time ({t.size} recent complete laps)")
    return fig
