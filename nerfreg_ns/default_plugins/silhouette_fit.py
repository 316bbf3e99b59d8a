"""Least-squares pose fitting against the masks, and the refiner `silhouette-icp`.

A pose is good when each sequence's cloud, moved into the other's frame, projects inside the
other sequence's masks. `MaskFields` turns a few masks into smooth costs (pixels outside the
mask, with gradients), so a pose can be fitted by Gauss-Newton; `silhouette_system` gives the
residuals and Jacobians for a batch of poses, used by the `silhouette-search` generator and by
the refiner here. Why a refiner: on a narrow overlap band plain ICP slides (on T-LESS obj_04,
ICP started at the true pose ended 50 degrees off); the masks hold the pose in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from nerfreg_ns.geometry.points import evenly_spaced, farthest_points, to_o3d, voxel_unique
from nerfreg_ns.geometry.transforms import make_T, so3_exp
from nerfreg_ns.hookspecs import hookimpl
from nerfreg_ns.registry import SequenceData


def pixels_per_unit(seq: SequenceData) -> float:
    """How many pixels one unit of length spans at the object (median over the cameras)."""
    c = seq.points.mean(0)
    dist = [np.linalg.norm(T[:3, 3] - c) for T in seq.T_world_camcv]
    return float(np.median([K[0, 0] / max(d, 1e-12) for K, d in zip(seq.Ks, dist)]))


class MaskFields:
    """Distance (px) outside each of a few masks, with its image gradient; padded so that points
    projecting off the image are pulled back too. The maps are sampled where the OpenCV
    intrinsics put a point: pixel (u, v)'s value sits at the integer coordinates (u, v).
    The masks are drawn from the sequence's trusted views: one mask with a piece missing among
    a few pulls a fitted pose degrees off (benchmarks/README.md, the noise sweeps)."""

    def __init__(self, seq: SequenceData, views: int, cap_px: float = 20.0, pad: int = 32) -> None:
        import cv2

        trusted = seq.trusted_views()
        idx = [trusted[i] for i in evenly_spaced(len(trusted), views)]
        fields = []
        for i in idx:
            m = np.pad(seq.masks[i].astype(bool), pad)
            d = cv2.distanceTransform((~m).astype(np.uint8), cv2.DIST_L2, 5)
            fields.append(np.minimum(np.maximum(d - 1.0, 0.0), cap_px))  # 1 px: pixel rounding
        self.d = np.stack(fields).astype(np.float64)  # (V, H, W)
        gy, gx = np.gradient(self.d, axis=(1, 2))
        self.g = np.stack([gx, gy], -1)  # (V, H, W, 2)
        self.K = np.stack([seq.Ks[i] for i in idx]).astype(np.float64)
        T_cw = np.linalg.inv(np.stack([seq.T_world_camcv[i] for i in idx]).astype(np.float64))
        self.R_cw, self.t_cw = T_cw[:, :3, :3], T_cw[:, :3, 3]
        self.pad = pad

    def residuals(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distances outside the masks (B, N, V) of world points p (B, N, 3), and their
        derivatives with respect to the points (B, N, V, 3)."""
        # matmul and tensordot, not einsum: numpy's einsum loops in C without BLAS, and these
        # few lines are most of the silhouette search's time
        x = np.tensordot(p, self.R_cw, axes=([2], [2])) + self.t_cw  # camera coordinates (B, N, V, 3)
        behind = x[..., 2] <= 1e-6
        z = np.where(behind, 1.0, x[..., 2])
        fx, fy = self.K[:, 0, 0], self.K[:, 1, 1]
        u = fx * x[..., 0] / z + self.K[:, 0, 2] + self.pad
        v = fy * x[..., 1] / z + self.K[:, 1, 2] + self.pad
        V, H, W = self.d.shape
        uc, vc = np.clip(u, 0, W - 1.001), np.clip(v, 0, H - 1.001)
        u0, v0 = uc.astype(int), vc.astype(int)
        fu, fv = uc - u0, vc - v0
        vi = np.arange(V)
        d = ((1 - fu) * (1 - fv) * self.d[vi, v0, u0] + fu * (1 - fv) * self.d[vi, v0, u0 + 1]
             + (1 - fu) * fv * self.d[vi, v0 + 1, u0] + fu * fv * self.d[vi, v0 + 1, u0 + 1])
        g = self.g[vi, np.rint(vc).astype(int), np.rint(uc).astype(int)]  # (B, N, V, 2)
        off = np.stack([u - uc, v - vc], -1)  # beyond the padded image: add the straight-line distance
        off_n = np.linalg.norm(off, axis=-1)
        d = np.where(behind, self.d.max(), d + off_n)
        g = np.where(off_n[..., None] > 0, off / np.maximum(off_n, 1e-9)[..., None], g)
        gu, gv = g[..., 0] * fx / z, g[..., 1] * fy / z  # d(distance) / d(camera point), through (u, v)
        gJ = np.stack([gu, gv, -(gu * x[..., 0] + gv * x[..., 1]) / z], -1)  # (B, N, V, 3)
        dd_dp = (gJ[..., None, :] @ self.R_cw)[..., 0, :]
        dd_dp[behind] = 0.0
        return d, dd_dp


