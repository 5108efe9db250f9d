"""`drlocal analyze --policy-map`: what a checkpoint does everywhere on the track, not only where it drove.

DeepRacer's tools show a policy only through the laps it drove (simtrace heat maps, action histograms). Those never
show what the car would do a little off the racing line or at a bad angle, which is exactly where a model crashes.
The policy map puts the car at a grid of poses — every `stride`-th waypoint × lateral offsets [m] × heading errors
[deg] — renders the car's own sensors there (`ObservationBuilder`, the env's renderer, so the network sees exactly
what it sees in training), runs the networks on all poses in batches and draws, per heading error, maps of:

* greedy speed [m/s] (dots coloured by speed, with a tick towards where the steered wheels point),
* greedy steering angle [deg] (+ = left),
* policy entropy [nats] (how certain the policy is; 0 = always the same action),
* the value estimate V(s) (the critic's expected discounted return from there).

Greedy means what `drlocal evaluate` and the car do: the argmax action (discrete), PPO's Gaussian mean clipped to
[-1, 1] and rescaled to the action space's ranges (continuous, as DeepRacer clips), SAC's tanh of the mean.
`compare_maps` gives the difference of two checkpoints on the same poses and the share of poses whose greedy action
changed. Obstacles and other cars are not placed: the map shows the policy on an empty track.

Grid conventions, for all arrays of shape (N,) with N = W × O × H poses in waypoint-major, then offset, then heading
order (`PoseGrid.shape` = (W, O, H)): offset d > 0 is left of the driving direction, along the left normal of the
track direction at the waypoint; heading error h > 0 turns the car's nose left (counter-clockwise) of the track
direction, which is the direction from the waypoint to the next distinct one (the simapp's reset-pose heading).
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from drlocal.config.model_metadata import ModelMetadata
from drlocal.env.actions import ActionMapper
from drlocal.errors import DrlocalError
from drlocal.tracks.track import Track

DEFAULT_OFFSETS = (-0.3, 0.0, 0.3)  # [m], + = left of the driving direction
DEFAULT_HEADINGS = (-20.0, 0.0, 20.0)  # [deg], + = nose left of the track direction
DEFAULT_STRIDE = 2  # every 2nd waypoint
BATCH = 512  # poses rendered and run per forward pass (≈ 10 MB of camera images, ≈ 80 MB of activations on CPU)
CHANGED_SPEED = 0.05  # [m/s] a continuous greedy speed moving more than this counts as a changed action
CHANGED_STEER = 1.0  # [deg] likewise for the steering angle
HALF_LOG_2PI_E = 0.5 * math.log(2.0 * math.pi * math.e)  # entropy of N(0, 1) [nats]


# ======================================================================== the grid

@dataclass(frozen=True)
class PoseGrid:
    """The poses of a policy map; every array is (N,) with N = W × O × H, reshape to `shape` for (W, O, H).

    waypoint: waypoint index in the driving direction's order; offset [m] (+ left); heading [deg] error (+ left);
    x, y [m] and yaw [rad]: the car's base_link pose; on_track: whether (x, y) lies on the road."""

    track: str
    reverse: bool
    stride: int
    offsets: tuple[float, ...]
    headings: tuple[float, ...]
    waypoints: tuple[int, ...]
    waypoint: np.ndarray
    offset: np.ndarray
    heading: np.ndarray
    x: np.ndarray
    y: np.ndarray
    yaw: np.ndarray
    on_track: np.ndarray

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.waypoints), len(self.offsets), len(self.headings)


def _values(values: Sequence[float], what: str, unit: str) -> tuple[float, ...]:
    out = tuple(float(v) for v in values)
    if not out or not all(math.isfinite(v) for v in out):
        raise DrlocalError(f"{what}: need at least one finite number, got {list(values)}.",
                           hint=f"give comma-separated numbers in {unit}, e.g. {what} -0.3,0,0.3.")
    if len(set(out)) != len(out):
        raise DrlocalError(f"{what}: {list(out)} lists a value twice.", hint="give each value once.")
    return out


def parse_floats(text: str, what: str, unit: str) -> tuple[float, ...]:
    """'-0.3,0,0.3' → (-0.3, 0.0, 0.3) for a command-line option; one-line DrlocalError for anything else."""
    try:
        values = [float(t) for t in text.replace(" ", ",").split(",") if t]
    except ValueError:
        raise DrlocalError(f"{what} {text!r}: not a comma-separated list of numbers.",
                           hint=f"give numbers in {unit}, e.g. {what} -0.3,0,0.3.") from None
    return _values(values, what, unit)


