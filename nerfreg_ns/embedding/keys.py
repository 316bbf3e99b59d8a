"""Key head: maps normalised 3D surface points to key embeddings."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def fourier_features(points: Tensor, freqs: Tensor) -> Tensor:
    """Points (N, 3), freqs (F,) -> [x, sin(f x), cos(f x)] of shape (N, 3 + 6F)."""
    angles = (points[:, :, None] * freqs).flatten(1)  # (N, 3F)
    return torch.cat([points, angles.sin(), angles.cos()], dim=1)


class KeyHead(nn.Module):
    """Fourier features of points in roughly [-1, 1]^3 followed by a ReLU MLP: (N, 3) -> (N, E).

    `layers` is the number of hidden layers of width `hidden`; a linear layer then gives the keys.
    """

    def __init__(self, emb_dim: int = 12, n_freqs: int = 6, hidden: int = 64, layers: int = 3) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError("layers must be >= 1")
        self.emb_dim = emb_dim
        self.register_buffer("freqs", (2.0 ** torch.arange(n_freqs, dtype=torch.float32)) * math.pi)
        mods: list[nn.Module] = []
        d = 3 + 6 * n_freqs
        for _ in range(layers):
            mods += [nn.Linear(d, hidden), nn.ReLU(inplace=True)]
            d = hidden
        # He init on the ReLU layers keeps key variation across points from vanishing with depth
        # (PyTorch's default shrinks it), which shortens the initial InfoNCE plateau.
        for m in mods:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        mods.append(nn.Linear(d, emb_dim))
        self.mlp = nn.Sequential(*mods)

    def forward(self, points_unit: Tensor) -> Tensor:
        """Normalised points (N, 3) -> keys (N, E)."""
        return self.mlp(fourier_features(points_unit, self.freqs))