def silhouette_system(f1: MaskFields, f2: MaskFields, p1: np.ndarray, p2: np.ndarray, R: np.ndarray, t: np.ndarray,
                      full: bool) -> tuple[np.ndarray, np.ndarray]:
    """Residuals (B, M) in px of poses T_seq1_seq2 = (R (B, 3, 3), t (B, 3)): seq2 points p2
    (N2, 3) outside seq1's masks and seq1 points p1 (N1, 3) outside seq2's; and the Jacobian
    (B, M, 6) for a left increment (rotation vector w, then t) or (B, M, 3) for t alone."""
    B = len(R)
    b2 = p2 @ R.transpose(0, 2, 1)  # R p2, (B, N2, 3)
    a1 = p1[None] - t[:, None]  # p1 - t; seq1 points in seq2 are R^T a1
    d1, g1 = f1.residuals(b2 + t[:, None])
    d2, g2 = f2.residuals(a1 @ R)
    g2w = g2 @ R.transpose(0, 2, 1)[:, None]  # gradient rotated into seq1's frame
    if full:  # q2 = exp(w) R p2 + t;  q1 = R^T exp(-w) (p1 - t)
        J1 = np.concatenate([np.cross(b2[:, :, None, :], g1), g1], -1)
        J2 = np.concatenate([-np.cross(a1[:, :, None, :], g2w), -g2w], -1)
    else:
        J1, J2 = g1, -g2w
    r = np.concatenate([d1.reshape(B, -1), d2.reshape(B, -1)], 1)
    J = np.concatenate([J1.reshape(B, -1, J1.shape[-1]), J2.reshape(B, -1, J2.shape[-1])], 1)
    return r, J


def damped_step(r: np.ndarray, J: np.ndarray, damping: float = 1e-3) -> np.ndarray:
    """Levenberg-Marquardt step (B, P) for residuals r (B, M) with Jacobian J (B, M, P)."""
    Jt = J.transpose(0, 2, 1)
    JTJ, JTr = Jt @ J, (Jt @ r[..., None])[..., 0]
    lam = damping * np.trace(JTJ, axis1=1, axis2=2)[:, None, None] / J.shape[-1] + 1e-12
    return -np.linalg.solve(JTJ + lam * np.eye(J.shape[-1]), JTr[..., None])[..., 0]


