"""Pose fitting against masks: the rotation grid, the exponential map, the residuals' Jacobian,
and known poses recovered from silhouettes alone (a synthetic ellipsoid, no rendering)."""

from __future__ import annotations

import numpy as np
import pytest

from nerfreg_ns.default_plugins.silhouette_fit import MaskFields, damped_step, silhouette_system, so3_exp
from nerfreg_ns.default_plugins.silhouette_search import super_fibonacci_rotations
from nerfreg_ns.geometry.transforms import axis_angle_to_R, invert, look_at_c2w_opencv, make_T, random_rotation, rotation_angle_deg
from nerfreg_ns.registry import SequenceData

AXES = np.array([1.0, 0.6, 0.35])
F, DIST = 150.0, 5.0  # one pixel at the object: DIST / F = 0.033 units


def _ellipsoid_points(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 3))
    return AXES * v / np.linalg.norm(v, axis=1, keepdims=True)


def _sequence(T_seq_obj: np.ndarray, views: int = 10, size: int = 96) -> SequenceData:
    """The ellipsoid seen from a ring of cameras; masks are the exact filled silhouettes."""
    import cv2

    K = np.array([[F, 0, size / 2], [0, F, size / 2], [0, 0, 1]])
    dense = _ellipsoid_points(20000, 1)
    masks, poses = [], []
    for i in range(views):
        a, e = 2 * np.pi * i / views, np.radians(30 if i % 2 else -20)
        eye_obj = DIST * np.array([np.cos(a) * np.cos(e), np.sin(a) * np.cos(e), np.sin(e)])
        T_obj_cam = look_at_c2w_opencv(eye_obj, np.zeros(3), np.array([0.0, 0, 1]))
        T_cam_obj = invert(T_obj_cam)
        x = dense @ T_cam_obj[:3, :3].T + T_cam_obj[:3, 3]
        uv = (x[:, :2] / x[:, 2:]) * F + size / 2
        m = np.zeros((size, size), np.uint8)
        cv2.fillConvexPoly(m, np.rint(cv2.convexHull(uv.astype(np.float32))).astype(np.int32), 1)  # K is OpenCV's: nearest pixel  # an ellipsoid's silhouette is convex
        masks.append(m.astype(bool))
        poses.append(T_seq_obj @ T_obj_cam)
    pts = _ellipsoid_points(3000, 2) @ T_seq_obj[:3, :3].T + T_seq_obj[:3, 3]
    return SequenceData("s", pts, np.zeros_like(pts), 2.0, masks, [K] * views, poses)


def test_so3_exp_matches_rodrigues():
    w = np.random.default_rng(0).normal(size=(20, 3)) * np.array([[1.0]] * 19 + [[1e-12]])
    for wi, R in zip(w, so3_exp(w)):
        assert np.allclose(R, axis_angle_to_R(wi, np.linalg.norm(wi)), atol=1e-10)


def test_rotation_grid_is_rotations_and_covers_so3():
    grid = super_fibonacci_rotations(1536)
    assert np.allclose(grid @ grid.transpose(0, 2, 1), np.eye(3), atol=1e-9) and np.allclose(np.linalg.det(grid), 1)
    rng = np.random.default_rng(3)
    probes = np.stack([random_rotation(rng) for _ in range(300)])

    def worst_gap_deg(rotations):  # farthest any probe is from its nearest rotation of the set
        cos = (np.einsum("gij,pij->pg", rotations, probes) - 1) / 2
        return np.degrees(np.arccos(np.clip(cos.max(1), -1, 1))).max()

    spread = worst_gap_deg(grid)
    assert spread < 20.0  # within the refiners' basin
    assert spread < worst_gap_deg(np.stack([random_rotation(rng) for _ in range(1536)]))  # better than chance


