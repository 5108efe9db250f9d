"""The simapp's video overlays: formats, text placement, minimap mapping, banner and extra band."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, ImageDraw

from conftest import rectangle_route
from drlocal.tracks.registry import load_track
from drlocal.tracks.track import Track
from drlocal.view import overlay as ov
from drlocal.view.scene import BOX_COLOR, CAR_COLORS, OverlayData

H, W = 480, 640


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    """A smooth, mid-grey-ish camera stand-in (sky to grass), (480, 640, 3) uint8."""
    t = np.linspace(0.0, 1.0, H)[:, None, None]
    img = np.array([140, 170, 200]) * (1 - t) + np.array([70, 120, 70]) * t
    return np.repeat(img, W, axis=1).astype(np.uint8)


@pytest.fixture(scope="module")
def rect_map() -> ov.Minimap:
    return ov.Minimap(Track.from_array("rect", rectangle_route()))


def simapp_text(img: np.ndarray, text: str, loc: tuple[int, int], spec: tuple[str, int]) -> np.ndarray:
    """The simapp's `write_text_on_image`: four black (26, 26, 26) draws at (±1, ±1), then white, with plain PIL."""
    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    f = ov._font(spec)
    x, y = loc
    for dx, dy in ((-1, -1), (1, -1), (-1, 1), (1, 1)):
        d.text((x + dx, y + dy), text, font=f, fill=(26, 26, 26))
    d.text((x, y), text, font=f, fill=(255, 255, 255))
    return np.asarray(im)