@dataclass(frozen=True)
class SilhouetteIcpConfig:
    """Point-to-plane ICP and silhouette consistency in one least-squares fit."""

    iterations: int = 60
    """Gauss-Newton iterations (correspondences found again each time)."""
    max_distance_fracs: tuple[float, ...] = (0.08, 0.04, 0.02)
    """Correspondence distances (fractions of the diameter), used in turn over the iterations."""
    voxel_frac: float = 0.02
    """Sequence 2 is thinned to this voxel (fraction of the diameter) for the ICP term."""
    target_voxel_frac: float = 0.01
    """Sequence 1, which the ICP term's points are matched to, is thinned to this voxel: the
    point-to-plane residual needs its normals, not every point, and the neighbour search costs
    most of the refiner's time (benchmarks/README.md)."""
    points: int = 300
    """Points per cloud in the silhouette term."""
    views: int = 20
    """Masks per sequence in the silhouette term."""
    silhouette_weight: float = 30.0
    """Weight of the silhouette term next to the ICP term (both in pixels). Few points fall
    outside the masks, so the term needs weight to hold the pose on a narrow overlap, where a
    weight of 1 left poses degrees off (benchmarks/README.md)."""


class SilhouetteIcp:
    def __init__(self, config: SilhouetteIcpConfig) -> None:
        self.config = config
        self._cache: dict = {}  # per (seq1, seq2): fields, subsets, trees; many hypotheses share them

    def _prepare(self, seq1: SequenceData, seq2: SequenceData):
        key = (id(seq1), id(seq2))
        if key not in self._cache:
            c = self.config
            thin = to_o3d(seq2.points).voxel_down_sample(c.voxel_frac * seq1.diameter)
            target = voxel_unique(seq1.points, c.target_voxel_frac * seq1.diameter)
            self._cache[key] = (seq1, seq2, MaskFields(seq1, c.views), MaskFields(seq2, c.views),
                                farthest_points(seq1.points, c.points), farthest_points(seq2.points, c.points),
                                np.asarray(thin.points), seq1.points[target], seq1.normals[target],
                                cKDTree(seq1.points[target]), pixels_per_unit(seq1))
        return self._cache[key][2:]

    def refine(self, seq1: SequenceData, seq2: SequenceData, T_seq1_seq2: np.ndarray) -> np.ndarray:
        c = self.config
        f1, f2, s1, s2, p2, p1, n1, tree1, px = self._prepare(seq1, seq2)
        R, t = np.asarray(T_seq1_seq2, float)[None, :3, :3].copy(), np.asarray(T_seq1_seq2, float)[None, :3, 3].copy()
        for it in range(c.iterations):
            tau = c.max_distance_fracs[min(it * len(c.max_distance_fracs) // c.iterations, len(c.max_distance_fracs) - 1)]
            r_s, J_s = silhouette_system(f1, f2, s1, s2, R, t, full=True)
            q = p2 @ R[0].T + t[0]
            d, idx = tree1.query(q, distance_upper_bound=tau * seq1.diameter)
            ok = np.isfinite(d)
            n, b = n1[idx[ok]], q[ok] - t[0]
            r_p = px * np.einsum("ni,ni->n", n, q[ok] - p1[idx[ok]])
            J_p = px * np.concatenate([np.cross(b, n), n], 1)
            w_s = np.sqrt(c.silhouette_weight / r_s.shape[1])
            w_p = 1.0 / np.sqrt(max(int(ok.sum()), 1))
            r = np.concatenate([w_s * r_s[0], w_p * r_p])[None]
            J = np.concatenate([w_s * J_s[0], w_p * J_p])[None]
            step = damped_step(r, J)
            R, t = so3_exp(step[:, :3]) @ R, t + step[:, 3:]
            if np.linalg.norm(step[0, :3]) < 1e-5 and np.linalg.norm(step[0, 3:]) < 1e-5 * seq1.diameter:
                break
        return make_T(R[0], t[0])


@hookimpl
def nerfreg_register_refiners(register) -> None:
    register("silhouette-icp", SilhouetteIcpConfig, SilhouetteIcp)
