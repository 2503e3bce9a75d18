"""Illumination-aware image prompt (SCUF paper Sec. 3.1, DESIGN §2.2).

The prompt tells the generator how bright each part of the input is:

1. ``illumination_map``: the HSV value channel ``V = max(R, G, B)`` of an RGB image in [0, 1], or its
   reverse ``1 - V`` (the lighten pass sees ``1 - V(I_l)``: bright where the input is dark).
2. ``ImagePromptEncoder``: a frozen CLIP ViT image tower turns the map (repeated to 3 channels) into one
   L2-normalised projected CLS embedding (512-d for ViT-B/32).
3. ``ImageProjection``: a trainable ``Linear`` + ``LayerNorm`` turns that embedding into ``num_tokens``
   cross-attention tokens, appended after the 77 text tokens (see ``gefu.scuf.attention``).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPVisionModelWithProjection
from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

__all__ = ["illumination_map", "ImagePromptEncoder", "ImageProjection"]

PromptMode = Literal["official", "standard"]


def illumination_map(x: torch.Tensor, reverse: bool) -> torch.Tensor:
    """HSV value channel of an RGB batch.

    x: (B, 3, H, W) float in [0, 1]. Returns (B, 1, H, W) in [0, 1]: ``V = max over RGB``, or ``1 - V``
    when ``reverse`` (the prompt used to lighten an image and at inference).
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"illumination_map expects a float RGB batch (B, 3, H, W) in [0, 1], got {shape}")
    v = x.amax(dim=1, keepdim=True)  # (B, 1, H, W)
    return 1.0 - v if reverse else v


