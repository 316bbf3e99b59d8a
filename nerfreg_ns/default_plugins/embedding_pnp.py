"""Generator `embedding-pnp`: 2D-3D correspondences from the learned embedding, solved by PnP.

For each sequence-2 image, sequence 1's `features` (its query encoder) turn the object crop into
per-pixel queries; each is matched to the keys of sequence 1's surface, the most confident
matches go to EPnP-RANSAC, and the image's known sequence-2 pose turns the camera pose into a
T_seq1_seq2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nerfreg_ns.errors import NerfregError
from nerfreg_ns.geometry.points import evenly_spaced
from nerfreg_ns.geometry.transforms import invert
from nerfreg_ns.hookspecs import hookimpl
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
    """Turns of each crop tried (the most PnP inliers wins); 0: sequence 1's default (`features.turns`)."""


class EmbeddingPnp:
    def __init__(self, config: EmbeddingPnpConfig) -> None:
        self.config = config

    def propose(self, seq1: SequenceData, seq2: SequenceData) -> list[Hypothesis]:
        from nerfreg_ns.data.images import read_image
        from nerfreg_ns.embedding.match import pnp_best_turn

        if seq1.features is None or seq1.keys is None or not seq2.images:
            from nerfreg_ns.nerf.export import keys_command

            raise NerfregError("embedding-pnp needs nerfreg-feature runs (sequence 1's keys and query encoder, sequence 2's "
                               f"images); {seq1.source or 'sequence 1'} has no trained keys (a nerfreg-field run?): train "
                               f"them on top of its field with {keys_command('RUN', 'FIELD_STEPS')} (FIELD_STEPS: the "
                               "field run's steps, 1200 by default)")
        turns = self.config.rotations or seq1.features.turns
        pick = np.random.default_rng(0).permutation(len(seq1.points))[: self.config.max_keys]
        keys, pts = seq1.keys[pick], seq1.points[pick]
        out = []
        for i in evenly_spaced(len(seq2.masks), self.config.max_images):
            queries = seq1.features.queries(read_image(seq2.images[i]), seq2.masks[i], turns)
            pose = pnp_best_turn(queries, keys, pts, seq2.Ks[i], self.config.matches_per_image, self.config.reprojection_px,
                                 self.config.iterations, self.config.min_inliers)
            if pose is None:
                continue
            T_seq2_seq1 = seq2.T_world_camcv[i] @ pose.T_cam_obj
            out.append(Hypothesis(invert(T_seq2_seq1), f"embedding-pnp-image{i}", pose.inliers / pose.matches))
        return out


@hookimpl
def nerfreg_register_generators(register) -> None:
    register("embedding-pnp", EmbeddingPnpConfig, EmbeddingPnp)
