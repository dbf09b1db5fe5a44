"""HRNet backbone of ReFit (W48 or W32), with the official state_dict names.

Layout (width ``w`` = 48 or 32): a stride-4 stem (two stride-2 3x3 convs and four
bottlenecks), then stages of 2, 3 and 4 parallel branches of ``w, 2w, 4w, 8w`` channels at
strides 4, 8, 16, 32, exchanging information in fuse layers after every module.
ReFit adds two heads on top of the four branch outputs:

* a feature map: branches 1-3 are brought to stride 4 by repeated (bilinear x2 with
  ``align_corners=True``, conv3x3, BN, ReLU) and concatenated with branch 0 -> ``15w``
  channels (720 for W48) at 64x64 for a 256x256 crop;
* a global vector ``z``: branch 0 is walked down by stride-2 conv3x3 + BN + ReLU blocks,
  adding the next branch after each, then conv1x1 + BN + ReLU and a global average ->
  ``8w`` values (384 for W48).

The three downsample blocks are registered twice (``downsample_stage_{1,2,3}`` and
``downsamples.{0,1,2}``, the same module objects) because the official checkpoints hold
both names.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: HRNet variants ReFit ships: name -> width of the highest-resolution branch.
HRNET_WIDTHS = {"hrnet_w48": 48, "hrnet_w32": 32}


@dataclass(frozen=True)
class HRNetDims:
    """Output sizes of an HRNet variant.

    Attributes
    ----------
    width : int
        Channels of branch 0 (48 or 32).
    feature_dim : int
        Channels of the stride-4 feature map (``15 * width``).
    z_dim : int
        Size of the global vector (``8 * width``).
    """

    width: int

    @property
    def feature_dim(self) -> int:
        return 15 * self.width

    @property
    def z_dim(self) -> int:
        return 8 * self.width


def hrnet_dims(name: str) -> HRNetDims:
    """Sizes of the backbone called ``name`` (``hrnet_w48`` or ``hrnet_w32``)."""
    if name not in HRNET_WIDTHS:
        raise ValueError(f"unknown backbone {name!r}; use one of {sorted(HRNET_WIDTHS)}")
    return HRNetDims(HRNET_WIDTHS[name])


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=1, padding=0, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual (optionally projected by ``downsample``)."""

    expansion = 1

    def __init__(self, cin: int, planes: int, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv3x3(cin, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        residual = x if self.downsample is None else self.downsample(x)
        return F.relu(out + residual)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 (x4 channels) with a residual."""

    expansion = 4

    def __init__(self, cin: int, planes: int, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv1x1(cin, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * 4)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        residual = x if self.downsample is None else self.downsample(x)
        return F.relu(out + residual)


def _blocks(block: type, cin: int, planes: int, count: int) -> nn.Sequential:
    """``count`` blocks; the first projects the residual when the channel count changes."""
    cout = planes * block.expansion
    proj = None
    if cin != cout:
        proj = nn.Sequential(_conv1x1(cin, cout), nn.BatchNorm2d(cout))
    layers = [block(cin, planes, proj)] + [block(cout, planes) for _ in range(count - 1)]
    return nn.Sequential(*layers)


class _NearestUp(nn.Module):
    """Nearest-neighbour upsampling by an integer factor (the fuse layers' convention)."""

    def __init__(self, factor: int):
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=self.factor, mode="nearest")


def _fuse_path(channels: list[int], src: int, dst: int) -> nn.Module:
    """Map branch ``src`` onto branch ``dst``'s resolution and channels."""
    if src > dst:  # lower resolution -> 1x1 conv, BN, nearest upsample
        return nn.Sequential(_conv1x1(channels[src], channels[dst]),
                             nn.BatchNorm2d(channels[dst]), _NearestUp(2 ** (src - dst)))
    steps = []
    for k in range(dst - src):  # higher resolution -> stride-2 3x3 convs
        last = k == dst - src - 1
        cout = channels[dst] if last else channels[src]
        layers: list[nn.Module] = [_conv3x3(channels[src], cout, 2), nn.BatchNorm2d(cout)]
        if not last:
            layers.append(nn.ReLU())
        steps.append(nn.Sequential(*layers))
    return nn.Sequential(*steps)


class HRModule(nn.Module):
    """One multi-resolution module: per-branch BasicBlocks, then all-to-all fusion."""

    def __init__(self, channels: list[int], num_blocks: int = 4):
        super().__init__()
        n = len(channels)
        self.branches = nn.ModuleList(
            [_blocks(BasicBlock, c, c, num_blocks) for c in channels])
        self.fuse_layers = nn.ModuleList([
            nn.ModuleList([nn.Identity() if j == i else _fuse_path(channels, j, i)
                           for j in range(n)])
            for i in range(n)
        ])

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for i, paths in enumerate(self.fuse_layers):
            # Summation order as in the reference (branch 0 first), for float parity.
            y = xs[0] if i == 0 else paths[0](xs[0])
            for j in range(1, len(xs)):
                y = y + (xs[j] if i == j else paths[j](xs[j]))
            out.append(F.relu(y))
        return out


def _transition(prev: list[int], cur: list[int]) -> nn.ModuleList:
    """Adapt the previous stage's branches and spawn the new lowest-resolution branch."""
    layers: list[nn.Module] = []
    for i, c in enumerate(cur):
        if i < len(prev):
            if c == prev[i]:
                layers.append(nn.Identity())
            else:
                layers.append(nn.Sequential(_conv3x3(prev[i], c), nn.BatchNorm2d(c), nn.ReLU()))
        else:
            steps = []
            for k in range(i + 1 - len(prev)):
                cout = c if k == i - len(prev) else prev[-1]
                steps.append(nn.Sequential(_conv3x3(prev[-1], cout, 2), nn.BatchNorm2d(cout),
                                           nn.ReLU()))
            layers.append(nn.Sequential(*steps))
    return nn.ModuleList(layers)


def _upsample_head(channels: int, times: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(times):
        layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                   _conv3x3(channels, channels), nn.BatchNorm2d(channels), nn.ReLU()]
    return nn.Sequential(*layers)


def _downsample_block(channels: int) -> nn.Sequential:
    return nn.Sequential(_conv3x3(channels, 2 * channels, 2), nn.BatchNorm2d(2 * channels),
                         nn.ReLU())


class HRNet(nn.Module):
    """HRNet backbone returning ReFit's feature map and global vector.

    Parameters
    ----------
    width : int
        48 (``hrnet_w48``, the official ReFit model) or 32 (``hrnet_w32``).
    """

    def __init__(self, width: int = 48):
        super().__init__()
        w = width
        self.width = w
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.layer1 = _blocks(Bottleneck, 64, 64, 4)

        c2, c3, c4 = [w, 2 * w], [w, 2 * w, 4 * w], [w, 2 * w, 4 * w, 8 * w]
        self.transition1 = _transition([256], c2)
        self.stage2 = nn.Sequential(HRModule(c2))
        self.transition2 = _transition(c2, c3)
        self.stage3 = nn.Sequential(*[HRModule(c3) for _ in range(4)])
        self.transition3 = _transition(c3, c4)
        self.stage4 = nn.Sequential(*[HRModule(c4) for _ in range(3)])

        self.upsample_stage_2 = _upsample_head(c4[1], 1)
        self.upsample_stage_3 = _upsample_head(c4[2], 2)
        self.upsample_stage_4 = _upsample_head(c4[3], 3)

        self.downsample_stage_1 = _downsample_block(c4[0])
        self.downsample_stage_2 = _downsample_block(c4[1])
        self.downsample_stage_3 = _downsample_block(c4[2])
        # Same objects under a second name: official checkpoints carry both.
        self.downsamples = nn.ModuleList(
            [self.downsample_stage_1, self.downsample_stage_2, self.downsample_stage_3])
        self.final_layer = nn.Sequential(_conv1x1(c4[3], c4[3]), nn.BatchNorm2d(c4[3]),
                                         nn.ReLU())

    @staticmethod
    def _enter(transition: nn.ModuleList, ys: list[Tensor]) -> list[Tensor]:
        # Existing branches pass through (or are adapted); new ones start from the last.
        return [t(ys[i]) if i < len(ys) else t(ys[-1]) for i, t in enumerate(transition)]

    def forward(self, img: Tensor) -> tuple[Tensor, Tensor]:
        """Encode a batch of crops.

        Parameters
        ----------
        img : Tensor
            ``B x 3 x H x W`` normalised RGB crop (H = W = 256 for ReFit).

        Returns
        -------
        feature : Tensor
            ``B x 15w x H/4 x W/4`` multi-resolution feature map.
        z : Tensor
            ``B x 8w`` global feature vector.
        """
        x = F.relu(self.bn1(self.conv1(img)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.layer1(x)
        ys = self.stage2(self._enter(self.transition1, [x]))
        ys = self.stage3(self._enter(self.transition2, ys))
        ys = self.stage4(self._enter(self.transition3, ys))

        feature = torch.cat([ys[0], self.upsample_stage_2(ys[1]),
                             self.upsample_stage_3(ys[2]), self.upsample_stage_4(ys[3])], dim=1)

        y = ys[0]
        for i, down in enumerate(self.downsamples):
            y = down(y) + ys[i + 1]
        y = self.final_layer(y)
        z = F.avg_pool2d(y, kernel_size=y.shape[-1]).flatten(1)
        return feature, z
