"""Image-prompt adapters for the UNet's cross-attention (SCUF paper Sec. 3.1, Eq. 2-3; DESIGN §2.3).

Every cross-attention layer (``attn2``) of the UNet receives ``encoder_hidden_states = cat(text, image)``
along the sequence axis: first the text tokens (B, 77, D), then the ``num_tokens`` image tokens
(B, num_tokens, D) made by ``gefu.scuf.prompt.ImageProjection`` — the LAST ``num_tokens`` tokens are
the image tokens (IP-Adapter convention). Three adapters (Table 5 of the paper):

- ``ca`` — :class:`CycleAttnProcessor`, the cycle-attention adapter of SCUF;
- ``ip`` — :class:`IPAttnProcessor`, IP-Adapter's decoupled cross-attention;
- ``concat`` — no new processor: the image tokens go through the layer's normal cross-attention together
  with the text tokens.

:func:`install_image_adapter` installs them and returns the ``nn.ModuleList`` whose state dict has the
layout of the authors' ``ca_adapter`` checkpoint entry.

Behaviour on a call without image tokens: a processor knows ``num_tokens`` and (by default) the text
length (77). ``encoder_hidden_states=None`` or a sequence whose length is not ``text_tokens +
num_tokens`` raises ``ValueError`` — a text-only call is never silently read as "73 text + 4 image
tokens". Use a UNet without the adapter (e.g. the frozen copy taken before installation) for text-only
conditioning.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import Attention
from torch import nn

__all__ = [
    "CycleAttnProcessor",
    "IPAttnProcessor",
    "DefaultAttnProcessor",
    "install_image_adapter",
    "AdapterKind",
    "CycleVariant",
    "SD_TEXT_TOKENS",
]

AdapterKind = Literal["ca", "ip", "concat", "none"]
CycleVariant = Literal["paper", "official"]

SD_TEXT_TOKENS = 77  # CLIP tokenizer model_max_length used by SD 2.1 / SD-Turbo


# ----------------------------------------------------------------------------------------------------------
# shared helpers
# ----------------------------------------------------------------------------------------------------------


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, L, C) → (B, heads, L, C // heads)."""
    b, n, c = x.shape
    return x.view(b, n, heads, c // heads).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    """(B, heads, L, c) → (B, L, heads·c)."""
    b, h, n, c = x.shape
    return x.transpose(1, 2).reshape(b, n, h * c)


def _mha(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, mask: torch.Tensor | None = None):
    """Multi-head scaled dot-product attention on (B, L, C) tensors (scale 1/sqrt(C // heads))."""
    out = F.scaled_dot_product_attention(_heads(q, heads), _heads(k, heads), _heads(v, heads), attn_mask=mask)
    return _merge(out).to(q.dtype)  # (B, Lq, C)


def _split_tokens(
    encoder_hidden_states: torch.Tensor | None, num_tokens: int, text_tokens: int | None, who: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """cat(text, image) (B, S, D) → text (B, S - T, D), image (B, T, D); ValueError on a text-only call."""
    if encoder_hidden_states is None:
        raise ValueError(
            f"{who} is a cross-attention adapter: it needs encoder_hidden_states = cat(text tokens, "
            f"{num_tokens} image tokens), got None"
        )
    seq = encoder_hidden_states.shape[1]
    if seq <= num_tokens or (text_tokens is not None and seq != text_tokens + num_tokens):
        expected = f"{text_tokens} text + {num_tokens} image = {text_tokens + num_tokens}" if text_tokens else (
            f"more than {num_tokens}"
        )
        raise ValueError(
            f"{who}: encoder_hidden_states has {seq} tokens, expected {expected}. Append the image tokens "
            f"(ImageProjection output) after the text embedding, or call a UNet without the image adapter."
        )
    end = seq - num_tokens
    return encoder_hidden_states[:, :end], encoder_hidden_states[:, end:]


class _AttnInput:
    """The part of diffusers' AttnProcessor2_0 that runs before the projections, shared by our processors.

    Holds the residual, the (B, HW, C) tokens after spatial/group norm, the 4-D shape to restore, and the
    attention mask reshaped for SDPA and restricted to the text tokens.
    """

    def __init__(self, attn: Attention, hidden_states: torch.Tensor, n_full: int, n_text: int, mask, temb):
        self.residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        self.shape4d = hidden_states.shape if hidden_states.ndim == 4 else None
        if self.shape4d is not None:
            b, c, h, w = self.shape4d
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)  # (B, HW, C)
        b = hidden_states.shape[0]
        if mask is not None:
            # the mask covers the whole encoder sequence (text + image); the text branch keeps its text part
            mask = attn.prepare_attention_mask(mask, n_full, b)
            mask = mask.view(b, attn.heads, -1, mask.shape[-1])[..., :n_text]
        self.mask = mask
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        self.tokens = hidden_states  # (B, HW, C): Z_u as the layer's query sees it

    def finish(self, attn: Attention, out: torch.Tensor, *, force_residual: bool = False) -> torch.Tensor:
        """to_out → 4-D restore → residual (if the layer has one, or forced) → rescale."""
        out = attn.to_out[1](attn.to_out[0](out))  # linear proj, dropout
        if self.shape4d is not None:
            out = out.transpose(-1, -2).reshape(self.shape4d)
        if attn.residual_connection or force_residual:
            out = out + self.residual
        return out / attn.rescale_output_factor


def _text_branch(attn: Attention, inp: _AttnInput, text: torch.Tensor) -> torch.Tensor:
    """Z_t = Attn(to_q(Z_u), to_k(text), to_v(text)) → (B, HW, inner)."""
    if attn.norm_cross:
        text = attn.norm_encoder_hidden_states(text)
    return _mha(attn.to_q(inp.tokens), attn.to_k(text), attn.to_v(text), attn.heads, inp.mask)


# ----------------------------------------------------------------------------------------------------------
# processors
# ----------------------------------------------------------------------------------------------------------


class CycleAttnProcessor(nn.Module):
    """SCUF cycle-attention adapter on one cross-attention layer.

    With UNet tokens ``Z_u`` (B, HW, hidden), text tokens and image tokens ``c_i`` (B, T, D):

    1. text branch: ``Z_t = Attn(to_q(Z_u), to_k(text), to_v(text))``;
    2. ``Q_1 = to_q_ca(c_iᵀ)`` (B, D, hidden), resampled along its D axis to HW positions with
       ``indices = linspace(0, D - 1, HW).long()`` (nearest, computed on the CPU in float32 like the
       official code); ``Z_f = Attn(Q_1, Z_u, Z_u)`` — keys and values are the UNet tokens themselves,
       no projection;
    3. ``Z_n = Attn(to_q(Z_f), to_k_ca(c_i), to_v_ca(c_i))`` — query through the layer's frozen ``to_q``;
    4. ``out = to_out(Z_t + scale·Z_n)``.

    Every attention is multi-head with the layer's ``heads`` (head_dim = hidden // heads, SDPA scale
    1/sqrt(head_dim)); masks apply to the text branch only.

    Variants (what was read in the authors' ``CAAttnProcessor2_0``, src/attention_processor.py):

    - ``"official"`` (bit-for-bit the released code; default of the importer of the authors' weights):
      ``Z_u`` for step 2 is the block input before spatial/group norm (the official ``residual``; SD's
      transformer blocks have neither norm, so it equals the normalised tokens); the image tokens get no
      ``norm_cross`` (only the text does); ``scale`` is ignored (``Z_t + Z_n``); and after ``to_out`` the
      block input is added unconditionally (``out + residual``), where diffusers adds it only when the
      layer has ``residual_connection`` (SD's ``attn2`` has not: the official layer therefore returns its
      input once more on top of the transformer block's own residual). The debug attention maps the
      official code stores on the module have no effect on the output and are not kept. (The released
      code fails on 4-D layer input; here the official variant flattens it and otherwise behaves the same.)
    - ``"paper"`` (Eq. 2-3 as written): ``Z_u`` is the tokens the query sees (after spatial/group norm),
      ``scale`` weights ``Z_n``, and the residual/rescale follow diffusers' ``AttnProcessor2_0`` exactly.

    For SD's ``attn2`` (no residual_connection, rescale 1): ``official − paper = residual +
    (1 − scale)·W_out·Z_n``.

    Parameters (state-dict keys of the official checkpoint): ``to_q_ca = Linear(num_tokens → hidden)``,
    ``to_k_ca, to_v_ca = Linear(cross_attention_dim → hidden)``, all without bias. The installer
    initialises ``to_q_ca`` like the official code (standard normal) and copies ``to_k_ca/to_v_ca`` from
    the layer's pretrained ``to_k/to_v``.
    """

    def __init__(
        self,
        hidden_size: int,
        cross_attention_dim: int,
        num_tokens: int = 4,
        variant: CycleVariant = "paper",
        scale: float = 1.0,
        text_tokens: int | None = SD_TEXT_TOKENS,
    ) -> None:
        super().__init__()
        if variant not in ("paper", "official"):
            raise ValueError(f"unknown cycle-attention variant {variant!r}; choose 'paper' or 'official'")
        if num_tokens < 1:
            raise ValueError(f"num_tokens must be >= 1, got {num_tokens}")
        self.hidden_size = hidden_size
        self.cross_attention_dim = cross_attention_dim
        self.num_tokens = num_tokens
        self.variant: CycleVariant = variant
        self.scale = scale
        self.text_tokens = text_tokens
        self.to_q_ca = nn.Linear(num_tokens, hidden_size, bias=False)
        self.to_k_ca = nn.Linear(cross_attention_dim, hidden_size, bias=False)
        self.to_v_ca = nn.Linear(cross_attention_dim, hidden_size, bias=False)

    def extra_repr(self) -> str:
        return f"variant={self.variant!r}, scale={self.scale}, num_tokens={self.num_tokens}"

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args,
        **kwargs,
    ) -> torch.Tensor:
        text, image = _split_tokens(encoder_hidden_states, self.num_tokens, self.text_tokens, "CycleAttnProcessor")
        inp = _AttnInput(attn, hidden_states, encoder_hidden_states.shape[1], text.shape[1], attention_mask, temb)
        z_t = _text_branch(attn, inp, text)  # (B, HW, hidden)

        if self.variant == "official":
            z_u = inp.residual  # block input before spatial/group norm
            if z_u.ndim == 4:
                z_u = z_u.flatten(2).transpose(1, 2)  # (B, HW, C)
        else:
            z_u = inp.tokens  # (B, HW, C)
        hw = z_u.shape[1]

        # first attention: image-token queries spread over the HW positions attend to the UNet tokens
        q1 = self.to_q_ca(image.transpose(1, 2))  # (B, D, hidden)
        idx = torch.linspace(0, self.cross_attention_dim - 1, hw).long().to(q1.device)  # (HW,)
        q1 = q1[:, idx, :]  # (B, HW, hidden)
        z_f = _mha(q1, z_u, z_u, attn.heads)  # (B, HW, hidden)

        # second attention: the fused tokens query the image tokens
        z_n = _mha(attn.to_q(z_f), self.to_k_ca(image), self.to_v_ca(image), attn.heads)  # (B, HW, hidden)

        if self.variant == "official":
            return inp.finish(attn, z_t + z_n, force_residual=True)
        return inp.finish(attn, z_t + self.scale * z_n)


