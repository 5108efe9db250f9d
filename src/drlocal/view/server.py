"""The live viewer: one local web page with the cars' camera streams, the run header and episode replays.

DRfC users watch training through `dr-start-viewer`: an nginx page at
`/?robo=all&camera=kvs_stream&quality=75&width=480`
with one MJPEG `<img>` per robomaker, each served by ROS `web_video_server` at `/<worker>/stream?topic=<ROS topic>`.
This module keeps that URL contract (so bookmarks and DOTS-style iframes keep working) but serves everything from
drlocal's own process: a Starlette app under uvicorn in a daemon thread, reading frames from a `FrameSource` that the
trainer fills. It serves only what it generates: the page and its two assets by fixed names, JPEG/MJPEG made from the
source's arrays, and JSON; no request ever names a file.

Why the details look the way they do:
* MJPEG, not WebSockets or WebRTC: it is what web_video_server speaks, plain `<img>` tags show it, and DOTS pages
  embed it. A stream only sends a new JPEG when the source's `version()` moved (plus a keep-alive repeat about once a
  second), at most `max_fps`, so an idle trainer costs nothing and a fast one is not slowed by viewers.
* Frames are fetched and encoded in worker threads (`anyio.to_thread`) so one slow frame or encode never stalls the
  event loop and the other clients; encodes are shared between clients asking for the same frame, size and quality.
* At most `MAX_STREAMS` (6, DRfC's page limit) streams at once, server-wide: browsers also allow only six HTTP/1.1
  connections per host, and each stream is one JPEG encode per frame on the trainer's CPU.
* Each stream watches its connection and stops as soon as the client goes away: no traceback, the slot is freed.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import logging
import math
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from importlib import resources
from typing import Any, Protocol

import anyio
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

log = logging.getLogger(__name__)

#: Camera id (DRfC's page) → ROS topic (what web_video_server was asked for). See docs/watch-analyse.md §2.1.
CAMERAS = {
    "kvs_stream": "/racecar/deepracer/kvs_stream",
    "camera": "/racecar/camera/zed/rgb/image_rect_color",
    "main_camera": "/racecar/main_camera/zed/rgb/image_rect_color",
    "sub_camera": "/sub_camera/zed/rgb/image_rect_color",
}
#: Topics that show the same picture as a camera above: the simapp's MP4 source is the kvs_stream look.
TOPIC_ALIASES = {"/racecar/deepracer/main_camera_stream": "kvs_stream"}
_TOPIC_TO_CAMERA = {topic: cam for cam, topic in CAMERAS.items()} | TOPIC_ALIASES

MAX_STREAMS = 6  # DRfC's page shows at most 6 cameras; browsers open at most 6 HTTP/1.1 connections per host
DEFAULT_QUALITY = 75  # DRfC's start.sh default
MIN_SIZE, MAX_SIZE = 16, 1920  # DRfC's width field stops at 1920; anything bigger is a typo or an attack
KEEPALIVE_S = 1.0  # repeat the last frame this often when nothing changed, so proxies and browsers keep the stream
REPLAY_FPS = 15.0  # the simapp's cameras and KVS stream run at 15 Hz
BOUNDARY = "boundarydonotcross"  # web_video_server's boundary string
_STATIC = {  # the only files served, by fixed name → media type
    "viewer.js": "text/javascript; charset=utf-8",
    "viewer.css": "text/css; charset=utf-8",
}
_SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
_NO_CACHE = {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'"
)


class FrameSource(Protocol):
    """What the viewer reads; the trainer implements it (the viewer never touches simulator internals)."""

    def robots(self) -> list[str]: ...  # stream ids (workers/cars), in order, e.g. ["0", "1", ...]

    # camera is a short id (key of CAMERAS); RGB (H, W, 3) uint8 at native size (640×480);
    # None = nothing to show yet; KeyError = unknown robot
    def frame(self, robot: str, camera: str) -> np.ndarray | None: ...

    def version(self) -> int: ...  # bumps whenever new state was published

    # JSON-able run header (keys: title, phase, iteration, episodes, checkpoint, best_checkpoint, steps_per_s,
    # shares (dict name -> fraction), elapsed_s; any may be missing)
    def header(self) -> dict: ...

    # frames of a replayed episode; raises LookupError(message) when it does not exist
    def replay(self, iteration: int, episode: int, camera: str, ghost: bool) -> Iterator[np.ndarray]: ...


class BadRequest(ValueError):
    """A query the viewer refuses; its message goes to the client as is (short, no internals)."""


class NotFound(LookupError):
    """An unknown worker; its message goes to the client as is."""


# ---------------------------------------------------------------------------------------------- query parsing


def _clip(text: str, n: int = 40) -> str:
    """User input echoed in an error message, cut short (the reply is text/plain + nosniff, so never markup)."""
    return repr(text if len(text) <= n else text[:n] + "…")


def parse_camera(value: str | None, *, name: str = "topic") -> str:
    """A full ROS topic (`/racecar/deepracer/kvs_stream`) or a short camera id (`kvs_stream`) → the short id."""
    if value is None or not value.strip():
        raise BadRequest(f"missing {name}; one of {', '.join(CAMERAS)} or their ROS topics")
    v = value.strip()
    if v in CAMERAS:
        return v
    topic = v if v.startswith("/") else "/" + v
    if topic in _TOPIC_TO_CAMERA:
        return _TOPIC_TO_CAMERA[topic]
    raise BadRequest(f"unknown {name} {_clip(value)}; one of {', '.join(CAMERAS)} or their ROS topics")


def _int_param(query: Any, name: str, lo: int, hi: int, default: int | None = None) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {_clip(raw)}") from None
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def parse_size(query: Any) -> tuple[int, int] | None:
    """width/height of the JPEGs; one given → the other from DRfC's 4:3 (height = width·3/4); none → native size."""
    w = _int_param(query, "width", MIN_SIZE, MAX_SIZE)
    h = _int_param(query, "height", MIN_SIZE, MAX_SIZE)
    if w is None and h is None:
        return None
    if h is None:
        h = max(1, round(w * 3 / 4))
    elif w is None:
        w = max(1, round(h * 4 / 3))
    return w, h


