"""Verifiers `chamfer` (overlap agreement), `silhouette` (each moved cloud must project inside
the other sequence's masks) and `combined` (silhouette first, overlap to break ties).

Why silhouettes: overlap counts alone often prefer the lower half upside down; such a pose puts
part of the surface outside the other sequence's masks, which no symmetry-consistent pose does.
Why a precision test in `silhouette` and `combined`: a pose can fit both sequences' masks as well
as their noise allows and still be off by more than the success tolerance, when the cameras
disagree with their own reconstruction by more than the tolerance can absorb (camera poses a degree
or two off). Each sequence's view agreement (`geometry.view_agreement`) bounds how precisely any
pose between the two can be known; beyond the tolerance the verdict is "not confident".
Why the capture prior in `combined`: on a part that is nearly symmetric upside down (obj_19), the
flipped pose fits the masks as well as the true one and overlaps more, so overlap alone picks it;
its merged model then holds the upper half twice and no lower half.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from nerfreg_ns.geometry.cameras import in_image, mean_view_direction, pixel_index, project
from nerfreg_ns.geometry.metrics import SUCCESS_SURFACE_ERROR
from nerfreg_ns.geometry.points import random_subset
from nerfreg_ns.geometry.transforms import apply, invert
from nerfreg_ns.geometry.view_agreement import registration_precision, standard_error, view_shifts
from nerfreg_ns.hookspecs import hookimpl
from nerfreg_ns.registry import Score, SequenceData


@dataclass(frozen=True)
class ChamferConfig:
    """Truncated Chamfer agreement between the two clouds where they overlap (no ground truth)."""

    truncate_frac: float = 0.02
    """Distances beyond this fraction of the diameter count as no overlap."""
    max_points: int = 20000
    """Points per cloud used (random subset)."""
    min_fitness: float = 0.2
    """Below this overlap fraction the pose is not trusted."""


@dataclass(frozen=True)
class SilhouetteConfig:
    """Fraction of each moved cloud projecting outside the other sequence's masks (lower is better)."""

    tolerance_px: float = 1.0
    """Points within this distance of a mask count as inside (pixel rounding)."""
    max_points: int = 5000
    """Points per cloud used (random subset)."""
    max_outside: float = 0.005
    """Above this fraction of points outside the masks, over each sequence's own noise floor
    (`floor_mult` x how far its own surface falls outside its own masks), the pose is not
    trusted. Chosen between the right poses of the registration benchmarks, clean and
    capture-like, and a pose a few degrees off on a thin plate that a margin four times larger
    called confident (benchmarks/README.md, the search hop and trust margin)."""
    trim: float = 0.1
    """Fraction of the views with the most points outside left out of the mean (a few bad masks
    neither veto the truth nor rescue a wrong pose)."""
    floor_mult: float = 2.0
    """How many times a sequence's own noise floor the other sequence may fall outside its masks."""
    precision_sigmas: float = 3.0
    """A pose is trusted only if this many standard errors of the registration (from how well
    each sequence's views agree with its own reconstruction) stay within `tolerance_frac`. 0 turns
    the precision test off."""
    tolerance_frac: float = SUCCESS_SURFACE_ERROR
    """The error a trusted pose may have, as a fraction of the diameter (the success tolerance)."""


@dataclass(frozen=True)
class CombinedConfig:
    """Silhouette consistency, with the Chamfer agreement as a small tie-breaker."""

    chamfer_weight: float = 0.01
    """Weight of the Chamfer score next to the silhouette score."""
    opposite_weight: float = 0.02
    """Weight of the capture prior: the object was filmed standing, then flipped, so sequence 2's
    cameras, moved into sequence 1's frame, should look at it from the other side (score 1 when the
    mean viewing directions are opposite, 0 when they agree). 0 turns the prior off, e.g. for two
    sequences filmed from the same side."""
    truncate_frac: float = 0.02
    tolerance_px: float = 1.0
    max_outside: float = 0.005
    trim: float = 0.1
    floor_mult: float = 2.0
    min_fitness: float = 0.2
    precision_sigmas: float = 3.0
    tolerance_frac: float = SUCCESS_SURFACE_ERROR

    def trusts(self, outside_seq1_masks: float, outside_seq2_masks: float, fitness: float,
               floor_seq1: float = 0.0, floor_seq2: float = 0.0, precision: float = 0.0) -> bool:
        """The verdict from a score's details (also used to re-judge recorded scores)."""
        return (silhouette_trusts(outside_seq1_masks, outside_seq2_masks, floor_seq1, floor_seq2, self.max_outside,
                                  self.floor_mult) and fitness >= self.min_fitness
                and precise_enough(precision, self.precision_sigmas, self.tolerance_frac))


