"""PairLIE (Fu, Yang, Tu, Huang, Ding, Ma: "Learning a Simple Low-light Image Enhancer from Paired Low-light
Instances", CVPR 2023) as the `pairlie` enhancer, with the authors' checkpoint `weights/PairLIE.pth`
(github.com/zhenqifu/PairLIE; the repository has no licence file, so the weights' terms are unstated).

Three plain CNNs of five reflection-padded 3×3 convolutions (64 channels, ReLU between them, sigmoid at the end):

    x̂ = N(x)                  noise removal:  (N, 3, H, W) → (N, 3, H, W)
    L = L(x̂)                  illumination:   (N, 3, H, W) → (N, 1, H, W)
    R = R(x̂)                  reflectance:    (N, 3, H, W) → (N, 3, H, W)
    enhanced = L ** 0.2 · R

The exponent is the official test script's (`eval.py`: `torch.pow(L, 0.2) * R`); its comment says 0.14 for LOL,
but the code uses 0.2 everywhere, and so does gefu by default (`exponent` changes it).

Differences from the official code: the official test runs the networks at the image's own size; so does gefu,
except that images with a side of 1 pixel (which reflection padding cannot handle) are replicate-padded to 2
and cropped back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .base import ENHANCERS
from .cnn import CNNEnhancer, DtypeArg, load_strict, read_checkpoint
from .layers import BorderConv2d


def plain_cnn(c_in: int, c_out: int, width: int = 64, depth: int = 5) -> nn.Sequential:
    """`depth` reflection-padded 3×3 convs, ReLU between them (no activation after the last):
    (N, c_in, H, W) → (N, c_out, H, W). Layer indices follow the official `nn.Sequential` (pad, conv, relu, ...),
    so convolutions sit at indices 1, 4, 7, 10, 13. The official `ReflectionPad2d(1)` is done by the conv itself
    (`BorderConv2d`, no padded copy of the 64-channel maps); an `nn.Identity` keeps its index."""
    layers: list[nn.Module] = []
    for i in range(depth):
        conv = BorderConv2d(c_in if i == 0 else width, c_out if i == depth - 1 else width, 3, padding=1,
                            padding_mode="reflect")
        layers += [nn.Identity(), conv]
        if i < depth - 1:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class PairLIENet(nn.Module):
    """The three PairLIE networks. forward: (N, 3, H, W) in [0, 1] → L (N, 1, H, W), R (N, 3, H, W), x̂ (N, 3, H, W),
    all in (0, 1)."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.N_net = plain_cnn(3, 3, width)  # noise removal (projection to a cleaner image)
        self.L_net = plain_cnn(3, 1, width)  # illumination
        self.R_net = plain_cnn(3, 3, width)  # reflectance

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        clean = torch.sigmoid(self.N_net(x))  # (N, 3, H, W)
        return torch.sigmoid(self.L_net(clean)), torch.sigmoid(self.R_net(clean)), clean


def official_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The official file names each net twice (`L_net.L_net.1.weight`: a module holding a Sequential of the same
    name); gefu's nets are the Sequentials themselves (`L_net.1.weight`)."""
    out = {}
    for key, value in state.items():
        for part in ("N_net", "L_net", "R_net"):
            if key.startswith(f"{part}.{part}."):
                key = key[len(part) + 1 :]
        out[key] = value
    return out


@ENHANCERS.register("pairlie")
class PairLIE(CNNEnhancer):
    """PairLIE (CVPR 2023), official weights: `L(N(x)) ** exponent · R(N(x))`.

    Options: `weights` (None → the table's `pairlie`, the authors' `PairLIE.pth`; or a path), `exponent` (0.2, the
    official script's), `allow_random`/`seed` (random weights for tests and demos)."""

    name = "pairlie"
    weight_names = ("pairlie",)
    min_side = 2  # reflection padding of 1 needs 2 pixels

    def __init__(self, weights: Any = None, exponent: float = 0.2, allow_random: bool = False, seed: int = 0,
                 dtype: DtypeArg = None):
        super().__init__(weights, allow_random=allow_random, seed=seed, dtype=dtype, exponent=exponent)
        self.exponent = exponent

    def build(self) -> nn.Module:
        return PairLIENet()

    def load(self, paths: dict[str, Path]) -> None:
        path = paths["pairlie"]
        load_strict(self.net, official_state(read_checkpoint(path)), f"{path} (PairLIE)")

    def run(self, x: torch.Tensor) -> torch.Tensor:
        illumination, reflectance, _ = self.net(x)  # (N, 1, H, W), (N, 3, H, W)
        return illumination.pow(self.exponent) * reflectance


__all__ = ["PairLIE", "PairLIENet", "official_state", "plain_cnn"]
