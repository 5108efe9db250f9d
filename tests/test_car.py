"""Behaviour of the batched car model (drlocal.sim.car) against known numbers and real traces.

The trace-derived numbers come from the AWS-console Gazebo simtraces in
tests/data/reference-traces (see benchmarks/dynamics_fit.py for how they are replayed).
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from drlocal.sim import car
from drlocal.sim.car import FRONT_POINT_OFFSET, STEP_SECONDS, CarParams, CarState

H = STEP_SECONDS
P = CarParams()
ROOT = Path(__file__).resolve().parents[1]


def drive(state: CarState, speed: float, steer: float, steps: int, params: CarParams = P, dt: float = H):
    """Run `steps` simulator steps with a constant action; returns the list of states (first = input)."""
    out = [state]
    n = state.n
    for _ in range(steps):
        out.append(car.step(out[-1], np.full(n, speed), np.full(n, steer), params, dt))
    return out


def rest(n: int = 1) -> CarState:
    return CarState.at_rest(np.zeros(n), np.zeros(n), np.zeros(n))


def cruising(speed: float, n: int = 1) -> CarState:
    """Cars going straight along +x at steady `speed` [m/s] (hinge centred)."""
    return CarState(np.zeros(n), np.zeros(n), np.zeros(n), np.full(n, speed), np.zeros(n))


# --- geometry ---------------------------------------------------------------------------------


def test_front_point_and_wheel_centres_at_known_pose():
    s = CarState(np.array([1.0]), np.array([2.0]), np.array([np.pi / 2]))
    np.testing.assert_allclose(s.front_point(), [[1.0, 2.0 + FRONT_POINT_OFFSET]], atol=1e-12)
    # Rotating by +90° maps body (dx, dy) to world (-dy, dx).
    expected = [
        [1.0 - 0.08105, 2.0 - 0.081663],  # rear-left
        [1.0 + 0.08105, 2.0 - 0.081663],  # rear-right
        [1.0 - 0.079601, 2.0 + 0.082311],  # front-left
        [1.0 + 0.079601, 2.0 + 0.082311],  # front-right
    ]
    np.testing.assert_allclose(s.wheel_centres()[0], expected, atol=1e-12)
    np.testing.assert_allclose(car.wheel_centres(s.x, s.y, s.yaw), s.wheel_centres())


def test_state_defaults_copy_and_place():
    s = CarState(np.zeros(3), np.ones(3), np.zeros(3))
    assert s.n == 3
    np.testing.assert_array_equal(s.speed, 0.0)
    np.testing.assert_array_equal(s.steer, 0.0)
    moving = CarState(np.zeros(3), np.zeros(3), np.zeros(3), np.full(3, 2.0), np.full(3, 0.3))
    c = moving.copy()
    c.speed[0] = 9.0
    assert moving.speed[0] == 2.0
    mask = np.array([True, False, True])
    moving.place(mask, np.array([5.0, 6.0]), np.array([7.0, 8.0]), np.array([0.5, -0.5]))
    np.testing.assert_array_equal(moving.x, [5.0, 0.0, 6.0])
    np.testing.assert_array_equal(moving.y, [7.0, 0.0, 8.0])
    np.testing.assert_array_equal(moving.yaw, [0.5, 0.0, -0.5])
    np.testing.assert_array_equal(moving.speed, [0.0, 2.0, 0.0])
    np.testing.assert_array_equal(moving.steer, [0.0, 0.3, 0.0])


def test_clip_action():
    v, d = car.clip_action(np.array([-1.0, 0.0, 2.5, 7.0]), np.array([-90.0, -30.0, 12.0, 45.0]))
    np.testing.assert_allclose(v, [0.1, 0.1, 2.5, 4.0])
    np.testing.assert_allclose(np.rad2deg(d), [-30.0, -30.0, 12.0, 30.0])


# --- longitudinal ------------------------------------------------------------------------------


def test_acceleration_from_rest_matches_traces():
    """First steps from rest are friction-limited at max_accel whatever the command (1 or 2 m/s)."""
    for cmd in (1.0, 2.0):
        states = drive(rest(), cmd, 0.0, 5)
        fp = np.array([s.front_point()[0] for s in states])
        v_front = np.hypot(*np.diff(fp, axis=0).T) / H  # mean front-point speed per step
        # Constant acceleration from rest with no delay: first step covers a·H²/2 (the small
        # left drift of curvature_bias bends the path a little).
        assert v_front[0] == pytest.approx(0.5 * P.max_accel * H, rel=1e-3)
        # Mean of 560 episode starts in the console traces: 0.115, 0.333, 0.544 m/s.
        np.testing.assert_allclose(v_front[:3], [0.115, 0.333, 0.544], atol=0.025)


def test_reaches_commanded_speed_with_fitted_lag():
    states = drive(rest(), 1.0, 0.0, 30)
    assert states[-1].speed[0] == pytest.approx(1.0 * P.speed_gain, rel=1e-3)
    # 1 -> 2 m/s while cruising: mean front-point speed per step after the switch, averaged
    # over the console events with >= 5 steps at 1 m/s then 6 at 2 m/s (7 events, std ~0.1),
    # which were going 1.08 m/s when the command changed.
    up = drive(cruising(1.08), 2.0, 0.0, 6)
    speeds = np.array([s.speed[0] for s in up])
    assert np.all(np.diff(speeds) <= P.max_accel * H + 1e-12)
    fp = np.array([s.front_point()[0] for s in up])
    v_front = np.hypot(*np.diff(fp, axis=0).T) / H
    np.testing.assert_allclose(v_front, [1.19, 1.44, 1.56, 1.71, 1.85, 1.83], atol=0.08)
    assert drive(up[-1], 2.0, 0.0, 30)[-1].speed[0] == pytest.approx(2.0 * P.speed_gain, rel=1e-3)


def test_top_speed_and_minimum_speed_clipped():
    fast = drive(rest(), 10.0, 0.0, 60)[-1]
    four = drive(rest(), 4.0, 0.0, 60)[-1]
    assert fast.speed[0] == pytest.approx(four.speed[0])
    assert fast.speed[0] == pytest.approx(car.MAX_SPEED * P.speed_gain, rel=1e-6)
    assert fast.x[0] == pytest.approx(four.x[0])
    crawl = drive(rest(), 0.0, 0.0, 60)[-1]
    assert crawl.speed[0] == pytest.approx(car.MIN_SPEED * P.speed_gain, rel=1e-6)


def test_braking_limited_by_friction():
    states = drive(cruising(4.0), 0.1, 0.0, 3)
    dv = -np.diff([s.speed[0] for s in states])
    assert np.all(dv <= P.max_decel * H + 1e-12)
    assert dv[0] == pytest.approx(P.max_decel * H)


# --- steering and turning ----------------------------------------------------------------------


def test_steering_clipped_at_30_degrees():
    a = drive(cruising(1.0), 1.0, 90.0, 80)
    b = drive(cruising(1.0), 1.0, 30.0, 80)
    assert np.rad2deg(a[-1].steer[0]) == pytest.approx(30.0, abs=0.1)
    assert a[-1].x[0] == pytest.approx(b[-1].x[0])
    assert a[-1].yaw[0] == pytest.approx(b[-1].yaw[0])


def test_yaw_answers_about_one_step_later():
    states = drive(cruising(1.0), 1.0, 30.0, 3)
    dyaw = np.diff([s.yaw[0] for s in states])
    assert 0.0 < dyaw[0] < 0.5 * dyaw[1]


def steady_radius(params: CarParams, speed: float, steer_deg: float) -> float:
    """Radius of the circle base_link settles on, from three points of its steady path."""
    s = drive(cruising(speed), speed / params.speed_gain, steer_deg, 200, params)[-1]
    pts = []
    for _ in range(3):
        s = drive(s, speed / params.speed_gain, steer_deg, 4, params)[-1]
        pts.append((s.x[0], s.y[0]))
    (ax, ay), (bx, by), (cx, cy) = pts
    a, b, c = np.hypot(bx - cx, by - cy), np.hypot(ax - cx, ay - cy), np.hypot(ax - bx, ay - by)
    area2 = abs((bx - ax) * (cy - ay) - (by - ay) * (cx - ax))
    return a * b * c / (2.0 * area2)


def test_low_speed_turning_radius_is_kinematic_bicycle():
    """With the scrub model switched off the car is a kinematic bicycle referenced at base_link."""
    kin = replace(P, curvature_gain=1.0, max_curvature=1e6, curvature_bias=0.0)
    for deg in (10.0, 20.0, 30.0):
        r_rear = P.wheelbase / np.tan(np.deg2rad(deg))
        expected = np.hypot(r_rear, P.rear_axle_offset)  # base_link sits l_r ahead of the rear axle
        assert steady_radius(kin, 0.3, deg) == pytest.approx(expected, rel=0.02)


def test_low_speed_turning_radius_of_fitted_car():
    """The fitted car follows its own curvature law (no grip limit at 0.3 m/s)."""
    for deg in (-30.0, -10.0, 10.0, 30.0):
        kappa = float(P.curvature(np.deg2rad(deg)))
        expected = np.hypot(1.0 / kappa, P.rear_axle_offset)
        assert steady_radius(P, 0.3, deg) == pytest.approx(expected, rel=0.02)
    # Much wider than the kinematic 0.28 m at full lock, as the traces show.
    assert steady_radius(P, 0.3, 30.0) > 0.5


def test_steer_for_curvature_inverts_the_curvature_law():
    kappa = np.array([-1.5, -0.5, 0.0, 0.3, 1.2])
    deg = car.steer_for_curvature(kappa, P)
    np.testing.assert_allclose(P.curvature(np.deg2rad(deg)), kappa, atol=1e-9)
    # Beyond what full lock gives, the answer is full lock.
    np.testing.assert_allclose(car.steer_for_curvature(np.array([-3.0, 3.0]), P), [-30.0, 30.0])


def test_full_lock_response_matches_traces():
    """+30° held from straight at ~1.1 m/s: mean curvature of the traces after 3/6/9 steps.

    Console traces (27 such events): 0.65, 1.09, 1.30 1/m after 3, 6, 9 steps.
    """
    states = drive(cruising(1.1), 1.1 / P.speed_gain, 30.0, 9)
    yaw = np.array([s.yaw[0] for s in states])
    xy = np.array([(s.x[0], s.y[0]) for s in states])
    curv = np.diff(yaw) / np.hypot(*np.diff(xy, axis=0).T)
    np.testing.assert_allclose(curv[[2, 5, 8]], [0.65, 1.09, 1.30], atol=0.15)


def test_lateral_acceleration_never_exceeds_grip_at_4mps():
    mu_g = P.max_lateral_accel
    for steer in (30.0, -30.0):
        dt = 0.01  # fine steps so that finite differences measure the acceleration
        states = drive(cruising(4.0), 4.0, steer, 300, dt=dt)
        yaw = np.unwrap([s.yaw[0] for s in states])
        xy = np.array([(s.x[0], s.y[0]) for s in states])
        v = np.hypot(*np.diff(xy, axis=0).T) / dt
        r = np.diff(yaw) / dt
        a_lat = np.abs(v * r)
        assert a_lat.max() <= mu_g * 1.01
        assert a_lat[-50:].min() >= 0.95 * mu_g  # turns as hard as grip allows: understeer
    # Braking while turning: the friction circle holds.
    states = drive(cruising(4.0), 0.1, 30.0, 150, dt=0.01)
    u = np.array([s.speed[0] for s in states])
    yaw = np.array([s.yaw[0] for s in states])
    a_long = np.diff(u) / 0.01
    a_lat = 0.5 * (u[1:] + u[:-1]) * np.diff(yaw) / 0.01
    assert np.hypot(a_long, a_lat).max() <= mu_g * 1.01


def test_no_faster_than_point_mass_in_a_corner():
    """At 4 m/s with full lock the path radius is at least v²/(μg) (3.3 m), not the 0.28 m of the geometry."""
    radius = steady_radius(P, 4.0 * P.speed_gain, 30.0)
    assert radius >= (4.0 * P.speed_gain) ** 2 / P.max_lateral_accel * 0.99


# --- batching ----------------------------------------------------------------------------------


def test_batched_step_equals_single_steps():
    rng = np.random.default_rng(7)
    n = 9
    s = CarState(
        rng.uniform(-5, 5, n), rng.uniform(-5, 5, n), rng.uniform(-np.pi, np.pi, n),
        rng.uniform(0, 4, n), rng.uniform(-0.5, 0.5, n),
    )  # fmt: skip
    v = rng.uniform(-1, 5, n)
    d = rng.uniform(-40, 40, n)
    dt = rng.uniform(0.035, 0.093, n)
    batch = car.step(s, v, d, P, dt)
    for i in range(n):
        one = CarState(s.x[i : i + 1], s.y[i : i + 1], s.yaw[i : i + 1], s.speed[i : i + 1], s.steer[i : i + 1])
        single = car.step(one, v[i : i + 1], d[i : i + 1], P, float(dt[i]))
        for f in ("x", "y", "yaw", "speed", "steer"):
            assert getattr(batch, f)[i] == pytest.approx(getattr(single, f)[0], abs=1e-12)
    # The input state is untouched.
    assert s.speed.shape == (n,) and batch is not s


def test_substeps_change_little():
    states = [drive(cruising(2.0), 2.0, 20.0, 15, replace(P, substeps=k))[-1] for k in (2, 4, 16)]
    for s in states[:2]:
        assert np.hypot(s.x[0] - states[2].x[0], s.y[0] - states[2].y[0]) < 0.01


# --- real traces -------------------------------------------------------------------------------


def _benchmark():
    spec = importlib.util.spec_from_file_location("dynamics_fit", ROOT / "benchmarks" / "dynamics_fit.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def traces():
    bench = _benchmark()
    files = bench.iteration_files(bench.HELD_OUT)
    assert len(files) >= 6
    return bench, bench.load_traces(files)


def test_time_stamps_are_a_regular_clock_plus_noise(traces):
    """Why the nominal step is the better dt: logged dt differences anti-correlate at lag 1."""
    _, tr = traces
    dt = np.diff(tr.tstamp, axis=1)
    ok = np.isfinite(dt[:, 1:-1]) & np.isfinite(dt[:, 2:])
    a, b = dt[:, 1:-1][ok], dt[:, 2:][ok]
    assert np.corrcoef(a, b)[0, 1] == pytest.approx(-0.5, abs=0.1)
    assert np.nanmedian(dt) == pytest.approx(STEP_SECONDS, abs=0.002)


@pytest.mark.parametrize(("dt_mode", "bound_m"), [("nominal", 0.0066), ("logged", 0.0100)])
def test_one_step_error_on_traces(traces, dt_mode, bound_m):
    """Measured: 5.08 mm (nominal dt), 7.66 mm (logged dt) median; the bounds are ×1.3."""
    bench, tr = traces
    model, base, n = bench.evaluate(tr, P, dt_mode)
    assert n > 10000
    assert model["pos_median"] < bound_m
    assert model["pos_median"] < 0.6 * base["pos_median"]
    assert model["yaw_median"] < 0.75 * base["yaw_median"]
