"""How much one viewer slows training: the same seeded training timed without a viewer and with one client
reading the kvs_stream MJPEG (follow camera + overlay, 480 px wide) the whole time.

Runs alternate (none, watched, none, watched, …) so drift of the machine hits both alike; the figure is the
ratio of the summed wall times. Also prints the frames the client received and the hub's render count.

    python benchmarks/viewer_overhead.py [--iterations 3] [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import httpx

from drlocal.config.workdir import init_workdir, load_job
from drlocal.learn.trainer import Trainer
from drlocal.tracks import load_track
from drlocal.view.hub import FrameHub
from drlocal.view.server import Viewer


def _client(url: str, stop: threading.Event, counts: dict) -> None:
    """Read the MJPEG stream until told to stop, counting JPEG frames."""
    with httpx.Client(timeout=None) as c, c.stream("GET", url) as r:
        for chunk in r.iter_bytes():
            counts["frames"] += chunk.count(b"\xff\xd8\xff")
            if stop.is_set():
                return


def one(iterations: int, watched: bool) -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        init_workdir(root)
        job = load_job(root, environ={})
        hub = FrameHub(load_track(job.run.world_name), world=job.run.world_name) if watched else None
        viewer = Viewer(hub, port=0) if hub is not None else None
        stop, counts = threading.Event(), {"frames": 0}
        thread = None
        if viewer is not None:
            url = viewer.start()
            thread = threading.Thread(target=_client, args=(f"{url}0/stream?topic=kvs_stream&quality=75&width=480",
                                                            stop, counts), daemon=True)
            thread.start()
        t0 = time.perf_counter()
        Trainer(job, max_iterations=iterations, seed=5, watch=hub).train()
        wall = time.perf_counter() - t0
        stop.set()
        if viewer is not None:
            viewer.stop()
        return wall, counts["frames"], hub.frames_rendered if hub is not None else 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    base = watched = 0.0
    frames = rendered = 0
    for r in range(a.repeats):
        b, _, _ = one(a.iterations, False)
        w, f, n = one(a.iterations, True)
        base, watched, frames, rendered = base + b, watched + w, frames + f, rendered + n
        print(f"repeat {r}: no viewer {b:.1f} s, watched {w:.1f} s ({f} frames received, {n} rendered)", flush=True)
    print(f"viewer_overhead iterations={a.iterations} repeats={a.repeats} base_s={base:.1f} watched_s={watched:.1f} "
          f"frames={frames} rendered={rendered} slowdown={watched / base:.3f}")


if __name__ == "__main__":
    main()
