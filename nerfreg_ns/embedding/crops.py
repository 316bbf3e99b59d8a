"""Square crops around the object, resized to the query encoder's input size.

The encoder sees the object at a fixed scale whatever the camera distance or image size; the
crop box maps crop pixels back to image pixels for PnP. Pixel (i, j) covers [j, j+1) x [i, i+1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def square_box(mask: Tensor, margin: float = 0.15) -> tuple[float, float, float]:
    """(x0, y0, side) of a square around a mask (H, W) bool, grown by `margin` of its size."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    if len(xs) == 0:
        h, w = mask.shape
        return 0.0, 0.0, float(max(h, w))
    x0, x1 = float(xs.min()), float(xs.max()) + 1
    y0, y1 = float(ys.min()), float(ys.max()) + 1
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return cx - side / 2, cy - side / 2, side


def crop(image: Tensor, box: tuple[float, float, float], size: int, mode: str = "bilinear") -> Tensor:
    """Crops a (C, H, W) tensor to `box` and resizes it to (C, size, size); outside is zero."""
    _, h, w = image.shape
    x0, y0, side = box
    centres = (torch.arange(size, dtype=torch.float32, device=image.device) + 0.5) * side / size
    gx = (x0 + centres) / w * 2 - 1
    gy = (y0 + centres) / h * 2 - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], -1)[None]
    return F.grid_sample(image[None].float(), grid, mode=mode, padding_mode="zeros", align_corners=False)[0]


def crop_to_image_pixels(ij: Tensor, box: tuple[float, float, float], size: int) -> Tensor:
    """Image coordinates (N, 2) as (u, v), pixel centres at +0.5, of crop pixels ij (N, 2) (row, col)."""
    x0, y0, side = box
    s = side / size
    return torch.stack([x0 + (ij[:, 1].float() + 0.5) * s, y0 + (ij[:, 0].float() + 0.5) * s], -1)
