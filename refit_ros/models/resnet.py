"""ResNet-50 feature extractor (HMR's encoder).

Module names follow the common ResNet layout (``conv1``, ``bn1``, ``layer1..4`` of
bottlenecks with ``conv1..3``, ``bn1..3`` and ``downsample.{0,1}``), so ImageNet or
SPIN/HMR ResNet-50 state dicts load by name. The stride sits on the 3x3 conv (v1.5).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class ResBottleneck(nn.Module):
    """1x1 -> 3x3 (stride) -> 1x1 x4, with a projected residual when the shape changes."""

    def __init__(self, cin: int, planes: int, stride: int = 1):
        super().__init__()
        cout = planes * 4
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


def _layer(cin: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    mods = [ResBottleneck(cin, planes, stride)]
    mods += [ResBottleneck(planes * 4, planes) for _ in range(blocks - 1)]
    return nn.Sequential(*mods)


class ResNet50(nn.Module):
    """ResNet-50 up to global average pooling: ``B x 3 x H x W`` -> ``B x 2048``."""

    out_dim = 2048

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = _layer(64, 64, 3, 1)
        self.layer2 = _layer(256, 128, 4, 2)
        self.layer3 = _layer(512, 256, 6, 2)
        self.layer4 = _layer(1024, 512, 3, 2)

    def forward(self, img: Tensor) -> Tensor:
        """``img``: ``B x 3 x H x W`` normalised RGB -> ``B x 2048`` pooled feature."""
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(img))), 3, 2, 1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))
