"""Finding an object's (near-)symmetries from its mesh, for symmetry-aware scores.

A candidate rotation about the model's centre is a symmetry when it moves the surface onto
itself: its surface error (mean distance of moved surface samples to the surface) is below a
fraction of the diameter. Candidates: turns by 360/k about the principal axes, k = 2..8.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from nerfreg_ns.geometry.transforms import apply, axis_angle_to_R, make_T


def find_symmetries(
    points: np.ndarray, distance: Callable[[np.ndarray], np.ndarray], diameter: float,
    tol: float = 0.01, max_order: int = 8,
) -> list[np.ndarray]:
    """Symmetry transforms (4, 4) of a surface sampled by `points` (N, 3), identity first.

    `distance` maps points (M, 3) to their distance to the surface (M,).
    """
    centre = points.mean(0)
    _, _, axes = np.linalg.svd(points - centre, full_matrices=False)
    found = [np.eye(4)]
    for axis in axes:
        for k in range(2, max_order + 1):
            for j in range(1, k):
                if np.gcd(j, k) != 1:
                    continue  # the same turn as a lower order
                R = axis_angle_to_R(axis, 2 * np.pi * j / k)
                T = make_T(R, centre - R @ centre)
                if np.mean(distance(apply(T, points))) < tol * diameter:
                    found.append(T)
    return found