def pose_grid(track: Track, *, reverse: bool = False, stride: int = DEFAULT_STRIDE,
              offsets: Sequence[float] = DEFAULT_OFFSETS, headings: Sequence[float] = DEFAULT_HEADINGS) -> PoseGrid:
    """Every `stride`-th waypoint (from 0, in the driving direction) × `offsets` [m] × `headings` [deg].

    The last route row is left out (a loop's repeats the first; an open track's has no next waypoint to head to).
    Poses off the road (large offsets on a narrow track) are kept and flagged in `on_track`."""
    if int(stride) != stride or stride < 1:
        raise DrlocalError(f"--stride {stride}: must be a whole number ≥ 1.", hint="e.g. --stride 2 maps every 2nd "
                                                                                    "waypoint.")
    offs = _values(offsets, "--offsets", "metres")
    heads = _values(headings, "--headings", "degrees")
    if any(abs(h) >= 180.0 for h in heads):
        raise DrlocalError(f"--headings {list(heads)}: heading errors must lie in (-180, 180) degrees.",
                           hint="e.g. --headings -20,0,20.")
    lines = track.lines(reverse)
    wps = np.arange(0, len(lines.center) - 1, int(stride))
    xy, yaw0 = lines.pose_at(lines.waypoint_ndists[wps] * lines.length)
    nx, ny = -np.sin(yaw0), np.cos(yaw0)  # left normal of the track direction
    d = np.asarray(offs)[None, :, None]
    h = np.radians(np.asarray(heads))[None, None, :]
    shape = (len(wps), len(offs), len(heads))
    x = np.broadcast_to(xy[:, 0, None, None] + d * nx[:, None, None], shape).ravel()
    y = np.broadcast_to(xy[:, 1, None, None] + d * ny[:, None, None], shape).ravel()
    yaw = np.angle(np.exp(1j * (yaw0[:, None, None] + h)))  # wrapped to (-pi, pi]
    yaw = np.broadcast_to(yaw, shape).ravel()
    return PoseGrid(
        track=track.name, reverse=reverse, stride=int(stride), offsets=offs, headings=heads,
        waypoints=tuple(int(i) for i in wps),
        waypoint=np.broadcast_to(wps[:, None, None], shape).ravel().copy(),
        offset=np.broadcast_to(d, shape).ravel().copy(),
        heading=np.broadcast_to(np.asarray(heads)[None, None, :], shape).ravel().copy(),
        x=np.ascontiguousarray(x), y=np.ascontiguousarray(y), yaw=np.ascontiguousarray(yaw),
        on_track=track.on_track(np.stack([x, y], axis=1)))


# ======================================================================== the networks

