"""SCI: Self-Calibrated Illumination learning (Ma, Ma, Liu, Fan, Luo; "Toward Fast, Flexible, and Robust Low-Light
Image Enhancement", CVPR 2022).

SCI trains a weight-shared illumination-estimation network together with a self-calibration module over several
stages; at test time only the illumination network of the first stage runs (the calibration module is dropped,
which is the point of the method). With the input x in [0, 1]:

    fea = ReLU(conv(x))                         in_conv         (N, 3, H, W)
    fea = fea + ReLU(BN(conv(fea)))             one residual block (layers=1)
    i   = clamp(sigmoid(conv(fea)) + x, 1e-4, 1)                illumination, (N, 3, H, W)
    y   = clamp(x / i, 0, 1)                                     the enhanced image (Retinex: reflectance)

Three convolutions of 3 channels (3×3), one BatchNorm (eval mode: running statistics). This is exactly the
official `Finetunemodel` that `test.py` runs, which loads only the `enhance.*` weights of the checkpoint; the
`calibrate.*` weights stay in the file and are checked to be there, but are not used.

Checkpoint layout. The official network builds its residual block once (`conv`) and puts that same module in a
list (`blocks`), so its state dict lists the block twice (`enhance.conv.*` and `enhance.blocks.0.*`, identical
tensors in the three official files). `EnhanceNetwork` below reproduces that sharing, so the files load strictly,
unchanged.

Weights (github.com/vis-opt-group/SCI, `weights/`, MIT licence): `sci-easy` (`easy.pt`, trained mainly on
MIT-Adobe FiveK), `sci-medium` (`medium.pt`, mainly LOL and LSRW), `sci-difficult` (`difficult.pt`, mainly
DARK FACE). The repository notes these are not the models behind the paper's tables. Any input size (all convs
are stride 1, zero padded): no padding, no deviation from the official test script.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from .base import ENHANCERS, PublishedFigure
from .cnn import CNNEnhancer, DtypeArg, WeightsArg, load_strict, read_checkpoint
from .layers import ConvBNReLU


class EnhanceNetwork(nn.Module):
    """SCI's illumination estimator (official `EnhanceNetwork(layers=1, channels=3)`).

    forward: x (N, 3, H, W) in [0, 1] → illumination (N, 3, H, W) in [1e-4, 1].
    """

    def __init__(self, layers: int = 1, channels: int = 3) -> None:
        super().__init__()
        self.in_conv = nn.Sequential(nn.Conv2d(3, channels, 3, 1, 1), nn.ReLU(inplace=True))
        # conv → BN → ReLU; in eval mode the BN is folded into the conv (layers.ConvBNReLU)
        self.conv = ConvBNReLU(nn.Conv2d(channels, channels, 3, 1, 1), nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        # the same block `layers` times, weights shared (as the official code, so its keys load unchanged)
        self.blocks = nn.ModuleList([self.conv] * layers)
        self.out_conv = nn.Sequential(nn.Conv2d(channels, 3, 3, 1, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fea = self.in_conv(x)  # (N, C, H, W)
        for block in self.blocks:
            fea = block(fea).add_(fea)  # fea + block(fea), in place on the block's fresh output
        return (self.out_conv(fea) + x).clamp_(1e-4, 1.0)  # (N, 3, H, W)


def sci_enhance(x: torch.Tensor, illumination: torch.Tensor) -> torch.Tensor:
    """The official test output: clamp(x / i, 0, 1). x, illumination: (N, 3, H, W) → (N, 3, H, W)."""
    return (x / illumination).clamp(0.0, 1.0)


class _SCI(CNNEnhancer):
    """One SCI checkpoint (subclasses name it). Options: `weights` (None → the table file, or a path),
    `allow_random`, `seed`."""

    # No LOL-v1 figure of the paper could be checked here (as far as we recall, its Table 1 scores MIT-Adobe FiveK
    # and LSRW; not verified offline).
    published_lol_v1: PublishedFigure | None = None

    def __init__(self, weights: WeightsArg = None, allow_random: bool = False, seed: int = 0,
                 dtype: DtypeArg = None) -> None:
        super().__init__(weights=weights, allow_random=allow_random, seed=seed, dtype=dtype)

    def build(self) -> nn.Module:
        return EnhanceNetwork()

    def load(self, paths: dict[str, Path]) -> None:
        path = paths[self.weight_names[0]]
        state = read_checkpoint(path)
        enhance = {k[len("enhance."):]: v for k, v in state.items() if k.startswith("enhance.")}
        others = sorted({k.split(".", 1)[0] for k in state if not k.startswith("enhance.")} - {"calibrate"})
        if others:
            raise ValueError(f"{path} is not an SCI checkpoint: unexpected top-level keys {others} "
                             "(expected enhance.* and calibrate.*)")
        load_strict(self.net, enhance, f"{path} (enhance.* of an SCI checkpoint)")

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return sci_enhance(x, self.net(x))


@ENHANCERS.register("sci-easy")
class SCIEasy(_SCI):
    """SCI (CVPR 2022) with `easy.pt` (trained mainly on MIT-Adobe FiveK; MIT licence)."""

    name = "sci-easy"
    weight_names = ("sci-easy",)


@ENHANCERS.register("sci-medium")
class SCIMedium(_SCI):
    """SCI (CVPR 2022) with `medium.pt` (trained mainly on LOL and LSRW; MIT licence)."""

    name = "sci-medium"
    weight_names = ("sci-medium",)


@ENHANCERS.register("sci-difficult")
class SCIDifficult(_SCI):
    """SCI (CVPR 2022) with `difficult.pt` (trained mainly on DARK FACE; MIT licence)."""

    name = "sci-difficult"
    weight_names = ("sci-difficult",)


__all__ = ["EnhanceNetwork", "SCIDifficult", "SCIEasy", "SCIMedium", "sci_enhance"]
