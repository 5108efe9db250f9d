"""The simapp's video overlays: the minimap and the training / evaluation / head-to-head text layouts.

What the console's training video, DRfC's `kvs_stream` and the evaluation MP4s (`camera-pip`) show is the follow
camera frame with an overlay drawn by `scripts/mp4_saving/*_image_editing.py`. This module reproduces their content
and layout (texts, positions, formats, the minimap in the bottom-right corner, the completion banner) on a
(480, 640, 3) uint8 RGB frame:

* `training_overlay` (`TrainingImageEditing`): minimap, the italic phase label at (40, 400) and, with
  DR_ENABLE_EXTRA_KVS_OVERLAY (`OverlayData.extra`), an 85 px black band on top with Steering/Throttle/Speed left
  and Best lap/Last lap/Progress right. The simapp's training "gradient" is an all-transparent image, so the camera
  frame is not darkened.
* `evaluation_overlay` (`SingleAgentImageEditing`: time trial, object avoidance, head-to-bot): a dark gradient on
  the left with bands behind the name (top) and speed / race type (bottom), the name / lap `n/N` / `Race | time` /
  `Reset | n` column at x=10, speed at (10, 420), "<race type> evaluation" at (10, 445), the banner when `done`.
* `head_to_head_overlay` (`MultiAgentImageEditing`): two name columns (x=10 and x=450), race time at (240, 10).

DeepRacer's image assets and the Amazon Ember fonts are not used: the gradient, the track minimap (drawn from the
track's geometry), the car / obstacle icons and the banner are drawn here with Pillow, and the text uses the DejaVu
fonts that ship with matplotlib. DejaVu is about 12 % wider than Amazon Ember at the same pixel size, so each font
below is sized to give the simapp's text *width* (the right column at x=460 would run off the frame otherwise).

Everything static is cached (the gradient + minimap layer per minimap and colours, the banner, the icons, and one
rendered sprite per distinct text line), so a frame costs a few Pillow pastes: about 1-2 ms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from drlocal.tracks.track import Track
from drlocal.view.scene import BOT_COLOR, CAR_COLORS, OverlayData

#: The simapp's frame size (`IconographicImageSize.FULL_IMAGE_SIZE`), width × height [px].
FRAME_W, FRAME_H = 640, 480
#: The simapp shrinks its 640×480 track iconography by this factor (`SCALE_RATIO`) for the minimap.
SCALE_RATIO = 2.5
#: Minimap size [px] (640/2.5 × 480/2.5) and its top-left corner in the frame: flush bottom-right
#: (`TRACK_IMG_WITHOUT_OFFSET_LOC = (0, 0)`).
MINIMAP_W, MINIMAP_H = int(FRAME_W // SCALE_RATIO), int(FRAME_H // SCALE_RATIO)
MINIMAP_ORIGIN = (FRAME_W - MINIMAP_W, FRAME_H - MINIMAP_H)
#: Padding of the top camera around the track's outer-border bounding box (`top_camera.py`, PADDING_PCT).
TOP_CAMERA_PADDING = 0.25
#: Icon sizes on the minimap [px]: agents `int(66 // 2.5)` (the simapp's current `VIRTUAL_EVENT_AGENTS_IMAGE_SIZE`;
#: older bundles used 88 // 2.5 = 35), obstacles and bot cars `int(34 // 2.5)`.
AGENT_ICON_PX = int(66 // SCALE_RATIO)
OBJECT_ICON_PX = int(34 // SCALE_RATIO)

#: Text colours: `RaceCarColorToRGB.White` and the shadow `RaceCarColorToRGB.Black`.
WHITE = (255, 255, 255)
SHADOW = (26, 26, 26)
#: The training overlay's extra band is filled with the same `RaceCarColorToRGB.Black`.
BAND_COLOR = SHADOW
#: `RACE_TYPE_TO_VIDEO_TEXT_MAPPING`: what the bottom-left line says before "evaluation".
RACE_TYPE_TEXT = {
    "TIME_TRIAL": "Time trial",
    "OBJECT_AVOIDANCE": "Object avoidance",
    "HEAD_TO_BOT": "Head-to-bot",
    "HEAD_TO_MODEL": "Head-to-head",
    "F1": "F1",
}
NO_TIME = "--:--.---"

# Text positions (`XYPixelLoc`), (x, y) of PIL's left/ascender anchor [px].
NAME_LOC = (10, 10)  # SINGLE_AGENT_DISPLAY_NAME_LOC; also the top of the extra band's left column
MULTI_NAME_LOCS = ((10, 10), (450, 10))  # MULTI_AGENT_DISPLAY_NAME_LOC
MULTI_RACE_TIME_LOC = (240, 10)  # MULTI_AGENT_EVAL_TIME
SPEED_LOC = (10, 420)  # SPEED_EVAL_LOC
RACE_TYPE_LOC = (10, 445)  # RACE_TYPE_EVAL_LOC
PHASE_LOC = (40, 400)  # TRAINING_PHASE_LOC
EXTRA_RIGHT_X = FRAME_W - 180  # the training band's right column
#: The training band: `plot_rectangle(img, 0, 0, 640, 85, Black)`; cv2 fills both corners inclusive, so 86 rows.
EXTRA_BAND_H = 86
#: The completion banner: 308×40 (`RACE_COMPLETE_IMAGE_SIZE`) centred at (640 - 308 // 2, 480 - 180 - 40 // 2).
BANNER_W, BANNER_H = 308, 40
BANNER_LOC = (FRAME_W - BANNER_W // 2 - BANNER_W // 2, FRAME_H - 180 - BANNER_H // 2 - BANNER_H // 2)

_FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
# (file, px): the simapp's font in the comment, DejaVu sized to the same text width.
FONT_NAME = ("DejaVuSans.ttf", 18)  # AmazonEmber-Regular 20: display names
FONT_LAP = ("DejaVuSans-Bold.ttf", 30)  # AmazonEmber-Heavy 30: lap counter n/N
FONT_LINE = ("DejaVuSans.ttf", 16)  # AmazonEmber-Light 18: "Race | …", "Reset | …", the extra lines
FONT_SPEED = ("DejaVuSans.ttf", 18)  # AmazonEmber-Light 20: "xx.xx m/s"
FONT_RACE_TYPE = ("DejaVuSans-Oblique.ttf", 17)  # AmazonEmber-LightItalic 20: "Time trial evaluation"
FONT_PHASE = ("DejaVuSans-Oblique.ttf", 32)  # Amazon_Ember_RgIt 35: the training phase label
FONT_BANNER = ("DejaVuSans-Bold.ttf", 18)


# ----------------------------------------------------------------------------------------------------------------
# Formats


def format_time(seconds: float | None) -> str:
    """Seconds → the simapp's `mm:ss.mmm` (`utils.milliseconds_to_timeformat`); None/inf/NaN → `--:--.---`.

    As the simapp: milliseconds are truncated (not rounded) and the minutes wrap at one hour.
    """
    if seconds is None or not math.isfinite(seconds):
        return NO_TIME
    td = timedelta(seconds=max(0.0, float(seconds)))
    minutes, secs = divmod(td.seconds % 3600, 60)
    return f"{minutes:02d}:{secs:02d}.{td.microseconds // 1000:03d}"


def format_lap_time(seconds: float | None) -> str:
    """A best/last lap time: like `format_time`, but 0 also means "no lap yet" (the simapp's default before a lap)."""
    return NO_TIME if not seconds else format_time(seconds)


def format_speed(speed: float) -> str:
    """Speed [m/s] with two integer digits, `utils.get_speed_formatted_str`: 1.5 → "01.50"."""
    return f"{round(float(speed), 2):0.2f}".zfill(5)


def display_name(name: str) -> str:
    """The simapp cuts display names of 15+ characters to 15 and appends "..."."""
    return name if len(name) < 15 else f"{name[:15]}..."


def race_type_text(race_type: str) -> str:
    """The bottom-left line: "Time trial evaluation" etc. (DRfC evaluations are never "race" video jobs)."""
    return f"{RACE_TYPE_TEXT.get(race_type, race_type.replace('_', ' ').capitalize())} evaluation"


# ----------------------------------------------------------------------------------------------------------------
# Text sprites


@lru_cache(maxsize=16)
def _font(spec: tuple[str, int]) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(_FONT_DIR / spec[0]), spec[1])


