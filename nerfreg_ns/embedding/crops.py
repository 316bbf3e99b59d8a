"""Square crops around the object, resized to the query encoder's input size, optionally turned.

The encoder sees the object at a fixed scale whatever the camera distance or image size; the
crop box maps crop pixels back to image pixels for PnP. Pixel (i, j) covers [j, j+1) x [i, i+1).
A crop turned by `angle` samples the image along axes rotated by `angle` radians about the box
centre (x right, y down in pixels), so test-time rotation needs no resampling of the outputs:
crop pixel (i, j) of any turned crop maps back through `crop_to_image_pixels` with the same angle.
"""

from __future__ import annotations

import math

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


def _image_xy(rows: Tensor, cols: Tensor, box: tuple[float, float, float], size: int, angle: float) -> tuple[Tensor, Tensor]:
    """Image coordinates (x, y) of crop pixel centres at `rows`, `cols` (any equal shapes)."""
    x0, y0, side = box
    s = side / size
    dx, dy = (cols + 0.5) * s - side / 2, (rows + 0.5) * s - side / 2  # offsets from the box centre
    c, si = math.cos(angle), math.sin(angle)
    return x0 + side / 2 + c * dx - si * dy, y0 + side / 2 + si * dx + c * dy


def crop(image: Tensor, box: tuple[float, float, float], size: int, mode: str = "bilinear", angle: float = 0.0) -> Tensor:
    """Crops a (C, H, W) tensor to `box`, turned by `angle`, resized to (C, size, size); outside is zero."""
    _, h, w = image.shape
    ar = torch.arange(size, dtype=torch.float32, device=image.device)
    rows, cols = torch.meshgrid(ar, ar, indexing="ij")
    x, y = _image_xy(rows, cols, box, size, angle)
    grid = torch.stack([x / w * 2 - 1, y / h * 2 - 1], -1)[None]
    return F.grid_sample(image[None].float(), grid, mode=mode, padding_mode="zeros", align_corners=False)[0]


def crop_to_image_pixels(ij: Tensor, box: tuple[float, float, float], size: int, angle: float = 0.0) -> Tensor:
    """Image coordinates (N, 2) as (u, v), pixel centres at +0.5, of crop pixels ij (N, 2) (row, col)."""
    x, y = _image_xy(ij[:, 0].float(), ij[:, 1].float(), box, size, angle)
    return torch.stack([x, y], -1)
