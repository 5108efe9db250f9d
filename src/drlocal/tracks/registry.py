"""Finding route files: bundled world names or user paths, with helpful errors for typos."""

from __future__ import annotations

import difflib
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from drlocal.errors import DrlocalError, UnknownTrackError
from drlocal.tracks.track import Track

_ROUTES = "routes"


@lru_cache(maxsize=1)
def track_names() -> tuple[str, ...]:
    """World names of the bundled route files (the simapp's `bundle/routes/*.npy`), sorted."""
    folder = resources.files("drlocal.tracks") / _ROUTES
    return tuple(sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".npy")))


def _closest_names(name: str, n: int = 5) -> list[str]:
    names = track_names()
    lowered = {t.lower(): t for t in names}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.4)
    prefix = [t for t in names if t.lower().startswith(name.lower()[:4])] if len(name) >= 4 else []
    out = [lowered[h] for h in hits]
    out += [t for t in prefix if t not in out]
    return out[:n]


def _load_route(path: Path) -> np.ndarray:
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise DrlocalError(
            f"{path}: cannot be read as a numpy route file ({exc}).",
            hint="a route file is an .npy array of shape (N, 6): centre x,y, inner x,y, outer x,y.",
        ) from None
    return data


@lru_cache(maxsize=64)
def _load_cached(key: str) -> Track:
    path = Path(key)
    if path.suffix == ".npy" or path.exists():
        if not path.exists():
            raise UnknownTrackError(f"Track file {path} does not exist.", hint="check the path.")
        return Track.from_array(path.stem, _load_route(path), source=str(path))
    if key not in track_names():
        ci = {t.lower(): t for t in track_names()}
        if key.lower() in ci:
            key = ci[key.lower()]
        else:
            close = _closest_names(key)
            hint = (
                f"did you mean {', '.join(close)}? `drlocal tracks` lists all {len(track_names())}."
                if close
                else f"`drlocal tracks` lists all {len(track_names())} bundled tracks."
            )
            raise UnknownTrackError(f"Unknown track {key!r}.", hint=hint)
    ref = resources.files("drlocal.tracks") / _ROUTES / f"{key}.npy"
    with resources.as_file(ref) as p:
        return Track.from_array(key, _load_route(Path(p)), source=f"bundled:{key}")


def load_track(name_or_path: str | Path) -> Track:
    """Load a track by world name (`reinvent_base`, `reInvent2019_track`, …) or `.npy` path.

    Names are matched exactly first, then case-insensitively. An unknown name raises
    `UnknownTrackError` listing the closest bundled names. Tracks are immutable and cached.
    """
    return _load_cached(str(name_or_path))
