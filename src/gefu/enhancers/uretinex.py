"""URetinex-Net (Wu, Weng, Zhang, Wang, Yang, Jiang: "URetinex-Net: Retinex-Based Deep Unfolding Network for
Low-Light Image Enhancement", CVPR 2022) as the `uretinex` enhancer, with the authors' checkpoints `ckpt/init_low.pth`,
`unfolding.pth` and `L_adjust.pth` (github.com/AndersonYong/URetinex-Net; MIT licence file, but the README says the
code is for non-commercial use only).

Retinex: a low-light image x ≈ R · L (reflectance (N, 3, H, W) times illumination (N, 1, H, W)). Test-time pipeline
(the official `test.py`), for rounds t = 0 .. T−1 (T = 3 from the checkpoint's options):

    t = 0:  P, Q = D(x)                                      learnt initialisation (init_low.pth)
    t ≥ 1:  P = (x·Q + γ_t R) / (Q² + γ_t)                   closed-form least-squares updates,
            Q = (Σ_c x_c P_c + λ_t L) / (Σ_c P_c² + λ_t)     γ_t = γ + Δγ·t, λ_t = λ + Δλ·t
    then:   R = 𝓡(P, Q),  L = 𝓛(Q)                           learnt proximal operators (unfolding.pth)
    output: 𝓐(L, ratio) · R                                  illumination adjustment (L_adjust.pth)

γ = 0.1, λ = 0.5, Δγ = Δλ = 0.05 and T = 3 are read from the `argparse.Namespace` pickled in `unfolding.pth`
(so 2 updates, γ ∈ {0.15, 0.2}, λ ∈ {0.55, 0.6}); `ratio` is the test script's default 5 (its help text recommends
3–5).
The output is unbounded above (it reaches ≈1.2 on LOL-v1); the official script clips it to [0, 1] when saving and
gefu clamps the same way. No padding: the networks run at the image's own size, as in the official script (𝓡's
squeeze-excitation averages over the whole image, so padding would change the result).

The paper's LOL figures come from `evaluate.py`, which instead sets the ratio per image from the normal-light
reference: ratio = 1 / (mean(L / (L_ref + 1e-4)) + 1e-4), with L_ref from a second decomposition network
(`init_high.pth`). `URetinex.enhance_with_reference(x, reference)` reproduces that; the enhancer itself (no reference
at inference) uses the fixed ratio.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..weights import weight_path
from .base import ENHANCERS
from .cnn import CNNEnhancer, DtypeArg, load_strict, read_checkpoint
from .layers import fused


def conv(c_in: int, c_out: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, padding=k // 2)


class Decomposition(nn.Module):
    """Initial Retinex decomposition: (N, 3, H, W) → R (N, 3, H, W) ≥ 0, L (N, 1, H, W) ≥ 0."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        lrelu = lambda: nn.LeakyReLU(0.2, inplace=True)  # noqa: E731  (in place on each conv's fresh output)
        self.decom = nn.Sequential(conv(3, width), lrelu(), conv(width, width), lrelu(), conv(width, width), lrelu(),
                                   conv(width, 4), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.decom(x)  # (N, 4, H, W)
        return out[:, :3], out[:, 3:]


class SqueezeExcitation(nn.Module):
    """Channel gating from the global average: (N, C, H, W) → (N, C, H, W) (bias-free FCs, reduction 16)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, channels // reduction, bias=False), nn.ReLU(),
                                nn.Linear(channels // reduction, channels, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x is scaled in place (callers pass a fresh tensor)."""
        return x.mul_(self.fc(x.mean((2, 3)))[:, :, None, None])


class ReflectanceNet(nn.Module):
    """𝓡 (official "HalfDnCNNSE" with concat_L): residual restoration of P guided by Q,
    (N, 3, H, W), (N, 1, H, W) → (N, 3, H, W)."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.conv1 = conv(3, width // 2)
        self.conv2 = conv(1, width // 2)
        self.se_layer = SqueezeExcitation(width)
        for i in range(3, 8):
            setattr(self, f"conv{i}", conv(width, width))
        self.conv8 = conv(width, 3)

    def forward(self, r: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
        f = self._head(r, l).relu_()  # (N, 64, H, W)
        f = self.se_layer(f)
        for i in range(3, 8):
            f = getattr(self, f"conv{i}")(f).relu_()
        return self.conv8(f).add_(r)

    def _head(self, r: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
        """cat(conv1(r), conv2(l)) (N, 64, H, W), computed as one conv of the 4-channel cat(r, l) with the two
        kernels on the diagonal blocks of a (64, 4, 3, 3) weight (zeros elsewhere): the same sums, without a
        64-channel concatenated copy."""
        if not fused():  # the official composition (reference_ops)
            return torch.cat([self.conv1(r), self.conv2(l)], 1)
        w1, w2 = self.conv1.weight, self.conv2.weight  # (32, 3, 3, 3), (32, 1, 3, 3)
        weight = w1.new_zeros(w1.shape[0] + w2.shape[0], w1.shape[1] + w2.shape[1], 3, 3)
        weight[: w1.shape[0], : w1.shape[1]] = w1
        weight[w1.shape[0] :, w1.shape[1] :] = w2
        bias = torch.cat([self.conv1.bias, self.conv2.bias])
        return F.conv2d(torch.cat([r, l], 1), weight.contiguous(memory_format=torch.channels_last), bias, padding=1)


class IlluminationNet(nn.Module):
    """𝓛 (official "Illumination_Alone"): (N, 1, H, W) → (N, 1, H, W) ≥ 0; four 5×5 convs and a 1×1 conv."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.conv1 = conv(1, width, 5)
        self.conv2 = conv(width, width, 5)
        self.conv3 = conv(width, width, 5)
        self.conv4 = conv(width, width, 5)
        self.conv5 = conv(width, 1, 1)

    def forward(self, l: torch.Tensor) -> torch.Tensor:
        for layer in (self.conv1, self.conv2, self.conv3, self.conv4):
            l = F.leaky_relu(layer(l), 0.2, inplace=True)
        return self.conv5(l).relu_()


class AdjustmentNet(nn.Module):
    """𝓐 (official "Adjust_naive"): brightened illumination from L and a constant ratio map,
    (N, 1, H, W), ratio (float or (N,)) → (N, 1, H, W) ≥ 0."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.conv1 = conv(2, width, 5)
        self.conv2 = conv(width, width, 5)
        self.conv3 = conv(width, width, 5)
        self.conv4 = conv(width, 1, 5)

    def forward(self, l: torch.Tensor, ratio: float | torch.Tensor) -> torch.Tensor:
        ratio_map = torch.as_tensor(ratio, dtype=l.dtype, device=l.device).reshape(-1, 1, 1, 1).expand_as(l)
        x = self.conv1(torch.cat([l, ratio_map], 1))  # (N, 32, H, W)
        for layer in (self.conv2, self.conv3, self.conv4):
            x = layer(F.leaky_relu(x, 0.2, inplace=True))
        return x.relu_()


class URetinexNet(nn.Module):
    """The whole test-time model: x (N, 3, H, W) in [0, 1], ratio → R · 𝓐(L, ratio) (N, 3, H, W) ≥ 0."""

    def __init__(self) -> None:
        super().__init__()
        self.decom = Decomposition()
        self.model_R = ReflectanceNet()
        self.model_L = IlluminationNet()
        self.adjust = AdjustmentNet()
        # unfolding options (overwritten from the checkpoint's pickled options on load)
        self.rounds, self.gamma, self.lamda, self.gamma_step, self.lamda_step = 3, 0.1, 0.5, 0.05, 0.05

    def unfold(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, 3, H, W) → R (N, 3, H, W), L (N, 1, H, W)."""
        p, q = self.decom(x)
        r, l = self.model_R(p, q), self.model_L(q)
        for t in range(1, self.rounds):
            g, lam = self.gamma + self.gamma_step * t, self.lamda + self.lamda_step * t
            p = (x * q + g * r) / (q * q + g)  # argmin_P |x − P·Q|² + γ|P − R|²
            q = ((x * p).sum(1, keepdim=True) + lam * l) / ((p * p).sum(1, keepdim=True) + lam)  # same for Q
            r, l = self.model_R(p, q), self.model_L(q)
        return r, l

    def forward(self, x: torch.Tensor, ratio: float | torch.Tensor = 5.0) -> torch.Tensor:
        r, l = self.unfold(x)
        return self.adjust(l, ratio) * r


def _sub_state(ckpt: Any, key: str, path: Path) -> dict[str, torch.Tensor]:
    try:
        state = ckpt["state_dict"][key]
    except (KeyError, TypeError):
        raise ValueError(f"{path} is not a URetinex-Net checkpoint: no state_dict['{key}']") from None
    return dict(state)


@ENHANCERS.register("uretinex")
class URetinex(CNNEnhancer):
    """URetinex-Net (CVPR 2022), official checkpoints (MIT licence file; the README says non-commercial use only).

    Options: `weights` (None → the table's `uretinex-init-low`, `uretinex-unfolding`, `uretinex-l-adjust`; or a dict
    {name: path}), `ratio` (5, the official test script's illumination-adjustment ratio), `allow_random`/`seed`."""

    name = "uretinex"
    weight_names = ("uretinex-init-low", "uretinex-unfolding", "uretinex-l-adjust")

    def __init__(self, weights: Any = None, ratio: float = 5.0, allow_random: bool = False, seed: int = 0,
                 dtype: DtypeArg = None):
        super().__init__(weights, allow_random=allow_random, seed=seed, dtype=dtype, ratio=ratio)
        self.ratio = ratio
        self._decom_high: Decomposition | None = None

    def build(self) -> nn.Module:
        return URetinexNet()

    def load(self, paths: dict[str, Path]) -> None:
        net: URetinexNet = self.net  # type: ignore[assignment]
        ckpt = {n: read_checkpoint(p, allow=[argparse.Namespace], unwrap=False) for n, p in paths.items()}
        p_low, p_unf, p_adj = (paths[n] for n in self.weight_names)
        load_strict(net.decom, _sub_state(ckpt["uretinex-init-low"], "model_R", p_low), f"{p_low} (decomposition)")
        unf = ckpt["uretinex-unfolding"]
        load_strict(net.model_R, _sub_state(unf, "model_R", p_unf), f"{p_unf} (reflectance net)")
        load_strict(net.model_L, _sub_state(unf, "model_L", p_unf), f"{p_unf} (illumination net)")
        load_strict(net.adjust, _sub_state(ckpt["uretinex-l-adjust"], "model_A", p_adj), f"{p_adj} (adjustment)")
        opts = unf.get("opts") if isinstance(unf, dict) else None
        if not isinstance(opts, argparse.Namespace):
            raise ValueError(f"{p_unf} carries no unfolding options ('opts')")
        if (opts.R_model, opts.L_model, opts.concat_L) != ("HalfDnCNNSE", "Illumination_Alone", True):
            raise ValueError(f"{p_unf}: unsupported networks {opts.R_model}/{opts.L_model} (concat_L={opts.concat_L})")
        net.rounds, net.gamma, net.lamda = int(opts.round), float(opts.gamma), float(opts.lamda)
        net.gamma_step, net.lamda_step = float(opts.Roffset), float(opts.Loffset)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.ratio)

    def enhance_with_reference(self, x: torch.Tensor, reference: torch.Tensor,
                               decom_high: str | Path | None = None) -> torch.Tensor:
        """The paper's evaluation (`evaluate.py`): the ratio of each image comes from its normal-light reference,
        decomposed by `init_high.pth` (the table's `uretinex-init-high`, or `decom_high`). x, reference:
        (N, 3, H, W) in [0, 1] → (N, 3, H, W) in [0, 1]."""
        if self._decom_high is None:
            path = Path(decom_high) if decom_high is not None else weight_path("uretinex-init-high")
            state = _sub_state(read_checkpoint(path, allow=[argparse.Namespace], unwrap=False), "model_R", path)
            p = next(self.net.parameters())
            self._decom_high = load_strict(Decomposition(), state, f"{path} (decomposition of normal light)")
            self._decom_high.to(device=p.device, dtype=p.dtype).eval().requires_grad_(False)
        net: URetinexNet = self.net  # type: ignore[assignment]
        p = next(net.parameters())
        x, reference = x.to(device=p.device, dtype=p.dtype), reference.to(device=p.device, dtype=p.dtype)
        r, l = net.unfold(x)
        _, l_ref = self._decom_high(reference)  # (N, 1, H, W)
        ratio = 1.0 / ((l / (l_ref + 1e-4)).mean((1, 2, 3)) + 1e-4)  # (N,): one ratio per image
        return (net.adjust(l, ratio) * r).clamp(0, 1)


__all__ = ["AdjustmentNet", "Decomposition", "IlluminationNet", "ReflectanceNet", "URetinex", "URetinexNet"]