@dataclass
class MapPolicy:
    """A checkpoint's networks as the map reads them.

    policy: `PPOActorCritic` (its value tower gives V) or `SACPolicy`; value: SAC's separate V network (None: the
    value map is NaN). `load_map_policy` builds one from a model folder; tests build one from hand-made networks."""

    name: str
    metadata: ModelMetadata
    policy: nn.Module
    value: nn.Module | None = None

    @property
    def sac(self) -> bool:
        return hasattr(self.policy, "sample")

    @property
    def continuous(self) -> bool:
        return bool(self.metadata.is_continuous)

    @torch.inference_mode()
    def outputs(self, obs: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """Greedy action, entropy [nats], p of the greedy action (discrete; NaN else) and V(s) of a batch, each (N,)
        (the action (N, 2) in [-1, 1] for continuous spaces)."""
        m = self.policy
        if self.sac:
            mean, log_std = m(obs)
            action = torch.tanh(mean.float())
            entropy = (HALF_LOG_2PI_E + log_std.float()).sum(-1)  # the Gaussian before tanh
            p_greedy = torch.full_like(entropy, float("nan"))
            value = self.value(obs).float() if self.value is not None else torch.full_like(entropy, float("nan"))
        elif m.continuous:
            action = m.policy_output(obs).float().clamp(-1.0, 1.0)
            h = (HALF_LOG_2PI_E + m.log_std.clamp(-20.0, 3.0).float()).sum()  # state-independent σ: one number
            entropy = h.expand(action.shape[0])
            p_greedy = torch.full_like(entropy, float("nan"))
            value = m.value(obs).float()
        else:
            probs = m.policy_output(obs).float().clamp_min(1e-8)  # as the Categorical of training
            probs = probs / probs.sum(-1, keepdim=True)
            p_greedy, action = probs.max(dim=-1)
            entropy = -(probs * probs.log()).sum(-1)
            value = m.value(obs).float()
        return {k: v.cpu().numpy() for k, v in
                {"action": action, "entropy": entropy, "p_greedy": p_greedy, "value": value}.items()}


def load_map_policy(store: Any, which: str | int, device: torch.device | None = None) -> MapPolicy:
    """The checkpoint `which` (best | last | N) of a `ModelStore`; DrlocalError naming the checkpoints otherwise."""
    from drlocal.learn.evaluate import load_policy

    device = device or torch.device("cpu")
    model, md, name = load_policy(store, which, device)
    value = None
    if hasattr(model, "sample"):  # SAC: V is its own network in the checkpoint
        from drlocal.learn.sac import ValueNet

        state = store.load_checkpoint(name, map_location=device)
        v_state = (state.get("model") or {}).get("v")
        if v_state is not None:
            value = ValueNet(md.input_sizes(), md.neural_network)
            value.load_state_dict(v_state)
            value = value.to(device).eval()
    return MapPolicy(name, md, model.eval(), value)


# ======================================================================== computing

@dataclass
class PolicyMap:
    """One checkpoint's outputs on a `PoseGrid`; arrays (N,) in the grid's order.

    action: greedy index (discrete) or (N, 2) (steering, speed) in [-1, 1] (continuous); speed [m/s] and
    steering [deg] the commands it maps to; entropy [nats]; p_greedy: the greedy action's probability (discrete,
    NaN for continuous); value: V(s) (NaN when the checkpoint has no value network); max_entropy: ln(#actions) for
    discrete spaces (the uniform policy), None for continuous ones; seconds: render / policy time [s]."""

    grid: PoseGrid
    name: str
    metadata: ModelMetadata
    action: np.ndarray
    speed: np.ndarray
    steering: np.ndarray
    entropy: np.ndarray
    p_greedy: np.ndarray
    value: np.ndarray
    max_entropy: float | None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def continuous(self) -> bool:
        return bool(self.metadata.is_continuous)


def _sensor_key(md: ModelMetadata) -> tuple[Any, ...]:
    """Models with equal keys see identical observations (rendered once for both)."""
    return tuple(sorted(md.sensor)), repr(md.lidar_config)


def compute_policy_maps(policies: Sequence[MapPolicy], track: Track, grid: PoseGrid, *, world: str | None = None,
                        batch: int = BATCH, device: torch.device | None = None) -> list[PolicyMap]:
    """Run every policy on the grid's observations, rendering each batch once for all policies with equal sensors.

    world: the WORLD_NAME whose appearance the camera renders (default the track's). Costs: the camera renders
    ≈15k images/s per core; the networks are the cost (≈ 2 × one forward pass of the tower per pose and policy)."""
    from drlocal.env.observations import ObservationBuilder
    from drlocal.learn.agent import as_obs_dict

    device = device or torch.device("cpu")
    keys = [_sensor_key(p.metadata) for p in policies]
    builders: dict[tuple[Any, ...], Any] = {}
    for key, p in zip(keys, policies, strict=True):
        if key not in builders:
            builders[key] = ObservationBuilder(p.metadata, track, world or track.name)
    parts: list[list[dict[str, np.ndarray]]] = [[] for _ in policies]
    t_render = 0.0
    t_policy = [0.0] * len(policies)
    for start in range(0, grid.n, batch):
        sl = slice(start, start + batch)
        obs = {}
        t0 = time.perf_counter()
        for key, b in builders.items():
            o = as_obs_dict(b.observe(grid.x[sl], grid.y[sl], grid.yaw[sl]), b.sensors)
            obs[key] = {s: torch.as_tensor(v, device=device) for s, v in o.items()}
        t_render += time.perf_counter() - t0
        for i, (key, p) in enumerate(zip(keys, policies, strict=True)):
            t0 = time.perf_counter()
            parts[i].append(p.outputs(obs[key]))
            t_policy[i] += time.perf_counter() - t0
    maps = []
    for i, p in enumerate(policies):
        out = {k: np.concatenate([part[k] for part in parts[i]]) for k in parts[i][0]}
        action = out["action"]
        if not p.continuous:
            action = action.astype(np.int64)
        speed, steering = ActionMapper(p.metadata).commands(action)
        n_actions = None if p.continuous else len(p.metadata.action_space)  # type: ignore[arg-type]
        maps.append(PolicyMap(
            grid=grid, name=p.name, metadata=p.metadata, action=action, speed=speed, steering=steering,
            entropy=out["entropy"].astype(np.float64), p_greedy=out["p_greedy"].astype(np.float64),
            value=out["value"].astype(np.float64), max_entropy=math.log(n_actions) if n_actions else None,
            seconds={"render": t_render, "policy": t_policy[i]}))
    return maps


@dataclass
class MapDiff:
    """B − A on the same grid, arrays (N,): speed [m/s], steering [deg], entropy [nats], value; changed: whether
    the greedy action differs (same discrete action list: the index; else speed by more than CHANGED_SPEED or
    steering by more than CHANGED_STEER); share_changed: the fraction of poses with changed = True."""

    a: PolicyMap
    b: PolicyMap
    speed: np.ndarray
    steering: np.ndarray
    entropy: np.ndarray
    value: np.ndarray
    changed: np.ndarray

    @property
    def share_changed(self) -> float:
        return float(self.changed.mean()) if self.changed.size else 0.0


def _same_action_list(a: ModelMetadata, b: ModelMetadata) -> bool:
    if a.is_continuous or b.is_continuous:
        return False
    return [(x.steering_angle, x.speed) for x in a.action_space] == \
        [(x.steering_angle, x.speed) for x in b.action_space]  # type: ignore[union-attr]


def compare_maps(a: PolicyMap, b: PolicyMap) -> MapDiff:
    """What changed from checkpoint A to checkpoint B on the same poses (both from one `compute_policy_maps`)."""
    if a.grid.n != b.grid.n or not (np.array_equal(a.grid.x, b.grid.x) and np.array_equal(a.grid.yaw, b.grid.yaw)):
        raise ValueError("compare_maps: the two maps were computed on different pose grids.")
    if _same_action_list(a.metadata, b.metadata):
        changed = a.action != b.action
    else:
        changed = (np.abs(b.speed - a.speed) > CHANGED_SPEED) | (np.abs(b.steering - a.steering) > CHANGED_STEER)
    return MapDiff(a, b, speed=b.speed - a.speed, steering=b.steering - a.steering, entropy=b.entropy - a.entropy,
                   value=b.value - a.value, changed=changed)


# ======================================================================== figures

PANEL_W = 4.4  # [in] width of one heading panel's map (at least)
MAX_PANEL_W = 9.0  # [in] at most
MAX_COLS = 3
_GAP_X, _TITLE_H, _LABEL_H, _TOP, _CBAR_W = 0.75, 0.35, 0.45, 0.55, 1.35  # [in] the fixed layout's margins


def _heading_label(h: float) -> str:
    if h == 0:
        return "car heading along the track"
    return f"car heading {abs(h):g}° {'left' if h > 0 else 'right'} of the track direction"


def _marker_pt(ax: Any, spacing_m: float) -> float:
    """A dot diameter [pt] of about 80 % of the grid spacing on this axes, so neighbouring dots do not merge."""
    ax.apply_aspect()
    x0, x1 = ax.get_xlim()
    width_pt = ax.get_position().width * ax.figure.get_figwidth() * 72.0
    return float(np.clip(0.8 * spacing_m * width_pt / max(x1 - x0, 1e-9), 2.5, 10.0))


def _panels(track: Track, grid: PoseGrid, title: str) -> tuple[Any, list[Any]]:
    """A figure with one top-down track panel per heading error (at most MAX_COLS per row) and room for a colour bar
    on the right (`fig.cbar_rect`). A fixed layout, not matplotlib's constrained one: that draws every figure twice."""
    from matplotlib.figure import Figure

    from drlocal.tracks.plot import draw_track

    x0, y0, x1, y1 = track.road.bounds
    x0, y0, x1, y1 = x0 - 0.5, y0 - 0.5, x1 + 0.5, y1 + 0.5
    # wide enough that neighbouring poses are ≥ 7.5 pt apart (dense grids, big tracks), within reason
    pw = float(np.clip(7.5 / (0.8 * _spacing(track, grid)) * (x1 - x0) / 72.0, PANEL_W, MAX_PANEL_W))
    n = len(grid.headings)
    cols = min(n, MAX_COLS if pw <= 1.2 * PANEL_W else 2)
    rows = math.ceil(n / cols)
    ih = float(np.clip(pw * (y1 - y0) / max(x1 - x0, 1e-9), 1.5, 2.0 * pw))
    w = 0.1 + cols * (pw + _GAP_X) + _CBAR_W
    h = _TOP + rows * (ih + _TITLE_H + _LABEL_H) + 0.05
    fig = Figure(figsize=(w, h))
    axes = []
    for i, hd in enumerate(grid.headings):
        r, c = divmod(i, cols)
        top = h - _TOP - _TITLE_H - r * (ih + _TITLE_H + _LABEL_H)
        ax = fig.add_axes(((0.1 + _GAP_X + c * (pw + _GAP_X)) / w, (top - ih) / h, pw / w, ih / h))
        draw_track(ax, track, reverse=grid.reverse)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_title(_heading_label(hd), fontsize=10)
        axes.append(ax)
    area_top, area_bottom = h - _TOP - _TITLE_H, _LABEL_H + 0.05
    span = area_top - area_bottom
    fig.cbar_rect = ((w - _CBAR_W + 0.2) / w, (area_bottom + 0.075 * span) / h, 0.16 / w, 0.85 * span / h)
    fig.suptitle(title, fontsize=12, fontweight="bold", y=1.0 - 0.12 / h, va="top")
    return fig, axes


def _colorbar(fig: Any, mappable: Any, label: str) -> None:
    fig.colorbar(mappable, cax=fig.add_axes(fig.cbar_rect), label=label)


def _spacing(track: Track, grid: PoseGrid) -> float:
    """The smallest distance between neighbouring grid points [m]: waypoint step or offset step."""
    wp = track.lines(grid.reverse).length / max(len(track.waypoints) - 1, 1) * grid.stride
    offs = np.diff(sorted(grid.offsets))
    return float(min([wp, *offs.tolist()]))


def _dots(fig: Any, axes: list[Any], track: Track, grid: PoseGrid, values: np.ndarray, *, cmap: str, vmin: float,
          vmax: float, label: str, size_of: float = 1.0) -> None:
    """Each pose as a dot coloured by `values` (N,), one panel per heading error, with one colour bar; `size_of`
    scales the dot diameter."""
    from matplotlib.colors import Normalize

    norm = Normalize(vmin, vmax)
    size = (size_of * _marker_pt(axes[0], _spacing(track, grid))) ** 2
    mappable = None
    for ax, h in zip(axes, grid.headings, strict=True):
        sel = grid.heading == h
        on, off = sel & grid.on_track, sel & ~grid.on_track
        mappable = ax.scatter(grid.x[on], grid.y[on], c=values[on], cmap=cmap, norm=norm, s=size,
                              edgecolors="black", linewidths=0.3, zorder=6)
        if off.any():  # off the road: drawn, but marked (a square) so they are not read as on-track behaviour
            ax.scatter(grid.x[off], grid.y[off], c=values[off], cmap=cmap, norm=norm, s=size, marker="s",
                       edgecolors="black", linewidths=0.3, zorder=6)
    _colorbar(fig, mappable, label)


def _speed_dots(fig: Any, axes: list[Any], track: Track, grid: PoseGrid, m: PolicyMap, label: str) -> None:
    """Each pose as a dot coloured by greedy speed with a black tick towards where the steered front wheels point
    (the car's yaw + the steering angle), so one figure shows both commands."""
    from matplotlib.collections import LineCollection

    lo, hi = _speed_range(m.metadata)
    lo, hi = (lo, hi) if hi > lo else (max(lo - 0.5, 0.0), hi + 0.5)  # one speed in the action space: mid-scale
    spacing = _spacing(track, grid)
    direction = grid.yaw + np.radians(m.steering)
    tip_x, tip_y = grid.x + 0.75 * spacing * np.cos(direction), grid.y + 0.75 * spacing * np.sin(direction)
    for ax, h in zip(axes, grid.headings, strict=True):
        sel = np.flatnonzero(grid.heading == h)
        segs = np.stack([np.stack([grid.x[sel], grid.y[sel]], 1), np.stack([tip_x[sel], tip_y[sel]], 1)], 1)
        ax.add_collection(LineCollection(segs, colors="black", linewidths=1.1, zorder=7))
    _dots(fig, axes, track, grid, m.speed, cmap="RdYlGn", vmin=lo, vmax=hi, label=label, size_of=0.7)


def _speed_range(md: ModelMetadata) -> tuple[float, float]:
    if md.is_continuous:
        return float(md.action_space.speed.low), float(md.action_space.speed.high)  # type: ignore[union-attr]
    speeds = [a.speed for a in md.action_space]  # type: ignore[union-attr]
    return float(min(speeds)), float(max(speeds))


def _steer_limit(md: ModelMetadata) -> float:
    if md.is_continuous:
        cs = md.action_space.steering_angle  # type: ignore[union-attr]
        return max(abs(float(cs.low)), abs(float(cs.high)), 1.0)
    return max([abs(a.steering_angle) for a in md.action_space] + [1.0])  # type: ignore[union-attr]


def _finite_range(v: np.ndarray) -> tuple[float, float]:
    f = v[np.isfinite(v)]
    if not f.size:
        return 0.0, 1.0
    lo, hi = float(f.min()), float(f.max())
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def map_figures(m: PolicyMap, track: Track, label: str = "") -> dict[str, Any]:
    """The four figures of one checkpoint's map: {"speed", "steering", "entropy", "value"} → matplotlib Figure."""
    g = m.grid
    who = f"{label} checkpoint {m.name}" if label else f"checkpoint {m.name}"
    figs = {}
    fig, axes = _panels(track, g, f"{who}: greedy speed (tick: where the steered wheels point)")
    _speed_dots(fig, axes, track, g, m, "greedy speed [m/s]")
    figs["speed"] = fig
    lim = _steer_limit(m.metadata)
    fig, axes = _panels(track, g, f"{who}: greedy steering angle")
    _dots(fig, axes, track, g, m.steering, cmap="coolwarm", vmin=-lim, vmax=lim,
          label="steering angle [deg] (+ left, − right)")
    figs["steering"] = fig
    if m.max_entropy is not None:
        lo, hi, what = 0.0, m.max_entropy, f"entropy [nats] (0 = certain, {m.max_entropy:.2f} = uniform)"
        title = f"{who}: policy entropy (how unsure the policy is)"
    else:
        lo, hi = _finite_range(m.entropy)
        what = "entropy [nats] of the Gaussian (before clipping / tanh)"
        title = f"{who}: policy entropy" + (" (PPO's σ does not depend on the pose: uniform)" if np.ptp(m.entropy) == 0
                                            else "")
    fig, axes = _panels(track, g, title)
    _dots(fig, axes, track, g, m.entropy, cmap="viridis", vmin=lo, vmax=hi, label=what)
    figs["entropy"] = fig
    lo, hi = _finite_range(m.value)
    fig, axes = _panels(track, g, f"{who}: value estimate V(s)" + ("" if np.isfinite(m.value).any()
                                                                   else " (no value network in this checkpoint)"))
    _dots(fig, axes, track, g, m.value, cmap="viridis", vmin=lo, vmax=hi,
          label="V(s) [expected discounted reward]")
    figs["value"] = fig
    return figs


def compare_figures(d: MapDiff, track: Track) -> dict[str, Any]:
    """The difference maps B − A ({"speed", "steering", "entropy", "value"}) and the changed-action map ("changed")."""
    g = d.a.grid
    who = f"checkpoint {d.b.name} − checkpoint {d.a.name}"
    figs = {}
    for key, values, what in (("speed", d.speed, "Δ greedy speed [m/s]"),
                              ("steering", d.steering, "Δ greedy steering [deg] (+ = more to the left)"),
                              ("entropy", d.entropy, "Δ entropy [nats] (+ = less certain)"),
                              ("value", d.value, "Δ V(s)")):
        f = values[np.isfinite(values)]
        lim = float(np.abs(f).max()) if f.size else 0.0
        same = lim == 0.0
        fig, axes = _panels(track, g, f"{who}: {what.split(' [')[0]}" + (" (no difference)" if same else ""))
        lim = lim if not same else 1e-6
        _dots(fig, axes, track, g, values, cmap="RdBu_r", vmin=-lim, vmax=lim, label=what)
        figs[key] = fig
    fig, axes = _panels(track, g, f"{who}: greedy action changed at {100 * d.share_changed:.1f} % of the poses")
    size = _marker_pt(axes[0], _spacing(track, g)) ** 2
    for ax, h in zip(axes, g.headings, strict=True):
        sel = g.heading == h
        for mask, color, text in ((sel & ~d.changed, "#bdbdbd", "same greedy action"),
                                  (sel & d.changed, "#d32f2f", "greedy action changed")):
            ax.scatter(g.x[mask], g.y[mask], s=size, c=color, edgecolors="black", linewidths=0.3, zorder=6,
                       label=text)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=9, frameon=False)
    figs["changed"] = fig
    return figs


