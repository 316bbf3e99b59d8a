"""Generator `embedding-pnp`: 2D-3D correspondences from the learned embedding, solved by PnP.

For each sequence-2 image, sequence 1's query encoder turns the object crop into per-pixel
queries; each is matched to the keys of sequence 1's surface, the most confident matches go to
EPnP-RANSAC, and the image's known sequence-2 pose turns the camera pose into a T_seq1_seq2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nerfreg_ns.errors import NerfregError
from nerfreg_ns.geometry.transforms import invert
from nerfreg_ns.plugins import hookimpl
from nerfreg_ns.registry import Hypothesis, SequenceData


@dataclass(frozen=True)
class EmbeddingPnpConfig:
    """Queries of each sequence-2 image against sequence 1's keys, EPnP-RANSAC per image."""

    max_images: int = 20
    """Sequence-2 images used (evenly spaced)."""
    max_keys: int = 20000
    """Surface points whose keys are candidates (random subset)."""
    matches_per_image: int = 400
    """Most confident pixel matches per image passed to PnP."""
    reprojection_px: float = 3.0
    """RANSAC inlier threshold."""
    iterations: int = 2000
    """RANSAC iterations per image."""
    min_inliers: int = 12
    """Images with fewer inliers propose nothing."""
    rotations: int = 0
    """Turns of each crop tried (the most PnP inliers wins); 0: the run's `query_rotations`."""


class EmbeddingPnp:
    def __init__(self, config: EmbeddingPnpConfig) -> None:
        self.config = config

    def propose(self, seq1: SequenceData, seq2: SequenceData) -> list[Hypothesis]:
        import torch

        from nerfreg_ns.data.images import read_image
        from nerfreg_ns.embedding.match import crop_queries, pnp_best_turn
        from nerfreg_ns.nerf.probe import query_rotations

        pipeline = seq1.extra.get("pipeline")
        if pipeline is None or seq1.keys is None or "images" not in seq2.extra:
            raise NerfregError("embedding-pnp needs nerfreg-feature runs (sequence 1's keys and query encoder)")
        model, size = pipeline.model, pipeline.config.query_size
        rotations = self.config.rotations or query_rotations(pipeline)
        rng = np.random.default_rng(0)
        pick = rng.permutation(len(seq1.points))[: self.config.max_keys]
        keys = torch.from_numpy(seq1.keys[pick]).float().to(model.device)
        pts = seq1.points[pick]
        out = []
        n = len(seq2.masks)
        for i in np.unique(np.linspace(0, n - 1, min(self.config.max_images, n)).round().astype(int)):
            mask = torch.from_numpy(seq2.masks[i]).to(model.device)
            rgb = torch.from_numpy(read_image(seq2.extra["images"][i])[..., :3]).float().to(model.device) / 255 * mask[..., None]
            crops = crop_queries(model.query_encoder, rgb, mask, size, rotations)
            pose = pnp_best_turn(crops, keys, pts, seq2.Ks[i], self.config.matches_per_image, self.config.reprojection_px,
                                 self.config.iterations, self.config.min_inliers)
            if pose is None:
                continue
            T_seq2_seq1 = seq2.T_world_camcv[i] @ pose.T_cam_obj
            out.append(Hypothesis(invert(T_seq2_seq1), f"embedding-pnp-image{i}", pose.inliers / pose.matches))
        return out


@hookimpl
def nerfreg_register_generators(register) -> None:
    register("embedding-pnp", EmbeddingPnpConfig, EmbeddingPnp)