class IPAttnProcessor(nn.Module):
    """IP-Adapter decoupled cross-attention (ablation "IP-Adapter" of the paper's Table 5).

    ``out = to_out(Z_t + scale·Attn(to_q(Z_u), to_k_ip(c_i), to_v_ip(c_i)))`` with the residual/rescale of
    diffusers' ``AttnProcessor2_0``. ``to_k_ip, to_v_ip = Linear(cross_attention_dim → hidden)`` without
    bias (state-dict keys ``to_k_ip.weight, to_v_ip.weight``), initialised by the installer from the
    layer's ``to_k/to_v``. Image tokens are the last ``num_tokens`` of ``encoder_hidden_states``.
    """

    def __init__(
        self,
        hidden_size: int,
        cross_attention_dim: int,
        num_tokens: int = 4,
        scale: float = 1.0,
        text_tokens: int | None = SD_TEXT_TOKENS,
    ) -> None:
        super().__init__()
        if num_tokens < 1:
            raise ValueError(f"num_tokens must be >= 1, got {num_tokens}")
        self.hidden_size = hidden_size
        self.cross_attention_dim = cross_attention_dim
        self.num_tokens = num_tokens
        self.scale = scale
        self.text_tokens = text_tokens
        self.to_k_ip = nn.Linear(cross_attention_dim, hidden_size, bias=False)
        self.to_v_ip = nn.Linear(cross_attention_dim, hidden_size, bias=False)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, num_tokens={self.num_tokens}"

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args,
        **kwargs,
    ) -> torch.Tensor:
        text, image = _split_tokens(encoder_hidden_states, self.num_tokens, self.text_tokens, "IPAttnProcessor")
        inp = _AttnInput(attn, hidden_states, encoder_hidden_states.shape[1], text.shape[1], attention_mask, temb)
        z_t = _text_branch(attn, inp, text)  # (B, HW, hidden)
        z_i = _mha(attn.to_q(inp.tokens), self.to_k_ip(image), self.to_v_ip(image), attn.heads)  # (B, HW, hidden)
        return inp.finish(attn, z_t + self.scale * z_i)


