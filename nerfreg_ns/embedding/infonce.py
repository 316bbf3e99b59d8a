"""SurfEmb's InfoNCE loss and nearest-key correspondence accuracy."""

from __future__ import annotations

import torch
from torch import Tensor


def infonce_terms(queries: Tensor, pos_keys: Tensor, neg_keys: Tensor) -> tuple[Tensor, Tensor]:
    """Queries (P, E), positive keys (P, E), shared negatives (M, E) -> (loss, top-1 accuracy).

    The loss is SurfEmb's InfoNCE: cross-entropy over the logits [q.k_pos, q.k_neg_1, ..., q.k_neg_M]
    (plain dot products, no temperature) against class 0, averaged over the P queries; written as
    log(e^pos + sum e^neg) - pos so the (P, M) logits are neither copied into a (P, 1 + M) matrix nor
    multiplied out a second time for the accuracy (the step's largest costs on a CPU). The accuracy
    (detached) is the fraction of queries whose positive outscores every negative.
    """
    pos = (queries * pos_keys).sum(dim=1)  # (P,)
    neg = queries @ neg_keys.T  # (P, M)
    loss = (torch.logaddexp(pos, torch.logsumexp(neg, dim=1)) - pos).mean()
    with torch.no_grad():
        acc = (pos > neg.amax(dim=1)).float().mean()
    return loss, acc


def infonce_loss(queries: Tensor, pos_keys: Tensor, neg_keys: Tensor) -> Tensor:
    """Queries (P, E), positive keys (P, E), shared negatives (M, E) -> scalar InfoNCE loss
    (see `infonce_terms`)."""
    return infonce_terms(queries, pos_keys, neg_keys)[0]


@torch.no_grad()
def _best_candidates(queries: Tensor, cand_keys: Tensor, chunk: int) -> Tensor:
    """Index (P,) of the highest q.k candidate per query, in chunks of queries to bound the (chunk, M) score matrix."""
    return torch.cat([(q @ cand_keys.T).argmax(dim=1) for q in queries.split(chunk)])


def nearest_key_accuracy(queries: Tensor, cand_keys: Tensor, cand_points: Tensor, true_points: Tensor,
                         threshold: float, chunk: int = 4096) -> float:
    """Fraction of queries (P, E) whose argmax candidate (keys (M, E), points (M, 3)) lies within
    `threshold` of the query's true point (P, 3). Returns nan for P == 0."""
    if len(queries) == 0:
        return float("nan")
    best = _best_candidates(queries, cand_keys, chunk)
    dist = (cand_points[best] - true_points).norm(dim=1)  # (P,)
    return (dist <= threshold).float().mean().item()


def symmetric_nearest_key_accuracy(queries: Tensor, cand_keys: Tensor, cand_points: Tensor, true_points: Tensor,
                                   threshold: float, sym_transforms: Tensor, chunk: int = 4096) -> float:
    """As `nearest_key_accuracy`, but a match counts if it is within `threshold` of any symmetric image
    T @ true_point for T in `sym_transforms` (S, 4, 4), given in the points' frame; include the identity."""
    if len(queries) == 0:
        return float("nan")
    best = _best_candidates(queries, cand_keys, chunk)
    T = sym_transforms.to(true_points)
    true_sym = torch.einsum("sij,pj->spi", T[:, :3, :3], true_points) + T[:, None, :3, 3]  # (S, P, 3)
    dist = (cand_points[best][None] - true_sym).norm(dim=2).amin(dim=0)  # (P,)
    return (dist <= threshold).float().mean().item()
