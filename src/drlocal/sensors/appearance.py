"""What each DeepRacer world looks like to the camera: colours, line sizes, walls, sky (contract §4.4).

The data (`appearance.json`, see `APPEARANCE-NOTICE.md`) holds the mean *albedo* of every ground part
(road, field, border line, centre line, kerb), the wall and the sky, measured from the simapp's Gazebo
textures, plus line widths, dash sizes and the field/wall boxes. This module turns those into the
*lit* grey levels the renderer draws.

Lighting (every simapp world has the same lights): scene ambient 0.5 and a directional "sun" with diffuse
colour (1, 1, 0.8), intensity 1, direction (-0.5, 0.1, -0.9), no shadows. A surface with normal n gets the
per-channel factor ``AMBIENT + SUN_DIFFUSE * max(0, n · -sun)``: for the flat ground that is
0.5 + 0.870 * (1, 1, 0.8) = (1.370, 1.370, 1.196). The lit colour is ``clip(albedo * factor, 0, 255)``
and its grey level is the simapp's luma 0.2989 R + 0.587 G + 0.114 B. The weak point light 15 m up
(diffuse 0.225) is left out: its share under Gazebo's Ogre2 shading is not known, and the constant
factor above already keeps the ordering of the json (road < field < centre line < border line).
The sky (a background colour or an unlit dome) is not lit.

Texture noise: each part keeps its own luma standard deviation from the json (scaled by the same
lighting gain), which the renderer bakes into the ground texture as deterministic noise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

#: Scene ambient of every simapp world.
AMBIENT = 0.5
#: Directional sun of every simapp world: diffuse colour (RGB) and direction (pointing down).
SUN_DIFFUSE = np.array([1.0, 1.0, 0.8])
SUN_DIRECTION = np.array([-0.5, 0.1, -0.9]) / np.linalg.norm([-0.5, 0.1, -0.9])
#: Luma weights of the simapp's float conversion (RGB → grey, then truncated to uint8).
LUMA_WEIGHTS = np.array([0.2989, 0.587, 0.114])
#: Gazebo's default sky for worlds with an empty <sky/> (116 worlds; the assets define no colour):
#: a plausible light blue-grey near the horizon, where the camera sees it.
DEFAULT_SKY_RGB = (165, 185, 205)
#: Ground outside the world's field box (only seen far away on city tracks): a neutral grey albedo.
NEUTRAL_GROUND_RGB = (110, 110, 110)
NEUTRAL_GROUND_STD = 5.0
#: Kerb stripes: the json gives the mean of a red/white texture; the renderer alternates the white
#: (the border-line colour) and the red that gives that mean (2·kerb − white), every KERB_STRIPE_M.
KERB_STRIPE_M = 0.15
#: Worlds without an entry fall back to this world's appearance (the default DeepRacer track).
DEFAULT_WORLD = "reInvent2019_track"
#: Albedo grey of obstacle boxes when the caller gives no colour.
DEFAULT_BOX_LUMA = 180.0


def light_factor(normal: np.ndarray | tuple[float, float, float]) -> np.ndarray:
    """Per-channel lighting factor (3,) of a surface with (outward) `normal`."""
    n = np.asarray(normal, dtype=np.float64)
    n = n / np.linalg.norm(n)
    return AMBIENT + SUN_DIFFUSE * max(0.0, float(-SUN_DIRECTION @ n))


def luma(rgb: np.ndarray | tuple[float, float, float]) -> float:
    """The simapp's grey level of an RGB colour (float, 0-255)."""
    return float(np.asarray(rgb, dtype=np.float64) @ LUMA_WEIGHTS)


def lit_luma(rgb, normal=(0.0, 0.0, 1.0)) -> float:
    """Grey level of albedo `rgb` lit by the world lights on a surface with `normal` (clipped at 255)."""
    lit = np.clip(np.asarray(rgb, dtype=np.float64) * light_factor(normal), 0.0, 255.0)
    return luma(lit)


def luma_gain(normal) -> float:
    """Luma gain of a grey surface with outward `normal` (ambient + sun, luma-weighted)."""
    return float(light_factor(normal) @ LUMA_WEIGHTS / LUMA_WEIGHTS.sum())


def sun_cosine(normals: np.ndarray) -> np.ndarray:
    """max(0, n · -sun) of unit outward normals (..., 3): the sun's share on each surface."""
    return np.maximum(0.0, -(np.asarray(normals, dtype=np.float64) @ SUN_DIRECTION))


def luma_gains(normals: np.ndarray) -> np.ndarray:
    """`luma_gain` of many unit normals (..., 3) at once."""
    sun = float(SUN_DIFFUSE @ LUMA_WEIGHTS / LUMA_WEIGHTS.sum())
    return AMBIENT + sun * sun_cosine(normals)


