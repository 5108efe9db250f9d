"""MP4 files as the simapp writes them: 640×480, 15 fps, H.264 (`SaveToMp4`, cv2 fourcc `avc1`).

Encoding uses PyAV (libx264 from its bundled FFmpeg, so no system FFmpeg is needed): yuv420p so every browser
and player decodes it, and `+faststart` so the index sits at the front and a browser starts playing a file
while it downloads. The file is written under a hidden temporary name next to the target and renamed when
finished, so a reader (viewer, uploader, S3 sync) never sees a half-written MP4, and a writer that fails leaves
nothing at the final path.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import TracebackType

import av
import numpy as np

#: The simapp's `Mp4Parameter`: 15 fps (one frame per sim-time camera frame), 640×480.
FPS = 15
WIDTH, HEIGHT = 640, 480
#: x264 settings: constant quality 23 (x264's default: camera frames with overlays look clean) and the "veryfast"
#: preset, about 4 ms per 640×480 frame on one core (files ~3× smaller than "ultrafast", which takes ~2 ms);
#: training runs next to it, so the encoder uses one thread.
CRF = 23
PRESET = "veryfast"


class Mp4Writer:
    """Write RGB frames to an H.264 MP4; use as a context manager.

    `with Mp4Writer(path) as w: w.write(frame)`: on a clean exit the file appears at `path`; if the block raises,
    the partial file is deleted and `path` is left untouched (an older file there survives).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        fps: int = FPS,
        width: int = WIDTH,
        height: int = HEIGHT,
        crf: int = CRF,
        preset: str = PRESET,
        threads: int = 1,
    ):
        if width % 2 or height % 2:
            raise ValueError(f"H.264 yuv420p needs an even frame size, got {width}×{height}")
        self.path = Path(path)
        self.width, self.height, self.fps = int(width), int(height), int(fps)
        self.frames = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        try:
            self._container = av.open(str(self._tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
            stream = self._container.add_stream("libx264", rate=self.fps)
            stream.width, stream.height = self.width, self.height
            stream.pix_fmt = "yuv420p"
            stream.codec_context.thread_count = int(threads)
            stream.options = {"crf": str(int(crf)), "preset": preset}
            self._stream = stream
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        self._closed = False

    def write(self, frame: np.ndarray) -> None:
        """Append one frame, (height, width, 3) uint8 RGB; it is shown for 1/fps s."""
        if self._closed:
            raise ValueError(f"{self.path}: writer is closed")
        frame = np.asarray(frame)
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frames are ({self.height}, {self.width}, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts = self.frames  # in 1/fps: the encoder's time base (`rate`); the muxer rescales to the MP4's own
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder, finish the file (faststart moves the index to the front) and rename it into place."""
        if self._closed:
            return
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            os.chmod(self._tmp, 0o644)  # mkstemp makes it 0600; the MP4 is an ordinary, readable output file
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._closed = True

    def abort(self) -> None:
        """Stop without a file: close the container quietly and delete the temporary file."""
        if self._closed:
            return
        self._closed = True
        try:
            self._container.close()
        except Exception:  # the encoder may be in any state; the file is thrown away anyway
            pass
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:  # a writer dropped without close() must not leave a .part file behind
        if not getattr(self, "_closed", True):
            self.abort()


def probe(path: str | os.PathLike) -> dict:
    """What an MP4 holds, by decoding it: {"frames", "width", "height", "fps", "codec"} (fps as float)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        info = {
            "frames": 0,
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "fps": float(rate) if rate else 0.0,
            "codec": stream.codec_context.name,
        }
        info["frames"] = sum(1 for _ in container.decode(stream))
    return info


def read_frames(path: str | os.PathLike) -> np.ndarray:
    """All frames of a video as (N, H, W, 3) uint8 RGB (for tests and small clips: it holds them all in memory)."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]
    return np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)
