"""Loading a trained nerfreg-feature run as a plugin's `SequenceData` (input frame and units)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nerfreg_ns.data.nerfstudio_io import load_foreground, read_nerfstudio_dataset
from nerfreg_ns.errors import NerfregError
from nerfreg_ns.geometry.cameras import c2w_opengl_to_opencv
from nerfreg_ns.registry import SequenceData


def load_sequence(config_path: Path, name: str) -> SequenceData:
    """Exports the run's surface (points, normals, keys) and reads its dataset's posed masks."""
    from nerfreg_ns.nerf.export import export_surface, load_run

    pipeline, step = load_run(config_path, require_features=True)
    surface = export_surface(pipeline)
    keep = _inliers(surface.points)
    surface.points, surface.normals, surface.keys = surface.points[keep], surface.normals[keep], surface.keys[keep]
    surface.spread = surface.spread[keep]
    ds = read_nerfstudio_dataset(Path(pipeline.datamanager.config.data))
    meta = ds.meta or {}
    lo, hi = np.percentile(surface.points, [1, 99], axis=0)
    extent = float(np.linalg.norm(hi - lo))  # robust to the odd floater
    diameter = float(meta.get("diameter") or extent)
    return SequenceData(
        name=name,
        points=surface.points,
        normals=surface.normals,
        diameter=diameter,
        masks=[load_foreground(f) for f in ds.frames],
        Ks=[f.K for f in ds.frames],
        T_world_camcv=[c2w_opengl_to_opencv(f.T_world_camgl) for f in ds.frames],
        keys=surface.keys,
        extra={"spread": surface.spread, "pipeline": pipeline, "dataset": ds, "meta": meta, "run": str(config_path), "step": step,
               "extent": extent, "images": [f.image_path for f in ds.frames]},
    )


def _inliers(points: np.ndarray) -> np.ndarray:
    """Indices of points that are not isolated floaters (Open3D statistical outlier removal)."""
    from nerfreg_ns.default_plugins.o3d_utils import to_o3d

    _, idx = to_o3d(points).remove_statistical_outlier(nb_neighbors=20, std_ratio=2.0)
    return np.asarray(idx, dtype=np.int64)


def check_same_object(seq1: SequenceData, seq2: SequenceData) -> None:
    """Refuses runs of different objects, units or scales (one line, before any work)."""
    m1, m2 = seq1.extra.get("meta", {}), seq2.extra.get("meta", {})
    if m1.get("unit") and m2.get("unit") and m1["unit"] != m2["unit"]:
        raise NerfregError(f"the runs are in different units: {m1['unit']} and {m2['unit']}")
    if m1.get("object") and m2.get("object") and m1["object"] != m2["object"]:
        raise NerfregError(f"the runs are of different objects: '{m1['object']}' and '{m2['object']}'")
    e1, e2 = seq1.extra.get("extent", seq1.diameter), seq2.extra.get("extent", seq2.diameter)
    if max(e1, e2) / max(min(e1, e2), 1e-12) > 1.6:
        raise NerfregError(f"the two reconstructions differ in size ({e1:.4g} vs {e2:.4g}): different objects or scales")
