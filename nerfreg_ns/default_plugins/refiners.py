"""Refiners `icp` (Open3D point-to-plane ICP, coarse to fine) and `none`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nerfreg_ns.geometry.points import to_o3d
from nerfreg_ns.hookspecs import hookimpl
from nerfreg_ns.registry import SequenceData


@dataclass(frozen=True)
class IcpConfig:
    """Point-to-plane ICP from sequence 2 onto sequence 1, at shrinking voxel sizes."""

    voxel_fracs: tuple[float, ...] = (0.02, 0.01)
    """Voxel sizes (fractions of the diameter); correspondences up to 2 voxels apart. Finer levels
    cost more than they give: reconstructed surfaces are about 1% of d accurate."""
    iterations: int = 50
    """Iterations per level."""
    max_points: int = 5000
    """Sequence 2's points per level at most (a fixed random subset): the neighbour search is
    the cost, and more points than this move the result less than the surfaces' own error
    (benchmarks/README.md). 0: all."""


@dataclass(frozen=True)
class NoneConfig:
    """Keep the hypothesis as it is."""


class Icp:
    def __init__(self, config: IcpConfig) -> None:
        self.config = config
        self._clouds: dict = {}  # thinned clouds per (sequence, voxel): many hypotheses share them

    def _cloud(self, seq: SequenceData, voxel: float, max_points: int = 0):
        key = (id(seq), voxel, max_points)
        if key not in self._clouds:
            cloud = to_o3d(seq.points, seq.normals).voxel_down_sample(voxel)
            if 0 < max_points < len(cloud.points):
                pick = np.random.default_rng(0).choice(len(cloud.points), max_points, replace=False)
                cloud = cloud.select_by_index(np.sort(pick).tolist())
            self._clouds[key] = (seq, cloud)  # seq kept: id stays unique
        return self._clouds[key][1]

    def refine(self, seq1: SequenceData, seq2: SequenceData, T_seq1_seq2: np.ndarray) -> np.ndarray:
        import open3d as o3d

        reg = o3d.pipelines.registration
        T = np.asarray(T_seq1_seq2, float)
        for frac in self.config.voxel_fracs:
            v = frac * seq1.diameter
            r = reg.registration_icp(
                self._cloud(seq2, v, self.config.max_points), self._cloud(seq1, v), 2 * v, T,
                reg.TransformationEstimationPointToPlane(), reg.ICPConvergenceCriteria(max_iteration=self.config.iterations),
            )
            T = np.asarray(r.transformation)
        return T


class NoRefiner:
    def __init__(self, config: NoneConfig) -> None:
        self.config = config

    def refine(self, seq1: SequenceData, seq2: SequenceData, T_seq1_seq2: np.ndarray) -> np.ndarray:
        return np.asarray(T_seq1_seq2, float)


@hookimpl
def nerfreg_register_refiners(register) -> None:
    register("icp", IcpConfig, Icp)
    register("none", NoneConfig, NoRefiner)