def parse_quality(query: Any) -> int:
    return _int_param(query, "quality", 1, 100, DEFAULT_QUALITY)


def _parse_type(query: Any) -> None:
    """web_video_server's `type`: only MJPEG (its default) is served here."""
    kind = query.get("type")
    if kind not in (None, "", "mjpeg"):
        raise BadRequest(f"type {_clip(kind)} is not served; only mjpeg")


def _parse_bool(query: Any, name: str) -> bool:
    raw = (query.get(name) or "0").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise BadRequest(f"{name} must be 0 or 1, got {_clip(raw)}")


# ---------------------------------------------------------------------------------------------- images


def _to_image(frame: np.ndarray) -> Image.Image:
    """The source's array → a Pillow RGB image; tolerant of grey or float frames so a producer bug shows, not kills."""
    a = np.asarray(frame)
    if a.dtype != np.uint8:
        a = np.clip(np.nan_to_num(a), 0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        return Image.fromarray(a, "L").convert("RGB")
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"frame of shape {a.shape} is not an RGB image")
    return Image.fromarray(np.ascontiguousarray(a), "RGB")


_local = threading.local()


def lower_priority() -> None:
    """Run the calling worker thread at nice +10 (Linux sets it per thread), so rendering and JPEG encoding for a
    viewer yield the cores to the training it watches; elsewhere, or when not allowed, nothing changes."""
    if getattr(_local, "niced", False):
        return
    _local.niced = True
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def encode_jpeg(frame: np.ndarray | Image.Image, size: tuple[int, int] | None, quality: int) -> bytes:
    """Resize (Pillow bilinear; the in-car 160×120 camera is scaled up smoothly) and JPEG-encode one frame."""
    lower_priority()
    img = frame if isinstance(frame, Image.Image) else _to_image(frame)
    if size is not None and img.size != size:
        img = img.resize(size, Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def placeholder(size: tuple[int, int], lines: list[str]) -> Image.Image:
    """A dark card with a few words: what a stream shows before the source has its first frame."""
    img = Image.new("RGB", size, (22, 30, 45))
    draw = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=max(10, size[1] // 16))
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        font = ImageFont.load_default()
    y = size[1] // 2 - len(lines) * (size[1] // 28)
    for line in lines:
        box = draw.textbbox((0, 0), line, font=font)
        draw.text(((size[0] - (box[2] - box[0])) // 2, y), line, fill=(200, 200, 215), font=font)
        y += (box[3] - box[1]) + size[1] // 40
    return img


def card_jpeg(size: tuple[int, int] | None, lines: list[str], quality: int) -> bytes:
    return encode_jpeg(placeholder(size or (640, 480), lines), None, quality)


def _part(jpeg: bytes) -> bytes:
    """One multipart/x-mixed-replace part, laid out as web_video_server writes it."""
    head = (
        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n"
        f"X-Timestamp: {time.time():.6f}\r\n\r\n"
    )
    return head.encode("ascii") + jpeg + b"\r\n"


def jsonable(value: Any) -> Any:
    """The source's header → strict JSON: NumPy scalars to Python, NaN/inf to null, unknown objects to str."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    return str(value)


# ---------------------------------------------------------------------------------------------- the hub


class _Hub:
    """State shared by all requests of one app: the source, the stream slots and a small encode cache."""

    def __init__(self, source: FrameSource, max_fps: float, max_streams: int = MAX_STREAMS) -> None:
        if not max_fps > 0:
            raise ValueError(f"max_fps must be > 0, got {max_fps}")
        self.source = source
        self.max_fps = float(max_fps)
        self.max_streams = max_streams
        self.active = 0  # only touched on the event loop
        self.closing = False  # set by Viewer.stop(): streams end at their next frame
        self._cache: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        if self.active >= self.max_streams:
            return False
        self.active += 1
        return True

    def release(self) -> None:
        self.active = max(0, self.active - 1)

    def robots(self) -> list[str]:
        return [str(r) for r in self.source.robots()]

    def live_jpeg(self, robot: str, camera: str, size: tuple[int, int] | None, quality: int, version: int) -> bytes:
        """The JPEG of one camera now (runs in a worker thread); raises KeyError for an unknown robot.

        Clients watching the same robot, camera, size and quality at the same version share one encode.
        """
        key = (robot, camera, size, quality, version)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        lower_priority()
        frame = self.source.frame(robot, camera)
        if frame is None:
            jpeg = card_jpeg(size, [f"Worker {robot} · {camera}", "waiting for frames…"], quality)
        else:
            jpeg = encode_jpeg(frame, size, quality)
        with self._lock:
            self._cache[key] = jpeg
            while len(self._cache) > 4 * MAX_STREAMS:
                self._cache.popitem(last=False)
        return jpeg

    async def live_parts(self, robot: str, camera: str, size: tuple[int, int] | None, quality: int
                         ) -> AsyncIterator[bytes]:
        """MJPEG parts of one camera: a new one when the source moved on (≤ max_fps), else a repeat each second."""
        period = 1.0 / self.max_fps
        last_version: int | None = None
        last_sent = -math.inf
        failures = 0
        while not self.closing:
            t0 = time.monotonic()
            pause = period
            version = self.source.version()
            if version != last_version or t0 - last_sent >= KEEPALIVE_S:
                try:
                    jpeg = await anyio.to_thread.run_sync(self.live_jpeg, robot, camera, size, quality, version)
                except KeyError:  # the robot left (a new iteration with fewer cars): end this stream
                    return
                except Exception as e:  # a producer bug: say so in the picture and in the log (once), keep trying
                    if not failures:
                        log.warning("viewer: frame of worker %s %s failed: %s: %s", robot, camera, type(e).__name__, e)
                    failures += 1
                    lines = [f"Worker {robot} · {camera}", f"frame failed: {type(e).__name__}"]
                    jpeg = await anyio.to_thread.run_sync(card_jpeg, size, lines, quality)
                    version, pause = None, KEEPALIVE_S  # try again in a second, whatever the version does
                yield _part(jpeg)
                last_version, last_sent = version, time.monotonic()
            await anyio.sleep(max(0.005, pause - (time.monotonic() - t0)))

    async def replay_parts(self, frames: Iterator[np.ndarray], first: np.ndarray, size: tuple[int, int] | None,
                           quality: int) -> AsyncIterator[bytes]:
        """MJPEG parts of a replay, paced at REPLAY_FPS in wall time; ends with the episode."""
        period = 1.0 / REPLAY_FPS
        due = time.monotonic()
        frame: np.ndarray | None = first
        try:
            while frame is not None and not self.closing:
                jpeg = await anyio.to_thread.run_sync(encode_jpeg, frame, size, quality)
                await anyio.sleep(max(0.0, due - time.monotonic()))
                yield _part(jpeg)
                due = max(due + period, time.monotonic() - period)  # never burst to catch up after a stall
                try:
                    frame = await anyio.to_thread.run_sync(next, frames, None)
                except Exception as e:  # a broken replay ends the stream; the page already shows what it got
                    log.warning("replay stopped: %s: %s", type(e).__name__, e)
                    return
        finally:
            with anyio.CancelScope(shield=True):
                await _close_iterator(frames)


async def _close_iterator(frames: Any) -> None:
    close = getattr(frames, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await anyio.to_thread.run_sync(close)


class _MJPEGResponse:
    """A multipart/x-mixed-replace response that ends quietly when the client leaves and always frees its slot.

    Starlette's StreamingResponse only notices a gone client on some ASGI versions and raises ClientDisconnect on
    others; here a second task waits for `http.disconnect` and cancels the stream, whichever server runs us.
    """

    def __init__(self, parts: AsyncIterator[bytes], release: Callable[[], None]) -> None:
        self.parts = parts
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {
            "Content-Type": f"multipart/x-mixed-replace;boundary={BOUNDARY}",
            **_NO_CACHE,
            **_SECURITY_HEADERS,
            "Connection": "close",
        }
        try:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]})
            async with anyio.create_task_group() as tg:

                async def watch() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    tg.cancel_scope.cancel()

                tg.start_soon(watch)
                with contextlib.suppress(OSError):  # a send after the peer vanished, on servers that raise
                    async for part in self.parts:
                        await send({"type": "http.response.body", "body": part, "more_body": True})
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                with contextlib.suppress(Exception):
                    await self.parts.aclose()  # type: ignore[attr-defined]
                self.release()


# ---------------------------------------------------------------------------------------------- the app


def _text(status: int, message: str, headers: dict | None = None) -> PlainTextResponse:
    return PlainTextResponse(message + "\n", status, headers={**_SECURITY_HEADERS, **_NO_CACHE, **(headers or {})})


def _json(status: int, body: Any) -> JSONResponse:
    return JSONResponse(body, status, headers={**_SECURITY_HEADERS, **_NO_CACHE})


def _read_static(name: str) -> bytes:
    return resources.files("drlocal.view").joinpath("static", name).read_bytes()


class _Endpoints:
    """The request handlers; every refusal is a 4xx with one short line (text, or JSON for the replay API)."""

    def __init__(self, hub: _Hub) -> None:
        self.hub = hub
        self.source = hub.source
        self.page = _read_static("index.html")
        self.assets = {name: _read_static(name) for name in _STATIC}

    # -- which worker
    def robot_of(self, robot: str) -> str:
        robots = self.hub.robots()
        if robot not in robots:
            shown = ", ".join(robots[:12]) + (" …" if len(robots) > 12 else "")
            raise NotFound(f"unknown worker {_clip(robot)}; workers: {shown or 'none yet'}")
        return robot

    def first_robot(self, request: Request) -> str:
        """`/stream` and `/snapshot` without a worker in the path: `robo=<worker>`, else the first one."""
        robo = request.query_params.get("robo")
        if robo:
            return self.robot_of(robo)
        robots = self.hub.robots()
        if not robots:
            raise NotFound("no workers yet")
        return robots[0]

    def path_robot(self, request: Request) -> str:
        return self.robot_of(request.path_params["robot"])

    # -- page, assets, header
    async def index(self, request: Request) -> Response:
        return Response(self.page, media_type="text/html; charset=utf-8",
                        headers={**_SECURITY_HEADERS, **_NO_CACHE, "Content-Security-Policy": _CSP})

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.assets:  # fixed names only: nothing from the request reaches the file system
            return _text(404, "Not Found")
        return Response(self.assets[name], media_type=_STATIC[name], headers={**_SECURITY_HEADERS, **_NO_CACHE})

    async def status(self, request: Request) -> Response:
        hub = self.hub
        try:
            header = await anyio.to_thread.run_sync(self.source.header)
            robots = await anyio.to_thread.run_sync(hub.robots)
            version = self.source.version()
        except Exception as e:
            log.warning("viewer: the frame source failed to report its header: %s: %s", type(e).__name__, e)
            return _json(503, {"error": f"the run did not report its state ({type(e).__name__})"})
        return _json(200, {
            "header": jsonable(header or {}),
            "robots": robots,
            "cameras": CAMERAS,
            "version": jsonable(version),
            "streams": {"active": hub.active, "max": hub.max_streams},
            "max_fps": hub.max_fps,
        })

    # -- live cameras
    @staticmethod
    def live_params(request: Request) -> tuple[str, tuple[int, int] | None, int]:
        q = request.query_params
        _parse_type(q)
        return parse_camera(q.get("topic")), parse_size(q), parse_quality(q)

    async def stream_of(self, robot: str, request: Request) -> Any:
        camera, size, quality = self.live_params(request)
        hub = self.hub
        if request.method == "HEAD":  # headers only: no body would reach the client, so take no slot
            return Response(b"", media_type=f"multipart/x-mixed-replace;boundary={BOUNDARY}",
                            headers={**_SECURITY_HEADERS, **_NO_CACHE})
        if not hub.acquire():
            return _text(429, f"Maximum amount of {hub.max_streams} streams reached; close one first",
                         {"Retry-After": "1"})
        return _MJPEGResponse(hub.live_parts(robot, camera, size, quality), hub.release)

    async def snapshot_of(self, robot: str, request: Request) -> Response:
        camera, size, quality = self.live_params(request)
        frame = await anyio.to_thread.run_sync(self.source.frame, robot, camera)
        if frame is None:
            return _text(503, "no frame yet", {"Retry-After": "1"})
        jpeg = await anyio.to_thread.run_sync(encode_jpeg, frame, size, quality)
        return Response(jpeg, media_type="image/jpeg", headers={**_SECURITY_HEADERS, **_NO_CACHE})

    def guarded(self, handler: Callable[..., Any], pick: Callable[[Request], str]) -> Callable[[Request], Any]:
        """Bad queries → 400, unknown workers → 404, both as one short line (never a traceback)."""

        async def endpoint(request: Request) -> Any:
            try:
                return await handler(pick(request), request)
            except BadRequest as e:
                return _text(400, str(e))
            except NotFound as e:
                return _text(404, str(e))
            except KeyError:  # the source no longer knows the worker (it left between the check and the frame)
                return _text(404, "unknown worker")
            except Exception as e:  # a producer bug: one log line, a short answer, the server goes on
                log.warning("viewer: %s failed: %s: %s", request.url.path, type(e).__name__, e)
                return _text(500, f"the frame source failed ({type(e).__name__})")

        return endpoint

    # -- replays
    @staticmethod
    def replay_params(request: Request) -> tuple[int, int, str, bool, tuple[int, int] | None, int]:
        q = request.query_params
        if q.get("iteration") in (None, "") or q.get("episode") in (None, ""):
            raise BadRequest("iteration and episode are required")
        iteration = _int_param(q, "iteration", 0, 10**9)
        episode = _int_param(q, "episode", 0, 10**9)
        camera = parse_camera(q.get("camera") or "kvs_stream", name="camera")
        return iteration, episode, camera, _parse_bool(q, "ghost"), parse_size(q), parse_quality(q)

    async def open_replay(self, iteration: int, episode: int, camera: str, ghost: bool
                          ) -> tuple[Iterator[np.ndarray], np.ndarray]:
        """Ask the source for the replay and pull its first frame, so a missing episode is a 404, not a dead stream."""
        source = self.source
        frames = await anyio.to_thread.run_sync(lambda: iter(source.replay(iteration, episode, camera, ghost)))
        try:
            first = await anyio.to_thread.run_sync(next, frames, None)
        except BaseException:
            await _close_iterator(frames)
            raise
        if first is None:
            raise LookupError(f"episode {episode} of iteration {iteration} has no frames")
        return frames, first

    async def replay(self, request: Request, stream: bool) -> Any:
        """`/replay/check` (200 or a JSON error the page shows) and `/replay/stream` (MJPEG at 15 fps)."""
        try:
            iteration, episode, camera, ghost, size, quality = self.replay_params(request)
        except BadRequest as e:
            return _json(400, {"error": str(e)})
        hub = self.hub
        if stream and not hub.acquire():
            return _json(429, {"error": f"Maximum amount of {hub.max_streams} streams reached; close one first"})
        handed_over = False
        try:
            frames, first = await self.open_replay(iteration, episode, camera, ghost)
            if not stream:
                await _close_iterator(frames)
                return _json(200, {"ok": True, "iteration": iteration, "episode": episode, "camera": camera,
                                   "ghost": ghost})
            handed_over = True
            return _MJPEGResponse(hub.replay_parts(frames, first, size, quality), hub.release)
        except LookupError as e:
            return _json(404, {"error": str(e.args[0]) if e.args else "no such episode"})
        except ValueError as e:
            return _json(400, {"error": str(e)})
        except Exception as e:
            log.warning("viewer: replay of iteration %s episode %s failed: %s: %s", iteration, episode,
                        type(e).__name__, e)
            return _json(500, {"error": f"replay failed: {type(e).__name__}: {e}"})
        finally:
            if stream and not handed_over:
                hub.release()

    async def replay_check(self, request: Request) -> Any:
        return await self.replay(request, stream=False)

    async def replay_stream(self, request: Request) -> Any:
        return await self.replay(request, stream=True)


def create_app(source: FrameSource, *, max_fps: float = 15.0) -> Starlette:
    """The viewer's ASGI app (tests and `Viewer` run it under uvicorn); `app.state.hub` holds its shared state."""
    hub = _Hub(source, max_fps)
    ep = _Endpoints(hub)
    routes = [
        Route("/", ep.index),
        Route("/index.html", ep.index),
        Route("/static/{name}", ep.static),
        Route("/status.json", ep.status),
        Route("/replay/check", ep.replay_check),
        Route("/replay/stream", ep.replay_stream),
        # web_video_server's own paths (DRfC's direct ports, one worker each): the worker is `robo=`, else the first
        Route("/stream", ep.guarded(ep.stream_of, ep.first_robot)),
        Route("/snapshot", ep.guarded(ep.snapshot_of, ep.first_robot)),
        # DRfC's nginx paths: /<worker>/stream, /<worker>/snapshot
        Route("/{robot}/stream", ep.guarded(ep.stream_of, ep.path_robot)),
        Route("/{robot}/snapshot", ep.guarded(ep.snapshot_of, ep.path_robot)),
    ]
    app = Starlette(routes=routes)
    app.state.hub = hub
    return app


# ---------------------------------------------------------------------------------------------- the server

def _is_loopback(host: str) -> bool:
    """localhost, *.localhost (RFC 6761) or a loopback address; "127.0.0.1.nip.io" is not."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _LoopbackHostOnly:
    """Refuse requests whose Host header is not a loopback name.

    A viewer bound to 127.0.0.1 is only reachable from this machine, but a web page in the user's browser could
    re-point its own domain at 127.0.0.1 (DNS rebinding) and read the run's frames and header; such requests carry
    that domain as Host. Only used when the viewer is bound to loopback (with another host, any name may be right).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1").strip().lower()
            name = host[1 : host.find("]")] if host.startswith("[") else host.split(":", 1)[0]
            if name and not _is_loopback(name):
                await _text(421, "this viewer only answers to localhost / 127.0.0.1")(scope, receive, send)
                return
        await self.app(scope, receive, send)



def _bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket ourselves, so a taken port is a clear error here and not a log line in a thread."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise OSError(f"drlocal viewer: cannot resolve host {host!r}: {e}") from e
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart may reuse a port in TIME_WAIT
        sock.bind(addr)
    except OSError as e:
        sock.close()
        raise OSError(
            e.errno,
            f"drlocal viewer: cannot listen on {host}:{port} ({e.strerror or e}); the port is probably taken by "
            f"another viewer or program — choose another with DR_WEBVIEWER_PORT or --port (0 = any free port)",
        ) from e
    return sock


class Viewer:
    """The viewer web server, run by uvicorn in a daemon thread next to the trainer.

    Bound to 127.0.0.1 unless a host is given: the page shows the run to whoever can reach the port.
    """

    def __init__(self, source: FrameSource, *, host: str = "127.0.0.1", port: int = 8100,
                 max_fps: float = 15.0) -> None:
        self.source = source
        self.host = host
        self.port = port
        self.app = create_app(source, max_fps=max_fps)
        if _is_loopback(host):
            self.app.add_middleware(_LoopbackHostOnly)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self.host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    def start(self) -> str:
        """Serve in the background and return the page's URL (with the real port when port was 0)."""
        import uvicorn  # here, so importing drlocal.view does not pull the web stack in

        if self._thread is not None:
            raise RuntimeError("the viewer is already running")
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,  # leave the host program's logging alone
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="drlocal-viewer", daemon=True)
        self._server, self._thread = server, thread
        self.app.state.hub.closing = False
        thread.start()
        deadline = time.monotonic() + 15.0
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self._server = self._thread = None
                sock.close()
                raise RuntimeError(f"drlocal viewer: the web server on {self.host}:{self.port} did not start")
            time.sleep(0.01)
        return self.url

    def stop(self) -> None:
        """End all streams and the server; returns within a few seconds even with clients attached."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self.app.state.hub.closing = True
        server.should_exit = True
        thread.join(timeout=5.0)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5.0)
        self._server = self._thread = None

    def __enter__(self) -> Viewer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["CAMERAS", "MAX_STREAMS", "FrameSource", "Viewer", "create_app", "encode_jpeg", "parse_camera"]
