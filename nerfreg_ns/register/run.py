"""Running the plugins: hypotheses -> refined -> scored -> the best T_seq1_seq2."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from rich.progress import Progress
from scipy.spatial import cKDTree

from nerfreg_ns.errors import NerfregError
from nerfreg_ns.geometry.transforms import apply, check_rigid
from nerfreg_ns.registry import Generator, Refiner, Score, SequenceData, Verifier, random_subset


@dataclass
class Scored:
    source: str
    T_initial: np.ndarray
    T_seq1_seq2: np.ndarray
    score: Score
    prior: float


@dataclass
class Result:
    best: Scored
    hypotheses: list[Scored]
    timings: dict[str, float] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    """Hypotheses left out because they or their refinement were not a rigid transform."""


def register_sequences(seq1: SequenceData, seq2: SequenceData, generator: Generator, verifier: Verifier,
                       refiner: Refiner) -> Result:
    """Proposes, refines and scores hypotheses; the highest verifier score wins."""
    timings = {}
    t = time.time()
    hyps = generator.propose(seq1, seq2)
    timings["generate_s"] = time.time() - t
    if not hyps:
        raise NerfregError("the generator proposed no hypothesis")
    scored: list[Scored] = []
    dropped: list[str] = []
    t = time.time()
    with Progress(transient=True) as progress:
        task = progress.add_task("refining and scoring hypotheses", total=len(hyps))
        for h in hyps:
            progress.advance(task)
            try:  # one degenerate hypothesis (e.g. a PnP pose far off) must not sink the others
                T0 = check_rigid(h.T_seq1_seq2, f"hypothesis from {h.source}")
                T = check_rigid(refiner.refine(seq1, seq2, T0), f"refined hypothesis from {h.source}")
            except NerfregError as e:
                dropped.append(f"{h.source}: {e}")
                continue
            scored.append(Scored(h.source, T0, T, verifier.score(seq1, seq2, T), h.prior))
    timings["refine_and_verify_s"] = time.time() - t
    if not scored:
        raise NerfregError(f"every hypothesis was degenerate ({len(dropped)}; first: {dropped[0]})")
    scored.sort(key=lambda s: s.score.value, reverse=True)
    return Result(scored[0], scored, timings, dropped)


def overlap_fraction(seq1: SequenceData, seq2: SequenceData, T_seq1_seq2: np.ndarray, tolerance_frac: float = 0.02,
                     max_points: int = 20000) -> float:
    """Fraction of the moved sequence-2 points (a random subset) within `tolerance_frac` x d of
    a sequence-1 point: the host's own check, whatever the verifier measures."""
    p2 = random_subset(seq2.points, max_points)
    d, _ = cKDTree(seq1.points).query(apply(T_seq1_seq2, p2), distance_upper_bound=tolerance_frac * seq1.diameter)
    return float(np.isfinite(d).mean())
