"""Held-out views of a synthetic case with the true surface point of every pixel (tests and benchmarks)."""

from __future__ import annotations

import numpy as np

from nerfreg_ns.data.mesh import load_mesh
from nerfreg_ns.data.render import Renderer, backproject
from nerfreg_ns.data.synth import camera_poses
from nerfreg_ns.data.truth import Truth
from nerfreg_ns.geometry.cameras import centred_K
from nerfreg_ns.nerf.probe import ProbeView


def probe_views(truth: Truth, elevation: tuple[float, float], n: int, size: int, seed: int,
                roll_deg: float = 0.0) -> list[ProbeView]:
    """n views (size x size) from an elevation band around the object (z up in the images unless
    `roll_deg` > 0: then each camera turns about its axis by a random angle within +-roll_deg)."""
    mesh = load_mesh(truth.model_path)
    mesh.apply_translation(-mesh.bounds.mean(axis=0))  # synth cases centre the model the same way
    f = 1.2 * size
    K = centred_K(f, size, size)
    renderer = Renderer(mesh)
    views = []
    rng = np.random.default_rng(seed)
    for T_obj_cam in camera_poses(n, elevation, f * 0.5 * truth.diameter / (0.38 * size), rng):
        if roll_deg > 0:
            a = np.radians(rng.uniform(-roll_deg, roll_deg))
            roll = np.eye(4)
            roll[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
            T_obj_cam = T_obj_cam @ roll
        v = renderer.render(K, T_obj_cam, size, size)
        vv, uu, p_seq1 = backproject(v, K, truth.T_seq1_obj @ T_obj_cam)
        pts = np.full((size, size, 3), np.nan)
        pts[vv, uu] = p_seq1
        views.append(ProbeView(v.rgb, v.mask, pts, K))
    return views
