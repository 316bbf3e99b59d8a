"""Training augmentation: a random in-plane similarity warp shared by image, point map and mask,
then photometric jitter on the image only."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random augmentation; set a range to a single value (or prob/std to 0) to disable it."""

    rotation_deg: float = 22.5
    """In-plane rotation, uniform in [-rotation_deg, +rotation_deg] degrees, about the image centre.
    Small by default: an unknown roll is found at test time by turning the crop (the pipeline's
    `query_rotations`), and nearly upright crops train several times faster than crops at any
    roll (benchmarks/README.md)."""
    scale: tuple[float, float] = (0.8, 1.25)
    """Zoom factor range, sampled log-uniformly so zooming in and out are equally likely."""
    blur_prob: float = 0.3
    """Probability of a gaussian blur per image."""
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    """Gaussian blur standard deviation range in pixels."""
    noise_std: float = 0.03
    """Standard deviation of additive gaussian pixel noise."""
    brightness: tuple[float, float] = (0.7, 1.3)
    """Multiplicative brightness factor range."""
    contrast: tuple[float, float] = (0.8, 1.2)
    """Contrast factor range, scaling deviations from each image's mean."""


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """n uniform samples in [lo, hi] (n,), drawn on the generator's device so seeding is device-independent."""
    gdev = generator.device if generator is not None else device
    return (lo + (hi - lo) * torch.rand(n, generator=generator, device=gdev)).to(device)


def _normal(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Standard normal samples of `shape`, drawn on the generator's device."""
    gdev = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=gdev).to(device)


def similarity_theta(angles: Tensor, scales: Tensor, height: int, width: int) -> Tensor:
    """affine_grid matrices (B, 2, 3) for a rotation by `angles` (B,) radians and zoom `scales` (B,)
    about the image centre, in pixel units (x right, y down; output = s R(angle) input).

    affine_grid maps *output* normalised coords to *input* ones, so this is the inverse warp,
    conjugated by the pixel->normalised scaling D = diag(2/W, 2/H) (align_corners=False) so the
    rotation is rigid in pixels even for non-square images.
    """
    c, s = angles.cos() / scales, angles.sin() / scales
    # Inverse of s R(a) is R(-a) / s = [[c, s], [-s, c]] with c, s as above.
    sx, sy = 2.0 / width, 2.0 / height
    zero = torch.zeros_like(c)
    row0 = torch.stack([c, s * sx / sy, zero], dim=1)
    row1 = torch.stack([-s * sy / sx, c, zero], dim=1)
    return torch.stack([row0, row1], dim=1)


def warp_similarity(images: Tensor, point_maps: Tensor, masks: Tensor, angles: Tensor,
                    scales: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Rotates/zooms images (B, 3, H, W), point maps (B, 3, H, W) and masks (B, 1, H, W) per item
    by `angles` (B,) radians and `scales` (B,) about the centre. Images are bilinear; point maps and
    masks are nearest so 3D points are never blended. Areas from outside the image become zero."""
    B, _, H, W = images.shape
    theta = similarity_theta(angles.to(images), scales.to(images), H, W)
    grid = F.affine_grid(theta, [B, 1, H, W], align_corners=False)
    kw = dict(padding_mode="zeros", align_corners=False)
    img = F.grid_sample(images, grid, mode="bilinear", **kw)
    geo = F.grid_sample(torch.cat([point_maps, masks.to(point_maps)], dim=1), grid, mode="nearest", **kw)
    return img, geo[:, :3], geo[:, 3:].to(masks.dtype)


def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """Separable gaussian blur of one image (C, H, W) with reflect padding."""
    radius = max(1, math.ceil(3.0 * sigma))
    x = torch.arange(-radius, radius + 1, device=image.device, dtype=image.dtype)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    C = image.shape[0]
    pad_h, pad_w = min(radius, image.shape[1] - 1), min(radius, image.shape[2] - 1)
    out = F.pad(image[None], (pad_w, pad_w, pad_h, pad_h), mode="reflect")
    # Trim the kernel if the image is too small to reflect-pad a full radius.
    kx, ky = k[radius - pad_w: radius + pad_w + 1], k[radius - pad_h: radius + pad_h + 1]
    out = F.conv2d(out, (kx / kx.sum()).view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
    out = F.conv2d(out, (ky / ky.sum()).view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)
    return out[0]


def photometric(images: Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None) -> Tensor:
    """Brightness/contrast jitter, optional blur and additive noise on images (B, 3, H, W); clamped to [0, 1]."""
    B, dev = images.shape[0], images.device
    bright = _uniform(B, *cfg.brightness, generator, dev).view(B, 1, 1, 1)
    contrast = _uniform(B, *cfg.contrast, generator, dev).view(B, 1, 1, 1)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    out = ((images - mean) * contrast + mean) * bright
    do_blur = _uniform(B, 0.0, 1.0, generator, dev) < cfg.blur_prob
    sigmas = _uniform(B, *cfg.blur_sigma, generator, dev)
    if bool(do_blur.any()):
        out = torch.stack([gaussian_blur(im, float(sg)) if b else im for im, b, sg in zip(out, do_blur, sigmas)])
    if cfg.noise_std > 0:
        out = out + cfg.noise_std * _normal(tuple(out.shape), generator, dev)
    return out.clamp(0.0, 1.0)


def augment(images: Tensor, point_maps: Tensor, masks: Tensor, cfg: AugmentConfig,
            generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """One random rotation + zoom per item applied to images (B, 3, H, W), point maps (B, 3, H, W)
    and float 0/1 masks (B, 1, H, W), then photometric jitter on the images only."""
    B, dev = images.shape[0], images.device
    angles = torch.deg2rad(_uniform(B, -cfg.rotation_deg, cfg.rotation_deg, generator, dev))
    lo, hi = cfg.scale
    scales = torch.exp(_uniform(B, math.log(lo), math.log(hi), generator, dev))
    images, point_maps, masks = warp_similarity(images, point_maps, masks, angles, scales)
    return photometric(images, cfg, generator), point_maps, masks
