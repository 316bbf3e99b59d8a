"""Refiners `icp` (Open3D point-to-plane ICP, coarse to fine) and `none`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nerfreg_ns.default_plugins.o3d_utils import to_o3d
from nerfreg_ns.plugins import hookimpl
from nerfreg_ns.registry import SequenceData


@dataclass(frozen=True)
class IcpConfig:
    """Point-to-plane ICP from sequence 2 onto sequence 1, at shrinking voxel sizes."""

    voxel_fracs: tuple[float, ...] = (0.02, 0.01, 0.005)
    """Voxel sizes (fractions of the diameter); correspondences up to 2 voxels apart."""
    iterations: int = 50
    """Iterations per level."""


@dataclass(frozen=True)
class NoneConfig:
    """Keep the hypothesis as it is."""


class Icp:
    def __init__(self, config: IcpConfig) -> None:
        self.config = config

    def refine(self, seq1: SequenceData, seq2: SequenceData, T_seq1_seq2: np.ndarray) -> np.ndarray:
        import open3d as o3d

        reg = o3d.pipelines.registration
        src, dst = to_o3d(seq2.points, seq2.normals), to_o3d(seq1.points, seq1.normals)
        T = np.asarray(T_seq1_seq2, float)
        for frac in self.config.voxel_fracs:
            v = frac * seq1.diameter
            r = reg.registration_icp(
                src.voxel_down_sample(v), dst.voxel_down_sample(v), 2 * v, T,
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
