"""drlocal: AWS DeepRacer training on one laptop.

Public entry points:
    load_track(name_or_path) -> Track
    reward_params(track, x, y, heading, ...) -> dict   (the reward function's `params`)
    load_reward_function(path) -> callable
"""

from drlocal import env as _env  # noqa: F401  (registers the Gymnasium id drlocal/DeepRacer-v0)
from drlocal.errors import DrlocalError, UnknownTrackError
from drlocal.sim.params import reward_params
from drlocal.sim.reward import RewardFunctionError, load_reward_function
from drlocal.tracks import Track, load_track, track_names

__version__ = "0.1.0"

__all__ = [
    "DrlocalError",
    "RewardFunctionError",
    "Track",
    "UnknownTrackError",
    "__version__",
    "load_reward_function",
    "load_track",
    "reward_params",
    "track_names",
]
