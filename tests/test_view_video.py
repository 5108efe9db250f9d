"""The MP4 writer: H.264 640×480 15 fps files that decode back to what was written, never seen half-written."""

from __future__ import annotations

import numpy as np
import pytest

from drlocal.view.video import Mp4Writer, probe, read_frames

H, W = 480, 640


def make_frame(i: int) -> np.ndarray:
    """Smooth content that H.264 keeps well: a moving horizontal ramp plus flat colour blocks, (480, 640, 3)."""
    x = np.linspace(0.0, 1.0, W)[None, :]
    y = np.linspace(0.0, 1.0, H)[:, None]
    img = np.empty((H, W, 3), np.float64)
    img[..., 0] = 40 + 160 * ((x + i / 30) % 1.0)
    img[..., 1] = 60 + 120 * y
    img[..., 2] = 120.0
    img[100:200, 100:260] = (220, 40, 40)
    img[300:420, 380 + i : 520 + i] = (30, 200, 90)
    return np.round(img).astype(np.uint8)


def test_write_probe_and_decode(tmp_path):
    path = tmp_path / "camera-pip" / "0-video.mp4"
    frames = [make_frame(i) for i in range(30)]
    with Mp4Writer(path) as w:
        for f in frames:
            w.write(f)
    assert w.frames == 30
    assert probe(path) == {"frames": 30, "width": 640, "height": 480, "fps": 15.0, "codec": "h264"}
    back = read_frames(path)
    assert back.shape == (30, H, W, 3)
    err = np.abs(back.astype(np.int16) - np.stack(frames).astype(np.int16))
    assert err.mean() < 3.0  # yuv420p + crf 23: small errors, mostly at colour edges
    for k in (0, 15, 29):  # flat areas keep their colour
        assert np.abs(back[k, 120:180, 120:240].mean(axis=(0, 1)) - (220, 40, 40)).max() < 6
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart: the index first, browsers play progressively
    assert list(tmp_path.rglob("*.part")) == []


def test_other_fps_and_size(tmp_path):
    path = tmp_path / "small.mp4"
    with Mp4Writer(path, fps=30, width=320, height=240) as w:
        for i in range(10):
            w.write(make_frame(i)[::2, ::2])
    info = probe(path)
    assert (info["frames"], info["width"], info["height"], info["fps"]) == (10, 320, 240, 30.0)


def test_nothing_at_the_final_path_until_closed(tmp_path):
    path = tmp_path / "video.mp4"
    w = Mp4Writer(path)
    for i in range(5):
        w.write(make_frame(i))
    assert not path.exists()
    parts = list(tmp_path.glob(".video.mp4.*.part"))
    assert len(parts) == 1  # written under a hidden temporary name next to the target
    w.close()
    assert path.exists() and not parts[0].exists()
    w.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        w.write(make_frame(0))


def test_an_error_leaves_no_file(tmp_path):
    path = tmp_path / "video.mp4"
    with pytest.raises(RuntimeError, match="boom"), Mp4Writer(path) as w:
        w.write(make_frame(0))
        w.write(make_frame(1))
        raise RuntimeError("boom")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_keeps_the_older_file(tmp_path):
    path = tmp_path / "video.mp4"
    with Mp4Writer(path) as w:
        for i in range(3):
            w.write(make_frame(i))
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"\(480, 640, 3\) uint8"), Mp4Writer(path) as w:
        w.write(make_frame(0))
        w.write(make_frame(1)[:, :, :2])  # wrong shape
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["video.mp4"]


def test_rejects_odd_sizes_and_wrong_dtypes(tmp_path):
    with pytest.raises(ValueError, match="even"):
        Mp4Writer(tmp_path / "odd.mp4", width=641)
    assert list(tmp_path.iterdir()) == []
    with Mp4Writer(tmp_path / "f.mp4") as w, pytest.raises(ValueError, match="uint8"):
        w.write(make_frame(0).astype(np.float32))