def font(size: int, *, bold: bool = False, italic: bool = False) -> ImageFont.FreeTypeFont:
    """A DejaVu Sans font of `size` px from matplotlib's data (no OS font package needed), cached."""
    name = "DejaVuSans" + ("-Bold" if bold else "") + ("Oblique" if italic and bold else "-Oblique" if italic else "")
    return _font((f"{name}.ttf", int(size)))


@lru_cache(maxsize=1024)
def _text_sprite(spec: tuple[str, int], text: str) -> tuple[int, int, Image.Image, Image.Image]:
    """One text line as (dx, dy, shadow mask, text mask): both L images of the glyph box padded by 1 px.

    The simapp draws the text four times in black at (±1, ±1) and once in white on top; drawing those four
    one after the other leaves a combined coverage of 1 - Π(1 - aᵢ), which is the shadow mask here, so one
    FreeType render replaces five. (dx, dy) is the sprite's top-left relative to the text position.
    """
    font = _font(spec)
    x0, y0, x1, y1 = font.getbbox(text)
    w, h = max(x1 - x0, 1), max(y1 - y0, 1)
    padded = Image.new("L", (w + 2, h + 2))
    ImageDraw.Draw(padded).text((1 - x0, 1 - y0), text, font=font, fill=255)
    a = np.asarray(padded, dtype=np.float32)[1:-1, 1:-1] * np.float32(1.0 / 255.0)
    clear = np.ones((h + 2, w + 2), np.float32)
    for dy in (0, 2):
        for dx in (0, 2):
            clear[dy : dy + h, dx : dx + w] *= 1.0 - a
    shadow = Image.fromarray((255.5 - clear * 255.0).astype(np.uint8), "L")
    return x0 - 1, y0 - 1, shadow, padded


