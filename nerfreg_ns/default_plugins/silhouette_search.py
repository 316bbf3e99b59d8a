"""Generator `silhouette-search`: a global rotation search scored by both sequences' masks.

Why: feature matching (FPFH) needs overlap, and with narrow overlap between the two hemispheres
its RANSAC poses are often not even near a flip of the truth. Silhouettes constrain the pose
whatever the overlap: each sequence's cloud, moved into the other's frame, must project inside
that sequence's masks. This searches a near-uniform grid of rotations; for each it solves the
translation by Gauss-Newton on the distance (px) of the points outside the masks, then refines
the best few in all six degrees of freedom, restarts each from a few nearby rotations (a hop out
of a neighbour's local minimum) and hands the distinct ones to the refiner/verifier.
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
    """Hypotheses returned at `min_separation_deg` from each other (see `near_keep` for more)."""
    min_separation_deg: float = 25.0
    """Returned rotations differ at least by this much..."""
    near_keep: int = 4
    """...and up to this many more of the lowest-cost poses are returned besides, each at least
    `near_separation_deg` from every other returned one. Why: the true basin can lie under
    `min_separation_deg` from a coarse minimum of lower cost, which alone would drop it
    (benchmarks/README.md, 2026-12-05: the search keeps a basin next to a
    lower minimum). 0 turns this off."""
    near_separation_deg: float = 10.0
    """Separation of the `near_keep` extra poses."""
    cap_px: float = 20.0
    """Distances outside a mask count at most this much (robust to a bad mask)."""
    hop_deg: float = 6.0
    """Each returned pose is restarted from 12 rotations this far from it (its translation solved
    again, then the full pose refined); the lowest cost replaces it. Why: a grid of 1536 rotations
    leaves some poses about 13 degrees from the nearest one, and on a thin plate the truth's basin
    can be narrower, so the nearest grid rotation falls into a neighbouring local minimum that
    holds every start near it (benchmarks/README.md, the search hop and trust margin). 0 turns
    the hops off."""
    hop_rounds: int = 1
    """Hops per pose at most (stops early when no restart lowers any cost)."""


def icosahedron_directions() -> np.ndarray:
    """(12, 3) unit vectors to an icosahedron's vertices: 12 directions spread evenly."""
    g = (1.0 + np.sqrt(5.0)) / 2.0
    v = np.array([[0, 1, g], [0, -1, g], [1, g, 0], [-1, g, 0], [g, 0, 1], [-g, 0, 1]], float)
    v = np.concatenate([v, -v])
    return v / np.linalg.norm(v, axis=1, keepdims=True)


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

    def _hop(self, f1, f2, p1, p2, R, t, cost):
        """Restarts every pose (B) from 12 rotations `hop_deg` away and keeps, per pose, the
        restart with the lowest cost when it is lower than the pose's own."""
        c = self.config
        turns = so3_exp(np.radians(c.hop_deg) * icosahedron_directions())  # (12, 3, 3)
        rows = np.arange(len(R))
        for _ in range(c.hop_rounds if c.hop_deg > 0 else 0):
            R0, t0 = (turns[None] @ R[:, None]).reshape(-1, 3, 3), np.repeat(t, len(turns), 0)
            _, t0, _ = self._solve(f1, f2, p1, p2, R0, t0, c.translation_steps, False)
            Rh, th, ch = self._solve(f1, f2, p1, p2, R0, t0, c.refine_steps, True)
            best = rows * len(turns) + ch.reshape(len(R), -1).argmin(1)
            better = ch[best] < cost
            if not better.any():
                break
            R, t = np.where(better[:, None, None], Rh[best], R), np.where(better[:, None], th[best], t)
            cost = np.where(better, ch[best], cost)
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
        keep = self._distinct(R, cost)
        R, t, cost = self._hop(f1, f2, p1, p2, R[keep], t[keep], cost[keep])
        return [Hypothesis(make_T(R[i], t[i]), f"silhouette-search-{n}", float(-cost[i]))
                for n, i in enumerate(self._distinct(R, cost))]

    def _distinct(self, R: np.ndarray, cost: np.ndarray) -> list[int]:
        """Indices (lowest cost first) of at most `keep` poses `min_separation_deg` apart, then of
        at most `near_keep` more, each `near_separation_deg` from every index chosen."""
        c = self.config
        order = [int(i) for i in np.argsort(cost)]
        out: list[int] = []
        for separation, more in ((c.min_separation_deg, c.keep), (c.near_separation_deg, c.near_keep)):
            n = len(out) + more
            for i in order:
                if len(out) >= n:
                    break
                if i not in out and all(rotation_angle_deg(R[i] @ R[j].T) >= separation for j in out):
                    out.append(i)
        return out


@hookimpl
def nerfreg_register_generators(register) -> None:
    register("silhouette-search", SilhouetteSearchConfig, SilhouetteSearch)