class ImagePromptEncoder(nn.Module):
    """Frozen CLIP image tower that embeds an illumination map.

    Two modes (DESIGN §2.2):

    - ``"official"`` (default, what the released SCUF weights were trained with): the map is repeated to
      3 channels and fed raw in [0, 1] (no CLIP mean/std) at its native resolution, and the positional
      embedding is dropped, so any size works (the patch grid is ``H // patch × W // patch``; a border that
      does not fill a whole patch is ignored by the strided patch convolution, as in the official code).
      The official code (its vendored OpenAI CLIP, ``encode_image(pos_embedding=False)``) runs
      patch conv → prepend class token → ``ln_pre`` → transformer → ``ln_post`` on the CLS token →
      projection; here the same sequence is built from the transformers model's own modules
      (``patch_embedding``, ``class_embedding``, ``pre_layrnorm``, ``encoder``, ``post_layernorm``,
      ``visual_projection``).
    - ``"standard"``: the usual CLIP input: bicubic (antialiased) resize of the whole map to the model's
      ``image_size`` × ``image_size`` (224 for ViT-B/32; no crop, so no part of the map is lost), CLIP
      mean/std, positional embedding — exactly transformers' own forward.

    ``forward(v)``: v (B, 1, H, W) in [0, 1] → (B, projection_dim), L2-normalised, in the CLIP model's
    dtype. The CLIP weights are frozen; the output is differentiable w.r.t. ``v`` (detach it if you do
    not want that — the official training does).
    """

    def __init__(self, clip: CLIPVisionModelWithProjection, mode: PromptMode = "official") -> None:
        super().__init__()
        if not isinstance(clip, CLIPVisionModelWithProjection):
            raise ValueError(
                f"ImagePromptEncoder needs a transformers CLIPVisionModelWithProjection (it uses the projected "
                f"CLS embedding), got {type(clip).__name__}"
            )
        if mode not in ("official", "standard"):
            raise ValueError(f"unknown image-prompt mode {mode!r}; choose 'official' or 'standard'")
        self.mode: PromptMode = mode
        self.clip = clip.eval().requires_grad_(False)

    @property
    def projection_dim(self) -> int:
        """Size of the output embedding (512 for ViT-B/32)."""
        return self.clip.config.projection_dim

    def train(self, mode: bool = True) -> "ImagePromptEncoder":
        # The tower is frozen: keep it in eval mode whatever the parent module does.
        super().train(mode)
        self.clip.eval()
        return self

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """v: (B, 1, H, W) illumination map in [0, 1] → (B, projection_dim) unit-norm embedding."""
        if not isinstance(v, torch.Tensor) or v.ndim != 4 or v.shape[1] != 1 or not v.is_floating_point():
            shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
            raise ValueError(f"ImagePromptEncoder expects a float map (B, 1, H, W) in [0, 1], got {shape}")
        patch = self.clip.config.patch_size
        if self.mode == "official" and (v.shape[-2] < patch or v.shape[-1] < patch):
            raise ValueError(
                f"the illumination map ({v.shape[-2]}×{v.shape[-1]}) is smaller than one CLIP patch ({patch}×{patch})"
            )
        dtype = self.clip.visual_projection.weight.dtype
        x = v.to(dtype).expand(-1, 3, -1, -1)  # (B, 3, H, W): grey map as RGB
        if self.mode == "official":
            embeds = self._official_embeds(x)
        else:
            embeds = self._standard_embeds(x)
        return F.normalize(embeds, dim=-1)  # (B, projection_dim)

    def _official_embeds(self, x: torch.Tensor) -> torch.Tensor:
        """Raw [0, 1] input, native resolution, no positional embedding → projected CLS (B, P)."""
        tower = self.clip.vision_model
        emb = tower.embeddings
        patches = emb.patch_embedding(x)  # (B, C, H/p, W/p)
        patches = patches.flatten(2).transpose(1, 2)  # (B, N, C)
        cls = emb.class_embedding.to(patches.dtype).expand(patches.shape[0], 1, -1)  # (B, 1, C)
        tokens = torch.cat([cls, patches], dim=1)  # (B, 1 + N, C) — no position embedding added
        tokens = tower.pre_layrnorm(tokens)
        hidden = tower.encoder(inputs_embeds=tokens).last_hidden_state  # (B, 1 + N, C)
        pooled = tower.post_layernorm(hidden[:, 0])  # (B, C)
        return self.clip.visual_projection(pooled)  # (B, P)

    def _standard_embeds(self, x: torch.Tensor) -> torch.Tensor:
        """CLIP's usual preprocessing (resize to image_size, mean/std) and forward → projected CLS (B, P)."""
        size = self.clip.config.image_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
        mean = torch.tensor(OPENAI_CLIP_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(OPENAI_CLIP_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return self.clip(pixel_values=(x - mean) / std).image_embeds  # (B, P)


class ImageProjection(nn.Module):
    """Image embedding → ``num_tokens`` cross-attention tokens (the official ``image_proj``).

    ``Linear(in_dim → num_tokens·cross_dim)`` named ``proj``, reshape to (B, num_tokens, cross_dim),
    ``LayerNorm(cross_dim)`` named ``norm``; state-dict keys ``proj.weight, proj.bias, norm.weight,
    norm.bias`` as in the authors' checkpoint. forward: (B, in_dim) → (B, num_tokens, cross_dim).
    """

    def __init__(self, in_dim: int = 512, num_tokens: int = 4, cross_dim: int = 1024) -> None:
        super().__init__()
        if min(in_dim, num_tokens, cross_dim) < 1:
            raise ValueError(f"ImageProjection sizes must be positive, got {in_dim=}, {num_tokens=}, {cross_dim=}")
        self.in_dim = in_dim
        self.num_tokens = num_tokens
        self.cross_dim = cross_dim
        self.proj = nn.Linear(in_dim, num_tokens * cross_dim)
        self.norm = nn.LayerNorm(cross_dim)

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        """embeds: (B, in_dim) → tokens (B, num_tokens, cross_dim)."""
        if embeds.ndim != 2 or embeds.shape[-1] != self.in_dim:
            raise ValueError(f"ImageProjection expects (B, {self.in_dim}) embeddings, got {tuple(embeds.shape)}")
        tokens = self.proj(embeds).reshape(-1, self.num_tokens, self.cross_dim)  # (B, T, D)
        return self.norm(tokens)