def draw_text(
    im: Image.Image,
    text: str,
    loc: tuple[int, int],
    spec: tuple[str, int],
    color: tuple[int, int, int] = WHITE,
    shadow: tuple[int, int, int] = SHADOW,
) -> None:
    """Write `text` at `loc` (PIL's left/ascender anchor, frame px) white with the simapp's 1 px black shadow."""
    if not text:
        return
    dx, dy, sh, tx = _text_sprite(spec, text)
    x, y = loc[0] + dx, loc[1] + dy
    box = (x, y, x + sh.width, y + sh.height)
    im.paste(shadow, box, sh)
    im.paste(color, box, tx)


# ----------------------------------------------------------------------------------------------------------------
# Static layers (gradient + minimap), banner and icons


def _over(dst_rgb: np.ndarray, dst_a: np.ndarray, rgb: np.ndarray, a: np.ndarray) -> None:
    """Porter-Duff "over" in place on float arrays (rgb (H, W, 3) 0-255 straight colour, alpha (H, W) 0-1)."""
    out_a = a + dst_a * (1.0 - a)
    safe = np.where(out_a > 0, out_a, 1.0)[..., None]
    dst_rgb[:] = (rgb * a[..., None] + dst_rgb * (dst_a * (1.0 - a))[..., None]) / safe
    dst_a[:] = out_a


def _slanted_band(x_top: float, x_bottom: float, y0: int, y1: int, *, mirror: bool = False) -> np.ndarray:
    """Coverage (480, 640) of a band over rows y0..y1 whose right edge runs from x_top to x_bottom (anti-aliased).

    mirror: the band hangs from the right edge instead, its left edge at 640 - x.
    """
    cov = np.zeros((FRAME_H, FRAME_W), np.float32)
    ys = np.arange(y0, y1, dtype=np.float32) + 0.5
    edge = x_top + (x_bottom - x_top) * (ys - y0) / max(y1 - y0, 1)
    xs = np.arange(FRAME_W, dtype=np.float32)
    cov[y0:y1] = np.clip(edge[:, None] - xs[None, :], 0.0, 1.0)
    return cov[:, ::-1].copy() if mirror else cov


def _ramp(c0: Sequence[float], c1: Sequence[float], t: np.ndarray) -> np.ndarray:
    """Colours (…, 3) between c0 (t=0) and c1 (t=1)."""
    c0, c1 = np.asarray(c0, np.float32), np.asarray(c1, np.float32)
    return c0 + (c1 - c0) * t[..., None]


def _flat(color: Sequence[float]) -> np.ndarray:
    """One colour over the whole frame, (480, 640, 3) float32."""
    return np.broadcast_to(np.asarray(color, np.float32), (FRAME_H, FRAME_W, 3))


