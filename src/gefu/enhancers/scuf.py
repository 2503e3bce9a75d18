"""The `scuf` enhancer: SCUF's lighten pass (DESIGN §2.7) behind the common Enhancer interface.

    create_enhancer("scuf", checkpoint="scuf-ckpt/")            # a save_pretrained folder
    create_enhancer("scuf", checkpoint="model_25001.pkl")       # the authors' released checkpoint
    create_enhancer("scuf", base="tiny-random", seed=0)         # offline smoke runs (random weights)

Any image size: the batch is reflect-padded to a multiple of 8 and cropped back (no resizing, unlike the
official code, so every pixel is kept). With `tile=N` the image is processed in overlapping N×N tiles blended
without seams, so memory depends on the tile, not on the image; the image prompt (CLIP embedding of 1 − V) is
then computed once per image from the map downscaled to at most the tile size and shared by all tiles, so every
tile is steered by the same global illumination context.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ..device import dtype_name, parse_dtype
from ..imageio import crop_to, pad_to_multiple, tile_apply
from .base import ENHANCERS, Enhancer

if TYPE_CHECKING:  # pragma: no cover
    from ..scuf.generator import SCUFGenerator

__all__ = ["SCUFEnhancer", "parse_dtype"]

log = logging.getLogger(__name__)

@ENHANCERS.register("scuf")
class SCUFEnhancer(Enhancer):
    """SCUF (ICCV 2025): one-step SD-Turbo enhancer with an illumination-aware image prompt.

    Args:
        checkpoint: a `save_pretrained` folder, or the official `.pkl` (imported into the "official" variant).
            None builds the base model with an UNTRAINED adapter, LoRA and skip convs: it runs (useful for smoke
            tests and timing) but it does not enhance — the output is roughly SD-Turbo's one-step reconstruction.
        base: SD-Turbo id or local folder, or "tiny-random". None: the checkpoint's base (its config.json), else
            "stabilityai/sd-turbo". Loaded offline from the HF cache unless `allow_download`.
        device: where to run (default CPU; the enhancer also follows `.to(device)`).
        dtype: "fp32" (default; use it on CPU), "fp16" or "bf16" (GPU). Never chosen behind your back.
        tile: process in overlapping `tile`×`tile` tiles (None: whole image). overlap: tile overlap in pixels.
        seed: seeds the tiny-random components and (with `sample`) the latent sampling; same seed → same output.
        sample: draw the VAE latent (the official inference does) instead of taking its mode (default).
        clip: CLIP ViT-B/32 id or folder for the image prompt (default: the checkpoint's, else openai's).
        allow_download: let Hugging Face download missing weights.
        generator: an already built `SCUFGenerator` to wrap (e.g. a model being trained, or one built from
            custom components); `checkpoint`/`base`/`clip` must then be None. It is used as is (not copied;
            `device`/`dtype`, when given, move it in place).
        channels_last: run the VAE, UNet and CLIP convolutions in channels_last memory format (oneDNN on the CPU
            then skips a layout conversion at every convolution; measured by benchmarks/scuf_speed.py). The output
            is the same within float rounding (1e-5). False keeps PyTorch's default NCHW (the former path). A
            wrapped `generator` keeps its own layout, and the input follows that layout.
        merge_lora: fold the VAE LoRA into the base weights once at construction (`SCUFGenerator.merge_lora`), so
            the rank-4 LoRA convolutions — slow, small-channel ones at full resolution — never run. Same output
            within float rounding; False runs them (the former path). Never applied to a wrapped `generator`.
    """

    name = "scuf"

    def __init__(
        self,
        checkpoint: str | os.PathLike | None = None,
        base: str | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | str | None = None,
        tile: int | None = None,
        overlap: int = 64,
        seed: int = 0,
        sample: bool = False,
        clip: str | None = None,
        allow_download: bool = False,
        generator: "SCUFGenerator | None" = None,
        channels_last: bool = True,
        merge_lora: bool = True,
    ) -> None:
        from ..scuf.generator import SCUFGenerator

        torch_dtype = parse_dtype(dtype)
        if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 32):
            raise ValueError(f"tile must be an integer ≥ 32 (pixels) or None; got {tile!r}")
        if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
            raise ValueError(f"overlap must be a non-negative integer; got {overlap!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer; got {seed!r}")
        if generator is not None:
            if not isinstance(generator, SCUFGenerator):
                raise ValueError(f"generator must be a SCUFGenerator, got {type(generator).__name__}")
            if checkpoint is not None or base is not None or clip is not None:
                raise ValueError("give either a generator or checkpoint/base/clip, not both")
            base = generator.config.base
            if dtype is None:  # keep the wrapped generator's precision
                torch_dtype = generator.dtype
        super().__init__(
            checkpoint=None if checkpoint is None else str(checkpoint), base=base, dtype=dtype_name(torch_dtype),
            tile=tile, overlap=overlap, seed=seed, sample=bool(sample),
        )
        self.tile, self.overlap, self.seed, self.sample = tile, overlap, seed, bool(sample)
        # a wrapped generator keeps its layout; its input follows it
        self.channels_last = bool(channels_last) and (generator is None or _channels_last(generator))

        if generator is not None:
            self.generator = generator
        else:
            self.generator = _load_generator(checkpoint, base, clip, seed, allow_download)
        if merge_lora and generator is None:
            self.generator.merge_lora()  # in float32, before any cast to half precision
        self.generator.to(device=device, dtype=torch_dtype)
        if self.channels_last and generator is None:
            self.generator.to(memory_format=torch.channels_last)
        if generator is None:  # a wrapped generator may be in training: leave its flags alone
            self.generator.requires_grad_(False)
            self.generator.eval()

    # ------------------------------------------------------------------------------------------------------------
    def _prompt_embeds(self, x: torch.Tensor) -> torch.Tensor | None:
        """CLIP embedding (N, P) of the inference prompt 1 − V(x); with tiling, from the map downscaled to at most
        the tile size. Maps smaller than one CLIP patch are upscaled to one patch."""
        gen = self.generator
        if not gen.config.uses_image_prompt:
            return None
        from ..scuf.prompt import illumination_map

        v = illumination_map(x, reverse=True)  # (N, 1, H, W)
        h, w = v.shape[-2:]
        scale = 1.0
        if self.tile is not None and max(h, w) > self.tile:
            scale = self.tile / max(h, w)
        patch = gen.prompt_encoder.clip.config.patch_size
        scale = max(scale, patch / min(h, w))
        if scale != 1.0:
            size = (max(patch, round(h * scale)), max(patch, round(w * scale)))
            v = F.interpolate(v, size=size, mode="area" if scale < 1 else "bilinear", align_corners=None)
        return gen.encode_image_prompt(v)

    def enhance(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 3, H, W) in [0, 1], any H, W → (N, 3, H, W) in [0, 1] (model dtype, model device)."""
        gen = self.generator
        with torch.no_grad():
            x = x.to(device=gen.device, dtype=gen.dtype)
            multiple = max(8, gen.size_multiple)
            embeds = self._prompt_embeds(x)
            padded, size = pad_to_multiple(x, multiple)  # reflect padding, bottom/right
            if self.channels_last:
                padded = padded.contiguous(memory_format=torch.channels_last)

            def run(t: torch.Tensor) -> torch.Tensor:
                rng = torch.Generator(device=t.device).manual_seed(self.seed) if self.sample else None
                return gen(t, "lighten", sample=self.sample, generator=rng, image_embeds=embeds)

            if self.tile is None:
                y = run(padded)
            else:
                y = tile_apply(run, padded, self.tile, self.overlap, multiple=multiple)
            return crop_to(y, size)