def test_jacobian_matches_finite_differences():
    T_true = make_T(axis_angle_to_R([0.3, 1, 0.2], 0.7), [0.4, -0.2, 0.3])
    s1, s2 = _sequence(np.eye(4)), _sequence(T_true)
    f1, f2 = MaskFields(s1, 10), MaskFields(s2, 10)
    p1, p2 = s1.points[:80], s2.points[:80]
    T0 = make_T(axis_angle_to_R([1, 0, 0], 0.15), [0.1, 0.05, -0.08]) @ invert(T_true)  # off, points outside
    R0, t0 = T0[None, :3, :3], T0[None, :3, 3]
    r0, J = silhouette_system(f1, f2, p1, p2, R0, t0, full=True)
    assert (r0 > 0).mean() > 0.05
    g = 2 * np.einsum("bm,bmi->bi", r0, J)[0]  # gradient of the summed squares
    eps, num = 1e-4, np.zeros(6)
    for i in range(6):
        d = np.zeros(6)
        d[i] = eps
        rp, _ = silhouette_system(f1, f2, p1, p2, so3_exp(d[None, :3]) @ R0, t0 + d[3:], full=True)
        d[i] = -eps
        rm, _ = silhouette_system(f1, f2, p1, p2, so3_exp(d[None, :3]) @ R0, t0 + d[3:], full=True)
        num[i] = (np.sum(rp**2) - np.sum(rm**2)) / (2 * eps)
    cos = g @ num / (np.linalg.norm(g) * np.linalg.norm(num))
    assert cos > 0.95, (g, num)


@pytest.mark.parametrize("full", [False, True])
def test_gauss_newton_recovers_a_known_pose_from_silhouettes(full):
    T_true = make_T(axis_angle_to_R([0.3, 1, 0.2], 0.7), [0.4, -0.2, 0.3])  # T_seq2_obj; T_seq1_seq2 = its inverse
    s1, s2 = _sequence(np.eye(4)), _sequence(T_true)
    f1, f2 = MaskFields(s1, 10), MaskFields(s2, 10)
    p1, p2 = s1.points[::30], s2.points[::30]
    T_gt = invert(T_true)
    start = make_T(axis_angle_to_R([0, 0.3, 1], np.radians(6)) if full else np.eye(3), [0.15, -0.1, 0.12]) @ T_gt
    R, t = start[None, :3, :3], start[None, :3, 3]
    for _ in range(40):
        r, J = silhouette_system(f1, f2, p1, p2, R, t, full)
        step = damped_step(r, J)
        R, t = (so3_exp(step[:, :3]) @ R, t + step[:, 3:]) if full else (R, t + step)
    assert np.linalg.norm(t[0] - T_gt[:3, 3]) < 1.5 * DIST / F  # masks resolve a pixel; the start was 6.6 px off
    assert rotation_angle_deg(R[0] @ T_gt[:3, :3].T) < 4.0  # from 6; 4 degrees move the tips 2 px
    assert np.abs(silhouette_system(f1, f2, p1, p2, R, t, full)[0]).max() < 0.5  # inside every mask


def test_icosahedron_directions_are_unit_and_evenly_spread():
    from nerfreg_ns.default_plugins.silhouette_search import icosahedron_directions

    d = icosahedron_directions()
    assert d.shape == (12, 3) and np.allclose(np.linalg.norm(d, axis=1), 1)
    cos = d @ d.T - 2 * np.eye(12)
    assert np.isclose(np.degrees(np.arccos(cos.max())), 63.43, atol=0.01)  # each vertex's 5 neighbours


