"""What nerfreg-register delivers: registration.json, the merged model, BOP labels for every
image of both sequences, and a report picture."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import numpy as np

from nerfreg_ns import __version__
from nerfreg_ns.data.bop_io import write_bop_models, write_bop_scene
from nerfreg_ns.data.images import encode_png, read_image
from nerfreg_ns.errors import NerfregError
from nerfreg_ns.geometry.metrics import SUCCESS_SURFACE_ERROR
from nerfreg_ns.geometry.points import to_o3d, voxel_unique
from nerfreg_ns.geometry.symmetry import Q95_FACTOR, Symmetries, object_symmetries
from nerfreg_ns.geometry.transforms import apply, invert, make_T, rotate
from nerfreg_ns.geometry.units import UNITS, check_unit, mm_per_unit, scale_T
from nerfreg_ns.register.labels import ImageLabel, label_sequence
from nerfreg_ns.register.run import Result
from nerfreg_ns.register.scale import similarity_matrix
from nerfreg_ns.registry import SequenceData

MAX_SPREAD_FRAC = 0.06
"""Merged-model points whose ray opacity took longer than this fraction of the diameter to rise
from 25% to 75% are fog, not surface (chosen on obj_14 and obj_19: benchmarks/bench_spread.py)."""


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"nerfreg": __version__, "python": platform.python_version()}
    for pkg in ("nerfstudio", "torch", "open3d", "numpy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def resolve_unit(seq1: SequenceData, seq2: SequenceData, given: str | None) -> str | None:
    """The length unit of both sequences: what their datasets say, or `given` (the command's
    --unit) where they say nothing; a contradiction is an error. None when nobody says."""
    units = {u for u in (seq1.unit, seq2.unit) if u}
    if len(units) > 1:
        raise NerfregError(f"the runs are in different units: {seq1.unit} and {seq2.unit}")
    said = units.pop() if units else None
    check_unit(given)
    if said and given and given != said:
        raise NerfregError(f"the runs' datasets say their unit is {said}, but --unit says {given}; leave --unit out")
    return said or given


def why_no_bop(seq1: SequenceData, seq2: SequenceData, unit: str | None) -> str | None:
    """Why BOP labels cannot be written for these sequences (None when they can)."""
    if unit is None:
        return ("the runs' datasets do not say their length unit and BOP is in mm (nothing is rescaled on a guess): "
                f"give it with --unit {'|'.join(UNITS)}")
    if not (seq1.images and seq2.images):
        return "the sequences have no image files"
    return None


def registration_dict(result: Result, seq1: SequenceData, seq2: SequenceData, plugins: dict[str, Any], unit: str | None,
                      scale: dict | None = None) -> dict:
    """registration.json. With an estimated `scale` (the record of `register.scale`), sequence 2's
    points x2 map to `T_seq1_seq2 (scale x2)`; `S_seq1_seq2` is that similarity as one matrix, and
    the hypotheses' poses are of sequence 2 already scaled."""
    best = result.best
    s = 1.0 if scale is None else float(scale["scale"])
    return {
        "T_seq1_seq2": best.T_seq1_seq2.tolist(),
        "scale": s,
        "S_seq1_seq2": similarity_matrix(s, best.T_seq1_seq2).tolist(),
        "scale_estimation": scale,
        "unit": unit,
        "object": {"name": seq1.object_name, "diameter": seq1.diameter},
        "case_id": seq1.case_id if seq1.case_id == seq2.case_id else None,
        "score": best.score.value,
        "score_details": best.score.details,
        "confident": bool(best.score.confident),
        "source": best.source,
        "refiner": best.refiner,
        "hypotheses": [
            {"source": h.source, "refiner": h.refiner, "score": h.score.value, "confident": h.score.confident, "details": h.score.details,
             "prior": h.prior, "T_initial": h.T_initial.tolist(), "T_seq1_seq2": h.T_seq1_seq2.tolist()}
            for h in result.hypotheses
        ],
        "dropped_hypotheses": result.dropped,
        "plugins": plugins,
        "inputs": {"seq1": seq1.source, "seq2": seq2.source},
        "timings_s": result.timings,
        "versions": versions(),
    }


