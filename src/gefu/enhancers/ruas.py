"""RUAS: Retinex-inspired Unrolling with cooperative prior Architecture Search (Liu, Ma, Zhang, Fan, Luo; CVPR 2021).

RUAS unrolls a Retinex optimisation into K = 3 illumination-estimation modules (IEM) and follows them with a
noise-removal module (NRM); the cells inside both were found by architecture search and are fixed here as the
official `genotypes.py` records them. With the input y in [0, 1] and u_0 = 1:

    t̂_k = maxpool₂ₓ₂(y)                          k = 0     (2×2 max, zero beyond the bottom/right border)
    t̂_k = maxpool₂ₓ₂(u_{k−1}) − ½(u_{k−1} − y)   k = 1, 2
    t_k = clamp(sigmoid(cell_k(t̂_k)), 0.001, 1)   illumination
    u_k = clamp(y / t_k, 0, 1)                    enhanced image of stage k
    d   = u_2 − NRM(u_2)                           denoised (NRM predicts the noise; not clamped)

Which output is the result follows the official `test.py`: the denoised `d` for the LOL checkpoint (`ruas-lol`,
the paper's RUAS_{i+n}), `u_2` before denoising for the MIT-Adobe FiveK (`ruas-upe`) and DARK FACE (`ruas-dark`)
checkpoints. `denoise=True/False` overrides that choice. Each checkpoint carries its own NRM weights (the
repository's separate `model/denoise.pt` is only an initialisation that the checkpoint overwrites), so one file
per name is all that is loaded.

Cells (official `SearchBlock`, channel C: 3 in IEMs, 6 in the NRM; LeakyReLU 0.05 written `act`):

    d1 = act(c1_d(x))   r1 = act(c1_r(x) + x)
    d2 = act(c2_d(r1))  r2 = act(c2_r(r1) + r1)
    d3 = act(c3_d(r2))  r3 = act(c3_r(r2) + r2)
    r4 = act(c4(r3))    out = c5(cat(d1, d2, d3, r4))     c5: 1×1 conv 4C → C

with each c* one of: skip (identity), conv k×k, dilated conv 3×3 (dilation 2), or a residual conv (op(x) + x).

Weights: github.com/KarelZhang/RUAS `ckpt/{upe,lol,dark}.pt` (the repository has no licence file). Any input
size (stride-1 convs, zero padding): no padding, no deviation from the official test script.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import ENHANCERS, PublishedFigure
from .cnn import CNNEnhancer, DtypeArg, WeightsArg, load_strict, read_checkpoint
from .layers import conv_cat, fused

#: The searched cells (official genotypes.py), op for c1_d, c1_r, c2_d, c2_r, c3_d, c3_r, c4.
IEM_CELL = ("skip", "resconv_1x1", "resdilconv_3x3", "conv_3x3", "conv_3x3", "skip", "conv_3x3")
NRM_CELL = ("resconv_1x1", "resconv_1x1", "resdilconv_3x3", "skip", "resconv_1x1", "resconv_1x1", "skip")


class ConvOp(nn.Module):
    """A k×k conv keeping the size (dilation d), optionally residual: op(x) [+ x]. Parameters under `op`."""

    def __init__(self, channels: int, kernel: int, dilation: int = 1, residual: bool = False) -> None:
        super().__init__()
        self.op = nn.Conv2d(channels, channels, kernel, 1, (kernel - 1) // 2 * dilation, dilation=dilation)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.op(x)
        return y.add_(x) if self.residual else y  # in place on the conv's fresh output


def make_op(name: str, channels: int) -> nn.Module:
    """One searched operation by its genotype name."""
    ops = {
        "skip": lambda: nn.Identity(),
        "conv_1x1": lambda: ConvOp(channels, 1),
        "conv_3x3": lambda: ConvOp(channels, 3),
        "dilconv_3x3": lambda: ConvOp(channels, 3, dilation=2),
        "resconv_1x1": lambda: ConvOp(channels, 1, residual=True),
        "resconv_3x3": lambda: ConvOp(channels, 3, residual=True),
        "resdilconv_3x3": lambda: ConvOp(channels, 3, dilation=2, residual=True),
    }
    if name not in ops:
        raise ValueError(f"unknown RUAS operation {name!r}; known: {sorted(ops)}")
    return ops[name]()


def _leaky(t: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    return F.leaky_relu(t, 0.05, inplace=inplace)


def _act_op(op: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """act(op(x)), in place unless op is the identity (whose output is x itself)."""
    y = op(x)
    return _leaky(y, inplace=y is not x)


def _act_res(op: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """act(op(x) + x), without a temporary where op(x) is a fresh tensor."""
    y = op(x)
    return _leaky(y + x if y is x else y.add_(x), inplace=True)


class SearchBlock(nn.Module):
    """The searched cell (module docstring): (N, C, H, W) → (N, C, H, W)."""

    def __init__(self, channels: int, cell: tuple[str, ...]) -> None:
        super().__init__()
        ops = [make_op(n, channels) for n in cell]
        self.c1_d, self.c1_r, self.c2_d, self.c2_r, self.c3_d, self.c3_r, self.c4 = ops
        self.c5 = nn.Conv2d(4 * channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # act(op(x)) and act(op(x) + x), computed in place where op(x) is a fresh tensor (same values)
        d1, r1 = _act_op(self.c1_d, x), _act_res(self.c1_r, x)
        d2, r2 = _act_op(self.c2_d, r1), _act_res(self.c2_r, r1)
        d3, r3 = _act_op(self.c3_d, r2), _act_res(self.c3_r, r2)
        r4 = _act_op(self.c4, r3)
        return conv_cat(self.c5, (d1, d2, d3, r4))  # c5(cat) (N, 4C, H, W) → (N, C, H, W), without the copy


def max2x2(x: torch.Tensor) -> torch.Tensor:
    """Max over the 2×2 window at each pixel and its right/bottom neighbours, zeros beyond the border (the
    official `max_operation`, a stride-1 2×2 max-pool of the padded map; computed as the maximum of its four
    shifted views, which is exact and skips the pooling kernel's argmax bookkeeping): (N, C, H, W) → (N, C, H, W)."""
    if not fused():
        return F.max_pool2d(F.pad(x, (0, 1, 0, 1)), kernel_size=2, stride=1)
    p = F.pad(x, (0, 1, 0, 1))  # (N, C, H + 1, W + 1), zeros beyond the border
    m = torch.maximum(p[..., :-1, :-1], p[..., :-1, 1:])
    torch.maximum(m, p[..., 1:, :-1], out=m)
    return torch.maximum(m, p[..., 1:, 1:], out=m)


class IEM(nn.Module):
    """One illumination-estimation stage: (y, u_prev, k) → (u_k, t_k), all (N, 3, H, W)."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = SearchBlock(3, IEM_CELL)

    def forward(self, y: torch.Tensor, u: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        t_hat = max2x2(y) if k == 0 else max2x2(u) - 0.5 * (u - y)
        t = torch.sigmoid(self.cell(t_hat)).clamp(0.001, 1.0)
        return (y / t).clamp(0.0, 1.0), t


class EnhanceNetwork(nn.Module):
    """K unrolled IEM stages: y (N, 3, H, W) → u_K (N, 3, H, W) in [0, 1]."""

    def __init__(self, stages: int = 3) -> None:
        super().__init__()
        self.iems = nn.ModuleList(IEM() for _ in range(stages))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        u = torch.ones_like(y)
        for k, iem in enumerate(self.iems):
            u, _ = iem(y, u, k)
        return u


class DenoiseNetwork(nn.Module):
    """The NRM: predicts the noise n of u and returns u − n (N, 3, H, W), unclamped."""

    def __init__(self, layers: int = 3, channels: int = 6) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, 1, 1)
        self.nrms = nn.ModuleList(SearchBlock(channels, NRM_CELL) for _ in range(layers))
        self.activate = nn.Sequential(nn.Conv2d(channels, 3, 3, 1, 1))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        feat = self.stem(u)  # (N, 6, H, W)
        for nrm in self.nrms:
            feat = nrm(feat)
        return u - self.activate(feat)


class RUASNet(nn.Module):
    """IEMs then (optionally) the NRM: y (N, 3, H, W) → enhanced (N, 3, H, W). Keys as the official checkpoints."""

    def __init__(self, denoise: bool) -> None:
        super().__init__()
        self.denoise = denoise
        self.enhance_net = EnhanceNetwork()
        self.denoise_net = DenoiseNetwork()

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        u = self.enhance_net(y)
        return self.denoise_net(u) if self.denoise else u


class _RUAS(CNNEnhancer):
    """One RUAS checkpoint (subclasses name it and its official output). Options: `weights` (None → the table
    file, or a path), `denoise` (None → the official test script's choice for this checkpoint), `allow_random`,
    `seed`."""

    official_denoise: bool
    # Every conv has 3 or 6 channels, half of them 1×1: oneDNN's channels_last kernels pad channels to a vector
    # width and run those 1×1 convs ~10× slower than NCHW; the whole network measured 2–2.6× faster in NCHW on
    # the CPU (benchmarks/enhancers_speed.py prints both).
    channels_last = False

    def __init__(self, weights: WeightsArg = None, denoise: bool | None = None, allow_random: bool = False,
                 seed: int = 0, dtype: DtypeArg = None) -> None:
        self.denoise = self.official_denoise if denoise is None else bool(denoise)
        super().__init__(weights=weights, allow_random=allow_random, seed=seed, dtype=dtype, denoise=self.denoise)

    def build(self) -> nn.Module:
        return RUASNet(self.denoise)

    def load(self, paths: dict[str, Path]) -> None:
        path = paths[self.weight_names[0]]
        load_strict(self.net, read_checkpoint(path), f"{path} (a RUAS checkpoint)")

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@ENHANCERS.register("ruas-lol")
class RUASLOL(_RUAS):
    """RUAS (CVPR 2021), LOL checkpoint; output after the denoising module (the official test script's)."""

    name = "ruas-lol"
    weight_names = ("ruas-lol",)
    official_denoise = True
    # Table 1 of the paper (LOL test set, RUAS_{i+n}); the PSNR as listed for the paper by wizwand.com (the table
    # itself was not reachable offline), so no SSIM is recorded.
    published_lol_v1 = PublishedFigure(psnr=18.23, ssim=None, source="RUAS (CVPR 2021), Table 1, LOL, RUAS_{i+n}")


@ENHANCERS.register("ruas-upe")
class RUASUPE(_RUAS):
    """RUAS (CVPR 2021), MIT-Adobe FiveK ("upe") checkpoint; output before denoising (the official script's)."""

    name = "ruas-upe"
    weight_names = ("ruas-upe",)
    official_denoise = False


@ENHANCERS.register("ruas-dark")
class RUASDark(_RUAS):
    """RUAS (CVPR 2021), DARK FACE checkpoint; output before denoising (the official script's)."""

    name = "ruas-dark"
    weight_names = ("ruas-dark",)
    official_denoise = False


__all__ = ["IEM_CELL", "NRM_CELL", "RUASDark", "RUASLOL", "RUASNet", "RUASUPE", "SearchBlock", "max2x2"]
