"""Finding an object's (near-)symmetries from its mesh, for symmetry-aware scores and BOP labels.

A candidate rotation about the model's centre is a symmetry when it moves the surface onto
itself: its surface error (mean distance of moved surface samples to the surface) is below a
fraction of the diameter. Candidates: turns by 360/k about the principal axes, k = 2..8, and
half turns about directions spread over a hemisphere, each polished by ICP on the samples. Why:
a near-symmetry's axis need not pass through the samples' centroid nor lie on a principal axis
(some T-LESS parts have half turns that no principal axis finds).

Parts of revolution have a continuous symmetry: an axis (and a point on it, BOP's `offset`)
about which every turn is a symmetry. `object_symmetries` gives both kinds as the BOP format
writes them: the continuous axes, and the discrete transforms that are not turns about them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.spatial import cKDTree

from nerfreg_ns.geometry.transforms import apply, axis_angle_to_R, invert, make_T, rotation_angle_deg


def _icp_polish(points: np.ndarray, tree: cKDTree, T: np.ndarray, iterations: int = 40,
                give_up: float = np.inf) -> np.ndarray:
    """Point-to-point ICP (Kabsch) of the moved samples back onto the samples, from T (4, 4);
    stops once a step moves the samples by less than 1e-7 of their extent, or after 10 steps
    when the samples still lie `give_up` from one another on average (no symmetry near)."""
    scale = float(np.ptp(points, axis=0).max())
    for it in range(iterations):
        moved = apply(T, points)
        gap, idx = tree.query(moved)
        if it == 10 and gap.mean() > give_up:
            break
        a, b = points, points[idx]
        ca, cb = a.mean(0), b.mean(0)
        U, _, Vt = np.linalg.svd((a - ca).T @ (b - cb))
        D = np.diag([1.0, 1.0, np.sign(np.linalg.det(Vt.T @ U.T))])
        R = Vt.T @ D @ U.T
        T_new = make_T(R, cb - R @ ca)
        done = np.abs(apply(T_new, points[:64]) - apply(T, points[:64])).max() < 1e-7 * scale
        T = T_new
        if done:
            break
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
    tol: float = 0.01, max_order: int = 8, half_turn_axes: int = 48, skip_axes: tuple[np.ndarray, ...] = (),
) -> list[np.ndarray]:
    """Symmetry transforms (4, 4) of a surface sampled by `points` (N, 3), identity first.

    `distance` maps points (M, 3) to their distance to the surface (M,). Candidates: turns by
    360/k about the principal axes, and half turns about `half_turn_axes` more directions (the
    flips two hemispheres get confused by need not be about a principal axis). Candidates about
    a direction within 5 degrees of one of `skip_axes` are left out.
    """
    centre = points.mean(0)
    _, _, axes = np.linalg.svd(points - centre, full_matrices=False)
    tree = cKDTree(points)
    candidates = [(a, 2 * np.pi * j / k) for a in axes for k in range(2, max_order + 1) for j in range(1, k)
                  if np.gcd(j, k) == 1]  # j/k in lowest terms: each turn once
    candidates += [(a, np.pi) for a in _hemisphere(half_turn_axes)]
    candidates = [(a, angle) for a, angle in candidates if not any(abs(a @ b) > np.cos(np.radians(5)) for b in skip_axes)]
    found: list[tuple[float, np.ndarray]] = []
    for axis, angle in candidates:
        R = axis_angle_to_R(axis, angle)
        T = _icp_polish(points, tree, make_T(R, centre - R @ centre), give_up=4 * tol * diameter)
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


Q95_FACTOR = 3.0
"""A symmetry also keeps 95% of the points within this many times its mean tolerance (`_passes`)."""

CONTINUOUS_CHECK_DEG = (27.0, 63.0, 101.0, 144.0, 180.0, 223.0, 259.0, 302.0, 337.0)
"""Turns a continuous axis must pass: not multiples of one another's divisors, so that no
discrete symmetry of low order passes them all."""


def turn_about(axis: np.ndarray, offset: np.ndarray, angle_rad: float) -> np.ndarray:
    """T (4, 4): a turn by `angle_rad` about the line through `offset` (3,) along `axis` (3,)."""
    R = axis_angle_to_R(np.asarray(axis, float), angle_rad)
    offset = np.asarray(offset, float)
    return make_T(R, offset - R @ offset)


def axis_of(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rotation axis (3,) of T (4, 4) and the point (3,) of that line nearest the origin;
    the axis is of no use for T near the identity."""
    w, v = np.linalg.eig(T[:3, :3])
    axis = np.real(v[:, np.argmin(np.abs(w - 1))])
    axis /= np.linalg.norm(axis)
    # points p on the axis solve (I - R) p = t; the minimum-norm solution is the one nearest the origin
    offset = np.linalg.lstsq(np.eye(3) - T[:3, :3], T[:3, 3], rcond=None)[0]
    return axis, offset - axis * (axis @ offset)


