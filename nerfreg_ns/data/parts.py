"""A family of procedural mechanical parts, one per seed, so a benchmark covers many shapes.

Families: long thin arms (links with bored bosses), L brackets with holes, plates with holes and
slots, stands (frames with openings), flanges (near rotational symmetry broken by one feature)
and stepped blocks (asymmetric). Sizes are drawn log-uniformly from 20 mm to 0.5 m; each part is
built in millimetres by exact CSG (manifold3d through trimesh) and centred on its bounding box.
The same seed always gives the same part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import trimesh

from nerfreg_ns.data.procedural import _bore, _box, _chamfered_box, _chamfered_cylinder

SIZE_RANGE_MM = (20.0, 500.0)


@dataclass(frozen=True)
class PartInfo:
    family: str
    seed: int
    size_mm: float
    """Largest bounding-box side."""

    @property
    def name(self) -> str:
        return f"{self.family}_{self.seed:03d}"


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _union(parts: list[trimesh.Trimesh]) -> trimesh.Trimesh:
    return trimesh.boolean.union(parts, engine="manifold")


def _cut(solid: trimesh.Trimesh, cutters: list[trimesh.Trimesh]) -> trimesh.Trimesh:
    return trimesh.boolean.difference([solid, *cutters], engine="manifold") if cutters else solid


def _arm(rng: np.random.Generator) -> trimesh.Trimesh:
    """A link: a thin bar between two bored bosses of different sizes, maybe a lightening slot."""
    length, width, thick = 100.0, _u(rng, 8, 16), _u(rng, 4, 9)
    r1, r2 = _u(rng, 0.7, 1.0) * width, _u(rng, 0.45, 0.7) * width
    bar = _box((-length / 2, -width / 2, 0), (length / 2, width / 2, thick))
    h1, h2 = thick * _u(rng, 1.3, 2.2), thick * _u(rng, 1.0, 1.6)
    b1 = _chamfered_cylinder(r1, 0, h1, 0.1 * r1)
    b1.apply_translation((-length / 2, 0, 0))
    b2 = _chamfered_cylinder(r2, 0, h2, 0.1 * r2)
    b2.apply_translation((length / 2, 0, 0))
    cutters = [_bore(0.5 * r1, -length / 2, 0, -1, h1 + 1), _bore(0.45 * r2, length / 2, 0, -1, h2 + 1)]
    if rng.random() < 0.6:
        cutters.append(_box((-length * 0.25, -width * 0.2, -1), (length * _u(rng, 0.05, 0.3), width * 0.2, thick + 1)))
    return _cut(_union([bar, b1, b2]), cutters)


def _bracket(rng: np.random.Generator) -> trimesh.Trimesh:
    """An L bracket: a base and an upright flange of their own lengths, holes in both, a gusset."""
    w, t = _u(rng, 30, 60), _u(rng, 4, 10)
    lb, lu = _u(rng, 40, 80), _u(rng, 25, 70)
    base = _box((0, -w / 2, 0), (lb, w / 2, t))
    upright = _box((0, -w / 2, 0), (t, w / 2, lu))
    parts = [base, upright]
    if rng.random() < 0.7:  # a triangular gusset on one side only: no mirror symmetry
        g = _u(rng, 0.3, 0.6)
        y0 = -w / 2 if rng.random() < 0.5 else w / 2 - t
        pts = np.array([[t, y0, t], [t + g * lb, y0, t], [t, y0, t + g * lu]])
        parts.append(trimesh.convex.convex_hull(np.concatenate([pts, pts + [0, t, 0]])))
    cutters = []
    for _ in range(int(rng.integers(1, 4))):
        cutters.append(_bore(_u(rng, 2, 5), _u(rng, t + 8, lb - 8), _u(rng, -w / 2 + 8, w / 2 - 8), -1, t + 1))
    hole = trimesh.creation.cylinder(radius=_u(rng, 3, 7), height=3 * t, sections=32)
    hole.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, (0, 1, 0)))
    hole.apply_translation((t / 2, _u(rng, -w / 4, w / 4), _u(rng, t + 10, max(lu - 8, t + 11))))
    cutters.append(hole)
    return _cut(_union(parts), cutters)


def _plate(rng: np.random.Generator) -> trimesh.Trimesh:
    """A chamfered plate with scattered through-holes and an edge slot."""
    sx, sy, t = 100.0, 100.0 * _u(rng, 0.4, 0.9), _u(rng, 5, 14)
    plate = _chamfered_box(sx, sy, t, chamfer=min(2.0, t / 3))
    cutters = []
    for _ in range(int(rng.integers(2, 6))):
        r = _u(rng, 2.5, 8)
        cutters.append(_bore(r, _u(rng, -sx / 2 + r + 4, sx / 2 - r - 4), _u(rng, -sy / 2 + r + 4, sy / 2 - r - 4), -1, t + 1))
    y = _u(rng, -sy / 4, sy / 4)
    cutters.append(_box((sx / 2 - _u(rng, 8, 20), y - 4, -1), (sx / 2 + 1, y + 4, t + 1)))
    return _cut(plate, cutters)


def _stand(rng: np.random.Generator) -> trimesh.Trimesh:
    """A frame standing on a foot: a rectangular window through it and holes in the foot."""
    w, h, t = _u(rng, 50, 80), _u(rng, 50, 90), _u(rng, 6, 12)
    foot = _box((-w / 2, -_u(rng, 15, 30), 0), (w / 2, t, t))
    frame = _box((-w / 2, 0, 0), (w / 2, t, h))
    bar = _u(rng, 7, 12)
    window = _box((-w / 2 + bar, -1, t + bar), (w / 2 - bar * _u(rng, 1, 2.5), t + 1, h - bar))
    cutters = [window, _bore(_u(rng, 2, 4), -w / 3, -8, -1, t + 1), _bore(_u(rng, 2, 4), w / 4, -8, -1, t + 1)]
    return _cut(_union([foot, frame]), cutters)


def _flange(rng: np.random.Generator) -> trimesh.Trimesh:
    """A bored flange with a hub: near rotational symmetry, broken by a key slot and a lug."""
    r, t = 50.0, _u(rng, 6, 14)
    disc = _chamfered_cylinder(r, 0, t, 1.5)
    hub = _chamfered_cylinder(_u(rng, 0.3, 0.45) * r, 0, t + _u(rng, 10, 30), 2.0)
    lug = _box((r * 0.8, -6, 0), (r * 1.25, 6, t))
    cutters = [_bore(_u(rng, 0.15, 0.25) * r, 0, 0, -1, 100)]
    n = int(rng.integers(3, 7))
    for k in range(n):
        a = 2 * np.pi * k / n + 0.3
        cutters.append(_bore(0.07 * r, 0.7 * r * np.cos(a), 0.7 * r * np.sin(a), -1, t + 1))
    cutters.append(_box((-0.35 * r, -2.5, t * 0.5), (-0.1 * r, 2.5, t + 40)))  # key slot in the hub
    return _cut(_union([disc, hub, lug]), cutters)


def _block(rng: np.random.Generator) -> trimesh.Trimesh:
    """Stepped block: two or three boxes at different heights, a blind pocket and a bore."""
    sx, sy = 100.0, 100.0 * _u(rng, 0.5, 0.9)
    h = _u(rng, 20, 45)
    parts = [_box((-sx / 2, -sy / 2, 0), (sx / 2, sy / 2, h * _u(rng, 0.3, 0.5)))]
    parts.append(_box((-sx / 2, -sy / 2, 0), (-sx / 2 + sx * _u(rng, 0.3, 0.5), sy / 2, h)))
    if rng.random() < 0.5:
        parts.append(_box((sx * 0.1, -sy / 2, 0), (sx / 2, -sy / 2 + sy * _u(rng, 0.25, 0.4), h * _u(rng, 0.55, 0.8))))
    cutters = [_box((sx * 0.05, sy * 0.05, h * 0.15), (sx * 0.35, sy * 0.4, h + 1)),
               _bore(_u(rng, 3, 7), -sx / 2 + sx * 0.15, 0, -1, h + 1)]
    return _cut(_union(parts), cutters)


FAMILIES: dict[str, Callable[[np.random.Generator], trimesh.Trimesh]] = {
    "arm": _arm, "bracket": _bracket, "plate": _plate, "stand": _stand, "flange": _flange, "block": _block,
}


def make_random_part(seed: int, family: str | None = None, size_mm: float | None = None) -> tuple[trimesh.Trimesh, PartInfo]:
    """Part number `seed` (mm, centred on its bounding box): families cycle with the seed unless
    one is named; its largest side is `size_mm` or drawn log-uniformly from SIZE_RANGE_MM."""
    rng = np.random.default_rng(seed)
    names = list(FAMILIES)
    family = family or names[seed % len(names)]
    if family not in FAMILIES:
        raise ValueError(f"unknown part family '{family}' (known: {', '.join(names)})")
    size = size_mm or float(np.exp(rng.uniform(*np.log(SIZE_RANGE_MM))))
    mesh = FAMILIES[family](rng)
    mesh.apply_scale(size / float(np.max(mesh.extents)))
    mesh.apply_translation(-mesh.bounds.mean(axis=0))
    mesh.merge_vertices()
    return mesh, PartInfo(family, seed, size)