def changed_box(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) bounding box of the pixels that differ between two frames."""
    ys, xs = np.nonzero(np.any(a != b, axis=2))
    assert len(ys), "the frames are identical"
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


# ----- formats -----


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "--:--.---"),
        (float("inf"), "--:--.---"),
        (float("nan"), "--:--.---"),
        (0.0, "00:00.000"),
        (12.3456, "00:12.345"),  # milliseconds truncated, as the simapp
        (75.4321, "01:15.432"),
        (599.9999, "09:59.999"),
        (3599.999, "59:59.999"),
        (3661.5, "01:01.500"),  # the simapp's minutes wrap at one hour
    ],
)
def test_format_time(seconds, text):
    assert ov.format_time(seconds) == text


def test_lap_time_zero_is_no_lap_and_other_formats():
    assert ov.format_lap_time(0.0) == "--:--.---"
    assert ov.format_lap_time(None) == "--:--.---"
    assert ov.format_lap_time(8.25) == "00:08.250"
    assert ov.format_speed(1.5) == "01.50"
    assert ov.format_speed(0.0) == "00.00"
    assert ov.format_speed(12.0) == "12.00"
    assert ov.display_name("a" * 14) == "a" * 14
    assert ov.display_name("abcdefghijklmnop") == "abcdefghijklmno..."  # 15 or more: 15 + "..."
    assert ov.display_name("a" * 15) == "a" * 15 + "..."
    assert ov.race_type_text("TIME_TRIAL") == "Time trial evaluation"
    assert ov.race_type_text("OBJECT_AVOIDANCE") == "Object avoidance evaluation"
    assert ov.race_type_text("HEAD_TO_BOT") == "Head-to-bot evaluation"
    assert ov.race_type_text("HEAD_TO_MODEL") == "Head-to-head evaluation"


# ----- minimap -----


def test_minimap_maps_known_points(rect_map):
    """Outer border bbox x [-0.3, 4.3], y [-0.3, 2.3]: x dominates, 640 px = 1.25 × 4.6 m, centre → (320, 240) / 2.5."""
    s = 640 / (1.25 * 4.6)
    assert rect_map.xy_to_px(2.0, 1.0) == pytest.approx((384 + 128, 288 + 96))
    assert rect_map.xy_to_px(4.3, 1.0) == pytest.approx((384 + (320 + 2.3 * s) / 2.5, 384))
    assert rect_map.xy_to_px(2.0, 2.3) == pytest.approx((512, 288 + (240 - 1.3 * s) / 2.5))  # y up → rows up
    assert rect_map.scale == pytest.approx(s / 2.5)
    assert rect_map.image.size == (256, 192)
    assert rect_map.image.mode == "RGBA"


def test_minimap_draws_the_road_where_the_track_is(rect_map):
    alpha = np.asarray(rect_map.image)[..., 3]
    for x, y in [(2.0, 0.0), (4.0, 1.0), (1.0, 2.0), (0.0, 1.0)]:  # on the centre line
        px, py = rect_map.xy_to_px(x, y)
        assert alpha[round(py) - 288, round(px) - 384] > 100
    px, py = rect_map.xy_to_px(2.0, 1.0)  # the infield
    assert alpha[round(py) - 288, round(px) - 384] == 0
    assert alpha[:5].max() == 0 and alpha[:, :5].max() == 0  # the padding around the track stays clear


def test_minimap_of_a_real_track_is_centred_with_padding():
    track = load_track("reinvent_base")
    mm = ov.Minimap(track)
    outer = track.forward.outer
    px = np.array([mm.xy_to_px(x, y) for x, y in outer])
    span = np.ptp(outer, axis=0)
    assert span[0] > 4 / 3 * span[1]  # x dominates: the track spans 1/1.25 of the minimap's width
    assert np.ptp(px[:, 0]) == pytest.approx(256 / 1.25)
    assert (px[:, 0].min() + px[:, 0].max()) / 2 == pytest.approx(384 + 128)
    assert (px[:, 1].min() + px[:, 1].max()) / 2 == pytest.approx(288 + 96)
    assert ov.Minimap(track, reverse=True).xy_to_px(1.0, 2.0) == pytest.approx(mm.xy_to_px(1.0, 2.0))


def test_minimap_bodies_are_drawn_at_their_positions(frame, rect_map):
    red = CAR_COLORS["Red"]
    data = OverlayData(
        minimap_xy=np.array([[4.0, 1.0], [2.0, 0.0]]), minimap_colors=np.array([red, BOX_COLOR], np.uint8)
    )
    out = ov.training_overlay(frame, data, rect_map)
    base = ov.training_overlay(frame, replace(data, minimap_xy=np.zeros((0, 2))), rect_map)
    px, py = (round(v) for v in rect_map.xy_to_px(4.0, 1.0))
    assert np.abs(out[py, px].astype(int) - red).max() < 60  # the racer disc in the car's colour
    x0, y0, x1, y1 = changed_box(out[:, :, :], base)
    assert x0 >= 384 and y0 >= 288  # icons only on the minimap
    assert x1 - x0 <= 2 * 256 and (x1 - x0) >= ov.AGENT_ICON_PX - 2
    bx, by = (round(v) for v in rect_map.xy_to_px(2.0, 0.0))
    assert not np.array_equal(out[by - 3 : by + 4, bx - 3 : bx + 4], base[by - 3 : by + 4, bx - 3 : bx + 4])
    # `kinds` picks the icon of the other bodies: a bot car is an X, not the obstacle square
    bot = ov.training_overlay(frame, data, rect_map, kinds=("car", "car"))
    box = ov.training_overlay(frame, data, rect_map, kinds=("car", "box"))
    assert np.array_equal(box, out)  # obstacles are the default
    x0, y0, x1, y1 = changed_box(bot, box)
    assert abs((x0 + x1) / 2 - bx) <= 2 and abs((y0 + y1) / 2 - by) <= 2 and x1 - x0 <= ov.OBJECT_ICON_PX + 1
    # a body at NaN (the simapp skips those too) draws nothing and does not raise
    nan = replace(data, minimap_xy=np.array([[np.nan, np.nan]]), minimap_colors=np.array([red], np.uint8))
    assert np.array_equal(ov.training_overlay(frame, nan, rect_map), base)


# ----- text placement -----


def test_phase_label_matches_a_plain_pil_drawing(frame):
    """The phase label is the simapp's white-with-shadow text, italic, at (40, 400)."""
    base = ov.training_overlay(frame, OverlayData(phase=""), None)
    out = ov.training_overlay(frame, OverlayData(phase="Training"), None)
    ref = simapp_text(base, "Training", (40, 400), ov.FONT_PHASE)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 3
    x0, y0, x1, y1 = changed_box(out, base)
    assert (x0, y0) >= (38, 398) and x1 < 260 and y1 < 450  # only in the label's box
    box = out[y0:y1, x0:x1]
    assert (box.min(axis=2) >= 250).sum() > 100  # white glyph pixels
    assert (box.max(axis=2) <= 40).sum() > 50  # and the black shadow


