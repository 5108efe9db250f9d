"""drlocal: AWS DeepRacer training on one laptop.

Public entry points:
    load_track(name_or_path) -> Track
    reward_params(track, x, y, heading, ...) -> dict   (the reward function's `params`)
    load_reward_function(path) -> callable
    load_model(path) -> DeepRacerModel   (a model prefix, model.tar.gz or model.pb; act / action_probabilities)
"""

from drlocal import env as _env  # noqa: F401  (registers the Gymnasium id drlocal/DeepRacer-v0)
from drlocal.errors import DrlocalError, UnknownTrackError
from drlocal.sim.params import reward_params
from drlocal.sim.reward import RewardFunctionError, load_reward_function
from drlocal.tracks import Track, load_track, track_names

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """`load_model` / `DeepRacerModel` are imported on first use: they pull in torch (~1.3 s), which
    `import drlocal` for the env, tracks and reward tools does not need."""
    if name in ("load_model", "DeepRacerModel"):
        from drlocal import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'drlocal' has no attribute {name!r}")


__all__ = [
    "DeepRacerModel",
    "DrlocalError",
    "RewardFunctionError",
    "Track",
    "UnknownTrackError",
    "__version__",
    "load_model",
    "load_reward_function",
    "load_track",
    "reward_params",
    "track_names",
]
