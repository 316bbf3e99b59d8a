"""Open3D conversions shared by the built-in plugins."""

from __future__ import annotations

import numpy as np


def to_o3d(points: np.ndarray, normals: np.ndarray | None = None):
    """An Open3D point cloud from points (N, 3) and optional normals (N, 3)."""
    import open3d as o3d

    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, float)))
    if normals is not None:
        pc.normals = o3d.utility.Vector3dVector(np.asarray(normals, float))
    return pc
