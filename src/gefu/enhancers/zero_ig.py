"""ZERO-IG (Shi, Liu, Zhang, Tian, Xia, Fu: "ZERO-IG: Zero-Shot Illumination-Guided Joint Denoising and Adaptive
Enhancement for Low-Light Images", CVPR 2024) as the enhancers `zero-ig-lol`, `zero-ig-lsrw-huawei` and
`zero-ig-lsrw-nikon`, with the authors' checkpoints `weights/LOL.pt`, `LSRW-Huawei.pt`, `LSRW-Nikon.pt`
(github.com/Doyle59217/ZeroIG; no licence file, so the weights' terms are unstated). The authors note that these
released models are not the ones that produced the paper's figures (the method is trained per image or per set).

Test-time pipeline (the official `test.py` with `Finetunemodel`), with x the input image:

    x = x + 1e-4
    L = clamp(x − D₁(x), 1e-4, 1)                   denoised low-light image     (N, 3, H, W)
    s = E(L)                                          illumination, in [1e-4, 1]   (N, 3, H, W)
    H = clamp(x / s, 1e-4, 1)                         enhanced (still noisy)       (N, 3, H, W)
    out = clamp([H, s] − D₂([H, s]), 1e-4, 1)[:3]     enhanced and denoised        (N, 3, H, W)

The official script saves both H (`*_enhance.png`) and out (`*_denoise.png`); the enhanced image of the method is
`out`, the default here (`output="enhanced"` gives H). D₁ and D₂ are small denoisers (3×3, 3×3, 1×1 convs, 48
channels, LeakyReLU 0.2); E is a 3×3 conv (64 channels, ReLU), three residual conv+BatchNorm+ReLU blocks and a
3×3 conv with a sigmoid. In the official code the three blocks are one module applied three times (the list holds
the same module thrice), so they share their weights; gefu keeps that (the checkpoint stores the shared tensors
under `conv.*` and again under `blocks.0..2.*`, and must hold the same values under all four names). No padding
is needed: the networks run at the image's own size, as in the official script.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import ENHANCERS
from .cnn import CNNEnhancer, DtypeArg, load_strict, read_checkpoint
from .layers import ConvBNReLU

EPS = 1e-4


class Denoiser(nn.Module):
    """Predicts the noise of its input: (N, C, H, W) → (N, C, H, W) (the denoised image is input − output)."""

    def __init__(self, channels: int, width: int = 48) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.conv3 = nn.Conv2d(width, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv1(x), 0.2, inplace=True)  # in place on each conv's fresh output
        return self.conv3(F.leaky_relu(self.conv2(x), 0.2, inplace=True))


class IlluminationNet(nn.Module):
    """The official "Enhancer": illumination map of a (denoised) low-light image, (N, 3, H, W) → (N, 3, H, W) in
    [1e-4, 1]. `blocks` holds one conv+BN+ReLU module `layers` times (shared weights, as in the official code)."""

    def __init__(self, layers: int = 3, width: int = 64) -> None:
        super().__init__()
        self.in_conv = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(inplace=True))
        # conv → BN → ReLU; in eval mode the BN is folded into the conv (no normalised copy of the 64-channel map)
        self.conv = ConvBNReLU(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.blocks = nn.ModuleList([self.conv] * layers)
        self.out_conv = nn.Sequential(nn.Conv2d(width, 3, 3, padding=1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.in_conv(x)  # (N, 64, H, W)
        for block in self.blocks:
            f = block(f).add_(f)  # f + block(f), in place on the block's fresh output
        return self.out_conv(f).clamp(EPS, 1.0)


class ZeroIGNet(nn.Module):
    """ZERO-IG at test time: (N, 3, H, W) in [0, 1] → enhanced H and enhanced-and-denoised output, (N, 3, H, W)
    each, in [1e-4, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.enhance = IlluminationNet()
        self.denoise_1 = Denoiser(3)
        self.denoise_2 = Denoiser(6)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x + EPS
        low = (x - self.denoise_1(x)).clamp(EPS, 1.0)  # (N, 3, H, W)
        s = self.enhance(low)  # (N, 3, H, W)
        high = (x / s).clamp(EPS, 1.0)  # (N, 3, H, W)
        hs = torch.cat([high, s], 1)  # (N, 6, H, W)
        out = (hs - self.denoise_2(hs)).clamp(EPS, 1.0)[:, :3]
        return high, out


def shared_block_state(state: dict[str, torch.Tensor], what: str) -> dict[str, torch.Tensor]:
    """Check that the checkpoint's `enhance.blocks.i.*` equal its `enhance.conv.*` (one shared module saved under
    four names); a file where they differ cannot be this architecture."""
    for key, value in state.items():
        if key.startswith("enhance.blocks."):
            shared = "enhance.conv." + key.split(".", 3)[3]
            if shared in state and not torch.equal(value, state[shared]):
                raise ValueError(f"{what}: {key} differs from {shared}; ZERO-IG's three enhancer blocks share "
                                 "one module, so a checkpoint must hold the same values under both names")
    return state


class _ZeroIG(CNNEnhancer):
    """Shared by the three ZERO-IG checkpoints."""

    def __init__(self, weights: Any = None, output: Literal["denoised", "enhanced"] = "denoised",
                 allow_random: bool = False, seed: int = 0, dtype: DtypeArg = None):
        if output not in ("denoised", "enhanced"):
            raise ValueError(f"output must be 'denoised' (the method's result) or 'enhanced', got {output!r}")
        super().__init__(weights, allow_random=allow_random, seed=seed, dtype=dtype, output=output)
        self.output = output

    def build(self) -> nn.Module:
        return ZeroIGNet()

    def load(self, paths: dict[str, Path]) -> None:
        (name,) = self.weight_names
        what = f"{paths[name]} (ZERO-IG)"
        load_strict(self.net, shared_block_state(read_checkpoint(paths[name]), what), what)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        high, out = self.net(x)
        return out if self.output == "denoised" else high


_DOC = """ZERO-IG (CVPR 2024), official checkpoint `{file}` (no licence file): the enhanced and denoised image.

    Options: `weights` (None → the table's `{name}`; or a path), `output` ("denoised": the method's result, the
    official `*_denoise.png`; "enhanced": the intermediate `*_enhance.png`), `allow_random`/`seed` (random
    weights for tests and demos)."""


@ENHANCERS.register("zero-ig-lol")
class ZeroIGLol(_ZeroIG):
    __doc__ = _DOC.format(file="LOL.pt", name="zero-ig-lol")
    name = "zero-ig-lol"
    weight_names = ("zero-ig-lol",)


@ENHANCERS.register("zero-ig-lsrw-huawei")
class ZeroIGLsrwHuawei(_ZeroIG):
    __doc__ = _DOC.format(file="LSRW-Huawei.pt", name="zero-ig-lsrw-huawei")
    name = "zero-ig-lsrw-huawei"
    weight_names = ("zero-ig-lsrw-huawei",)


@ENHANCERS.register("zero-ig-lsrw-nikon")
class ZeroIGLsrwNikon(_ZeroIG):
    __doc__ = _DOC.format(file="LSRW-Nikon.pt", name="zero-ig-lsrw-nikon")
    name = "zero-ig-lsrw-nikon"
    weight_names = ("zero-ig-lsrw-nikon",)


__all__ = ["Denoiser", "IlluminationNet", "ZeroIGLol", "ZeroIGLsrwHuawei", "ZeroIGLsrwNikon", "ZeroIGNet"]
