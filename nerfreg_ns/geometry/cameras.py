"""Camera conventions, converted in one place.

nerfstudio's `transforms.json` holds camera-to-world in the OpenGL convention (x right, y up,
z backward); BOP and OpenCV use x right, y down, z forward and world-to-camera (`cam_R_w2c`).
The two differ by flipping the camera's y and z axes.
"""

from __future__ import annotations

import numpy as np

from nerfreg_ns.geometry.transforms import invert, look_at_c2w_opencv, make_T

_FLIP_YZ = np.diag([1.0, -1.0, -1.0, 1.0])
GOLDEN_ANGLE = np.pi * (3.0 - np.sqrt(5.0))


def c2w_opencv_to_opengl(T_world_camcv: np.ndarray) -> np.ndarray:
    """OpenCV camera-to-world (4, 4) -> OpenGL (nerfstudio) camera-to-world (4, 4)."""
    return T_world_camcv @ _FLIP_YZ


def c2w_opengl_to_opencv(T_world_camgl: np.ndarray) -> np.ndarray:
    """OpenGL (nerfstudio) camera-to-world (4, 4) -> OpenCV camera-to-world (4, 4)."""
    return T_world_camgl @ _FLIP_YZ


def K_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """Pinhole intrinsics (3, 3); pixel centres at integer + 0.5 as in OpenCV and nerfstudio."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def project(K: np.ndarray, T_camcv_world: np.ndarray, points_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Projects points (N, 3) through an OpenCV world-to-camera (4, 4) and K (3, 3).

    Returns pixel coordinates (N, 2) and depths (N,) along the optical axis.
    """
    p = points_world @ T_camcv_world[:3, :3].T + T_camcv_world[:3, 3]
    z = p[:, 2]
    uv = (p @ K.T)[:, :2] / z[:, None]
    return uv, z


def bop_w2c_from_c2w_opencv(T_world_camcv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cam_R_w2c (3, 3), cam_t_w2c (3,)) as BOP's scene_camera.json stores them."""
    T_cam_world = invert(T_world_camcv)
    return T_cam_world[:3, :3], T_cam_world[:3, 3]


def c2w_opencv_from_bop_w2c(R_w2c: np.ndarray, t_w2c: np.ndarray) -> np.ndarray:
    """OpenCV camera-to-world (4, 4) from BOP's cam_R_w2c (3, 3) and cam_t_w2c (3,)."""
    return invert(make_T(np.asarray(R_w2c, float).reshape(3, 3), np.asarray(t_w2c, float).reshape(3)))


def elevation_deg(camera_centre_obj: np.ndarray) -> float:
    """Elevation in degrees of a camera centre (3,) seen from the object origin (+z is up)."""
    x, y, z = camera_centre_obj
    return float(np.degrees(np.arctan2(z, np.hypot(x, y))))


def camera_poses(n: int, elevation_deg: tuple[float, float], distance: float, rng: np.random.Generator) -> list[np.ndarray]:
    """n OpenCV camera-to-object poses (4, 4) looking at the origin from an elevation band.

    Elevations are stratified over the band, azimuths follow the golden angle from a random start.
    """
    lo, hi = np.radians(sorted(elevation_deg))
    az0 = rng.uniform(0, 2 * np.pi)
    poses = []
    for i in range(n):
        el = lo + (hi - lo) * (i + rng.uniform(0.2, 0.8)) / n
        az = az0 + i * GOLDEN_ANGLE
        eye = distance * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
        poses.append(look_at_c2w_opencv(eye, np.zeros(3), np.array([0.0, 0.0, 1.0])))
    return poses
