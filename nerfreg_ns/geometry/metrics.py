"""Registration and reconstruction metrics.

All pose metrics compare an estimated and a true `T_seq1_seq2` (4, 4) on model points given in
sequence 2's frame, so they do not depend on where either frame's origin is.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.spatial import cKDTree

from nerfreg_ns.geometry.transforms import apply, invert, rotation_angle_deg

SUCCESS_SURFACE_ERROR = 0.01
"""Success threshold on the surface error, as a fraction of the diameter."""


def rotation_error_deg(T_est: np.ndarray, T_gt: np.ndarray) -> float:
    """Angle (deg) of the rotation that takes the true rotation to the estimated one."""
    return rotation_angle_deg(T_est[:3, :3].T @ T_gt[:3, :3])


def translation_error(T_est: np.ndarray, T_gt: np.ndarray, centre_seq2: np.ndarray) -> float:
    """Distance between where the two transforms put the model's centre (3,) (input units)."""
    c = np.asarray(centre_seq2, float).reshape(1, 3)
    return float(np.linalg.norm(apply(T_est, c) - apply(T_gt, c)))


def add(T_est: np.ndarray, T_gt: np.ndarray, points_seq2: np.ndarray) -> float:
    """ADD: mean distance between corresponding model points (N, 3) under the two transforms."""
    return float(np.linalg.norm(apply(T_est, points_seq2) - apply(T_gt, points_seq2), axis=1).mean())


def adds(T_est: np.ndarray, T_gt: np.ndarray, points_seq2: np.ndarray) -> float:
    """ADD-S: mean distance from each estimated model point to the closest true model point.

    Blind to flips of a roughly symmetric part: report it, never judge success by it.
    """
    tree = cKDTree(apply(T_gt, points_seq2))
    d, _ = tree.query(apply(T_est, points_seq2))
    return float(d.mean())


def surface_error(
    T_est: np.ndarray,
    T_gt: np.ndarray,
    points_seq2: np.ndarray,
    distance_to_surface_seq2: Callable[[np.ndarray], np.ndarray],
) -> float:
    """Mean distance from the model moved by the estimate to the true model surface.

    Evaluated in sequence 2's frame: points (N, 3) sampled uniformly on the model surface are
    moved by T_gt^-1 T_est (identity when the estimate is right) and measured against the
    surface with `distance_to_surface_seq2` ((N, 3) -> (N,)). Zero for any true symmetry.
    """
    delta_seq2 = invert(T_gt) @ T_est
    return float(np.mean(distance_to_surface_seq2(apply(delta_seq2, points_seq2))))


def chamfer(points_a: np.ndarray, points_b: np.ndarray) -> dict[str, float]:
    """Chamfer distance between point sets (N, 3) and (M, 3), both directions and their mean."""
    d_ab, _ = cKDTree(points_b).query(points_a)
    d_ba, _ = cKDTree(points_a).query(points_b)
    a_to_b, b_to_a = float(d_ab.mean()), float(d_ba.mean())
    return {"a_to_b": a_to_b, "b_to_a": b_to_a, "mean": 0.5 * (a_to_b + b_to_a)}
