"""ResNet-18 and ResNet-50 from torchvision, for any number of input channels.

The ImageNet stem (7×7 stride-2 conv, then a stride-2 max-pool) shrinks a 32×32
image to 8×8 before the first block; ``small_image_stem`` swaps it for a 3×3
stride-1 conv and no max-pool, as is usual for CIFAR-sized images.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision import models


class ResNet(nn.Module):
    def __init__(self, build: Callable[..., models.ResNet], in_channels: int, small_image_stem: bool = True):
        super().__init__()
        net = build(weights=None)
        stem_width = net.conv1.out_channels
        if small_image_stem:
            net.conv1 = nn.Conv2d(in_channels, stem_width, 3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        else:
            net.conv1 = nn.Conv2d(in_channels, stem_width, 7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.feature_dim = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of each residual stage, shallow to deep (the last one is what ``forward`` pools)."""
        net = self.net
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        maps = []
        for stage in (net.layer1, net.layer2, net.layer3, net.layer4):
            x = stage(x)
            maps.append(x)
        return maps


def resnet18(in_channels: int, small_image_stem: bool = True) -> ResNet:
    return ResNet(models.resnet18, in_channels, small_image_stem)


def resnet50(in_channels: int, small_image_stem: bool = True) -> ResNet:
    return ResNet(models.resnet50, in_channels, small_image_stem)
