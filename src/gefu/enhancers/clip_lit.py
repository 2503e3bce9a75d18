"""CLIP-LIT: Iterative Prompt Learning for Unsupervised Backlit Image Enhancement (Liang, Li, Zhou, Feng, Loy;
ICCV 2023).

CLIP-LIT trains an enhancement network with prompts learned in CLIP's latent space; CLIP is only part of the
training losses, so inference runs the enhancement network alone. That network (official
`model_small.UNet_emb_oneBranch_symmetry(3, 1)`, the one `test.py` builds) predicts a 1-channel light map L
from the image x in [0, 1], and the result is the Retinex quotient:

    y = clamp(x / L, 0, 1)                         L: (N, 1, H, W) ≥ 0 (ReLU), broadcast over RGB

Network (all spatial sizes kept; 3×3 convs use reflect padding except the pyramid-pooling fuse conv, which
pads with zeros as in the official code):

    f  = LeakyReLU₀.₂(cond1(x))                    (N, 32, H, W)
    f  = RB2(RB1(f));  f = PPM(f);  f = condx(f)   (N, 64, H, W)     PPM: pooled to 1, 2, 3, 6 cells, 1×1 conv
    f  = condy(RB4(RB3(f)))                        (N, 32, H, W)          to 8 ch, PReLU, bilinear back
    f  = RB6(RB5(f))                                                      (align_corners=True), concat, 3×3
    L  = ReLU(cond_add1(f))                        (N, 1, H, W)           conv to 32 ch, PReLU
    RB(f) = LeakyReLU₀.₂(f + conv(LeakyReLU₀.₂(conv(f))))   bias-free 3×3 convs

Weights: github.com/ZhexinLiang/CLIP-LIT `pretrained_models/enhancement_model.pth` (saved from DataParallel:
`module.` prefixes, stripped on load as the official script does; the repository has no licence file, its README
mentions NTU's S-Lab licence in a commented-out section). Any input size from 2×2 up (reflect padding needs 2
pixels; smaller inputs are replicate-padded to 2 and cropped back).

Deviation: where L = 0 and x = 0 the official quotient is 0/0 = NaN (saved as 0 by `torchvision.utils.save_image`
on the usual platforms); gefu returns 0 there so outputs stay finite. x > 0 over L = 0 gives +inf → 1 in both.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import ENHANCERS, PublishedFigure
from .cnn import CNNEnhancer, DtypeArg, WeightsArg, load_strict, read_checkpoint
from .layers import BorderConv2d, conv_cat


def conv3x3(c_in: int, c_out: int, bias: bool) -> nn.Conv2d:
    """3×3 conv, stride 1, reflect padding 1 (`BorderConv2d`: without a padded copy of the input)."""
    return BorderConv2d(c_in, c_out, 3, 1, 1, bias=bias, padding_mode="reflect")


class ResidualBlock(nn.Module):
    """RB(f) = LeakyReLU₀.₂(f + conv2(LeakyReLU₀.₂(conv1(f)))): (N, C, H, W) → (N, C, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels, bias=False)
        self.conv2 = conv3x3(channels, channels, bias=False)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.leaky_relu(self.conv1(f), 0.2, inplace=True))
        return F.leaky_relu(out.add_(f), 0.2, inplace=True)  # in place on the fresh conv output: same values


class PyramidPooling(nn.Module):
    """PSPNet-style pyramid pooling (official `PPM1`): (N, C, H, W) → (N, C, H, W)."""

    def __init__(self, channels: int = 32, reduction: int = 8, bins: tuple[int, ...] = (1, 2, 3, 6)) -> None:
        super().__init__()
        self.features = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), nn.Conv2d(channels, reduction, 1, bias=False), nn.PReLU())
            for b in bins
        )
        self.fuse = nn.Sequential(
            nn.Conv2d(channels + reduction * len(bins), channels, 3, padding=1, bias=False), nn.PReLU()
        )

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        size = f.shape[-2:]
        pooled = [F.interpolate(branch(f), size, mode="bilinear", align_corners=True) for branch in self.features]
        # conv of cat(f, pooled) (N, C + 4·reduction, H, W) → (N, C, H, W), without copying f into the concatenation
        return self.fuse[1](conv_cat(self.fuse[0], (f, torch.cat(pooled, 1))))


class LightMapNet(nn.Module):
    """CLIP-LIT's enhancement network: x (N, 3, H, W) → light map L (N, 1, H, W) ≥ 0 (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.cond1 = conv3x3(3, 32, bias=True)
        self.cond_add1 = conv3x3(32, 1, bias=True)
        self.condx = conv3x3(32, 64, bias=True)
        self.condy = conv3x3(64, 32, bias=True)
        self.ResidualBlock1 = ResidualBlock(32)
        self.ResidualBlock2 = ResidualBlock(32)
        self.ResidualBlock3 = ResidualBlock(64)
        self.ResidualBlock4 = ResidualBlock(64)
        self.ResidualBlock5 = ResidualBlock(32)
        self.ResidualBlock6 = ResidualBlock(32)
        self.PPM1 = PyramidPooling(32, 8, (1, 2, 3, 6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = F.leaky_relu(self.cond1(x), 0.2, inplace=True)  # (N, 32, H, W)
        f = self.condx(self.PPM1(self.ResidualBlock2(self.ResidualBlock1(f))))  # (N, 64, H, W)
        f = self.condy(self.ResidualBlock4(self.ResidualBlock3(f)))  # (N, 32, H, W)
        f = self.ResidualBlock6(self.ResidualBlock5(f))
        return self.cond_add1(f).relu_()  # (N, 1, H, W)


def divide_by_light(x: torch.Tensor, light: torch.Tensor) -> torch.Tensor:
    """clamp(x / L, 0, 1) with 0/0 → 0: x (N, 3, H, W), light (N, 1, H, W) → (N, 3, H, W)."""
    return (x / light).nan_to_num(nan=0.0).clamp(0.0, 1.0)


@ENHANCERS.register("clip-lit")
class CLIPLIT(CNNEnhancer):
    """CLIP-LIT (ICCV 2023): the official enhancement network's light map, y = clamp(x / L, 0, 1).

    Options: `weights` (None → the official `enhancement_model.pth`, or a path), `allow_random`, `seed`. Trained
    for backlit photos; no CLIP at inference. Deviation: 0/0 → 0 instead of NaN (module docstring).
    """

    name = "clip-lit"
    weight_names = ("clip-lit",)
    min_side = 2  # reflect padding needs 2 pixels
    published_lol_v1: PublishedFigure | None = None

    def __init__(self, weights: WeightsArg = None, allow_random: bool = False, seed: int = 0,
                 dtype: DtypeArg = None) -> None:
        super().__init__(weights=weights, allow_random=allow_random, seed=seed, dtype=dtype)

    def build(self) -> nn.Module:
        return LightMapNet()

    def load(self, paths: dict[str, Path]) -> None:
        path = paths["clip-lit"]
        load_strict(self.net, read_checkpoint(path), f"{path} (a CLIP-LIT enhancement network)")

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return divide_by_light(x, self.net(x))


__all__ = ["CLIPLIT", "LightMapNet", "PyramidPooling", "ResidualBlock", "divide_by_light"]
