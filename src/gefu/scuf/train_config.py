"""What defines a SCUF training run: `TrainConfig` and its sections, saved as JSON next to every checkpoint.

Sections (each a dataclass checked by `gefu.scuf.fields`): `model` (`SCUFConfig`), `loss` (`LossWeights`),
`optim` (`OptimConfig`), `data` (`DataConfig`) and `quirks` (`OfficialQuirks`: the behaviours of the released
training code that differ from the paper or from sane practice, all off by default and all on in the
`official` preset). `set_by_path(config, "loss.gan", 0.5)` changes one field; `merge_resumed` decides what a
resumed run may change.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..fileio import write_atomic
from .config import SCUFConfig
from .data import DataConfig
from .fields import check_fields, from_dict, option, to_dict
from .losses import LossWeights

__all__ = [
    "OptimConfig",
    "OfficialQuirks",
    "TrainConfig",
    "set_by_path",
    "merge_resumed",
    "UPDATES",
    "REFLECTANCE_TEACHERS",
    "RUNTIME_FIELDS",
    "RUNTIME_DATA_FIELDS",
]

UPDATES = ("joint", "sequential")
MIXED_PRECISION = ("no", "fp16", "bf16")
REFLECTANCE_TEACHERS = ("auto", "decomnet", "classic")
#: fields a resumed run may change (they do not alter the training trajectory)
RUNTIME_FIELDS = ("max_steps", "checkpoint_every", "validate_every", "keep_checkpoints", "log_every",
                  "val_images_in_grid")
RUNTIME_DATA_FIELDS = ("root", "low", "normal", "captions_low", "captions_normal", "val", "val_low", "val_normal",
                       "val_max_images", "val_size", "num_workers")


def _schedules() -> tuple[str, ...]:
    from diffusers.optimization import SchedulerType

    return tuple(s.value for s in SchedulerType)


@dataclass
class OptimConfig:
    """AdamW for the generator's trainable weights and a second one for the discriminator heads (DESIGN §2.6)."""

    SECTION: ClassVar[str] = "optim"

    lr: float = option(1e-5, ge=0)
    disc_lr: float | None = option(None, ge=0)  # None: same as lr (official)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = option(1e-2, ge=0)
    eps: float = option(1e-8, ge=0)
    schedule: str = "constant"  # any diffusers.optimization.get_scheduler name (constant, linear, cosine, …)
    warmup_steps: int = option(0, ge=0)
    max_grad_norm: float = option(10.0, ge=0)

    def __post_init__(self) -> None:
        check_fields(self)
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"optim.betas must be two numbers in [0, 1); got {list(self.betas)!r}")
        if self.schedule not in _schedules():
            raise ValueError(f"optim.schedule must be one of {', '.join(_schedules())}; got {self.schedule!r}")


