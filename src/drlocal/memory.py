"""Keeping a long training run's memory flat: glibc allocator settings and a trim between iterations.

A training iteration allocates and frees many medium-sized blocks (a 19 kB camera frame per car
per step, batches of a few hundred kB, the learner's minibatches) from several threads (PyTorch's
intra-op pool, the uploader). glibc then (1) raises its mmap threshold dynamically after the first
large free, so later batches come from the heap instead of mmap, and (2) gives each thread an
arena; freed heap memory stays in those arenas, fragmented, and RSS creeps up with thread timing,
not with the work (measured: the same seeded run stayed at 1.3-1.6 GB alone and grew to 2.5 GB on a
busy machine). Fixing the mmap threshold keeps large blocks in mmap (returned on free), and
`malloc_trim(0)` after every iteration hands the arenas' free pages back.

Linux/glibc only (`mallopt`/`malloc_trim` are looked up with ctypes); elsewhere these are no-ops.
Written by hand: no maintained library exposes these two calls.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import resource
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: blocks of this size and above are mmapped and returned to the OS when freed [bytes]
MMAP_THRESHOLD = 256 * 1024
TRIM_THRESHOLD = 16 * 1024 * 1024


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018 - glibc only (musl has no mallopt)
        libc.malloc_trim  # noqa: B018
        return libc
    except (OSError, AttributeError):
        return None


@functools.lru_cache(maxsize=1)
def tame_allocator() -> bool:
    """Fix glibc's mmap and trim thresholds (once per process); True when applied."""
    libc = _libc()
    if libc is None:
        return False
    ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok &= libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    return bool(ok)


def trim() -> None:
    """Return free heap pages of every arena to the OS (between iterations; ~1 ms)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def rss_mb() -> float:
    """Resident set size now [MB] (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize() / 1e6
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
