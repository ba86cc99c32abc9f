import torch
import torch.nn.functional as F
from torch import nn

from hqm.models.transformer import DecoderLayer, EncoderLayer, MultiheadAttention, Transformer


def _reference_mha(ours: MultiheadAttention) -> nn.MultiheadAttention:
    ref = nn.MultiheadAttention(ours.embed_dim, ours.num_heads, dropout=ours.dropout)
    ref.load_state_dict(ours.state_dict())
    return ref.eval()


def test_attention_matches_torch_multihead_attention_with_padding():
    mha = MultiheadAttention(16, 4).eval()
    q, kv = torch.randn(5, 2, 16), torch.randn(7, 2, 16)
    pad = torch.zeros(2, 7, dtype=torch.bool)
    pad[1, 4:] = True
    ref_out, _ = _reference_mha(mha)(q, kv, kv, key_padding_mask=pad)
    fused, none = mha(q, kv, kv, pad)
    explicit, logits = mha(q, kv, kv, pad, return_logits=True)
    assert none is None
    torch.testing.assert_close(fused, ref_out, atol=1e-5, rtol=0)
    torch.testing.assert_close(explicit, fused, atol=1e-5, rtol=0)
    assert logits.shape == (2 * 4, 5, 7)
    assert torch.isinf(logits.view(2, 4, 5, 7)[1, :, :, 4:]).all()
    assert torch.isfinite(logits.view(2, 4, 5, 7)[0]).all()


def test_attention_logits_are_scaled_pre_softmax_scores():
    mha = MultiheadAttention(8, 2).eval()
    q, kv = torch.randn(3, 1, 8), torch.randn(4, 1, 8)
    _, logits = mha(q, kv, kv, return_logits=True)
    w, b = mha.in_proj_weight, mha.in_proj_bias
    qh = F.linear(q, w[:8], b[:8]).view(3, 2, 4).transpose(0, 1)
    kh = F.linear(kv, w[8:16], b[8:16]).view(4, 2, 4).transpose(0, 1)
    expected = qh @ kh.transpose(1, 2) / 2.0  # head dim 4 -> scale 1/2
    torch.testing.assert_close(logits, expected, atol=1e-6, rtol=0)


def test_attention_bias_masks_keys_in_both_paths():
    mha = MultiheadAttention(8, 2).eval()
    q, kv = torch.randn(3, 2, 8), torch.randn(6, 2, 8)
    bias = torch.zeros(2 * 2, 3, 6)
    bias[:, :, 2:] = float("-inf")  # only keys 0, 1 remain
    fused, _ = mha(q, kv, kv, attn_bias=bias)
    explicit, logits = mha(q, kv, kv, attn_bias=bias, return_logits=True)
    reduced, _ = mha(q, kv[:2], kv[:2])
    torch.testing.assert_close(fused, reduced, atol=1e-5, rtol=0)
    torch.testing.assert_close(explicit, reduced, atol=1e-5, rtol=0)
    assert torch.isinf(logits[:, :, 2:]).all()


def test_self_attention_padding_mask_isolates_queries():
    mha = MultiheadAttention(8, 2).eval()
    x = torch.randn(4, 1, 8)
    pad = torch.tensor([[False, False, True, True]])
    masked, _ = mha(x, x, x, pad)
    alone, _ = mha(x[:2], x[:2], x[:2])
    torch.testing.assert_close(masked[:2], alone, atol=1e-5, rtol=0)


def test_encoder_layer_is_post_norm_detr_layer():
    layer = EncoderLayer(16, 4, 32, 0.1).eval()
    src, pos = torch.randn(6, 2, 16), torch.randn(6, 2, 16)
    pad = torch.zeros(2, 6, dtype=torch.bool)
    pad[0, 5] = True
    attn = _reference_mha(layer.self_attn)
    x = src + attn(src + pos, src + pos, src, key_padding_mask=pad)[0]
    x = layer.norm1(x)
    x = layer.norm2(x + layer.linear2(F.relu(layer.linear1(x))))
    torch.testing.assert_close(layer(src, pad, pos), x, atol=1e-5, rtol=0)


def test_decoder_layer_is_post_norm_detr_layer():
    layer = DecoderLayer(16, 4, 32, 0.1).eval()
    tgt, qpos = torch.randn(3, 2, 16), torch.randn(3, 2, 16)
    mem, pos = torch.randn(6, 2, 16), torch.randn(6, 2, 16)
    pad = torch.zeros(2, 6, dtype=torch.bool)
    pad[1, 3:] = True
    x = layer.norm1(tgt + _reference_mha(layer.self_attn)(tgt + qpos, tgt + qpos, tgt)[0])
    x = layer.norm2(x + _reference_mha(layer.multihead_attn)(x + qpos, mem + pos, mem, key_padding_mask=pad)[0])
    x = layer.norm3(x + layer.linear2(F.relu(layer.linear1(x))))
    out, logits = layer(tgt, mem, pad, pos, qpos, return_logits=True)
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)
    assert logits.shape == (2 * 4, 3, 6)


