"""Scoring a registration (and a reconstruction) against a case's truth.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nerfreg_ns.data.mesh import SurfaceDistance, load_mesh, sample_surface
from nerfreg_ns.geometry.units import UNIT_TO_MM
from nerfreg_ns.data.truth import Truth
from nerfreg_ns.errors import NerfregError
from nerfreg_ns.geometry import metrics
from nerfreg_ns.geometry.transforms import apply, check_rigid, invert
from nerfreg_ns.io_utils import read_json

DIAMETER_MISMATCH = 0.05  # relative; larger means another object or another unit


def read_registration(path: Path, truth: Truth) -> np.ndarray:
    """Reads T_seq1_seq2 from a registration (or truth) JSON and checks it belongs to `truth`'s case."""
    data = read_json(path, "registration file")
    if not isinstance(data, dict) or "T_seq1_seq2" not in data:
        raise NerfregError(f"{path}: no 'T_seq1_seq2' in the registration file")
    T = check_rigid(data["T_seq1_seq2"], f"{path} T_seq1_seq2")
    case_id = data.get("case_id")
    if case_id is not None and str(case_id) != truth.case_id:
        raise NerfregError(f"{truth.path} is the truth of another case (case_id {truth.case_id}, registration has {case_id})")
    obj = data.get("object") or {}
    if obj.get("name") is not None and obj["name"] != truth.object_name:
        raise NerfregError(f"{truth.path} is the truth of another object ('{truth.object_name}', registration is of '{obj['name']}')")
    if "diameter" in obj and abs(float(obj["diameter"]) / truth.diameter - 1) > DIAMETER_MISMATCH:
        raise NerfregError(
            f"{truth.path} is of another object or unit: diameter {truth.diameter:.4g} vs {float(obj['diameter']):.4g} in the registration"
        )
    return T


class TruthModel:
    """The truth's model, sampled once, with exact distances to its surface (object frame)."""

    def __init__(self, truth: Truth, samples: int = 20000, seed: int = 0) -> None:
        self.truth = truth
        self.mesh = load_mesh(truth.model_path)
        self.points_obj, self.normals_obj = sample_surface(self.mesh, samples, seed)
        self.distance_obj = SurfaceDistance(self.mesh)
        self._support: np.ndarray | None = None  # camera_support's counts, once computed


def evaluate_registration(T_est: np.ndarray, model: TruthModel) -> dict[str, Any]:
    """All pose metrics of an estimated T_seq1_seq2; lengths in the truth's unit and as fractions of d."""
    truth, d = model.truth, model.truth.diameter
    T_gt = truth.T_seq1_seq2
    T_seq2_obj = truth.T_seq2_obj
    pts_seq2 = apply(T_seq2_obj, model.points_obj)
    T_obj_seq2 = invert(T_seq2_obj)
    surf = metrics.surface_error(T_est, T_gt, pts_seq2, lambda p: model.distance_obj(apply(T_obj_seq2, p)))
    add, adds = metrics.add(T_est, T_gt, pts_seq2), metrics.adds(T_est, T_gt, pts_seq2)
    centre_seq2 = apply(T_seq2_obj, model.mesh.bounds.mean(axis=0, keepdims=True))[0]
    t_err = metrics.translation_error(T_est, T_gt, centre_seq2)
    surf_frac = surf / d
    return {
        "object": truth.object_name,
        "unit": truth.unit,
        "diameter": d,
        "rotation_error_deg": metrics.rotation_error_deg(T_est, T_gt),
        "translation_error": t_err,
        "translation_error_frac": t_err / d,
        "add_frac": add / d,
        "adds_frac": adds / d,
        "surface_error": surf,
        "surface_error_frac": surf_frac,
        "success": bool(surf_frac < metrics.SUCCESS_SURFACE_ERROR),
        "add_success": bool(add / d < 0.1),
        "adds_below_0.1d": bool(adds / d < 0.1),
    }


def load_points(path: Path, samples: int = 20000, seed: int = 0) -> np.ndarray:
    """Points (N, 3) of a PLY/OBJ/STL: a mesh is sampled on its surface, a cloud used as it is."""
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise NerfregError(f"reconstruction file not found: {path}")
    try:
        geom = trimesh.load(path, process=False)
    except Exception as e:
        raise NerfregError(f"cannot read reconstruction {path}: {type(e).__name__}") from None
    if isinstance(geom, trimesh.Trimesh) and len(geom.faces):
        return sample_surface(geom, samples, seed)[0]
    pts = np.asarray(getattr(geom, "vertices", np.zeros((0, 3))), float)
    if len(pts) == 0:
        raise NerfregError(f"no points in reconstruction {path}")
    return pts


def visible_model_points(model: TruthModel, sequence: str, max_points: int = 50000) -> np.ndarray:
    """Model surface points (N, 3), object frame, that the views of `sequence` (seq1/seq2) see.

    Renders the model through the sequence's recorded cameras and back-projects the depth.
    """
    from nerfreg_ns.data.nerfstudio_io import read_nerfstudio_dataset
    from nerfreg_ns.data.render import Renderer, backproject
    from nerfreg_ns.geometry.cameras import c2w_opengl_to_opencv

    truth = model.truth
    ds = read_nerfstudio_dataset(truth.path.parent / sequence, check_masks=False)
    T_obj_seq = invert(truth.T_seq1_obj if sequence == "seq1" else truth.T_seq2_obj)
    renderer = Renderer(model.mesh)
    pts = []
    for f in ds.frames:
        T_obj_cam = T_obj_seq @ c2w_opengl_to_opencv(f.T_world_camgl)
        pts.append(backproject(renderer.render(f.K, T_obj_cam, f.width, f.height), f.K, T_obj_cam)[2])
    pts_all = np.concatenate(pts)
    keep = np.random.default_rng(0).permutation(len(pts_all))[:max_points]
    return pts_all[keep]