def _gradient(layout: str, accents: tuple[tuple[int, int, int], ...]) -> np.ndarray:
    """The full-frame overlay (480, 640, 4) uint8 RGBA drawn under the text, our take on `DRL_video_*_overlay.png`.

    A dark vignette on the left (and right for head-to-head) and a light darkening along the top keep white text
    readable on a bright camera frame; slanted bands sit behind the name (top left, ending in the car's colour),
    the speed and the race type (bottom left). "training" is fully transparent, as the simapp's training overlay.
    """
    if layout == "training":
        return np.zeros((FRAME_H, FRAME_W, 4), np.uint8)
    rgb = np.zeros((FRAME_H, FRAME_W, 3), np.float32)
    alpha = np.zeros((FRAME_H, FRAME_W), np.float32)
    ys, xs = np.mgrid[0:FRAME_H, 0:FRAME_W].astype(np.float32)
    dark = (6, 7, 10)
    vign = 0.62 * np.clip(1.0 - xs / 150.0, 0.0, 1.0) ** 1.6
    if layout == "h2h":
        vign = np.maximum(vign, 0.62 * np.clip(1.0 - (FRAME_W - 1 - xs) / 150.0, 0.0, 1.0) ** 1.6)
    top = 0.30 * np.clip(1.0 - ys / 55.0, 0.0, 1.0)
    _over(rgb, alpha, _flat(dark), vign)
    _over(rgb, alpha, _flat(dark), top)
    navy = (18, 22, 40)
    xs_row = xs / FRAME_W
    # top-left band behind the name: dark navy fading into the car's colour at its slanted end
    cov = _slanted_band(232, 212, 0, 38)
    t = np.clip((xs - 110.0) / 122.0, 0.0, 1.0) ** 1.2
    _over(rgb, alpha, _ramp(navy, accents[0], t), cov * (0.92 - 0.1 * xs_row))
    if layout == "h2h":
        cov = _slanted_band(232, 212, 0, 38, mirror=True)
        t = np.clip((FRAME_W - 1 - xs - 110.0) / 122.0, 0.0, 1.0) ** 1.2
        _over(rgb, alpha, _ramp(navy, accents[1], t), cov * (0.92 - 0.1 * (1.0 - xs_row)))
    # bottom-left: a short dark band behind the speed, a longer one behind the race type
    _over(rgb, alpha, _flat((12, 16, 12)), _slanted_band(125, 113, 415, 440) * 0.85)
    t = np.clip((xs - 160.0) / 145.0, 0.0, 1.0) ** 1.2
    _over(rgb, alpha, _ramp(navy, accents[0], t), _slanted_band(305, 280, 440, 480) * 0.9)
    out = np.dstack([rgb, alpha * 255.0])
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


class _Layer:
    """A static RGBA layer cut into row strips of the columns it covers, so blending skips transparent pixels."""

    def __init__(self, rgba: np.ndarray, strip: int = 24):
        self.tiles: list[tuple[tuple[int, int, int, int], Image.Image, Image.Image | None]] = []
        a = rgba[..., 3]
        for y0 in range(0, rgba.shape[0], strip):
            y1 = min(y0 + strip, rgba.shape[0])
            cols = np.flatnonzero(a[y0:y1].any(axis=0))
            if cols.size == 0:
                continue
            x0, x1 = int(cols[0]), int(cols[-1]) + 1
            crop = rgba[y0:y1, x0:x1]
            box = (x0, y0, x1, y1)
            if (crop[..., 3] == 255).all():
                self.tiles.append((box, Image.fromarray(np.ascontiguousarray(crop[..., :3]), "RGB"), None))
            else:
                rgb = Image.fromarray(np.ascontiguousarray(crop[..., :3]), "RGB")
                self.tiles.append((box, rgb, Image.fromarray(np.ascontiguousarray(crop[..., 3]), "L")))

    def blend(self, im: Image.Image) -> None:
        """frame = frame·(1 − α) + layer·α, tile by tile (Pillow's C paste)."""
        for box, rgb, mask in self.tiles:
            im.paste(rgb, box, mask)


