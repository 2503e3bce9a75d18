"""`SCUFConfig`: everything that defines a SCUF generator, saved as `config.json` next to its weights.

A checkpoint is self-describing: the config names the base model, the LoRA ranks and target modules, the
adapter and its variant, the image-prompt mode, the reflectance-decoder placement and the fixed prompts, so
`from_pretrained` can rebuild the exact architecture before loading the trained weights.

Defaults follow the paper (DESIGN §2.1–2.6); where the official code differs the switch is documented on the
field. Importing the authors' released checkpoint sets `adapter_variant="official"`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..fileio import write_atomic
from .fields import check_fields, from_dict, option, to_dict

__all__ = [
    "SCUFConfig",
    "VAE_LORA_TARGETS",
    "LIGHTEN_PROMPT",
    "DARKEN_PROMPT",
    "ADAPTERS",
    "ADAPTER_VARIANTS",
    "PROMPT_ENCODER_MODES",
    "REFLECTANCE_PLACEMENTS",
    "CONFIG_NAME",
]

CONFIG_NAME = "config.json"

#: peft target modules of the VAE LoRA (CycleGAN-Turbo / official SCUF). peft matches a module whose name equals
#: an entry or ends with "." + entry, so "conv" hits the down/upsampler convs and "conv_in" both encoder and decoder.
VAE_LORA_TARGETS: tuple[str, ...] = (
    "conv1",
    "conv2",
    "conv_in",
    "conv_shortcut",
    "conv",
    "conv_out",
    "skip_conv_1",
    "skip_conv_2",
    "skip_conv_3",
    "skip_conv_4",
    "to_k",
    "to_q",
    "to_v",
    "to_out.0",
)

#: Fixed text prompt of the lighten pass (target: normal light), from the official training code.
LIGHTEN_PROMPT = (
    "natural light, bright lighting, soft illumination, high light, evenly lit, clear visibility, daylight, "
    "bright atmosphere, well-lit photo."
)
#: Fixed text prompt of the darken pass (target: low light), from the official training code.
DARKEN_PROMPT = (
    "low light, dim lighting, low illumination, underexposed, ambient shadows, subdued light, silhouetted, "
    "dark atmosphere photo."
)

ADAPTERS = ("ca", "ip", "concat", "none")
ADAPTER_VARIANTS = ("paper", "official")
PROMPT_ENCODER_MODES = ("official", "standard")
REFLECTANCE_PLACEMENTS = ("decoder", "encoder", "none")


@dataclass
class SCUFConfig:
    """Architecture and fixed inputs of a SCUF generator (not the training hyper-parameters)."""

    SECTION: ClassVar[str] = "model"

    # --- base model -------------------------------------------------------------------------------------------
    base: str = option("stabilityai/sd-turbo", nonempty=True)  # HF id or local folder (unet/ vae/ text_encoder/
    #               tokenizer/ scheduler/), or "tiny-random" (small seeded random components; tests and demos)
    clip: str = option("openai/clip-vit-base-patch32", nonempty=True)  # CLIP ViT-B/32 (HF id or folder)
    seed: int = 0  # seeds the tiny-random components and the initialisation of the trainable weights

    # --- VAE (two directions, each with skip convs and its own LoRA) -----------------------------------------------
    vae_lora_rank: int = option(4, ge=1)
    vae_lora_alpha: float = option(8.0, gt=0)  # peft's default: the official code leaves it unset, so scaling 8/4
    vae_lora_targets: list[str] = option(factory=lambda: list(VAE_LORA_TARGETS), nonempty=True)
    skip_gamma: float = 1.0  # skip activations are multiplied by gamma before the 1×1 skip conv
    # The official code lists the skip convs as trainable, but peft freezes their base weights when it wraps
    # them as LoRA targets, so only their LoRA factors train there. True (default) trains the base 1×1 weights
    # (of the lighten, darken and reflectance decoders) as the papers describe; False = the official behaviour.
    train_skip_conv_base: bool = True

    # --- UNet (shared by both directions, frozen) -----------------------------------------------------------
    unet_lora: bool = False  # official SCUF trains no UNet LoRA; True = CycleGAN-Turbo's encoder/decoder/other LoRA
    unet_lora_rank: int = option(128, ge=1)  # CycleGAN-Turbo: rank 128, alpha = rank

    # --- illumination-aware image prompt + adapter ------------------------------------------------------------
    # "ca" cycle-attention (SCUF) | "ip" IP-Adapter | "concat" tokens appended | "none"
    adapter: str = option("ca", choices=ADAPTERS)
    # "paper" (default) = Eq. 2-3 as written; "official" = bit-for-bit the released processor (needed to use
    # the authors' checkpoint; importing it and the official training preset set this)
    adapter_variant: str = option("paper", choices=ADAPTER_VARIANTS)
    adapter_scale: float = 1.0  # weight of the image branch (unused by the official CA variant)
    num_image_tokens: int = option(4, ge=1)
    # "official": native resolution, no positional embedding, no CLIP mean/std; "standard": 224², CLIP norm
    prompt_encoder_mode: str = option("official", choices=PROMPT_ENCODER_MODES)

    # --- reflectance decoder (third VAE decoder, own LoRA, sigmoid output) ------------------------------------
    # "decoder": decode the x0 latent (Table 5 row 5) | "encoder": the encoder latent (row 4) | "none"
    reflectance: str = option("decoder", choices=REFLECTANCE_PLACEMENTS)

    # --- fixed prompts and the one step ---------------------------------------------------------------------
    lighten_prompt: str = option(LIGHTEN_PROMPT, nonempty=True)
    darken_prompt: str = option(DARKEN_PROMPT, nonempty=True)
    timestep: int = option(999, gt=0, le=99_999)  # the single denoising step (= num_train_timesteps - 1 for SD-Turbo)

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ValueError naming the first invalid field (``model.<name>``) and its allowed values."""
        check_fields(self)

    # ------------------------------------------------------------------------------------------------------------
    @property
    def uses_image_prompt(self) -> bool:
        """Whether the generator has the CLIP image prompt and projection (every adapter except "none")."""
        return self.adapter != "none"

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SCUFConfig":
        return from_dict(cls, data, hint="(was the checkpoint written by a newer gefu?)")

    @classmethod
    def from_json(cls, text: str) -> "SCUFConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"invalid SCUF config JSON: {err}") from None
        return cls.from_dict(data)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write `<directory>/config.json` atomically; returns its path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        return write_atomic(directory / CONFIG_NAME, self.to_json() + "\n")

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "SCUFConfig":
        """Read `<directory>/config.json` (or the file itself when given a path to a .json file)."""
        path = Path(directory)
        if path.is_dir():
            path = path / CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no SCUF config.json here (expected a folder written by save_pretrained)")
        return cls.from_json(path.read_text(encoding="utf-8"))

    def replace(self, **changes: Any) -> "SCUFConfig":
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)
