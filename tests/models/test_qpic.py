import json
from pathlib import Path

import pytest
import torch
from models_helpers import tiny_detector

from hqm.config import ModelConfig
from hqm.errors import HqmError
from hqm.models.backbone import Backbone, FrozenBatchNorm2d
from hqm.models.build import build_qpic
from hqm.models.position import PositionEmbeddingSine
from hqm.models.qpic import count_parameters
from hqm.models.weights import qpic_to_hqm_layout

SPEC = Path(__file__).resolve().parents[1] / "fixtures" / "state_dicts"


def read_tsv(name):
    lines = (SPEC / name).read_text().splitlines()[1:]
    return {key: json.loads(shape) for key, shape in (line.split("\t") for line in lines)}


def test_output_shapes_and_aux_outputs():
    model = tiny_detector(num_obj=81, num_verb=29).eval()
    images, mask = torch.randn(2, 3, 64, 96), torch.zeros(2, 64, 96, dtype=torch.bool)
    mask[1, :, 64:] = True
    out = model(images, mask)
    assert out["pred_obj_logits"].shape == (2, 6, 82)
    assert out["pred_verb_logits"].shape == (2, 6, 29)
    assert out["pred_sub_boxes"].shape == out["pred_obj_boxes"].shape == (2, 6, 4)
    assert ((out["pred_sub_boxes"] > 0) & (out["pred_sub_boxes"] < 1)).all()
    assert len(out["aux_outputs"]) == 1 and out["aux_outputs"][0]["pred_verb_logits"].shape == (2, 6, 29)
    assert "aux_outputs" not in tiny_detector(aux_loss=False).eval()(images, mask)


def test_padded_keys_get_no_cross_attention():
    model = tiny_detector().eval()
    images = torch.randn(1, 3, 64, 128)
    mask = torch.zeros(1, 64, 128, dtype=torch.bool)
    mask[..., 64:] = True  # right half of the 2 x 4 C5 grid is padding
    encoded = model.encode(images, mask)
    assert encoded.memory.shape == (8, 1, 32) and encoded.pos.shape == (8, 1, 32)
    assert encoded.memory_mask.view(2, 4)[:, 2:].all() and not encoded.memory_mask.view(2, 4)[:, :2].any()
    hs, logits = model.decode(encoded, model.query_embed.weight[:, None], record_cross_logits=True)
    assert hs.shape == (2, 1, 6, 32) and len(logits) == 2
    grid = logits[0].view(4, 6, 2, 4)  # heads, queries, h, w
    assert torch.isinf(grid[..., 2:]).all() and torch.isfinite(grid[..., :2]).all()
    torch.testing.assert_close(model.predict(hs)["pred_obj_logits"], model(images, mask)["pred_obj_logits"])


def test_r50_hico_state_dict_equals_published_layout():
    model = build_qpic(ModelConfig(), 80, 117)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == read_tsv("qpic_r50_hico.tsv")
    total, trainable = count_parameters(model)
    assert (total, trainable) == (41_684_622, 41_462_222)
    hqm = {k: list(v.shape) for k, v in qpic_to_hqm_layout(model.state_dict()).items()}
    hqm.update({"query_embed_sp.layers.0.weight": [256, 12], "query_embed_sp.layers.0.bias": [256],
                "query_embed_sp.layers.1.weight": [256, 256], "query_embed_sp.layers.1.bias": [256]})
    assert hqm == read_tsv("hqm_r50_hico.tsv")


