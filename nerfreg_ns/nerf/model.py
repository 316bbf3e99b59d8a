"""NerfregModel: volume rendering inside the visual hull, plus the key head and query encoder.

Each ray is marched through the carved occupancy grid once to find where it is inside the hull;
a few stratified samples are placed there only. Rays that miss the hull cost nothing and render
black (the background). Colour is evaluated only where a sample carries weight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Literal, Optional, Tuple, Type

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Parameter

from nerfstudio.cameras.rays import RayBundle
from nerfstudio.models.base_model import Model, ModelConfig

from nerfreg_ns.embedding.keys import KeyHead
from nerfreg_ns.embedding.query import QueryEncoder
from nerfreg_ns.nerf.dataset import split_image
from nerfreg_ns.nerf.field import GridField
from nerfreg_ns.nerf.hull import ray_hull_interval


@dataclass
class NerfregModelConfig(ModelConfig):
    """The object field, its key head and the query encoder."""

    _target: Type = field(default_factory=lambda: NerfregModel)
    samples_per_ray: int = 32
    """Stratified samples per ray, all inside the hull interval."""
    march_steps: int = 256
    """Occupancy look-ups per ray to find the hull interval."""
    density_res: int = 128
    """Density grid resolution over the hull box."""
    app_res: int = 48
    """Appearance grid resolution."""
    app_dim: int = 8
    """Appearance features per voxel."""
    color_hidden: int = 32
    """Width of the colour MLP."""
    mask_loss_mult: float = 0.2
    """Weight of the accumulation-vs-mask loss."""
    tv_loss_mult: float = 1e-4
    """Weight of the density total variation."""
    tv_voxels: int = 16384
    """Random voxels per step for the total variation."""
    emb_dim: int = 12
    """Size of keys and queries."""
    key_freqs: int = 6
    """Fourier frequencies of the key head."""
    key_hidden: int = 64
    """Width of the key MLP."""
    query_channels: Tuple[int, ...] = (16, 32, 64)
    """Channels per level of the query U-Net."""
    sparsity_loss_mult: float = 0.0
    """Weight of the samples' mean optical thickness (empties space no view needs; off: alone it
    made obj_14's surface worse, see benchmarks/README.md)."""
    distortion_loss_mult: float = 0.0
    """Weight of the distortion loss (mip-NeRF 360): each ray's weights drawn to one short stretch,
    so fog that some rays see in front of the surface costs something (off by default)."""
    shading: Literal["view", "camera-normal"] = "view"
    """Colour conditioning: `view` reads the view direction (spherical harmonics); `camera-normal`
    reads the field's own normal in the camera's frame, as lights fixed to the camera shade a
    texture-less part, so the shading constrains the geometry (an option: better on some shapes,
    worse on others, benchmarks/README.md)."""
    enable_collider: bool = False
    eval_num_rays_per_chunk: int = 1 << 14


def distortion(w: Tensor, t: Tensor, step: Tensor) -> Tensor:
    """mip-NeRF 360's distortion of each ray (M,): weights w (M, K) at sorted sample midpoints
    t (M, K), each sample's interval step (M,) long. sum_ij w_i w_j |t_i - t_j| + sum_i w_i^2 step / 3,
    in O(K) with prefix sums."""
    cw = torch.cumsum(w, 1) - w  # weight before each sample
    cwt = torch.cumsum(w * t, 1) - w * t
    cross = 2 * (w * (t * cw - cwt)).sum(1)
    return cross + (w.square().sum(1) * step) / 3