# ======================================================================== the page

CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1600px;
padding:12px 24px;color:#1d2733}h1{font-size:20px}h2{font-size:16px;margin-top:24px}img{max-width:100%;
border:1px solid #eef0f2}table{border-collapse:collapse;font-size:13px}th,td{border-bottom:1px solid #e3e7eb;
padding:3px 10px;text-align:left}th{background:#f7f8f9}.small{font-size:12px;color:#555}"""


def _kv(rows: Sequence[tuple[str, Any]]) -> str:
    esc = html.escape
    return "<table>" + "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in rows) + "</table>"


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _grid_rows(g: PoseGrid) -> list[tuple[str, Any]]:
    off = g.n - int(g.on_track.sum())
    return [("track", f"{g.track}{' (reversed)' if g.reverse else ''}"),
            ("waypoints", f"every {_ordinal(g.stride)} ({len(g.waypoints)} waypoints)" if g.stride > 1
             else f"all {len(g.waypoints)}"),
            ("lateral offsets [m] (+ left)", ", ".join(f"{v:g}" for v in g.offsets)),
            ("heading errors [deg] (+ left)", ", ".join(f"{v:g}" for v in g.headings)),
            ("poses", f"{g.n}" + (f" ({off} off the road, drawn as squares)" if off else ""))]


def _summary_rows(m: PolicyMap) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("greedy speed [m/s]", f"mean {m.speed.mean():.2f}, min {m.speed.min():.2f}, max {m.speed.max():.2f}"),
        ("greedy steering [deg]", f"mean {m.steering.mean():+.1f}, min {m.steering.min():+.1f}, "
                                  f"max {m.steering.max():+.1f}"),
        ("entropy [nats]", f"mean {m.entropy.mean():.3f}" + (f" of at most {m.max_entropy:.3f}"
                                                             if m.max_entropy is not None else "")),
    ]
    if np.isfinite(m.p_greedy).any():
        rows.append(("probability of the greedy action", f"mean {np.nanmean(m.p_greedy):.2f}"))
    if np.isfinite(m.value).any():
        rows.append(("V(s)", f"mean {np.nanmean(m.value):.3f}, min {np.nanmin(m.value):.3f}, "
                             f"max {np.nanmax(m.value):.3f}"))
    if not m.continuous:
        counts = np.bincount(m.action, minlength=len(m.metadata.action_space))  # type: ignore[arg-type]
        used = [f"{i} ({a.steering_angle:+g}°, {a.speed:g} m/s): {100 * c / m.grid.n:.0f} %"
                for i, (a, c) in enumerate(zip(m.metadata.action_space, counts, strict=True)) if c]  # type: ignore
        rows.append(("greedy actions used", "; ".join(used)))
    return rows