def test_backbone_freezes_stem_and_layer1_and_uses_frozen_bn():
    backbone = Backbone("resnet18")
    for name, param in backbone.body.named_parameters():
        assert param.requires_grad == name.startswith(("layer2", "layer3", "layer4")), name
    norms = [m for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert not norms
    bn = FrozenBatchNorm2d(3)
    bn.weight.copy_(torch.tensor([1.0, 2.0, 3.0]))
    bn.bias.copy_(torch.tensor([0.5, 0.0, -1.0]))
    bn.running_mean.copy_(torch.tensor([1.0, -1.0, 0.0]))
    bn.running_var.copy_(torch.tensor([4.0, 1.0, 0.25]))
    x = torch.randn(2, 3, 2, 2)
    expected = (x - bn.running_mean.view(1, 3, 1, 1)) * bn.weight.view(1, 3, 1, 1) / torch.sqrt(
        bn.running_var.view(1, 3, 1, 1) + 1e-5) + bn.bias.view(1, 3, 1, 1)
    torch.testing.assert_close(bn(x), expected, atol=1e-6, rtol=0)
    assert set(bn.state_dict()) == {"weight", "bias", "running_mean", "running_var"}


def test_folded_frozen_norms_equal_the_plain_resnet_forward():
    for name in ("resnet18", "resnet50"):
        backbone = Backbone(name).eval()
        with torch.no_grad():
            for module in backbone.modules():
                if isinstance(module, FrozenBatchNorm2d):
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.normal_(0, 0.1)
                    module.running_mean.normal_(0, 0.1)
                    module.running_var.uniform_(0.5, 2.0)
        images = torch.randn(1, 3, 64, 64)
        folded, _ = backbone(images, torch.zeros(1, 64, 64, dtype=torch.bool))
        torch.testing.assert_close(folded, backbone.body(images), atol=1e-4, rtol=1e-4)


def test_backbone_mask_is_nearest_resized_c5_grid():
    backbone = Backbone("resnet18").eval()
    mask = torch.zeros(1, 64, 128, dtype=torch.bool)
    mask[:, :, 96:] = True
    features, small = backbone(torch.randn(1, 3, 64, 128), mask)
    assert features.shape == (1, 512, 2, 4)
    assert small.tolist() == [[[False, False, False, True], [False, False, False, True]]]


def test_backbone_loads_torchvision_weights(tmp_path):
    import torchvision

    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "r18.pth")
    backbone = Backbone("resnet18")
    backbone.load_torchvision_weights(tmp_path / "r18.pth")
    torch.testing.assert_close(backbone.body.layer3[0].conv1.weight, reference.layer3[0].conv1.weight)
    torch.testing.assert_close(backbone.body.bn1.running_var, reference.bn1.running_var)
    with pytest.raises(HqmError, match="r18.pth"):
        Backbone("resnet34").load_torchvision_weights(tmp_path / "r18.pth")  # wrong architecture
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(HqmError, match="junk.pth"):
        backbone.load_torchvision_weights(tmp_path / "junk.pth")


def test_sine_encoding_matches_spec_formula():
    mask = torch.zeros(1, 2, 3, dtype=torch.bool)
    mask[0, :, 2] = True  # last column padded
    pos = PositionEmbeddingSine(4)(mask)  # F = 4 -> 8 channels
    assert pos.shape == (1, 8, 2, 3)
    two_pi = 2 * torch.pi
    y = 2 / (2 + 1e-6) * two_pi  # row 1 of 2 valid rows
    x = 1 / (2 + 1e-6) * two_pi  # column 0; the padded last column repeats the count 2
    dim_t = torch.tensor([1.0, 1.0, 100.0, 100.0])  # 10000^(2*floor(i/2)/4)
    expected_y = [torch.sin(torch.tensor(y) / dim_t[0]), torch.cos(torch.tensor(y) / dim_t[1]),
                  torch.sin(torch.tensor(y) / dim_t[2]), torch.cos(torch.tensor(y) / dim_t[3])]
    expected_x = [torch.sin(torch.tensor(x) / dim_t[0]), torch.cos(torch.tensor(x) / dim_t[1]),
                  torch.sin(torch.tensor(x) / dim_t[2]), torch.cos(torch.tensor(x) / dim_t[3])]
    torch.testing.assert_close(pos[0, :, 1, 0], torch.stack(expected_y + expected_x), atol=1e-6, rtol=0)


def test_fused_and_explicit_attention_paths_give_the_same_model_outputs():
    model = tiny_detector().eval()
    images, mask = torch.randn(2, 3, 64, 96), torch.zeros(2, 64, 96, dtype=torch.bool)
    mask[0, 40:] = True
    encoded = model.encode(images, mask)
    query_pos = model.query_embed.weight.unsqueeze(1).expand(-1, 2, -1)
    fused, _ = model.decode(encoded, query_pos)
    explicit, logits = model.decode(encoded, query_pos, record_cross_logits=True)
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=0)
    assert all(not t.requires_grad for t in logits)
