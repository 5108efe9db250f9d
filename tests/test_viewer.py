"""The live viewer's web server (`drlocal.view.server`), over real HTTP on a loopback port.

The server is what DRfC users point bookmarks and DOTS-style pages at, so these tests pin its URL contract (paths,
topics, query parameters, MJPEG framing), its limits (6 streams, frame rate, sizes) and that it never serves anything
but what it generates. `FakeSource` stands in for the trainer's frame producer only; the server is the real one.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image

from drlocal.view.server import CAMERAS, MAX_STREAMS, Viewer

BOUNDARY = b"--boundarydonotcross\r\n"


class FakeSource:
    """A frame producer that needs no simulator: frames change with time, each worker and camera looks different.

    version() moves `fps` times a second; the header's iteration every `iteration_s`; worker "3" has no sub_camera
    frame yet (None); workers in `slow` take 1.5 s per frame, those in `broken` raise; `header_error` makes the
    header raise; replays exist for iteration 1, episodes 0-3 (20 frames),
    iteration 2 refuses at once, anything else refuses lazily (a generator that raises), as real replays may.
    """

    def __init__(self, n_robots: int = 4, *, slow: tuple[str, ...] = (), broken: tuple[str, ...] = (),
                 fps: float = 30.0, iteration_s: float = 0.5):
        self._robots = [str(i) for i in range(n_robots)] + list(slow) + list(broken)
        self.slow = set(slow)
        self.broken = set(broken)
        self.header_error = False
        self.fps = fps
        self.iteration_s = iteration_s
        self.t0 = time.monotonic()
        self.replay_calls: list[tuple] = []
        self._yy, self._xx = np.mgrid[0:480, 0:640]

    def robots(self) -> list[str]:
        return list(self._robots)

    def version(self) -> int:
        return int((time.monotonic() - self.t0) * self.fps) if self.fps > 0 else 7

    def _picture(self, robot: str, camera: str, tick: int, size: tuple[int, int] = (640, 480)) -> np.ndarray:
        w, h = size
        idx = self._robots.index(robot)
        cam = list(CAMERAS).index(camera)
        img = np.zeros((h, w, 3), np.uint8)
        img[..., 0] = (np.arange(w) * 255 // max(1, w - 1))[None, :]  # a horizontal ramp
        img[..., 1] = 40 + 50 * (idx % 4)
        img[..., 2] = 60 + 45 * cam
        x = (tick * w // 40) % (w - w // 8)
        img[h // 3 : h // 3 + h // 6, x : x + w // 8] = 255  # a white block that moves with time
        return img

    def frame(self, robot: str, camera: str) -> np.ndarray | None:
        if robot not in self._robots:
            raise KeyError(robot)
        if robot in self.slow:
            time.sleep(1.5)
        if robot in self.broken:
            raise RuntimeError("the simulator fell over")
        if robot == "3" and camera == "sub_camera":
            return None
        size = (160, 120) if camera == "camera" else (640, 480)  # the in-car camera is small, as in the simapp
        return self._picture(robot, camera, self.version(), size)

    def header(self) -> dict:
        if self.header_error:
            raise OSError("deepracer_checkpoints.json is being written")
        elapsed = time.monotonic() - self.t0
        iteration = int(elapsed / self.iteration_s)
        return {
            "title": "fake-run",
            "phase": "Training",
            "iteration": iteration,
            "episodes": 20 * iteration + 3,
            "checkpoint": max(0, iteration - 1),
            "best_checkpoint": max(0, iteration - 2),
            "steps_per_s": 812.4,
            "shares": {"simulation": 0.62, "learner": 0.38},
            "elapsed_s": elapsed,
            "rtf": float("nan"),  # must reach the page as null, not break the JSON
            "workers": np.int64(len(self._robots)),
        }

    def replay(self, iteration: int, episode: int, camera: str, ghost: bool) -> Iterator[np.ndarray]:
        self.replay_calls.append((iteration, episode, camera, ghost))
        if iteration == 2:
            raise LookupError("iteration 2 has no simtrace")
        return self._replay(iteration, episode, camera)

    def _replay(self, iteration: int, episode: int, camera: str) -> Iterator[np.ndarray]:
        if iteration != 1 or not 0 <= episode < 4:
            raise LookupError(f"episode {episode} of iteration {iteration} was not recorded")
        for k in range(20):
            yield self._picture("0", camera, k)


# ---------------------------------------------------------------------------------------------- helpers


class MJPEG:
    """Reads JPEGs off a multipart/x-mixed-replace body, checking web_video_server's framing on the way."""

    def __init__(self, resp: httpx.Response) -> None:
        ctype = resp.headers["content-type"]
        assert ctype.startswith("multipart/x-mixed-replace"), ctype
        assert "boundary=boundarydonotcross" in ctype
        self.chunks = resp.iter_bytes()
        self.buf = b""

    def _next(self) -> bytes | None:
        while True:
            buf = self.buf
            i = buf.find(BOUNDARY)
            j = buf.find(b"\r\n\r\n", i) if i >= 0 else -1
            if j >= 0:
                lines = buf[i + len(BOUNDARY) : j].decode("ascii").split("\r\n")
                headers = dict(line.split(": ", 1) for line in lines)
                assert headers["Content-Type"] == "image/jpeg"
                length = int(headers["Content-Length"])
                if len(buf) >= j + 4 + length + 2:
                    assert buf[j + 4 + length : j + 6 + length] == b"\r\n"
                    self.buf = buf[j + 6 + length :]
                    return buf[j + 4 : j + 4 + length]
            chunk = next(self.chunks, None)
            if chunk is None:
                return None
            self.buf += chunk

    def take(self, n: int) -> list[bytes]:
        """The next `n` JPEGs, fewer if the stream ends."""
        parts = []
        while len(parts) < n and (part := self._next()) is not None:
            parts.append(part)
        return parts


