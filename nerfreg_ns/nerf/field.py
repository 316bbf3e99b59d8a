"""A compact object field for the CPU: dense grids inside the hull box and one small MLP.

Density lives on a fine single-channel grid (geometry needs the resolution); appearance on a
coarser multi-channel grid read by a tiny view-dependent MLP (the texture-less object's shading
depends on the light, which moves with the camera). Positions are normalised to the hull box.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sample_grid(grid: Tensor, x_unit: Tensor) -> Tensor:
    """Trilinear values (N, C) of a grid (1, C, D, H, W) at points (N, 3) in [-1, 1] (x, y, z).

    On the CPU the points are split into one batch per thread: grid_sample parallelises over
    the batch only, so one batch would use one core.
    """
    n, c = len(x_unit), grid.shape[1]
    parts = torch.get_num_threads() if x_unit.device.type == "cpu" else 1
    if parts < 2 or n < 4096 or n % parts:
        parts = 1
    out = F.grid_sample(grid.expand(parts, -1, -1, -1, -1), x_unit.view(parts, -1, 1, 1, 3), mode="bilinear", align_corners=True)
    return out.view(parts, c, -1).permute(0, 2, 1).reshape(n, c)


def sh_deg2(d: Tensor) -> Tensor:
    """Real spherical harmonics up to degree 2 (N, 9) of unit directions (N, 3)."""
    x, y, z = d.unbind(-1)
    return torch.stack(
        [torch.ones_like(x), y, z, x, x * y, y * z, 3 * z * z - 1, x * z, x * x - y * y], -1
    )


class GridField(nn.Module):
    """Density grid (res^3), appearance grid (app_res^3 x app_dim), colour MLP."""

    def __init__(self, occupancy: Tensor, res: int, app_res: int, app_dim: int, hidden: int, init_inside: float = -1.0,
                 shading: str = "view") -> None:
        super().__init__()
        self.shading = shading
        # [x, y, z] occupancy -> grid_sample's [z, y, x] layout; start half-transparent inside
        # the hull so the shell the silhouettes cannot carve is easy to empty
        init = torch.where(occupancy.permute(2, 1, 0), init_inside, -6.0)
        if init.shape[0] != res:
            init = F.interpolate(init[None, None], size=(res,) * 3, mode="trilinear", align_corners=True)[0, 0]
        self.density = nn.Parameter(init[None, None].contiguous())
        self.app = nn.Parameter(torch.randn(1, app_dim, app_res, app_res, app_res) * 0.1)
        self.color_mlp = nn.Sequential(
            nn.Linear(app_dim + (9 if shading == "view" else 3), hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 3)
        )

    def density_at(self, x_unit: Tensor) -> Tensor:
        """Density (N,) per voxel length at points (N, 3) in [-1, 1]."""
        return F.softplus(sample_grid(self.density, x_unit)[:, 0])

    def color_at(self, x_unit: Tensor, dirs: Tensor) -> Tensor:
        """RGB (N, 3) in [0, 1] at points (N, 3) seen along unit directions (N, 3) (view
        shading), or with their unit normals in the camera frame (N, 3) (camera-normal shading)."""
        feat = sample_grid(self.app, x_unit)
        cond = sh_deg2(dirs) if self.shading == "view" else dirs
        return torch.sigmoid(self.color_mlp(torch.cat([feat, cond], -1)))

    def normals_at(self, x_unit: Tensor, eps: float) -> Tensor:
        """Outward unit normals (N, 3): minus the density gradient, by central differences."""
        offsets = torch.eye(3, device=x_unit.device) * eps
        grads = [
            self.density_at(x_unit + o) - self.density_at(x_unit - o) for o in offsets
        ]
        return -F.normalize(torch.stack(grads, -1), dim=-1)

    def tv_loss(self, n: int) -> Tensor:
        """Total variation of the density grid on n random voxels (smooth, not noisy, surfaces)."""
        g = self.density[0, 0]
        r = g.shape[0] - 1
        idx = torch.randint(0, r, (n, 3), device=g.device)
        c = g[idx[:, 0], idx[:, 1], idx[:, 2]]
        dz = g[idx[:, 0] + 1, idx[:, 1], idx[:, 2]] - c
        dy = g[idx[:, 0], idx[:, 1] + 1, idx[:, 2]] - c
        dx = g[idx[:, 0], idx[:, 1], idx[:, 2] + 1] - c
        return (dx.square() + dy.square() + dz.square()).mean()
