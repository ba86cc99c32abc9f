"""AMM: attention map masking (method.md §8.3) as additive cross-attention biases.

The learnable decoder pass records every layer's per-head, scaled, pre-softmax cross-attention
logits ``A^l [B*nheads, Nq, hw]`` (detached). The AMM copies of the learnable queries run a second
decoder pass in which layer l adds a bias of -inf at the keys holding ``n_mask`` randomly chosen
ranks among the top-K entries of ``A^l`` (per row), and 0 elsewhere, so the remaining attention
renormalises. The bias enters the same fused attention call as the learnable stream.

Rules for small feature maps (documented choice; training resolutions have hw >= 100):

* K is clipped to hw: ``k = min(top_k, hw)``, ``n_mask = floor(mask_ratio * k)``, ranks drawn
  from 0..k-1. Padded keys (logit -inf) rank last; masking one of them changes nothing.
* A row whose every finite logit would be masked (an image with fewer than ``n_mask + 1`` valid
  keys) is left unmasked rather than turned into a softmax over -inf only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from hqm.config import AMMConfig


def masked_rank_count(top_k: int, mask_ratio: float, hw: int) -> tuple[int, int]:
    """(k, n_mask) for a memory of ``hw`` keys: k = min(top_k, hw), n_mask = floor(ratio * k)."""
    k = min(top_k, hw)
    return k, int(math.floor(mask_ratio * k + 1e-9))  # 1e-9: 0.29 * 100 must give 29, not 28


def draw_ranks(
    cfg: AMMConfig, num_layers: int, hw: int, rows: tuple[int, int] | None, generator: torch.Generator
) -> Tensor:
    """Random rank subsets for one AMM pass, uniform without replacement (CPU generator).

    ``rank_sharing == "layer"`` (upstream): one subset per layer call, shared by every image, head
    and query -> ``LongTensor[L, n_mask]``. ``"row"``: one subset per (image*head, query) row, with
    ``rows = (B*nheads, Nq)`` -> ``LongTensor[L, B*nheads, Nq, n_mask]``.
    """
    k, n_mask = masked_rank_count(cfg.top_k, cfg.mask_ratio, hw)
    shape = (num_layers, k) if cfg.rank_sharing == "layer" else (num_layers, *rows, k)
    # The n_mask smallest of k iid uniforms form a uniform random n_mask-subset.
    return torch.rand(shape, generator=generator).argsort(-1)[..., :n_mask]


def rank_mask_bias(logits: Tensor, ranks: Tensor, top_k: int) -> Tensor:
    """Additive bias that hides the chosen top-K ranks of every row of ``logits``.

    ``logits [R, Nq, hw]`` (pre-softmax, padded keys -inf); ``ranks`` ``LongTensor[n_mask]``
    (shared by all rows) or ``[R, Nq, n_mask]`` (per row), values in [0, min(top_k, hw)).
    Returns a float tensor like ``logits`` that is -inf at the masked keys and 0 elsewhere.
    """
    k = min(top_k, logits.shape[-1])
    values, top = logits.topk(k, dim=-1, sorted=True)  # [R, Nq, k], rank 0 = largest logit
    ranks = ranks.to(top.device)
    if ranks.dim() == 1:
        keys = top[..., ranks]
        chosen = torch.zeros(k, dtype=torch.bool, device=top.device).index_fill_(0, ranks, True)
    else:
        keys = top.gather(-1, ranks)
        chosen = torch.zeros_like(top, dtype=torch.bool).scatter_(-1, ranks, True)
    # Finite logits rank first, and some rank < k is never chosen (n_mask < k): a row keeps a
    # finite key iff one of its unchosen top-k ranks is finite. Rows that would lose every
    # finite key (tiny images) stay unmasked.
    survives = (torch.isfinite(values) & ~chosen).any(-1, keepdim=True)
    fill = torch.where(survives, float("-inf"), 0.0).to(logits.dtype).expand_as(keys)
    return torch.zeros_like(logits).scatter_(-1, keys, fill)


def build_amm_bias(
    recorded: list[Tensor], cfg: AMMConfig, generator: torch.Generator
) -> Callable[[int], Tensor]:
    """``cross_attn_bias`` callable for ``QPIC.decode``: layer index -> ``[B*nheads, Nq, hw]`` bias.

    ``recorded`` are the learnable pass's per-layer logits (list over layers). All ranks of the
    pass are drawn up front, so the generator advances the same way whatever the call order.
    """
    rows, hw = tuple(recorded[0].shape[:2]), recorded[0].shape[-1]
    ranks = draw_ranks(cfg, len(recorded), hw, rows, generator)

    def bias(layer: int) -> Tensor:
        return rank_mask_bias(recorded[layer], ranks[layer], cfg.top_k)

    return bias
