"""The laptop backbone options: trainable BatchNorm and an earlier output stage."""

import torch

from hqm.config import ModelConfig
from hqm.models.backbone import Backbone, FrozenBatchNorm2d
from hqm.models.build import build_qpic


def test_out_stage_sets_stride_and_channels():
    images, mask = torch.randn(1, 3, 96, 64), torch.zeros(1, 96, 64, dtype=torch.bool)
    for stage, stride, channels in (("layer2", 8, 128), ("layer3", 16, 256), ("layer4", 32, 512)):
        bb = Backbone("resnet18", out_stage=stage).eval()
        feats, small = bb(images, mask)
        assert feats.shape == (1, channels, 96 // stride, 64 // stride) and bb.num_channels == channels
        assert small.shape == (1, 96 // stride, 64 // stride)
    assert Backbone("resnet50", out_stage="layer3").num_channels == 1024


def test_batch_norm_trains_every_stage_frozen_keeps_the_papers_split():
    frozen = Backbone("resnet18")
    assert all(isinstance(m, FrozenBatchNorm2d) for n, m in frozen.body.named_modules() if n.endswith("bn1"))
    assert not any(p.requires_grad for n, p in frozen.body.named_parameters() if n.startswith(("conv1", "layer1")))
    batch = Backbone("resnet18", norm="batch", out_stage="layer2", train_stem=True)
    assert all(p.requires_grad for p in batch.body.parameters())
    stem_frozen = Backbone("resnet18", norm="batch", out_stage="layer2")
    assert {n.split(".")[0] for n, p in stem_frozen.body.named_parameters() if not p.requires_grad} == {"conv1", "bn1", "layer1"}
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in batch.body.modules())
    batch.train()
    before = batch.body.bn1.running_mean.clone()
    batch(torch.randn(2, 3, 64, 64), torch.zeros(2, 64, 64, dtype=torch.bool))
    assert not torch.equal(before, batch.body.bn1.running_mean)  # statistics are learned


def test_detector_builds_with_laptop_backbone():
    cfg = ModelConfig(backbone="resnet18", hidden_dim=32, nheads=2, enc_layers=1, dec_layers=1,
                      dim_feedforward=64, num_queries=4, backbone_norm="batch", backbone_out_stage="layer2")
    model = build_qpic(cfg, 80, 117).eval()
    out = model(torch.randn(1, 3, 64, 64), torch.zeros(1, 64, 64, dtype=torch.bool))
    assert out["pred_obj_logits"].shape == (1, 4, 81) and out["pred_sub_boxes"].shape == (1, 4, 4)
    assert model.input_proj.in_channels == 128


def test_batch_norm_in_eval_mode_is_folded_and_equals_the_plain_forward(monkeypatch):
    backbone = Backbone("resnet18", norm="batch", out_stage="layer2").train()
    images, mask = torch.randn(4, 3, 64, 64), torch.zeros(4, 64, 64, dtype=torch.bool)
    with torch.no_grad():
        backbone(images, mask)  # running statistics away from their 0 / 1 start
    import hqm.models.backbone as backbone_module

    calls = []
    original = backbone_module.conv_frozen_bn
    monkeypatch.setattr(backbone_module, "conv_frozen_bn", lambda *args: (calls.append(1), original(*args))[1])
    backbone.eval()
    with torch.no_grad():
        folded, _ = backbone(images, mask)
        torch.testing.assert_close(folded, backbone.body(images), atol=1e-4, rtol=1e-4)
    assert len(calls) == 1 + 2 * 2 + 2 * 2 + 1  # stem, layer1 (2 blocks), layer2 (2 blocks + downsample)
    calls.clear()
    backbone.train()
    before = backbone.body.bn1.running_mean.clone()
    backbone(images, mask)  # training: batch statistics, the running ones still move
    assert not calls and not torch.equal(before, backbone.body.bn1.running_mean)