def camera_support(model: TruthModel, max_incidence_deg: float = 60.0) -> np.ndarray:
    """Per model sample (N,): how many cameras of both sequences see it unoccluded, at most
    `max_incidence_deg` from its outward normal. A deep bore's walls get few: a texture-less
    field cannot resolve them, so a merged model (both sequences) is judged apart there.
    Cached on the model: it depends on the truth only."""
    if model._support is not None:
        return model._support
    from nerfreg_ns.data.nerfstudio_io import read_nerfstudio_dataset
    from nerfreg_ns.data.render import Renderer
    from nerfreg_ns.geometry.cameras import c2w_opengl_to_opencv, in_image, project

    truth, pts, nrm, mesh = model.truth, model.points_obj, model.normals_obj, model.mesh
    scene = Renderer(mesh)
    two_sided = not mesh.is_winding_consistent  # normals of unknown sign: either side may face out
    count = np.zeros(len(pts), int)
    cos_max = np.cos(np.radians(max_incidence_deg))
    eps = 1e-3 * truth.diameter
    for sequence, T_seq_obj in (("seq1", truth.T_seq1_obj), ("seq2", truth.T_seq2_obj)):
        ds = read_nerfstudio_dataset(truth.path.parent / sequence, check_masks=False)
        for f in ds.frames:
            T_obj_cam = invert(T_seq_obj) @ c2w_opengl_to_opencv(f.T_world_camgl)
            centre = T_obj_cam[:3, 3]
            to_cam = centre - pts
            dist = np.linalg.norm(to_cam, axis=1)
            cos = (to_cam * nrm).sum(1) / dist
            front = (np.abs(cos) if two_sided else cos) > cos_max
            uv, z = project(f.K, invert(T_obj_cam), pts)  # points are never at the camera: z > 0 or behind
            cand = front & (z > eps) & in_image(np.where(z[:, None] > eps, uv, -1.0), f.width, f.height)
            if not cand.any():
                continue
            # an exact ray from the camera to each point: seen when nothing is hit before it
            rays = np.concatenate([np.broadcast_to(centre, (int(cand.sum()), 3)), -to_cam[cand] / dist[cand, None]], 1)
            t_hit = scene.first_hit(rays)
            seen = np.zeros(len(pts), bool)
            seen[cand] = t_hit >= dist[cand] - eps
            count += seen
    model._support = count
    return count


def evaluate_reconstruction(recon_points: np.ndarray, model: TruthModel, frame: str,
                            visible_from: str | None = None, well_seen_by: int = 0) -> dict[str, Any]:
    """Chamfer distance (both directions) between a reconstruction in `frame` and the model:
    its whole surface, or only what the views of `visible_from` (seq1/seq2) see. With
    `well_seen_by` N > 0 and the whole surface, also model-to-reconstruction over the part at
    least N cameras of both sequences see well (`camera_support`; meant for the merged model) and
    over the rest."""
    if well_seen_by < 0:
        raise NerfregError(f"well_seen_by must be 0 (off) or a number of cameras, not {well_seen_by}")
    truth, d = model.truth, model.truth.diameter
    T_frame_obj = {"seq1": truth.T_seq1_obj, "seq2": truth.T_seq2_obj, "obj": np.eye(4)}[frame]
    model_pts = visible_model_points(model, visible_from) if visible_from else model.points_obj
    cad = apply(T_frame_obj, model_pts)
    extent = np.linalg.norm(np.ptp(recon_points, axis=0))
    if not (0.2 * d < extent < 5 * d):
        raise NerfregError(
            f"the reconstruction (extent {extent:.4g}) does not match the truth's object (diameter {d:.4g} {truth.unit}): another object or unit?"
        )
    ch = metrics.chamfer(recon_points, cad)
    to_mm = UNIT_TO_MM.get(truth.unit, float("nan"))
    return {
        "frame": frame,
        "model_surface": f"visible from {visible_from}" if visible_from else "whole",
        "recon_to_model_mm": ch["a_to_b"] * to_mm,
        "model_to_recon_mm": ch["b_to_a"] * to_mm,
        "chamfer_mm": ch["mean"] * to_mm,
        "recon_to_model_frac": ch["a_to_b"] / d,
        "model_to_recon_frac": ch["b_to_a"] / d,
        "chamfer_frac": ch["mean"] / d,
        "recon_points": int(len(recon_points)),
        **(_well_seen_split(recon_points, cad, model, well_seen_by) if well_seen_by and not visible_from else {}),
    }


def _well_seen_split(recon_points: np.ndarray, cad: np.ndarray, model: TruthModel, n: int) -> dict[str, Any]:
    from scipy.spatial import cKDTree

    d = model.truth.diameter
    well = camera_support(model) >= n
    to_recon = cKDTree(recon_points).query(cad)[0] / d
    return {
        "well_seen_by": n,
        "well_seen_surface_frac": float(well.mean()),
        "model_to_recon_well_seen_frac": float(to_recon[well].mean()) if well.any() else float("nan"),
        "model_to_recon_rest_frac": float(to_recon[~well].mean()) if (~well).any() else float("nan"),
    }
