"""Tiny random-initialised SD-Turbo-shaped components for tests, demos and CPU smoke runs.

Every builder is offline (no tokenizer or weight download) and deterministic: the weights come from a
``torch.Generator`` seeded with ``seed`` (the global RNG is saved and restored around construction, so
calling a builder neither depends on nor disturbs ``torch.manual_seed`` state elsewhere).

The shapes mirror SD 2.1 / SD-Turbo (linear projections in the transformer blocks, cross-attention over
text tokens, 4-channel latents) at a size that runs in milliseconds on a CPU:

- UNet: block_out_channels (32, 64), cross_attention_dim 32, sample size 32 (latent 32×32 ↔ image 64×64).
- VAE: block_out_channels (32, 64) (2 blocks instead of SD's 4: downsampling factor 2, not 8), latent 4 ch.
- Text encoder: CLIP text model, hidden 32, vocab 1000, 77 positions.
- Vision tower: CLIP vision model with projection, hidden 32, projection_dim 16, patch 4, image 32.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

__all__ = [
    "TINY_CROSS_DIM",
    "TINY_PROJECTION_DIM",
    "tiny_unet",
    "tiny_vae",
    "tiny_text_encoder",
    "tiny_clip_vision",
    "tiny_scheduler",
]

TINY_CROSS_DIM = 32  # cross_attention_dim of tiny_unet == hidden_size of tiny_text_encoder
TINY_PROJECTION_DIM = 16  # projection_dim of tiny_clip_vision


def _seeded(build, seed: int):
    """Run ``build()`` with the global torch RNG forked and seeded, so the result depends only on ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build()
    return model


def tiny_unet(seed: int = 0) -> UNet2DConditionModel:
    """A 2-level SD-2.1-style UNet (linear projections, cross-attention dim 32, 4-ch latents, sample 32)."""
    return _seeded(
        lambda: UNet2DConditionModel(
            sample_size=32,
            in_channels=4,
            out_channels=4,
            block_out_channels=(32, 64),
            layers_per_block=1,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            mid_block_type="UNetMidBlock2DCrossAttn",
            cross_attention_dim=TINY_CROSS_DIM,
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            norm_num_groups=8,
        ),
        seed,
    ).eval()


def tiny_vae(seed: int = 0) -> AutoencoderKL:
    """A 2-block ``AutoencoderKL`` (channels 32/64, latent 4 ch, downsampling ×2, scaling_factor 0.18215)."""
    return _seeded(
        lambda: AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            block_out_channels=(32, 64),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=8,
            sample_size=64,
            scaling_factor=0.18215,
        ),
        seed,
    ).eval()


def tiny_text_encoder(seed: int = 0) -> CLIPTextModel:
    """A CLIP text model with hidden size 32 (= tiny UNet cross-attention dim), vocab 1000, 77 positions."""
    config = CLIPTextConfig(
        vocab_size=1000,
        hidden_size=TINY_CROSS_DIM,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
        hidden_act="gelu",
        projection_dim=TINY_CROSS_DIM,
    )
    return _seeded(lambda: CLIPTextModel(config), seed).eval()


def tiny_clip_vision(seed: int = 0) -> CLIPVisionModelWithProjection:
    """A CLIP vision tower with projection: hidden 32, projection_dim 16, patch 4, image_size 32 (64 patches)."""
    config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=37,
        projection_dim=TINY_PROJECTION_DIM,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_channels=3,
        image_size=32,
        patch_size=4,
        hidden_act="quick_gelu",
    )
    return _seeded(lambda: CLIPVisionModelWithProjection(config), seed).eval()


def tiny_scheduler() -> DDPMScheduler:
    """The SD-Turbo DDPM scheduler configuration (1000 train steps, scaled-linear betas, epsilon prediction)."""
    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        clip_sample=False,
        steps_offset=1,
        timestep_spacing="trailing",
    )