def silhouette_trusts(o21: float, o12: float, floor1: float, floor2: float, max_outside: float, floor_mult: float) -> bool:
    """Each moved cloud may fall outside the other sequence's masks by `max_outside` plus
    `floor_mult` times the larger noise floor of the two (one sequence's masks judge the other's
    surface: the masks' noise and the surface's both show)."""
    allowed = max_outside + floor_mult * max(floor1, floor2)
    return max(o21, o12) <= allowed


def precise_enough(precision: float, sigmas: float, tolerance_frac: float) -> bool:
    """Whether `sigmas` standard errors of the registration (`precision`, fraction of d) fit
    within the tolerance."""
    return sigmas * precision <= tolerance_frac


class Chamfer:
    def __init__(self, config: ChamferConfig) -> None:
        self.config = config

    def score(self, seq1: SequenceData, seq2: SequenceData, T_seq1_seq2: np.ndarray) -> Score:
        tau = self.config.truncate_frac * seq1.diameter
        a = random_subset(seq1.points, self.config.max_points)
        b = apply(T_seq1_seq2, random_subset(seq2.points, self.config.max_points))
        d_ba, _ = cKDTree(a).query(b, distance_upper_bound=tau)
        d_ab, _ = cKDTree(b).query(a, distance_upper_bound=tau)
        fit = 0.5 * (np.isfinite(d_ba).mean() + np.isfinite(d_ab).mean())
        inl = np.concatenate([d_ba[np.isfinite(d_ba)], d_ab[np.isfinite(d_ab)]])
        rmse = float(np.sqrt(np.mean(inl**2))) if len(inl) else tau
        return Score(float(fit * (1 - rmse / tau)), {"fitness": float(fit), "inlier_rmse": rmse}, bool(fit >= self.config.min_fitness))