def _page(title: str, facts: list[tuple[str, Any]], figures: list[tuple[str, str]]) -> str:
    esc = html.escape
    imgs = "".join(f"<h2>{esc(t)}</h2><img src='{esc(f)}' alt='{esc(t)}'>" for t, f in figures)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>{_kv(facts)}{imgs}"
            "<p class='small'>Written by <code>drlocal analyze --policy-map</code>. Each pose is rendered with the "
            "car's own sensors on an empty track (no obstacles or other cars); greedy = the action the car and "
            "<code>drlocal evaluate</code> take (argmax, or the clipped mean). Offsets: + = left of the driving "
            "direction; heading errors: + = nose turned left of the track direction.</p></body></html>")


def _save(fig: Any, path: Path) -> None:
    fig.savefig(path, dpi=90, facecolor="white")


def write_policy_map(out_dir: Path, m: PolicyMap, track: Track, *, model: str = "",
                     timings: dict[str, float] | None = None) -> Path:
    """policy-map-{speed,steering,entropy,value}.png and policy-map.html in `out_dir`; returns the page."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = []
    titles = {"speed": "Greedy speed", "steering": "Greedy steering", "entropy": "Entropy (certainty)",
              "value": "Value estimate"}
    for key, fig in map_figures(m, track, model).items():
        name = f"policy-map-{key}.png"
        _save(fig, out_dir / name)
        figures.append((titles[key], name))
    facts = [("model", model or "?"), ("checkpoint", m.name), ("algorithm", m.metadata.training_algorithm),
             ("action space", f"{m.metadata.action_space_type}"), *_grid_rows(m.grid), *_summary_rows(m),
             *_timing_rows(timings)]
    page = out_dir / "policy-map.html"
    page.write_text(_page(f"{model} — policy map of checkpoint {m.name}", facts, figures), encoding="utf-8")
    return page


def write_compare(out_dir: Path, d: MapDiff, track: Track, *, model: str = "",
                  timings: dict[str, float] | None = None) -> Path:
    """policy-map-compare-{speed,steering,entropy,value,changed}.png and policy-map-compare.html; returns the page."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = []
    titles = {"speed": "Δ greedy speed", "steering": "Δ greedy steering", "entropy": "Δ entropy",
              "value": "Δ value estimate", "changed": "Where the greedy action changed"}
    for key, fig in compare_figures(d, track).items():
        name = f"policy-map-compare-{key}.png"
        _save(fig, out_dir / name)
        figures.append((titles[key], name))
    facts = [("model", model or "?"), ("checkpoint A", d.a.name), ("checkpoint B", d.b.name),
             ("greedy action changed", f"{100 * d.share_changed:.1f} % of the poses"),
             ("Δ speed B − A [m/s]", f"mean {d.speed.mean():+.3f}, max |Δ| {np.abs(d.speed).max():.3f}"),
             ("Δ steering B − A [deg]", f"mean {d.steering.mean():+.2f}, max |Δ| {np.abs(d.steering).max():.2f}"),
             ("Δ entropy B − A [nats]", f"mean {d.entropy.mean():+.3f}"), *_grid_rows(d.a.grid),
             *_timing_rows(timings)]
    page = out_dir / "policy-map-compare.html"
    page.write_text(_page(f"{model} — policy map: checkpoint {d.b.name} vs {d.a.name}", facts, figures),
                    encoding="utf-8")
    return page


