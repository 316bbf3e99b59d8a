"""NerfregPipeline: phase 1 trains the object field; phase 2, in the same ns-train run, trains
the key head and the query encoder against the field's surface.

Phase 2 renders every training view once (expected depth -> a 3D surface point per pixel),
crops the object, and then optimises InfoNCE between per-pixel queries and the keys of their
surface points, with negatives drawn from the whole reconstructed surface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Type

import torch
from rich.progress import track

from nerfstudio.pipelines.base_pipeline import VanillaPipeline, VanillaPipelineConfig

from nerfreg_ns.embedding.augment import AugmentConfig
from nerfreg_ns.embedding.crops import crop, square_box
from nerfreg_ns.embedding.train import EmbeddingBatchSource, embedding_step


@dataclass
class NerfregPipelineConfig(VanillaPipelineConfig):
    """Two phases in one run: the field, then keys and queries."""

    _target: Type = field(default_factory=lambda: NerfregPipeline)
    nerf_steps: int = 1200
    """Steps of phase 1 (field); the remaining steps of the run train keys and queries."""
    query_size: int = 96
    """Side of the square object crops the query encoder sees."""
    embed_batch_images: int = 4
    """Crops per phase-2 step."""
    embed_pixels_per_image: int = 1024
    """Foreground pixels per crop taken as InfoNCE queries."""
    embed_negatives: int = 1000
    """Surface points whose keys are the negatives."""
    surface_pool: int = 50000
    """Reconstructed surface points kept to draw negatives from."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Augmentation of the crops."""


class NerfregPipeline(VanillaPipeline):
    config: NerfregPipelineConfig

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._embed_source: EmbeddingBatchSource | None = None

    def get_train_loss_dict(self, step: int):
        if step < self.config.nerf_steps:
            return super().get_train_loss_dict(step)
        out = embedding_step(
            self.model.query_encoder, self.model.key_head, self.embedding_source(), self.config.augment,
            batch_images=self.config.embed_batch_images, pixels_per_image=self.config.embed_pixels_per_image,
            negatives=self.config.embed_negatives,
        )
        losses = {k: v for k, v in out.items() if k in ("infonce", "mask_bce")}
        metrics = {k: v for k, v in out.items() if k not in losses}
        return {}, losses, metrics

    def embedding_source(self) -> EmbeddingBatchSource:
        """The crops, point maps and surface pool of phase 2, built on first use."""
        if self._embed_source is None:
            self._embed_source = self.build_embedding_source()
        return self._embed_source

    @torch.no_grad()
    def render_surface(self, index: int) -> dict[str, torch.Tensor]:
        """Renders training view `index`: rgb, fg mask, accumulation, surface points (H, W, 3)
        in nerfstudio coordinates."""
        dataset = self.datamanager.train_dataset
        cams = dataset.cameras[index : index + 1].to(self.device)
        was_training = self.model.training
        self.model.eval()
        outputs = self.model.get_outputs_for_camera(cams)
        self.model.train(was_training)
        rays = cams.generate_rays(camera_indices=0, keep_shape=True)
        points = rays.origins + rays.directions * outputs["depth_median"]
        data = dataset[index]
        return {"rgb": data["image"][..., :3].to(self.device), "fg": data["fg_mask"][..., 0].to(self.device) > 0.5,
                "acc": outputs["accumulation"][..., 0], "points": points, "normals": outputs["normals"] * 2 - 1,
                "keys": outputs["keys"]}

    def build_embedding_source(self) -> EmbeddingBatchSource:
        size = self.config.query_size
        images, point_maps, masks, pool = [], [], [], []
        n = len(self.datamanager.train_dataset)
        for i in track(range(n), description="rendering surfaces for the query encoder", transient=True):
            r = self.render_surface(i)
            valid = r["fg"] & (r["acc"] > 0.5)
            unit = self.model.to_unit(r["points"].reshape(-1, 3)).reshape(r["points"].shape)
            box = square_box(r["fg"])
            images.append(crop(r["rgb"].permute(2, 0, 1), box, size))
            point_maps.append(crop(unit.permute(2, 0, 1), box, size, mode="nearest"))
            masks.append(crop(valid[None].float(), box, size, mode="nearest"))
            pool.append(unit[valid])
        pool_t = torch.cat(pool)
        keep = torch.randperm(len(pool_t), device=pool_t.device)[: self.config.surface_pool]
        return EmbeddingBatchSource(
            images=torch.stack(images), point_maps=torch.stack(point_maps), masks=torch.stack(masks), surface_points=pool_t[keep]
        )