def mjpeg_parts(resp: httpx.Response, n: int) -> list[bytes]:
    return MJPEG(resp).take(n)


def decode(jpeg: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(jpeg))
    assert img.format == "JPEG"
    img.load()
    return img


def raw_get(port: int, target: str, limit: int = 1 << 20) -> tuple[int, bytes]:
    """GET with the request target sent byte for byte (HTTP clients normalise `..` away before sending)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode("latin-1"))
        data = b""
        with contextlib.suppress(TimeoutError):
            while len(data) < limit and (chunk := s.recv(65536)):
                data += chunk
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
    return status, data


def active_streams(client: httpx.Client) -> int:
    return client.get("/status.json").json()["streams"]["active"]


def wait_active(client: httpx.Client, n: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while (got := active_streams(client)) != n:
        assert time.monotonic() < deadline, f"{got} streams still open, expected {n}"
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def source() -> FakeSource:
    return FakeSource(4, slow=("slow",), broken=("bad",))


@pytest.fixture(scope="module")
def viewer(source: FakeSource) -> Iterator[Viewer]:
    v = Viewer(source, port=0)
    v.start()
    yield v
    v.stop()


@pytest.fixture
def client(viewer: Viewer) -> Iterator[httpx.Client]:
    """A client per test; afterwards every stream the test opened must have been let go by the server."""
    with httpx.Client(base_url=viewer.url, timeout=httpx.Timeout(10.0)) as c:
        yield c
    with httpx.Client(base_url=viewer.url, timeout=5.0) as c:
        wait_active(c, 0)


# ---------------------------------------------------------------------------------------------- the tests


def test_start_returns_loopback_url_with_real_port(viewer: Viewer) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", viewer.url)
    assert viewer.port != 0


def test_page_and_assets_keep_drfc_url_contract(client: httpx.Client) -> None:
    r = client.get("/?robo=all&camera=kvs_stream&quality=75&width=480")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for needle in ("robo-select", "camera-select", "camera-quality", "width-size", "/static/viewer.js",
                   "/static/viewer.css", "run-header", "replay-form"):
        assert needle in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    js = client.get("/static/viewer.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "Maximum amount of " in js.text and "/status.json" in js.text
    for cam, topic in CAMERAS.items():
        assert cam in js.text and topic in js.text
    css = client.get("/static/viewer.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "#500280" in css.text and "#161e2d" in css.text


@pytest.mark.parametrize(
    ("query", "size"),
    [
        ("topic=/racecar/deepracer/kvs_stream&quality=75&width=480&height=360", (480, 360)),  # what DRfC's page asks
        ("topic=kvs_stream&width=320", (320, 240)),  # width only: 4:3
        ("topic=camera&quality=90", (160, 120)),  # no size: native (the in-car camera is small)
        ("topic=/racecar/camera/zed/rgb/image_rect_color&width=640&height=480", (640, 480)),  # upscaled
        ("topic=main_camera&height=150", (200, 150)),
        ("topic=/sub_camera/zed/rgb/image_rect_color&width=200&height=100", (200, 100)),  # any aspect if both given
        ("topic=/racecar/deepracer/main_camera_stream&width=160", (160, 120)),  # the MP4 topic = kvs look
    ],
)
def test_stream_yields_changing_jpegs_of_asked_size(client: httpx.Client, query: str, size: tuple[int, int]) -> None:
    with client.stream("GET", f"/1/stream?{query}") as r:
        assert r.status_code == 200
        assert "no-cache" in r.headers["cache-control"]
        parts = mjpeg_parts(r, 4)
    assert len(parts) == 4
    images = [decode(p) for p in parts]
    assert all(img.size == size and img.mode == "RGB" for img in images)
    arrays = [np.asarray(img, dtype=np.int16) for img in images]
    assert arrays[0].std() > 10  # a picture, not a blank
    assert any(np.abs(a - arrays[0]).mean() > 1 for a in arrays[1:])  # and it moves


def test_stream_is_paced_by_max_fps(client: httpx.Client) -> None:
    """The fake publishes 30 versions a second; the stream must not send more than 15 frames a second."""
    with client.stream("GET", "/0/stream?topic=kvs_stream&width=160") as r:
        frames = MJPEG(r)
        frames.take(1)
        t0 = time.monotonic()
        parts = frames.take(10)
        dt = time.monotonic() - t0
    assert len(parts) == 10
    assert dt >= 9 / 15 * 0.9, f"10 frames in {dt:.2f} s is faster than 15 fps"


def test_unchanged_source_sends_a_keepalive_about_once_a_second() -> None:
    with Viewer(FakeSource(2, fps=0), port=0) as v, httpx.Client(base_url=v.url, timeout=10) as c:
        with c.stream("GET", "/0/stream?topic=kvs_stream&width=160") as r:
            t0 = time.monotonic()
            parts = mjpeg_parts(r, 3)
            dt = time.monotonic() - t0
        assert len(parts) == 3 and 1.6 <= dt <= 4.0, dt  # first at once, then one repeat per second


def test_snapshot_paths(client: httpx.Client) -> None:
    r = client.get("/0/snapshot?topic=/racecar/deepracer/kvs_stream")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert decode(r.content).size == (640, 480)
    r = client.get("/2/snapshot?topic=camera&width=320&quality=50")
    assert decode(r.content).size == (320, 240)
    # web_video_server's own /snapshot: the first worker unless robo= says otherwise
    first = np.asarray(decode(client.get("/snapshot?topic=main_camera").content), np.float32)
    zero = np.asarray(decode(client.get("/snapshot?topic=main_camera&robo=0").content), np.float32)
    two = np.asarray(decode(client.get("/snapshot?topic=main_camera&robo=2").content), np.float32)
    assert abs(first[..., 1].mean() - zero[..., 1].mean()) < 3  # same worker (green encodes the worker)
    assert abs(two[..., 1].mean() - zero[..., 1].mean()) > 50
    with client.stream("GET", "/stream?topic=kvs_stream&robo=1&width=160") as r:
        assert r.status_code == 200 and decode(mjpeg_parts(r, 1)[0]).size == (160, 120)


def test_no_frame_yet(client: httpx.Client) -> None:
    """Worker 3's sub_camera has nothing yet: the snapshot says so, the stream shows a placeholder card."""
    r = client.get("/3/snapshot?topic=sub_camera")
    assert r.status_code == 503 and "no frame yet" in r.text
    with client.stream("GET", "/3/stream?topic=sub_camera&width=320") as r:
        img = decode(mjpeg_parts(r, 1)[0])
    assert img.size == (320, 240) and np.asarray(img).std() > 1  # dark card with words on it


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("/0/stream?topic=/racecar/nope", 400),
        ("/0/stream?topic=", 400),
        ("/0/stream", 400),
        ("/0/stream?topic=kvs_stream&width=0", 400),
        ("/0/stream?topic=kvs_stream&width=99999", 400),
        ("/0/stream?topic=kvs_stream&width=abc", 400),
        ("/0/stream?topic=kvs_stream&height=-5", 400),
        ("/0/stream?topic=kvs_stream&quality=0", 400),
        ("/0/stream?topic=kvs_stream&quality=101", 400),
        ("/0/stream?topic=kvs_stream&quality=7.5", 400),
        ("/0/stream?topic=kvs_stream&type=vp8", 400),
        ("/0/snapshot?topic=sub_camera&width=1e9", 400),
        ("/9/stream?topic=kvs_stream", 404),
        ("/9/snapshot?topic=kvs_stream", 404),
        ("/snapshot?topic=kvs_stream&robo=9", 404),
        ("/stream?topic=kvs_stream&robo=..", 404),
        ("/replay/check", 400),
        ("/replay/check?iteration=1", 400),
        ("/replay/check?iteration=abc&episode=0", 400),
        ("/replay/check?iteration=-1&episode=0", 400),
        ("/replay/check?iteration=1&episode=0&camera=nope", 400),
        ("/replay/check?iteration=1&episode=0&ghost=maybe", 400),
        ("/replay/stream?iteration=1&episode=0&width=0", 400),
        ("/replay/check?iteration=9&episode=0", 404),
        ("/replay/stream?iteration=1&episode=7", 404),
        ("/replay/check?iteration=2&episode=0", 404),
        ("/nothing/here", 404),
    ],
)
def test_bad_requests_get_a_short_4xx(client: httpx.Client, target: str, status: int) -> None:
    with client.stream("GET", target) as r:
        body = r.read()
    assert r.status_code == status, body
    assert not r.headers.get("content-type", "").startswith("multipart")
    assert len(body) < 300 and b"Traceback" not in body and b'File "' not in body
    if target.startswith("/replay/"):  # the page shows the replay API's {"error": ...} as text
        assert isinstance(r.json()["error"], str)


