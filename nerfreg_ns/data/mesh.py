"""Loading, measuring and sampling object meshes. Units are the file's own; nothing is rescaled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from nerfreg_ns.errors import NerfregError
from nerfreg_ns.geometry.points import random_subset

MESH_SUFFIXES = (".stl", ".ply", ".obj", ".off", ".glb")


def load_mesh(path: Path) -> trimesh.Trimesh:
    """Loads a triangle mesh (STL/PLY/OBJ/OFF/GLB) or raises a one-line NerfregError."""
    path = Path(path)
    if not path.is_file():
        raise NerfregError(f"mesh file not found: {path}")
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise NerfregError(f"not a mesh file (expected one of {', '.join(MESH_SUFFIXES)}): {path}")
    try:
        loaded = trimesh.load(path, force="mesh", process=True)
    except Exception as e:  # trimesh raises many types for corrupt files
        raise NerfregError(f"cannot read mesh {path}: {type(e).__name__}: {e}".splitlines()[0]) from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise NerfregError(f"no triangles in mesh file: {path}")
    if not np.all(np.isfinite(loaded.vertices)):
        raise NerfregError(f"mesh has non-finite vertices: {path}")
    if diameter(loaded) <= 0:
        raise NerfregError(f"mesh is degenerate (zero size): {path}")
    return loaded


def diameter(mesh: trimesh.Trimesh) -> float:
    """Largest distance between two vertices (BOP's definition), computed on the convex hull."""
    try:
        pts = np.asarray(mesh.convex_hull.vertices)
    except Exception:  # flat meshes have no 3D hull
        pts = np.asarray(mesh.vertices)
    pts = random_subset(pts, 4000)
    d = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1))
    return float(d.max())


def models_info_entry(mesh: trimesh.Trimesh) -> dict[str, float]:
    """One object's entry of BOP's models_info.json (same units as the mesh)."""
    lo, hi = mesh.bounds
    size = hi - lo
    return {
        "diameter": diameter(mesh),
        "min_x": float(lo[0]), "min_y": float(lo[1]), "min_z": float(lo[2]),
        "size_x": float(size[0]), "size_y": float(size[1]), "size_z": float(size[2]),
    }


def sample_surface(mesh: trimesh.Trimesh, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Samples n points uniformly by area; returns points (n, 3) and their face normals (n, 3)."""
    rng = np.random.default_rng(seed)
    areas = mesh.area_faces
    face = rng.choice(len(areas), size=n, p=areas / areas.sum())
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    w = np.stack([1 - s, s * (1 - r2), s * r2], axis=1)
    tri = mesh.triangles[face]
    pts = (tri * w[:, :, None]).sum(1)
    return pts, np.asarray(mesh.face_normals[face])


class SurfaceDistance:
    """Unsigned distance from points to a mesh surface (exact, Open3D's raycasting scene)."""

    def __init__(self, mesh: trimesh.Trimesh) -> None:
        import open3d as o3d

        self._scene = o3d.t.geometry.RaycastingScene()
        self._scene.add_triangles(
            o3d.core.Tensor(np.asarray(mesh.vertices, np.float32)),
            o3d.core.Tensor(np.asarray(mesh.faces, np.uint32)),
        )
        self._o3d = o3d

    def __call__(self, points: np.ndarray) -> np.ndarray:
        q = self._o3d.core.Tensor(np.asarray(points, np.float32))
        return self._scene.compute_distance(q).numpy().astype(float)
