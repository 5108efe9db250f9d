"""A pure-pursuit driver: the scripted baseline that drives the simulator without a model.

Used by `drlocal demo`, by tests that need a car that laps, and by benchmarks as a yardstick.
Hand-written (tiny, DeepRacer-specific geometry); vectorised over cars.
"""

from __future__ import annotations

import numpy as np

from drlocal.sim.car import MAX_STEER_DEG, CarParams, CarState, steer_for_curvature
from drlocal.tracks.track import TrackLines

LEAD_TIME = 0.15  # [s] how far ahead the driver anticipates the slow steering hinge


def pure_pursuit_steering(
    lines: TrackLines,
    state: CarState,
    lookahead: float = 0.7,
    params: CarParams | None = None,
) -> np.ndarray:
    """Steering [deg] (N,) that aims each car at the centre-line point `lookahead` metres ahead.

    Pure pursuit on the rear axle: the arc through the target has curvature κ = 2 sin α / ld
    (α: angle to the target in the car frame). The fitted car turns wider than a kinematic
    bicycle and its hinge lags (τ ≈ 0.5 s), so the command is the steering that yields κ in
    steady state (`steer_for_curvature`), led by (δ* − δ)·τ/T to turn the hinge in time.
    """
    params = params or CarParams()
    rear_offset = 0.0817  # base_link to rear axle [m]
    rx = state.x - rear_offset * np.cos(state.yaw)
    ry = state.y - rear_offset * np.sin(state.yaw)
    s = lines.project(np.stack([state.x, state.y], axis=-1), normalized=False)
    target = lines.interpolate((s + lookahead) % lines.length if lines.is_loop else s + lookahead)
    dx, dy = target[:, 0] - rx, target[:, 1] - ry
    alpha = np.arctan2(dy, dx) - state.yaw
    ld = np.maximum(np.hypot(dx, dy), 1e-6)
    target = steer_for_curvature(2.0 * np.sin(alpha) / ld, params)
    lead = (target - np.degrees(state.steer)) * params.steer_tau / LEAD_TIME
    return np.clip(target + lead, -MAX_STEER_DEG, MAX_STEER_DEG)


def drive_laps(
    world,  # drlocal.sim.episode.World (not imported at module level to keep pursuit.py leaf-like)
    speed: float | np.ndarray,
    lookahead: float = 0.7,
    max_steps: int = 3000,
) -> list[dict]:
    """Drive every car of `world` with pure pursuit for one episode; return one summary per car.

    Each summary has `status`, `steps` (RUN steps), `lap_time` [s] (None unless the lap was
    completed), `progress` [%] and `reward` (sum over the episode).
    """
    n = world.n
    speed = np.broadcast_to(np.asarray(speed, dtype=np.float64), (n,))
    finished: list[dict | None] = [None] * n
    total = np.zeros(n)
    for _ in range(max_steps):
        lines_steer = np.zeros(n)
        for direction in (False, True):
            sel = world.reverse == direction
            if sel.any():
                lines = world.track.lines(direction)
                lines_steer[sel] = pure_pursuit_steering(lines, world.car, lookahead, world.car_params)[sel]
        r = world.step(speed, lines_steer)
        total += r.reward
        for i in np.flatnonzero(r.done):
            if finished[i] is None:
                run_steps = int(r.steps[i]) - 1  # the PREPARE step does not drive
                finished[i] = {
                    "status": str(r.status[i]),
                    "steps": run_steps,
                    "lap_time": run_steps * world.dt if r.status[i] == "lap_complete" else None,
                    "progress": float(r.progress[i]),
                    "reward": float(total[i]),
                }
        if all(f is not None for f in finished):
            break
        world.reset(r.done)
    return [f or {"status": "in_progress", "steps": max_steps, "lap_time": None, "progress": float("nan"),
                  "reward": float(total[i])} for i, f in enumerate(finished)]