def test_training_overlay_without_extra_leaves_the_top_untouched(frame):
    out = ov.training_overlay(frame, OverlayData(phase="Heatup"), ov.Minimap(load_track("reinvent_base")))
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.array_equal(out[:300, :380], frame[:300, :380])  # no gradient in training, as the simapp
    assert not np.array_equal(out[288:, 384:], frame[288:, 384:])  # the minimap


def test_training_extra_band_only_with_extra(frame):
    data = OverlayData(phase="Training", steering=-12.5, throttle=1.2, speed=2.0, progress=45.5, best_lap=10.0)
    plain = ov.training_overlay(frame, data, None)
    extra = ov.training_overlay(frame, replace(data, extra=True), None)
    assert np.array_equal(plain[: ov.EXTRA_BAND_H], frame[: ov.EXTRA_BAND_H])
    band = extra[:85]
    assert (band == 26).all(axis=2).mean() > 0.8  # RaceCarColorToRGB.Black band
    assert np.array_equal(extra[ov.EXTRA_BAND_H : 390], frame[ov.EXTRA_BAND_H : 390])
    white = band.min(axis=2) >= 250
    assert white[:, :200].sum() > 100 and white[:, 460:].sum() > 100  # left and right columns
    assert not white[:, 220:450].any()
    # the whole band is the simapp's layout drawn with plain PIL: left (10, 10/35/60), right (460, 10/35/60)
    ref = frame.copy()
    ref[: ov.EXTRA_BAND_H] = 26
    lines = [
        ("Best lap | 00:10.000", (460, 10)),
        ("Last lap | --:--.---", (460, 35)),
        ("Progress | 45.50%", (460, 60)),
        ("Steering | -12.50", (10, 10)),
        ("Throttle | 1.20", (10, 35)),
        ("Speed | 02.00 m/s", (10, 60)),
    ]
    for text, loc in lines:
        ref = simapp_text(ref, text, loc, ov.FONT_LINE)
    ref = simapp_text(ref, "Training", (40, 400), ov.FONT_PHASE)
    assert np.abs(extra.astype(int) - ref.astype(int)).max() <= 3


def test_evaluation_texts_sit_where_the_simapp_puts_them(frame):
    data = OverlayData(name="model", lap=1, laps=3, race_time=1.0, resets=0, speed=1.0, race_type="TIME_TRIAL")
    out = ov.evaluation_overlay(frame, data, None)
    # name at (10, 10)
    no_name = ov.evaluation_overlay(frame, replace(data, name=""), None)
    ref = simapp_text(no_name, "model", (10, 10), ov.FONT_NAME)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 3
    # each changing field changes only its own line
    rows = {
        "lap": (replace(data, lap=2), 40, 40 + 40),
        "race_time": (replace(data, race_time=61.5), 85, 85 + 25),
        "resets": (replace(data, resets=3), 110, 110 + 25),
        "speed": (replace(data, speed=2.5), 420, 420 + 25),
        "race_type": (replace(data, race_type="OBJECT_AVOIDANCE"), 445, 445 + 25),
    }
    for field, (other, top, bottom) in rows.items():
        x0, y0, x1, y1 = changed_box(out, ov.evaluation_overlay(frame, other, None))
        assert top - 2 <= y0 and y1 <= bottom, field
        assert 8 <= x0 and x1 < 260, field
    # the whole frame is the gradient plus the simapp's texts drawn with plain PIL at the simapp's positions
    bg = Image.fromarray(frame)
    ov._layer("single", (ov._accent(data),), None).blend(bg)
    ref = np.asarray(bg)
    for text, loc, spec in [
        ("model", (10, 10), ov.FONT_NAME),
        ("1/3", (10, 40), ov.FONT_LAP),
        ("Race | 00:01.000", (10, 85), ov.FONT_LINE),
        ("Reset | 0", (10, 110), ov.FONT_LINE),
        ("01.00 m/s", (10, 420), ov.FONT_SPEED),
        ("Time trial evaluation", (10, 445), ov.FONT_RACE_TYPE),
    ]:
        ref = simapp_text(ref, text, loc, spec)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 3


