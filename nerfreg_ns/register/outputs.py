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
from nerfreg_ns.data.synth import UNIT_TO_MM
from nerfreg_ns.geometry.transforms import apply, invert, make_T, rotate
from nerfreg_ns.io_utils import write_bytes_atomic
from nerfreg_ns.register.run import Result
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


def registration_dict(result: Result, seq1: SequenceData, seq2: SequenceData, plugins: dict[str, Any]) -> dict:
    meta = seq1.extra.get("meta", {})
    best = result.best
    return {
        "T_seq1_seq2": best.T_seq1_seq2.tolist(),
        "unit": meta.get("unit"),
        "object": {"name": meta.get("object"), "diameter": seq1.diameter},
        "case_id": meta.get("case_id") if meta.get("case_id") == seq2.extra.get("meta", {}).get("case_id") else None,
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
        "inputs": {"seq1": seq1.extra.get("run"), "seq2": seq2.extra.get("run")},
        "timings_s": result.timings,
        "versions": versions(),
    }


def surface_kept(seq: SequenceData, max_spread_frac: float) -> np.ndarray:
    """Mask (N,) of the sequence's points whose ray opacity rose within `max_spread_frac` of the
    diameter (`extra["spread"]`; all points when it is absent). Fog that no view resolved, such
    as a cup's bore seen only from above, is smeared along the ray and lies off the surface."""
    spread = seq.extra.get("spread")
    if spread is None or len(spread) != len(seq.points):
        return np.ones(len(seq.points), bool)
    return np.asarray(spread) <= max_spread_frac * seq.diameter


def merged_cloud(seq1: SequenceData, seq2: SequenceData, T_seq1_seq2: np.ndarray, voxel_frac: float = 0.005,
                 max_spread_frac: float = MAX_SPREAD_FRAC):
    """Both surfaces in sequence 1's frame (points, normals), without the points either field
    left as fog (`surface_kept`), thinned on a voxel grid."""
    k1, k2 = surface_kept(seq1, max_spread_frac), surface_kept(seq2, max_spread_frac)
    pts = np.concatenate([seq1.points[k1], apply(T_seq1_seq2, seq2.points[k2])])
    nrm = np.concatenate([seq1.normals[k1], rotate(T_seq1_seq2, seq2.normals[k2])])
    keys = np.floor(pts / (voxel_frac * seq1.diameter)).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    return pts[np.sort(first)], nrm[np.sort(first)]


def poisson_mesh(points: np.ndarray, normals: np.ndarray):
    """A watertight-ish mesh of the merged cloud (Open3D screened Poisson), low-density parts cut."""
    import open3d as o3d
    import trimesh

    from nerfreg_ns.default_plugins.o3d_utils import to_o3d

    mesh, dens = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(to_o3d(points, normals), depth=8)
    dens = np.asarray(dens)
    mesh.remove_vertices_by_mask(dens < np.quantile(dens, 0.05))
    return trimesh.Trimesh(np.asarray(mesh.vertices), np.asarray(mesh.triangles), process=True)


def write_bop_labels(out: Path, seq1: SequenceData, seq2: SequenceData, T_seq1_seq2: np.ndarray, mesh, obj_id: int = 1) -> np.ndarray:
    """BOP models/ (object-centred, mm) and one scene per sequence with the object's pose in
    every image; returns T_seq1_obj, the model's placement in sequence 1."""
    unit = seq1.extra.get("meta", {}).get("unit") or "mm"
    to_mm = UNIT_TO_MM.get(unit, 1.0)
    centre = mesh.bounds.mean(axis=0)
    T_seq1_obj = make_T(np.eye(3), centre)
    model_mm = mesh.copy()
    model_mm.apply_translation(-centre)
    model_mm.apply_scale(to_mm)
    write_bop_models(out / "bop" / "models", {obj_id: model_mm})
    mm = np.diag([to_mm, to_mm, to_mm, 1.0])
    for scene_id, (seq, T_seq_obj) in enumerate(((seq1, T_seq1_obj), (seq2, invert(T_seq1_seq2) @ T_seq1_obj)), start=1):
        rgbs = [encode_png(read_image(p)[:, :, :3]) for p in seq.extra["images"]]
        T_w = [mm @ T @ np.linalg.inv(mm) for T in seq.T_world_camcv]
        gts = [[(obj_id, mm @ invert(T_wc) @ T_seq_obj @ np.linalg.inv(mm), encode_png(m))] for T_wc, m in zip(seq.T_world_camcv, seq.masks)]
        write_bop_scene(out / "bop" / "scenes" / f"{scene_id:06d}", rgbs, seq.Ks, T_w, gts)
    return T_seq1_obj


def write_report(path: Path, seq1: SequenceData, seq2: SequenceData, result: Result, mesh) -> None:
    """report.png: clouds before and after, hypotheses by score, the model over a few masks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nerfreg_ns.geometry.cameras import project

    T = result.best.T_seq1_seq2
    fig = plt.figure(figsize=(14, 9))
    sub = lambda n: fig.add_subplot(3, 4, n)  # noqa: E731
    rng = np.random.default_rng(0)
    a = seq1.points[rng.permutation(len(seq1.points))[:3000]]
    b = seq2.points[rng.permutation(len(seq2.points))[:3000]]
    for n, (title, bb) in enumerate((("before (seq2 in its own frame)", b), ("after: seq2 moved into seq1", apply(T, b))), start=1):
        ax = sub(n)
        ax.scatter(a[:, 0], a[:, 2], s=1, c="tab:blue", label="seq1")
        ax.scatter(bb[:, 0], bb[:, 2], s=1, c="tab:orange", label="seq2")
        ax.set_title(title, fontsize=9)
        ax.set_aspect("equal")
        ax.legend(fontsize=7, markerscale=5)
    ax = fig.add_subplot(3, 2, 2)
    scores = [h.score.value for h in result.hypotheses]
    ax.barh(range(len(scores)), scores, color=["tab:green" if i == 0 else "tab:gray" for i in range(len(scores))])
    label = lambda h: f"{h.source} + {h.refiner}" if h.refiner else h.source  # noqa: E731
    ax.set_yticks(range(len(scores)), [label(h) for h in result.hypotheses], fontsize=6)
    ax.invert_yaxis()
    ax.set_title(f"hypotheses by verifier score (best: {label(result.best)}, confident: {result.best.score.confident})", fontsize=9)
    verts = np.asarray(mesh.vertices)
    for row, (seq, T_seq_seq1) in enumerate(((seq1, np.eye(4)), (seq2, invert(T))), start=1):
        idx = np.linspace(0, len(seq.masks) - 1, 4).round().astype(int)
        for col, i in enumerate(idx):
            ax = fig.add_subplot(3, 4, 4 * row + col + 1)
            uv, _ = project(seq.Ks[i], invert(seq.T_world_camcv[i]) @ T_seq_seq1, verts)
            ax.imshow(seq.masks[i], cmap="gray")
            ax.scatter(uv[:, 0], uv[:, 1], s=0.2, c="tab:red", alpha=0.3)
            ax.set_title(f"{seq.name} image {i}: mask + merged model", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
