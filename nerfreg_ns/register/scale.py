"""Registration with scale (7 DoF), for sequences posed each in its own scale (SfM).

Sequence 2 is brought into sequence 1's scale (`scaled_sequence`), registered rigidly by the
chosen plugins, and the scale is then polished by a similarity ICP on the surfaces' common band;
the plugins never see a scale. The result is `scale` and a rigid `T_seq1_seq2` in sequence 1's
units: a sequence-2 point x2 lands at `apply(T_seq1_seq2, scale * x2)`.

The first scale is the ratio of the surfaces' 5-95% extents. Each sequence sees its own half of
the object, so that ratio can be off by several percent: the rigid search runs again at the
polished scale when the polish moved it by more than `RESEARCH_REL`. The similarity ICP on
reconstructed surfaces can itself be off by a few percent (measured: 3.4% on a realistic
procedural part, benchmarks/README.md), so the verifier then chooses the scale on a grid around it.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from nerfreg_ns.errors import NerfregError
from nerfreg_ns.geometry.points import random_subset, to_o3d
from nerfreg_ns.geometry.transforms import make_T
from nerfreg_ns.geometry.units import scale_T
from nerfreg_ns.register.run import PLUGIN_MAX_SIDE, Result, register_sequences
from nerfreg_ns.registry import Generator, Hypothesis, Refiner, SequenceData, Verifier

RESEARCH_REL = 0.05
"""A polished scale this far (relative) from the one the search ran at runs the search again
(the rigid search copes with a few percent of scale error: the polish starts from its pose)."""
MAX_ROUNDS = 3
POLISH_ROUNDS = 5
SCALE_GRIDS = ((-0.06, -0.04, -0.02, 0.0, 0.02, 0.04, 0.06), (-0.015, -0.01, -0.005, 0.005, 0.01, 0.015))
"""Relative steps around the polished scale that the verifier judges: coarse, then fine around the best."""


def similarity_matrix(scale: float, T_a_b: np.ndarray) -> np.ndarray:
    """The 4x4 similarity x_a = R (scale x_b) + t of a rigid T_a_b (4, 4) applied after scaling."""
    S = np.array(T_a_b, dtype=float)
    S[:3, :3] *= scale
    return S


def scaled_sequence(seq: SequenceData, s: float, unit: str | None = None) -> SequenceData:
    """`seq` with every length multiplied by `s` (points, boundary, spread, diameter, camera positions);
    masks, intrinsics, keys and features are unchanged. `unit` names the new frame's unit."""
    if not (np.isfinite(s) and s > 0):
        raise NerfregError(f"{seq.name}: a scale must be positive and finite, got {s}")
    return dataclasses.replace(
        seq,
        points=seq.points * s,
        diameter=seq.diameter * s,
        spread=None if seq.spread is None else np.asarray(seq.spread) * s,
        boundary=None if seq.boundary is None else np.asarray(seq.boundary) * s,
        T_world_camcv=[scale_T(T, s) for T in seq.T_world_camcv],
        unit=unit,
        source=f"{seq.source} (lengths x {s:.6g})",
    )


def initial_scale(seq1: SequenceData, seq2: SequenceData) -> float:
    """Sequence-1 lengths per sequence-2 length, from the surfaces' 5-95% extents."""
    e1, e2 = seq1.core_extent, seq2.core_extent
    if not (e1 > 0 and e2 > 0):
        raise NerfregError("cannot estimate a scale: a sequence's surface has no extent")
    return e1 / e2


def similarity_icp(seq1: SequenceData, seq2: SequenceData, T_seq1_seq2: np.ndarray, max_points: int = 20000,
                   dist_fracs: tuple[float, ...] = (0.04, 0.02, 0.01), iterations: int = 30) -> tuple[float, np.ndarray]:
    """Polishes a pose with a free scale: point-to-point ICP with scaling (Umeyama) on the pairs
    closer than each of `dist_fracs` x d in turn, which keeps only the band both sequences see.
    Returns (scale, T_seq1_seq2): x1 = apply(T, scale * x2) for seq2's points as given."""
    import open3d as o3d

    src = to_o3d(random_subset(seq2.points, max_points, seed=1))
    dst = to_o3d(random_subset(seq1.points, max_points, seed=2))
    S = np.array(T_seq1_seq2, dtype=float)
    est = o3d.pipelines.registration.TransformationEstimationPointToPoint(with_scaling=True)
    crit = o3d.pipelines.registration.ICPConvergenceCriteria(max_iteration=iterations)
    for frac in dist_fracs:
        res = o3d.pipelines.registration.registration_icp(src, dst, frac * seq1.diameter, S, est, crit)
        if len(res.correspondence_set) < 50:  # too little overlap to say anything about scale
            break
        S = np.asarray(res.transformation)
    scale = float(np.cbrt(np.linalg.det(S[:3, :3])))
    if not (np.isfinite(scale) and scale > 0):
        raise NerfregError("the scale polish diverged")
    return scale, make_T(_nearest_rotation(S[:3, :3] / scale), S[:3, 3])