def test_replay_errors_carry_the_sources_message(client: httpx.Client) -> None:
    r = client.get("/replay/check?iteration=9&episode=0&camera=kvs_stream")
    assert r.status_code == 404 and r.json() == {"error": "episode 0 of iteration 9 was not recorded"}
    r = client.get("/replay/check?iteration=2&episode=0")
    assert r.status_code == 404 and r.json() == {"error": "iteration 2 has no simtrace"}


def test_replay_check_and_stream(client: httpx.Client, source: FakeSource) -> None:
    r = client.get("/replay/check?iteration=1&episode=3&camera=/sub_camera/zed/rgb/image_rect_color&ghost=1")
    assert r.status_code == 200 and r.json()["ok"] is True
    assert source.replay_calls[-1] == (1, 3, "sub_camera", True)
    t0 = time.monotonic()
    target = "/replay/stream?iteration=1&episode=2&camera=main_camera&ghost=0&quality=60&width=320"
    with client.stream("GET", target) as r:
        assert r.status_code == 200
        parts = mjpeg_parts(r, 100)  # the stream ends with the episode
    dt = time.monotonic() - t0
    assert source.replay_calls[-1] == (1, 2, "main_camera", False)
    assert len(parts) == 20 and all(decode(p).size == (320, 240) for p in parts)
    assert 19 / 15 * 0.85 <= dt <= 10, f"20 frames in {dt:.2f} s is not 15 fps"


