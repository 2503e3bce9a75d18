"""Vision-Aided GAN discriminators on a frozen CLIP image tower (DESIGN §2.6; Kumari et al., CVPR 2022).

SCUF (like CycleGAN-Turbo) trains two discriminators, one per domain, in the style of the ``vision-aided-loss``
package with ``cv_type='clip'``, ``output_type='conv_multi_level'``, ``loss_type='multilevel_sigmoid'``. That
package pulls CLIP from a git URL and downloads weights at run time, so this module rebuilds the same design on
``transformers``' CLIP vision model:

1. ``diff_augment`` (DiffAugment, Zhao et al. 2020: colour, translation, cutout) on the [-1, 1] input;
2. map to [0, 1], resize to the tower's image size ("area"), normalise with the CLIP mean/std;
3. frozen CLIP ViT: token maps after blocks 4 and 8 (of 12; evenly spaced for other depths), without the CLS
   token, as (B, hidden, g, g) grids, plus the projected CLS embedding after the last block;
4. small trainable spectral-norm heads: per token map conv3×3 → LeakyReLU(0.2) → blur → conv1×1 stride 2
   (a (B, g', g') patch map of logits); for the CLS embedding linear → LeakyReLU(0.2) → linear (B, 1);
5. ``multilevel_sigmoid`` loss: BCE-with-logits per level, averaged within the level, summed over levels,
   averaged over the batch (``hinge`` is the alternative).

The CLIP tower gets no gradient of its own (``requires_grad=False``) but lets gradients through to the images,
so the generator learns from the discriminator. Both discriminators may share one tower (it is frozen).
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm as legacy_spectral_norm
from torch.nn.utils.parametrizations import spectral_norm
from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "diff_augment",
    "multilevel_sigmoid_loss",
    "hinge_loss",
    "gan_loss",
    "CLIPFeatureExtractor",
    "MultiLevelHeads",
    "VisionAidedDiscriminator",
    "default_levels",
]

CLIP_MEAN = tuple(OPENAI_CLIP_MEAN)  # the one CLIP mean/std of the project (transformers' constants)
CLIP_STD = tuple(OPENAI_CLIP_STD)
BLUR_PADS = ("same", "official")
SPECTRAL_NORMS = ("parametrization", "legacy")

LossType = Literal["multilevel_sigmoid", "hinge"]
Target = Literal["real", "fake", "generator"]


# ----------------------------------------------------------------------------------------------------------------
# DiffAugment
# ----------------------------------------------------------------------------------------------------------------


def _rand(shape: Sequence[int], x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Uniform [0, 1) numbers in x's dtype (as DiffAugment draws them: the dtype decides which random bits are
    used), drawn on the generator's device and returned on x's device."""
    device = generator.device if generator is not None else x.device
    return torch.rand(tuple(shape), generator=generator, device=device, dtype=x.dtype).to(device=x.device)


def _randint(low: int, high: int, n: int, generator: torch.Generator | None) -> list[int]:
    device = generator.device if generator is not None else "cpu"
    return torch.randint(low, high, (n,), generator=generator, device=device).tolist()


def _color(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    b = x.shape[0]
    x = x + (_rand((b, 1, 1, 1), x, generator) - 0.5)  # brightness ±0.5
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand((b, 1, 1, 1), x, generator) * 2) + mean  # saturation ×[0, 2)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand((b, 1, 1, 1), x, generator) + 0.5) + mean  # contrast ×[0.5, 1.5)


