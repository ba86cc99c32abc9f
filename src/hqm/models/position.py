"""Sine positional encoding of the C5 grid (method.md §1.3; DETR's ``PositionEmbeddingSine``)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class PositionEmbeddingSine(nn.Module):
    """Parameter-free 2-D sine encoding with normalised cumulative coordinates.

    ``num_pos_feats`` features per axis; the output has ``2 * num_pos_feats`` channels,
    concat(pos_y, pos_x), each interleaved (sin, cos, sin, cos, ...).
    """

    def __init__(self, num_pos_feats: int = 128, temperature: float = 10000.0, eps: float = 1e-6):
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.eps = eps
        self.scale = 2 * math.pi

    def forward(self, mask: Tensor) -> Tensor:
        """mask Bool[B, h, w] (True = padding) -> Float[B, 2F, h, w]."""
        not_mask = ~mask
        y_embed = not_mask.cumsum(1, dtype=torch.float32)
        x_embed = not_mask.cumsum(2, dtype=torch.float32)
        y_embed = y_embed / (y_embed[:, -1:, :] + self.eps) * self.scale
        x_embed = x_embed / (x_embed[:, :, -1:] + self.eps) * self.scale
        dim_t = torch.arange(self.num_pos_feats, dtype=torch.float32, device=mask.device)
        dim_t = self.temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / self.num_pos_feats)
        pos_x = x_embed[..., None] / dim_t
        pos_y = y_embed[..., None] / dim_t
        pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=4).flatten(3)
        pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=4).flatten(3)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)