def test_path_traversal_never_returns_files(viewer: Viewer) -> None:
    targets = [
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "/static/../server.py",
        "/static/..%2fserver.py",
        "/static/%2e%2e/server.py",
        "/static/%2e%2e%2f%2e%2e%2fview%2fserver.py",
        "/static/",
        "/static",
        "/static/index.html/../../server.py",
        "/0/stream/../../x",
        "/0/stream/..%2f..%2fetc%2fpasswd",
        "/0/snapshot/../../../etc/passwd",
        "/view/server.py",
        "/src/drlocal/view/server.py",
        "/drlocal/view/server.py",
        "/static/viewer.js/../../../pyproject.toml",
        "//etc/passwd",
        "/static//etc/passwd",
        "/static/%00viewer.js",
        "/..%5c..%5cserver.py",
    ]
    for target in targets:
        status, data = raw_get(viewer.port, target)
        assert status in (400, 404, 405), (target, status, data[:200])
        for leak in (b"root:", b"import ", b"[project]", b"def ", b"<html"):
            assert leak not in data, (target, data[:300])


def test_seventh_stream_is_refused(client: httpx.Client) -> None:
    readers = []  # keep them referenced: a collected reader closes its connection
    with contextlib.ExitStack() as stack:
        for k in range(MAX_STREAMS):
            r = stack.enter_context(client.stream("GET", f"/{k % 4}/stream?topic=kvs_stream&width=160"))
            readers.append(MJPEG(r))
            assert r.status_code == 200 and len(readers[-1].take(1)) == 1
        assert active_streams(client) == MAX_STREAMS
        for target in ("/0/stream?topic=camera", "/stream?topic=camera"):
            with client.stream("GET", target) as r:
                assert r.status_code == 429 and b"Maximum amount of 6" in r.read()
        with client.stream("GET", "/replay/stream?iteration=1&episode=0") as r:
            assert r.status_code == 429 and b"error" in r.read()
        # snapshots and the header are not streams: still served
        assert client.get("/0/snapshot?topic=kvs_stream&width=160").status_code == 200
        assert client.get("/status.json").status_code == 200
    wait_active(client, 0)  # closing them frees the slots
    with client.stream("GET", "/0/stream?topic=camera") as r:
        assert r.status_code == 200


