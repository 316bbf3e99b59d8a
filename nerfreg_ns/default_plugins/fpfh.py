"""Generators `fpfh` (Open3D FPFH + RANSAC, the classic baseline) and `fpfh-flips` (RANSAC and
FGR results plus their 180-degree flips about the merged cloud's principal axes).

Why the flips: an upper and a lower half of a part often match best upside down; overlap-only
features cannot tell, silhouettes can. Offering the flips lets a silhouette verifier choose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nerfreg_ns.geometry.points import to_o3d
from nerfreg_ns.geometry.transforms import apply, axis_angle_to_R, make_T
from nerfreg_ns.hookspecs import hookimpl
from nerfreg_ns.registry import Hypothesis, SequenceData


@dataclass(frozen=True)
class FpfhConfig:
    """Open3D FPFH features matched with RANSAC between the two surface clouds."""

    voxel_frac: float = 0.03
    """Downsampling voxel, as a fraction of the diameter."""
    runs: int = 3
    """Independent RANSAC runs (one hypothesis each)."""
    iterations: int = 100000
    """RANSAC iterations per run."""
    seed: int = 0


@dataclass(frozen=True)
class FpfhFlipsConfig(FpfhConfig):
    """FPFH RANSAC and FGR results, each with its 180-degree flips about the principal axes of
    the merged cloud: hypotheses for a verifier that can tell a flipped half (silhouette)."""


def _features(seq: SequenceData, voxel: float):
    import open3d as o3d

    pc = to_o3d(seq.points, seq.normals).voxel_down_sample(voxel)
    fpfh = o3d.pipelines.registration.compute_fpfh_feature(
        pc, o3d.geometry.KDTreeSearchParamHybrid(radius=5 * voxel, max_nn=100)
    )
    return pc, fpfh


class Fpfh:
    def __init__(self, config: FpfhConfig) -> None:
        self.config = config

    def _global(self, seq1: SequenceData, seq2: SequenceData, fgr: bool) -> list[Hypothesis]:
        import open3d as o3d

        reg = o3d.pipelines.registration
        voxel = self.config.voxel_frac * seq1.diameter
        src, f_src = _features(seq2, voxel)
        dst, f_dst = _features(seq1, voxel)
        out = []
        for run in range(self.config.runs):
            o3d.utility.random.seed(self.config.seed + run)
            r = reg.registration_ransac_based_on_feature_matching(
                src, dst, f_src, f_dst, True, 1.5 * voxel, reg.TransformationEstimationPointToPoint(False), 3,
                [reg.CorrespondenceCheckerBasedOnEdgeLength(0.9), reg.CorrespondenceCheckerBasedOnDistance(1.5 * voxel)],
                reg.RANSACConvergenceCriteria(self.config.iterations, 0.999),
            )
            out.append(Hypothesis(np.asarray(r.transformation), f"fpfh-ransac-{run}", float(r.fitness)))
        if fgr:
            r = reg.registration_fgr_based_on_feature_matching(
                src, dst, f_src, f_dst, reg.FastGlobalRegistrationOption(maximum_correspondence_distance=1.5 * voxel)
            )
            out.append(Hypothesis(np.asarray(r.transformation), "fgr", float(r.fitness)))
        return out

    def propose(self, seq1: SequenceData, seq2: SequenceData) -> list[Hypothesis]:
        return self._global(seq1, seq2, fgr=False)


class FpfhFlips(Fpfh):
    def propose(self, seq1: SequenceData, seq2: SequenceData) -> list[Hypothesis]:
        out = []
        for h in self._global(seq1, seq2, fgr=True):
            out.append(h)
            merged = np.concatenate([seq1.points, apply(h.T_seq1_seq2, seq2.points)])
            c = merged.mean(0)
            _, _, axes = np.linalg.svd(merged - c, full_matrices=False)
            for i, axis in enumerate(axes):
                R = axis_angle_to_R(axis, np.pi)
                flip = make_T(R, c - R @ c)  # half turn about the axis through the centroid, in seq1
                out.append(Hypothesis(flip @ h.T_seq1_seq2, f"{h.source}-flip{i}", h.prior))
        return out


@hookimpl
def nerfreg_register_generators(register) -> None:
    register("fpfh", FpfhConfig, Fpfh)
    register("fpfh-flips", FpfhFlipsConfig, FpfhFlips)
