"""DeepRacer tracks: the 127 official route files and their geometry (contract §12)."""

from drlocal.tracks.registry import load_track, track_names
from drlocal.tracks.track import Track, TrackLines

__all__ = ["Track", "TrackLines", "load_track", "track_names"]
