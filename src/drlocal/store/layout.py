"""Where things are in a model folder, for readers that must stay light (no torch): the CLI's argument checks,
the report, replays. Hand-written: these are DRfC's folder names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def training_simtrace_dir(root: Path) -> Path:
    """Where a model folder's training simtraces are: `training-simtrace/` (one worker) or, for a DRfC multi-worker
    run, worker 0's `0/training-simtrace/` (its episodes are on the run's own track; the other workers' are in
    `1/`, `2/`, ... and deepracer-utils reads them all)."""
    single = root / "training-simtrace"
    first = root / "0" / "training-simtrace"
    return first if not single.is_dir() and first.is_dir() else single


def prefixes_holding(bucket_root: Path, holds: Callable[[Path], bool], limit: int = 8) -> list[str]:
    """Names of the model prefixes (sub-folders) of a local bucket folder for which `holds(folder)` is true,
    sorted, at most `limit` and then "…": the list an error's hint shows ("models here: …"). An unreadable
    or missing folder gives [] (the hint is optional; the error it decorates is the message)."""
    try:
        names = sorted(p.name for p in Path(bucket_root).iterdir() if p.is_dir() and holds(p))
    except OSError:
        return []
    return names[:limit] + (["…"] if len(names) > limit else [])