@lru_cache(maxsize=32)
def _cached_layer(layout: str, accents: tuple, minimap: Minimap | None) -> _Layer:
    rgba = _gradient(layout, accents)
    if minimap is not None:
        im = Image.fromarray(rgba, "RGBA")
        im.alpha_composite(minimap.image, MINIMAP_ORIGIN)
        rgba = np.asarray(im)
    return _Layer(rgba)


def _supersampled(size: int, draw, ss: int = 4) -> Image.Image:
    """An RGBA icon of size×size px drawn by `draw(ImageDraw, side)` at ss× and reduced (premultiplied, Lanczos)."""
    big = Image.new("RGBA", (size * ss, size * ss), (0, 0, 0, 0))
    draw(ImageDraw.Draw(big), size * ss)
    return big.resize((size, size), Image.Resampling.LANCZOS)


@lru_cache(maxsize=64)
def agent_icon(color: tuple[int, int, int], size: int = AGENT_ICON_PX, ss: int = 4) -> Image.Image:
    """The racer's minimap icon, size×size RGBA: a disc in the car's colour, lighter at the top, with a light rim
    so that even a black car shows on the dark road (drawn at ss× and reduced for anti-aliasing)."""
    s = size * ss
    c = (np.arange(s, dtype=np.float32) + 0.5) / s * 2.0 - 1.0  # pixel centres in [-1, 1]
    r = np.hypot(c[None, :], c[:, None])
    rim = 1.0 - 2.0 * 1.2 / size  # the rim is 1.2 px wide
    t = (c[:, None] + 1.0) / 2.0  # 0 at the top, 1 at the bottom
    col = np.asarray(color, np.float32)
    body = col * (1.0 - 0.25 * t[..., None]) + (255.0 - col) * (0.3 * (1.0 - t))[..., None]
    body = np.broadcast_to(body, (s, s, 3))
    rgb = np.where((r <= rim)[..., None], body, np.float32(245.0))
    alpha = np.where(r <= 1.0, 255.0, 0.0)
    big = np.dstack([rgb, alpha]).round().astype(np.uint8)
    return Image.fromarray(big, "RGBA").resize((size, size), Image.Resampling.LANCZOS)


