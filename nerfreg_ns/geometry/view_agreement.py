"""How well a sequence's cameras agree with its own reconstruction, and what that allows a
registration to claim.

A camera pose that is off shifts the view's mask against the reconstruction, which is the
consensus of all views. Each view's shift (the translation that best lays the outline of the
projected surface onto the mask's outline) is that view's pose error seen in the image; a mask
that is ragged or grown evenly all round moves the outline both ways and shifts nothing. Two
reconstructions built from such views cannot be registered more precisely than their views agree:
the standard error of the mean shift, over both sequences, bounds what a registration can resolve.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.spatial import cKDTree

from nerfreg_ns.geometry.cameras import in_image, pixel_index, project
from nerfreg_ns.geometry.points import random_subset
from nerfreg_ns.geometry.transforms import apply, invert


def outline(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres (M, 2) as (u, v) of the outer outlines of a binary mask (H, W), and unit
    normals (M, 2) across the outline (from the neighbours along it)."""
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    pts, nrm = [np.zeros((0, 2))], [np.zeros((0, 2))]
    for c in contours:
        p = c[:, 0].astype(float)
        if len(p) < 3:
            continue
        t = np.roll(p, -2, axis=0) - p  # across two steps: smoother than one
        t = np.roll(t, 1, axis=0)
        n = np.stack([t[:, 1], -t[:, 0]], axis=1)
        pts.append(p)
        nrm.append(n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9))
    return np.concatenate(pts), np.concatenate(nrm)


def splat_silhouette(uv: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Binary silhouette (H, W) of points projected at `uv` (N, 2), holes of one pixel closed:
    the surface points of a closed object cover its silhouette front and back."""
    import cv2

    sil = np.zeros(shape, np.uint8)
    ij = pixel_index(uv[in_image(uv, shape[1], shape[0])])
    sil[ij[:, 1], ij[:, 0]] = 1
    return cv2.morphologyEx(sil, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)).astype(bool)


def outline_shift(source: np.ndarray, target: np.ndarray, target_normals: np.ndarray, iterations: int = 10,
                  stop_px: float = 0.01) -> np.ndarray:
    """Translation (2,) in pixels that moves the outline points `source` (M, 2) onto the outline
    `target` (K, 2) with normals (K, 2): point-to-line ICP restricted to a translation (points may
    slide along the outline, so it converges in a few steps). Zero when either is empty or the
    outline does not fix a translation (a straight line)."""
    if len(source) == 0 or len(target) == 0:
        return np.zeros(2)
    tree, shift = cKDTree(target), np.zeros(2)
    for _ in range(iterations):
        _, j = tree.query(source + shift)
        n = target_normals[j]
        r = np.einsum("ij,ij->i", target[j] - (source + shift), n)
        A = n.T @ n
        if np.linalg.cond(A) > 1e6:
            return np.zeros(2)
        step = np.linalg.solve(A, n.T @ r)
        shift += step
        if np.linalg.norm(step) < stop_px:
            break
    return shift


def view_shifts(points_world: np.ndarray, Ks: Sequence[np.ndarray], T_world_camcv: Sequence[np.ndarray],
                masks: Sequence[np.ndarray], diameter: float, max_points: int = 30000) -> np.ndarray:
    """Per view, the shift (V, 2) that lays the projected surface's outline onto the mask's, in
    fractions of the object's diameter as that view sees it (pixels / (f d / depth)), so views
    near and far, large and small images, count alike. OpenCV cameras (x right, y down, z
    forward); `points_world` (N, 3) in the cameras' world frame."""
    pts = random_subset(points_world, max_points)
    centre = np.median(pts, axis=0)
    out = np.zeros((len(masks), 2))
    for i, (K, T, mask) in enumerate(zip(Ks, T_world_camcv, masks)):
        T_cw = invert(T)
        uv, z = project(K, T_cw, pts)
        sil = splat_silhouette(uv[z > 0], mask.shape)
        depth = apply(T_cw, centre[None])[0, 2]
        if depth <= 0:
            continue
        px_per_d = K[0, 0] * diameter / depth
        out[i] = outline_shift(outline(sil)[0], *outline(mask)) / px_per_d
    return out


def shift_rms(shifts: np.ndarray, trim: float = 0.1) -> float:
    """Root mean square length of the shifts (V, 2), leaving out the `trim` fraction of views
    that shift most (a gross mask error is not a camera pose error)."""
    if len(shifts) == 0:
        return 0.0
    sq = np.sort((np.asarray(shifts) ** 2).sum(axis=1))
    return float(np.sqrt(sq[: max(1, int(np.ceil(len(sq) * (1 - trim))))].mean()))


def standard_error(shifts: np.ndarray, trim: float = 0.1) -> float:
    """Standard error (fraction of d) of the mean view shift: `shift_rms` / sqrt(views). Views
    taken as independent; camera poses that drift together (SfM) make it an underestimate."""
    return shift_rms(shifts, trim) / np.sqrt(max(len(shifts), 1))


def registration_precision(standard_error_seq1: float, standard_error_seq2: float) -> float:
    """The standard error of the registration (fraction of d) that the two sequences' view
    agreement allows: their standard errors combined as independent."""
    return float(np.hypot(standard_error_seq1, standard_error_seq2))
