"""ResNet-18/34/50/101 (He et al. 2016) with torchvision's module names and initialisation.

Written so that ``import torchvision`` (about 3 s of CPU per process: it pulls in torch._dynamo)
is not needed at runtime, while staying interchangeable with torchvision's ResNet:

* module names, and therefore state-dict keys, are torchvision's, so torchvision / DETR
  checkpoints load unchanged;
* construction draws from the global torch RNG in torchvision's order (every layer's own
  ``reset_parameters`` as it is created, a block's downsample before the block, ``fc`` last, then
  kaiming-normal for every convolution in registration order), so after ``torch.manual_seed(s)``
  the random weights equal torchvision's tensor for tensor.

tests/models/test_resnet.py checks both against torchvision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

NormLayer = Callable[[int], nn.Module]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    """3 x 3 convolution, padding = dilation (keeps the size at stride 1), no bias (a norm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation,
                     bias=False, dilation=dilation)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1 x 1 convolution without bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3 x 3 convolutions plus the identity (ResNet-18/34): [B, inplanes, H, W] -> [B, planes, H/s, W/s]."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 dilation: int = 1, norm_layer: NormLayer = nn.BatchNorm2d):
        super().__init__()
        if dilation > 1:  # as torchvision: dilation is only defined for bottleneck ResNets
            raise ValueError("dilation > 1 needs a Bottleneck ResNet (resnet50/101), not resnet18/34")
        # registration order = torchvision's: state_dict order and the init loop follow it
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        """x [B, C_in, H, W] -> [B, planes, H', W']."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    """1 x 1 reduce, 3 x 3 (stride and dilation here), 1 x 1 expand by 4, plus the identity (ResNet-50/101)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 dilation: int = 1, norm_layer: NormLayer = nn.BatchNorm2d):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = norm_layer(planes)
        self.conv2 = conv3x3(planes, planes, stride, dilation)
        self.bn2 = norm_layer(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        """x [B, C_in, H, W] -> [B, 4 * planes, H', W']."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        out += identity
        return self.relu(out)


Block = type[BasicBlock] | type[Bottleneck]


class ResNet(nn.Module):
    """Stem (7 x 7 / 2 conv, norm, ReLU, 3 x 3 / 2 max pool), four stages, global pool, ``fc``.

    images [B, 3, H, W] -> logits [B, num_classes]; ``layer4`` has stride 32 (16 with dilation).
    """

    def __init__(self, block: Block, layers: Sequence[int], num_classes: int = 1000,
                 replace_stride_with_dilation: Sequence[bool] | None = None,
                 norm_layer: NormLayer | None = None):
        super().__init__()
        self._norm_layer = norm_layer or nn.BatchNorm2d
        dilate = list(replace_stride_with_dilation or (False, False, False))
        if len(dilate) != 3:
            raise ValueError(f"replace_stride_with_dilation needs 3 entries, got {dilate}")
        self.inplanes, self.dilation = 64, 1
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = self._norm_layer(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2, dilate=dilate[0])
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2, dilate=dilate[1])
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2, dilate=dilate[2])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        # built even when unused: its reset_parameters draws from the RNG, as torchvision's does
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int = 1,
                    dilate: bool = False) -> nn.Sequential:
        """One stage of ``blocks`` blocks; with ``dilate`` the stride becomes dilation from block 2 on."""
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            # created before the first block: its convolution's default init draws first
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       self._norm_layer(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, previous_dilation, self._norm_layer)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, dilation=self.dilation, norm_layer=self._norm_layer))
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """images [B, 3, H, W] -> logits [B, num_classes]."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet10(**kwargs) -> ResNet:
    """ResNet-10: one basic block per stage, half of ResNet-18's depth (no torchvision builder; its
    module names and init order are ResNet-18's with the second block of each stage left out)."""
    return ResNet(BasicBlock, [1, 1, 1, 1], **kwargs)


def resnet18(**kwargs) -> ResNet:
    """ResNet-18, random weights; ``kwargs`` as :class:`ResNet` (num_classes, norm_layer, ...)."""
    return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)


def resnet34(**kwargs) -> ResNet:
    """ResNet-34, random weights."""
    return ResNet(BasicBlock, [3, 4, 6, 3], **kwargs)


def resnet50(**kwargs) -> ResNet:
    """ResNet-50, random weights."""
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)


def resnet101(**kwargs) -> ResNet:
    """ResNet-101, random weights."""
    return ResNet(Bottleneck, [3, 4, 23, 3], **kwargs)


RESNETS: dict[str, Callable[..., ResNet]] = {
    "resnet10": resnet10, "resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50, "resnet101": resnet101,
}