def outside_per_view(points_world: np.ndarray, seq: SequenceData, tolerance_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Per view of `seq` whose mask is trusted: points falling in the image (V,) and, of them,
    those more than `tolerance_px` outside the view's mask (V,)."""
    outside, seen = [], []
    for i in seq.trusted_views():
        K, T_wc = seq.Ks[i], seq.T_world_camcv[i]
        dist = seq.mask_distance(i)
        uv, z = project(K, invert(T_wc), points_world)
        h, w = dist.shape
        ok = (z > 0) & in_image(uv, w, h)
        ij = pixel_index(uv[ok])
        outside.append(int((dist[ij[:, 1], ij[:, 0]] > tolerance_px).sum()))
        seen.append(int(ok.sum()))
    return np.array(outside, float), np.array(seen, float)


def outside_fraction(points_world: np.ndarray, seq: SequenceData, tolerance_px: float, trim: float = 0.0) -> float:
    """Fraction of (point, view) pairs, over views where the point falls in the image, that land
    more than `tolerance_px` outside that view's mask, leaving out the `trim` fraction of views
    with the highest fractions."""
    outside, seen = outside_per_view(points_world, seq, tolerance_px)
    if trim > 0 and len(seen) > 2:
        frac = outside / np.maximum(seen, 1)
        keep = np.argsort(frac)[: max(1, int(np.ceil(len(frac) * (1 - trim))))]
        outside, seen = outside[keep], seen[keep]
    return float(outside.sum() / max(seen.sum(), 1))


class Silhouette:
    def __init__(self, config: SilhouetteConfig) -> None:
        self.config = config
        self._cache: dict[tuple[str, int], tuple[SequenceData, float]] = {}

    def _once(self, what: str, seq: SequenceData, compute) -> float:
        hit = self._cache.get((what, id(seq)))
        if hit is None or hit[0] is not seq:  # an id can be reused once a sequence is gone
            hit = (seq, float(compute()))
            self._cache[(what, id(seq))] = hit
        return hit[1]

    def floor(self, seq: SequenceData) -> float:
        """How far the sequence's own surface falls outside its own masks: its noise floor."""
        c = self.config
        return self._once("floor", seq, lambda: outside_fraction(random_subset(seq.points, c.max_points), seq, c.tolerance_px, c.trim))

    def view_error(self, seq: SequenceData) -> float:
        """Standard error (fraction of d) of the sequence's views' shifts against its own surface."""
        if not seq.masks or len(seq.T_world_camcv) != len(seq.masks):
            return 0.0
        views = seq.trusted_views()
        return self._once("view_error", seq, lambda: standard_error(view_shifts(
            seq.points, [seq.Ks[i] for i in views], [seq.T_world_camcv[i] for i in views], [seq.masks[i] for i in views],
            seq.diameter), self.config.trim))

    def score(self, seq1: SequenceData, seq2: SequenceData, T_seq1_seq2: np.ndarray) -> Score:
        c = self.config
        p2_in_1 = apply(T_seq1_seq2, random_subset(seq2.points, c.max_points))
        p1_in_2 = apply(invert(T_seq1_seq2), random_subset(seq1.points, c.max_points))
        o21 = outside_fraction(p2_in_1, seq1, c.tolerance_px, c.trim)
        o12 = outside_fraction(p1_in_2, seq2, c.tolerance_px, c.trim)
        f1, f2 = self.floor(seq1), self.floor(seq2)
        e1, e2 = self.view_error(seq1), self.view_error(seq2)
        precision = registration_precision(e1, e2)
        details = {"outside_seq1_masks": o21, "outside_seq2_masks": o12, "floor_seq1": f1, "floor_seq2": f2,
                   "view_error_seq1": e1, "view_error_seq2": e2, "precision": precision}
        trusted = (silhouette_trusts(o21, o12, f1, f2, c.max_outside, c.floor_mult)
                   and precise_enough(precision, c.precision_sigmas, c.tolerance_frac))
        return Score(-0.5 * (o21 + o12), details, trusted)


def view_direction(seq: SequenceData) -> np.ndarray:
    """Unit mean direction (3,) from the surface's centre to the sequence's cameras, in its frame."""
    return mean_view_direction(np.array([T[:3, 3] for T in seq.T_world_camcv]), np.median(seq.points, axis=0))


def opposition(seq1: SequenceData, seq2: SequenceData, T_seq1_seq2: np.ndarray) -> float:
    """(1 - cos) / 2 of the angle between the two sequences' mean viewing directions in
    sequence 1's frame: 1 when they film opposite sides, 0 the same side; 0.5 without cameras."""
    if not seq1.T_world_camcv or not seq2.T_world_camcv:
        return 0.5
    u1, u2 = view_direction(seq1), T_seq1_seq2[:3, :3] @ view_direction(seq2)
    return float(0.5 * (1.0 - u1 @ u2))


class Combined:
    def __init__(self, config: CombinedConfig) -> None:
        self.config = config
        self.silhouette = Silhouette(SilhouetteConfig(tolerance_px=config.tolerance_px, max_outside=config.max_outside,
                                                      trim=config.trim, floor_mult=config.floor_mult,
                                                      precision_sigmas=config.precision_sigmas,
                                                      tolerance_frac=config.tolerance_frac))
        self.chamfer = Chamfer(ChamferConfig(truncate_frac=config.truncate_frac, min_fitness=config.min_fitness))

    def score(self, seq1: SequenceData, seq2: SequenceData, T_seq1_seq2: np.ndarray) -> Score:
        s, c = self.silhouette.score(seq1, seq2, T_seq1_seq2), self.chamfer.score(seq1, seq2, T_seq1_seq2)
        details = {**s.details, **c.details, "opposition": opposition(seq1, seq2, T_seq1_seq2)}
        trusted = self.config.trusts(details["outside_seq1_masks"], details["outside_seq2_masks"], details["fitness"],
                                     details["floor_seq1"], details["floor_seq2"], details["precision"])
        value = s.value + self.config.chamfer_weight * c.value + self.config.opposite_weight * details["opposition"]
        return Score(value, details, trusted)


@hookimpl
def nerfreg_register_verifiers(register) -> None:
    register("chamfer", ChamferConfig, Chamfer)
    register("silhouette", SilhouetteConfig, Silhouette)
    register("combined", CombinedConfig, Combined)
