"""Small helpers on point sets and frame lists, shared by the host and the plugins."""

from __future__ import annotations

import numpy as np


def random_subset(points: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """At most `n` of `points` (N, ...), drawn without replacement with a fixed seed (repeatable scores)."""
    if len(points) <= n:
        return points
    return points[np.random.default_rng(seed).choice(len(points), n, replace=False)]


def robust_extent(points: np.ndarray, q: float = 1.0) -> float:
    """Diagonal of the box holding the q-th to (100-q)-th percentile of points (N, 3) along each
    axis: a size that a few floaters do not move (0 for no points)."""
    if len(points) == 0:
        return 0.0
    lo, hi = np.percentile(points, [q, 100 - q], axis=0)
    return float(np.linalg.norm(hi - lo))


def evenly_spaced(count: int, n: int) -> np.ndarray:
    """At most `n` distinct indices (int, increasing) spread evenly over range(count), first and last included."""
    if count <= 0 or n <= 0:
        return np.zeros(0, dtype=int)
    return np.unique(np.linspace(0, count - 1, min(n, count)).round().astype(int))


def voxel_unique(points: np.ndarray, voxel: float) -> np.ndarray:
    """Indices (increasing) of the first point (N, 3) in each occupied cube of side `voxel`."""
    keys = np.floor(np.asarray(points) / voxel).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    return np.sort(first)


def farthest_points(points: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """(n, 3) subset of `points` (N, 3) spread over the surface (greedy farthest-point sampling
    on a random pool of 20 n)."""
    if len(points) <= n:
        return points
    pool = points[np.random.default_rng(seed).choice(len(points), min(len(points), 20 * n), replace=False)]
    chosen = [0]
    d = np.linalg.norm(pool - pool[0], axis=1)
    for _ in range(n - 1):
        i = int(np.argmax(d))
        chosen.append(i)
        d = np.minimum(d, np.linalg.norm(pool - pool[i], axis=1))
    return pool[chosen]


def to_o3d(points: np.ndarray, normals: np.ndarray | None = None):
    """An Open3D point cloud from points (N, 3) and optional normals (N, 3)."""
    import open3d as o3d

    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, float)))
    if normals is not None:
        pc.normals = o3d.utility.Vector3dVector(np.asarray(normals, float))
    return pc
