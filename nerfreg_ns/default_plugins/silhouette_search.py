"""Generator `silhouette-search`: a global rotation search scored by both sequences' masks.

Why: feature matching (FPFH) needs overlap, and with narrow overlap between the two hemispheres
its RANSAC poses are often not even near a flip of the truth. Silhouettes constrain the pose
whatever the overlap: each sequence's cloud, moved into the other's frame, must project inside
that sequence's masks. This searches a near-uniform grid of rotations; for each it solves the
translation by Gauss-Newton on the distance (px) of the points outside the masks, then refines
the best few in all six degrees of freedom and hands the distinct ones to the refiner/verifier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.progress import Progress

from nerfreg_ns.default_plugins.silhouette_fit import MaskFields, damped_step, silhouette_system
from nerfreg_ns.geometry.points import farthest_points
from nerfreg_ns.geometry.transforms import make_T, quat_xyzw_to_R, rotation_angle_deg, so3_exp
from nerfreg_ns.hookspecs import hookimpl
from nerfreg_ns.registry import Hypothesis, SequenceData


@dataclass(frozen=True)
class SilhouetteSearchConfig:
    """Rotation grid x translation solve, scored by how far each moved cloud falls outside the
    other sequence's masks (both ways)."""

    rotations: int = 1536
    """Size of the rotation grid (super-Fibonacci)."""
    points: int = 100
    """Points per cloud used in the search (farthest-point subset)."""
    views: int = 8
    """Masks per sequence used in the search (spread over the sequence)."""
    translation_steps: int = 8
    """Gauss-Newton steps on the translation for every grid rotation."""
    refine_steps: int = 30
    """Gauss-Newton steps on the full pose for the best rotations."""
    keep: int = 8
    """Distinct hypotheses returned."""
    min_separation_deg: float = 25.0
    """Returned rotations differ at least by this much."""
    cap_px: float = 20.0
    """Distances outside a mask count at most this much (robust to a bad mask)."""


def super_fibonacci_rotations(n: int) -> np.ndarray:
    """(n, 3, 3) rotations spread near-uniformly over SO(3) (Alexa's super-Fibonacci spirals)."""
    phi, psi = np.sqrt(2.0), 1.533751168755204288118041
    s = np.arange(n) + 0.5
    r, R = np.sqrt(s / n), np.sqrt(1.0 - s / n)
    a, b = 2 * np.pi * s / phi, 2 * np.pi * s / psi
    q = np.stack([r * np.sin(a), r * np.cos(a), R * np.sin(b), R * np.cos(b)], 1)  # (x, y, z, w)
    return quat_xyzw_to_R(q)


class SilhouetteSearch:
    def __init__(self, config: SilhouetteSearchConfig) -> None:
        self.config = config

    def _solve(self, f1, f2, p1, p2, R, t, steps: int, full: bool):
        """Damped Gauss-Newton on a batch of poses, each step kept only where it lowers the cost."""
        r, J = silhouette_system(f1, f2, p1, p2, R, t, full)
        cost, step = np.mean(r**2, 1), damped_step(r, J)
        for _ in range(steps):
            R_new, t_new = (so3_exp(step[:, :3]) @ R, t + step[:, 3:]) if full else (R, t + step)
            r, J = silhouette_system(f1, f2, p1, p2, R_new, t_new, full)
            c_new = np.mean(r**2, 1)
            ok = c_new <= cost
            R, t = np.where(ok[:, None, None], R_new, R), np.where(ok[:, None], t_new, t)
            cost = np.where(ok, c_new, cost)
            step = np.where(ok[:, None], damped_step(r, J), 0.5 * step)
        return R, t, cost

    def propose(self, seq1: SequenceData, seq2: SequenceData) -> list[Hypothesis]:
        c = self.config
        p1, p2 = farthest_points(seq1.points, c.points), farthest_points(seq2.points, c.points)
        f1, f2 = MaskFields(seq1, c.views, c.cap_px), MaskFields(seq2, c.views, c.cap_px)
        c1, c2 = seq1.points.mean(0), seq2.points.mean(0)
        grid = super_fibonacci_rotations(c.rotations)
        costs, ts = np.empty(len(grid)), np.empty((len(grid), 3))
        chunk = 64
        with Progress(transient=True) as progress:
            task = progress.add_task("silhouette search over rotations", total=len(grid))
            for s in range(0, len(grid), chunk):
                R = grid[s:s + chunk]
                t0 = c1 - R @ c2  # centroids together, then the masks pull it in
                _, ts[s:s + chunk], costs[s:s + chunk] = self._solve(f1, f2, p1, p2, R, t0, c.translation_steps, False)
                progress.advance(task, len(R))
        order = np.argsort(costs)[: 4 * c.keep]
        R, t, cost = self._solve(f1, f2, p1, p2, grid[order], ts[order], c.refine_steps, True)
        out: list[Hypothesis] = []
        for i in np.argsort(cost):
            if all(rotation_angle_deg(R[i] @ h.T_seq1_seq2[:3, :3].T) >= c.min_separation_deg for h in out):
                out.append(Hypothesis(make_T(R[i], t[i]), f"silhouette-search-{len(out)}", float(-cost[i])))
            if len(out) == c.keep:
                break
        return out


@hookimpl
def nerfreg_register_generators(register) -> None:
    register("silhouette-search", SilhouetteSearchConfig, SilhouetteSearch)
