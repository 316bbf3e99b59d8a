"""Example nerfreg plugin: refiner `point-icp` and verifier `normals`, through the public hooks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from nerfreg_ns.hookspecs import hookimpl
from nerfreg_ns.registry import Score, SequenceData


@dataclass(frozen=True)
class PointIcpConfig:
    """Point-to-point ICP (Open3D) from sequence 2 onto sequence 1 at one voxel size."""

    voxel_frac: float = 0.01
    """Voxel size and half the correspondence distance, as a fraction of the diameter."""
    iterations: int = 50


@dataclass(frozen=True)
class NormalsConfig:
    """Agreement of surface normals where the two clouds overlap (mean cosine)."""

    radius_frac: float = 0.02
    """Neighbours within this fraction of the diameter count as overlap."""


class PointIcp:
    def __init__(self, config: PointIcpConfig) -> None:
        self.config = config

    def refine(self, seq1: SequenceData, seq2: SequenceData, T_seq1_seq2: np.ndarray) -> np.ndarray:
        import open3d as o3d

        v = self.config.voxel_frac * seq1.diameter
        src = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(seq2.points)).voxel_down_sample(v)
        dst = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(seq1.points)).voxel_down_sample(v)
        reg = o3d.pipelines.registration
        r = reg.registration_icp(src, dst, 2 * v, np.asarray(T_seq1_seq2, float), reg.TransformationEstimationPointToPoint(),
                                 reg.ICPConvergenceCriteria(max_iteration=self.config.iterations))
        return np.asarray(r.transformation)


class Normals:
    def __init__(self, config: NormalsConfig) -> None:
        self.config = config

    def score(self, seq1: SequenceData, seq2: SequenceData, T_seq1_seq2: np.ndarray) -> Score:
        p2 = seq2.points @ T_seq1_seq2[:3, :3].T + T_seq1_seq2[:3, 3]
        n2 = seq2.normals @ T_seq1_seq2[:3, :3].T
        d, idx = cKDTree(seq1.points).query(p2, distance_upper_bound=self.config.radius_frac * seq1.diameter)
        ok = np.isfinite(d)
        if not ok.any():
            return Score(-1.0, {"overlap": 0.0}, False)
        cos = float(np.mean(np.sum(n2[ok] * seq1.normals[idx[ok]], axis=1)))
        return Score(cos * ok.mean(), {"overlap": float(ok.mean()), "mean_cos": cos}, bool(cos > 0.5))


@hookimpl
def nerfreg_register_refiners(register) -> None:
    register("point-icp", PointIcpConfig, PointIcp)


@hookimpl
def nerfreg_register_verifiers(register) -> None:
    register("normals", NormalsConfig, Normals)
