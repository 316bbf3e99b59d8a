"""NerfregPipeline: phase 1 trains the object field; phase 2, in the same ns-train run, trains
the key head and the query encoder against the field's surface.

Phase 2 renders every training view once (expected depth -> a 3D surface point per pixel),
crops the object, and then optimises InfoNCE between per-pixel queries and the keys of their
surface points, with negatives drawn from the whole reconstructed surface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import List, Tuple, Type

import torch
from rich.progress import track

from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.pipelines.base_pipeline import VanillaPipeline, VanillaPipelineConfig

from nerfreg_ns.embedding.augment import AugmentConfig
from nerfreg_ns.embedding.crops import crop, square_box
from nerfreg_ns.embedding.relight import RelightConfig, normals_from_points, random_lights, relit
from nerfreg_ns.embedding.train import EmbeddingBatchSource, embedding_step
from nerfreg_ns.nerf.dataset import split_image
from nerfreg_ns.nerf.novel_views import orbit_c2w_opengl


@dataclass
class NerfregPipelineConfig(VanillaPipelineConfig):
    """Two phases in one run: the field, then keys and queries."""

    _target: Type = field(default_factory=lambda: NerfregPipeline)
    nerf_steps: int = 1200
    """Steps of phase 1 (field); the remaining steps of the run train keys and queries."""
    query_size: int = 48
    """Side of the square object crops the query encoder sees. About the object's size in pixels
    at 128x128: larger crops cost time per step that more steps use better (benchmarks/README.md)."""
    query_rotations: int = 8
    """Test-time turns of a query crop whose roll is unknown (even angles; the turn whose matches
    give the most PnP inliers wins, see `embedding.match`). Training crops turn only by
    +-augment.rotation_deg, about half the spacing: upright crops learn far faster, and sequence 2
    shows a flipped object upside down."""
    embed_batch_images: int = 4
    """Crops per phase-2 step."""
    embed_pixels_per_image: int = 1024
    """Foreground pixels per crop taken as InfoNCE queries."""
    embed_negatives: int = 1000
    """Surface points whose keys are the negatives."""
    surface_pool: int = 50000
    """Reconstructed surface points kept to draw negatives from."""
    embed_lr_final: float = 0.05
    """Phase 2 learning rates (optimizer groups `keys` and `query`) follow a cosine from their
    configured value down to this fraction of it at the run's last step."""
    extra_views: int = 30
    """Extra phase-2 views rendered by the field from below the training cameras (see
    `novel_views`); they teach the query encoder outlines the sequence never filmed, which is
    where the other sequence's images come from (benchmarks/README.md)."""
    extra_elevation: Tuple[float, float] = (-35.0, 5.0)
    """Elevation band of the extra views, degrees above the plane through the object centre
    normal to the cameras' mean direction."""
    relight_copies: int = 0
    """Copies of each training view added to phase 2, shaded from its rendered surface's normals
    under random lights (see `embedding.relight`); with extra views, those take relit colours too
    instead of the field's extrapolated ones. 0: off."""
    relight: RelightConfig = field(default_factory=RelightConfig)
    """Ranges of the random lights of the relit copies."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Augmentation of the crops."""
    render_max_side: int = 320
    """Training views rendered whole (surface export, phase 2) are reduced to at most this many
    pixels on their longer side: large images add nothing there but time."""


EMBED_GROUPS = ("keys", "query")


