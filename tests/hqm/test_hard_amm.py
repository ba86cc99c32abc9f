"""AMM masking (method.md §8.3): exactly the chosen ranks, rank draws, fused-attention integration."""

from __future__ import annotations

import math

import torch

from hqm.config import AMMConfig
from hqm.models import amm
from hqm.models.transformer import MultiheadAttention

torch.set_num_threads(1)


def _naive_mask(logits: torch.Tensor, ranks_per_row) -> torch.Tensor:
    """Loop reference: True at the keys holding the given ranks of each row's descending order."""
    rows, nq, hw = logits.shape
    out = torch.zeros(rows, nq, hw, dtype=torch.bool)
    for r in range(rows):
        for q in range(nq):
            order = sorted(range(hw), key=lambda j: -logits[r, q, j].item())
            for rank in ranks_per_row(r, q):
                out[r, q, order[rank]] = True
    return out


def test_shared_ranks_mask_exactly_those_keys():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 5, 30, generator=g)  # distinct values: ranks are unambiguous
    ranks = torch.tensor([0, 3, 7, 11])
    bias = amm.rank_mask_bias(logits, ranks, top_k=12)
    expected = _naive_mask(logits, lambda r, q: ranks.tolist())
    assert torch.equal(torch.isinf(bias), expected)
    assert (bias[expected] == float("-inf")).all() and (bias[~expected] == 0).all()


def test_per_row_ranks_mask_exactly_those_keys():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 3, 20, generator=g)
    cfg = AMMConfig(top_k=10, mask_ratio=0.3, rank_sharing="row")
    ranks = amm.draw_ranks(cfg, num_layers=1, hw=20, rows=(4, 3), generator=g)[0]
    assert ranks.shape == (4, 3, 3)
    bias = amm.rank_mask_bias(logits, ranks, top_k=10)
    expected = _naive_mask(logits, lambda r, q: ranks[r, q].tolist())
    assert torch.equal(torch.isinf(bias), expected)


def test_rank_draws_are_uniform_subsets_redrawn_per_layer():
    cfg = AMMConfig()  # K 100, ratio 0.4 -> 40 ranks
    g = torch.Generator().manual_seed(2)
    ranks = amm.draw_ranks(cfg, num_layers=6, hw=300, rows=None, generator=g)
    assert ranks.shape == (6, 40)
    assert all(len(set(layer.tolist())) == 40 for layer in ranks)
    assert ranks.min() >= 0 and ranks.max() < 100
    assert len({tuple(sorted(layer.tolist())) for layer in ranks}) == 6
    many = amm.draw_ranks(cfg, num_layers=2000, hw=300, rows=None, generator=g)
    freq = torch.bincount(many.flatten(), minlength=100).double() / 2000
    assert (freq - 0.4).abs().max() < 4.5 * math.sqrt(0.4 * 0.6 / 2000)


def test_small_maps_clip_k_and_keep_a_finite_key():
    assert amm.masked_rank_count(100, 0.4, 300) == (100, 40)
    assert amm.masked_rank_count(100, 0.4, 12) == (12, 4)
    assert amm.masked_rank_count(100, 0.29, 300) == (100, 29)
    # Row 0: 2 valid keys of 6; masking ranks {0, 1} would hide both -> the row stays unmasked.
    logits = torch.tensor([[[3.0, 1.0] + [float("-inf")] * 4, [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]]])
    bias = amm.rank_mask_bias(logits, torch.tensor([0, 1]), top_k=100)
    assert torch.equal(bias[0, 0], torch.zeros(6))
    assert torch.isinf(bias[0, 1]).tolist() == [True, True, False, False, False, False]


def test_bias_in_fused_attention_renormalises_over_the_other_keys():
    torch.manual_seed(0)
    attn = MultiheadAttention(16, 2, dropout=0.0).eval()
    query, memory = torch.randn(5, 3, 16), torch.randn(9, 3, 16)
    padding = torch.zeros(3, 9, dtype=torch.bool)
    padding[1, -2:] = True
    _, logits = attn(query, memory, memory, padding, return_logits=True)
    bias = amm.build_amm_bias([logits], AMMConfig(top_k=6, mask_ratio=0.5), torch.Generator().manual_seed(3))(0)
    assert torch.isinf(bias).sum() == 6 * 5 * 3  # 3 ranks x 5 queries x (3 images x 2 heads)
    out, _ = attn(query, memory, memory, padding, attn_bias=bias)
    # Reference: softmax over the unmasked logits, then values, then the output projection.
    d = attn.embed_dim
    v = torch.nn.functional.linear(memory, attn.in_proj_weight[2 * d:], attn.in_proj_bias[2 * d:])
    v = v.view(9, 3, 2, 8).permute(1, 2, 0, 3)  # [B, h, S, dh]
    weights = (logits + bias).view(3, 2, 5, 9).softmax(-1)
    ref = attn.out_proj((weights @ v).permute(2, 0, 1, 3).reshape(5, 3, d))
    assert torch.allclose(out, ref, atol=1e-5)
    assert torch.isfinite(out).all()
