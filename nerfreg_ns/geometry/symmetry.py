"""Finding an object's (near-)symmetries from its mesh, for symmetry-aware scores.

A candidate rotation about the model's centre is a symmetry when it moves the surface onto
itself: its surface error (mean distance of moved surface samples to the surface) is below a
fraction of the diameter. Candidates: turns by 360/k about the principal axes, k = 2..8, each
polished by a few ICP steps on the samples: a near-symmetry's axis need not pass through the
samples' centroid, and two near-equal principal moments leave the axes in their plane arbitrary
(T-LESS obj_23: its half-turn symmetry lies 12 degrees from the nearest principal axis).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.spatial import cKDTree

from nerfreg_ns.geometry.transforms import apply, axis_angle_to_R, make_T, rotation_angle_deg


def _icp_polish(points: np.ndarray, tree: cKDTree, T: np.ndarray, iterations: int = 40) -> np.ndarray:
    """Point-to-point ICP (Kabsch) of the moved samples back onto the samples, from T (4, 4)."""
    for _ in range(iterations):
        moved = apply(T, points)
        _, idx = tree.query(moved)
        a, b = points, points[idx]
        ca, cb = a.mean(0), b.mean(0)
        U, _, Vt = np.linalg.svd((a - ca).T @ (b - cb))
        D = np.diag([1.0, 1.0, np.sign(np.linalg.det(Vt.T @ U.T))])
        R = Vt.T @ D @ U.T
        T = make_T(R, cb - R @ ca)
    return T


def find_symmetries(
    points: np.ndarray, distance: Callable[[np.ndarray], np.ndarray], diameter: float,
    tol: float = 0.01, max_order: int = 8,
) -> list[np.ndarray]:
    """Symmetry transforms (4, 4) of a surface sampled by `points` (N, 3), identity first.

    `distance` maps points (M, 3) to their distance to the surface (M,).
    """
    centre = points.mean(0)
    _, _, axes = np.linalg.svd(points - centre, full_matrices=False)
    tree = cKDTree(points)
    found = [np.eye(4)]
    for axis in axes:
        for k in range(2, max_order + 1):
            for j in range(1, k):
                if np.gcd(j, k) != 1:
                    continue  # the same turn as a lower order
                R = axis_angle_to_R(axis, 2 * np.pi * j / k)
                T = make_T(R, centre - R @ centre)
                if np.mean(distance(apply(T, points))) >= tol * diameter:
                    T = _icp_polish(points, tree, T)
                    if abs(rotation_angle_deg(T[:3, :3]) - rotation_angle_deg(R)) > 20:
                        continue  # slid off to another turn (or to the identity): not this candidate
                if np.mean(distance(apply(T, points))) < tol * diameter:
                    found.append(T)
    return found
