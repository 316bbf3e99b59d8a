"""Perfect `SequenceData` from a synthetic case: the true model's depth seen by each recorded
camera. For plugin conformance tests and for benchmarks on ideal geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nerfreg_ns.data.mesh import load_mesh
from nerfreg_ns.data.nerfstudio_io import load_foreground, read_nerfstudio_dataset
from nerfreg_ns.data.render import Renderer, backproject
from nerfreg_ns.data.truth import read_truth
from nerfreg_ns.geometry.cameras import c2w_opengl_to_opencv
from nerfreg_ns.geometry.transforms import invert, rotate
from nerfreg_ns.registry import SequenceData


def sequence_from_truth(case: Path, sequence: str, max_points: int = 20000, seed: int = 0) -> SequenceData:
    """The surface of the case's model seen by `sequence`'s cameras, in that sequence's frame."""
    truth = read_truth(Path(case) / "truth.json")
    ds = read_nerfstudio_dataset(Path(case) / sequence)
    T_seq_obj = truth.T_seq1_obj if sequence == "seq1" else truth.T_seq2_obj
    renderer = Renderer(load_mesh(truth.model_path))
    pts, nrm, masks, Ks, poses = [], [], [], [], []
    for f in ds.frames:
        T_seq_cam = c2w_opengl_to_opencv(f.T_world_camgl)
        T_obj_cam = invert(T_seq_obj) @ T_seq_cam
        view = renderer.render(f.K, T_obj_cam, f.width, f.height)
        v, u, p_seq = backproject(view, f.K, T_seq_cam)
        pts.append(p_seq)
        nrm.append(rotate(T_seq_obj, view.normals[v, u]))
        masks.append(load_foreground(f))
        Ks.append(f.K)
        poses.append(T_seq_cam)
    p, n = np.concatenate(pts), np.concatenate(nrm)
    keep = np.random.default_rng(seed).permutation(len(p))[:max_points]
    return SequenceData(sequence, p[keep], n[keep], truth.diameter, masks, Ks, poses, images=[f.image_path for f in ds.frames],
                        unit=truth.unit, object_name=truth.object_name, case_id=truth.case_id,
                        source=f"{case}/{sequence} (true surface)")
