"""Per-pixel query encoder: a small U-Net producing embeddings and a foreground mask logit."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups (BatchNorm is unreliable with the tiny batches used here)."""
    return nn.GroupNorm(math.gcd(channels, 8), channels)


class ConvBlock(nn.Sequential):
    """Two 3x3 conv + GroupNorm + ReLU layers: (B, c_in, H, W) -> (B, c_out, H, W)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1), _norm(c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1), _norm(c_out), nn.ReLU(inplace=True),
        )


class QueryEncoder(nn.Module):
    """U-Net with one level per entry of `channels`; outputs queries (B, E, H, W) and a mask logit (B, 1, H, W)."""

    def __init__(self, emb_dim: int = 12, channels: tuple[int, ...] = (16, 32, 64)) -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels must have at least one level")
        self.emb_dim = emb_dim
        self.channels = tuple(channels)
        ins = (3, *self.channels[:-1])
        self.down = nn.ModuleList(ConvBlock(i, o) for i, o in zip(ins, self.channels))
        # Decoder level i fuses the upsampled level i+1 with the skip from encoder level i.
        self.up = nn.ModuleList(ConvBlock(self.channels[i + 1] + self.channels[i], self.channels[i])
                                for i in range(len(self.channels) - 1))
        self.head = nn.Conv2d(self.channels[0], emb_dim + 1, 1)
        # He init: PyTorch's default shrinks activations layer by layer, so at init the queries barely
        # depend on the image and InfoNCE sits on a long plateau.
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m is not self.head:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    @property
    def multiple(self) -> int:
        """Side lengths must be divisible by this for the pooling pyramid to line up."""
        return 2 ** (len(self.channels) - 1)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Images (B, 3, H, W) in [0, 1] -> (queries (B, E, H, W), mask logits (B, 1, H, W)); any H, W."""
        H, W = images.shape[-2:]
        m = self.multiple
        pad_h, pad_w = (-H) % m, (-W) % m
        # Replicate padding avoids a fake dark border; the padding is cropped off at the end.
        x = F.pad(images - 0.5, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else images - 0.5
        skips = []
        for i, block in enumerate(self.down):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        for i in reversed(range(len(self.up))):
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = self.up[i](torch.cat([x, skips[i]], dim=1))
        out = self.head(x)[..., :H, :W]
        return out[:, : self.emb_dim], out[:, self.emb_dim:]
