"""What a real capture does to clean renders: imperfect masks, bad frames, room light, background.

Each effect is an option of `CaptureOptions`; the preset `realistic` is one stated combination.
Images are always rendered from the true poses; what is corrupted is what a method is given
(masks, recorded poses, pixels), and the frames given a gross mask error are recorded in
truth.json so a label check can be scored against them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, Optional

import cv2
import numpy as np

Background = Literal["black", "noisy"]
Lighting = Literal["camera", "room"]


@dataclass(frozen=True)
class CaptureOptions:
    """Capture geometry and corruptions. Defaults are a clean render (the project's old cases)."""

    fill: tuple[float, float] = (0.76, 0.76)
    """Range of the object's projected diameter over the image's shorter side, drawn per view."""
    roll_deg: float = 0.0
    """Random camera roll about the optical axis, up to this many degrees."""
    lookat_jitter: float = 0.0
    """Cameras aim at a point up to this fraction of the diameter away from the object centre."""
    uneven: float = 0.0
    """Fraction of each sequence's views crowded into one 90-degree azimuth sector."""
    mask_error_px: float = 0.0
    """Every mask grown or shrunk by up to this many pixels, with ragged edges."""
    bad_frames: float = 0.0
    """Fraction of frames whose mask has a gross error (a blob added or a piece missing)."""
    rot_noise_deg: float = 0.0
    """Noise on the recorded camera rotations (max degrees, random axis)."""
    trans_noise: float = 0.0
    """Noise on the recorded camera positions (RMS, fraction of the diameter)."""
    principal_jitter: float = 0.0
    """Per-image random shift of the principal point (pixels), as in T-LESS."""
    lighting: Lighting = "camera"
    """`camera`: a key light fixed to the camera; `room`: fixed in the room, above the turntable,
    so the flipped-over capture is lit from the other side of the part."""
    specular: float = 0.0
    """Strength of Blinn-Phong highlights (0: matte)."""
    background: Background = "black"
    """`noisy`: a dark, uneven, noisy background around the object (the mask is still given)."""


PRESETS: dict[str, CaptureOptions] = {
    "clean": CaptureOptions(),
    # the stated combination the benchmarks call realistic
    "realistic": CaptureOptions(
        fill=(0.45, 0.75), roll_deg=10.0, lookat_jitter=0.05, uneven=0.0, mask_error_px=1.0,
        bad_frames=0.05, rot_noise_deg=0.5, trans_noise=0.005, principal_jitter=2.0,
        lighting="room", specular=0.35, background="noisy",
    ),
}


def capture_options(preset: str, **overrides: Optional[object]) -> CaptureOptions:
    """The preset with every override that is not None applied."""
    if preset not in PRESETS:
        raise ValueError(f"unknown capture preset '{preset}' (known: {', '.join(PRESETS)})")
    return replace(PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None})


def smooth_noise(h: int, w: int, rng: np.random.Generator, cells: int = 8) -> np.ndarray:
    """A smooth random field (H, W) in about [-1, 1] with `cells` bumps across the shorter side."""
    gh, gw = max(2, round(cells * h / min(h, w))), max(2, round(cells * w / min(h, w)))
    field = cv2.resize(rng.uniform(-1, 1, (gh, gw)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(field / max(float(np.abs(field).max()), 1e-6), -1, 1)


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Pixel distance (H, W) to the mask's outline: +0.5 on the outermost inside pixels, -0.5 on
    the first outside ones, growing inwards and outwards."""
    m = mask.astype(np.uint8)
    inside = cv2.distanceTransform(m, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(1 - m, cv2.DIST_L2, 5)
    return np.where(mask, inside - 0.5, 0.5 - outside)


def ragged_mask(mask: np.ndarray, max_px: float, rng: np.random.Generator) -> np.ndarray:
    """The mask grown or shrunk by a random amount (60% of max_px at most) plus a ragged smooth
    wobble (the other 40%): the outline moves by at most `max_px` anywhere."""
    if max_px <= 0:
        return mask
    h, w = mask.shape
    offset = rng.uniform(-0.6, 0.6) * max_px + 0.4 * max_px * smooth_noise(h, w, rng, cells=12)
    out = signed_distance(mask) + offset > 0
    return out if out.any() else mask


def gross_error(mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A blob added at the outline or a piece cut from it (an ellipse 15-35% of the object's
    size), as a segmenter does on a bad frame; returns the new mask and which it was."""
    ys, xs = np.nonzero(mask)
    size = max(xs.max() - xs.min(), ys.max() - ys.min()) + 1
    edge = np.argwhere(np.abs(signed_distance(mask)) < 1)
    cy, cx = edge[rng.integers(len(edge))]
    axes = (max(2, int(size * rng.uniform(0.15, 0.35))), max(2, int(size * rng.uniform(0.15, 0.35))))
    blob = np.zeros(mask.shape, np.uint8)
    cv2.ellipse(blob, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    kind = "blob added" if rng.random() < 0.5 else "piece missing"
    out = mask | (blob > 0) if kind == "blob added" else mask & (blob == 0)
    if out.sum() < 0.3 * mask.sum():  # never wipe the object out: that is the empty-mask case
        out, kind = mask | (blob > 0), "blob added"
    return out, kind


def background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A dark, uneven, noisy background (H, W, 3) float in [0, 1]: a room a phone would film."""
    base = rng.uniform(0.04, 0.16)
    tint = rng.uniform(0.8, 1.2, 3)
    shade = base * (1 + 0.6 * smooth_noise(h, w, rng, cells=3))[..., None] * tint
    return np.clip(shade + rng.normal(0, 0.025, (h, w, 3)), 0, 1)


def room_light(elevation_sign: float, rng: np.random.Generator) -> np.ndarray:
    """Unit direction (3,) towards a light fixed above the turntable, in the object frame of a
    capture whose cameras are on the `elevation_sign` side (+1 upper, -1 flipped over)."""
    az, el = rng.uniform(0, 2 * np.pi), np.radians(rng.uniform(40, 70)) * np.sign(elevation_sign)
    return np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
