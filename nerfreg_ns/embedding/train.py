"""One SurfEmb training step: augment, encode queries, contrast them against surface-point keys."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from nerfreg_ns.embedding.augment import AugmentConfig, augment
from nerfreg_ns.embedding.infonce import infonce_terms
from nerfreg_ns.embedding.keys import KeyHead
from nerfreg_ns.embedding.query import QueryEncoder


@dataclass
class EmbeddingBatchSource:
    """Training views with per-pixel surface points, all in the key head's normalised unit box."""

    images: Tensor
    """(N, 3, H, W) images in [0, 1]."""
    point_maps: Tensor
    """(N, 3, H, W) normalised 3D surface point seen by each pixel."""
    masks: Tensor
    """(N, 1, H, W) float, 1 where the pixel is foreground with a valid surface point."""
    surface_points: Tensor
    """(K, 3) pool of normalised surface points to draw negatives from. It must follow the same
    distribution as the pixels' points (dense uniform surface samples, or the point maps' own
    foreground points): if positives come from a set the negatives never touch, the key head can
    learn to tell the two sets apart instead of telling points apart."""


def _randint(high: int, n: int, generator: torch.Generator | None) -> Tensor:
    """n indices in [0, high) (n,), on the generator's device (CPU by default)."""
    dev = generator.device if generator is not None else "cpu"
    return torch.randint(high, (n,), generator=generator, device=dev)


def sample_images(n_total: int, n: int, generator: torch.Generator | None) -> Tensor:
    """n image indices (n,): distinct when possible, with replacement if the source is smaller."""
    if n <= n_total:
        dev = generator.device if generator is not None else "cpu"
        return torch.randperm(n_total, generator=generator, device=dev)[:n]
    return _randint(n_total, n, generator)


def sample_foreground(masks: Tensor, k: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """Up to k random foreground pixels per image of masks (B, 1, H, W).

    Returns flat pixel indices (B, k') and a validity mask (B, k'), k' = min(k, H*W); invalid
    entries mark images with fewer than k foreground pixels.
    """
    fg = masks.flatten(1) > 0.5  # (B, HW)
    dev = generator.device if generator is not None else masks.device
    # Random scores with background pushed below every foreground pixel: top-k is a uniform sample.
    scores = torch.rand(fg.shape, generator=generator, device=dev).to(masks.device)
    scores = torch.where(fg, scores, torch.full_like(scores, -1.0))
    idx = scores.topk(min(k, fg.shape[1]), dim=1).indices
    return idx, fg.gather(1, idx)


def _gather_pixels(maps: Tensor, idx: Tensor, valid: Tensor) -> Tensor:
    """Values of maps (B, C, H, W) at flat pixels idx (B, k) where valid (B, k) -> (P, C)."""
    flat = maps.flatten(2).transpose(1, 2)  # (B, HW, C)
    picked = flat.gather(1, idx[..., None].expand(-1, -1, flat.shape[2]))  # (B, k, C)
    return picked[valid]


def embedding_step(query: QueryEncoder, keys: KeyHead, src: EmbeddingBatchSource, aug: AugmentConfig,
                   batch_images: int = 4, pixels_per_image: int = 256, negatives: int = 1000,
                   mask_weight: float = 1.0, generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Computes the losses of one random batch; the caller sums the "infonce" and "mask_bce" entries.

    Returns {"infonce": InfoNCE over sampled foreground pixels, "mask_bce": mask BCE-with-logits over
    all pixels times mask_weight, "acc_top1": detached fraction of sampled queries whose positive key
    outscores every negative}.
    """
    device = next(query.parameters()).device
    ids = sample_images(len(src.images), batch_images, generator).to(src.images.device)
    images, points, masks = (t[ids].to(device).float() for t in (src.images, src.point_maps, src.masks))
    images, points, masks = augment(images, points, masks, aug, generator)

    q_map, mask_logit = query(images)
    idx, valid = sample_foreground(masks, pixels_per_image, generator)
    q = _gather_pixels(q_map, idx, valid)  # (P, E)
    pos_keys = keys(_gather_pixels(points, idx, valid))  # (P, E)
    neg_ids = _randint(len(src.surface_points), negatives, generator).to(src.surface_points.device)
    neg_keys = keys(src.surface_points[neg_ids].to(device).float())  # (M, E)

    if len(q) > 0:
        loss, acc = infonce_terms(q, pos_keys, neg_keys)
    else:
        # Augmentation can push every foreground pixel out of view; keep the graph but add nothing.
        loss = q_map.sum() * 0.0 + neg_keys.sum() * 0.0
        acc = torch.zeros((), device=device)
    bce = F.binary_cross_entropy_with_logits(mask_logit, masks) * mask_weight
    return {"infonce": loss, "mask_bce": bce, "acc_top1": acc.detach()}