class DefaultAttnProcessor(nn.Module):
    """A parameter-free ``nn.Module`` around an existing diffusers processor (used for self-attention).

    It only exists so that ``nn.ModuleList(unet.attn_processors.values())`` can be built, which gives the
    adapter state dict the official layout (self-attention layers take positions but hold no weights).
    It calls the wrapped processor unchanged.
    """

    def __init__(self, processor) -> None:
        super().__init__()
        self.processor = processor

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args,
        **kwargs,
    ) -> torch.Tensor:
        return self.processor(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)

    def extra_repr(self) -> str:
        return type(self.processor).__name__


# ----------------------------------------------------------------------------------------------------------
# installer
# ----------------------------------------------------------------------------------------------------------


def _hidden_size(name: str, block_out_channels: list[int]) -> int:
    """Channel count of the block that owns processor ``name`` (official rule)."""
    if name.startswith("mid_block"):
        return block_out_channels[-1]
    if name.startswith("up_blocks"):
        return list(reversed(block_out_channels))[int(name.split(".")[1])]
    if name.startswith("down_blocks"):
        return block_out_channels[int(name.split(".")[1])]
    raise ValueError(f"cannot tell the block of attention layer {name!r}")


def _check_layer(layer_name: str, attn: Attention, hidden: int, cross_dim: int) -> None:
    if attn.to_q.in_features != hidden or attn.to_q.out_features != hidden or attn.to_k.in_features != cross_dim:
        raise ValueError(
            f"{layer_name}: expected query/inner dim {hidden} and cross dim {cross_dim}, got to_q "
            f"{attn.to_q.in_features}→{attn.to_q.out_features}, to_k in {attn.to_k.in_features}"
        )
    if attn.norm_q is not None or attn.norm_k is not None:
        raise ValueError(f"{layer_name}: attention layers with q/k normalisation are not supported")


