"""DETR's post-norm encoder-decoder (method.md §1.5) with the hooks HQM needs.

Sequence-first layout as DETR: tokens ``[S, B, d]``. The attention keeps
``nn.MultiheadAttention``'s parameter names (``in_proj_weight`` rows [q; k; v], ``in_proj_bias``,
``out_proj``) so state dicts match the published checkpoints, but it can also take an additive
per-head bias on its logits and return the per-head pre-softmax logits (AMM, method.md §8.3).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CrossAttnBias = Callable[[int], Tensor | None]


class MultiheadAttention(nn.Module):
    """Multi-head attention with ``nn.MultiheadAttention``'s parameters and math.

    The fused path (``scaled_dot_product_attention``) is used unless logits are requested; the
    explicit path computes q·kᵀ/√d_head + masks, softmax, dropout, ·v with identical math.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim))
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj.bias)

    def _project(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        d = self.embed_dim
        w, b = self.in_proj_weight, self.in_proj_bias
        if query is key:  # self-attention: one matmul for q and k
            q, k = F.linear(query, w[: 2 * d], b[: 2 * d]).chunk(2, dim=-1)
        else:
            q = F.linear(query, w[:d], b[:d])
            k = F.linear(key, w[d : 2 * d], b[d : 2 * d])
        v = F.linear(value, w[2 * d :], b[2 * d :])
        return q, k, v

    def _heads(self, x: Tensor) -> Tensor:
        """[S, B, d] -> [B, h, S, d_head]."""
        seq, batch, _ = x.shape
        return x.view(seq, batch, self.num_heads, self.head_dim).permute(1, 2, 0, 3)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        attn_bias: Tensor | None = None,
        return_logits: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """query [L, B, d], key/value [S, B, d], key_padding_mask Bool[B, S] (True = ignore),
        attn_bias Float[B*h, L, S] added to the scaled logits (may hold -inf).

        Returns (output [L, B, d], logits [B*h, L, S] detached, pre-softmax, or None).
        """
        length, batch, _ = query.shape
        q, k, v = self._project(query, key, value)
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        src_len = k.shape[2]
        mask = None
        if key_padding_mask is not None:
            mask = torch.zeros(batch, 1, 1, src_len, dtype=q.dtype, device=q.device)
            mask = mask.masked_fill(key_padding_mask.view(batch, 1, 1, src_len), float("-inf"))
        if attn_bias is not None:
            bias = attn_bias.view(batch, self.num_heads, length, src_len).to(q.dtype)
            mask = bias if mask is None else mask + bias
        dropout = self.dropout if self.training else 0.0
        logits = None
        if return_logits:
            scores = torch.matmul(q * self.head_dim**-0.5, k.transpose(-2, -1))
            if mask is not None:
                scores = scores + mask
            logits = scores.detach().reshape(batch * self.num_heads, length, src_len)
            attn = F.dropout(scores.softmax(dim=-1), p=dropout, training=dropout > 0)
            out = torch.matmul(attn, v)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        out = out.permute(2, 0, 1, 3).reshape(length, batch, self.embed_dim)
        return self.out_proj(out), logits


class EncoderLayer(nn.Module):
    """Post-norm: x = LN1(x + drop(SA(x+pos, x+pos, x))); x = LN2(x + drop(FFN(x)))."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, src: Tensor, key_padding_mask: Tensor | None, pos: Tensor) -> Tensor:
        qk = src + pos
        src = self.norm1(src + self.dropout1(self.self_attn(qk, qk, src, key_padding_mask)[0]))
        ffn = self.linear2(self.dropout(F.relu(self.linear1(src))))
        return self.norm2(src + self.dropout2(ffn))


class DecoderLayer(nn.Module):
    """Post-norm: self-attention, cross-attention to the memory, FFN; positions re-added each layer."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        memory_key_padding_mask: Tensor | None,
        pos: Tensor,
        query_pos: Tensor,
        tgt_key_padding_mask: Tensor | None = None,
        cross_attn_bias: Tensor | None = None,
        return_logits: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """tgt/query_pos [Nq, B, d], memory/pos [hw, B, d] -> ([Nq, B, d], cross logits | None)."""
        qk = tgt + query_pos
        tgt = self.norm1(tgt + self.dropout1(self.self_attn(qk, qk, tgt, tgt_key_padding_mask)[0]))
        attended, logits = self.multihead_attn(
            tgt + query_pos, memory + pos, memory, memory_key_padding_mask, cross_attn_bias, return_logits
        )
        tgt = self.norm2(tgt + self.dropout2(attended))
        ffn = self.linear2(self.dropout(F.relu(self.linear1(tgt))))
        return self.norm3(tgt + self.dropout3(ffn)), logits


def _clones(module: nn.Module, n: int) -> nn.ModuleList:
    return nn.ModuleList(copy.deepcopy(module) for _ in range(n))


class Encoder(nn.Module):
    def __init__(self, layer: EncoderLayer, num_layers: int):
        super().__init__()
        self.layers = _clones(layer, num_layers)

    def forward(self, src: Tensor, key_padding_mask: Tensor | None, pos: Tensor) -> Tensor:
        for layer in self.layers:
            src = layer(src, key_padding_mask, pos)
        return src


class Decoder(nn.Module):
    """Returns every layer's output (intermediate outputs), through ``norm`` unless told not to."""

    def __init__(self, layer: DecoderLayer, num_layers: int, d_model: int):
        super().__init__()
        self.layers = _clones(layer, num_layers)
        self.norm = nn.LayerNorm(d_model)

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        memory_key_padding_mask: Tensor | None,
        pos: Tensor,
        query_pos: Tensor,
        tgt_key_padding_mask: Tensor | None = None,
        cross_attn_bias: CrossAttnBias | None = None,
        record_cross_logits: bool = False,
        apply_final_norm: bool = True,
    ) -> tuple[Tensor, list[Tensor] | None]:
        """-> (hs [L, Nq, B, d], per-layer cross logits [B*h, Nq, hw] or None)."""
        outputs, all_logits = [], [] if record_cross_logits else None
        out = tgt
        for index, layer in enumerate(self.layers):
            bias = cross_attn_bias(index) if cross_attn_bias is not None else None
            out, logits = layer(out, memory, memory_key_padding_mask, pos, query_pos,
                                tgt_key_padding_mask, bias, record_cross_logits)
            outputs.append(self.norm(out) if apply_final_norm else out)
            if record_cross_logits:
                all_logits.append(logits)
        return torch.stack(outputs), all_logits


