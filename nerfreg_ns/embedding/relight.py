"""Relit copies of phase-2 views: each view's rendered surface normals shaded under random lights.

A texture-less part's pixels are shading, and a capture rig's lights move with its camera: the
same surface point looks different from the other sequence's side. A query encoder trained on
one sequence's photographs alone learns that one lighting. Copies shaded from the reconstructed
normals under random camera-frame lights ask it to read shape instead, and they give views
rendered below the filmed hemisphere colours that are not the field's extrapolated guesses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class RelightConfig:
    """Ranges of the random lights (each weight uniform in its range, per copy)."""

    ambient: tuple[float, float] = (0.05, 0.2)
    """Constant term."""
    head: tuple[float, float] = (0.3, 0.7)
    """Weight of a light at the camera (cosine between normal and view ray)."""
    key: tuple[float, float] = (0.2, 0.5)
    """Weight of one directional key light."""
    key_spread: float = 1.5
    """The key light comes from camera-frame direction (x, y, 1) (OpenGL: +z towards the viewer),
    x and y uniform in [-key_spread, key_spread]: up to about 65 degrees off the view axis."""


def random_lights(n: int, cfg: RelightConfig, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """n random lights: weights (n, 3) (ambient, head, key) and unit key directions (n, 3) in the
    camera frame (OpenGL axes: x right, y up, z towards the viewer)."""
    u = torch.rand(n, 5, generator=generator)
    ranges = torch.tensor([cfg.ambient, cfg.head, cfg.key])  # (3, 2)
    weights = ranges[:, 0] + (ranges[:, 1] - ranges[:, 0]) * u[:, :3]
    xy = (u[:, 3:] * 2 - 1) * cfg.key_spread
    dirs = F.normalize(torch.cat([xy, torch.ones(n, 1)], 1), dim=1)
    return weights, dirs


def shade(normals: Tensor, view_dirs: Tensor, fg: Tensor, weights: Tensor, key_dir: Tensor) -> Tensor:
    """Shading (H, W) in [0, 1] of unit normals (H, W, 3) seen along unit directions view_dirs
    (H, W, 3) pointing from the surface to the camera, under weights (3,) = (ambient, head, key)
    and a unit key-light direction key_dir (3,) (surface to light), all in one frame; 0 off fg (H, W).

    Normals are turned to face the camera first: `normals_from_points` leaves their sign arbitrary.
    """
    cos_v = (normals * view_dirs).sum(-1)
    n = normals * torch.where(cos_v < 0, -1.0, 1.0)[..., None]
    s = weights[0] + weights[1] * cos_v.abs() + weights[2] * (n @ key_dir.to(n)).clamp(min=0)
    return (s * fg).clamp(0, 1)


def normals_from_points(points: Tensor, fg: Tensor) -> Tensor:
    """Unit normals (H, W, 3) of a point map (H, W, 3) over fg (H, W), from its image-space
    gradients after a 3x3 blur inside fg; their sign is arbitrary (`shade` turns them).

    Why not the field's own normals: a density grid with no surface prior has a noisy gradient
    (measured: relit images from it were salt and pepper), while the rendered depth is smooth.
    Background pixels take the blurred average of their foreground neighbours, so the rim's
    differences do not reach into the background's depths.
    """
    k = torch.tensor([1.0, 2.0, 1.0], dtype=points.dtype, device=points.device)
    k = (k[:, None] * k[None, :] / 16).expand(3, 1, 3, 3)
    w = fg[None, None].to(points.dtype)
    p = points.permute(2, 0, 1)[None] * w
    num = F.conv2d(F.pad(p, (1, 1, 1, 1), mode="replicate"), k, groups=3)
    den = F.conv2d(F.pad(w, (1, 1, 1, 1), mode="replicate"), k[:1])
    P = (num / den.clamp(min=1e-6))[0].permute(1, 2, 0)
    dx, dy = torch.zeros_like(P), torch.zeros_like(P)
    dx[:, 1:-1], dy[1:-1] = P[:, 2:] - P[:, :-2], P[2:] - P[:-2]
    return F.normalize(torch.cross(dx, dy, dim=-1), dim=-1)


def relit(normals: Tensor, ray_dirs: Tensor, R_c2w: Tensor, fg: Tensor, mean_rgb: Tensor, weights: Tensor,
          key_dir_cam: Tensor) -> Tensor:
    """One relit image (H, W, 3) in [0, 1], black off fg (H, W).

    normals (H, W, 3) and ray_dirs (H, W, 3, camera to surface) are in the world frame; R_c2w (3, 3)
    turns the camera-frame key direction key_dir_cam (3,) into it. The albedo is chosen so the
    foreground's mean colour is mean_rgb (3,): the copies keep the photographs' overall tone, and
    the photometric augmentation varies it from there.
    """
    view = -F.normalize(ray_dirs, dim=-1)
    s = shade(F.normalize(normals, dim=-1), view, fg, weights.to(normals), R_c2w.to(normals) @ key_dir_cam.to(normals))
    mean_s = s[fg].mean().clamp(min=1e-3) if bool(fg.any()) else s.new_tensor(1.0)
    return (s[..., None] * (mean_rgb.to(s) / mean_s)).clamp(0, 1) * fg[..., None]
