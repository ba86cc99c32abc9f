"""The QPIC detector (method.md §1): backbone -> projection -> transformer -> shared heads."""

from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn

from hqm.models.backbone import Backbone
from hqm.models.position import PositionEmbeddingSine
from hqm.models.transformer import CrossAttnBias, Transformer


class MLP(nn.Module):
    """Linear layers with ReLU between them (DETR's box head); keys ``layers.{i}.*``."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int):
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(nn.Linear(n, k) for n, k in zip(dims, dims[1:] + [output_dim]))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < len(self.layers) - 1 else layer(x)
        return x


class Encoded(NamedTuple):
    """The encoder's output, shared by every decoder pass of one forward."""

    memory: Tensor  # [hw, B, d]
    memory_mask: Tensor  # Bool[B, hw], True on padding
    pos: Tensor  # [hw, B, d]


OUTPUT_KEYS = ("pred_obj_logits", "pred_verb_logits", "pred_sub_boxes", "pred_obj_boxes")


class TransformerDetector(nn.Module):
    """What QPIC and DETR share: backbone -> 1x1 projection -> encoder, and the decoder pass.

    Subclasses register ``backbone`` (a one-element ModuleList), ``position``, ``input_proj`` and
    ``transformer``; the heads are theirs.
    """

    def encode(self, images: Tensor, mask: Tensor) -> Encoded:
        """images [B, 3, H, W], mask Bool[B, H, W] (True = padding) -> :class:`Encoded`."""
        features, small_mask = self.backbone[0](images, mask)
        pos = self.position(small_mask).to(features.dtype).flatten(2).permute(2, 0, 1)
        src = self.input_proj(features).flatten(2).permute(2, 0, 1)
        memory_mask = small_mask.flatten(1)
        return Encoded(self.transformer.encode(src, memory_mask, pos), memory_mask, pos)

    def decode(
        self,
        encoded: Encoded,
        query_pos: Tensor,
        tgt_key_padding_mask: Tensor | None = None,
        cross_attn_bias: CrossAttnBias | None = None,
        record_cross_logits: bool = False,
        apply_final_norm: bool = True,
    ) -> tuple[Tensor, list[Tensor] | None]:
        """query_pos [Nq, B, d] (content queries are zeros) ->
        (hs [L, B, Nq, d], per-layer cross-attention logits [B*nheads, Nq, hw] or None).

        ``cross_attn_bias(layer)`` returns an additive bias on that layer's scaled cross-attention
        logits (``-inf`` masks a key) or None; the recorded logits are those entering the softmax,
        padded keys at -inf, detached.
        """
        return self.transformer.decode(
            encoded.memory, encoded.memory_mask, encoded.pos, query_pos,
            tgt_key_padding_mask=tgt_key_padding_mask, cross_attn_bias=cross_attn_bias,
            record_cross_logits=record_cross_logits, apply_final_norm=apply_final_norm,
        )


class QPIC(TransformerDetector):
    """QPIC (Tamura et al. 2021). State-dict keys equal the published ``DETRHOI``'s.

    ``backbone`` is a one-element ModuleList so its keys read ``backbone.0.body.*`` as upstream
    (where index 1 is the parameter-free position encoding).
    """

    def __init__(self, backbone: Backbone, transformer: Transformer, num_obj_classes: int,
                 num_verb_classes: int, num_queries: int = 100, aux_loss: bool = True):
        super().__init__()
        d = transformer.d_model
        self.num_queries = num_queries
        self.aux_loss = aux_loss
        self.num_obj_classes = num_obj_classes
        self.num_verb_classes = num_verb_classes
        self.transformer = transformer
        self.query_embed = nn.Embedding(num_queries, d)
        self.obj_class_embed = nn.Linear(d, num_obj_classes + 1)
        self.verb_class_embed = nn.Linear(d, num_verb_classes)
        self.sub_bbox_embed = MLP(d, d, 4, 3)
        self.obj_bbox_embed = MLP(d, d, 4, 3)
        self.input_proj = nn.Conv2d(backbone.num_channels, d, kernel_size=1)
        self.backbone = nn.ModuleList([backbone])
        self.position = PositionEmbeddingSine(d // 2)

    def heads(self, hs: Tensor) -> dict[str, Tensor]:
        """hs [..., Nq, d] -> the four prediction tensors with the same leading dims."""
        return {
            "pred_obj_logits": self.obj_class_embed(hs),
            "pred_verb_logits": self.verb_class_embed(hs),
            "pred_sub_boxes": self.sub_bbox_embed(hs).sigmoid(),
            "pred_obj_boxes": self.obj_bbox_embed(hs).sigmoid(),
        }

    def predict(self, hs: Tensor) -> dict[str, Tensor]:
        """hs [L, B, Nq, d] -> final-layer outputs plus ``aux_outputs`` (layers 0..L-2) if aux_loss."""
        per_layer = self.heads(hs)
        out = {key: value[-1] for key, value in per_layer.items()}
        if self.aux_loss:
            out["aux_outputs"] = [
                {key: value[i] for key, value in per_layer.items()} for i in range(hs.shape[0] - 1)
            ]
        return out

    def forward(self, images: Tensor, mask: Tensor, targets=None, hard_stream=None) -> dict:
        """images [B, 3, H, W], mask Bool[B, H, W] -> outputs dict (``targets``/``hard_stream`` unused)."""
        encoded = self.encode(images, mask)
        batch = images.shape[0]
        query_pos = self.query_embed.weight.unsqueeze(1).expand(-1, batch, -1)
        hs, _ = self.decode(encoded, query_pos)
        return self.predict(hs)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(all parameters, trainable parameters)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


__all__ = ["MLP", "QPIC", "TransformerDetector", "Encoded", "OUTPUT_KEYS", "count_parameters"]
