"""IAT, the Illumination-Adaptive Transformer (Cui et al.: "You Only Need 90K Parameters to Adapt Light: a Light
Weight Transformer for Image Enhancement and Exposure Correction", BMVC 2022), as the enhancers `iat-lol-v1` and
`iat-lol-v2`, with the authors' checkpoints `IAT_enhance/best_Epoch_lol_v1.pth` and `best_Epoch_lol.pth`
(github.com/cuiziteng/Illumination-Adaptive-Transformer, Apache-2.0).

IAT splits an ISP-like correction into a local, per-pixel part and a global, per-image part:

    mul, add = local(x)                 (N, 3, H, W) each: ReLU(·) ≥ 0 and tanh(·) ∈ (−1, 1)
    y = x · mul + add                   (N, 3, H, W)
    γ, C = global(x)                    (N, 1) and (N, 3, 3): a gamma and a colour matrix per image
    enhanced = clamp(y · Cᵀ, 1e-8, 1) ** γ

- local: a 3×3 conv to 16 channels, then two branches of three "CBlock"s (depthwise 3×3 position embedding,
  a channel-mixing affine norm, 1×1 → depthwise 5×5 → 1×1 "attention", and a 1×1 MLP, each residual and scaled
  by a learnt per-channel gain) with a shortcut, each ending in a 3×3 conv to 3 channels.
- global: two stride-2 convs (with BatchNorm) to 64 channels at 1/4 size, then 10 learnt queries attend to all
  positions (4 heads); query 0 gives γ (added to a learnt base), queries 1..9 give C (added to the identity-
  initialised base matrix).

Test-time pipelines (the official evaluation scripts): `iat-lol-v1` (`evaluation_lol_v1.py`) takes x in [0, 1];
`iat-lol-v2` (`evaluation_lol_v2.py`, the LOL-v2-real model) takes (x − 0.5) / 0.5 ∈ [−1, 1] — including in
x · mul. The enhanced image is the third output, used as is (the scripts save it with `save_image`, which
clamps to [0, 1]). Both run at the image's own size, and so does gefu (no padding: the global branch sees the
whole image, so padding would change its γ and C).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import ENHANCERS, PublishedFigure
from .cnn import CNNEnhancer, DtypeArg, load_strict, read_checkpoint
from .layers import band_slices, fused, pixel_matrix

# ----------------------------------------------------------------------------------------------------------------
# Local branch
# ----------------------------------------------------------------------------------------------------------------


class ChannelAffine(nn.Module):
    """IAT's "Aff_channel" norm: a learnt channel-mixing matrix, then a per-channel scale and shift (no
    statistics). (N, C, H, W) → (N, C, H, W); applied on channels-last values, so no copies are made."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, dim))
        self.color = nn.Parameter(torch.eye(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x.permute(0, 2, 3, 1)  # (N, H, W, C)
        v = (v @ self.color.t()) * self.alpha + self.beta
        return v.permute(0, 3, 1, 2)  # (N, C, H, W)


class ConvMlp(nn.Module):
    """1×1 conv → GELU → 1×1 conv: (N, C, H, W) → (N, C, H, W)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class CBlock(nn.Module):
    """IAT's convolutional transformer block ("CBlock_ln"): (N, C, H, W) → (N, C, H, W).
    (Stochastic depth is training-only and left out.)"""

    def __init__(self, dim: int = 16, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = ChannelAffine(dim)
        self.conv1 = nn.Conv2d(dim, dim, 1)
        self.attn = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.conv2 = nn.Conv2d(dim, dim, 1)
        self.gamma_1 = nn.Parameter(1e-4 * torch.ones(1, dim, 1, 1))
        self.norm2 = ChannelAffine(dim)
        self.mlp = ConvMlp(dim, int(dim * mlp_ratio))
        self.gamma_2 = nn.Parameter(1e-4 * torch.ones(1, dim, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (not fused() or x.device.type != "cpu" or torch.is_grad_enabled() or torch.is_autocast_enabled("cpu")
                or not x.is_contiguous(memory_format=torch.channels_last)):
            x = x + self.pos_embed(x)
            x = x + self.gamma_1 * self.conv2(self.attn(self.conv1(self.norm1(x))))
            return x + self.gamma_2 * self.mlp(self.norm2(x))
        return self._forward_folded(x)

    def _forward_folded(self, x: torch.Tensor) -> torch.Tensor:
        """The same block on the CPU (channels_last, no autograd), without its full-size intermediates.

        Only the two depthwise convs look at neighbours. Everything else is per pixel, and affine up to the GELU:
        norm1 → conv1, γ₁·conv2, norm2 → fc1 and γ₂·fc2 are each folded into one matrix product on the
        (pixels, C) matrix, computed band by band of rows (`band_slices`) so the 64-channel MLP activations stay
        in cache, and accumulated into x in place. Same values within float rounding."""
        (w1, b1), (w2, b2), (w3, b3), (w4, b4) = self._folded()
        x = self.pos_embed(x).add_(x)  # x + pos_embed(x): (N, C, H, W), a fresh tensor
        t = torch.empty_like(x)
        xm, tm = pixel_matrix(x), pixel_matrix(t)  # (N·H·W, C) views
        for rows in band_slices(x, t):
            torch.addmm(b1, xm[rows], w1, out=tm[rows])  # conv1(norm1(x))
        am = pixel_matrix(self.attn(t))  # depthwise 5×5 → (N·H·W, C)
        for rows in band_slices(x, t, t, t, t, t):  # x, a and the 4×-wide hidden layer
            xb = xm[rows]
            xb.addmm_(am[rows], w2).add_(b2)  # x += γ₁·conv2(a)
            hidden = self.mlp.act(torch.addmm(b3, xb, w3))  # GELU(fc1(norm2(x))): (pixels, 4C)
            xb.addmm_(hidden, w4).add_(b4)  # x += γ₂·fc2(hidden)
        return x

    def _folded(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(weight (C_in, C_out), bias) of the four affine maps as `pixels @ weight + bias`."""

        def norm_then(norm: ChannelAffine, conv: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
            w = conv.weight.flatten(1)  # (C_out, C)
            a = norm.alpha.view(-1, 1) * norm.color  # the norm: v ↦ a·v + β
            return (w @ a).t(), w @ norm.beta.view(-1) + conv.bias

        def scaled(conv: nn.Conv2d, gamma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            g = gamma.view(-1)
            return (conv.weight.flatten(1) * g.view(-1, 1)).t(), conv.bias * g

        return [norm_then(self.norm1, self.conv1), scaled(self.conv2, self.gamma_1),
                norm_then(self.norm2, self.mlp.fc1), scaled(self.mlp.fc2, self.gamma_2)]


class LocalBranch(nn.Module):
    """Per-pixel multiplier and offset: (N, 3, H, W) → mul (N, 3, H, W) ≥ 0, add (N, 3, H, W) ∈ (−1, 1)."""

    def __init__(self, dim: int = 16, blocks: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, dim, 3, padding=1)
        self.mul_blocks = nn.Sequential(*(CBlock(dim) for _ in range(blocks)))
        self.add_blocks = nn.Sequential(*(CBlock(dim) for _ in range(blocks)))
        self.mul_end = nn.Sequential(nn.Conv2d(dim, 3, 3, padding=1), nn.ReLU())
        self.add_end = nn.Sequential(nn.Conv2d(dim, 3, 3, padding=1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = F.leaky_relu(self.conv1(x), 0.2, inplace=True)  # (N, 16, H, W)
        # the blocks' outputs are fresh tensors: the shortcut is added in place
        return self.mul_end(self.mul_blocks(f).add_(f)), self.add_end(self.add_blocks(f).add_(f))


# ----------------------------------------------------------------------------------------------------------------
# Global branch
# ----------------------------------------------------------------------------------------------------------------


class QueryAttention(nn.Module):
    """`queries` learnt queries attend to the tokens: (N, T, C) → (N, queries, C)."""

    def __init__(self, dim: int = 64, heads: int = 4, queries: int = 10) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Parameter(torch.ones(1, queries, dim))
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def _split(self, z: torch.Tensor) -> torch.Tensor:
        """(N, L, C) → (N, heads, L, C / heads)."""
        n, length, c = z.shape
        return z.reshape(n, length, self.heads, c // self.heads).transpose(1, 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n, _, c = tokens.shape
        q = self._split(self.q.expand(n, -1, -1))  # (N, h, Q, d)
        out = F.scaled_dot_product_attention(q, self._split(self.k(tokens)), self._split(self.v(tokens)))  # scale d^-½
        return self.proj(out.transpose(1, 2).reshape(n, -1, c))  # (N, Q, C)


class Mlp(nn.Module):
    """Linear → GELU → Linear on tokens: (N, T, C) → (N, T, C)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class QueryBlock(nn.Module):
    """IAT's "query_SABlock": position embedding, query attention (the queries replace the tokens: no residual
    there), then a residual MLP. (N, C, h, w) → (N, queries, C)."""

    def __init__(self, dim: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.pos_embed = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = QueryAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, 4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_embed(x)
        tokens = x.flatten(2).transpose(1, 2)  # (N, h·w, C)
        q = self.attn(self.norm1(tokens))  # (N, 10, C)
        return q + self.mlp(self.norm2(q))


class ConvEmbedding(nn.Module):
    """Two stride-2 3×3 convs with BatchNorm (GELU between): (N, 3, H, W) → (N, 64, ⌈H/4⌉, ⌈W/4⌉)."""

    def __init__(self, c_in: int = 3, c_out: int = 64) -> None:
        super().__init__()
        self.proj = nn.Sequential(
            nn.Conv2d(c_in, c_out // 2, 3, stride=2, padding=1),
            nn.BatchNorm2d(c_out // 2),
            nn.GELU(),
            nn.Conv2d(c_out // 2, c_out, 3, stride=2, padding=1),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class GlobalBranch(nn.Module):
    """Per-image gamma and colour matrix: (N, 3, H, W) → γ (N, 1), C (N, 3, 3)."""

    def __init__(self, dim: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.gamma_base = nn.Parameter(torch.ones(1))
        self.color_base = nn.Parameter(torch.eye(3))
        self.conv_large = ConvEmbedding(3, dim)
        self.generator = QueryBlock(dim, heads)
        self.gamma_linear = nn.Linear(dim, 1)
        self.color_linear = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.generator(self.conv_large(x))  # (N, 10, 64)
        gamma = self.gamma_linear(q[:, 0]) + self.gamma_base  # (N, 1)
        color = self.color_linear(q[:, 1:]).view(-1, 3, 3) + self.color_base  # (N, 3, 3)
        return gamma, color


# ----------------------------------------------------------------------------------------------------------------
# The network and the enhancers
# ----------------------------------------------------------------------------------------------------------------


class IATNet(nn.Module):
    """IAT: (N, 3, H, W) (in the checkpoint's input range) → mul, add, enhanced (N, 3, H, W); enhanced in (0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.local_net = LocalBranch()
        self.global_net = GlobalBranch()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mul, add = self.local_net(x)
        y = (x * mul + add).permute(0, 2, 3, 1)  # (N, H, W, 3)
        gamma, color = self.global_net(x)  # (N, 1), (N, 3, 3)
        y = (y @ color.transpose(1, 2).unsqueeze(1)).clamp(1e-8, 1.0)  # (N, H, W, 3): each pixel times Cᵀ
        y = y ** gamma.view(-1, 1, 1, 1)
        return mul, add, y.permute(0, 3, 1, 2)


class _IAT(CNNEnhancer):
    """Shared by the two IAT checkpoints: they differ only in the input range."""

    #: the official test script normalises the input to [−1, 1] for this checkpoint
    normalize_input: bool = False

    def __init__(self, weights: Any = None, allow_random: bool = False, seed: int = 0, dtype: DtypeArg = None):
        super().__init__(weights, allow_random=allow_random, seed=seed, dtype=dtype)

    def build(self) -> nn.Module:
        return IATNet()

    def load(self, paths: dict[str, Path]) -> None:
        (name,) = self.weight_names
        load_strict(self.net, read_checkpoint(paths[name]), f"{paths[name]} (IAT)")

    def run(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize_input:
            x = (x - 0.5) / 0.5  # torchvision Normalize((0.5,)*3, (0.5,)*3)
        return self.net(x)[2]


@ENHANCERS.register("iat-lol-v1")
class IATLolV1(_IAT):
    """IAT (BMVC 2022) trained on LOL-v1 (`best_Epoch_lol_v1.pth`, Apache-2.0); input in [0, 1].

    Options: `weights` (None → the table's `iat-lol-v1`; or a path), `allow_random`/`seed` (random weights)."""

    name = "iat-lol-v1"
    weight_names = ("iat-lol-v1",)
    published_lol_v1 = PublishedFigure(23.38, 0.809, "IAT (arXiv:2205.14871v3; official README), LOL-V1 eval15")


@ENHANCERS.register("iat-lol-v2")
class IATLolV2(_IAT):
    """IAT (BMVC 2022) trained on LOL-v2-real (`best_Epoch_lol.pth`, Apache-2.0); input normalised to [−1, 1]
    as its test script does. Its paper figure is on LOL-v2-real, not LOL-v1, so none is recorded here.

    Options: `weights` (None → the table's `iat-lol-v2`; or a path), `allow_random`/`seed` (random weights)."""

    name = "iat-lol-v2"
    weight_names = ("iat-lol-v2",)
    normalize_input = True


__all__ = ["CBlock", "ChannelAffine", "GlobalBranch", "IATLolV1", "IATLolV2", "IATNet", "LocalBranch"]
