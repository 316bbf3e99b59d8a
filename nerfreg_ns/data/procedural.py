"""The embedded default object: a procedural, T-LESS-like industrial part made here.

A chamfered base plate with a bored, chamfered boss, a block, two holes and an edge slot, built
by exact CSG (manifold3d through trimesh). No downloaded data; the same mesh every time.
It has no rotational symmetry, so a registration of it has one right answer.
"""

from __future__ import annotations

import numpy as np
import trimesh

DEFAULT_OBJECT_NAME = "nerfreg_part"


def _hull(points: np.ndarray) -> trimesh.Trimesh:
    return trimesh.convex.convex_hull(points)


def _chamfered_box(sx: float, sy: float, sz: float, chamfer: float) -> trimesh.Trimesh:
    """Box [-sx/2, sx/2] x [-sy/2, sy/2] x [0, sz] whose top edges are chamfered."""
    hx, hy, c = sx / 2, sy / 2, chamfer
    pts = []
    for x in (-1, 1):
        for y in (-1, 1):
            pts += [(x * hx, y * hy, 0.0), (x * hx, y * hy, sz - c), (x * (hx - c), y * (hy - c), sz)]
    return _hull(np.array(pts))


def _chamfered_cylinder(r: float, z0: float, z1: float, chamfer: float, sections: int = 48) -> trimesh.Trimesh:
    """Cylinder of radius r along z from z0 to z1 whose top rim is chamfered."""
    a = np.linspace(0, 2 * np.pi, sections, endpoint=False)
    ring = np.stack([np.cos(a), np.sin(a)], 1)
    pts = np.concatenate(
        [
            np.c_[ring * r, np.full(sections, z0)],
            np.c_[ring * r, np.full(sections, z1 - chamfer)],
            np.c_[ring * (r - chamfer), np.full(sections, z1)],
        ]
    )
    return _hull(pts)


def _bore(r: float, x: float, y: float, z0: float, z1: float) -> trimesh.Trimesh:
    cyl = trimesh.creation.cylinder(radius=r, height=z1 - z0, sections=32)
    cyl.apply_translation((x, y, (z0 + z1) / 2))
    return cyl


def _box(lo: tuple[float, float, float], hi: tuple[float, float, float]) -> trimesh.Trimesh:
    lo_a, hi_a = np.array(lo, float), np.array(hi, float)
    b = trimesh.creation.box(extents=hi_a - lo_a)
    b.apply_translation((lo_a + hi_a) / 2)
    return b


def make_default_part() -> trimesh.Trimesh:
    """The default part in millimetres, centred on its bounding-box centre like T-LESS models.

    About 64 x 40 x 40 mm (diameter about 85 mm).
    """
    base = _chamfered_box(64.0, 40.0, 12.0, chamfer=3.0)
    boss = _chamfered_cylinder(11.0, 0.0, 40.0, chamfer=3.0)
    boss.apply_translation((-14.0, 0.0, 0.0))
    block = _box((7.0, -14.0, 11.0), (25.0, -3.0, 26.0))
    solid = trimesh.boolean.union([base, boss, block], engine="manifold")
    cutters = [
        _bore(4.5, -14.0, 0.0, -1.0, 41.0),  # through the boss
        _bore(3.5, 18.0, 11.0, -1.0, 13.0),
        _bore(2.5, -27.0, -13.0, -1.0, 13.0),
        _box((26.0, -5.0, -1.0), (33.0, 5.0, 13.0)),  # slot in the +x edge
    ]
    part = trimesh.boolean.difference([solid, *cutters], engine="manifold")
    part.apply_translation(-part.bounds.mean(axis=0))
    part.merge_vertices()
    return part
