"""Finding an object's (near-)symmetries from its mesh, for symmetry-aware scores.

A candidate rotation about the model's centre is a symmetry when it moves the surface onto
itself: its surface error (mean distance of moved surface samples to the surface) is below a
fraction of the diameter. Candidates: turns by 360/k about the principal axes, k = 2..8, and
half turns about directions spread over a hemisphere, each polished by ICP on the samples. Why:
a near-symmetry's axis need not pass through the samples' centroid nor lie on a principal axis
(some T-LESS parts have half turns that no principal axis finds).
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


def _hemisphere(n: int) -> np.ndarray:
    """(n, 3) unit directions spread over the upper hemisphere (a Fibonacci spiral)."""
    i = np.arange(n) + 0.5
    z = 1 - i / n
    phi = np.pi * (3 - np.sqrt(5)) * i
    r = np.sqrt(1 - z**2)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], 1)


def find_symmetries(
    points: np.ndarray, distance: Callable[[np.ndarray], np.ndarray], diameter: float,
    tol: float = 0.01, max_order: int = 8, half_turn_axes: int = 48,
) -> list[np.ndarray]:
    """Symmetry transforms (4, 4) of a surface sampled by `points` (N, 3), identity first.

    `distance` maps points (M, 3) to their distance to the surface (M,). Candidates: turns by
    360/k about the principal axes, and half turns about `half_turn_axes` more directions (the
    flips two hemispheres get confused by need not be about a principal axis).
    """
    centre = points.mean(0)
    _, _, axes = np.linalg.svd(points - centre, full_matrices=False)
    tree = cKDTree(points)
    candidates = [(a, 2 * np.pi * j / k) for a in axes for k in range(2, max_order + 1) for j in range(1, k)
                  if np.gcd(j, k) == 1]  # j/k in lowest terms: each turn once
    candidates += [(a, np.pi) for a in _hemisphere(half_turn_axes)]
    found: list[tuple[float, np.ndarray]] = []
    for axis, angle in candidates:
        R = axis_angle_to_R(axis, angle)
        T = _icp_polish(points, tree, make_T(R, centre - R @ centre))
        if abs(rotation_angle_deg(T[:3, :3]) - rotation_angle_deg(R)) > 20:
            continue  # slid off to another turn (or to the identity): not this candidate
        err = float(np.mean(distance(apply(T, points))))
        if err >= tol * diameter:
            continue
        same = [i for i, (_, S) in enumerate(found) if rotation_angle_deg(S[:3, :3].T @ T[:3, :3]) < 5]
        if not same:
            found.append((err, T))
        elif err < found[same[0]][0]:
            found[same[0]] = (err, T)
    return [np.eye(4)] + [T for _, T in sorted(found, key=lambda f: f[0])]
