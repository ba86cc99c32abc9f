"""HQM detector and criterion: layout, QPIC-equivalent inference, streams, losses, RNG resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hqm.config import AMMConfig, GBSConfig, HardQueryConfig, LossConfig, ModelConfig
from hqm.errors import HqmError
from hqm.models.build import build_criterion, build_detector
from hqm.models.hard_losses import gbs_indices, hard_layer_losses
from hqm.models.qpic import QPIC
from hqm.models.schedule import HardStreamSchedule

SPEC = Path(__file__).resolve().parents[1] / "fixtures" / "state_dicts"
TINY = dict(backbone="resnet18", hidden_dim=32, nheads=2, enc_layers=1, dec_layers=3,
            dim_feedforward=64, dropout=0.0, num_queries=8)
NO_SHIFT = GBSConfig(iou_low=0.97, iou_high=0.99)  # no draw reaches the band: GBS queries = GT


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def _tiny(method="hqm", hard=None, **model):
    return build_detector(ModelConfig(**{**TINY, **model}), method, hard or HardQueryConfig(), 5, 4, seed=3)


def _batch(pairs=(2, 3), size=96):
    g = torch.Generator().manual_seed(11)
    images = torch.randn(len(pairs), 3, size, size, generator=g)
    mask = torch.zeros(len(pairs), size, size, dtype=torch.bool)
    targets = []
    for n in pairs:
        def boxes(n=n):
            return torch.cat([0.3 + 0.4 * torch.rand(n, 2, generator=g), 0.1 + 0.3 * torch.rand(n, 2, generator=g)], 1)

        verbs = torch.zeros(n, 4)
        verbs[torch.arange(n), torch.randint(0, 4, (n,), generator=g)] = 1
        targets.append({"obj_labels": torch.randint(0, 5, (n,), generator=g), "verb_labels": verbs,
                        "sub_boxes": boxes(), "obj_boxes": boxes(), "aug_size": torch.tensor([size, size]),
                        "orig_size": torch.tensor([size, size])})
    return images, mask, targets


def _tsv(name):
    lines = (SPEC / name).read_text().splitlines()[1:]
    return {k: tuple(json.loads(s)) for k, s in (line.split("\t") for line in lines)}


def test_r50_layout_is_the_released_hqm_layout_after_renaming():
    model = build_detector(ModelConfig(), "hqm", HardQueryConfig(), 80, 117)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    heads = ("obj_class_embed.", "verb_class_embed.", "sub_bbox_embed.", "obj_bbox_embed.")
    released = {k.removeprefix("transformer.decoder.") if k.removeprefix("transformer.decoder.").startswith(heads) else k: s
                for k, s in _tsv("hqm_r50_hico.tsv").items()}
    assert ours == released
    qpic = _tsv("qpic_r50_hico.tsv")
    assert set(ours) - set(qpic) == {f"query_embed_sp.layers.{i}.{p}" for i in (0, 1) for p in ("weight", "bias")}


def test_fresh_heads_use_the_upstream_hqm_initialisation():
    hqm, qpic = _tiny(), _tiny("qpic")
    fan_in, fan_out = 32, 4  # verb head [4, 32]
    xavier, linear = (6 / (fan_in + fan_out)) ** 0.5, fan_in**-0.5
    assert linear < hqm.verb_class_embed.weight.abs().max() <= xavier
    assert qpic.verb_class_embed.weight.abs().max() <= linear
    assert hqm.query_embed_sp.layers[0].weight.abs().max() <= 12**-0.5  # Linear default, fan_in 12


def test_aux_loss_off_and_unknown_names_are_rejected():
    with pytest.raises(HqmError, match="aux_loss"):
        _tiny(aux_loss=False)
    with pytest.raises(HqmError, match="unknown method 'detr'"):
        _tiny("detr")
    with pytest.raises(HqmError, match="unknown stream 'xyz'"):
        _tiny()(*_batch()[:2], targets=_batch()[2], hard_stream="xyz")


def test_inference_equals_qpic_with_the_same_weights():
    model = _tiny().eval()
    qpic = _tiny("qpic").eval()
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("query_embed_sp.")}
    qpic.load_state_dict(state, strict=True)
    images, mask, targets = _batch()
    mask[1, :, 64:] = True
    ours, theirs = model(images, mask), qpic(images, mask)
    with_targets = model(images, mask, targets=targets)  # targets without a stream: still QPIC
    assert set(ours) == set(theirs)
    for key in ("pred_obj_logits", "pred_verb_logits", "pred_sub_boxes", "pred_obj_boxes"):
        assert torch.equal(ours[key], theirs[key]) and torch.equal(with_targets[key], theirs[key])
        assert all(torch.equal(a[key], b[key]) for a, b in zip(ours["aux_outputs"], theirs["aux_outputs"]))
    assert isinstance(qpic, QPIC) and not hasattr(qpic, "rng_state")


def test_gbs_stream_shapes_and_padding_isolation():
    model = _tiny(hard=HardQueryConfig(gbs=NO_SHIFT)).eval()
    images, mask, targets = _batch(pairs=(2, 4))
    both = model(images, mask, targets, hard_stream="gbs")
    hard = both["hard_outputs"]
    assert both["hard_stream"] == "gbs" and hard["pred_obj_logits"].shape == (2, 4, 6)
    assert len(hard["aux_outputs"]) == 2 and hard["pred_sub_boxes"].shape == (2, 4, 4)
    assert not both["gbs_shifted"][0].any()
    alone = model(images[:1], mask[:1], targets[:1], hard_stream="gbs")["hard_outputs"]
    # Image 0 has 2 pairs and 2 padding slots in the batch: padding must not leak into its queries.
    assert torch.allclose(both["hard_outputs"]["pred_sub_boxes"][0, :2], alone["pred_sub_boxes"][0], atol=1e-5)
    # An image without pairs (all-False padding row) gives finite outputs.
    images, mask, targets = _batch(pairs=(0, 2))
    out = model(images, mask, targets, hard_stream="gbs")["hard_outputs"]
    assert torch.isfinite(out["pred_obj_logits"]).all()


def test_gbs_queries_come_from_the_shifted_boxes():
    model = _tiny(hard=HardQueryConfig(gbs=GBSConfig(acceptance_scope="box"))).eval()
    images, mask, targets = _batch(pairs=(3, 3))
    shifted = model(images, mask, targets, hard_stream="gbs")
    unshifted = _tiny(hard=HardQueryConfig(gbs=NO_SHIFT)).eval()
    unshifted.load_state_dict(model.state_dict())
    plain = unshifted(images, mask, targets, hard_stream="gbs")
    moved = shifted["gbs_shifted"][0] | shifted["gbs_shifted"][1]
    assert moved.any()
    diff = (shifted["hard_outputs"]["pred_sub_boxes"] - plain["hard_outputs"]["pred_sub_boxes"]).abs().sum(-1)
    assert (diff[moved] > 1e-6).all()


def test_amm_stream_masks_and_unmasked_copy_equals_learnable_pass():
    images, mask, targets = _batch()
    plain = _tiny(hard=HardQueryConfig(amm=AMMConfig(top_k=6, mask_ratio=0.0, apply_decoder_norm=True))).eval()
    out = plain(images, mask, targets, hard_stream="amm")
    assert out["hard_stream"] == "amm"
    assert torch.allclose(out["hard_outputs"]["pred_sub_boxes"], out["pred_sub_boxes"], atol=1e-6)
    masked = _tiny(hard=HardQueryConfig(amm=AMMConfig(top_k=6, mask_ratio=0.5, apply_decoder_norm=True))).eval()
    masked.load_state_dict(plain.state_dict())
    out = masked(images, mask, targets, hard_stream="amm")
    assert out["hard_outputs"]["pred_sub_boxes"].shape == (2, 8, 4)
    assert not torch.allclose(out["hard_outputs"]["pred_sub_boxes"], out["pred_sub_boxes"], atol=1e-4)
    assert torch.isfinite(out["hard_outputs"]["pred_obj_logits"]).all()


def test_rng_state_resume_replays_the_hard_stream():
    model = _tiny(hard=HardQueryConfig(gbs=GBSConfig(acceptance_scope="box"))).eval()
    images, mask, targets = _batch(pairs=(3, 2))
    state = model.rng_state()
    first = [model(images, mask, targets, hard_stream=s)["hard_outputs"]["pred_sub_boxes"] for s in ("gbs", "amm")]
    later = model(images, mask, targets, hard_stream="gbs")["hard_outputs"]["pred_sub_boxes"]
    model.load_rng_state(state)
    again = [model(images, mask, targets, hard_stream=s)["hard_outputs"]["pred_sub_boxes"] for s in ("gbs", "amm")]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], later)


def _outputs_like(targets, num_queries, rows_for):
    """Predictions that equal GT pair j at query rows_for(b)[j] and are far off elsewhere."""
    b_size = len(targets)
    out = {"pred_obj_logits": torch.zeros(b_size, num_queries, 6), "pred_verb_logits": torch.full((b_size, num_queries, 4), -8.0),
           "pred_sub_boxes": torch.full((b_size, num_queries, 4), 0.9), "pred_obj_boxes": torch.full((b_size, num_queries, 4), 0.9)}
    out["pred_obj_logits"][..., -1] = 9.0  # unsupervised rows say "no object": costless for hard streams
    for b, t in enumerate(targets):
        rows = rows_for(b)
        out["pred_obj_logits"][b, rows] = 0
        out["pred_obj_logits"][b, rows, t["obj_labels"]] = 30.0
        out["pred_verb_logits"][b, rows] = t["verb_labels"] * 16 - 8  # saturating logits would make the unclamped focal loss NaN
        out["pred_sub_boxes"][b, rows] = t["sub_boxes"]
        out["pred_obj_boxes"][b, rows] = t["obj_boxes"]
    return out


def test_gbs_losses_supervise_query_k_with_pair_k_only():
    _, _, targets = _batch(pairs=(2, 3))
    right = _outputs_like(targets, 3, lambda b: torch.arange(len(targets[b]["obj_labels"])))
    losses = hard_layer_losses(right, targets, gbs_indices(targets), num_interactions=5.0)
    assert all(v.abs() < 1e-4 for v in losses.values()), losses
    swapped = _outputs_like(targets, 3, lambda b: torch.arange(len(targets[b]["obj_labels"])).flip(0))
    wrong = hard_layer_losses(swapped, targets, gbs_indices(targets), num_interactions=5.0)
    assert wrong["loss_sub_bbox"] > 0.05 and wrong["loss_obj_giou"] > 0.05


def test_amm_losses_use_the_learnable_per_layer_matching_and_no_no_object_term():
    criterion = build_criterion(LossConfig(), "hqm", HardQueryConfig(), 5, 4, dec_layers=3)
    _, _, targets = _batch(pairs=(2, 1))
    place = {0: torch.tensor([5, 1]), 1: torch.tensor([6])}
    learn = _outputs_like(targets, 8, lambda b: place[b])
    hard = _outputs_like(targets, 8, lambda b: place[b])
    hard["pred_obj_logits"][..., -1] = -9.0  # unmatched copies now claim an object: must cost nothing
    outputs = {**learn, "aux_outputs": [dict(learn), dict(learn)], "hard_stream": "amm",
               "hard_outputs": {**hard, "aux_outputs": [dict(hard), dict(hard)]}}
    losses = criterion(outputs, targets)
    for layer in criterion.last_indices:  # the learnable matching found the planted queries
        assert sorted(layer[0][0].tolist()) == [1, 5] and layer[1][0].tolist() == [6]
    amm = {k: v for k, v in losses.items() if k.startswith("amm_")}
    assert len(amm) == 18 and all(v.abs() < 1e-4 for v in amm.values()), amm
    moved = _outputs_like(targets, 8, lambda b: place[b] + 1)
    outputs["hard_outputs"] = {**moved, "aux_outputs": [dict(moved), dict(moved)]}
    losses = criterion(outputs, targets)
    assert losses["amm_loss_sub_bbox"] > 0.05 and losses["amm_loss_obj_ce_1"] > 1


def test_weight_dict_scales_hard_terms():
    weights = build_criterion(LossConfig(), "hqm", HardQueryConfig(), 5, 4, dec_layers=6).weight_dict
    assert weights["loss_sub_bbox"] == 2.5 and weights["gbs_loss_sub_bbox"] == pytest.approx(2.0)
    assert weights["amm_loss_obj_ce_0"] == pytest.approx(0.8) and weights["gbs_loss_obj_giou_4"] == pytest.approx(0.8)
    assert "loss_obj_ce_5" not in weights and "gbs_loss_obj_ce_5" not in weights  # 6 layers: aux 0..4 only
    alone = build_criterion(LossConfig(), "gbs", HardQueryConfig(loss_weight=1.0), 5, 4, dec_layers=6).weight_dict
    assert alone["gbs_loss_verb_ce"] == 1.0
    assert not any(k.startswith("amm_") for k in alone)  # only the method's own stream (hqm.methods)
    shallow = build_criterion(LossConfig(), "qpic", HardQueryConfig(), 5, 4, dec_layers=2).weight_dict
    assert set(shallow) == {f"{k}{s}" for k in ("loss_obj_ce", "loss_verb_ce", "loss_sub_bbox", "loss_obj_bbox",
                                                "loss_sub_giou", "loss_obj_giou") for s in ("", "_0")}


def test_criterion_rejects_outputs_deeper_than_its_weight_table():
    criterion = build_criterion(LossConfig(), "hqm", HardQueryConfig(), 5, 4, dec_layers=2)
    _, _, targets = _batch(pairs=(1, 1))
    layer = _outputs_like(targets, 8, lambda b: torch.tensor([0]))
    with pytest.raises(HqmError, match="3 decoder layers"):
        criterion({**layer, "aux_outputs": [dict(layer), dict(layer)]}, targets)


def test_the_detector_takes_its_rank_from_the_caller():
    """The rank is injected (the engine passes it), never read from the process group."""
    images, mask, targets = _batch(pairs=(3, 3))
    hard = HardQueryConfig(gbs=GBSConfig(acceptance_scope="box"))
    models = [build_detector(ModelConfig(**TINY), "hqm", hard, 5, 4, seed=3, rank=rank).eval() for rank in (0, 1)]
    models[1].load_state_dict(models[0].state_dict())  # same weights: only the hard-stream draws differ
    boxes = [m(images, mask, targets, hard_stream="gbs")["hard_outputs"]["pred_sub_boxes"] for m in models]
    assert not torch.equal(boxes[0], boxes[1])
    models[0].seed_hard_stream(3, 1)  # rank 1's stream, as the constructor seeded it
    assert torch.equal(models[0](images, mask, targets, hard_stream="gbs")["hard_outputs"]["pred_sub_boxes"], boxes[1])


@pytest.mark.parametrize("method", ["gbs", "amm", "hqm"])
def test_tiny_model_trains_and_loss_falls(method):
    hard = HardQueryConfig(amm=AMMConfig(top_k=6), loss_weight=0.8 if method == "hqm" else 1.0)
    model = _tiny(method, hard=hard).train()
    criterion = build_criterion(LossConfig(), method, hard, 5, 4, dec_layers=TINY["dec_layers"])
    schedule = HardStreamSchedule(method, "strict", seed=0)
    images, mask, targets = _batch(pairs=(2, 3))
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4)
    totals, hard_parts, seen = [], [], set()
    for step in range(24):
        stream = schedule.stream(0, step)
        out = model(images, mask, targets, hard_stream=stream)
        losses = criterion(out, targets)
        seen.update(k.split("_")[0] for k in losses if k.startswith(("gbs_", "amm_")))
        total = sum(losses[k] * w for k, w in criterion.weight_dict.items() if k in losses)
        optim.zero_grad()
        total.backward()
        optim.step()
        totals.append(total.item())
        hard_parts.append(sum(losses[k].item() * w for k, w in criterion.weight_dict.items()
                              if k in losses and k.startswith(("gbs_", "amm_"))))
    assert seen == ({"gbs", "amm"} if method == "hqm" else {method})
    assert sum(totals[-4:]) < 0.85 * sum(totals[:4]), totals
    assert sum(hard_parts[-4:]) < 0.85 * sum(hard_parts[:4]), hard_parts


def test_ranks_get_distinct_hard_stream_draws():
    model = _tiny(hard=HardQueryConfig(gbs=GBSConfig(acceptance_scope="box"))).eval()
    images, mask, targets = _batch(pairs=(3, 3))
    shifts = []
    for rank in (0, 1, 0):
        model.seed_hard_stream(42, rank)
        shifts.append(model(images, mask, targets, hard_stream="gbs")["hard_outputs"]["pred_sub_boxes"])
    assert torch.equal(shifts[0], shifts[2]) and not torch.equal(shifts[0], shifts[1])
