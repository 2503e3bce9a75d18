"""The SCUF generator: a one-step SD-Turbo image-to-image model with two directions (DESIGN §2.1–2.5).

    x ∈ [-1, 1] ──E_dir──► z = E(x)·sf ──UNet(z, t=999, [text ; image tokens])──► eps
        │ skips                          z0 = scheduler.step(eps, 999, z).prev_sample   (= x0 prediction)
        └──────────────────────────────► y  = D_dir(z0 / sf, skips) clamped to [-1, 1]
                                         R  = sigmoid(D_ref(z0 / sf, skips))          (reflectance, [0, 1])

- `vae_l` (lighten, official "a2b") and `vae_d` (darken, "b2a"): two copies of the pretrained VAE, each with
  its own rank-4 LoRA and 1×1 skip convs (`gefu.scuf.vae`). The decoder always receives the skip
  activations of the encoder of the same direction for the same image.
- `unet`: shared, frozen (optionally with CycleGAN-Turbo's UNet LoRA); the image-prompt adapter is installed
  on its cross-attention layers. `unet_init`: a frozen copy taken before any adapter or LoRA, used by caption
  consistency (text-only conditioning).
- Text conditioning: the two fixed prompts, encoded once at construction and cached as buffers.
- Image prompt: the illumination map (1 − V or V) → frozen CLIP image tower → trainable `ImageProjection` →
  `num_image_tokens` tokens appended after the text tokens.
- `reflect`: the reflectance decoder (third VAE decoder with its own LoRA), decoding the x0 latent
  (placement "decoder") or the encoder latent ("encoder").

Inference API: `forward(x01, "lighten") -> (B, 3, H, W) in [0, 1]`.
Training API: `step(...) -> StepOutput`, `reflectance(...)`, `caption_x0(...)`, `trainable_parameters()`.
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import torch.nn as nn
from diffusers import DDPMScheduler

from .attention import install_image_adapter
from .checkpoint import read_pretrained, write_pretrained
from .config import SCUFConfig
from .pretrained import BaseComponents, load_components
from .prompt import ImageProjection, ImagePromptEncoder, illumination_map
from .unet_lora import add_unet_lora, unet_lora_groups
from .vae import ReflectanceDecoder, SkipVAE, add_vae_lora

__all__ = ["SCUFGenerator", "StepOutput", "unet_lora_groups", "DIRECTIONS"]

log = logging.getLogger(__name__)

#: accepted direction names → canonical ("a2b"/"b2a" are the official code's names)
DIRECTIONS = {"lighten": "lighten", "a2b": "lighten", "darken": "darken", "b2a": "darken"}

@dataclass
class StepOutput:
    """One generator pass (training API). Latents are *scaled* (× the VAE scaling factor), as the UNet sees them."""

    image: torch.Tensor  # (B, 3, H, W) in [-1, 1] (clamped)
    z0: torch.Tensor  # (B, 4, H/f, W/f) one-step x0 latent (after scheduler.step)
    z_enc: torch.Tensor  # (B, 4, H/f, W/f) encoder latent fed to the UNet
    skips: list[torch.Tensor]  # encoder skip activations of this image (for the decoders of this direction)
    direction: str  # "lighten" | "darken"


class SCUFGenerator(nn.Module):
    """Two-direction one-step generator built from SD-Turbo (see the module docstring).

    Args:
        config: the architecture (`SCUFConfig`).
        components: frozen pretrained parts; None loads them from `config.base` / `config.clip` (offline unless
            `allow_download`), raising `MissingWeightsError` when missing. The generator takes them over: its UNet,
            text encoder and CLIP tower ARE the given modules (the adapter and LoRA are installed on that UNet), so
            give each generator its own components.
        inference_only: skip what only training needs — no `unet_init` copy, and the text encoder is dropped
            once the two fixed prompts are encoded (saves ~5 GB with SD-Turbo). `caption_x0` and
            `encode_prompt` are then unavailable.

    All random initialisations (LoRA A matrices, `to_q_ca`, projection) are seeded with `config.seed` without
    touching the global RNG. The model is built on the CPU in float32 and in eval mode; move it with `.to()`.
    """

    def __init__(
        self,
        config: SCUFConfig,
        components: BaseComponents | None = None,
        *,
        allow_download: bool = False,
        inference_only: bool = False,
    ) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.inference_only = inference_only
        if components is None:
            clip = config.clip if config.uses_image_prompt else None
            components = load_components(config.base, clip, allow_download=allow_download, seed=config.seed)
        if config.uses_image_prompt and components.vision is None:
            raise ValueError(f"adapter {config.adapter!r} needs a CLIP image tower (components.vision is None)")

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self._build(components)
        self.eval()

    # ------------------------------------------------------------------------------------------------------------
    def _build(self, comps: BaseComponents) -> None:
        cfg = self.config
        # One-step DDPM scheduler: a single custom timestep t, so prev_t = -1, ᾱ_prev = 1 and step() returns the
        # x0 prediction (plus 1e-10·noise from the clamped zero variance).
        self.scheduler = DDPMScheduler.from_config(comps.scheduler.config)
        if not cfg.timestep < self.scheduler.config.num_train_timesteps:
            raise ValueError(
                f"timestep {cfg.timestep} must be below the scheduler's num_train_timesteps "
                f"({self.scheduler.config.num_train_timesteps})"
            )
        self.scheduler.set_timesteps(timesteps=[cfg.timestep])
        self.tokenizer = comps.tokenizer
        self._build_vaes(comps)
        # UNet: frozen copy first (caption consistency), then the optional LoRA, then the image adapter.
        unet = comps.unet.requires_grad_(False)
        self.unet_init = None if self.inference_only else copy.deepcopy(unet).requires_grad_(False)
        if cfg.unet_lora:
            add_unet_lora(unet, cfg.unet_lora_rank)
        self._encode_fixed_prompts(comps)
        self._build_image_prompt(comps, unet)
        self.unet = unet
        # Freeze everything, then unfreeze exactly the trainable set.
        self.requires_grad_(False)
        for p in self.trainable_parameters():
            p.requires_grad_(True)

    def _build_vaes(self, comps: BaseComponents) -> None:
        """Lighten, darken and the reflectance decoder: copies of one VAE with LoRA (as the official code, which
        deep-copies after adding the LoRA, so all three start from the same A matrices)."""
        cfg = self.config
        vae = SkipVAE.from_autoencoder(comps.vae)
        add_vae_lora(vae, cfg.vae_lora_rank, cfg.vae_lora_alpha, cfg.vae_lora_targets)
        self.vae_l = vae
        self.vae_d = copy.deepcopy(vae)
        self.reflect = ReflectanceDecoder(vae) if cfg.reflectance != "none" else None
        self.scaling_factor = vae.scaling_factor
        self.size_multiple = vae.downsampling_factor

    def _encode_fixed_prompts(self, comps: BaseComponents) -> None:
        """The two fixed prompts, encoded once (the text encoder is dropped afterwards when inference_only)."""
        self.text_encoder = comps.text_encoder.requires_grad_(False).eval()
        lighten = self.encode_prompt([self.config.lighten_prompt])  # (1, 77, D)
        darken = self.encode_prompt([self.config.darken_prompt])
        self.register_buffer("lighten_embeds", lighten, persistent=False)
        self.register_buffer("darken_embeds", darken, persistent=False)
        self.text_tokens = lighten.shape[1]
        if self.inference_only:
            self.text_encoder = None

    def _build_image_prompt(self, comps: BaseComponents, unet: nn.Module) -> None:
        """Frozen CLIP tower + trainable projection + adapter (registered before the UNet so that the adapter's
        parameters are named adapter.* rather than by their place inside the UNet)."""
        cfg = self.config
        if not cfg.uses_image_prompt:
            self.prompt_encoder, self.projection, self.adapter = None, None, nn.ModuleList()
            return
        self.prompt_encoder = ImagePromptEncoder(comps.vision, cfg.prompt_encoder_mode)
        self.projection = ImageProjection(
            self.prompt_encoder.projection_dim, cfg.num_image_tokens, unet.config.cross_attention_dim
        ).to(dtype=unet.dtype)  # the precision of the given components (float32 unless they are otherwise)
        self.adapter = install_image_adapter(
            unet, cfg.adapter, cfg.adapter_variant, cfg.num_image_tokens, cfg.adapter_scale, self.text_tokens
        )

    # ------------------------------------------------------------------------------------------------------------
    # trainable parameters
    def _trainable_groups(self) -> Iterator[tuple[str, nn.Module, bool]]:
        """(prefix, module, only LoRA factors?) for every module holding trainable weights."""
        yield "vae_l", self.vae_l, True
        yield "vae_d", self.vae_d, True
        if self.reflect is not None:
            yield "reflect", self.reflect, True
        if self.projection is not None:
            yield "projection", self.projection, False
        yield "adapter", self.adapter, False
        if self.config.unet_lora:
            yield "unet", self.unet, True

    def trainable_named_parameters(self) -> dict[str, nn.Parameter]:
        """Name → parameter of everything SCUF trains (the checkpoint keys of `save_pretrained`).

        VAE LoRA of both directions and of the reflectance decoder, the base 1×1 weights of the skip convs of all
        three decoders when `config.train_skip_conv_base` (their LoRA factors always), image projection, adapter
        weights, and the UNet LoRA when `config.unet_lora`. Everything else has `requires_grad=False`.
        """
        out: dict[str, nn.Parameter] = {}
        for prefix, module, lora_only in self._trainable_groups():
            for name, p in module.named_parameters():
                keep = not lora_only or "lora_" in name
                if prefix in ("vae_l", "vae_d", "reflect") and self.config.train_skip_conv_base:
                    keep = keep or (".skip_conv_" in name and name.endswith("base_layer.weight"))
                if keep:
                    out[f"{prefix}.{name}"] = p
        return out

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters to give the optimiser (see `trainable_named_parameters`)."""
        return list(self.trainable_named_parameters().values())

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Detached copies of the trainable weights, keyed like `trainable_named_parameters`."""
        if self.lora_merged:
            raise RuntimeError("this generator's LoRA was merged for inference (merge_lora): its weights can no "
                               "longer be saved or trained; load the checkpoint again")
        return {k: p.detach().clone().contiguous() for k, p in self.trainable_named_parameters().items()}

    @torch.no_grad()
    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Copy trained weights in; raises ValueError listing missing / unexpected / mis-shaped keys."""
        params = self.trainable_named_parameters()
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        bad = [k for k in params if k in state and tuple(state[k].shape) != tuple(params[k].shape)]
        if missing or unexpected or bad:
            def head(keys: list[str]) -> str:
                return ", ".join(keys[:5]) + (f" … ({len(keys)} in all)" if len(keys) > 5 else "")

            parts = [f"missing {head(missing)}" if missing else "", f"unexpected {head(unexpected)}" if unexpected
                     else "", f"shape mismatch {head(bad)}" if bad else ""]
            raise ValueError(
                "the checkpoint does not fit this SCUF architecture: " + "; ".join(p for p in parts if p)
                + " (was it trained with another base model or config?)"
            )
        for k, p in params.items():
            p.copy_(state[k].to(dtype=p.dtype, device=p.device))

    # ------------------------------------------------------------------------------------------------------------
    # conditioning
    @property
    def dtype(self) -> torch.dtype:
        return self.lighten_embeds.dtype

    @property
    def device(self) -> torch.device:
        return self.lighten_embeds.device

    def encode_prompt_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids (B, L) int → text embeddings (B, L, D) from the frozen text encoder (no gradient)."""
        if self.text_encoder is None:
            raise RuntimeError("this generator was built with inference_only=True: its text encoder was dropped")
        device = next(self.text_encoder.parameters()).device
        with torch.no_grad():
            return self.text_encoder(ids.to(device))[0]

    def encode_prompt(self, texts: Sequence[str]) -> torch.Tensor:
        """Texts → text embeddings (B, 77, D): tokenised to the tokenizer's max length (padded, truncated)."""
        if self.tokenizer is None:
            raise RuntimeError("no tokenizer: use encode_prompt_ids(ids)")
        ids = self.tokenizer(
            list(texts), max_length=self.tokenizer.model_max_length, padding="max_length", truncation=True,
            return_tensors="pt",
        ).input_ids
        return self.encode_prompt_ids(ids)

    def text_embeds(self, direction: str, batch: int) -> torch.Tensor:
        """The cached fixed-prompt embedding of `direction`, expanded to (batch, 77, D)."""
        emb = self.lighten_embeds if _direction(direction) == "lighten" else self.darken_embeds
        return emb.expand(batch, -1, -1)

    def encode_image_prompt(self, v_map: torch.Tensor) -> torch.Tensor:
        """Illumination map (B, 1, H, W) in [0, 1] → CLIP embedding (B, P), unit norm. Frozen, no gradient
        (the official training detaches it too)."""
        if self.prompt_encoder is None:
            raise RuntimeError(f"adapter {self.config.adapter!r} uses no image prompt")
        with torch.no_grad():
            return self.prompt_encoder(v_map)

    def image_tokens(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """CLIP embedding (B, P) → trainable projection → image tokens (B, num_image_tokens, D)."""
        assert self.projection is not None
        return self.projection(image_embeds.to(self.projection.proj.weight.dtype))

    def condition(
        self,
        direction: str,
        batch: int,
        v_map: torch.Tensor | None = None,
        image_embeds: torch.Tensor | None = None,
        text_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """encoder_hidden_states for the UNet: text (B, 77, D), plus (B, T, D) image tokens appended unless the
        adapter is "none". Give the illumination map `v_map` or precomputed CLIP `image_embeds`. `text_embeds`
        (B or 1, 77, D) replaces the direction's fixed prompt (e.g. prompt + caption, the paper's Table 6)."""
        if text_embeds is None:
            text = self.text_embeds(direction, batch)
        else:
            _direction(direction)
            text = text_embeds.to(self.dtype).expand(batch, -1, -1) if text_embeds.shape[0] == 1 else text_embeds
            if text.shape[0] != batch:
                raise ValueError(f"text_embeds batch {text_embeds.shape[0]} does not match the image batch {batch}")
        if not self.config.uses_image_prompt:
            return text
        if image_embeds is None:
            if v_map is None:
                raise ValueError(f"adapter {self.config.adapter!r} needs an illumination map (v_map) or image_embeds")
            image_embeds = self.encode_image_prompt(v_map)
        if image_embeds.shape[0] != batch:
            if image_embeds.shape[0] != 1:
                raise ValueError(f"image prompt batch {image_embeds.shape[0]} does not match the image batch {batch}")
            image_embeds = image_embeds.expand(batch, -1)
        return torch.cat([text, self.image_tokens(image_embeds).to(text.dtype)], dim=1)  # (B, 77 + T, D)

    # ------------------------------------------------------------------------------------------------------------
    # the one step
    def vae(self, direction: str) -> SkipVAE:
        """The VAE of a direction: `vae_l` for "lighten"/"a2b", `vae_d` for "darken"/"b2a"."""
        return self.vae_l if _direction(direction) == "lighten" else self.vae_d

    def one_step(
        self, unet: nn.Module, z: torch.Tensor, cond: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Scaled latent z (B, 4, h, w) → x0 latent via `unet` at t = config.timestep and scheduler.step."""
        t = self.config.timestep
        timesteps = torch.full((z.shape[0],), t, device=z.device, dtype=torch.long)
        eps = unet(z, timesteps, encoder_hidden_states=cond.to(z.dtype)).sample  # (B, 4, h, w)
        if generator is None:  # the step adds 1e-10·noise; keep it deterministic and off the global RNG
            generator = torch.Generator(device="cpu").manual_seed(0)
        return self.scheduler.step(eps, t, z, generator=generator).prev_sample

    def step(
        self,
        x: torch.Tensor,
        direction: str,
        v_map: torch.Tensor | None = None,
        sample: bool = False,
        generator: torch.Generator | None = None,
        *,
        image_embeds: torch.Tensor | None = None,
        text_embeds: torch.Tensor | None = None,
    ) -> StepOutput:
        """One generator pass (training API).

        Args:
            x: (B, 3, H, W) in [-1, 1]; H, W multiples of `size_multiple` (8 for SD).
            direction: "lighten" (a2b, uses `vae_l`) or "darken" (b2a, `vae_d`).
            v_map: (B, 1, H', W') illumination map in [0, 1] for the image prompt (any size; DESIGN §2.2 says which
                map for which pass); ignored by adapter "none". Or give `image_embeds` (B, P) instead.
            sample: draw the encoder latent from the posterior (training; official) instead of its mode.
            generator: RNG for that sample (and the scheduler's negligible noise).
            text_embeds: (B or 1, 77, D) text condition replacing the direction's cached fixed prompt.
        Returns:
            StepOutput(image in [-1, 1], z0, z_enc, skips, direction); gradients flow to the trainable weights.
        """
        _check_batch(x, self.size_multiple, "x")
        vae = self.vae(direction)
        posterior, skips = vae.encode(x)
        z_enc = (posterior.sample(generator) if sample else posterior.mode()) * self.scaling_factor
        cond = self.condition(direction, x.shape[0], v_map, image_embeds, text_embeds)
        z0 = self.one_step(self.unet, z_enc, cond, generator)
        image = vae.decode(z0 / self.scaling_factor, skips, self.config.skip_gamma).clamp(-1.0, 1.0)
        return StepOutput(image, z0, z_enc, skips, _direction(direction))

    def reflectance(self, z: torch.Tensor, skips: Sequence[torch.Tensor]) -> torch.Tensor:
        """Scaled latent z (B, 4, h, w) + skips of the same image's encoder → reflectance (B, 3, H, W) in [0, 1]."""
        if self.reflect is None:
            raise RuntimeError('this generator has no reflectance decoder (config.reflectance="none")')
        return self.reflect(z / self.scaling_factor, skips, self.config.skip_gamma)

    def step_reflectance(self, out: StepOutput) -> torch.Tensor:
        """Reflectance of a `step` output at the configured placement: decodes `out.z0` ("decoder") or
        `out.z_enc` ("encoder") with `out.skips` → (B, 3, H, W) in [0, 1]."""
        z = out.z0 if self.config.reflectance == "decoder" else out.z_enc
        return self.reflectance(z, out.skips)

    def caption_x0(
        self, z_enc: torch.Tensor, text_embeds: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Caption-consistency target: the frozen pre-adapter UNet `unet_init` run one step on the encoder latent
        z_enc (B, 4, h, w) with caption embeddings (B or 1, 77, D), text only → x0 latent (B, 4, h, w).
        `generator` feeds the scheduler step's (negligible) noise, as in `one_step`."""
        if self.unet_init is None:
            raise RuntimeError("this generator was built with inference_only=True: it has no unet_init")
        if text_embeds.shape[0] != z_enc.shape[0]:
            text_embeds = text_embeds.expand(z_enc.shape[0], -1, -1)
        return self.one_step(self.unet_init, z_enc, text_embeds, generator)

    def forward(
        self,
        x01: torch.Tensor,
        direction: str = "lighten",
        prompt_map: torch.Tensor | None = None,
        sample: bool = False,
        generator: torch.Generator | None = None,
        *,
        image_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Translate images (inference API).

        x01: (B, 3, H, W) in [0, 1], H and W multiples of `size_multiple` (the `scuf` enhancer pads any size).
        prompt_map: (B, 1, H', W') illumination map in [0, 1]; default 1 − V(x01), the inference prompt.
        image_embeds: precomputed CLIP embedding of the prompt (B or 1, P), e.g. one per image shared by tiles.
        Returns (B, 3, H, W) in [0, 1], in the model's dtype.
        """
        _check_batch(x01, self.size_multiple, "x01")
        x01 = x01.to(self.dtype)
        if self.config.uses_image_prompt and image_embeds is None and prompt_map is None:
            prompt_map = illumination_map(x01, reverse=True)
        out = self.step(x01 * 2.0 - 1.0, direction, prompt_map, sample, generator, image_embeds=image_embeds)
        return ((out.image + 1.0) / 2.0).clamp(0.0, 1.0)

    # ------------------------------------------------------------------------------------------------------------
    @property
    def lora_merged(self) -> bool:
        return getattr(self, "_lora_merged", False)

    @torch.no_grad()
    def merge_lora(self) -> None:
        """Fold every LoRA delta into its base weight (peft's `merge`), for inference: the LoRA convolutions and
        linears of the VAEs (and of the UNet, if any) no longer run, so a forward pass is faster, with the same
        output within float rounding. Only for an `inference_only` generator: a merged one cannot be trained or
        saved (its LoRA factors stay, but the base weights now include them)."""
        if not self.inference_only:
            raise RuntimeError("merge_lora is for inference_only generators (training needs the LoRA factors apart)")
        from peft.tuners.lora import LoraLayer

        for module in self.modules():
            if isinstance(module, LoraLayer) and not module.merged:
                module.merge()
        self._lora_merged = True

    def enable_gradient_checkpointing(self) -> None:
        """Trade compute for memory in training (VAE encoders/decoders and the UNet)."""
        for m in (self.vae_l, self.vae_d, self.reflect):
            if m is not None:
                m.decoder.gradient_checkpointing = True
                if hasattr(m, "encoder"):
                    m.encoder.gradient_checkpointing = True
        self.unet.enable_gradient_checkpointing()

    def train(self, mode: bool = True) -> "SCUFGenerator":
        super().train(mode)
        for frozen in (self.unet_init, self.text_encoder):  # frozen parts always run in eval mode
            if frozen is not None:
                frozen.eval()
        return self

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write `config.json` + `model.safetensors` (trained weights only), atomically (`gefu.scuf.checkpoint`)."""
        write_pretrained(directory, self.config, self.trainable_state_dict())

    @classmethod
    def from_pretrained(
        cls,
        directory: str | os.PathLike,
        *,
        base: str | None = None,
        clip: str | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        allow_download: bool = False,
        inference_only: bool = False,
        components: BaseComponents | None = None,
    ) -> "SCUFGenerator":
        """Rebuild a generator from a `save_pretrained` folder.

        base / clip: override the base model / CLIP given in config.json (e.g. a local folder holding the same
        SD-Turbo); device / dtype: where to put the result (default: CPU, float32). Raises FileNotFoundError when
        the folder lacks its files, MissingWeightsError when the base model is not available, ValueError when the
        weights do not fit the architecture. (The authors' released .pkl: `gefu.scuf.official.import_official`.)
        """
        config, state = read_pretrained(directory)
        changes = {k: v for k, v in (("base", base), ("clip", clip)) if v is not None}
        if changes:
            config = config.replace(**changes)
        generator = cls(config, components, allow_download=allow_download, inference_only=inference_only)
        generator.load_trainable_state_dict(state)
        if device is not None or dtype is not None:
            generator.to(device=device, dtype=dtype)
        return generator


def _direction(direction: str) -> str:
    try:
        return DIRECTIONS[direction]
    except (KeyError, TypeError):
        raise ValueError(f"direction must be 'lighten' (a2b) or 'darken' (b2a); got {direction!r}") from None


def _check_batch(x: torch.Tensor, multiple: int, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a float RGB batch (B, 3, H, W); got {shape}")
    h, w = x.shape[-2:]
    if h % multiple or w % multiple:
        raise ValueError(
            f"{name} is {h}×{w}; the SCUF generator needs sides that are multiples of {multiple} "
            "(pad with gefu.imageio.pad_to_multiple, or use the 'scuf' enhancer, which pads and crops back)"
        )
