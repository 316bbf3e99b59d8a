"""Measuring how useful a run's queries and keys are, against known surface points.

For each foreground pixel of a view, its query is matched to the keys of the run's own
reconstructed surface; the match is right when the matched surface point lies within a
threshold of the pixel's true surface point (optionally up to the object's symmetries).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nerfreg_ns.embedding.crops import crop
from nerfreg_ns.embedding.match import crop_queries, pnp_best_turn, turn_queries
from nerfreg_ns.embedding.infonce import nearest_key_accuracy, symmetric_nearest_key_accuracy
from nerfreg_ns.geometry.transforms import apply, invert


@dataclass
class ProbeView:
    """An image (H, W, 3) uint8, its object mask (H, W) bool, and the true surface point (H, W, 3)
    of each pixel in the run's input frame (NaN where unknown)."""

    rgb: np.ndarray
    mask: np.ndarray
    points_input: np.ndarray
    K: np.ndarray | None = None
    """(3, 3) intrinsics, needed to choose a turn of the crop by PnP (`rotations` > 1)."""


def query_rotations(pipeline) -> int:
    """The run's test-time turns of a query crop (1 if its pipeline config lacks the field)."""
    return int(getattr(pipeline.config, "query_rotations", 1))


@torch.no_grad()
def surface_keys(pipeline) -> tuple[torch.Tensor, torch.Tensor]:
    """Reconstructed surface points (M, 3) in nerfstudio coordinates and their keys (M, E)."""
    pts_unit = pipeline.embedding_source().surface_points
    keys = pipeline.model.key_head(pts_unit)
    lo, hi = pipeline.model.hull_aabb
    return (pts_unit + 1) / 2 * (hi - lo) + lo, keys


@torch.no_grad()
def reachable_fraction(cand_points: torch.Tensor, true_points: torch.Tensor, threshold: float, chunk: int = 2048) -> float:
    """Fraction of true points (P, 3) with some candidate (M, 3) within `threshold`: the best any
    keys could score, since a pixel whose point the reconstruction never saw has no right match."""
    near = [torch.cdist(t, cand_points).amin(dim=1) <= threshold for t in true_points.split(chunk)]
    return float(torch.cat(near).float().mean()) if near else float("nan")


@torch.no_grad()
def correspondence_accuracy(pipeline, views: list[ProbeView], threshold_input: float,
                            symmetries_input: list[np.ndarray] | None = None, rotations: int = 1) -> dict[str, float]:
    """Fractions of foreground pixels whose best key is within `threshold_input` (input units)
    of their true point: raw and, given symmetry transforms (4, 4) in the input frame, up to symmetry.

    rotations 1: the crop is taken upright (the view's roll is as in training). More: the view's
    roll is treated as unknown and the crop turn is chosen as `embedding-pnp` does (PnP inliers)."""
    from nerfreg_ns.nerf.export import ns_to_input

    model = pipeline.model
    dev = model.device
    size = pipeline.config.query_size
    T_ns_in, scale = ns_to_input(pipeline)
    cand_ns, cand_keys = surface_keys(pipeline)
    cand_in = torch.from_numpy(apply(invert(T_ns_in), cand_ns.cpu().numpy() / scale)).float().to(dev)
    cand_np, keys_np = cand_in.cpu().numpy(), cand_keys.cpu().numpy()  # PnP's inputs, converted once for all views
    qs, trues = [], []
    for v in views:
        rgb = torch.from_numpy(v.rgb).float().to(dev) / 255 * torch.from_numpy(v.mask[..., None]).to(dev)
        mask = torch.from_numpy(v.mask).to(dev)
        crops = crop_queries(model.query_encoder, rgb, mask, size, rotations if v.K is not None else 1)
        pose = pnp_best_turn([turn_queries(c) for c in crops], keys_np, cand_np, v.K) if len(crops) > 1 else None
        cq = crops[pose.turn if pose is not None else 0]
        q, fg = cq.queries, cq.fg
        pts = crop(torch.from_numpy(np.nan_to_num(v.points_input, nan=1e9)).float().permute(2, 0, 1).to(dev), cq.box, size,
                   mode="nearest", angle=cq.angle)
        pts = pts.permute(1, 2, 0)
        ok = fg & (pts.abs().max(-1).values < 1e8)
        qs.append(q[ok])
        trues.append(pts[ok])
    q_all, t_all = torch.cat(qs), torch.cat(trues)
    # chance: each pixel matched to a random surface point (what keys that carry no signal give)
    rand = cand_in[torch.randint(len(cand_in), (len(t_all),), device=dev)]
    out = {"pixels": float(len(q_all)), "raw": nearest_key_accuracy(q_all, cand_keys, cand_in, t_all, threshold_input),
           "chance": float(((rand - t_all).norm(dim=1) <= threshold_input).float().mean()),
           "reachable": reachable_fraction(cand_in, t_all, threshold_input)}
    if symmetries_input:
        sym = torch.from_numpy(np.stack(symmetries_input)).float().to(dev)
        out["symmetric"] = symmetric_nearest_key_accuracy(q_all, cand_keys, cand_in, t_all, threshold_input, sym)
    return out
