"""Loading a trained nerfreg-feature run as a plugin's `SequenceData` (input frame and units)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from nerfreg_ns.data.nerfstudio_io import load_foreground, read_nerfstudio_dataset
from nerfreg_ns.errors import NerfregError
from nerfreg_ns.geometry.cameras import c2w_opengl_to_opencv
from nerfreg_ns.geometry.points import robust_extent, to_o3d
from nerfreg_ns.geometry.units import check_unit
from nerfreg_ns.registry import SequenceData


def labelled_frames(data: Path):
    """A dataset (read) and all its frames in order, those with an empty mask too: every image
    gets a label."""
    ds = read_nerfstudio_dataset(data, empty_masks="skip")
    return ds, sorted([*ds.frames, *ds.skipped], key=lambda f: f.index)


def posed_views(frames) -> dict:
    """SequenceData's camera fields of these frames: masks, intrinsics, OpenCV camera-to-world, images."""
    return {"masks": [load_foreground(f) for f in frames], "Ks": [f.K for f in frames],
            "T_world_camcv": [c2w_opengl_to_opencv(f.T_world_camgl) for f in frames], "images": [f.image_path for f in frames]}


def load_sequence(config_path: Path, name: str) -> SequenceData:
    """A run's surface (points, normals, spread, keys where trained) without isolated floaters,
    and its dataset's posed masks. The surface comes from what the run's training saved
    (`saved_surface`); a run without it (trained before it was saved, or stopped and resumed) is
    loaded and its views rendered. Trained keys bring the run's query encoder as `features`,
    loaded only when a plugin asks for queries."""
    from nerfreg_ns.nerf.export import check_run
    from nerfreg_ns.nerf.saved_surface import read_saved_surface

    config_path = check_run(config_path)
    saved = read_saved_surface(config_path)
    if saved is not None and not saved.data.is_dir():  # dataset moved since training: the config says where
        saved = None
    if saved is not None:
        surface, data, flags = saved.surface, saved.data, saved.frame_flagged
        features = RunFeatures(config_path, saved.query_turns) if saved.keys_trained else None
    else:
        surface, data, flags, features = _render_run(config_path)
    keep = _inliers(surface.points)
    ds, frames = labelled_frames(data)
    meta = ds.meta or {}
    return SequenceData(
        name=name,
        points=surface.points[keep],
        normals=surface.normals[keep],
        diameter=float(meta.get("diameter") or robust_extent(surface.points[keep])),
        **posed_views(frames),
        keys=surface.keys[keep] if features is not None and surface.keys is not None else None,
        spread=surface.spread[keep],
        boundary=surface.boundary[keep] if surface.boundary is not None else None,
        unit=_unit(meta, ds.root),
        object_name=meta.get("object"),
        case_id=meta.get("case_id"),
        source=str(config_path),
        features=features,
        mask_trust=_mask_trust(flags, frames, data),
    )


def _render_run(config_path: Path):
    """(surface, dataset folder, frame flags, features or None) of a run loaded and rendered."""
    from nerfreg_ns.embedding.match import EncoderFeatures
    from nerfreg_ns.nerf.export import export_surface, load_run
    from nerfreg_ns.nerf.probe import query_rotations
    from nerfreg_ns.nerf.saved_surface import frame_flags

    pipeline, step = load_run(config_path)
    surface = export_surface(pipeline, step)
    features = None
    if surface.keys is not None:
        features = EncoderFeatures(pipeline.model.query_encoder, pipeline.config.query_size, query_rotations(pipeline))
    return surface, Path(pipeline.datamanager.config.data), frame_flags(pipeline), features


class RunFeatures:
    """A run's query encoder (`EncoderFeatures`), loaded on the first `queries`: only plugins that
    match images against keys pay for loading the run."""

    def __init__(self, config_path: Path, turns: int) -> None:
        self.config_path, self.turns = Path(config_path), turns
        self._encoder = None

    def queries(self, rgb: np.ndarray, mask: np.ndarray, turns: int):
        if self._encoder is None:
            from nerfreg_ns.embedding.match import EncoderFeatures
            from nerfreg_ns.nerf.export import load_run

            pipeline, _ = load_run(self.config_path, require_features=True)
            self._encoder = EncoderFeatures(pipeline.model.query_encoder, pipeline.config.query_size, self.turns)
        return self._encoder.queries(rgb, mask, turns)


def _mask_trust(flags: dict[str, bool], frames, data: Path) -> np.ndarray:
    """Per frame: False where training left the frame out (empty mask) or found its mask at odds
    with the others (`flags`, by image path relative to the dataset `data`)."""
    from nerfreg_ns.nerf.saved_surface import relative_name

    names = [relative_name(f.image_path, data) for f in frames]
    return np.array([n in flags and not flags[n] for n in names])


def _unit(meta: dict, root: Path) -> Optional[str]:
    try:
        return check_unit(meta.get("unit"))
    except NerfregError as e:
        raise NerfregError(f"{root}/transforms.json: {e}") from None


def _inliers(points: np.ndarray) -> np.ndarray:
    """Indices of points that are not isolated floaters (Open3D statistical outlier removal)."""
    _, idx = to_o3d(points).remove_statistical_outlier(nb_neighbors=20, std_ratio=2.0)
    return np.asarray(idx, dtype=np.int64)


def check_same_object(seq1: SequenceData, seq2: SequenceData, same_scale: bool = True) -> None:
    """Refuses runs of different objects, units or scales (one line, before any work); with
    `same_scale` False (a scale will be estimated) only different objects."""
    if seq1.object_name and seq2.object_name and seq1.object_name != seq2.object_name:
        raise NerfregError(f"the runs are of different objects: '{seq1.object_name}' and '{seq2.object_name}'")
    if not same_scale:
        return
    if seq1.unit and seq2.unit and seq1.unit != seq2.unit:
        raise NerfregError(f"the runs are in different units: {seq1.unit} and {seq2.unit}")
    e1, e2 = seq1.core_extent, seq2.core_extent
    if max(e1, e2) / max(min(e1, e2), 1e-12) > 1.6:
        raise NerfregError(f"the two reconstructions differ in size ({e1:.4g} vs {e2:.4g}): different objects or scales "
                           "(sequences posed each in its own scale, e.g. by SfM: pass --estimate-scale)")