def _nearest_rotation(M: np.ndarray) -> np.ndarray:
    U, _, Vt = np.linalg.svd(M)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    return U @ D @ Vt


def register_with_scale(seq1: SequenceData, seq2: SequenceData, generator: Generator, verifier: Verifier,
                        refiners: Mapping[str, Refiner]) -> tuple[Result, float, SequenceData, dict]:
    """7-DoF registration: returns (result, scale, seq2 in sequence 1's scale, a record for
    registration.json). The search runs at `initial_scale`; its best pose is polished with a
    free scale and, when the scale moved by more than `RESEARCH_REL`, the search runs again there
    (at most `MAX_ROUNDS` searches). The polished pose then goes through the refiners and the
    verifier like any hypothesis, at the final scale, so `result` (score, confidence) is of the
    scaled sequence 2 that is returned."""
    full2 = seq2
    seq1, seq2 = seq1.reduced(PLUGIN_MAX_SIDE), seq2.reduced(PLUGIN_MAX_SIDE)  # once, not per candidate
    scale = first = initial_scale(seq1, seq2)
    searched, timings = [], {}
    for _ in range(MAX_ROUNDS):
        result = register_sequences(seq1, scaled_sequence(seq2, scale, seq1.unit), generator, verifier, refiners)
        searched.append(scale)
        for k, v in result.timings.items():
            timings[k] = timings.get(k, 0.0) + v
        T = result.best.T_seq1_seq2
        for _ in range(POLISH_ROUNDS):  # ICP's scale moves in small steps: repeat until it settles
            rel, T = similarity_icp(seq1, scaled_sequence(seq2, scale), T)
            scale *= rel
            if abs(rel - 1) < 1e-3:
                break
        if abs(scale / searched[-1] - 1) <= RESEARCH_REL:
            break
    icp_scale = scale
    final, scale, tried = _scale_by_verifier(seq1, seq2, scale, T, verifier, refiners)
    final.timings = {**timings, **{f"scale_{k}": v for k, v in final.timings.items()}}
    record = {"scale": scale, "initial": first, "searched_at": searched, "similarity_icp": icp_scale,
              "verifier_scores": tried,
              "search_best": {"source": result.best.source, "refiner": result.best.refiner, "score": result.best.score.value}}
    return final, scale, scaled_sequence(full2, scale, seq1.unit), record


def _scale_by_verifier(seq1: SequenceData, seq2: SequenceData, scale: float, T: np.ndarray, verifier: Verifier,
                       refiners: Mapping[str, Refiner]) -> tuple[Result, float, list]:
    """The scale near `scale` whose pose, refined by the refiners, the verifier likes best: a
    coarse then a fine grid of relative steps (`SCALE_GRIDS`). The masks judge scale in both
    directions (too large falls outside the other sequence's masks, too small leaves its own
    surface outside), where the surfaces' common band alone is easily biased by a few percent.
    Each candidate scales sequence 2 about its surface's centre, so the pose keeps it in place."""
    centre = np.median(seq2.points, axis=0)
    best: tuple[float, Result] | None = None
    tried: list = []
    for grid in SCALE_GRIDS:
        around = scale if best is None else best[0]
        for rel in grid:
            c = around * (1 + rel)
            if any(abs(c / t[0] - 1) < 1e-6 for t in tried):
                continue
            Tc = T.copy()
            Tc[:3, 3] += T[:3, :3] @ ((scale - c) * centre)
            res = register_sequences(seq1, scaled_sequence(seq2, c, seq1.unit), _Fixed(Tc), verifier, refiners)
            tried.append((c, res.best.score.value))
            if best is None or res.best.score.value > best[1].best.score.value:
                best = (c, res)
    return best[1], best[0], tried


class _Fixed:
    """A generator that proposes one given pose (the scale polish's)."""

    def __init__(self, T: np.ndarray) -> None:
        self.T = T

    def propose(self, seq1: SequenceData, seq2: SequenceData) -> list[Hypothesis]:
        return [Hypothesis(self.T, "scale-polish")]
