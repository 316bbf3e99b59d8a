"""From an image to 2D-3D matches and a pose: turned object crops, confident query-key matches,
and PnP-RANSAC on each turn, the turn with the most inliers winning.

The query encoder is trained on nearly upright crops (in-plane rotation augmentation of a few
tens of degrees: upright crops learn several times faster), so an image whose roll is unknown is
cropped at `rotations` even turns and each turn's matches are checked geometrically. Keys alone
cannot choose the turn: the mean best key score of a wrong turn is often as high as the right
one's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from nerfreg_ns.embedding.crops import crop, crop_to_image_pixels, square_box
from nerfreg_ns.geometry.cameras import opencv_from_continuous
from nerfreg_ns.geometry.transforms import make_T
from nerfreg_ns.registry import TurnQueries


@dataclass
class CropQueries:
    """Queries of one image's object crop turned by `angle` (radians, see `embedding.crops`)."""

    queries: Tensor
    """(size, size, E) per crop pixel."""
    mask_prob: Tensor
    """(size, size) predicted foreground probability."""
    fg: Tensor
    """(size, size) bool: the image's own mask, cropped the same way."""
    box: tuple[float, float, float]
    angle: float


class EncoderFeatures:
    """The `Features` of a query encoder: an image's object crop at even turns, the queries of
    its foreground pixels (what `embedding-pnp` matches against a run's keys)."""

    def __init__(self, encoder, size: int, turns: int) -> None:
        self.encoder, self.size, self.turns = encoder, size, turns

    def queries(self, rgb: np.ndarray, mask: np.ndarray, turns: int) -> list[TurnQueries]:
        dev = next(self.encoder.parameters()).device
        m = torch.from_numpy(np.asarray(mask, bool)).to(dev)
        image = torch.from_numpy(np.asarray(rgb)[..., :3]).float().to(dev) / 255 * m[..., None]
        return [turn_queries(cq) for cq in crop_queries(self.encoder, image, m, self.size, turns)]


@torch.no_grad()
def crop_queries(encoder, rgb: Tensor, mask: Tensor, size: int, rotations: int = 1) -> list[CropQueries]:
    """Queries of the object crop of rgb (H, W, 3) in [0, 1] with mask (H, W) bool, at
    `rotations` even turns starting upright (one entry per turn)."""
    box = square_box(mask)
    image = rgb.permute(2, 0, 1).float()
    was_training = encoder.training
    encoder.eval()
    out, n = [], max(1, rotations)
    for k in range(n):
        angle = 2 * math.pi * k / n
        q, m = encoder(crop(image, box, size, angle=angle)[None])
        fg = crop(mask[None].float(), box, size, mode="nearest", angle=angle)[0] > 0.5
        out.append(CropQueries(q[0].permute(1, 2, 0), torch.sigmoid(m[0, 0]), fg, box, angle))
    encoder.train(was_training)
    return out


def turn_queries(cq: CropQueries) -> TurnQueries:
    """A crop's foreground queries with their image coordinates (OpenCV pixel centres), as the
    `Features` protocol hands them to plugins."""
    ij = cq.fg.nonzero()
    uv = crop_to_image_pixels(ij, cq.box, cq.queries.shape[0], cq.angle).cpu().numpy().astype(np.float64)
    return TurnQueries(opencv_from_continuous(uv), cq.queries[cq.fg].float().cpu().numpy(), cq.angle)


@torch.no_grad()
def confident_matches(queries: Tensor, keys: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """The n queries (P, E) whose best key (among keys (M, E), softmax) is most certain: their
    indices (N,) and their best keys' indices (N,)."""
    if len(queries) == 0:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    conf, best = torch.softmax(queries @ keys.T, dim=1).max(1)
    top = conf.topk(min(n, len(conf))).indices
    return top, best[top]


@dataclass
class CropPose:
    """A camera pose from one turned crop's matches."""

    T_cam_obj: np.ndarray
    """(4, 4) maps the keys' points into the OpenCV camera."""
    inliers: int
    matches: int
    turn: int
    """Index of the turn in the list given to `pnp_best_turn`."""


def pnp_best_turn(turns: list[TurnQueries], keys: np.ndarray, points: np.ndarray, K: np.ndarray, matches: int = 400,
                  reprojection_px: float = 3.0, iterations: int = 2000, min_inliers: int = 12) -> CropPose | None:
    """EPnP-RANSAC on each turn's most confident matches (keys (M, E) of `points` (M, 3), OpenCV
    intrinsics K (3, 3)); the turn with the most inliers wins. None when no turn reaches `min_inliers`."""
    import cv2

    points, K = np.asarray(points, np.float64), np.asarray(K, np.float64)
    keys_t = torch.as_tensor(keys).float()
    best: CropPose | None = None
    for i, tq in enumerate(turns):
        qidx, kidx = confident_matches(torch.from_numpy(tq.queries), keys_t, matches)
        if len(qidx) < max(min_inliers, 4):
            continue
        uv = tq.uv[qidx.numpy()]
        obj = points[kidx.numpy()]
        cv2.setRNGSeed(i)  # RANSAC is random: the same inputs give the same answer
        ok, rvec, tvec, inl = cv2.solvePnPRansac(obj, uv, K, None, iterationsCount=iterations,
                                                 reprojectionError=reprojection_px, flags=cv2.SOLVEPNP_EPNP)
        if not ok or inl is None or len(inl) < min_inliers:
            continue
        if best is None or len(inl) > best.inliers:
            best = CropPose(make_T(cv2.Rodrigues(rvec)[0], tvec.reshape(3)), len(inl), len(qidx), i)
    return best