def _load_generator(
    checkpoint: str | os.PathLike | None, base: str | None, clip: str | None, seed: int, allow_download: bool
) -> "SCUFGenerator":
    """An inference-only generator: from a save_pretrained folder, the official .pkl, or untrained (no checkpoint)."""
    from ..scuf.config import SCUFConfig
    from ..scuf.generator import SCUFGenerator
    from ..scuf.official import import_official

    kw: dict[str, Any] = dict(allow_download=allow_download, inference_only=True)
    if checkpoint is None:
        config = SCUFConfig(base=base or "stabilityai/sd-turbo", seed=seed, **({"clip": clip} if clip else {}))
        log.warning("scuf: no checkpoint given; the adapter, LoRA and skip convs are untrained")
        return SCUFGenerator(config, **kw)
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        return SCUFGenerator.from_pretrained(path, base=base, clip=clip, **kw)
    if path.is_file():
        generator, report = import_official(path, base=base, clip=clip, **kw)
        log.info("scuf: imported %s: %s", path, report.summary())
        return generator
    raise FileNotFoundError(f"SCUF checkpoint {path} not found: give a save_pretrained folder or the official .pkl file")


def _channels_last(generator: "SCUFGenerator") -> bool:
    """Whether the generator's convolutions hold channels_last weights (as `SCUFEnhancer` lays out those it builds)."""
    weight = generator.vae_l.encoder.conv_in.base_layer.weight if hasattr(
        generator.vae_l.encoder.conv_in, "base_layer") else generator.vae_l.encoder.conv_in.weight
    return weight.dim() == 4 and weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
