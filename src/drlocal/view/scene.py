"""What one frame for people shows: the bodies on the track and the numbers of the overlay.

The viewer, the evaluation MP4s and replays all draw from these two small records, so the simulator side
only has to fill them (cheap: a few floats per car) and the drawing side never reads simulator internals.
Arrays have the body axis first; positions are world metres, yaw radians (counter-clockwise from +x).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: The simapp's car colours (`markov/rollout_constants.py::COLOR_MAP`, RGBA 0-1) as 8-bit RGB; DR_CAR_COLOR picks one.
CAR_COLORS: dict[str, tuple[int, int, int]] = {
    "Black": (26, 26, 26),
    "Grey": (135, 149, 150),
    "Blue": (68, 95, 229),
    "Red": (224, 26, 37),
    "Orange": (255, 160, 10),
    "White": (255, 255, 255),
    "Purple": (156, 42, 195),
}
#: Colour of the other DeepRacer-shaped cars (bots, an opponent without a colour): the simapp's bots are blue-grey.
BOT_COLOR = CAR_COLORS["Blue"]
#: Obstacle boxes (the simapp's `box_obstacle` is a white/grey box).
BOX_COLOR = (235, 235, 235)


def car_color(name: str | None) -> tuple[int, int, int]:
    """DR_CAR_COLOR → RGB; unknown or empty names fall back to DRfC's template default (Red)."""
    return CAR_COLORS.get((name or "Red").strip().capitalize(), CAR_COLORS["Red"])


@dataclass
class Scene:
    """Every body one frame shows.

    xy: (M, 2) float64 centre of each body's footprint [m]; yaw: (M,) heading [rad];
    kinds: M strings, "car" (drawn DeepRacer-shaped, 0.32 × 0.20 m) or "box" (an obstacle: Gazebo's 0.4 × 0.3 × 0.25 m
    box_obstacle model; its collision footprint in the simulator is 0.5 × 0.4 m);
    colors: (M, 3) uint8 RGB of the car's shell / the box; ego: the body the follow and in-car cameras ride.
    """

    xy: np.ndarray
    yaw: np.ndarray
    kinds: tuple[str, ...]
    colors: np.ndarray
    ego: int = 0

    @classmethod
    def single(cls, x: float, y: float, yaw: float, color: tuple[int, int, int] = CAR_COLORS["Red"]) -> Scene:
        """A scene with one car only (time trial)."""
        return cls(np.array([[x, y]], float), np.array([yaw], float), ("car",), np.array([color], np.uint8))


@dataclass
class OverlayData:
    """The numbers the simapp's overlays print (`VideoMetrics.msg`), for one car at one step.

    Times in seconds (None = no lap yet, drawn `--:--.---`), speeds in m/s, steering in degrees, progress in %.
    `speed` is *measured* (distance between the last two steps / sim-time delta), as the simapp's video metrics.
    """

    phase: str = "Training"  # the simapp's label: Initializing, Heatup, Training, Evaluating, Idle, Waiting, Unknown
    name: str = ""  # DR_DISPLAY_NAME (cut to 15 characters when drawn)
    race_type: str = "TIME_TRIAL"
    steering: float = 0.0
    throttle: float = 0.0
    speed: float = 0.0
    progress: float = 0.0
    best_lap: float | None = None
    last_lap: float | None = None
    lap: int = 1  # the lap being driven, 1-based
    laps: int = 1  # number of trials / laps of the evaluation
    race_time: float = 0.0  # total evaluation time, accumulated over laps (sim time, penalty pauses count)
    resets: int = 0
    done: bool = False  # draw the completion banner
    extra: bool = False  # DR_ENABLE_EXTRA_KVS_OVERLAY: the extra band / extra lines
    minimap_xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # (M, 2) bodies on the minimap [m]
    minimap_colors: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.uint8))  # (M, 3) RGB
