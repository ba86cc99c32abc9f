"""The AMM stream inside the detector: per-layer masks from the learnable pass, decoder-norm setting."""

from __future__ import annotations

import pytest
import torch
from test_hard_detector import _batch, _tiny

from hqm.config import AMMConfig, HardQueryConfig
from hqm.models.amm import draw_ranks, rank_mask_bias
from hqm.models.qpic import OUTPUT_KEYS


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def _learnable_pass(model, images, mask):
    encoded = model.encode(images, mask)
    query_pos = model.query_embed.weight.unsqueeze(1).expand(-1, images.shape[0], -1)
    hs, recorded = model.decode(encoded, query_pos, record_cross_logits=True)
    return encoded, query_pos, hs, recorded


def _assert_outputs_close(a: dict, b: dict, atol: float = 1e-6) -> None:
    for key in OUTPUT_KEYS:
        torch.testing.assert_close(a[key], b[key], atol=atol, rtol=0)
        for la, lb in zip(a["aux_outputs"], b["aux_outputs"], strict=True):
            torch.testing.assert_close(la[key], lb[key], atol=atol, rtol=0)


def test_amm_layer_l_is_masked_with_the_learnable_pass_layer_l_logits():
    amm = AMMConfig(top_k=6, mask_ratio=0.5)
    model = _tiny(hard=HardQueryConfig(amm=amm)).eval()  # 3 decoder layers
    images, mask, targets = _batch()
    state = model.rng_state()["hard_stream_generator"]
    out = model(images, mask, targets, hard_stream="amm")["hard_outputs"]

    encoded, query_pos, _, recorded = _learnable_pass(model, images, mask)
    generator = torch.Generator()
    generator.set_state(state)
    ranks = draw_ranks(amm, len(recorded), recorded[0].shape[-1], tuple(recorded[0].shape[:2]), generator)
    right = [rank_mask_bias(recorded[layer], ranks[layer], amm.top_k) for layer in range(len(recorded))]
    # the bug to catch: every layer masked from layer 0's attention map
    wrong = [rank_mask_bias(recorded[0], ranks[layer], amm.top_k) for layer in range(len(recorded))]
    assert all(not torch.equal(right[i], wrong[i]) for i in (1, 2))  # the layers' top keys differ

    def decode_with(biases):
        hs, _ = model.decode(encoded, query_pos, cross_attn_bias=lambda layer: biases[layer], apply_final_norm=False)
        return model.predict(hs)

    _assert_outputs_close(out, decode_with(right))
    bad = decode_with(wrong)
    assert not torch.allclose(out["pred_sub_boxes"], bad["pred_sub_boxes"], atol=1e-4)
    torch.testing.assert_close(out["aux_outputs"][0]["pred_sub_boxes"], bad["aux_outputs"][0]["pred_sub_boxes"],
                               atol=1e-6, rtol=0)  # layer 0 itself is the same either way


def test_default_amm_stream_skips_the_decoder_norm():
    """HQM's combined model (the default, apply_decoder_norm: false) predicts from un-normed layers."""
    model = _tiny(hard=HardQueryConfig(amm=AMMConfig(top_k=6, mask_ratio=0.0))).eval()
    assert model.hard.amm.apply_decoder_norm is False
    with torch.no_grad():  # a trained final norm: at init (gain 1, bias 0) it repeats norm3's work
        model.transformer.decoder.norm.weight.uniform_(0.5, 1.5)
        model.transformer.decoder.norm.bias.uniform_(-0.5, 0.5)
    images, mask, targets = _batch()
    out = model(images, mask, targets, hard_stream="amm")
    encoded, query_pos, _, _ = _learnable_pass(model, images, mask)
    raw, _ = model.decode(encoded, query_pos, apply_final_norm=False)
    _assert_outputs_close(out["hard_outputs"], model.predict(raw), atol=1e-5)
    # nothing is masked (ratio 0), so the only difference from the learnable stream is the norm
    assert not torch.allclose(out["hard_outputs"]["pred_sub_boxes"], out["pred_sub_boxes"], atol=1e-3)
    normed = _tiny(hard=HardQueryConfig(amm=AMMConfig(top_k=6, mask_ratio=0.0, apply_decoder_norm=True))).eval()
    normed.load_state_dict(model.state_dict())
    both = normed(images, mask, targets, hard_stream="amm")
    _assert_outputs_close(both["hard_outputs"], {k: both[k] for k in (*OUTPUT_KEYS, "aux_outputs")}, atol=1e-5)