def test_search_hop_lowers_costs_and_leaves_converged_poses():
    from nerfreg_ns.default_plugins.silhouette_search import SilhouetteSearch, SilhouetteSearchConfig

    T_true = make_T(axis_angle_to_R([0.3, 1, 0.2], 0.7), [0.4, -0.2, 0.3])
    s1, s2 = _sequence(np.eye(4)), _sequence(T_true)
    f1, f2 = MaskFields(s1, 10), MaskFields(s2, 10)
    p1, p2 = s1.points[::30], s2.points[::30]
    T_gt = invert(T_true)
    starts = [make_T(axis_angle_to_R(a, np.radians(deg)), [0, 0, 0]) @ T_gt for a, deg in [([0, 0.3, 1], 25), ([1, 0, 0], 0)]]
    R, t = np.stack([T[:3, :3] for T in starts]), np.stack([T[:3, 3] for T in starts])
    off = SilhouetteSearch(SilhouetteSearchConfig(hop_deg=0.0))
    _, _, cost = off._solve(f1, f2, p1, p2, R, t, 0, True)  # the starts' own costs
    assert np.array_equal(off._hop(f1, f2, p1, p2, R, t, cost)[0], R)  # hops off: unchanged
    Rh, th, ch = SilhouetteSearch(SilhouetteSearchConfig(hop_deg=8.0, hop_rounds=3))._hop(f1, f2, p1, p2, R, t, cost)
    assert np.all(ch <= cost) and ch[0] < 0.5 * cost[0]
    err = [rotation_angle_deg(r @ T_gt[:3, :3].T) for r in Rh]
    assert err[0] < 4.0 and err[1] < 1.0, err  # the far start brought to the truth, the true one kept there


def test_search_keeps_a_basin_near_a_lower_minimum():
    """Poses 25 degrees apart first; then the best few at least 10 degrees from all kept, so a
    basin 15 degrees from a lower minimum is returned, and no near-duplicate ever is."""
    from nerfreg_ns.default_plugins.silhouette_search import SilhouetteSearch, SilhouetteSearchConfig

    axis = [0.2, 1.0, 0.1]
    angles = [0.0, 3.0, 15.0, 40.0, 90.0]  # 3: a duplicate of 0; 15: the basin a 25-degree rule drops
    R = np.stack([axis_angle_to_R(axis, np.radians(a)) for a in angles])
    cost = np.array([1.0, 1.1, 1.2, 2.0, 3.0])
    wide = SilhouetteSearch(SilhouetteSearchConfig(near_keep=0))._distinct(R, cost)
    assert wide == [0, 3, 4]
    both = SilhouetteSearch(SilhouetteSearchConfig())._distinct(R, cost)
    assert both == [0, 3, 4, 2]
    assert SilhouetteSearch(SilhouetteSearchConfig(keep=2, near_keep=1))._distinct(R, cost) == [0, 3, 2]
    pairs = [rotation_angle_deg(R[i] @ R[j].T) for i in both for j in both if i < j]
    assert min(pairs) >= 10.0


def test_masks_the_training_flagged_are_left_out_of_the_fit():
    """A mask with a piece missing, flagged by the frame check (`mask_trust`), pulls no fitted pose."""
    T_true = make_T(axis_angle_to_R([0.3, 1, 0.2], 0.7), [0.4, -0.2, 0.3])
    s1, s2 = _sequence(np.eye(4)), _sequence(T_true)
    s1.masks[3] = s1.masks[3].copy()
    s1.masks[3][:, : s1.masks[3].shape[1] // 2] = False  # half the object cut out of view 3
    T_gt = invert(T_true)
    R, t = T_gt[None, :3, :3], T_gt[None, :3, 3]
    f2 = MaskFields(s2, 10)
    p1, p2 = s1.points[::30], s2.points[::30]
    r_all, _ = silhouette_system(MaskFields(s1, 10), f2, p1, p2, R, t, True)
    assert r_all.max() > 5.0  # the bad mask puts points far outside at the true pose
    s1.mask_trust = np.arange(10) != 3
    f1 = MaskFields(s1, 10)
    assert len(f1.d) == 9
    r, _ = silhouette_system(f1, f2, p1, p2, R, t, True)
    assert r.max() < 0.5  # the trusted masks hold the truth
    start = make_T(axis_angle_to_R([0, 0.3, 1], np.radians(6)), [0.15, -0.1, 0.12]) @ T_gt
    R, t = start[None, :3, :3], start[None, :3, 3]
    for _ in range(40):
        r, J = silhouette_system(f1, f2, p1, p2, R, t, True)
        step = damped_step(r, J)
        R, t = so3_exp(step[:, :3]) @ R, t + step[:, 3:]
    assert np.linalg.norm(t[0] - T_gt[:3, 3]) < 1.5 * DIST / F and rotation_angle_deg(R[0] @ T_gt[:3, :3].T) < 4.0