def test_client_vanishing_mid_stream_harms_nobody(client: httpx.Client, viewer: Viewer,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with client.stream("GET", "/1/stream?topic=kvs_stream&width=160") as r:
        other = MJPEG(r)
        other.take(1)
        for linger in (False, True):  # a polite close (FIN) and a reset (RST)
            s = socket.create_connection(("127.0.0.1", viewer.port), timeout=5)
            s.sendall(b"GET /0/stream?topic=kvs_stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            got = b""
            while got.count(b"\xff\xd9") < 2:  # two JPEGs in, then gone mid-stream
                got += s.recv(65536)
            if linger:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
            wait_active(client, 1)
        assert len(other.take(5)) == 5  # the other viewer is still served
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_slow_frame_does_not_block_other_clients(client: httpx.Client, viewer: Viewer) -> None:
    """Worker "slow" takes 1.5 s per frame; meanwhile other requests must be answered at once."""
    s = socket.create_connection(("127.0.0.1", viewer.port), timeout=5)
    try:
        s.sendall(b"GET /slow/stream?topic=kvs_stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        time.sleep(0.2)  # the slow frame is being made now
        t0 = time.monotonic()
        assert client.get("/0/snapshot?topic=kvs_stream&width=160").status_code == 200
        assert client.get("/status.json").status_code == 200
        assert time.monotonic() - t0 < 1.0
    finally:
        s.close()


def test_status_json_header(client: httpx.Client) -> None:
    first = client.get("/status.json")
    assert first.status_code == 200 and first.headers["content-type"] == "application/json"
    body = first.json()
    header = body["header"]
    for key in ("title", "phase", "iteration", "episodes", "checkpoint", "best_checkpoint", "steps_per_s",
                "shares", "elapsed_s"):
        assert key in header
    assert header["rtf"] is None and header["workers"] == 6  # NaN → null, NumPy → int
    assert body["robots"] == ["0", "1", "2", "3", "slow", "bad"]
    assert body["cameras"] == CAMERAS
    assert body["streams"] == {"active": 0, "max": MAX_STREAMS}
    time.sleep(0.6)
    assert client.get("/status.json").json()["header"]["iteration"] > header["iteration"]


def test_taken_port_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(OSError, match=rf"{port}.*DR_WEBVIEWER_PORT.*--port"):
            Viewer(FakeSource(1), port=port).start()


def test_stop_ends_streams_and_frees_the_port() -> None:
    v = Viewer(FakeSource(1), port=0)
    url = v.start()
    port = v.port
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /0/stream?topic=kvs_stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 200")
    threads = threading.active_count()
    t0 = time.monotonic()
    v.stop()
    assert time.monotonic() - t0 < 6
    assert threading.active_count() < threads
    s.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "status.json", timeout=2)
    with Viewer(FakeSource(1), port=port) as again:  # the same port can be used right away
        assert httpx.get(again.url + "status.json", timeout=5).status_code == 200


def test_failing_source_is_a_short_error_not_a_dead_server(client: httpx.Client, source: FakeSource,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    r = client.get("/bad/snapshot?topic=kvs_stream")
    assert r.status_code == 500 and r.text == "the frame source failed (RuntimeError)\n"
    with client.stream("GET", "/bad/stream?topic=kvs_stream&width=320") as r:
        assert r.status_code == 200
        card = decode(MJPEG(r).take(1)[0])  # the stream stays up and says what is wrong in the picture
    assert card.size == (320, 240)
    source.header_error = True
    try:
        r = client.get("/status.json")
        assert r.status_code == 503 and r.json() == {"error": "the run did not report its state (OSError)"}
    finally:
        source.header_error = False
    assert client.get("/status.json").status_code == 200
    assert all("Traceback" not in rec.getMessage() and rec.exc_info is None for rec in caplog.records)
    assert any("the simulator fell over" in rec.getMessage() for rec in caplog.records)


def test_head_of_a_stream_takes_no_slot(client: httpx.Client) -> None:
    r = client.head("/0/stream?topic=kvs_stream")
    assert r.status_code == 200 and r.headers["content-type"].startswith("multipart/x-mixed-replace")
    assert active_streams(client) == 0


def test_only_loopback_host_names_are_answered(viewer: Viewer) -> None:
    """DNS rebinding: a web page that re-points its own name at 127.0.0.1 sends that name as Host."""
    port = viewer.port
    for host, status in [("evil.example", 421), (f"evil.example:{port}", 421), ("127.0.0.1.nip.io", 421),
                         (f"localhost:{port}", 200), (f"127.0.0.1:{port}", 200), (f"[::1]:{port}", 200),
                         ("LOCALHOST", 200)]:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(f"GET /status.json HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            reply = s.recv(4096)
        assert reply.startswith(f"HTTP/1.1 {status} ".encode()), (host, reply[:100])