def continuous_axes(points: np.ndarray, distance: Callable[[np.ndarray], np.ndarray], diameter: float,
                    tol: float = 0.01) -> list[tuple[np.ndarray, np.ndarray]]:
    """Axes of continuous rotational symmetry (axis (3,), offset (3,)) of a surface sampled by
    `points` (N, 3): each principal axis, tilted and shifted by ICP from a turn about it, is one
    when the surface error of `CONTINUOUS_CHECK_DEG` turns about it all stays under tol x diameter."""
    centre = points.mean(0)
    _, _, axes = np.linalg.svd(points - centre, full_matrices=False)
    tree = cKDTree(points)
    found: list[tuple[np.ndarray, np.ndarray]] = []
    for a in axes:
        T = _icp_polish(points, tree, turn_about(a, centre, np.radians(50.0)))
        if not 20 < rotation_angle_deg(T[:3, :3]) < 80:
            continue  # slid to a discrete turn or the identity: not free to turn about this axis
        axis, offset = axis_of(T)
        errors = [np.mean(distance(apply(turn_about(axis, offset, np.radians(d)), points))) for d in CONTINUOUS_CHECK_DEG]
        if max(errors) < tol * diameter and not any(abs(axis @ b) > 0.99 for b, _ in found):
            found.append((axis, offset))
    return found


def is_turn_about(T: np.ndarray, axis: np.ndarray, offset: np.ndarray, diameter: float, tol: float = 0.03) -> bool:
    """Whether T (4, 4) is (near) a turn about the line (axis, offset): it keeps the axis and
    moves the line's points within half a diameter of `offset` by less than tol x diameter."""
    if rotation_angle_deg(T[:3, :3]) > 2 and abs(axis_of(T)[0] @ axis) < np.cos(np.radians(3)):
        return False
    line = offset + np.outer([-0.5, 0.0, 0.5], axis) * diameter
    return bool(np.max(np.linalg.norm(apply(T, line) - line, axis=1)) < tol * diameter)


