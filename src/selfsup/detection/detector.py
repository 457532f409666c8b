"""torchvision's FCOS (Tian et al., 2019) on a selfsup encoder's stride-8 and stride-16 maps.

``EncoderPyramid`` is the detector's backbone: for each level it takes the deepest
encoder map whose stride is at most the level's and max-pools it down to the level's
stride (a small CNN's deepest map has stride 4, a small-stem ResNet's 8), or upsamples the
finest map when every map is coarser (a ViT with 16-pixel patches); a feature pyramid
network then gives both levels ``fpn_channels`` channels. The encoder normalises its
inputs itself, so torchvision's transform only batches them (mean 0, std 1), and
``min_size = max_size`` = the canvas size keeps it from resizing them to 800 pixels.

In ``frozen`` mode the encoder's weights get no gradient and its batch norms stay in
eval mode; in ``finetune`` mode it trains with the rest. With ``bf16`` the encoder runs under bf16
autocast (the costly part on CPUs with bf16 units), its maps and everything after it in float32.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import FeaturePyramidNetwork

from selfsup.models import Encoder

STRIDES = (8, 16)
# One anchor per location, half the level's stride: FCOS assigns a location the objects whose largest
# distance to the box's sides lies in (4, 8) × the anchor size, so stride 8 takes the objects up to
# about 32 pixels across and stride 16 the larger ones (torchvision's sizes, 8 and 16, send every
# 20–44 pixel garment to stride 8).
ANCHOR_SIZES = tuple((stride // 2,) for stride in STRIDES)


def _level_source(strides: list[int], level: int) -> int:
    """The stride of the encoder map a pyramid level is made from: the deepest one at most as coarse."""
    finer = [stride for stride in strides if stride <= level]
    return max(finer) if finer else min(strides)


class EncoderPyramid(nn.Module):
    def __init__(self, encoder: Encoder, channels: int, image_size: int, frozen: bool, bf16: bool = False):
        super().__init__()
        self.encoder = encoder.requires_grad_(not frozen)
        self.frozen = frozen
        self.bf16 = bf16
        was_training = encoder.training
        with torch.no_grad():
            probe = encoder.eval().spatial_maps(torch.zeros(1, encoder.config["in_channels"], image_size, image_size))
        encoder.train(was_training)
        self.sources = [_level_source(list(probe), stride) for stride in STRIDES]
        self.fpn = FeaturePyramidNetwork([probe[source].shape[1] for source in self.sources], channels)
        self.out_channels = channels

    def train(self, mode: bool = True) -> EncoderPyramid:
        super().train(mode)
        if self.frozen:
            self.encoder.eval()
        return self

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        with (
            torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen),
            torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16),
        ):
            maps = self.encoder.spatial_maps(x)
        levels = OrderedDict()
        for stride, source in zip(STRIDES, self.sources):
            size = (math.ceil(x.shape[-2] / stride), math.ceil(x.shape[-1] / stride))
            level = maps[source].float()
            if source < stride:
                level = F.adaptive_max_pool2d(level, size)
            elif level.shape[-2:] != size:
                level = F.interpolate(level, size=size, mode="nearest")
            levels[f"stride{stride}"] = level
        return self.fpn(levels)


def build_detector(
    encoder: Encoder,
    n_classes: int,
    image_size: int,
    frozen: bool,
    fpn_channels: int,
    score_threshold: float,
    bf16: bool = False,
) -> FCOS:
    """FCOS for ``n_classes`` on square ``image_size`` inputs in [0, 1], on ``encoder`` (which it keeps);
    ``bf16``: the encoder runs under bf16 autocast, the pyramid and the head in float32."""
    channels = encoder.config["in_channels"]
    return FCOS(
        EncoderPyramid(encoder, fpn_channels, image_size, frozen, bf16),
        num_classes=n_classes,
        min_size=image_size,
        max_size=image_size,
        image_mean=[0.0] * channels,
        image_std=[1.0] * channels,
        anchor_generator=AnchorGenerator(ANCHOR_SIZES, ((1.0,),) * len(STRIDES)),
        score_thresh=score_threshold,
    )