def phase_cosine(step: int, start: int, end: int, final: float) -> float:
    """Learning-rate factor: 1 until `start`, then a cosine down to `final` at `end` (and after)."""
    if step <= start or end <= start:
        return 1.0
    t = min(1.0, (step - start) / (end - start))
    return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * t))


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

    def get_training_callbacks(self, training_callback_attributes: TrainingCallbackAttributes) -> List[TrainingCallback]:
        callbacks = super().get_training_callbacks(training_callback_attributes)
        optimizers, trainer = training_callback_attributes.optimizers, training_callback_attributes.trainer
        if optimizers is None or trainer is None:
            return callbacks
        # Owned here, not by a nerfstudio scheduler: the schedule must span phase 2 whatever
        # --pipeline.nerf-steps and --max-num-iterations say, and schedulers only see the step.
        end = trainer._start_step + trainer.config.max_num_iterations
        base = {name: trainer.config.optimizers[name]["optimizer"].lr
                for name in EMBED_GROUPS if name in optimizers.optimizers and name in trainer.config.optimizers}

        def set_lr(step: int) -> None:
            f = phase_cosine(step, self.config.nerf_steps, end, self.config.embed_lr_final)
            for name, lr in base.items():
                for group in optimizers.optimizers[name].param_groups:
                    group["lr"] = lr * f

        callbacks.append(TrainingCallback([TrainingCallbackLocation.BEFORE_TRAIN_ITERATION], set_lr))
        return callbacks

    def embedding_source(self) -> EmbeddingBatchSource:
        """The crops, point maps and surface pool of phase 2, built on first use."""
        if self._embed_source is None:
            self._embed_source = self.build_embedding_source()
        return self._embed_source

    @torch.no_grad()
    def _render(self, cams) -> dict[str, torch.Tensor]:
        """Field outputs for one camera plus the surface point of each pixel (H, W, 3), nerfstudio frame."""
        was_training = self.model.training
        self.model.eval()
        outputs = self.model.get_outputs_for_camera(cams)
        self.model.train(was_training)
        rays = cams.generate_rays(camera_indices=0, keep_shape=True)
        outputs["points"] = rays.origins + rays.directions * outputs["depth_median"]
        outputs["dirs"], outputs["R_c2w"] = rays.directions, cams.camera_to_worlds[0, :3, :3]
        return outputs

    def render_camera(self, index: int):
        """Training camera `index` (a Cameras of one), reduced to `render_max_side` when larger."""
        cams = self.datamanager.train_dataset.cameras[index : index + 1]
        side = int(max(cams.width.max(), cams.height.max()))
        limit = getattr(self.config, "render_max_side", 0) or side  # runs configured before the option
        if side > limit:
            cams.rescale_output_resolution(limit / side)
        return cams

    @torch.no_grad()
    def render_surface(self, index: int) -> dict[str, torch.Tensor]:
        """Renders training view `index` (at `render_camera`'s size, returned as "camera"): its rgb
        and fg mask, accumulation, surface points (H, W, 3) in nerfstudio coordinates, their depth
        spread (H, W) (from 25% to 75% of the ray's opacity, nerfstudio units), normals and keys."""
        dataset = self.datamanager.train_dataset
        cams = self.render_camera(index)
        out = self._render(cams.to(self.device))
        data = dataset[index]
        rgb, fg = split_image(data["image"])
        fg = fg[..., 0]
        h, w = out["accumulation"].shape[:2]
        if rgb.shape[:2] != (h, w):  # area-averaged, the mask thresholded at half
            rgb = torch.nn.functional.interpolate(rgb.permute(2, 0, 1)[None], size=(h, w), mode="area")[0].permute(1, 2, 0)
            fg = torch.nn.functional.interpolate(fg[None, None], size=(h, w), mode="area")[0, 0]
        return {"rgb": rgb.to(self.device), "fg": fg.to(self.device) > 0.5,
                "acc": out["accumulation"][..., 0], "points": out["points"], "spread": out["depth_spread"][..., 0],
                "normals": out["normals"] * 2 - 1, "dirs": out["dirs"], "R_c2w": out["R_c2w"],
                "keys": out["keys"], "camera": cams}

    @torch.no_grad()
    def render_novel(self, c2w_opengl: torch.Tensor) -> dict[str, torch.Tensor]:
        """Renders a camera pose (3, 4) not in the dataset, with the first training camera's
        intrinsics: rendered rgb on black and the field's own mask (accumulation > 0.5)."""
        from nerfstudio.cameras.cameras import Cameras

        c = self.render_camera(0)
        cams = Cameras(camera_to_worlds=c2w_opengl[None].float(), fx=c.fx, fy=c.fy, cx=c.cx, cy=c.cy,
                       width=c.width, height=c.height).to(self.device)
        out = self._render(cams)
        fg = out["accumulation"][..., 0] > 0.5
        return {"rgb": out["rgb"] * fg[..., None], "fg": fg, "acc": out["accumulation"][..., 0], "points": out["points"],
                "dirs": out["dirs"], "R_c2w": out["R_c2w"]}

    def novel_poses(self) -> torch.Tensor:
        """The `extra_views` poses (n, 3, 4) below the training cameras, nerfstudio frame."""
        centres = self.datamanager.train_dataset.cameras.camera_to_worlds[:, :3, 3].cpu().numpy()
        lo, hi = self.model.hull_aabb.cpu().numpy()
        poses = orbit_c2w_opengl(centres, (lo + hi) / 2, self.config.extra_views, self.config.extra_elevation)
        return torch.from_numpy(poses).float()

    def _mean_foreground_colour(self) -> torch.Tensor:
        """Mean rgb (3,) of the object over all training images: the albedo of relit copies."""
        dataset = self.datamanager.train_dataset
        total, count = torch.zeros(3), 0
        for i in range(len(dataset)):
            data = dataset[i]
            rgb, fg = split_image(data["image"])
            fg = fg[..., 0] > 0.5
            total, count = total + rgb[fg].sum(0), count + int(fg.sum())
        return (total / max(count, 1)).to(self.device)

    def build_embedding_source(self) -> EmbeddingBatchSource:
        size, copies = self.config.query_size, self.config.relight_copies
        images, point_maps, masks, pool = [], [], [], []
        n = len(self.datamanager.train_dataset)
        novel = self.novel_poses()  # (0, 3, 4) unless extra_views > 0
        # getattr: a run configured before the option existed loads without the attribute
        light_cfg = getattr(self.config, "relight", None) or RelightConfig()
        mean_rgb, lights = None, iter(())
        if copies:  # lights and the albedo only exist for relit copies
            weights, key_dirs = random_lights(copies * n + len(novel), light_cfg, torch.Generator().manual_seed(0))
            mean_rgb, lights = self._mean_foreground_colour(), iter(zip(weights, key_dirs))
        for i in track(range(n + len(novel)), description="rendering surfaces for the query encoder", transient=True):
            r = self.render_surface(i) if i < n else self.render_novel(novel[i - n])
            valid = r["fg"] & (r["acc"] > 0.5)
            if i >= n and valid.sum() < 16:  # the object left the frame: nothing to learn from
                continue
            unit = self.model.to_unit(r["points"].reshape(-1, 3)).reshape(r["points"].shape)
            box = square_box(r["fg"])
            point_map = crop(unit.permute(2, 0, 1), box, size, mode="nearest")
            mask = crop(valid[None].float(), box, size, mode="nearest")
            # training views: the photograph and `copies` relit copies; extra views: one relit
            # copy instead of the field's colours when relighting is on (they are guesses there)
            rgbs = [r["rgb"]] if i < n or not copies else []
            normals = normals_from_points(r["points"], r["fg"]) if copies else None
            for _ in range(copies if i < n else min(copies, 1)):
                w, k = next(lights)
                rgbs.append(relit(normals, r["dirs"], r["R_c2w"], r["fg"], mean_rgb, w, k))
            for rgb in rgbs:
                images.append(crop(rgb.permute(2, 0, 1), box, size))
                point_maps.append(point_map)
                masks.append(mask)
            pool.append(unit[valid])
        # negatives follow the pixels' distribution, novel views included (see EmbeddingBatchSource)
        pool_t = torch.cat(pool)
        keep = torch.randperm(len(pool_t), device=pool_t.device)[: self.config.surface_pool]
        return EmbeddingBatchSource(
            images=torch.stack(images), point_maps=torch.stack(point_maps), masks=torch.stack(masks), surface_points=pool_t[keep]
        )