@dataclass
class OfficialQuirks:
    """What the released training code (wangsen99/GEFU ``src/train.py`` and the libraries it calls) does
    differently from the paper or from sane practice, measured by running it beside gefu. Each default is the sane
    behaviour; the ``official`` preset switches every one on, so that one iteration equals the released one.

    - ``reflectance_detach_back``: the cycle's reflectance consistency is ``MSE(R_forward, R_back.detach())``
      (its ``enhance_loss``); Eq. 5 lets the gradient reach both decodes.
    - ``gan_keep_d_grads``: the discriminator heads' gradients from the generator's GAN backward are never zeroed,
      so the following discriminator "fake" update also applies ``∇_D BCE(D(fake), real)``.
    - ``caption_reencode``: the caption-consistency target ``U_init(E(I), caption)`` re-encodes the input and
      draws its own latent sample, before the forward pass draws its sample (cycle updates) or before both
      identity passes (identity update); sane: reuse the forward pass's latent.
    - ``lora_param_duplicates``: the optimiser's parameter list holds the skip convs' LoRA factors 2× (lighten)
      and 3× (darken; the reflectance decoder's own skip-conv factors only once): AdamW steps them 2–3 times per
      update.
    - ``clip_grad_counts_duplicates``: the gradient norm is clipped over that duplicated list (duplicates count
      2–3× in the norm, and are scaled 2–3 times when clipping bites).
    - ``ssim_data_range``: the reflectance ``1 − SSIM`` uses this data range; None takes it from the images
      (torchmetrics' default, which the released code leaves on): ``max(range(R), range(R_teacher))``, with
      gradient through it.
    - ``blurpool_pad``: "official" pads the discriminator heads' 4×4 blur by 1 on each side (vision-aided-loss's
      BlurPool: 7×7 token map → 6×6 → 3×3 logits); "same" pads (1, 2) so the map keeps its size (→ 4×4 logits).
    - ``spectral_norm``: "legacy" = ``torch.nn.utils.spectral_norm`` (random u, v and no warm-up; each training
      forward updates v then u); "parametrization" = ``torch.nn.utils.parametrizations.spectral_norm`` (15 warm-up
      power iterations at construction; updates u then v). Identical in eval mode for the same u, v.
    - ``diffaug_translation_sign``: DiffAugment's translation moves the content by ``-shift`` (−1, vision-aided-loss's
      DiffAugment) or ``+shift`` (+1) for the same random draw.
    """

    SECTION: ClassVar[str] = "quirks"

    reflectance_detach_back: bool = False
    gan_keep_d_grads: bool = False
    caption_reencode: bool = False
    lora_param_duplicates: bool = False
    clip_grad_counts_duplicates: bool = False
    ssim_data_range: float | None = option(1.0, gt=0)
    blurpool_pad: str = option("same", choices=("same", "official"))
    spectral_norm: str = option("parametrization", choices=("parametrization", "legacy"))
    diffaug_translation_sign: int = option(1, choices=(1, -1))

    def __post_init__(self) -> None:
        check_fields(self)

    @classmethod
    def official(cls) -> "OfficialQuirks":
        """Every quirk of the released code switched on."""
        return cls(reflectance_detach_back=True, gan_keep_d_grads=True, caption_reencode=True,
                   lora_param_duplicates=True, clip_grad_counts_duplicates=True, ssim_data_range=None,
                   blurpool_pad="official", spectral_norm="legacy", diffaug_translation_sign=-1)