def test_evaluation_extra_lines(frame):
    data = OverlayData(name="m", laps=1, best_lap=9.5, steering=15.0, throttle=1.5)
    plain = ov.evaluation_overlay(frame, data, None)
    extra = ov.evaluation_overlay(frame, replace(data, extra=True), None)
    x0, y0, x1, y1 = changed_box(plain, extra)
    assert y0 >= 108 and y1 <= 215 and x1 < 260  # Best lap, Reset moved down, Steering, Throttle
    # with extra, Reset moves to y=135 and Steering / Throttle follow at 160 / 185
    moved = ov.evaluation_overlay(frame, replace(data, extra=True, resets=4), None)
    x0, y0, x1, y1 = changed_box(extra, moved)
    assert 133 <= y0 and y1 <= 160
    steer = ov.evaluation_overlay(frame, replace(data, extra=True, steering=-3.0), None)
    assert 158 <= changed_box(extra, steer)[1]


def test_long_names_are_cut_to_15_characters(frame):
    a = ov.evaluation_overlay(frame, OverlayData(name="abcdefghijklmnopqrstuvwxyz"), None)
    b = ov.evaluation_overlay(frame, OverlayData(name="abcdefghijklmno..."), None)
    assert np.array_equal(a, b)


def test_banner_only_when_done(frame):
    mm = ov.Minimap(load_track("reinvent_base"))
    data = OverlayData(name="m", laps=3, lap=3, minimap_xy=np.array([[1.0, 1.0]]))
    running = ov.evaluation_overlay(frame, data, mm)
    done = ov.evaluation_overlay(frame, replace(data, done=True), mm)
    x0, y0, x1, y1 = changed_box(running, done)
    assert (x0, y0) >= ov.BANNER_LOC and x1 <= 640 and y1 <= ov.BANNER_LOC[1] + ov.BANNER_H
    assert ov.BANNER_LOC == (332, 260)  # centred at (640 - 154, 480 - 180 - 20)
    assert (np.any(running != done, axis=2)).sum() > 0.5 * ov.BANNER_W * ov.BANNER_H
    assert not np.array_equal(running, ov.evaluation_overlay(frame, replace(data, resets=1), mm))


def test_overlays_return_new_arrays_and_check_shapes(frame):
    before = frame.copy()
    for fn in (ov.training_overlay, ov.evaluation_overlay):
        out = fn(frame, OverlayData(name="x"), None)
        assert out.shape == (H, W, 3) and out.dtype == np.uint8 and out.flags.writeable
        assert not np.shares_memory(out, frame)
        with pytest.raises(ValueError, match="480, 640, 3"):
            fn(frame[:240], OverlayData(), None)
    assert np.array_equal(frame, before)


def test_head_to_head_columns_and_race_time(frame):
    me = OverlayData(name="me", laps=2, race_time=5.0, race_type="HEAD_TO_MODEL")
    opp = OverlayData(name="them", laps=2)
    out = ov.head_to_head_overlay(frame, me, opp, None)
    x0, y0, x1, y1 = changed_box(out, ov.head_to_head_overlay(frame, me, replace(opp, name="zz"), None))
    assert 448 <= x0 and y1 <= 40
    x0, y0, x1, y1 = changed_box(out, ov.head_to_head_overlay(frame, me, replace(opp, resets=2), None))
    assert 448 <= x0 and 83 <= y0 and y1 <= 110
    x0, y0, x1, y1 = changed_box(out, ov.head_to_head_overlay(frame, replace(me, race_time=65.0), opp, None))
    assert 238 <= x0 and x1 < 440 and y1 <= 40
    # the banner once a car is done with its last lap
    fin = ov.head_to_head_overlay(frame, me, replace(opp, done=True, lap=2), None)
    x0, y0, _, _ = changed_box(out, fin)
    assert (x0, y0) >= ov.BANNER_LOC
    assert np.array_equal(out, ov.head_to_head_overlay(frame, me, replace(opp, done=True, lap=1), None))


def test_text_sprites_match_plain_pil_for_all_fonts():
    """The cached one-render sprites equal the simapp's five PIL draws (to rounding) for every font used."""
    bg = np.full((60, 400, 3), 128, np.uint8)
    for spec in (ov.FONT_NAME, ov.FONT_LAP, ov.FONT_LINE, ov.FONT_SPEED, ov.FONT_RACE_TYPE, ov.FONT_PHASE):
        im = Image.fromarray(bg)
        ov.draw_text(im, "Race | 01:02.345 Wy", (5, 5), spec)
        ref = simapp_text(bg, "Race | 01:02.345 Wy", (5, 5), spec)
        assert np.abs(np.asarray(im).astype(int) - ref.astype(int)).max() <= 3, spec
