"""The SD VAE with encoder→decoder skip connections (CycleGAN-Turbo style) and its LoRA.

The encoder keeps the input of each of its down blocks; before each up block the decoder adds
`skip_conv_i(skips[::-1][i] · gamma)`, where `skip_conv_i` is a 1×1 conv without bias initialised to the
constant 1e-5 (so a fresh model decodes almost exactly like the pretrained VAE). For SD's VAE
(block_out_channels 128/256/512/512) the pairs are 512→512, 256→512, 128→512, 128→256 — the channel counts are
derived from the VAE config, so the 2-block tiny VAE gets its own consistent pairs.

`SkipEncoder` and `SkipDecoder` subclass diffusers' `Encoder`/`Decoder` (their `__init__` builds the very same
layers), so parameter names stay those of `AutoencoderKL`: `SkipVAE.state_dict()` keys are AutoencoderKL keys
plus `decoder.skip_conv_{1..n}.*` (and peft's `base_layer`/`lora_A.vae_skip`/`lora_B.vae_skip` names once the
LoRA is added) — the layout of the official checkpoint. The skip activations travel explicitly: the encoder
returns them, the decoder takes them as an argument; nothing is stored on the modules between calls.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn as nn
from diffusers import AutoencoderKL
from diffusers.models.autoencoders.vae import Decoder, DiagonalGaussianDistribution, Encoder
from peft import LoraConfig, inject_adapter_in_model
from torch.utils.checkpoint import checkpoint

__all__ = [
    "SKIP_INIT",
    "VAE_ADAPTER_NAME",
    "skip_channel_pairs",
    "SkipEncoder",
    "SkipDecoder",
    "SkipVAE",
    "ReflectanceDecoder",
    "add_vae_lora",
]

SKIP_INIT = 1e-5  # constant initial weight of the 1×1 skip convs
VAE_ADAPTER_NAME = "vae_skip"  # peft adapter name used by the official checkpoint

# AutoencoderKL config entries the encoder / decoder constructors take.
_ARCH_KEYS = (
    "in_channels",
    "out_channels",
    "down_block_types",
    "up_block_types",
    "block_out_channels",
    "layers_per_block",
    "act_fn",
    "latent_channels",
    "norm_num_groups",
    "mid_block_add_attention",
)


def skip_channel_pairs(block_out_channels: Sequence[int]) -> list[tuple[int, int]]:
    """(in, out) channels of `skip_conv_1..n` for a VAE with these `block_out_channels`.

    Skip i (0-based) carries the input of encoder down block n-1-i to the input of decoder up block i.
    Encoder down block j takes `boc[j-1]` channels (`boc[0]` for j = 0, after conv_in); decoder up block i takes
    `reversed(boc)[i-1]` (`boc[-1]` for i = 0, after the mid block). SD: [(512, 512), (256, 512), (128, 512),
    (128, 256)].
    """
    boc = list(block_out_channels)
    enc_in = [boc[0]] + boc[:-1]  # input channels of each encoder down block
    rev = boc[::-1]
    dec_in = [rev[0]] + rev[:-1]  # input channels of each decoder up block
    return [(enc_in[::-1][i], dec_in[i]) for i in range(len(boc))]


def _run(module: nn.Module, use_checkpoint: bool, *args: Any) -> torch.Tensor:
    if use_checkpoint and torch.is_grad_enabled():
        return checkpoint(module, *args, use_reentrant=False)
    return module(*args)


class SkipEncoder(Encoder):
    """diffusers' VAE `Encoder` that also returns the input of each down block."""

    def forward(self, sample: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:  # type: ignore[override]
        """sample (B, 3, H, W) in [-1, 1] → (moments (B, 2·latent, H/f, W/f) before quant_conv, skips).

        `skips[j]` is the input of down block j: (B, boc[j-1], H/2^j, W/2^j).
        """
        ckpt = self.gradient_checkpointing
        sample = self.conv_in(sample)  # (B, boc[0], H, W)
        skips = []
        for down_block in self.down_blocks:
            skips.append(sample)
            sample = _run(down_block, ckpt, sample)
        sample = _run(self.mid_block, ckpt, sample)  # (B, boc[-1], h, w)
        sample = self.conv_norm_out(sample)
        sample = self.conv_act(sample)
        sample = self.conv_out(sample)  # (B, 2·latent, h, w)
        return sample, skips


class SkipDecoder(Decoder):
    """diffusers' VAE `Decoder` plus 1×1 skip convs that add encoder activations before each up block."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        boc = kwargs.get("block_out_channels", args[3] if len(args) > 3 else (64,))
        for i, (c_in, c_out) in enumerate(skip_channel_pairs(boc), start=1):
            conv = nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, bias=False)
            nn.init.constant_(conv.weight, SKIP_INIT)
            self.add_module(f"skip_conv_{i}", conv)

    @property
    def num_skips(self) -> int:
        return len(self.up_blocks)

    def skip_convs(self) -> list[nn.Module]:
        """`skip_conv_1..n` in the order they are applied."""
        return [getattr(self, f"skip_conv_{i}") for i in range(1, self.num_skips + 1)]

    def forward(  # type: ignore[override]
        self,
        sample: torch.Tensor,
        skips: Sequence[torch.Tensor] | None = None,
        gamma: float = 1.0,
        latent_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """sample (B, latent, h, w) (after post_quant_conv), skips from `SkipEncoder` of the SAME image →
        (B, 3, H, W), unbounded (≈ [-1, 1]). `skips=None` decodes like the plain VAE (no skip path)."""
        if skips is not None and len(skips) != self.num_skips:
            raise ValueError(f"expected {self.num_skips} skip activations, got {len(skips)}")
        ckpt = self.gradient_checkpointing
        sample = self.conv_in(sample)
        sample = _run(self.mid_block, ckpt, sample, latent_embeds)  # (B, boc[-1], h, w)
        rev_skips = list(skips)[::-1] if skips is not None else None
        for i, (up_block, skip_conv) in enumerate(zip(self.up_blocks, self.skip_convs())):
            if rev_skips is not None:
                act = rev_skips[i]
                if act.shape[-2:] != sample.shape[-2:]:
                    raise ValueError(
                        f"skip activation {i} has size {tuple(act.shape[-2:])} but the decoder is at "
                        f"{tuple(sample.shape[-2:])}: skips must come from the encoder pass of the same image"
                    )
                sample = sample + skip_conv(act * gamma)
            sample = _run(up_block, ckpt, sample, latent_embeds)
        if latent_embeds is None:
            sample = self.conv_norm_out(sample)
        else:
            sample = self.conv_norm_out(sample, latent_embeds)
        sample = self.conv_act(sample)
        return self.conv_out(sample)  # (B, 3, H, W)


def _encoder_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    return dict(
        in_channels=cfg["in_channels"],
        out_channels=cfg["latent_channels"],
        down_block_types=tuple(cfg["down_block_types"]),
        block_out_channels=tuple(cfg["block_out_channels"]),
        layers_per_block=cfg["layers_per_block"],
        act_fn=cfg["act_fn"],
        norm_num_groups=cfg["norm_num_groups"],
        double_z=True,
        mid_block_add_attention=cfg.get("mid_block_add_attention", True),
    )


def _decoder_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    return dict(
        in_channels=cfg["latent_channels"],
        out_channels=cfg["out_channels"],
        up_block_types=tuple(cfg["up_block_types"]),
        block_out_channels=tuple(cfg["block_out_channels"]),
        layers_per_block=cfg["layers_per_block"],
        norm_num_groups=cfg["norm_num_groups"],
        act_fn=cfg["act_fn"],
        mid_block_add_attention=cfg.get("mid_block_add_attention", True),
    )


class SkipVAE(nn.Module):
    """A copy of an `AutoencoderKL` with skip connections; same state-dict keys (+ `decoder.skip_conv_i`).

    Latent convention: `encode` returns the *unscaled* posterior; callers multiply by `scaling_factor` for the
    UNet and divide before `decode`, exactly as diffusers pipelines do.
    """

    def __init__(self, vae_config: dict[str, Any]) -> None:
        super().__init__()
        cfg = {k: vae_config[k] for k in _ARCH_KEYS if k in vae_config}
        if vae_config.get("shift_factor") not in (None, 0, 0.0):
            raise ValueError("VAEs with a latent shift_factor (SD3/Flux) are not supported; SCUF uses the SD 2.1 VAE")
        self.arch = cfg
        self.scaling_factor = float(vae_config.get("scaling_factor", 0.18215))
        self.encoder = SkipEncoder(**_encoder_kwargs(cfg))
        self.decoder = SkipDecoder(**_decoder_kwargs(cfg))
        latent = cfg["latent_channels"]
        # SD's VAE has both 1×1 convs; keep the same attribute names so the keys match AutoencoderKL's.
        self.quant_conv = nn.Conv2d(2 * latent, 2 * latent, 1) if vae_config.get("use_quant_conv", True) else None
        self.post_quant_conv = nn.Conv2d(latent, latent, 1) if vae_config.get("use_post_quant_conv", True) else None

    @classmethod
    def from_autoencoder(cls, vae: AutoencoderKL) -> "SkipVAE":
        """Build from a (pretrained) `AutoencoderKL`, copying all its weights; only the skip convs are new."""
        model = cls(dict(vae.config))
        missing, unexpected = model.load_state_dict(vae.state_dict(), strict=False)
        assert not unexpected, unexpected
        assert all(".skip_conv_" in k for k in missing), missing
        model = model.to(dtype=vae.dtype)
        with torch.no_grad():  # the constant in the VAE's own precision (not a rounded float32 1e-5)
            for conv in model.decoder.skip_convs():
                conv.weight.fill_(SKIP_INIT)
        return model

    @property
    def downsampling_factor(self) -> int:
        """Image side / latent side (8 for SD's VAE, 2 for the tiny one)."""
        return 2 ** (len(self.arch["block_out_channels"]) - 1)

    def encode(self, x: torch.Tensor) -> tuple[DiagonalGaussianDistribution, list[torch.Tensor]]:
        """x (B, 3, H, W) in [-1, 1], H and W multiples of `downsampling_factor` →
        (posterior over the unscaled latent (B, 4, H/f, W/f), skip activations)."""
        moments, skips = self.encoder(x)
        if self.quant_conv is not None:
            moments = self.quant_conv(moments)
        return DiagonalGaussianDistribution(moments), skips

    def decode(self, z: torch.Tensor, skips: Sequence[torch.Tensor] | None, gamma: float = 1.0) -> torch.Tensor:
        """Unscaled latent z (B, 4, h, w) + skips of the same image → (B, 3, H, W), unbounded (≈ [-1, 1])."""
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        return self.decoder(z, skips, gamma)


class ReflectanceDecoder(nn.Module):
    """A third copy of the VAE decoder (with its own skip convs and LoRA): latent → reflectance in [0, 1].

    Keys are `post_quant_conv.*` and `decoder.*` — the `vae_ref.` part of the official checkpoint (whose
    `vae_ref.encoder` is never run by the official forward).
    """

    def __init__(self, vae: SkipVAE) -> None:
        super().__init__()
        import copy

        self.scaling_factor = vae.scaling_factor
        self.post_quant_conv = copy.deepcopy(vae.post_quant_conv)
        self.decoder = copy.deepcopy(vae.decoder)

    def forward(self, z: torch.Tensor, skips: Sequence[torch.Tensor], gamma: float = 1.0) -> torch.Tensor:
        """Unscaled latent (B, 4, h, w) + skips of the encoder of the same image → (B, 3, H, W) in [0, 1]."""
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        return torch.sigmoid(self.decoder(z, skips, gamma))


def add_vae_lora(
    module: nn.Module,
    rank: int,
    alpha: float,
    targets: Sequence[str],
    adapter_name: str = VAE_ADAPTER_NAME,
) -> nn.Module:
    """Inject a peft LoRA (gaussian init: A ~ N(0, 1/r), B = 0, so the model is unchanged) into `module`.

    Returns the same module, modified in place. peft marks only the LoRA factors as trainable; callers set
    `requires_grad` explicitly afterwards anyway.
    """
    config = LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=list(targets))
    return inject_adapter_in_model(config, module, adapter_name=adapter_name)
