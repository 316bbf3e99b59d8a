"""Rigid transforms as 4x4 matrices named `T_a_b`: they map points in frame b into frame a.

Compose as `T_a_c = T_a_b @ T_b_c`; the names check the algebra.
"""

from __future__ import annotations

import numpy as np

from nerfreg_ns.errors import NerfregError

RIGID_TOL = 1e-4


def make_T(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Builds a 4x4 transform from a rotation `R` (3, 3) and a translation `t` (3,)."""
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = np.asarray(t, dtype=float).reshape(3)
    return T


def invert(T_a_b: np.ndarray) -> np.ndarray:
    """Returns T_b_a for a rigid T_a_b (4, 4), using R^T rather than a general inverse."""
    R, t = T_a_b[:3, :3], T_a_b[:3, 3]
    return make_T(R.T, -R.T @ t)


def apply(T_a_b: np.ndarray, points_b: np.ndarray) -> np.ndarray:
    """Maps points (N, 3) given in frame b into frame a."""
    return points_b @ T_a_b[:3, :3].T + T_a_b[:3, 3]


def rotate(T_a_b: np.ndarray, vectors_b: np.ndarray) -> np.ndarray:
    """Maps directions (N, 3), e.g. normals, from frame b into frame a (no translation)."""
    return vectors_b @ T_a_b[:3, :3].T


def check_rigid(T: np.ndarray, name: str = "transform", tol: float = RIGID_TOL) -> np.ndarray:
    """Validates a rigid 4x4 transform; returns it as float64 (4, 4) or raises a NerfregError.

    Rejects wrong shapes, non-finite values, a last row other than [0 0 0 1], a rotation block
    that is not orthonormal (scale, shear) or that is a reflection (det -1).
    """
    try:
        T = np.asarray(T, dtype=float)
    except (TypeError, ValueError):
        raise NerfregError(f"{name} is not a 4x4 matrix of numbers") from None
    if T.shape != (4, 4):
        raise NerfregError(f"{name} must be 4x4, got shape {T.shape}")
    if not np.all(np.isfinite(T)):
        raise NerfregError(f"{name} has non-finite entries")
    if not np.allclose(T[3], [0, 0, 0, 1], atol=tol):
        raise NerfregError(f"{name} is not rigid: its last row is {T[3].tolist()}, not [0, 0, 0, 1]")
    R = T[:3, :3]
    err = np.abs(R.T @ R - np.eye(3)).max()
    if err > tol:
        raise NerfregError(f"{name} is not rigid: its rotation block is not orthonormal (error {err:.2e}; scaled or sheared?)")
    if np.linalg.det(R) < 0:
        raise NerfregError(f"{name} is not rigid: its rotation block is a reflection (det -1)")
    return T


def rotation_angle_deg(R: np.ndarray) -> float:
    """Angle of a rotation matrix (3, 3) in degrees, in [0, 180]; numerically safe near 0 and 180."""
    cos = np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0)
    return float(np.degrees(np.arccos(cos)))


def so3_exp(w: np.ndarray) -> np.ndarray:
    """(B, 3) rotation vectors (axis x angle in radians) -> (B, 3, 3) rotations (Rodrigues, safe at zero)."""
    w = np.asarray(w, dtype=float)
    theta = np.linalg.norm(w, axis=-1)[:, None, None]
    K = np.zeros((len(w), 3, 3))
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -w[:, 2], w[:, 1], -w[:, 0]
    K = K - K.transpose(0, 2, 1)
    small = theta < 1e-8
    a = np.where(small, 1.0, np.sin(theta) / np.where(small, 1.0, theta))
    b = np.where(small, 0.5, (1 - np.cos(theta)) / np.where(small, 1.0, theta**2))
    return np.eye(3) + a * K + b * (K @ K)


def axis_angle_to_R(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """Rotation (3, 3) by `angle_rad` about `axis` (3,), which need not be unit (zero: identity)."""
    axis = np.asarray(axis, dtype=float)
    n = np.linalg.norm(axis)
    return np.eye(3) if n == 0 else so3_exp((axis * (angle_rad / n))[None])[0]


def quat_xyzw_to_R(q: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions (x, y, z, w), normalised here -> (..., 3, 3) rotation matrices."""
    x, y, z, w = np.moveaxis(q / np.linalg.norm(q, axis=-1, keepdims=True), -1, 0)
    return np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], -1).reshape(*q.shape[:-1], 3, 3)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A rotation (3, 3) drawn uniformly from SO(3) (unit quaternion from a 4D Gaussian)."""
    w, x, y, z = rng.normal(size=4)  # same draws and order as before: seeded results unchanged
    return quat_xyzw_to_R(np.array([x, y, z, w]))


def random_small_rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """A rotation (3, 3) about a uniformly random axis by an angle uniform in [0, max_deg]."""
    angle = np.radians(rng.uniform(0.0, max_deg))
    return axis_angle_to_R(rng.normal(size=3), angle)


def look_at_c2w_opencv(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Camera-to-world (4, 4) in the OpenCV convention (x right, y down, z forward) at `eye`
    looking at `target`, with image-up as close to `up` as possible.
    """
    z = target - eye
    z = z / np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-8:  # looking straight along `up`: any perpendicular will do
        x = np.cross(z, np.array([1.0, 0.0, 0.0]))
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    return make_T(np.stack([x, y, z], axis=1), eye)
