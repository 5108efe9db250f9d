"""Batched DeepRacer car dynamics: N cars advanced one simulator step at a time.

Hand-written because it is DeepRacer-specific: it stands in for the Gazebo physics of the
`deepracer_kinematics` car (contract §4). Every array has the car axis first, shape (N,).
Units: metres, seconds, radians (degrees only at the action interface, as DeepRacer).

Model
-----
The state of a car is its base_link pose (x, y, yaw), its forward speed ``u`` and its
front-hinge angle ``δ``. Within one simulator step the action (speed command ``c`` clipped to
[0.1, 4] m/s, steering command ``δc`` clipped to ±30°) is held and the equations below are
integrated with ``substeps`` equal sub-steps of length ``h``:

* speed (wheel-velocity controller + tyre friction)::

      u ← c·g + (u − c·g)·exp(−h/τ_v),  with the change per sub-step clipped to
      [−a_brake·h, +a_max·h]

  A first-order response towards the commanded wheel speed, limited by the friction-bound
  acceleration. The traces show both regimes: from rest the car gains ≈0.22 m/s per step
  whatever the command (1 or 2 m/s), i.e. a constant ≈3.2 m/s²; near the target the error
  shrinks by ≈0.67 per step (τ_v ≈ 0.17 s). No transport delay is visible.
* steering (hinge position controller, P=1, D=0.5: a heavily damped first-order joint)::

      δ ← δc + (δ − δc)·exp(−h/τ_δ),  τ_δ ≈ 0.5 s (≈ D/P of the Gazebo PID)

  This is why yaw answers "about one step later" and keeps building for ~10 steps.
* path curvature of the rear axle (all four wheels are driven at the same angular
  velocity, so a turn makes them scrub; the car turns much wider than the kinematic
  bicycle)::

      κ_s = κ_max·tanh((g_κ·tan δ / L + κ_0) / κ_max)

  Linear for small angles with gain g_κ < 1, saturating at κ_max (≈ 0.55 m turning radius
  at most). κ_0 is a small left-turning drift seen in the traces.
* grip: the lateral acceleration u²κ may not leave the friction circle of a μ = 0.5 point
  mass, ``u²|κ| ≤ sqrt((μg)² − a_long²)``; a car asked to turn harder understeers (its
  curvature is capped), so at speed it runs wide and can leave the track.
* rigid-body kinematics: yaw rate ``r = u·κ``; the point with no sideways velocity is the rear
  axle, a distance ``l_r`` behind base_link, so base_link slides sideways at ``w = r·l_r``
  (the slip angle β = atan(l_r·κ) of a kinematic bicycle referenced at base_link)::

      ẋ = u·cos ψ − w·sin ψ,   ẏ = u·sin ψ + w·cos ψ,   ψ̇ = r

  integrated with the mid-point heading of each sub-step.

Parameters (``CarParams``), fitted values and where they come from
------------------------------------------------------------------
==================  ==========  ====================================================================
field               value       meaning [unit], source
==================  ==========  ====================================================================
wheelbase           0.16397     L, rear axle to front hinges [m]; URDF
rear_axle_offset    0.0817      l_r, rear axle behind base_link [m]; URDF (the fit gives 0.078)
mu                  0.5         tyre friction coefficient [-]; Gazebo wheel contacts
gravity             9.81        [m/s²]
speed_gain          1.015       steady speed / commanded speed [-]; fit
speed_tau           0.167       τ_v, speed response time constant [s]; fit
max_accel           3.25        a_max, acceleration limit [m/s²]; fit (from-rest ramps)
max_decel           4.905       a_brake, braking limit [m/s²]; fit ran into the μg bound, kept at μg
steer_tau           0.50        τ_δ, hinge time constant [s]; fit
curvature_gain      0.76        g_κ, small-angle curvature / kinematic curvature [-]; fit
max_curvature       1.81        κ_max, saturation curvature of the rear axle path [1/m]; fit
curvature_bias      0.089       κ_0, curvature at zero steering (left drift) [1/m]; fit
substeps            4           integration sub-steps per simulator step [-]
==================  ==========  ====================================================================

The "fit" values minimise the one-step prediction error of `benchmarks/dynamics_fit.py`
(front point and yaw, mean absolute) over the 20 AWS-console iterations of
``console-2022-reinvent_base`` that are *not* copied into ``tests/data`` (≈31 000
transitions); the 8 copied iterations are held out and are what the benchmark reports on:
median one-step front-point error ≈ 5 mm with the nominal 1/15 s step. Hidden states (u, δ)
are obtained by running this model on the logged commands from the start of the episode,
which predicted better than correcting them from the measured displacement.

What limits the fit:

* the logged ``tstamp`` is not the physics step: its differences have lag-1
  autocorrelation −0.50 and do not correlate with the displacement, i.e. they are a regular
  1/15 s clock plus ≈5.6 ms of read-out noise. Using them as dt *adds* error (median
  7.7 mm instead of 5.1 mm), so the fit uses 1/15 s.
* the poses themselves are sampled with a few ms of timing jitter (consecutive
  displacements anti-correlate), a floor of ≈3–4 mm on any one-step prediction;
* the wheel-velocity and hinge controller states are not logged and must be
  reconstructed from the commands;
* the runs only command 1 and 2 m/s and the steering set {0, ±10, ±20, ±30}°, so the
  grip limit (lateral acceleration up to μg) and behaviour above 2 m/s are physical bounds,
  not fitted; the saturation shape (tanh) is an assumption constrained mostly by ±30°;
* κ_0 (left drift, ≈ 11 m radius) is clearly present in these traces (yaw-rate regression
  intercept 0.07–0.14 1/m, also with separate left/right gains) but comes from one car on
  one counter-clockwise track; set it to 0 for a perfectly symmetric car.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

#: DeepRacer's point 0.14 m ahead of base_link used for x/y/progress (contract §2) [m].
FRONT_POINT_OFFSET = 0.14
#: Wheel centres relative to base_link, (4, 2) [m]: rear-left, rear-right, front-left,
#: front-right, from the URDF joint origins (contract §4.3).
WHEEL_OFFSETS = np.array(
    [
        [-0.081663, 0.08105],
        [-0.081663, -0.08105],
        [0.082311, 0.079601],
        [0.082311, -0.079601],
    ]
)
#: One simulator step is one camera frame at 15 Hz of sim time [s].
STEP_SECONDS = 1.0 / 15.0
#: Actuation limits of the simapp (contract §4.1).
MIN_SPEED = 0.1  # [m/s]
MAX_SPEED = 4.0  # [m/s]
MAX_STEER_DEG = 30.0  # [deg]


@dataclass(frozen=True)
class CarParams:
    """Physical constants of the simulated car; the module docstring gives the model and the fit."""

    wheelbase: float = 0.16397  # [m] L, rear axle to front hinges (URDF)
    rear_axle_offset: float = 0.0817  # [m] l_r, rear axle behind base_link (URDF)
    mu: float = 0.5  # [-] tyre friction coefficient of the Gazebo wheel contacts
    gravity: float = 9.81  # [m/s²]
    speed_gain: float = 1.015  # [-] steady ground speed per commanded speed (fit)
    speed_tau: float = 0.167  # [s] time constant of the speed response (fit)
    max_accel: float = 3.25  # [m/s²] friction-limited acceleration (fit)
    max_decel: float = 4.905  # [m/s²] braking limit (fit hit μ·g, kept there)
    steer_tau: float = 0.50  # [s] time constant of the hinge position controller (fit)
    curvature_gain: float = 0.76  # [-] small-angle curvature / kinematic tan(δ)/L (fit)
    max_curvature: float = 1.81  # [1/m] saturation curvature of the wheel-scrubbing car (fit)
    curvature_bias: float = 0.089  # [1/m] curvature at zero steering, left drift (fit)
    substeps: int = 4  # integration sub-steps per simulator step

    @property
    def max_lateral_accel(self) -> float:
        """Grip limit on u²·κ [m/s²]: a μ = 0.5 point mass."""
        return self.mu * self.gravity

    def curvature(self, steer: np.ndarray) -> np.ndarray:
        """Rear-axle path curvature [1/m] at hinge angle `steer` [rad], before the grip limit."""
        k_kin = self.curvature_gain * np.tan(steer) / self.wheelbase + self.curvature_bias
        return self.max_curvature * np.tanh(k_kin / self.max_curvature)


@dataclass
class CarState:
    """State of N cars; every field has shape (N,)."""

    x: np.ndarray  # base_link x [m]
    y: np.ndarray  # base_link y [m]
    yaw: np.ndarray  # heading of base_link [rad], CCW from +x
    speed: np.ndarray = field(default=None)  # type: ignore[assignment]  # forward speed u [m/s]
    steer: np.ndarray = field(default=None)  # type: ignore[assignment]  # front hinge angle δ [rad]

    def __post_init__(self) -> None:
        self.x = np.asarray(self.x, dtype=np.float64)
        self.y = np.asarray(self.y, dtype=np.float64)
        self.yaw = np.asarray(self.yaw, dtype=np.float64)
        n = self.x.shape[0]
        self.speed = np.zeros(n) if self.speed is None else np.asarray(self.speed, dtype=np.float64)
        self.steer = np.zeros(n) if self.steer is None else np.asarray(self.steer, dtype=np.float64)

    @classmethod
    def at_rest(cls, x: np.ndarray, y: np.ndarray, yaw: np.ndarray) -> CarState:
        """Cars standing still at the given poses (as after a Gazebo teleport)."""
        return cls(np.array(x, dtype=np.float64), np.array(y, dtype=np.float64), np.array(yaw, dtype=np.float64))

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    def copy(self) -> CarState:
        return replace(
            self,
            x=self.x.copy(),
            y=self.y.copy(),
            yaw=self.yaw.copy(),
            speed=self.speed.copy(),
            steer=self.steer.copy(),
        )

    def place(self, mask: np.ndarray, x: np.ndarray, y: np.ndarray, yaw: np.ndarray) -> None:
        """Teleport the cars selected by boolean `mask` (N,) to poses given for those cars, at rest."""
        self.x[mask] = x
        self.y[mask] = y
        self.yaw[mask] = yaw
        self.speed[mask] = 0.0
        self.steer[mask] = 0.0

    def front_point(self) -> np.ndarray:
        """The DeepRacer 'car point' 0.14 m ahead of base_link, shape (N, 2) [m]."""
        return np.stack(
            [self.x + FRONT_POINT_OFFSET * np.cos(self.yaw), self.y + FRONT_POINT_OFFSET * np.sin(self.yaw)],
            axis=-1,
        )

    def wheel_centres(self) -> np.ndarray:
        """World positions of the four wheel centres, shape (N, 4, 2) [m] (order of WHEEL_OFFSETS)."""
        return wheel_centres(self.x, self.y, self.yaw)


def wheel_centres(x: np.ndarray, y: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Wheel centres of cars at base_link poses (x, y, yaw), each (N,); returns (N, 4, 2) [m]."""
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    ox, oy = WHEEL_OFFSETS[:, 0][None, :], WHEEL_OFFSETS[:, 1][None, :]
    return np.stack([x[:, None] + c * ox - s * oy, y[:, None] + s * ox + c * oy], axis=-1)


