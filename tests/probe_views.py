"""Held-out views of a synthetic case with the true surface point of every pixel (tests and benchmarks)."""

from __future__ import annotations

import numpy as np

from nerfreg_ns.data.mesh import load_mesh
from nerfreg_ns.data.render import Renderer, backproject
from nerfreg_ns.data.synth import camera_poses
from nerfreg_ns.data.truth import Truth
from nerfreg_ns.geometry.cameras import K_matrix
from nerfreg_ns.nerf.probe import ProbeView


def probe_views(truth: Truth, elevation: tuple[float, float], n: int, size: int, seed: int) -> list[ProbeView]:
    mesh = load_mesh(truth.model_path)
    mesh.apply_translation(-mesh.bounds.mean(axis=0))  # synth cases centre the model the same way
    f = 1.2 * size
    K = K_matrix(f, f, size / 2, size / 2)
    renderer = Renderer(mesh)
    views = []
    for T_obj_cam in camera_poses(n, elevation, f * 0.5 * truth.diameter / (0.38 * size), np.random.default_rng(seed)):
        v = renderer.render(K, T_obj_cam, size, size)
        vv, uu, p_seq1 = backproject(v, K, truth.T_seq1_obj @ T_obj_cam)
        pts = np.full((size, size, 3), np.nan)
        pts[vv, uu] = p_seq1
        views.append(ProbeView(v.rgb, v.mask, pts))
    return views