@lru_cache(maxsize=64)
def object_icon(kind: str, color: tuple[int, int, int], size: int = OBJECT_ICON_PX) -> Image.Image:
    """Minimap icon of an obstacle ("box": a rounded square) or a bot car ("car": an X), in the body's colour."""

    def draw(d: ImageDraw.ImageDraw, s: int) -> None:
        if kind == "car":
            w = s // 4
            for a, b in (((w // 2, w // 2), (s - w // 2, s - w // 2)), ((w // 2, s - w // 2), (s - w // 2, w // 2))):
                d.line((a, b), fill=(20, 20, 20, 230), width=w + 4)
            for a, b in (((w // 2, w // 2), (s - w // 2, s - w // 2)), ((w // 2, s - w // 2), (s - w // 2, w // 2))):
                d.line((a, b), fill=(*color, 255), width=w)
        else:
            d.rounded_rectangle((0, 0, s - 1, s - 1), radius=s // 6, fill=(30, 30, 30, 220))
            d.rounded_rectangle((4, 4, s - 5, s - 5), radius=s // 8, fill=(*color, 240))

    return _supersampled(size, draw)


@lru_cache(maxsize=1)
def banner() -> Image.Image:
    """The "Race complete" banner, 308×40 RGBA: black fading in from the left, the text, a chequered flag end."""
    w, h = BANNER_W, BANNER_H
    a = np.clip(np.arange(w, dtype=np.float32) / 90.0, 0.0, 1.0) * 0.85
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., :3] = 10
    rgba[..., 3] = np.round(a * 255.0).astype(np.uint8)[None, :]
    sq = h // 2
    x_start = w - 6 * sq
    for i in range(6):
        for j in range(2):
            white = (i + j) % 2 == 0
            fade = 0.55 if i == 0 else 1.0
            x0 = x_start + i * sq
            rgba[j * sq : (j + 1) * sq, x0 : x0 + sq, :3] = 245 if white else 10
            rgba[j * sq : (j + 1) * sq, x0 : x0 + sq, 3] = round(255 * fade)
    im = Image.fromarray(rgba, "RGBA")
    font = _font(FONT_BANNER)
    y = (h - (font.getbbox("Race complete")[3] - font.getbbox("Race complete")[1])) // 2
    y -= font.getbbox("Race complete")[1]
    ImageDraw.Draw(im).text((12, y), "Race complete", font=font, fill=(255, 255, 255, 255))
    return im


# ----------------------------------------------------------------------------------------------------------------
# Minimap


class Minimap:
    """The track in the bottom-right corner of every overlay: road, centre line and chequered start line.

    The simapp shows a per-track PNG drawn in the top camera's frame (the track's outer-border bounding box centred
    with 25 % padding, one scale for x and y, y up) shrunk by 2.5 to 256×192; bodies are placed with the same map
    (`TopViewGraphics.get_model_imgs_on_track_loc`). Here the icon is drawn from the track's own geometry with the
    same map, once, at 4× and reduced for anti-aliasing.

    Attributes:
        image: the prerendered track icon, 256×192 RGBA (PIL).
        scale: minimap pixels per metre.
    """

    def __init__(self, track: Track, *, reverse: bool = False):
        self.track = track
        self.reverse = reverse
        lines = track.lines(reverse)
        # `top_view_graphics.initialize_parameters`: the camera's fov cancels out; the 640×480 view spans
        # 1.25 × max(x extent, 4/3 × y extent) metres horizontally, centred on the outer border's bbox.
        (x_min, y_min), (x_max, y_max) = lines.outer.min(axis=0), lines.outer.max(axis=0)
        aspect = FRAME_W / FRAME_H
        view_w = (1.0 + TOP_CAMERA_PADDING) * max(x_max - x_min, aspect * (y_max - y_min), 1e-6)
        self._s640 = FRAME_W / view_w  # px per metre in the 640×480 top view
        self._cx, self._cy = (x_min + x_max) / 2.0, (y_min + y_max) / 2.0
        self.scale = self._s640 / SCALE_RATIO
        self.image = self._render(lines)

    def xy_to_px(self, x: float, y: float) -> tuple[float, float]:
        """Frame pixel (x right, y down) [px] of the world point (x, y) [m] on the minimap."""
        px = FRAME_W / 2.0 + (x - self._cx) * self._s640
        py = FRAME_H / 2.0 - (y - self._cy) * self._s640
        return MINIMAP_ORIGIN[0] + px / SCALE_RATIO, MINIMAP_ORIGIN[1] + py / SCALE_RATIO

    def _local(self, xy: np.ndarray, ss: float) -> list[tuple[float, float]]:
        """World points (N, 2) [m] → minimap-local pixel coordinates at supersampling ss, as Pillow wants them."""
        px = (FRAME_W / 2.0 + (xy[:, 0] - self._cx) * self._s640) / SCALE_RATIO * ss
        py = (FRAME_H / 2.0 - (xy[:, 1] - self._cy) * self._s640) / SCALE_RATIO * ss
        return list(zip(px.tolist(), py.tolist(), strict=True))

    def _render(self, lines, ss: int = 4) -> Image.Image:
        """Road as quads between consecutive border points (robust for open and self-crossing tracks), a white
        centre line and a chequered line across the road at the start (waypoint 0 of the driving direction)."""
        big = Image.new("RGBA", (MINIMAP_W * ss, MINIMAP_H * ss), (0, 0, 0, 0))
        d = ImageDraw.Draw(big)
        inner, outer, center = self._local(lines.inner, ss), self._local(lines.outer, ss), self._local(lines.center, ss)
        road = (169, 169, 169, 153)
        for i in range(len(center) - 1):
            d.polygon([inner[i], inner[i + 1], outer[i + 1], outer[i]], fill=road)
        d.line(center, fill=(255, 255, 255, 255), width=max(1, round(1.4 * ss)), joint="curve")
        # start line: 2 rows × 4 squares across the road, the first row on the start, the second behind it
        p_in, p_out = np.asarray(inner[0]), np.asarray(outer[0])
        across = (p_out - p_in) / 4.0
        fwd = np.asarray(center[1]) - np.asarray(center[0])
        n = np.hypot(*fwd)
        side = float(np.hypot(*across))
        fwd = fwd / n * side if n > 0 else np.array([-across[1], across[0]])
        for row in range(2):
            for k in range(4):
                a = p_in + across * k - fwd * row
                quad = [tuple(a), tuple(a + across), tuple(a + across + fwd), tuple(a + fwd)]
                d.polygon(quad, fill=(250, 250, 250, 255) if (k + row) % 2 == 0 else (0, 0, 0, 255))
        return big.resize((MINIMAP_W, MINIMAP_H), Image.Resampling.LANCZOS)

    def draw_bodies(
        self,
        im: Image.Image,
        xy: np.ndarray,
        colors: np.ndarray,
        kinds: Sequence[str] | None = None,
        agents: int = 1,
    ) -> None:
        """Paste the bodies' icons onto the frame `im`: the first `agents` rows of xy (M, 2) [m] are racers (discs
        in their colours, drawn last, on top), the others obstacles ("box") or bot cars ("car") by `kinds`
        (obstacles when not given). Non-finite positions are skipped (the simapp skips them too)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        colors = np.asarray(colors).reshape(-1, 3) if len(colors) else np.zeros((0, 3), np.uint8)
        order = list(range(agents, len(xy))) + list(range(min(agents, len(xy))))
        for i in order:
            x, y = xy[i]
            if not (math.isfinite(x) and math.isfinite(y)):
                continue
            color = tuple(int(c) for c in colors[i]) if i < len(colors) else (BOT_COLOR if i else CAR_COLORS["Red"])
            if i < agents:
                icon = agent_icon(color)
            else:
                kind = kinds[i] if kinds is not None and i < len(kinds) else "box"
                icon = object_icon("car" if kind == "car" else "box", color)
            px, py = self.xy_to_px(x, y)
            im.paste(icon, (round(px) - icon.width // 2, round(py) - icon.height // 2), icon)


# ----------------------------------------------------------------------------------------------------------------
# Overlays


def _check_frame(frame: np.ndarray) -> Image.Image:
    frame = np.asarray(frame)
    if frame.shape != (FRAME_H, FRAME_W, 3) or frame.dtype != np.uint8:
        raise ValueError(f"overlay frames are (480, 640, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
    return Image.fromarray(frame, "RGB")  # a copy: the caller's frame is never changed


def _accent(data: OverlayData, default: str = "Purple") -> tuple[int, int, int]:
    if len(data.minimap_colors):
        return tuple(int(c) for c in data.minimap_colors[0])
    return CAR_COLORS[default]


def _layer(layout: str, accents: tuple, minimap: Minimap | None) -> _Layer:
    return _cached_layer(layout, accents, minimap)


def training_overlay(
    frame: np.ndarray, data: OverlayData, minimap: Minimap | None, *, kinds: Sequence[str] | None = None
) -> np.ndarray:
    """The training video (`TrainingImageEditing`): (480, 640, 3) uint8 RGB in → a new array of the same shape.

    Minimap with the bodies of `data.minimap_xy` (first = the car; `kinds` names the others), the phase label
    (`data.phase`) in italics at (40, 400) and, when `data.extra`, the 85 px black band on top.
    """
    im = _check_frame(frame)
    _layer("training", (), minimap).blend(im)
    if data.extra:
        im.paste(BAND_COLOR, (0, 0, FRAME_W, EXTRA_BAND_H))
        x, y = NAME_LOC
        draw_text(im, f"Best lap | {format_lap_time(data.best_lap)}", (EXTRA_RIGHT_X, y), FONT_LINE)
        draw_text(im, f"Last lap | {format_lap_time(data.last_lap)}", (EXTRA_RIGHT_X, y + 25), FONT_LINE)
        draw_text(im, f"Progress | {data.progress:.2f}%", (EXTRA_RIGHT_X, y + 50), FONT_LINE)
        draw_text(im, f"Steering | {data.steering:.2f}", (x, y), FONT_LINE)
        draw_text(im, f"Throttle | {data.throttle:.2f}", (x, y + 25), FONT_LINE)
        draw_text(im, f"Speed | {format_speed(data.speed)} m/s", (x, y + 50), FONT_LINE)
    draw_text(im, data.phase, PHASE_LOC, FONT_PHASE)
    if minimap is not None:
        minimap.draw_bodies(im, data.minimap_xy, data.minimap_colors, kinds, agents=1)
    return np.array(im)


def evaluation_overlay(
    frame: np.ndarray, data: OverlayData, minimap: Minimap | None, *, kinds: Sequence[str] | None = None
) -> np.ndarray:
    """The evaluation video (`SingleAgentImageEditing`: time trial, object avoidance, head-to-bot).

    (480, 640, 3) uint8 RGB in → a new array. Top-left column at x=10: name (cut at 15 characters), lap `n/N`,
    `Race | mm:ss.mmm`, [extra: `Best lap`], `Reset | n`, [extra: `Steering`, `Throttle`]; bottom left the speed
    and "<race type> evaluation"; the "Race complete" banner when `data.done`; the minimap with its bodies.
    """
    im = _check_frame(frame)
    _layer("single", (_accent(data),), minimap).blend(im)
    x, y = NAME_LOC
    draw_text(im, display_name(data.name), (x, y), FONT_NAME)
    laps = max(int(data.laps), 1)
    y += 30
    draw_text(im, f"{min(int(data.lap), laps)}/{laps}", (x, y), FONT_LAP)
    y += 45
    draw_text(im, f"Race | {format_time(data.race_time)}", (x, y), FONT_LINE)
    if data.extra:
        y += 25
        draw_text(im, f"Best lap | {format_lap_time(data.best_lap)}", (x, y), FONT_LINE)
    y += 25
    draw_text(im, f"Reset | {data.resets}", (x, y), FONT_LINE)
    if data.extra:
        y += 25
        draw_text(im, f"Steering | {data.steering:.2f}", (x, y), FONT_LINE)
        y += 25
        draw_text(im, f"Throttle | {data.throttle:.2f}", (x, y), FONT_LINE)
    draw_text(im, f"{format_speed(data.speed)} m/s", SPEED_LOC, FONT_SPEED)
    draw_text(im, race_type_text(data.race_type), RACE_TYPE_LOC, FONT_RACE_TYPE)
    if data.done:
        b = banner()
        im.paste(b, BANNER_LOC, b)
    if minimap is not None:
        minimap.draw_bodies(im, data.minimap_xy, data.minimap_colors, kinds, agents=1)
    return np.array(im)


def head_to_head_overlay(
    frame: np.ndarray,
    data: OverlayData,
    opponent: OverlayData,
    minimap: Minimap | None,
    *,
    kinds: Sequence[str] | None = None,
) -> np.ndarray:
    """The head-to-head video (`MultiAgentImageEditing`), seen from `data`'s car.

    Two columns, `data` at x=10 and `opponent` at x=450: name, lap `n/N`, `Reset | n` [extra: Steering, Throttle];
    `Race | mm:ss.mmm` (data's race time) at (240, 10); data's speed and race type bottom left; the banner once a
    car is done with its last lap. Minimap bodies come from `data.minimap_xy`, whose first two rows are the two
    racers (this car, then the opponent), the rest obstacles / bots.
    """
    im = _check_frame(frame)
    accents = (_accent(data), _accent(opponent, "Orange"))
    _layer("h2h", accents, minimap).blend(im)
    finished = False
    for (x, y), car in zip(MULTI_NAME_LOCS, (data, opponent), strict=True):
        laps = max(int(car.laps), 1)
        lap = min(int(car.lap), laps)
        draw_text(im, display_name(car.name), (x, y), FONT_NAME)
        y += 30
        draw_text(im, f"{lap}/{laps}", (x, y), FONT_LAP)
        y += 45
        draw_text(im, f"Reset | {car.resets}", (x, y), FONT_LINE)
        if data.extra:
            y += 25
            draw_text(im, f"Steering | {car.steering:.2f}", (x, y), FONT_LINE)
            y += 25
            draw_text(im, f"Throttle | {car.throttle:.2f}", (x, y), FONT_LINE)
        finished = finished or (car.done and lap == laps)
    draw_text(im, f"{format_speed(data.speed)} m/s", SPEED_LOC, FONT_SPEED)
    draw_text(im, race_type_text(data.race_type), RACE_TYPE_LOC, FONT_RACE_TYPE)
    draw_text(im, f"Race | {format_time(data.race_time)}", MULTI_RACE_TIME_LOC, FONT_LINE)
    if finished:
        b = banner()
        im.paste(b, BANNER_LOC, b)
    if minimap is not None:
        minimap.draw_bodies(im, data.minimap_xy, data.minimap_colors, kinds, agents=min(2, len(data.minimap_xy)))
    return np.array(im)