def clip_action(speed_cmd: np.ndarray, steer_cmd_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Actuator clipping of the simapp: speed to [0.1, 4] m/s, steering to ±30° (returned in rad)."""
    speed = np.clip(np.asarray(speed_cmd, dtype=np.float64), MIN_SPEED, MAX_SPEED)
    steer = np.deg2rad(np.clip(np.asarray(steer_cmd_deg, dtype=np.float64), -MAX_STEER_DEG, MAX_STEER_DEG))
    return speed, steer


def step(
    state: CarState,
    speed_cmd: np.ndarray,
    steer_cmd_deg: np.ndarray,
    params: CarParams = CarParams(),  # noqa: B008 - frozen dataclass, safe default
    dt: float | np.ndarray = STEP_SECONDS,
) -> CarState:
    """Advance every car by `dt` seconds (scalar or (N,)) under commanded speed [m/s] and steering [deg].

    Returns a new CarState; the input is not modified. The sub-step updates of speed and hinge
    angle are the exact solutions of their first-order laws, so the result depends little on
    `params.substeps`; the pose uses the mid-point speed, curvature and heading of each sub-step.
    """
    c_speed, c_steer = clip_action(speed_cmd, steer_cmd_deg)
    v_target = params.speed_gain * c_speed
    h = np.asarray(dt, dtype=np.float64) / params.substeps
    decay_v = np.exp(-h / params.speed_tau)
    decay_d = np.exp(-h / params.steer_tau)
    dv_lo, dv_hi = -params.max_decel * h, params.max_accel * h
    a_grip2 = params.max_lateral_accel**2
    l_r = params.rear_axle_offset
    x, y, yaw = state.x, state.y, state.yaw
    u, delta = state.speed, state.steer
    for _ in range(params.substeps):
        dv = np.clip((v_target - u) * (1.0 - decay_v), dv_lo, dv_hi)
        u_new = np.maximum(u + dv, 0.0)
        delta_new = c_steer + (delta - c_steer) * decay_d
        u_mid = 0.5 * (u + u_new)
        kappa = params.curvature(0.5 * (delta + delta_new))
        # Friction circle: what the longitudinal acceleration leaves for cornering caps u²κ.
        a_lat = np.sqrt(np.maximum(a_grip2 - (dv / h) ** 2, 0.0))
        kappa_grip = a_lat / np.maximum(u_mid * u_mid, 1e-9)
        kappa = np.clip(kappa, -kappa_grip, kappa_grip)
        r_h = u_mid * kappa * h  # yaw change over the sub-step
        yaw_mid = yaw + 0.5 * r_h
        c, s = np.cos(yaw_mid), np.sin(yaw_mid)
        fwd, side = u_mid * h, r_h * l_r  # base_link displacement, body frame
        x = x + fwd * c - side * s
        y = y + fwd * s + side * c
        yaw = yaw + r_h
        u, delta = u_new, delta_new
    yaw = (yaw + np.pi) % (2 * np.pi) - np.pi
    return CarState(x, y, yaw, u, delta)