def _timing_rows(timings: dict[str, float] | None) -> list[tuple[str, Any]]:
    if not timings:
        return []
    return [("time [s]", ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))]


# ======================================================================== the command

def policy_map_command(root: Path, out_dir: Path, track: Track, *, world: str | None = None, reverse: bool = False,
                       checkpoint: str = "best", compare: Sequence[str] | None = None, stride: int = DEFAULT_STRIDE,
                       offsets: Sequence[float] = DEFAULT_OFFSETS, headings: Sequence[float] = DEFAULT_HEADINGS,
                       device: torch.device | None = None) -> tuple[Path, dict[str, float]]:
    """`drlocal analyze --policy-map` / `--compare A B` on the model folder `root`: writes the PNGs and the page into
    `out_dir`; returns (page, timings [s] of load / render / policy / plot)."""
    from drlocal.learn.agent import pick_device
    from drlocal.store.local import ModelStore

    device = device or pick_device()
    t0 = time.perf_counter()
    grid = pose_grid(track, reverse=reverse, stride=stride, offsets=offsets, headings=headings)
    store = ModelStore(root)
    which = list(compare) if compare else [checkpoint]
    policies = [load_map_policy(store, w, device) for w in which]
    t1 = time.perf_counter()
    maps = compute_policy_maps(policies, track, grid, world=world, device=device)
    t2 = time.perf_counter()
    render = maps[0].seconds["render"]
    timings = {"load": t1 - t0, "render": render, "policy": t2 - t1 - render}
    model = root.name
    if compare:
        page = write_compare(out_dir, compare_maps(maps[0], maps[1]), track, model=model, timings=timings)
    else:
        page = write_policy_map(out_dir, maps[0], track, model=model, timings=timings)
    timings["plot"] = time.perf_counter() - t2
    return page, timings


