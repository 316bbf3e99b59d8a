"""Viewpoints the sequence did not film, for extra phase-2 training views rendered by the field.

A sequence films one hemisphere; the query encoder then never sees the object's outline from
near or below its equator, which is where the other sequence's images come from. The trained
field can render such views (geometry from the carved hull and the density, colour
extrapolated). "Up" is the mean direction from the object centre to the cameras, so nothing
about the dataset's own axes is assumed.
"""

from __future__ import annotations

import numpy as np

from nerfreg_ns.geometry.cameras import c2w_opencv_to_opengl, camera_poses, mean_view_direction
from nerfreg_ns.geometry.transforms import make_T


def camera_up(camera_centres: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Unit mean direction (3,) from `centre` (3,) to the camera centres (N, 3); +z when the
    cameras are all around (no hemisphere to leave, any axis will do)."""
    up = mean_view_direction(camera_centres, centre)
    return up if up.any() else np.array([0.0, 0.0, 1.0])


def orbit_c2w_opengl(camera_centres: np.ndarray, centre: np.ndarray, n: int, elevation_deg: tuple[float, float],
                     seed: int = 0) -> np.ndarray:
    """n camera-to-world poses (n, 3, 4), OpenGL convention (nerfstudio's), looking at `centre`.

    Elevations are stratified over `elevation_deg` (degrees above the plane through `centre`
    normal to `camera_up`), azimuths follow the golden angle; the distance is the cameras' mean
    distance to `centre`.
    """
    up = camera_up(camera_centres, centre)
    a = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(up, a)
    e1 /= np.linalg.norm(e1)
    # nerfreg-synth's orbit about +z, carried onto a frame whose +z is `up` (a proper rotation)
    T_world_orbit = make_T(np.stack([e1, np.cross(up, e1), up], axis=1), centre)
    dist = float(np.linalg.norm(camera_centres - centre, axis=1).mean())
    poses = [c2w_opencv_to_opengl(T_world_orbit @ T)[:3]
             for T in camera_poses(n, elevation_deg, dist, np.random.default_rng(seed))]
    return np.stack(poses) if poses else np.zeros((0, 3, 4))