def _translation(x: torch.Tensor, generator: torch.Generator | None, ratio: float = 0.125,
                 sign: int = 1) -> torch.Tensor:
    """Shift each image by up to ratio·size pixels in y and x, filling with zeros. For draws (dy, dx) the content
    moves by ``sign·(dy, dx)``; vision-aided-loss's DiffAugment moves it by ``−(dy, dx)`` (``sign=-1``)."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = [sign * d for d in _randint(-sh, sh + 1, b, generator)]
    dx = [sign * d for d in _randint(-sw, sw + 1, b, generator)]
    padded = F.pad(x, (sw, sw, sh, sh))  # (B, C, H+2sh, W+2sw), zeros
    out = [padded[i, :, sh - dy[i] : sh - dy[i] + h, sw - dx[i] : sw - dx[i] + w] for i in range(b)]
    return torch.stack(out)  # content moves by (+dy, +dx)


def _cutout(x: torch.Tensor, generator: torch.Generator | None, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of ratio·size per image at a random position (may be clipped by the border)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = _randint(0, h + (1 - ch % 2), b, generator)
    cx = _randint(0, w + (1 - cw % 2), b, generator)
    mask = torch.ones(b, 1, h, w, device=x.device, dtype=x.dtype)
    for i in range(b):
        y0, x0 = max(cy[i] - ch // 2, 0), max(cx[i] - cw // 2, 0)
        mask[i, :, y0 : min(cy[i] - ch // 2 + ch, h), x0 : min(cx[i] - cw // 2 + cw, w)] = 0
    return x * mask


_AUGMENTS = {"color": _color, "translation": _translation, "cutout": _cutout}


def diff_augment(
    x: torch.Tensor,
    policy: Sequence[str] | str = ("color", "translation", "cutout"),
    generator: torch.Generator | None = None,
    translation_sign: int = 1,
) -> torch.Tensor:
    """Differentiable augmentation of images x (B, C, H, W) (any range; [-1, 1] here) → same shape.

    ``policy``: names from ``color``, ``translation``, ``cutout`` (list or comma string), applied in order.
    Each image of the batch gets its own random parameters, drawn from ``generator`` (seeded → reproducible) in
    the order of the reference DiffAugment. ``translation_sign`` −1 shifts like vision-aided-loss (see
    ``_translation``).
    """
    if isinstance(policy, str):
        policy = [p for p in policy.split(",") if p]
    for name in policy:
        if name not in _AUGMENTS:
            raise ValueError(f"unknown DiffAugment policy {name!r}; choose from {sorted(_AUGMENTS)}")
        if name == "translation":
            x = _translation(x, generator, sign=translation_sign)
        else:
            x = _AUGMENTS[name](x, generator)
    return x


# ----------------------------------------------------------------------------------------------------------------
# Losses
# ----------------------------------------------------------------------------------------------------------------


def multilevel_sigmoid_loss(logits: Sequence[torch.Tensor], target: Target) -> torch.Tensor:
    """Sum over levels of the BCE-with-logits (averaged within each level and over the batch).

    ``target``: "real" and "generator" aim at 1, "fake" at 0. With all logits 0 the loss is ``len(logits)·log 2``.
    """
    total = 0.0
    for lg in logits:
        want = torch.full_like(lg, 0.0 if target == "fake" else 1.0)
        per_image = F.binary_cross_entropy_with_logits(lg, want, reduction="none").flatten(1).mean(1)  # (B,)
        total = total + per_image
    return total.mean()


def hinge_loss(logits: Sequence[torch.Tensor], target: Target) -> torch.Tensor:
    """Hinge GAN loss summed over levels: D real ``relu(1 − l)``, D fake ``relu(1 + l)``, generator ``−l``."""
    total = 0.0
    for lg in logits:
        if target == "generator":
            total = total - lg.mean()
        elif target == "real":
            total = total + F.relu(1.0 - lg).mean()
        else:
            total = total + F.relu(1.0 + lg).mean()
    return total


def gan_loss(logits: Sequence[torch.Tensor], target: Target, loss_type: LossType = "multilevel_sigmoid"):
    """Dispatch to ``multilevel_sigmoid_loss`` or ``hinge_loss``."""
    if target not in ("real", "fake", "generator"):
        raise ValueError(f"target must be 'real', 'fake' or 'generator', got {target!r}")
    if loss_type == "multilevel_sigmoid":
        return multilevel_sigmoid_loss(logits, target)
    if loss_type == "hinge":
        return hinge_loss(logits, target)
    raise ValueError(f"unknown GAN loss {loss_type!r}; choose 'multilevel_sigmoid' or 'hinge'")


# ----------------------------------------------------------------------------------------------------------------
# Frozen CLIP features
# ----------------------------------------------------------------------------------------------------------------


def default_levels(num_layers: int) -> tuple[int, int]:
    """Blocks whose token maps feed the heads: 4 and 8 of 12; evenly spaced thirds for other depths (≥ 1)."""
    return max(1, round(num_layers / 3)), max(1, round(2 * num_layers / 3))


class CLIPFeatureExtractor(nn.Module):
    """Frozen CLIP ViT → ``[token map (B, hidden, g, g) per level ..., CLS embedding (B, D)]``.

    ``clip``: a ``transformers`` ``CLIPVisionModelWithProjection`` (CLS embedding = projected, D = projection_dim)
    or ``CLIPVisionModel`` (D = hidden_size, post-LayerNorm CLS). Input images in [-1, 1], any size: they are
    resized to the tower's ``image_size`` with area interpolation, then normalised with the CLIP mean/std.
    """

    def __init__(self, clip: nn.Module, levels: Sequence[int] | None = None) -> None:
        super().__init__()
        cfg = clip.config
        self.clip = clip.requires_grad_(False).eval()
        self.levels = tuple(levels) if levels is not None else default_levels(cfg.num_hidden_layers)
        if not all(1 <= lv <= cfg.num_hidden_layers for lv in self.levels):
            raise ValueError(f"levels {self.levels} must lie in 1..{cfg.num_hidden_layers}")
        self.image_size = int(cfg.image_size)
        self.grid = self.image_size // int(cfg.patch_size)
        self.hidden_size = int(cfg.hidden_size)
        self.has_projection = hasattr(clip, "visual_projection")
        self.embed_dim = int(cfg.projection_dim) if self.has_projection else self.hidden_size
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "CLIPFeatureExtractor":
        super().train(mode)
        self.clip.eval()  # frozen: never in training mode
        return self

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = (images + 1) * 0.5  # [-1, 1] → [0, 1]
        x = F.interpolate(x, size=(self.image_size, self.image_size), mode="area")
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)  # (B, 3, S, S)
        out = self.clip(pixel_values=x, output_hidden_states=True)
        b = images.shape[0]
        feats = []
        for lv in self.levels:
            tokens = out.hidden_states[lv][:, 1:, :]  # (B, g·g, hidden), CLS dropped
            feats.append(tokens.transpose(1, 2).reshape(b, self.hidden_size, self.grid, self.grid))
        feats.append(out.image_embeds if self.has_projection else out.pooler_output)  # (B, D)
        return feats


# ----------------------------------------------------------------------------------------------------------------
# Trainable heads
# ----------------------------------------------------------------------------------------------------------------


class Blur(nn.Module):
    """Fixed [1, 3, 3, 1]² low-pass filter per channel, stride 1, zero padding.

    ``pad="same"`` pads (1, 2) so the map keeps its size; ``"official"`` pads 1 on each side like
    vision-aided-loss's BlurPool (the map shrinks by one: 7×7 → 6×6).
    """

    def __init__(self, channels: int, pad: str = "same") -> None:
        super().__init__()
        if pad not in BLUR_PADS:
            raise ValueError(f"blur padding must be one of {BLUR_PADS}; got {pad!r}")
        a = torch.tensor([1.0, 3.0, 3.0, 1.0])
        k = a[:, None] * a[None, :]
        self.register_buffer("kernel", (k / k.sum()).expand(channels, 1, 4, 4).clone(), persistent=False)
        self.channels = channels
        self.pad = (1, 2, 1, 2) if pad == "same" else (1, 1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, self.pad)
        return F.conv2d(x, self.kernel.to(x.dtype), groups=self.channels)


def _spectral_norm(module: nn.Module, kind: str) -> nn.Module:
    """``parametrization``: torch.nn.utils.parametrizations.spectral_norm (15 warm-up power iterations, then u
    before v at each training forward); ``legacy``: torch.nn.utils.spectral_norm as vision-aided-loss uses it (no
    warm-up, v before u; buffers ``weight_orig``/``weight_u``/``weight_v``)."""
    if kind == "legacy":
        return legacy_spectral_norm(module)
    if kind == "parametrization":
        return spectral_norm(module)
    raise ValueError(f"spectral_norm must be one of {SPECTRAL_NORMS}; got {kind!r}")


class MultiLevelHeads(nn.Module):
    """Spectral-norm heads: one patch head per token map, one MLP head for the CLS embedding.

    forward(feats) → list of logits: (B, g', g') per token level (g' = ceil(g / 2) with ``blur_pad="same"``,
    floor((g − 1) / 2) + 1 with "official"), then (B, 1).
    """

    def __init__(self, num_maps: int, map_channels: int, embed_dim: int, channels: int = 256,
                 blur_pad: str = "same", norm: str = "parametrization") -> None:
        super().__init__()
        self.maps = nn.ModuleList(
            nn.Sequential(
                _spectral_norm(nn.Conv2d(map_channels, channels, kernel_size=3, padding=1), norm),
                nn.LeakyReLU(0.2),
                Blur(channels, blur_pad),
                _spectral_norm(nn.Conv2d(channels, 1, kernel_size=1, stride=2), norm),
            )
            for _ in range(num_maps)
        )
        self.cls = nn.Sequential(
            _spectral_norm(nn.Linear(embed_dim, channels), norm),
            nn.LeakyReLU(0.2),
            _spectral_norm(nn.Linear(channels, 1), norm),
        )

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        logits = [head(f.float()).squeeze(1) for head, f in zip(self.maps, feats[:-1])]  # (B, g', g')
        logits.append(self.cls(feats[-1].float()))  # (B, 1)
        return logits


class VisionAidedDiscriminator(nn.Module):
    """One domain's discriminator: DiffAugment → frozen CLIP features → trainable heads → logits per level.

    Only ``heads`` are trainable (``trainable_parameters()``); ``backbone`` may be shared with another
    discriminator. ``loss(images, target, generator)`` returns the scalar GAN loss for images in [-1, 1].
    """

    def __init__(
        self,
        backbone: CLIPFeatureExtractor,
        head_channels: int = 256,
        loss_type: LossType = "multilevel_sigmoid",
        diffaug: bool = True,
        policy: Sequence[str] = ("color", "translation", "cutout"),
        *,
        blur_pad: str = "same",
        spectral_norm: str = "parametrization",
        translation_sign: int = 1,
    ) -> None:
        super().__init__()
        if loss_type not in ("multilevel_sigmoid", "hinge"):
            raise ValueError(f"unknown GAN loss {loss_type!r}; choose 'multilevel_sigmoid' or 'hinge'")
        if translation_sign not in (1, -1):
            raise ValueError(f"translation_sign must be 1 or -1; got {translation_sign!r}")
        self.backbone = backbone
        self.heads = MultiLevelHeads(
            len(backbone.levels), backbone.hidden_size, backbone.embed_dim, channels=head_channels,
            blur_pad=blur_pad, norm=spectral_norm,
        )
        self.loss_type = loss_type
        self.diffaug = diffaug
        self.policy = tuple(policy)
        self.translation_sign = translation_sign

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.heads.parameters())

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """images (B, 3, H, W) in [-1, 1] → logits per level (see ``MultiLevelHeads``)."""
        if self.diffaug:
            images = diff_augment(images, self.policy, generator=generator, translation_sign=self.translation_sign)
        return self.heads(self.backbone(images))

    def loss(self, images: torch.Tensor, target: Target, generator: torch.Generator | None = None) -> torch.Tensor:
        return gan_loss(self(images, generator=generator), target, self.loss_type)