def lit_lumas(rgb: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """`lit_luma` of albedos rgb (..., 3) on surfaces with unit normals (..., 3), broadcast: (...)."""
    factor = AMBIENT + SUN_DIFFUSE * sun_cosine(normals)[..., None]
    return np.clip(np.asarray(rgb, dtype=np.float64) * factor, 0.0, 255.0) @ LUMA_WEIGHTS


@dataclass(frozen=True)
class Material:
    """A ground part as rendered: mean lit grey level and the std of its texture noise."""

    mean: float
    std: float

    @classmethod
    def from_part(cls, part: dict | None, fallback: tuple[int, int, int] = NEUTRAL_GROUND_RGB) -> Material:
        rgb = part["rgb"] if part and part.get("rgb") else fallback
        std = float(part.get("luma_std") or 0.0) if part else NEUTRAL_GROUND_STD
        albedo = luma(rgb)
        mean = lit_luma(rgb)
        return cls(mean=mean, std=std * (mean / albedo if albedo > 0 else 1.0))


@dataclass(frozen=True)
class Wall:
    """A wall (or backdrop) standing on an axis-aligned rectangle [xmin, ymin, xmax, ymax] [m]."""

    bbox: tuple[float, float, float, float]
    height: float
    rgb: tuple[int, int, int]
    kind: str
    offset: float

    def face_luma(self) -> np.ndarray:
        """Lit grey of the face seen by a ray going +x, -x, +y, -y (normals -x, +x, -y, +y), (4,)."""
        normals = [(-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0)]
        return np.array([lit_luma(self.rgb, n) for n in normals])


@dataclass(frozen=True)
class Appearance:
    """Everything the camera renderer needs to know about one world."""

    world: str
    road: Material
    field: Material
    border: Material
    centre: Material
    neutral: Material
    kerb_white: Material | None
    kerb_red: Material | None
    kerb_width: float
    sky_luma: float
    border_width: float
    centre_width: float
    dashed: bool
    dash: float
    gap: float
    field_bbox: tuple[float, float, float, float] | None
    wall: Wall | None


@lru_cache(maxsize=1)
def _data() -> dict:
    text = (resources.files("drlocal.sensors") / "appearance.json").read_text()
    return json.loads(text)


def appearance_worlds() -> tuple[str, ...]:
    """World names that have appearance data."""
    return tuple(sorted(k for k in _data() if not k.startswith("_")))


def _kerb(entry: dict, border_rgb) -> tuple[Material | None, Material | None, float]:
    kerb = entry.get("kerb")
    if not kerb or not kerb.get("rgb"):
        return None, None, 0.0
    white = np.asarray(border_rgb, dtype=np.float64)
    red = np.clip(2.0 * np.asarray(kerb["rgb"], dtype=np.float64) - white, 0, 255)
    return (
        Material(lit_luma(white), 2.0),
        Material(lit_luma(red), 2.0),
        float(kerb.get("width_m") or 0.1),
    )


def _border_width(entry: dict) -> float:
    width = float(entry.get("border_line_width_m") or 0.076)
    # Straight_track's 0.153 m comes from short open ribbons that break the rectangle estimate
    # (appearance.md calls it unreliable): use the common 0.076 m instead.
    return 0.076 if width > 0.12 else width


@lru_cache(maxsize=256)
def load_appearance(world: str | None) -> Appearance:
    """Appearance of `world` (a simapp world name); unknown names get DEFAULT_WORLD's, never an error."""
    data = _data()
    name = world if world in data and not str(world).startswith("_") else DEFAULT_WORLD
    if name not in data:  # case-insensitive match before falling back
        lowered = {k.lower(): k for k in data}
        name = lowered.get(str(world).lower(), DEFAULT_WORLD)
    e = data[name]
    border_rgb = e["border_line"]["rgb"]
    kerb_white, kerb_red, kerb_width = _kerb(e, border_rgb)
    sky = e.get("sky")
    sky_rgb = sky["rgb"] if sky and sky.get("rgb") else DEFAULT_SKY_RGB
    dash = e.get("dash_m") or [0.051, 0.051]
    wall = None
    w = e.get("wall")
    if w and w.get("rgb") and e.get("wall_bbox_m") and e.get("wall_height_m"):
        wall = Wall(
            bbox=tuple(float(v) for v in e["wall_bbox_m"]),
            height=float(e["wall_height_m"]),
            rgb=tuple(int(v) for v in w["rgb"]),
            kind=str(w.get("object") or "wall"),
            offset=float(e.get("wall_offset_m") or 0.0),
        )
    fb = e.get("field_bbox_m")
    return Appearance(
        world=name,
        road=Material.from_part(e["road"]),
        field=Material.from_part(e["field"]),
        border=Material.from_part(e["border_line"]),
        centre=Material.from_part(e["centre_line"]),
        neutral=Material.from_part(None),
        kerb_white=kerb_white,
        kerb_red=kerb_red,
        kerb_width=kerb_width,
        sky_luma=luma(sky_rgb),
        border_width=_border_width(e),
        centre_width=float(e.get("centre_line_width_m") or 0.025),
        dashed=bool(e["centre_line"].get("dashed", True)),
        dash=float(dash[0]),
        gap=float(dash[1]),
        field_bbox=tuple(float(v) for v in fb) if fb else None,
        wall=wall,
    )
