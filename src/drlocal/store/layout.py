"""Where things are in a model folder, for readers that must stay light (no torch): the CLI's argument checks,
the report, replays. Hand-written: these are DRfC's folder names."""

from __future__ import annotations

from pathlib import Path


def training_simtrace_dir(root: Path) -> Path:
    """Where a model folder's training simtraces are: `training-simtrace/` (one worker) or, for a DRfC multi-worker
    run, worker 0's `0/training-simtrace/` (its episodes are on the run's own track; the other workers' are in
    `1/`, `2/`, ... and deepracer-utils reads them all)."""
    single = root / "training-simtrace"
    first = root / "0" / "training-simtrace"
    return first if not single.is_dir() and first.is_dir() else single