def surface_kept(seq: SequenceData, max_spread_frac: float) -> np.ndarray:
    """Mask (N,) of the sequence's points whose ray opacity rose within `max_spread_frac` of the
    diameter (`seq.spread`; all points when it is absent). Fog that no view resolved, such as a
    cup's bore seen only from above, is smeared along the ray and lies off the surface."""
    if seq.spread is None:
        return np.ones(len(seq.points), bool)
    return np.asarray(seq.spread) <= max_spread_frac * seq.diameter


def merged_cloud(seq1: SequenceData, seq2: SequenceData, T_seq1_seq2: np.ndarray, voxel_frac: float = 0.005,
                 max_spread_frac: float = MAX_SPREAD_FRAC):
    """Both surfaces in sequence 1's frame (points, normals), at the density's edge where the
    runs saved it (`SequenceData.boundary`), without the points either field left as fog
    (`surface_kept`), thinned on a voxel grid."""
    k1, k2 = surface_kept(seq1, max_spread_frac), surface_kept(seq2, max_spread_frac)
    b1, b2 = (s.boundary if s.boundary is not None else s.points for s in (seq1, seq2))
    pts = np.concatenate([b1[k1], apply(T_seq1_seq2, b2[k2])])
    nrm = np.concatenate([seq1.normals[k1], rotate(T_seq1_seq2, seq2.normals[k2])])
    keep = voxel_unique(pts, voxel_frac * seq1.diameter)
    return pts[keep], nrm[keep]


POISSON_VOXEL_FRAC = 0.01
"""The merged cloud is thinned to this voxel (fraction of the diameter) before the Poisson solve:
at depth 8 a denser cloud costs several times the time for the same surface (benchmarks/README.md)."""


def poisson_mesh(points: np.ndarray, normals: np.ndarray, voxel: float = 0.0):
    """A watertight-ish mesh of the merged cloud (Open3D screened Poisson), low-density parts cut;
    the cloud thinned to `voxel` (a length; 0: all points) first."""
    import open3d as o3d
    import trimesh

    if voxel > 0:
        keep = voxel_unique(points, voxel)
        points, normals = points[keep], normals[keep]
    mesh, dens = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(to_o3d(points, normals), depth=8)
    dens = np.asarray(dens)
    if len(dens) == 0:
        raise NerfregError("the merged cloud gave no surface mesh (are the sequences' normals unit vectors?)")
    mesh.remove_vertices_by_mask(dens < np.quantile(dens, 0.05))
    return trimesh.Trimesh(np.asarray(mesh.vertices), np.asarray(mesh.triangles), process=True)


def centred_model(mesh):
    """(T_seq1_obj (4, 4) from `model_placement`, the model moved into that object frame)."""
    T_seq1_obj = model_placement(mesh)
    model = mesh.copy()
    model.apply_transform(invert(T_seq1_obj))
    return T_seq1_obj, model


def model_placement(mesh) -> np.ndarray:
    """T_seq1_obj (4, 4): the merged model's object frame, centred on its bounding box, in sequence 1."""
    return make_T(np.eye(3), mesh.bounds.mean(axis=0))


SYMMETRY_TOL = 0.007
"""Symmetries written are turns whose surface error on the merged model is under this fraction
of the diameter (on average; 95% of points under three times it). Below the 1% that makes a
registration right, because the merged model is smoother than the part: on the 16 T-LESS merged
models of benchmarks/bench_labels.py every turn kept at 0.7% moves the CAD model onto itself
within 1%, where 1% also kept two that move it by 1.14-1.17%."""

CONTINUOUS_SYMMETRY_TOL = SUCCESS_SURFACE_ERROR
"""An axis of revolution is kept when every check turn about it has a surface error under this
fraction of the diameter: the rule by which a registration counts as right. Not SYMMETRY_TOL:
a turn about a true axis moves the model's own roughness (Poisson on a noisy capture) onto
itself, and on rough merged models that floor reaches SYMMETRY_TOL, where parts that are not of
revolution stay well above 1% (benchmarks/README.md, issue 16's symmetry regression)."""