def test_decoder_returns_every_layer_normed_or_raw():
    model = Transformer(16, 4, 1, 3, 32, 0.0).eval()
    memory, pos = torch.randn(5, 2, 16), torch.randn(5, 2, 16)
    mask = torch.zeros(2, 5, dtype=torch.bool)
    query_pos = torch.randn(4, 2, 16)
    hs, logits = model.decode(memory, mask, pos, query_pos, record_cross_logits=True)
    raw, none = model.decode(memory, mask, pos, query_pos, apply_final_norm=False)
    assert hs.shape == (3, 2, 4, 16) and none is None and len(logits) == 3
    torch.testing.assert_close(hs, model.decoder.norm(raw), atol=1e-6, rtol=0)
    calls = []
    model.decode(memory, mask, pos, query_pos, cross_attn_bias=lambda i: calls.append(i))
    assert calls == [0, 1, 2]


def test_transformer_init_is_xavier_with_zero_attention_biases():
    model = Transformer(16, 4, 1, 1, 32, 0.1)
    attn = model.encoder.layers[0].self_attn
    assert torch.count_nonzero(attn.in_proj_bias) == 0 and torch.count_nonzero(attn.out_proj.bias) == 0
    bound = (6 / (16 + 48)) ** 0.5
    assert attn.in_proj_weight.abs().max() <= bound
    assert not hasattr(model.encoder, "norm")


# ---------------------------------------------------------------------------------------------
# Dropout placement in train mode, against a hand-written reference drawing the same masks
# ---------------------------------------------------------------------------------------------


def _attend_by_hand(mha: MultiheadAttention, query, key, value, p: float, key_padding_mask=None):
    """Attention with dropout on the softmax weights (as nn.MultiheadAttention), [L, B, d] layout."""
    d, h = mha.embed_dim, mha.num_heads
    w, b = mha.in_proj_weight, mha.in_proj_bias

    def heads(x):
        return x.view(x.shape[0], x.shape[1], h, d // h).permute(1, 2, 0, 3)

    q = heads(F.linear(query, w[:d], b[:d]))
    k = heads(F.linear(key, w[d:2 * d], b[d:2 * d]))
    v = heads(F.linear(value, w[2 * d:], b[2 * d:]))
    scores = q @ k.transpose(-2, -1) / (d // h) ** 0.5
    if key_padding_mask is not None:
        scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
    attn = F.dropout(scores.softmax(-1), p, training=True)
    out = (attn @ v).permute(2, 0, 1, 3).reshape(query.shape[0], query.shape[1], d)
    return mha.out_proj(out)


def test_encoder_layer_dropout_placement_in_train_mode():
    p = 0.3
    layer = EncoderLayer(16, 4, 32, p).train()
    src, pos = torch.randn(6, 2, 16), torch.randn(6, 2, 16)
    pad = torch.zeros(2, 6, dtype=torch.bool)
    pad[1, 4:] = True
    torch.manual_seed(123)
    ours = layer(src, pad, pos)
    torch.manual_seed(123)  # same seed: the reference draws the same masks in the same order
    x = layer.norm1(src + F.dropout(_attend_by_hand(layer.self_attn, src + pos, src + pos, src, p, pad), p))
    ffn = layer.linear2(F.dropout(F.relu(layer.linear1(x)), p))
    expected = layer.norm2(x + F.dropout(ffn, p))
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)
    torch.manual_seed(123)
    assert not torch.allclose(layer.eval()(src, pad, pos), expected, atol=1e-3)  # dropout did act


def test_decoder_layer_dropout_placement_in_train_mode():
    p = 0.25
    layer = DecoderLayer(16, 4, 32, p).train()
    tgt, query_pos = torch.randn(5, 2, 16), torch.randn(5, 2, 16)
    memory, pos = torch.randn(7, 2, 16), torch.randn(7, 2, 16)
    for record in (False, True):  # fused cross-attention, and the explicit path that records logits
        torch.manual_seed(7)
        ours, _ = layer(tgt, memory, None, pos, query_pos, return_logits=record)
        torch.manual_seed(7)
        qk = tgt + query_pos
        x = layer.norm1(tgt + F.dropout(_attend_by_hand(layer.self_attn, qk, qk, tgt, p), p))
        x = layer.norm2(x + F.dropout(_attend_by_hand(layer.multihead_attn, x + query_pos, memory + pos, memory, p), p))
        ffn = layer.linear2(F.dropout(F.relu(layer.linear1(x)), p))
        expected = layer.norm3(x + F.dropout(ffn, p))
        torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)