class Transformer(nn.Module):
    """Encoder + decoder; all sizes are arguments. Matrices get xavier_uniform_ (DETR init)."""

    def __init__(self, d_model: int = 256, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048, dropout: float = 0.1):
        super().__init__()
        self.encoder = Encoder(EncoderLayer(d_model, nhead, dim_feedforward, dropout), num_encoder_layers)
        self.decoder = Decoder(DecoderLayer(d_model, nhead, dim_feedforward, dropout), num_decoder_layers, d_model)
        self.d_model = d_model
        self.nhead = nhead
        for param in self.parameters():
            if param.dim() > 1:
                nn.init.xavier_uniform_(param)

    def encode(self, src: Tensor, mask: Tensor, pos: Tensor) -> Tensor:
        """src [hw, B, d], mask Bool[B, hw], pos [hw, B, d] -> memory [hw, B, d]."""
        return self.encoder(src, mask, pos)

    def decode(self, memory: Tensor, mask: Tensor, pos: Tensor, query_pos: Tensor, **options) -> tuple[Tensor, list[Tensor] | None]:
        """query_pos [Nq, B, d] (content = zeros) -> (hs [L, B, Nq, d], cross logits | None)."""
        tgt = torch.zeros_like(query_pos)
        hs, logits = self.decoder(tgt, memory, mask, pos, query_pos, **options)
        return hs.transpose(1, 2), logits


def build_transformer(hidden_dim: int, nheads: int, enc_layers: int, dec_layers: int,
                      dim_feedforward: int, dropout: float) -> Transformer:
    return Transformer(hidden_dim, nheads, enc_layers, dec_layers, dim_feedforward, dropout)
