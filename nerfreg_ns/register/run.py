"""Running the plugins: hypotheses -> refined (by each chosen refiner) -> scored -> the best T_seq1_seq2.

Several refiners may be chosen: every hypothesis is refined by each and every result is scored,
so the verifier also picks between refiners. Refiners fail in different ways (silhouette-icp can
be dragged by a visual hull's bulge, point-to-plane ICP slides along a symmetric face), and the
verifier that already picks between hypotheses can tell which result is consistent."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Mapping, Union

import numpy as np
from rich.progress import Progress
from scipy.spatial import cKDTree

from nerfreg_ns.errors import NerfregError
from nerfreg_ns.geometry.points import random_subset
from nerfreg_ns.geometry.transforms import apply, check_rigid
from nerfreg_ns.registry import Generator, Refiner, Score, SequenceData, Verifier


PLUGIN_MAX_SIDE = 320
"""Plugins see each view's mask at most this many pixels on its longer side: their pixel
tolerances and search basins mean the same at any image size, and masks of large images are
not searched at full resolution. Outputs (BOP labels, report) use the full-size views."""


@dataclass
class Scored:
    source: str
    T_initial: np.ndarray
    T_seq1_seq2: np.ndarray
    score: Score
    prior: float
    refiner: str = ""


@dataclass
class Result:
    best: Scored
    hypotheses: list[Scored]
    timings: dict[str, float] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    """Hypotheses left out because they or their refinement were not a rigid transform."""


def register_sequences(seq1: SequenceData, seq2: SequenceData, generator: Generator, verifier: Verifier,
                       refiner: Union[Refiner, Mapping[str, Refiner]]) -> Result:
    """Proposes hypotheses, refines each with every refiner (one, or a mapping name -> refiner)
    and scores every result; the highest verifier score wins. The plugins get the sequences'
    views reduced to `PLUGIN_MAX_SIDE`."""
    seq1, seq2 = seq1.reduced(PLUGIN_MAX_SIDE), seq2.reduced(PLUGIN_MAX_SIDE)
    refiners = dict(refiner) if isinstance(refiner, Mapping) else {"": refiner}
    if not refiners:
        raise NerfregError("no refiner chosen")
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
        task = progress.add_task("refining and scoring hypotheses", total=len(hyps) * len(refiners))
        for h in hyps:
            try:  # one degenerate hypothesis (e.g. a PnP pose far off) must not sink the others
                T0 = check_rigid(h.T_seq1_seq2, f"hypothesis from {h.source}")
            except NerfregError as e:
                dropped.append(f"{h.source}: {e}")
                progress.advance(task, len(refiners))
                continue
            for name, ref in refiners.items():
                progress.advance(task)
                by = f" by {name}" if name else ""
                t_ref = time.time()
                try:
                    T = check_rigid(ref.refine(seq1, seq2, T0), f"refined hypothesis from {h.source}{by}")
                except NerfregError as e:
                    dropped.append(f"{h.source}{by}: {e}")
                    continue
                finally:
                    key = f"refine_{name or 'refiner'}_s"
                    timings[key] = timings.get(key, 0.0) + time.time() - t_ref
                t_ver = time.time()
                scored.append(Scored(h.source, T0, T, verifier.score(seq1, seq2, T), h.prior, name))
                timings["verify_s"] = timings.get("verify_s", 0.0) + time.time() - t_ver
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
