"""ResNet backbone with frozen batch norm; C5 output only (method.md §1.2)."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hqm.errors import HqmError
from hqm.models.resnet import RESNETS, Bottleneck

RESNET_CHANNELS = {"resnet10": 512, "resnet18": 512, "resnet34": 512, "resnet50": 2048, "resnet101": 2048}
TRAINABLE_STAGES = ("layer2", "layer3", "layer4")
STAGES = ("layer1", "layer2", "layer3", "layer4")


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters, all stored as buffers.

    y = (x - running_mean) * weight / sqrt(running_var + eps) + bias, eps = 1e-5 (as DETR).
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # torchvision checkpoints carry num_batches_tracked, which a frozen norm does not have
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)


def conv_frozen_bn(x: Tensor, conv: nn.Conv2d, bn: FrozenBatchNorm2d) -> Tensor:
    """bn(conv(x)) computed as one convolution with the norm folded into weight and bias.

    Same math (up to float rounding) and the same gradients for the conv weight, but no extra
    pass over the activations forward and backward.
    """
    scale = bn.weight * (bn.running_var + bn.eps).rsqrt()
    shift = bn.bias - bn.running_mean * scale
    return F.conv2d(x, conv.weight * scale.view(-1, 1, 1, 1), shift, conv.stride, conv.padding,
                    conv.dilation, conv.groups)


def _block_forward(block: nn.Module, x: Tensor) -> Tensor:
    """A BasicBlock / Bottleneck (hqm.models.resnet) with folded norms (frozen, or BatchNorm in eval mode)."""
    # in-place ReLUs are safe: a convolution's backward needs its input, not its output
    out = F.relu(conv_frozen_bn(x, block.conv1, block.bn1), inplace=True)
    if isinstance(block, Bottleneck):
        out = F.relu(conv_frozen_bn(out, block.conv2, block.bn2), inplace=True)
        out = conv_frozen_bn(out, block.conv3, block.bn3)
    else:
        out = conv_frozen_bn(out, block.conv2, block.bn2)
    identity = x if block.downsample is None else conv_frozen_bn(x, block.downsample[0], block.downsample[1])
    return F.relu(out + identity, inplace=True)


class Backbone(nn.Module):
    """``body`` = the ResNet up to ``out_stage``; returns its map and the padding mask resized to it.

    The paper's backbone (defaults): frozen norms, conv1/bn1/layer1 frozen, C5 (layer4) output.
    ``norm="batch"`` (trainable BatchNorm), an earlier ``out_stage`` and ``train_stem`` are for
    training from scratch on small images, where frozen random statistics do not normalise and a
    stride-32 map of a 96-px image has 3 x 3 positions.
    """

    def __init__(self, name: str = "resnet50", dilation: bool = False, channels_last: bool = False,
                 norm: str = "frozen", out_stage: str = "layer4", train_stem: bool = False):
        super().__init__()
        if name not in RESNET_CHANNELS:
            raise ValueError(f"unknown backbone {name!r} (one of {', '.join(RESNET_CHANNELS)})")
        if norm not in ("frozen", "batch") or out_stage not in STAGES[1:]:
            raise ValueError(f"unknown backbone norm {norm!r} or output stage {out_stage!r}")
        kwargs = {"norm_layer": FrozenBatchNorm2d if norm == "frozen" else nn.BatchNorm2d}
        if dilation:
            kwargs["replace_stride_with_dilation"] = [False, False, True]
        # the whole network (fc included) is built, then trimmed: the RNG draws stay torchvision's
        resnet = RESNETS[name](**kwargs)
        keys = ("conv1", "bn1", "relu", "maxpool") + STAGES[: STAGES.index(out_stage) + 1]
        self.body = nn.Sequential(OrderedDict((key, getattr(resnet, key)) for key in keys))
        if not train_stem:  # no gradient ever reaches conv1/bn1/layer1: their backward is skipped
            for pname, param in self.body.named_parameters():
                if not pname.startswith(TRAINABLE_STAGES):
                    param.requires_grad_(False)
        # output channels: the last stage's, scaled back from C5 by 2 per skipped stage
        self.num_channels = RESNET_CHANNELS[name] // 2 ** (len(STAGES) - 1 - STAGES.index(out_stage))
        self.channels_last = channels_last
        self.folded = norm == "frozen"

    def forward(self, images: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """images [B, 3, H, W], mask Bool[B, H, W] -> (features [B, C, h, w], Bool[B, h, w])."""
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        body = self.body
        # a trainable BatchNorm in eval mode is a fixed affine map too: fold it (same math)
        if self.folded or not self.training:
            x = body.maxpool(F.relu(conv_frozen_bn(images, body.conv1, body.bn1), inplace=True))
            for stage in STAGES:
                if stage in body._modules:
                    for block in body._modules[stage]:
                        x = _block_forward(block, x)
        else:
            x = body(images)
        features = x.contiguous()
        small_mask = F.interpolate(mask[None].float(), size=features.shape[-2:]).to(torch.bool)[0]
        return features, small_mask

    def load_torchvision_weights(self, path: str | Path) -> None:
        """Load an ImageNet ResNet state dict in torchvision format (``fc.*`` is ignored)."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise HqmError(f"{path}: file not found") from None
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
            raise HqmError(f"{path}: not a readable torchvision ResNet state dict ({type(exc).__name__})") from None
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]
        if not isinstance(state, dict):
            raise HqmError(f"{path}: expected a state dict, got {type(state).__name__}")
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        try:
            result = self.body.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # shape mismatch, e.g. resnet18 weights into resnet50
            first = str(exc).strip().splitlines()[-1].strip()[:160]
            raise HqmError(f"{path}: not a matching torchvision ResNet ({first})") from None
        if result.missing_keys or result.unexpected_keys:
            raise HqmError(
                f"{path}: not a matching torchvision ResNet: missing {result.missing_keys[:5]}, "
                f"unexpected {result.unexpected_keys[:5]}"
            )


def build_backbone(name: str, dilation: bool = False, pretrained_path: str | None = None,
                   channels_last: bool = False, norm: str = "frozen", out_stage: str = "layer4",
                   train_stem: bool = False) -> Backbone:
    backbone = Backbone(name, dilation, channels_last, norm, out_stage, train_stem)
    if pretrained_path:
        backbone.load_torchvision_weights(pretrained_path)
    return backbone