@dataclass
class Symmetries:
    """An object's symmetries as BOP lists them, in its frame and length unit: `discrete`
    transforms (4, 4) other than the identity, none of them a turn about a `continuous` axis
    (axis (3,), offset (3,): a point on it); `tol` bounds the discrete ones' surface error and
    `continuous_tol` that of every turn about a continuous axis (same unit)."""

    discrete: list[np.ndarray] = field(default_factory=list)
    continuous: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    tol: float = 0.0
    continuous_tol: float = 0.0

    def transforms(self, step_deg: float = 10.0) -> list[np.ndarray]:
        """Every symmetry (4, 4), the identity first, each continuous axis turned in steps of
        about `step_deg` and composed with each discrete one (as the BOP toolkit expands them)."""
        base = [np.eye(4)] + list(self.discrete)
        if not self.continuous:
            return base
        n = int(np.ceil(360.0 / step_deg))
        turns = [turn_about(a, o, 2 * np.pi * i / n) for a, o in self.continuous for i in range(n)]
        return [C @ D for D in base for C in turns]

    def scaled(self, s: float) -> "Symmetries":
        """The same symmetries with lengths multiplied by s (e.g. to mm)."""
        def sc(T: np.ndarray) -> np.ndarray:
            return make_T(T[:3, :3], s * T[:3, 3])
        return Symmetries([sc(T) for T in self.discrete], [(a, s * o) for a, o in self.continuous], s * self.tol,
                          s * self.continuous_tol)

    def moved(self, T_new_old: np.ndarray) -> "Symmetries":
        """The same symmetries expressed in another frame: T_new_old (4, 4) maps old to new."""
        inv = invert(T_new_old)
        return Symmetries([T_new_old @ S @ inv for S in self.discrete],
                          [(T_new_old[:3, :3] @ a, apply(T_new_old, o[None])[0]) for a, o in self.continuous],
                          self.tol, self.continuous_tol)

    def tolerance(self) -> dict[str, float]:
        """The bounds every listed symmetry met, in the symmetries' length unit: the discrete
        ones', and those of the turns about the continuous axes."""
        return {"mean_surface_error": self.tol, "q95_surface_error": Q95_FACTOR * self.tol,
                "continuous_mean_surface_error": self.continuous_tol,
                "continuous_q95_surface_error": Q95_FACTOR * self.continuous_tol}

    def bop(self) -> dict:
        """`symmetries_discrete` (flattened row-major 4x4) and `symmetries_continuous` as in
        models_info.json; a key is left out when there is nothing to list."""
        out: dict = {}
        if self.discrete:
            out["symmetries_discrete"] = [np.asarray(T, float).reshape(-1).tolist() for T in self.discrete]
        if self.continuous:
            out["symmetries_continuous"] = [{"axis": np.asarray(a, float).tolist(), "offset": np.asarray(o, float).tolist()}
                                            for a, o in self.continuous]
        return out


def _passes(errors: np.ndarray, diameter: float, tol: float) -> bool:
    """A symmetry's surface errors (N,): their mean under tol x diameter (the rule by which a
    registration counts as right), and no feature left visibly out of place (95% of them under
    Q95_FACTOR tol x diameter: a notch moves few points, but far)."""
    return bool(np.mean(errors) < tol * diameter and np.quantile(errors, 0.95) < Q95_FACTOR * tol * diameter)


def object_symmetries(points: np.ndarray, distance: Callable[[np.ndarray], np.ndarray], diameter: float,
                      tol: float = 0.01, search_points: int = 1500, continuous_tol: float | None = None) -> Symmetries:
    """The symmetries of a surface sampled by `points` (N, 3): its continuous axes (every check
    turn `_passes` at `continuous_tol`, tol when None) and the discrete transforms (`_passes` at
    tol) that no turn about them gives, each listed once up to those turns (a cylinder: its axis
    and one half turn across). The candidates are searched on `search_points` of the points,
    polished on four times as many and checked on all of them."""
    ctol = tol if continuous_tol is None else continuous_tol
    rng = np.random.default_rng(0)
    few = points[rng.permutation(len(points))[:search_points]]
    cont = [(a, o) for a, o in continuous_axes(few, distance, diameter, ctol)
            if all(_passes(distance(apply(turn_about(a, o, np.radians(d)), points)), diameter, ctol) for d in CONTINUOUS_CHECK_DEG)]
    polish = points[rng.permutation(len(points))[:4 * search_points]]
    tree = cKDTree(polish)
    kept: list[tuple[float, np.ndarray]] = []
    for T in find_symmetries(few, distance, diameter, tol, skip_axes=tuple(a for a, _ in cont))[1:]:
        T = _icp_polish(polish, tree, T)
        errors = distance(apply(T, points))
        if not _passes(errors, diameter, tol) or any(is_turn_about(T, a, o, diameter, 3 * ctol) for a, o in cont):
            continue
        twin = [i for i, (_, K) in enumerate(kept) if rotation_angle_deg(K[:3, :3].T @ T[:3, :3]) < 10
                or any(is_turn_about(T @ np.linalg.inv(K), a, o, diameter, 3 * ctol) for a, o in cont)]
        if not twin:
            kept.append((float(errors.mean()), T))
        elif errors.mean() < kept[twin[0]][0]:
            kept[twin[0]] = (float(errors.mean()), T)
    return Symmetries([T for _, T in sorted(kept, key=lambda k: k[0])], cont, tol * diameter, ctol * diameter)