@dataclass
class TrainConfig:
    """Everything that defines a SCUF training run; saved as JSON next to every checkpoint."""

    model: SCUFConfig = field(default_factory=SCUFConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    quirks: OfficialQuirks = field(default_factory=OfficialQuirks)
    preset: str = "paper"  # informative: the preset this config started from
    # "joint": one update on the total loss per step | "sequential": the released code's six updates per step
    update: str = option("joint", choices=UPDATES)
    caption_in_prompt: bool = False  # Table 6: append each image's caption to the fixed text prompt
    max_steps: int = option(25_000, ge=1)
    batch_size: int = option(1, ge=1)  # per process and micro-batch
    grad_accum: int = option(1, ge=1)  # micro-batches per update
    sample_latents: bool = True  # sample the VAE posterior in training (official) rather than take its mode
    mixed_precision: str = option("no", choices=MIXED_PRECISION)  # autocast; trainable weights stay float32
    gradient_checkpointing: bool = False
    # "decomnet": RetinexNet DecomNet (retinex_weights, else the weight table: GEFU_RETINEXNET or `gefu weights`;
    # missing → error) | "classic": the weight-free Retinex estimate | "auto": DecomNet when found, else classic
    reflectance_teacher: str = option("auto", choices=REFLECTANCE_TEACHERS)
    retinex_weights: str | None = None  # RetinexNet DecomNet .pth (None: look it up, see reflectance_teacher)
    disc_clip: str | None = None  # CLIP tower of the discriminators (default: model.clip; tiny for tiny-random)
    disc_head_channels: int = option(256, ge=1)
    diffaug: bool = True  # DiffAugment (colour, translation, cutout) before the discriminators
    seed: int = 0  # seeds the discriminator heads, latent samples and DiffAugment (data.seed seeds the data)
    checkpoint_every: int = option(1000, ge=0)
    validate_every: int = option(1000, ge=0)  # PSNR/SSIM on the validation pairs + sample grids (0: never)
    keep_checkpoints: int = option(0, ge=0)  # keep only the newest N step checkpoints (0: keep all)
    log_every: int = option(1, ge=1)  # write a losses.csv row every N steps
    val_images_in_grid: int = option(4, ge=0)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        check_fields(self)

    # --- derived switches ---------------------------------------------------------------------------------------
    @property
    def uses_captions(self) -> bool:
        """Caption consistency (L_cap weight > 0) or captions in the prompt (Table 6) need per-image captions."""
        return self.loss.caption > 0 or self.caption_in_prompt

    @property
    def uses_reflectance(self) -> bool:
        return self.model.reflectance != "none" and self.loss.reflectance > 0

    # --- JSON ---------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        return from_dict(cls, data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str | os.PathLike) -> Path:
        return write_atomic(Path(path), self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TrainConfig":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training config {path} does not exist")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not a training config (invalid JSON: {err})") from None
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: {err}") from None

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def set_by_path(config: TrainConfig, key: str, value: Any) -> TrainConfig:
    """A copy of ``config`` with one (possibly nested) field changed: ``set_by_path(c, "loss.gan", 0.5)``."""
    data = config.to_dict()
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            raise ValueError(f"unknown config section {part!r} in {key!r}; sections: model, loss, optim, data, quirks")
        node = node[part]
    if parts[-1] not in node:
        import difflib

        close = difflib.get_close_matches(parts[-1], list(node), n=2)
        did = f" Did you mean {' or '.join('.'.join([*parts[:-1], c]) for c in close)}?" if close else ""
        raise ValueError(f"unknown config field {key!r}.{did} Known here: {', '.join(sorted(node))}")
    node[parts[-1]] = value
    return TrainConfig.from_dict(data)


def merge_resumed(saved: TrainConfig, given: TrainConfig) -> tuple[TrainConfig, list[str]]:
    """The saved config with the runtime fields of ``given`` → (merged config, data-location changes).

    A difference in anything that alters the trajectory is a ValueError listing them. Changed data locations
    are allowed (a moved data folder) but returned so that the caller can warn: different images would make the
    resumed run another run.
    """
    a, b = saved.to_dict(), given.to_dict()
    diffs: list[str] = []
    for key in a:
        if key in RUNTIME_FIELDS or key == "preset":
            continue
        if key == "data":
            diffs += [f"data.{k}: {a['data'][k]!r} → {b['data'][k]!r}" for k in a["data"]
                      if k not in RUNTIME_DATA_FIELDS and a["data"][k] != b["data"][k]]
        elif a[key] != b[key]:
            if isinstance(a[key], dict):
                diffs += [f"{key}.{k}: {a[key][k]!r} → {b[key].get(k)!r}" for k in a[key] if a[key][k] != b[key].get(k)]
            else:
                diffs.append(f"{key}: {a[key]!r} → {b[key]!r}")
    if diffs:
        raise ValueError("the checkpoint was trained with another configuration; resuming would not continue the "
                         "same run. Differences: " + "; ".join(diffs[:8]) + ". Resume without a config (the "
                         "checkpoint's is used), or start a new output folder.")
    moved = [f"data.{k}: {a['data'][k]!r} → {b['data'][k]!r}" for k in RUNTIME_DATA_FIELDS
             if k in ("root", "low", "normal", "captions_low", "captions_normal") and a["data"][k] != b["data"][k]]
    merged = dict(a)
    for key in RUNTIME_FIELDS:
        merged[key] = b[key]
    merged["data"] = {**a["data"], **{k: b["data"][k] for k in RUNTIME_DATA_FIELDS}}
    return TrainConfig.from_dict(merged), moved