def model_symmetries(mesh, diameter: float, tol: float = SYMMETRY_TOL,
                     continuous_tol: float = CONTINUOUS_SYMMETRY_TOL) -> Symmetries:
    """The merged model's symmetries, in the frame and unit of `mesh` (sequence 1's)."""
    from nerfreg_ns.data.mesh import SurfaceDistance, sample_surface

    pts, _ = sample_surface(mesh, 5000, seed=0)
    return object_symmetries(pts, SurfaceDistance(mesh), diameter, tol, continuous_tol=continuous_tol)


def symmetry_record(syms: Symmetries, T_seq1_seq2: np.ndarray, tol: float = SYMMETRY_TOL,
                    continuous_tol: float = CONTINUOUS_SYMMETRY_TOL) -> dict:
    """registration.json's `symmetries`: the merged model's symmetries in sequence 1's frame and
    the registrations equally right under them (each discrete one composed with T_seq1_seq2;
    any turn about a continuous axis composed with any of those is right too)."""
    return {
        "tolerance": {"mean_surface_error": tol, "q95_surface_error": Q95_FACTOR * tol,
                      "continuous_mean_surface_error": continuous_tol,
                      "continuous_q95_surface_error": Q95_FACTOR * continuous_tol, "of": "diameter",
                      "value": syms.tol, "continuous_value": syms.continuous_tol},
        "discrete_seq1": [S.tolist() for S in syms.discrete],
        "continuous_seq1": [{"axis": a.tolist(), "offset": o.tolist()} for a, o in syms.continuous],
        "equivalent_T_seq1_seq2": [(S @ T_seq1_seq2).tolist() for S in syms.discrete],
    }


def object_labels(seq1: SequenceData, seq2: SequenceData, T_seq1_seq2: np.ndarray, mesh) -> dict[str, list[ImageLabel]]:
    """Every image's label (the model at its pose, rendered and checked), in the runs' unit; the
    model is placed by `model_placement`."""
    T_seq1_obj, model = centred_model(mesh)
    return {seq.name: label_sequence(model, T_seq_obj, seq.T_world_camcv, seq.Ks, seq.masks, f"{seq.name} labels")
            for seq, T_seq_obj in ((seq1, T_seq1_obj), (seq2, invert(T_seq1_seq2) @ T_seq1_obj))}


def write_bop_labels(out: Path, seq1: SequenceData, seq2: SequenceData, mesh, labels: dict[str, list[ImageLabel]],
                     syms: Symmetries, unit: str, obj_id: int = 1) -> None:
    """BOP models/ (object-centred, mm; symmetries in models_info.json) and one scene per
    sequence: the object's pose in every image, scene_gt_info.json, `mask/` and `mask_visib/`
    rendered from the model, and the input masks under `mask_input/`. Lengths in `unit` are
    converted to mm (a missing or unknown unit is an error)."""
    to_mm = mm_per_unit(unit)
    if not all(seq.images for seq in (seq1, seq2)):
        raise NerfregError("BOP labels need each sequence's image files")
    T_seq1_obj, model_mm = centred_model(mesh)
    model_mm.apply_scale(to_mm)
    syms_mm = syms.moved(invert(T_seq1_obj)).scaled(to_mm)
    extra = {**syms_mm.bop(), "symmetry_tolerance_mm": syms_mm.tolerance()}
    write_bop_models(out / "bop" / "models", {obj_id: model_mm}, {obj_id: extra})
    for scene_id, seq in enumerate((seq1, seq2), start=1):
        labs = labels[seq.name]
        rgbs = [encode_png(read_image(p)[:, :, :3]) for p in seq.images]
        T_w = [scale_T(T, to_mm) for T in seq.T_world_camcv]
        gts = [[(obj_id, scale_T(lab.T_camcv_obj, to_mm), encode_png(lab.visible))] for lab in labs]
        more = {"mask": [[encode_png(lab.rendered.mask)] for lab in labs], "mask_input": [[encode_png(m)] for m in seq.masks]}
        write_bop_scene(out / "bop" / "scenes" / f"{scene_id:06d}", rgbs, seq.Ks, T_w, gts, [[lab.info] for lab in labs], more)