def cli_policy_map(console: Any, store: Any, prefix: str, run: Any, out: Path | None, *, checkpoint: str | None,
                   compare: Sequence[str] | None, offsets: str, headings: str, stride: int) -> Path:
    """`drlocal analyze --policy-map | --compare K1 K2` for the bucket `store` (a StoreChoice): pull the prefix's
    checkpoints, write the page into `out` (default <model folder>/report/) and print where it is."""
    from drlocal.analysis.report import read_params_yaml
    from drlocal.store.local import ModelStore
    from drlocal.tracks import load_track

    if compare and checkpoint is not None:
        raise DrlocalError("--checkpoint and --compare both name checkpoints.",
                           hint="give --checkpoint K for one map, or --compare K1 K2 for the difference of two.")
    offs = parse_floats(offsets, "--offsets", "metres")
    heads = parse_floats(headings, "--headings", "degrees")
    root = store.pull(prefix, ["model/*", "training_params*.yaml"])
    if not ModelStore(root).checkpoints():
        have = sorted(p.parent.name for p in store.local_root.glob("*/model") if ModelStore(p.parent).checkpoints()) \
            if store.local_root.is_dir() else []
        raise DrlocalError(
            f"no model {prefix!r} in {store.url(prefix)}: no checkpoints to map.",
            hint=("train it first (drlocal train), or pass --prefix with one of: " + ", ".join(have[:8])) if have
            else "train a model first (drlocal train), or pass --prefix with the name of one in the bucket.")
    params = read_params_yaml(root / "training_params.yaml")
    world = params.get("WORLD_NAME") or run.world_name
    reverse = params.get("REVERSE_DIR", "False").strip().lower() == "true"
    target = out if out is not None else root / "report"
    if target.exists() and not target.is_dir():
        raise DrlocalError(f"--out {target} is a file.", hint="give a folder for the policy map.")
    page, t = policy_map_command(root, target, load_track(world), world=world, reverse=reverse,
                                 checkpoint=checkpoint or "best", compare=compare, stride=stride, offsets=offs,
                                 headings=heads)
    console.print(f"policy map: {page} ({sum(t.values()):.1f} s: " + ", ".join(f"{k} {v:.1f}" for k, v in t.items())
                  + ")", highlight=False)
    return page