class NerfregModel(Model):
    config: NerfregModelConfig

    def populate_modules(self) -> None:
        super().populate_modules()
        meta = self.kwargs.get("metadata") or {}
        if "hull_aabb" not in meta:
            raise ValueError("nerfreg-feature needs the nerfreg dataparser (hull metadata missing)")
        self.register_buffer("hull_aabb", meta["hull_aabb"].float().clone())
        self.register_buffer("hull_occ", meta["hull_occ"].bool().clone())
        c = self.config
        self.field = GridField(self.hull_occ, c.density_res, c.app_res, c.app_dim, c.color_hidden, shading=c.shading)
        # camera-to-world rotations of the training cameras: camera-normal shading needs each ray's camera
        cam_R = meta.get("camera_rotations")
        self.register_buffer("cam_R", cam_R.float().clone() if cam_R is not None else torch.eye(3)[None])
        self._render_R: Optional[Tensor] = None
        self.key_head = KeyHead(emb_dim=c.emb_dim, n_freqs=c.key_freqs, hidden=c.key_hidden)
        self.query_encoder = QueryEncoder(emb_dim=c.emb_dim, channels=tuple(c.query_channels))
        self.register_buffer("key_background", F.one_hot(torch.tensor(0), c.emb_dim).float())
        # per training frame, 0 where its mask disagrees with the others (not saved: the
        # dataparser recomputes it, and runs trained before it existed still load)
        flagged = meta.get("frame_flagged")
        self.frame_weight: Optional[Tensor] = (~flagged).float() if flagged is not None else None

    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        return {
            "grids": [self.field.density, self.field.app],
            "mlp": list(self.field.color_mlp.parameters()),
            "keys": list(self.key_head.parameters()),
            "query": list(self.query_encoder.parameters()),
        }

    # --- coordinates -------------------------------------------------------------------
    def to_unit(self, x: Tensor) -> Tensor:
        """nerfstudio coordinates (N, 3) -> the hull box as [-1, 1]^3 (grids and keys use it)."""
        lo, hi = self.hull_aabb[0], self.hull_aabb[1]
        return (x - lo) / (hi - lo) * 2 - 1

    @property
    def voxel_size(self) -> float:
        return float((self.hull_aabb[1, 0] - self.hull_aabb[0, 0]) / self.config.density_res)

    # --- rendering ---------------------------------------------------------------------
    def get_outputs_for_camera(self, camera, obb_box=None) -> Dict[str, Tensor]:
        # rays of a rendered camera carry index 0, not the camera: remember its rotation
        self._render_R = camera.camera_to_worlds.reshape(-1, 3, 4)[0, :3, :3].to(self.device)
        try:
            return super().get_outputs_for_camera(camera, obb_box)
        finally:
            self._render_R = None

    def _ray_rotations(self, ray_bundle: RayBundle, idx: Tensor) -> Tensor:
        """Camera-to-world rotations (M, 3, 3) of the rays idx (M,)."""
        if self._render_R is not None:
            return self._render_R[None].expand(len(idx), 3, 3)
        ci = ray_bundle.camera_indices
        if ci is None:
            raise ValueError("camera-normal shading needs each ray's camera")
        ci = ci.reshape(-1)[idx].long().clamp(0, len(self.cam_R) - 1)
        return self.cam_R[ci]

    def get_outputs(self, ray_bundle: RayBundle) -> Dict[str, Tensor]:
        shape = ray_bundle.origins.shape[:-1]
        o = ray_bundle.origins.reshape(-1, 3)
        d = F.normalize(ray_bundle.directions.reshape(-1, 3), dim=-1)
        n, k = len(o), self.config.samples_per_ray
        t_in, t_out, hit = ray_hull_interval(o, d, self.hull_aabb, self.hull_occ, self.config.march_steps)
        rgb = o.new_zeros(n, 3)
        acc = o.new_zeros(n)
        depth = t_out.clone()
        median = t_out.clone()
        spread = torch.zeros_like(t_out)
        idx = hit.nonzero()[:, 0]
        if len(idx):
            oh, dh = o[idx], d[idx]
            jitter = torch.rand(len(idx), k, device=o.device) if self.training else torch.full((len(idx), k), 0.5, device=o.device)
            span = (t_out - t_in)[idx, None]
            t = t_in[idx, None] + span * (torch.arange(k, device=o.device) + jitter) / k
            x = self.to_unit((oh[:, None] + dh[:, None] * t[..., None]).reshape(-1, 3))
            sigma = self.field.density_at(x).view(-1, k)
            alpha = 1 - torch.exp(-sigma * (span / k) / self.voxel_size)
            trans = torch.cumprod(torch.cat([alpha.new_ones(len(idx), 1), 1 - alpha + 1e-10], 1), 1)[:, :-1]
            w = alpha * trans
            live = (w.detach() > 1e-4).view(-1)
            col = x.new_zeros(len(x), 3)
            if live.any():
                if self.config.shading == "view":
                    cond = dh[:, None].expand(-1, k, -1).reshape(-1, 3)[live]
                else:
                    R = self._ray_rotations(ray_bundle, idx)[:, None].expand(-1, k, -1, -1).reshape(-1, 3, 3)[live]
                    normals = self.field.normals_at(x[live], 2.0 / self.config.density_res)
                    cond = torch.einsum("nji,nj->ni", R, normals)  # R^T n: the normal in the camera frame
                col[live] = self.field.color_at(x[live], cond)
            a = w.sum(1)
            rgb = rgb.index_put((idx,), (w[..., None] * col.view(-1, k, 3)).sum(1))
            acc = acc.index_put((idx,), a)
            depth = depth.index_put((idx,), torch.where(a > 1e-4, (w * t).sum(1) / a.clamp(min=1e-4), t_out[idx]))
            if not self.training:  # where half the opacity is reached: unbiased by thin density tails
                q25, q50, q75 = self._quantile_depths(w, a, t, span[:, 0] / k, (0.25, 0.5, 0.75)).unbind(1)
                median = median.index_put((idx,), q50)
                # how deep the opacity is smeared: thin on a crisp surface, long in fog no view resolved
                spread = spread.index_put((idx,), q75 - q25)
        out = {"rgb": rgb.view(*shape, 3), "accumulation": acc.view(*shape, 1), "depth": depth.view(*shape, 1)}
        if self.training and len(idx) and self.config.sparsity_loss_mult > 0:
            out["thickness"] = (sigma * (span / k) / self.voxel_size).mean()
        if self.training and len(idx) and self.config.distortion_loss_mult > 0:
            # distances as fractions of the hull box, so the weight does not depend on units
            box = self.voxel_size * self.config.density_res
            out["distortion"] = distortion(w, (t - t[:, :1]) / box, span[:, 0] / k / box).mean()  # offset: float32 sums stay exact
        if not self.training:
            out["depth_median"] = median.view(*shape, 1)
            out["depth_spread"] = spread.view(*shape, 1)
            out.update(self._surface_outputs(o, d, median, acc, shape))
        return out

    @staticmethod
    def _quantile_depths(w: Tensor, a: Tensor, t: Tensor, step: Tensor, qs: Tuple[float, ...]) -> Tensor:
        """Distances (M, Q) where the accumulated weight of w (M, K) at samples t (M, K) reaches
        each fraction qs (Q,) of a (M,), interpolated inside the sample's interval of length step (M,)."""
        cw = torch.cumsum(w, 1)
        level = a[:, None] * torch.tensor(qs, dtype=w.dtype, device=w.device)  # (M, Q)
        i = (cw[:, None, :] >= level[..., None]).float().argmax(-1)  # (M, Q): first sample reaching it
        w_i = w.gather(1, i).clamp(min=1e-8)
        before = cw.gather(1, i) - w_i
        frac = ((level - before) / w_i).clamp(0, 1)
        return t.gather(1, i) + (frac - 0.5) * step[:, None]

    @torch.no_grad()
    def _surface_outputs(self, o: Tensor, d: Tensor, depth: Tensor, acc: Tensor, shape) -> Dict[str, Tensor]:
        """Normals (in [0, 1], as ns-export expects) and keys at the surface point."""
        x = self.to_unit(o + d * depth[:, None]).clamp(-1, 1)
        normals = self.field.normals_at(x, 2.0 / self.config.density_res)
        a = acc[:, None].clamp(0, 1)
        keys = self.key_head(x) * a + (1 - a) * self.key_background  # never all-zero: the viewer's PCA needs signal
        return {"normals": ((normals + 1) / 2).view(*shape, 3), "keys": keys.view(*shape, -1)}

    def get_rgba_image(self, outputs: Dict[str, Tensor], output_name: str = "rgb") -> Tensor:
        # alpha is the accumulation: ns-export keeps points with alpha > 0.5, i.e. on the object
        return torch.cat([outputs[output_name], outputs["accumulation"]], -1)

    # --- losses and metrics ----------------------------------------------------------------
    def _targets(self, batch: Dict) -> Tuple[Tensor, Tensor]:
        rgb, fg = split_image(batch["image"].to(self.device))
        return rgb, fg.float()

    def get_metrics_dict(self, outputs, batch) -> Dict[str, Tensor]:
        gt, _ = self._targets(batch)
        mse = F.mse_loss(outputs["rgb"].detach(), gt)
        return {"psnr": -10 * torch.log10(mse.clamp(min=1e-10))}

    def _ray_weights(self, batch: Dict, n: int) -> Optional[Tensor]:
        """Weights (n,) of the batch's rays by their frame's weight; None when all count."""
        if self.frame_weight is None or "indices" not in batch or bool(self.frame_weight.min() > 0):
            return None
        cam = batch["indices"][:, 0].long().to(self.device).clamp(0, len(self.frame_weight) - 1)
        return self.frame_weight.to(self.device)[cam].view(n)

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> Dict[str, Tensor]:
        gt, fg = self._targets(batch)
        acc = outputs["accumulation"].clamp(1e-4, 1 - 1e-4)
        rgb_err = (outputs["rgb"] - gt).square().mean(-1).view(-1)
        mask_err = F.binary_cross_entropy(acc, fg, reduction="none").view(-1)
        w = self._ray_weights(batch, len(rgb_err))
        if w is not None:  # frames whose mask disagrees with the rest teach nothing
            rgb_err, mask_err = rgb_err * w / w.mean().clamp(min=1e-6), mask_err * w / w.mean().clamp(min=1e-6)
        return {
            "rgb_loss": rgb_err.mean(),
            "mask_loss": self.config.mask_loss_mult * mask_err.mean(),
            "tv_loss": self.config.tv_loss_mult * self.field.tv_loss(self.config.tv_voxels),
            **({"sparsity_loss": self.config.sparsity_loss_mult * outputs["thickness"]}
               if "thickness" in outputs else {}),
            **({"distortion_loss": self.config.distortion_loss_mult * outputs["distortion"]}
               if "distortion" in outputs else {}),
        }

    def get_image_metrics_and_images(self, outputs, batch) -> Tuple[Dict[str, float], Dict[str, Tensor]]:
        gt, fg = self._targets(batch)
        mse = F.mse_loss(outputs["rgb"], gt)
        metrics = {"psnr": float(-10 * torch.log10(mse.clamp(min=1e-10)))}
        metrics["mask_iou"] = float(((outputs["accumulation"] > 0.5) & (fg > 0.5)).sum() / ((outputs["accumulation"] > 0.5) | (fg > 0.5)).sum().clamp(min=1))
        return metrics, {"img": torch.cat([gt, outputs["rgb"]], 1), "accumulation": outputs["accumulation"]}
