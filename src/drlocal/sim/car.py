"""Batched DeepRacer car dynamics: N cars advanced one simulator step at a time.

Hand-written because it is DeepRacer-specific: it stands in for the Gazebo physics of the
`deepracer_kinematics` car (contract §4). Every array has the car axis first, shape (N,).

The model is a kinematic bicycle (wheelbase 0.164 m, both front wheels at the same angle)
with three effects the real traces show (contract §4.2):

* speed lag: the wheel-velocity controller reaches the commanded speed with a first-order
  response, and the chassis acceleration is limited by tyre friction;
* steering lag: the hinge position controller turns the wheels towards the command at a
  finite rate, so yaw answers about one step after the command;
* finite grip: lateral acceleration v²·κ cannot exceed μ·g (μ = 0.5 in the Gazebo wheel
  contacts), so a car asked to turn harder than that at speed understeers.

Units: metres, seconds, radians (degrees only at the action interface, as DeepRacer).
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
    """Physical constants of the simulated car; see module docstring for the model."""

    wheelbase: float = 0.16397  # [m] rear axle to front hinges (URDF)
    mu: float = 0.5  # [-] tyre friction coefficient of the Gazebo wheel contacts
    gravity: float = 9.81  # [m/s²]
    speed_tau: float = 0.08  # [s] time constant of the wheel-speed response
    max_accel: float = 3.6  # [m/s²] friction-limited longitudinal acceleration
    max_decel: float = 4.9  # [m/s²] braking limit (μ·g)
    steer_rate: float = 8.0  # [rad/s] hinge slew rate
    substeps: int = 4  # integration substeps per simulator step

    @property
    def max_lateral_accel(self) -> float:
        """Grip limit on v²·κ [m/s²]."""
        return self.mu * self.gravity


@dataclass
class CarState:
    """State of N cars; every field has shape (N,)."""

    x: np.ndarray  # base_link x [m]
    y: np.ndarray  # base_link y [m]
    yaw: np.ndarray  # heading of base_link [rad], CCW from +x
    speed: np.ndarray = field(default=None)  # type: ignore[assignment]  # forward speed [m/s]
    steer: np.ndarray = field(default=None)  # type: ignore[assignment]  # front wheel angle [rad]

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
            self, x=self.x.copy(), y=self.y.copy(), yaw=self.yaw.copy(),
            speed=self.speed.copy(), steer=self.steer.copy(),
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
    params: CarParams = CarParams(),
    dt: float | np.ndarray = STEP_SECONDS,
) -> CarState:
    """Advance every car by `dt` seconds under commanded speed [m/s] and steering [deg], each (N,).

    Returns a new CarState; the input is not modified.
    """
    v_target, delta_target = clip_action(speed_cmd, steer_cmd_deg)
    out = state.copy()
    h = np.asarray(dt, dtype=np.float64) / params.substeps
    a_lat_max = params.max_lateral_accel
    for _ in range(params.substeps):
        # Speed: first-order response towards the wheel speed, friction-limited.
        accel = (v_target - out.speed) / params.speed_tau
        accel = np.clip(accel, -params.max_decel, params.max_accel)
        out.speed = np.maximum(out.speed + accel * h, 0.0)
        # Steering: the hinge slews towards its target.
        max_dd = params.steer_rate * h
        out.steer = out.steer + np.clip(delta_target - out.steer, -max_dd, max_dd)
        # Curvature of the kinematic bicycle, capped by the grip limit (understeer).
        kappa = np.tan(out.steer) / params.wheelbase
        kappa_grip = a_lat_max / np.maximum(out.speed, 1e-6) ** 2
        kappa = np.clip(kappa, -kappa_grip, kappa_grip)
        yaw_mid = out.yaw + 0.5 * out.speed * kappa * h
        out.x = out.x + out.speed * np.cos(yaw_mid) * h
        out.y = out.y + out.speed * np.sin(yaw_mid) * h
        out.yaw = out.yaw + out.speed * kappa * h
    out.yaw = (out.yaw + np.pi) % (2 * np.pi) - np.pi
    return out