def _new_processor(attn: Attention, kind: str, hidden: int, cross_dim: int, num_tokens: int, variant: str,
                   scale: float, text_tokens: int | None) -> nn.Module:
    """A "ca" or "ip" processor for one cross-attention layer, initialised from its to_k/to_v (to_q_ca ~ N(0, 1))."""
    w_k, w_v = attn.to_k.weight.detach(), attn.to_v.weight.detach()  # (hidden, cross_dim)
    if kind == "ca":
        proc = CycleAttnProcessor(hidden, cross_dim, num_tokens, variant, scale, text_tokens)
        proc.to(device=w_k.device, dtype=w_k.dtype)
        with torch.no_grad():
            proc.to_q_ca.weight.normal_(0.0, 1.0)
            proc.to_k_ca.weight.copy_(w_k)
            proc.to_v_ca.weight.copy_(w_v)
        return proc
    proc = IPAttnProcessor(hidden, cross_dim, num_tokens, scale, text_tokens)
    proc.to(device=w_k.device, dtype=w_k.dtype)
    with torch.no_grad():
        proc.to_k_ip.weight.copy_(w_k)
        proc.to_v_ip.weight.copy_(w_v)
    return proc


def install_image_adapter(
    unet: UNet2DConditionModel,
    kind: AdapterKind = "ca",
    variant: CycleVariant = "paper",
    num_tokens: int = 4,
    scale: float = 1.0,
    text_tokens: int | None = SD_TEXT_TOKENS,
) -> nn.ModuleList:
    """Install an image-prompt adapter on every cross-attention (``attn2``) layer of ``unet``.

    kind: ``"ca"`` (:class:`CycleAttnProcessor` with ``variant``), ``"ip"`` (:class:`IPAttnProcessor`),
    ``"concat"`` or ``"none"`` (the UNet is left untouched; for concat the caller still appends the
    image tokens, which then go through the normal cross-attention). ``text_tokens``: the text length the
    processors expect before the image tokens (None: any length; see the module docstring).

    Returns ``nn.ModuleList(unet.attn_processors.values())`` in ``unet.attn_processors`` order — state-dict
    keys ``{i}.to_q_ca.weight, {i}.to_k_ca.weight, {i}.to_v_ca.weight`` (or ``{i}.to_k_ip.weight, ...``)
    where ``i`` counts ALL attention layers (self-attention ones, wrapped in :class:`DefaultAttnProcessor`,
    take positions without weights): the layout of the official ``ca_adapter`` checkpoint entry. For
    ``concat``/``none`` an empty ModuleList.

    New parameters take the dtype and device of the layer's ``to_k`` weight and ``requires_grad=True``;
    ``to_k_ca/to_v_ca`` (``to_k_ip/to_v_ip``) are copies of the layer's ``to_k/to_v``, ``to_q_ca`` is drawn
    from N(0, 1) with the global torch RNG (as the official ``torch.randn(hidden, 4)``). The processors
    become submodules of the UNet (``unet.state_dict()`` then contains them): take any frozen copy of the
    UNet before installing, and freeze the UNet's own weights before, not after, installing.
    """
    if kind not in ("ca", "ip", "concat", "none"):
        raise ValueError(f"unknown image adapter {kind!r}; choose 'ca', 'ip', 'concat' or 'none'")
    if kind in ("concat", "none"):
        return nn.ModuleList()
    if variant not in ("paper", "official"):
        raise ValueError(f"unknown cycle-attention variant {variant!r}; choose 'paper' or 'official'")

    cross_dim = unet.config.cross_attention_dim
    if not isinstance(cross_dim, int):
        raise ValueError(f"per-block cross_attention_dim {cross_dim!r} is not supported (SD 2.1 uses one int)")
    channels = list(unet.config.block_out_channels)
    layers = {name: module for name, module in unet.named_modules() if isinstance(module, Attention)}

    processors: dict[str, nn.Module] = {}
    for name, current in unet.attn_processors.items():
        layer_name = name.removesuffix(".processor")
        attn = layers[layer_name]
        if isinstance(current, (CycleAttnProcessor, IPAttnProcessor, DefaultAttnProcessor)):
            raise ValueError("an image adapter is already installed on this UNet; install it on a fresh UNet")
        if not attn.is_cross_attention:
            processors[name] = DefaultAttnProcessor(current)
            continue
        hidden = _hidden_size(name, channels)
        _check_layer(layer_name, attn, hidden, cross_dim)
        processors[name] = _new_processor(attn, kind, hidden, cross_dim, num_tokens, variant, scale, text_tokens)

    unet.set_attn_processor(processors)
    return nn.ModuleList(unet.attn_processors.values())
