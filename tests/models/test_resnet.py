"""hqm's own ResNet is torchvision's ResNet bit for bit: names, random init (RNG order), forward.

torchvision is imported here only as the reference. The reference Backbone is hqm's Backbone with
the two names it takes from hqm.models.resnet swapped for torchvision's, i.e. the code as it was
when it built its body with torchvision.
"""

from __future__ import annotations

import re

import pytest
import torch
import torchvision
from torch import nn

from hqm.models import backbone as backbone_module
from hqm.models import resnet
from hqm.models.backbone import Backbone, FrozenBatchNorm2d

TV_RESNETS = {name: (lambda fn: lambda **kw: fn(weights=None, **kw))(getattr(torchvision.models, name))
              for name in resnet.RESNETS if hasattr(torchvision.models, name)}
# torchvision has no resnet10 builder; its ResNet class with one basic block per stage is the reference
TV_RESNETS["resnet10"] = lambda **kw: torchvision.models.resnet.ResNet(
    torchvision.models.resnet.BasicBlock, [1, 1, 1, 1], **kw)


def _assert_same_state(ours: nn.Module, reference: nn.Module) -> None:
    """Same keys in the same order, every tensor torch.equal (values, dtype and shape)."""
    a, b = ours.state_dict(), reference.state_dict()
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


def _seeded(seed: int, build, *args, **kwargs):
    """(build(*args, **kwargs) right after manual_seed(seed), the RNG state it left behind)."""
    torch.manual_seed(seed)
    module = build(*args, **kwargs)
    return module, torch.get_rng_state()


@pytest.mark.parametrize("name,kwargs", [
    ("resnet10", {}),
    ("resnet18", {}),
    ("resnet18", {"norm_layer": FrozenBatchNorm2d}),
    ("resnet50", {"norm_layer": FrozenBatchNorm2d}),
    ("resnet50", {"norm_layer": FrozenBatchNorm2d, "replace_stride_with_dilation": [False, False, True]}),
    ("resnet34", {"num_classes": 7}),
])  # fmt: skip
def test_random_init_equals_torchvision_after_the_same_seed(name, kwargs):
    for seed in (0, 1234):
        ours, ours_rng = _seeded(seed, resnet.RESNETS[name], **kwargs)
        ref, ref_rng = _seeded(seed, TV_RESNETS[name], **kwargs)
        _assert_same_state(ours, ref)
        assert torch.equal(ours_rng, ref_rng)  # the next draw after construction is the same too


@pytest.mark.parametrize("name", ["resnet10", "resnet34", "resnet101"])
def test_module_names_and_shapes_equal_torchvision(name):
    with torch.device("meta"):  # no memory, no RNG: only the structure is compared
        ours, ref = resnet.RESNETS[name](), TV_RESNETS[name]()
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == \
        [(k, v.shape) for k, v in ref.state_dict().items()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in ref.named_modules()]


def test_full_forward_and_gradients_equal_torchvision():
    torch.manual_seed(3)
    ours, ref = resnet.resnet18(num_classes=5), TV_RESNETS["resnet18"](num_classes=5)
    ref.load_state_dict(ours.state_dict())
    images = torch.randn(2, 3, 48, 40)
    for mode in (True, False):
        ours.train(mode), ref.train(mode)
        out_ours, out_ref = ours(images), ref(images)
        assert torch.equal(out_ours, out_ref)
        out_ours.square().sum().backward()
        out_ref.square().sum().backward()
        for (key, p), q in zip(ours.named_parameters(), ref.parameters(), strict=True):
            assert torch.equal(p.grad, q.grad), key
        _assert_same_state(ours, ref)  # batch statistics updated identically in train mode


def test_dilation_is_refused_for_basic_blocks_as_torchvision_does():
    with pytest.raises(ValueError, match="Bottleneck"):
        resnet.resnet18(replace_stride_with_dilation=[False, False, True])
    with pytest.raises(NotImplementedError):
        TV_RESNETS["resnet18"](replace_stride_with_dilation=[False, False, True])
    with pytest.raises(ValueError, match="3 entries"):
        resnet.resnet50(replace_stride_with_dilation=[True])


def _reference_backbone(monkeypatch, *args, **kwargs) -> Backbone:
    """hqm's Backbone built and run on torchvision's ResNet (the pre-change code path)."""
    with monkeypatch.context() as patch:
        patch.setattr(backbone_module, "RESNETS", TV_RESNETS)
        reference = Backbone(*args, **kwargs)
    assert type(reference.body.layer1[0]).__module__ == "torchvision.models.resnet"
    return reference


@pytest.mark.parametrize("name,norm,dilation", [
    ("resnet10", "batch", False),
    ("resnet18", "batch", False),
    ("resnet18", "frozen", False),
    ("resnet50", "frozen", False),
    ("resnet50", "frozen", True),
    ("resnet50", "batch", True),
])  # fmt: skip
def test_backbone_equals_the_torchvision_based_backbone(monkeypatch, name, norm, dilation):
    for out_stage in ("layer4", "layer2"):
        ours, ours_rng = _seeded(7, Backbone, name, dilation, norm=norm, out_stage=out_stage)
        ref, ref_rng = _seeded(7, _reference_backbone, monkeypatch, name, dilation, norm=norm, out_stage=out_stage)
        _assert_same_state(ours, ref)
        assert torch.equal(ours_rng, ref_rng)
        with torch.no_grad():  # non-trivial frozen statistics, so the folding is exercised
            for module in (m for m in ours.modules() if isinstance(m, FrozenBatchNorm2d)):
                module.running_var.uniform_(0.5, 2.0)
                module.running_mean.normal_(0, 0.1)
        ref.load_state_dict(ours.state_dict())
        images, mask = torch.randn(2, 3, 64, 48), torch.zeros(2, 64, 48, dtype=torch.bool)
        mask[1, :, 40:] = True
        with monkeypatch.context() as patch:
            for mode in (True, False):
                ours.train(mode), ref.train(mode)
                feats, small = ours(images, mask)
                patch.setattr(backbone_module, "Bottleneck", torchvision.models.resnet.Bottleneck)
                ref_feats, ref_small = ref(images, mask)
                patch.undo()
                assert torch.equal(feats, ref_feats) and torch.equal(small, ref_small)
                feats.sum().backward()
                ref_feats.sum().backward()
                for (key, p), q in zip(ours.named_parameters(), ref.parameters(), strict=True):
                    assert (p.grad is None) == (q.grad is None) and (p.grad is None or torch.equal(p.grad, q.grad)), key
                _assert_same_state(ours, ref)


def test_torchvision_checkpoint_loads_unchanged(tmp_path):
    torch.manual_seed(5)
    reference = TV_RESNETS["resnet50"]()
    with torch.no_grad():
        for p in reference.parameters():
            p.normal_()
    torch.save(reference.state_dict(), tmp_path / "r50.pth")
    backbone = Backbone("resnet50")
    backbone.load_torchvision_weights(tmp_path / "r50.pth")
    for key, value in backbone.body.state_dict().items():
        assert torch.equal(value, reference.state_dict()[key]), key


def test_resnet10_is_resnet18_without_the_second_block_of_each_stage():
    with torch.device("meta"):
        small, full = resnet.resnet10(), resnet.resnet18()
    full_shapes = {k: v.shape for k, v in full.state_dict().items()}
    small_shapes = {k: v.shape for k, v in small.state_dict().items()}
    assert small_shapes == {k: s for k, s in full_shapes.items() if not re.match(r"layer\d\.1\.", k)}
    assert all(f"layer{i}.1.conv1.weight" in full_shapes for i in range(1, 5))
