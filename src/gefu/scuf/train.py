"""SCUF training: configuration, presets and the resumable training loop (paper Alg. 1–2, DESIGN §2.4–2.6).

One training step on a low-light crop ``I_l`` and an unrelated normal-light crop ``I_n`` (both [0, 1], fed to the
generator in [-1, 1]); ``f_l`` lightens (``vae_l``, "a2b"), ``f_d`` darkens (``vae_d``, "b2a"). The illumination
map of the image prompt (``V`` = max over RGB) follows DESIGN §2.2:

=========================  ===================  =========================================================
pass                       prompt map           losses it feeds
=========================  ===================  =========================================================
``F_n = f_l(I_l)``         ``1 − V(I_l)``       GAN (D_normal), reflectance R_forward
``f_d(F_n)``               ``V(I_l)``           cycle L1(+LPIPS) vs I_l, caption vs U_init(E_l(I_l), c_l),
                                                reflectance MSE(R_forward, R_back) + L1(R_back, R(I_l))
``F_l = f_d(I_n)``         ``1 − V(I_n)``       GAN (D_low), reflectance R_forward
``f_l(F_l)``               ``V(I_n)``           cycle vs I_n, caption vs U_init(E_d(I_n), c_n), reflectance
``f_l(I_n)`` (identity)    ``V(I_n)``           λ_idt·L1(+LPIPS) vs I_n, caption vs U_init(E_d(I_n), c_n),
                                                L1(R, R(I_n))
``f_d(I_l)`` (identity)    ``V(I_l)``           identity vs I_l, caption vs U_init(E_l(I_l), c_l), L1(R, R(I_l))
=========================  ===================  =========================================================

``R(·)`` is the frozen reflectance teacher (RetinexNet DecomNet or the classic fallback), ``c_l``/``c_n`` the
BLIP captions of the two images, ``U_init`` the frozen pre-adapter UNet. Two ways to apply the updates
(``TrainConfig.update``):

- ``"joint"`` (preset ``paper``): the total of Eq. 6 in one generator step, then one discriminator step
  (fakes → fake, reals → real). Holds all six passes for one backward: more memory.
- ``"sequential"`` (preset ``official``): as the released code (inherited from CycleGAN-Turbo), six updates per
  step — generator on the ``I_l`` cycle, on the ``I_n`` cycle, on the GAN term (fresh fakes), on the identity
  terms, then the discriminators on the fakes and on the reals. The learning-rate schedule advances once per
  step (the official code advances it once per update; with the constant schedule this is the same).

Exact resume: every random draw of a step (latent samples, DiffAugment, data order, pairing, crops, flips) comes
from generators seeded by ``(seed, step)``; a checkpoint (``checkpoints/step_XXXXXX/``, written atomically, then
``checkpoints/latest`` updated) holds the trainable weights (``model/``, a ``save_pretrained`` folder usable for
inference), the discriminator heads (with their spectral-norm vectors), both optimiser and scheduler states, the
gradient-scaler state, the torch/numpy/python RNG states of every process, the step and the config.

Several GPUs: launch with ``accelerate launch``; every process draws its own micro-batches, and the gradients of
the trainable parameters are averaged across processes before each update (an explicit all-reduce rather than
DDP wrapping, because the training calls several methods of the generator, not only ``forward``).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..fileio import write_atomic
from ..imageio import crop_to, pad_to_multiple, save_image
from .config import SCUFConfig
from .data import (
    DataConfig,
    MicroBatches,
    PairedValData,
    TrainBatch,
    UnpairedData,
    build_train_data,
    build_val_data,
)
from .discriminator import CLIPFeatureExtractor, VisionAidedDiscriminator
from .losses import (
    LOSS_PRESETS,
    LossWeights,
    caption_consistency_loss,
    cycle_loss,
    discriminator_loss,
    generator_gan_loss,
    identity_loss,
    reflectance_loss,
)

__all__ = [
    "OptimConfig",
    "TrainConfig",
    "PRESETS",
    "make_preset",
    "Trainer",
    "train",
    "find_checkpoint",
]

log = logging.getLogger(__name__)

UPDATES = ("joint", "sequential")
MIXED_PRECISION = ("no", "fp16", "bf16")
#: fields a resumed run may change (they do not alter the training trajectory)
RUNTIME_FIELDS = ("max_steps", "checkpoint_every", "validate_every", "keep_checkpoints", "log_every",
                  "val_images_in_grid")
RUNTIME_DATA_FIELDS = ("root", "low", "normal", "captions_low", "captions_normal", "val", "val_low", "val_normal",
                       "val_max_images", "val_size", "num_workers")


# ================================================================================================================
# Configuration
# ================================================================================================================


@dataclass
class OptimConfig:
    """AdamW for the generator's trainable weights and a second one for the discriminator heads (DESIGN §2.6)."""

    lr: float = 1e-5
    disc_lr: float | None = None  # None: same as lr (official)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-2
    eps: float = 1e-8
    schedule: str = "constant"  # any diffusers.optimization.get_scheduler name (constant, linear, cosine, …)
    warmup_steps: int = 0
    max_grad_norm: float = 10.0

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"optim.betas must be two numbers in [0, 1); got {self.betas!r}")
        for name in ("lr", "weight_decay", "eps", "max_grad_norm"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or not math.isfinite(value):
                raise ValueError(f"optim.{name} must be a finite number ≥ 0; got {value!r}")
        if self.disc_lr is not None and (not isinstance(self.disc_lr, (int, float)) or self.disc_lr < 0):
            raise ValueError(f"optim.disc_lr must be a number ≥ 0 or null; got {self.disc_lr!r}")
        from diffusers.optimization import SchedulerType

        names = [s.value for s in SchedulerType]
        if self.schedule not in names:
            raise ValueError(f"optim.schedule must be one of {', '.join(names)}; got {self.schedule!r}")


@dataclass
class TrainConfig:
    """Everything that defines a SCUF training run; saved as JSON next to every checkpoint."""

    model: SCUFConfig = field(default_factory=SCUFConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    preset: str = "paper"  # informative: the preset this config started from
    update: str = "joint"  # "joint" (one update on the total loss) | "sequential" (official: six updates/step)
    caption_in_prompt: bool = False  # Table 6: append each image's caption to the fixed text prompt
    max_steps: int = 25_000
    batch_size: int = 1  # per process and micro-batch
    grad_accum: int = 1  # micro-batches per update
    sample_latents: bool = True  # sample the VAE posterior in training (official) rather than take its mode
    mixed_precision: str = "no"  # "no" | "fp16" | "bf16" (autocast; trainable weights stay float32)
    gradient_checkpointing: bool = False
    retinex_weights: str | None = None  # RetinexNet DecomNet .pth; None: the weight-free classic teacher
    disc_clip: str | None = None  # CLIP tower of the discriminators (default: model.clip; tiny for tiny-random)
    disc_head_channels: int = 256
    diffaug: bool = True  # DiffAugment (colour, translation, cutout) before the discriminators
    seed: int = 0  # seeds the discriminator heads, latent samples and DiffAugment (data.seed seeds the data)
    checkpoint_every: int = 1000
    validate_every: int = 1000  # PSNR/SSIM on the validation pairs + sample grids (0: never)
    keep_checkpoints: int = 0  # keep only the newest N step checkpoints (0: keep all)
    log_every: int = 1  # write a losses.csv row every N steps
    val_images_in_grid: int = 4

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = SCUFConfig.from_dict(self.model)
        if isinstance(self.loss, dict):
            self.loss = _from_dict(LossWeights, self.loss, "loss")
        if isinstance(self.optim, dict):
            self.optim = _from_dict(OptimConfig, self.optim, "optim")
        if isinstance(self.data, dict):
            self.data = _from_dict(DataConfig, self.data, "data")
        self.validate()

    def validate(self) -> None:
        if self.update not in UPDATES:
            raise ValueError(f"update must be one of {UPDATES}; got {self.update!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}; got {self.mixed_precision!r}")
        for name in ("max_steps", "batch_size", "grad_accum", "disc_head_channels", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        for name in ("checkpoint_every", "validate_every", "keep_checkpoints", "val_images_in_grid"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer ≥ 0; got {value!r}")
        for name in ("caption_in_prompt", "sample_latents", "gradient_checkpointing", "diffaug"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false; got {getattr(self, name)!r}")

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
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["model"] = self.model.to_dict()
        out["loss"] = dataclasses.asdict(self.loss)
        out["optim"] = dataclasses.asdict(self.optim)
        out["optim"]["betas"] = list(self.optim.betas)
        out["data"] = dataclasses.asdict(self.data)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        return _from_dict(cls, data, "train config")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        _atomic_write_text(path, self.to_json() + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TrainConfig":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training config {path} does not exist")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: invalid JSON ({err})") from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def _from_dict(cls, data: Any, what: str):
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be a JSON object; got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {what} field(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}")
    return cls(**data)


def set_by_path(config: TrainConfig, key: str, value: Any) -> TrainConfig:
    """A copy of ``config`` with one (possibly nested) field changed: ``set_by_path(c, "loss.gan", 0.5)``."""
    data = config.to_dict()
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            raise ValueError(f"unknown config section {part!r} in {key!r}")
        node = node[part]
    if parts[-1] not in node:
        raise ValueError(f"unknown config field {key!r}; known here: {', '.join(sorted(node))}")
    node[parts[-1]] = value
    return TrainConfig.from_dict(data)


# ----------------------------------------------------------------------------------------------------------------
# Presets
# ----------------------------------------------------------------------------------------------------------------

#: Table 5 of the paper: what each ablation row switches on (rows 1-8), and Table 6.
ABLATIONS: dict[str, tuple[str, dict[str, Any], dict[str, Any], bool]] = {
    # name: (description, model changes, loss changes, caption_in_prompt)
    "ablation-1": ("baseline CycleGAN-Turbo (no image prompt, no CC, no RC)",
                   {"adapter": "none", "reflectance": "none"}, {"caption": 0.0, "reflectance": 0.0}, False),
    "ablation-2": ("+ illumination image prompt (tokens concatenated)",
                   {"adapter": "concat", "reflectance": "none"}, {"caption": 0.0, "reflectance": 0.0}, False),
    "ablation-3": ("+ caption consistency", {"adapter": "concat", "reflectance": "none"}, {"reflectance": 0.0},
                   False),
    "ablation-4": ("+ reflectance consistency, decoder after the encoder",
                   {"adapter": "concat", "reflectance": "encoder"}, {}, False),
    "ablation-5": ("+ reflectance consistency, decoder after the UNet", {"adapter": "concat", "reflectance": "decoder"},
                   {}, False),
    "ablation-6": ("IP-Adapter instead of concatenation", {"adapter": "ip", "reflectance": "decoder"}, {}, False),
    "ablation-7": ("cycle-attention adapter = full SCUF", {"adapter": "ca", "reflectance": "decoder"}, {}, False),
    "ablation-8": ("full SCUF without caption consistency", {"adapter": "ca", "reflectance": "decoder"},
                   {"caption": 0.0}, False),
    "table6": ("captions appended to the text prompt instead of caption consistency",
               {"adapter": "ca", "reflectance": "decoder"}, {"caption": 0.0}, True),
}

PRESETS: dict[str, str] = {
    "paper": "paper Eq. 8 weights (λ_idt 0.5, λ_GAN 1, L1 only), one joint update per step",
    "official": "released code: λ_gan 0.5, λ_idt 1, cycle LPIPS-vgg 10, identity LPIPS 1, 1−SSIM on the "
    "reflectance, six sequential updates per step",
    **{name: f"Table {'6' if name == 'table6' else '5 row ' + name[-1]}: {desc} (paper weights)"
       for name, (desc, *_rest) in ABLATIONS.items()},
}


def make_preset(name: str, **changes: Any) -> TrainConfig:
    """The ``TrainConfig`` of a preset (``PRESETS`` lists them), with optional top-level field changes.

    Ablation presets start from ``paper`` and change only the component of their row; ``ablation-1`` keeps the
    UNet frozen like the other rows (set ``model.unet_lora`` for CycleGAN-Turbo's own UNet LoRA).
    """
    if name not in PRESETS:
        import difflib

        close = difflib.get_close_matches(name, list(PRESETS), n=3)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown training preset {name!r}.{hint} Available: {', '.join(PRESETS)}.")
    if name == "official":
        cfg = TrainConfig(loss=dataclasses.replace(LOSS_PRESETS["official"]), update="sequential", preset=name)
    else:
        cfg = TrainConfig(loss=dataclasses.replace(LOSS_PRESETS["paper"]), update="joint", preset=name)
        if name in ABLATIONS:
            _, model_changes, loss_changes, in_prompt = ABLATIONS[name]
            cfg.model = cfg.model.replace(**model_changes)
            cfg.loss = dataclasses.replace(cfg.loss, **loss_changes)
            cfg.caption_in_prompt = in_prompt
    return cfg.replace(**changes) if changes else cfg


# ================================================================================================================
# Small helpers: atomic files, CSV log, RNG, grids
# ================================================================================================================


def _atomic_write_text(path: Path, text: str) -> None:
    write_atomic(path, text)


def _torch_save(obj: Any, path: Path) -> None:
    with open(path, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def _load(path: Path) -> Any:
    return torch.load(path, map_location="cpu", weights_only=True)


class CSVLog:
    """Append-only CSV with a fixed header; ``truncate(step)`` drops rows past a step (used on resume)."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path = path
        self.columns = list(columns)

    def truncate(self, step: int) -> None:
        """Keep only the complete rows with ``step`` ≤ the given step (rewritten atomically)."""
        if not self.path.is_file():
            return
        with open(self.path, encoding="utf-8", newline="") as f:
            lines = f.read().splitlines()
        keep = lines[:1]
        for line in lines[1:]:
            cells = line.split(",")
            if len(cells) == len(lines[0].split(",")) and cells[0].isdigit() and int(cells[0]) <= step:
                keep.append(line)
        _atomic_write_text(self.path, "".join(line + "\n" for line in keep))

    def append(self, row: dict[str, Any]) -> None:
        new = not self.path.is_file()
        with open(self.path, "a", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(self.columns)
            writer.writerow([_fmt(row.get(c, "")) for c in self.columns])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.8g}"
    return str(value)


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _seed_for(*parts: int) -> int:
    """A 63-bit seed from integers (stable across processes and runs)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def _grid_row(images: Sequence[torch.Tensor], height: int) -> torch.Tensor:
    """Images (3, H, W) in [0, 1] (same H, W) → one row (3, height, ·) side by side."""
    row = torch.cat([img.float().cpu().clamp(0, 1) for img in images], dim=-1)[None]
    width = max(1, round(row.shape[-1] * height / row.shape[-2]))
    return F.interpolate(row, size=(height, width), mode="bilinear", antialias=True, align_corners=False)[0]


def _stack_rows(rows: Sequence[torch.Tensor], pad: int = 2) -> torch.Tensor:
    width = max(r.shape[-1] for r in rows)
    padded = [F.pad(r, (0, width - r.shape[-1], 0, pad), value=1.0) for r in rows]
    return torch.cat(padded, dim=-2)


# ================================================================================================================
# The trainer
# ================================================================================================================


@dataclass
class _Inputs:
    """What one micro-batch needs besides the weights (all detached)."""

    x: dict[str, torch.Tensor]  # "low"/"normal" → (B, 3, H, W) in [-1, 1]
    x01: dict[str, torch.Tensor]  # same in [0, 1]
    embeds: dict[tuple[str, bool], torch.Tensor | None]  # (domain, reverse) → CLIP embedding of V or 1 − V
    teacher: dict[str, torch.Tensor]  # domain → teacher reflectance (B, 3, H, W) in [0, 1]
    captions: dict[str, torch.Tensor]  # domain → caption text embeddings (B, 77, D)
    texts: dict[tuple[str, str], torch.Tensor]  # (direction, domain) → prompt + caption embeddings (Table 6)


def find_checkpoint(output_dir: str | os.PathLike, resume: str | os.PathLike) -> Path | None:
    """The checkpoint folder for ``resume`` ("latest" or a path); None when "latest" finds none."""
    if str(resume) == "latest":
        ckpt_root = Path(output_dir) / "checkpoints"
        pointer = ckpt_root / "latest"
        if pointer.is_file():
            candidate = ckpt_root / pointer.read_text(encoding="utf-8").strip()
            if (candidate / "state.json").is_file():
                return candidate
        steps = sorted(p for p in ckpt_root.glob("step_*") if (p / "state.json").is_file())
        return steps[-1] if steps else None
    path = Path(resume)
    if (path / "checkpoints" / "latest").is_file():  # an output folder
        return find_checkpoint(path, "latest")
    if not (path / "state.json").is_file():
        raise FileNotFoundError(f"{path}: not a training checkpoint (no state.json); pass a checkpoints/step_* "
                                "folder, the output folder, or 'latest'")
    return path


class Trainer:
    """Builds everything a run needs (checking data, weights and config first), then ``run()`` trains.

    Args:
        config: the run's ``TrainConfig``; may be None when resuming (the checkpoint's config is used).
        output_dir: where ``losses.csv``, ``metrics.csv``, ``samples/``, ``checkpoints/`` and ``model/`` go.
        resume: None, "latest" (the newest checkpoint in ``output_dir``; starts fresh when there is none) or a
            checkpoint folder.
        cpu: force the CPU even when a GPU is visible.
        progress: called after every step as ``progress(step, max_steps, logs)``.
    """

    def __init__(
        self,
        config: TrainConfig | None,
        output_dir: str | os.PathLike,
        *,
        resume: str | os.PathLike | None = None,
        cpu: bool = False,
        progress: Callable[[int, int, dict[str, float]], None] | None = None,
    ) -> None:
        from accelerate import Accelerator

        self.output_dir = Path(output_dir)
        self.progress = progress
        self.ckpt_dir = self.output_dir / "checkpoints"
        ckpt = find_checkpoint(self.output_dir, resume) if resume is not None else None
        if resume is not None and ckpt is None:
            log.warning("no checkpoint in %s to resume from: starting a new run", self.ckpt_dir)
        if ckpt is not None:
            saved = TrainConfig.load(ckpt / "config.json")
            config = saved if config is None else _merge_resumed(saved, config)
        if config is None:
            raise ValueError("a training config (or a checkpoint to resume) is needed")
        self.config = config
        cfg = config

        self.accelerator = Accelerator(mixed_precision=cfg.mixed_precision, cpu=cpu)
        self.device = self.accelerator.device
        self.rank = self.accelerator.process_index
        self.world = self.accelerator.num_processes
        self.is_main = self.accelerator.is_main_process

        # ---- everything a user can get wrong is checked before any model is built --------------------------
        self.data: UnpairedData = build_train_data(cfg.data, need_captions=cfg.uses_captions)
        self.val: PairedValData | None = build_val_data(cfg.data)
        from .retinex import load_reflectance_teacher

        self.teacher = load_reflectance_teacher(cfg.retinex_weights) if cfg.uses_reflectance else None
        self.lpips = None
        if cfg.loss.needs_lpips:
            from ..weights import load_lpips

            self.lpips = load_lpips("vgg")

        # ---- models --------------------------------------------------------------------------------------------
        from .generator import SCUFGenerator

        self.generator = SCUFGenerator(cfg.model)
        if cfg.gradient_checkpointing:
            self.generator.enable_gradient_checkpointing()
        backbone = CLIPFeatureExtractor(self._disc_clip())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.disc_normal = VisionAidedDiscriminator(backbone, cfg.disc_head_channels, cfg.loss.gan_loss,
                                                        cfg.diffaug)
            self.disc_low = VisionAidedDiscriminator(backbone, cfg.disc_head_channels, cfg.loss.gan_loss,
                                                     cfg.diffaug)
        for module in (self.generator, self.disc_normal, self.disc_low, self.teacher, self.lpips):
            if module is not None:
                module.to(self.device)
        self.generator.train()
        self.disc_normal.train()
        self.disc_low.train()

        # ---- optimisers ----------------------------------------------------------------------------------------
        from diffusers.optimization import get_scheduler

        o = cfg.optim
        self.params_g = self.generator.trainable_parameters()
        self.params_d = self.disc_normal.trainable_parameters() + self.disc_low.trainable_parameters()
        opt_g = torch.optim.AdamW(self.params_g, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay, eps=o.eps)
        opt_d = torch.optim.AdamW(self.params_d, lr=o.disc_lr if o.disc_lr is not None else o.lr, betas=o.betas,
                                  weight_decay=o.weight_decay, eps=o.eps)
        self.sched_g = get_scheduler(o.schedule, opt_g, num_warmup_steps=o.warmup_steps,
                                     num_training_steps=cfg.max_steps)
        self.sched_d = get_scheduler(o.schedule, opt_d, num_warmup_steps=o.warmup_steps,
                                     num_training_steps=cfg.max_steps)
        self.opt_g, self.opt_d = self.accelerator.prepare(opt_g, opt_d)

        self.step = 0
        self.columns = self._loss_columns()
        self.losses = CSVLog(self.output_dir / "losses.csv", ["step", *self.columns])
        self.metrics = CSVLog(self.output_dir / "metrics.csv", ["step", "psnr", "ssim", "images"])
        self._last_images: dict[str, torch.Tensor] = {}
        self._tb = None
        if ckpt is not None:
            self.load_checkpoint(ckpt)
        if self.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            cfg.save(self.output_dir / "config.json")
            self.losses.truncate(self.step)
            self.metrics.truncate(self.step)
            self._tb = _tensorboard(self.output_dir / "tensorboard")

    # ------------------------------------------------------------------------------------------------------------
    def _disc_clip(self) -> nn.Module:
        cfg = self.config
        from .pretrained import TINY_RANDOM, load_clip_vision

        if cfg.model.base == TINY_RANDOM and cfg.disc_clip is None:
            from .tiny import tiny_clip_vision

            return tiny_clip_vision(cfg.model.seed)
        return load_clip_vision(cfg.disc_clip or cfg.model.clip)

    def _loss_columns(self) -> list[str]:
        cfg = self.config
        cols = ["cycle_low", "cycle_normal", "idt_low", "idt_normal"]
        if cfg.loss.caption > 0:
            cols += ["caption_cycle_low", "caption_cycle_normal", "caption_idt_low", "caption_idt_normal"]
        if cfg.uses_reflectance:
            cols += ["reflectance_cycle_low", "reflectance_cycle_normal", "reflectance_idt_low",
                     "reflectance_idt_normal"]
        cols += ["gan_normal", "gan_low", "d_normal_fake", "d_low_fake", "d_normal_real", "d_low_real",
                 "loss_g", "loss_d", "grad_norm_g", "grad_norm_d", "lr"]
        return cols

    # ------------------------------------------------------------------------------------------------------------
    # per micro-batch inputs
    def _generator_for(self, step: int, micro: int, phase: int) -> torch.Generator:
        seed = _seed_for(self.config.seed, step, micro, self.rank, phase)
        return torch.Generator(device=self.device).manual_seed(seed)

    @torch.no_grad()
    def _inputs(self, batch: TrainBatch) -> _Inputs:
        from .prompt import illumination_map

        gen, cfg = self.generator, self.config
        x01 = {"low": batch.low.to(self.device), "normal": batch.normal.to(self.device)}
        x = {k: v * 2.0 - 1.0 for k, v in x01.items()}
        embeds: dict[tuple[str, bool], torch.Tensor | None] = {}
        for domain in ("low", "normal"):
            for reverse in (True, False):
                embeds[(domain, reverse)] = (
                    gen.encode_image_prompt(illumination_map(x01[domain], reverse))
                    if cfg.model.uses_image_prompt else None
                )
        teacher = {k: self.teacher(v).float() for k, v in x01.items()} if self.teacher is not None else {}
        captions: dict[str, torch.Tensor] = {}
        texts: dict[tuple[str, str], torch.Tensor] = {}
        caps = {"low": batch.low_captions, "normal": batch.normal_captions}
        if cfg.loss.caption > 0:
            captions = {k: gen.encode_prompt(v) for k, v in caps.items()}
        if cfg.caption_in_prompt:
            fixed = {"lighten": cfg.model.lighten_prompt, "darken": cfg.model.darken_prompt}
            for direction, prompt in fixed.items():
                for domain, c in caps.items():
                    texts[(direction, domain)] = gen.encode_prompt([f"{prompt} {t}" for t in c])
        return _Inputs(x, x01, embeds, teacher, captions, texts)

    # ------------------------------------------------------------------------------------------------------------
    # one generator pass
    def _pass(self, x: torch.Tensor, direction: str, domain: str, reverse: bool, inp: _Inputs,
              g: torch.Generator):
        """f_direction(x) with the prompt map (1 − V if ``reverse`` else V) of the ``domain`` input image."""
        gen = self.generator
        embeds = inp.embeds[(domain, reverse)]
        if not self.config.caption_in_prompt:
            return gen.step(x, direction, sample=self.config.sample_latents, generator=g, image_embeds=embeds)
        # Table 6: the text condition is prompt + caption. SCUFGenerator.step takes no text override, so this
        # mirrors its body with a custom text embedding (same encode → one step → decode).
        from .generator import StepOutput

        vae = gen.vae(direction)
        posterior, skips = vae.encode(x)
        z_enc = (posterior.sample(g) if self.config.sample_latents else posterior.mode()) * gen.scaling_factor
        text = inp.texts[(direction, domain)]
        cond = text if embeds is None else torch.cat([text, gen.image_tokens(embeds).to(text.dtype)], dim=1)
        z0 = gen.one_step(gen.unet, z_enc, cond, g)
        image = vae.decode(z0 / gen.scaling_factor, skips, gen.config.skip_gamma).clamp(-1.0, 1.0)
        return StepOutput(image, z0, z_enc, skips, direction)

    def _encode(self, x: torch.Tensor, direction: str, g: torch.Generator) -> torch.Tensor:
        """Scaled encoder latent E_direction(x) (for the caption-consistency target)."""
        posterior, _ = self.generator.vae(direction).encode(x)
        z = posterior.sample(g) if self.config.sample_latents else posterior.mode()
        return z * self.generator.scaling_factor

    # ------------------------------------------------------------------------------------------------------------
    # loss groups
    def _cycle(self, inp: _Inputs, domain: str, g: torch.Generator):
        """The cycle of one domain's image → (first pass, terms)."""
        gen, cfg = self.generator, self.config
        d1, d2 = ("lighten", "darken") if domain == "low" else ("darken", "lighten")
        x = inp.x[domain]
        fwd = self._pass(x, d1, domain, True, inp, g)
        back = self._pass(fwd.image, d2, domain, False, inp, g)
        terms = {f"cycle_{domain}": cycle_loss(back.image, x, cfg.loss, self.lpips)}
        if cfg.loss.caption > 0:
            z_cap = gen.caption_x0(fwd.z_enc, inp.captions[domain])
            terms[f"caption_cycle_{domain}"] = caption_consistency_loss(back.z0, z_cap)
        if cfg.uses_reflectance:
            terms[f"reflectance_cycle_{domain}"] = reflectance_loss(
                gen.step_reflectance(back).float(), inp.teacher[domain], gen.step_reflectance(fwd).float(),
                use_ssim=cfg.loss.reflectance_ssim,
            )
        return fwd, terms

    def _identity(self, inp: _Inputs, z_enc: dict[str, torch.Tensor] | None, g: torch.Generator):
        """Identity terms. ``z_enc``: E_l(I_l) under "low" and E_d(I_n) under "normal" (caption targets)."""
        gen, cfg = self.generator, self.config
        idt = {"normal": self._pass(inp.x["normal"], "lighten", "normal", False, inp, g),
               "low": self._pass(inp.x["low"], "darken", "low", False, inp, g)}
        terms = {f"idt_{d}": identity_loss(idt[d].image, inp.x[d], cfg.loss, self.lpips) for d in ("low", "normal")}
        if cfg.loss.caption > 0:
            if z_enc is None:
                z_enc = {"low": self._encode(inp.x["low"], "lighten", g),
                         "normal": self._encode(inp.x["normal"], "darken", g)}
            for d in ("low", "normal"):
                z_cap = gen.caption_x0(z_enc[d], inp.captions[d])
                terms[f"caption_idt_{d}"] = caption_consistency_loss(idt[d].z0, z_cap)
        if cfg.uses_reflectance:
            for d in ("low", "normal"):
                terms[f"reflectance_idt_{d}"] = reflectance_loss(
                    gen.step_reflectance(idt[d]).float(), inp.teacher[d], use_ssim=cfg.loss.reflectance_ssim
                )
        return terms

    def _gan_g(self, fake_normal: torch.Tensor, fake_low: torch.Tensor, g: torch.Generator):
        return {"gan_normal": generator_gan_loss(self.disc_normal, fake_normal, g),
                "gan_low": generator_gan_loss(self.disc_low, fake_low, g)}

    def _weighted(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """Σ of the terms with their weights (cycle/idt terms already carry λ_cycle, λ_idt and LPIPS weights)."""
        w = self.config.loss
        total = torch.zeros((), device=self.device)
        for name, value in terms.items():
            scale = (w.caption if name.startswith("caption") else w.reflectance if name.startswith("reflectance")
                     else w.gan if name.startswith(("gan", "d_")) else 1.0)
            total = total + scale * value.float()
        return total

    # ------------------------------------------------------------------------------------------------------------
    # updates
    def _backward(self, loss: torch.Tensor) -> None:
        self.accelerator.backward(loss / self.config.grad_accum)

    def _apply(self, which: str) -> float:
        """Average gradients over processes, clip, step the optimiser, zero its gradients → grad norm."""
        opt, params = (self.opt_g, self.params_g) if which == "g" else (self.opt_d, self.params_d)
        if self.world > 1:
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
            flat = torch.cat([gr.reshape(-1) for gr in grads])
            flat = self.accelerator.reduce(flat, reduction="mean")
            offset = 0
            for p, gr in zip(params, grads):
                n = gr.numel()
                p.grad = flat[offset : offset + n].view_as(p).to(p.dtype)
                offset += n
        norm = self.accelerator.clip_grad_norm_(params, self.config.optim.max_grad_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(norm) if norm is not None else float("nan")

    def _train_step(self, step: int, batches: Sequence[TrainBatch]) -> dict[str, float]:
        """One optimisation step over ``grad_accum`` micro-batches → logged values (means over micro-batches)."""
        cfg = self.config
        acc: dict[str, float] = {}

        def record(terms: dict[str, torch.Tensor]) -> None:
            for k, v in terms.items():
                acc[k] = acc.get(k, 0.0) + float(v.detach()) / len(batches)

        inputs = [self._inputs(b) for b in batches]
        autocast = self.accelerator.autocast
        fakes: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.opt_g.zero_grad(set_to_none=True)
        if cfg.update == "joint":
            loss_g = 0.0
            for m, inp in enumerate(inputs):
                g = self._generator_for(step, m, 0)
                with autocast():
                    fwd_low, terms = self._cycle(inp, "low", g)
                    fwd_normal, terms_n = self._cycle(inp, "normal", g)
                    terms.update(terms_n)
                    terms.update(self._identity(inp, {"low": fwd_low.z_enc, "normal": fwd_normal.z_enc}, g))
                    terms.update(self._gan_g(fwd_low.image, fwd_normal.image, g))
                    loss = self._weighted(terms)
                self._backward(loss)
                record(terms)
                loss_g += float(loss.detach()) / len(batches)
                fakes.append((fwd_low.image.detach(), fwd_normal.image.detach()))
                self._keep_images(inp, fwd_low, fwd_normal, None)
            grad_g = self._apply("g")
        else:  # sequential, as the released code
            loss_g, grad_g = 0.0, 0.0
            phases = ["cycle_low", "cycle_normal", "gan", "identity"]
            for phase_id, phase in enumerate(phases):
                for m, inp in enumerate(inputs):
                    g = self._generator_for(step, m, 1 + phase_id)
                    with autocast():
                        if phase.startswith("cycle"):
                            domain = phase.split("_")[1]
                            fwd, terms = self._cycle(inp, domain, g)
                            if domain == "low":
                                self._last_images["fake_normal"] = fwd.image.detach()
                        elif phase == "gan":
                            fake_normal = self._pass(inp.x["low"], "lighten", "low", True, inp, g).image
                            fake_low = self._pass(inp.x["normal"], "darken", "normal", True, inp, g).image
                            terms = self._gan_g(fake_normal, fake_low, g)
                            fakes.append((fake_normal.detach(), fake_low.detach()))
                        else:
                            terms = self._identity(inp, None, g)
                        loss = self._weighted(terms)
                    self._backward(loss)
                    record(terms)
                    loss_g += float(loss.detach()) / len(batches)
                grad_g = max(grad_g, self._apply("g"))
            self._keep_images(inputs[-1], None, None, fakes[-1])

        # discriminators: fakes → fake, reals → real (the heads also got gradients from the generator's GAN term)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d = 0.0
        parts = [("fake",), ("real",)] if cfg.update == "sequential" else [("fake", "real")]
        grad_d = 0.0
        for p_id, part in enumerate(parts):
            for m, (inp, (fake_normal, fake_low)) in enumerate(zip(inputs, fakes)):
                g = self._generator_for(step, m, 10 + p_id)
                with autocast():
                    terms = {}
                    if "fake" in part:
                        terms["d_normal_fake"] = discriminator_loss(self.disc_normal, fake=fake_normal, generator=g)
                        terms["d_low_fake"] = discriminator_loss(self.disc_low, fake=fake_low, generator=g)
                    if "real" in part:
                        terms["d_normal_real"] = discriminator_loss(self.disc_normal, real=inp.x["normal"],
                                                                    generator=g)
                        terms["d_low_real"] = discriminator_loss(self.disc_low, real=inp.x["low"], generator=g)
                    loss = self._weighted(terms)
                self._backward(loss)
                record(terms)
                loss_d += float(loss.detach()) / len(batches)
            grad_d = max(grad_d, self._apply("d"))
        if self.world > 1:  # keep the spectral-norm power-iteration vectors identical on every process
            from accelerate.utils import broadcast

            for buf in list(self.disc_normal.heads.buffers()) + list(self.disc_low.heads.buffers()):
                buf.copy_(broadcast(buf.contiguous(), from_process=0))
        self.sched_g.step()
        self.sched_d.step()
        acc.update(loss_g=loss_g, loss_d=loss_d, grad_norm_g=grad_g, grad_norm_d=grad_d,
                   lr=self.sched_g.get_last_lr()[0])
        if self.world > 1:
            keys = sorted(acc)
            vec = self.accelerator.reduce(torch.tensor([acc[k] for k in keys], device=self.device), "mean")
            acc = {k: float(v) for k, v in zip(keys, vec.tolist())}
        return acc

    def _keep_images(self, inp: _Inputs, fwd_low, fwd_normal, fakes) -> None:
        """Remember this step's first images for the sample grid: inputs and their translations."""
        self._last_images["low"] = inp.x["low"].detach()
        self._last_images["normal"] = inp.x["normal"].detach()
        if fwd_low is not None:
            self._last_images["fake_normal"] = fwd_low.image.detach()
            self._last_images["fake_low"] = fwd_normal.image.detach()
        if fakes is not None:
            self._last_images["fake_normal"], self._last_images["fake_low"] = fakes

    # ------------------------------------------------------------------------------------------------------------
    # the loop
    def _micro_index(self, step: int, micro: int) -> int:
        return (step * self.config.grad_accum + micro) * self.world + self.rank

    def _batches(self):
        """Micro-batches of the remaining steps, in order (prefetched by DataLoader workers when configured)."""
        cfg = self.config
        indices = [self._micro_index(s, m) for s in range(self.step, cfg.max_steps) for m in range(cfg.grad_accum)]
        dataset = MicroBatches(self.data, indices, cfg.batch_size)
        if cfg.data.num_workers == 0:
            return (dataset[i] for i in range(len(dataset)))
        return iter(torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False,
                                                num_workers=cfg.data.num_workers, prefetch_factor=2))

    def run(self) -> Path:
        """Train until ``max_steps`` (from the resumed step), checkpointing and validating on the way.

        Returns the folder of the final model (``<output>/model``, a ``save_pretrained`` folder).
        """
        cfg = self.config
        batches = self._batches()
        log.info("training from step %d to %d on %s (%d process%s)", self.step, cfg.max_steps, self.device,
                 self.world, "es" if self.world > 1 else "")
        while self.step < cfg.max_steps:
            t0 = time.perf_counter()
            micro = [next(batches) for _ in range(cfg.grad_accum)]
            logs = self._train_step(self.step, micro)
            self.step += 1
            logs["seconds"] = time.perf_counter() - t0
            bad = [k for k, v in logs.items() if not math.isfinite(v) and not k.startswith("grad_norm")]
            if bad:
                raise FloatingPointError(f"step {self.step}: non-finite loss terms {bad}; lower the learning rate "
                                         "or use bf16 rather than fp16")
            if self.is_main and (self.step % cfg.log_every == 0 or self.step == cfg.max_steps):
                self.losses.append({"step": self.step, **logs})
                if self._tb is not None:
                    for k, v in logs.items():
                        self._tb.add_scalar(f"train/{k}", v, self.step)
            if cfg.validate_every and (self.step % cfg.validate_every == 0 or self.step == cfg.max_steps):
                self.validate()
            if cfg.checkpoint_every and (self.step % cfg.checkpoint_every == 0 or self.step == cfg.max_steps):
                self.save_checkpoint()
            if self.progress is not None:
                self.progress(self.step, cfg.max_steps, logs)
        final = self.output_dir / "model"
        if self.is_main:
            self.generator.save_pretrained(final)
            if self._tb is not None:
                self._tb.close()
        self.accelerator.wait_for_everyone()
        return final

    # ------------------------------------------------------------------------------------------------------------
    # validation and sample grids
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """PSNR/SSIM of the lighten pass on the paired validation images (main process) + sample grids."""
        out: dict[str, float] = {}
        if not self.is_main:
            self.accelerator.wait_for_everyone()
            return out
        from ..metrics import psnr, ssim

        gen = self.generator
        gen.eval()
        tag = f"step_{self.step:06d}.png"
        if self._last_images:
            im = {k: (v[0] + 1) / 2 for k, v in self._last_images.items()}
            rows = [_grid_row([im["low"], im["fake_normal"]], 128), _grid_row([im["normal"], im["fake_low"]], 128)]
            save_image(_stack_rows(rows), self.output_dir / "samples" / tag)
        if self.val is not None and len(self.val):
            psnrs, ssims, rows = [], [], []
            for i in range(len(self.val)):
                low, normal = self.val.load(i)
                x, size = pad_to_multiple(low.to(self.device), gen.size_multiple)
                with self.accelerator.autocast():
                    y = gen(x, "lighten")
                y = crop_to(y.float(), size).clamp(0, 1).cpu()
                psnrs.append(float(psnr(y, normal)[0]))
                ssims.append(float(ssim(y, normal)[0]) if min(size) >= 11 else float("nan"))
                if i < self.config.val_images_in_grid:
                    rows.append(_grid_row([low[0], y[0], normal[0]], 160))
            out = {"psnr": float(np.mean(psnrs)), "ssim": float(np.nanmean(ssims)), "images": len(psnrs)}
            self.metrics.append({"step": self.step, **out})
            if self._tb is not None:
                self._tb.add_scalar("val/psnr", out["psnr"], self.step)
                self._tb.add_scalar("val/ssim", out["ssim"], self.step)
            if rows:
                save_image(_stack_rows(rows), self.output_dir / "val" / tag)
            log.info("step %d: validation PSNR %.2f dB, SSIM %.4f on %d images", self.step, out["psnr"],
                     out["ssim"], len(psnrs))
        gen.train()
        self.accelerator.wait_for_everyone()
        return out

    # ------------------------------------------------------------------------------------------------------------
    # checkpoints
    def _heads_state(self) -> dict[str, torch.Tensor]:
        state = {f"disc_normal.{k}": v for k, v in self.disc_normal.heads.state_dict().items()}
        state.update({f"disc_low.{k}": v for k, v in self.disc_low.heads.state_dict().items()})
        return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}

    def save_checkpoint(self) -> Path:
        """Write ``checkpoints/step_XXXXXX/`` atomically (temporary folder, then rename) and point ``latest`` at it."""
        from safetensors.torch import save_file

        name = f"step_{self.step:06d}"
        final = self.ckpt_dir / name
        tmp = self.ckpt_dir / f".{name}.tmp"
        if self.is_main:
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
        self.accelerator.wait_for_everyone()
        _torch_save(_rng_state(), tmp / f"rng_state_{self.rank}.pt")
        self.accelerator.wait_for_everyone()
        if self.is_main:
            self.generator.save_pretrained(tmp / "model")
            save_file(self._heads_state(), str(tmp / "discriminators.safetensors"))
            _torch_save(self.opt_g.state_dict(), tmp / "optimizer_g.pt")
            _torch_save(self.opt_d.state_dict(), tmp / "optimizer_d.pt")
            _torch_save(self.sched_g.state_dict(), tmp / "scheduler_g.pt")
            _torch_save(self.sched_d.state_dict(), tmp / "scheduler_d.pt")
            if self.accelerator.scaler is not None:
                _torch_save(self.accelerator.scaler.state_dict(), tmp / "scaler.pt")
            self.config.save(tmp / "config.json")
            state = {"step": self.step, "world_size": self.world, "time": time.time(), "format": "gefu-scuf-train/1"}
            _atomic_write_text(tmp / "state.json", json.dumps(state, indent=2) + "\n")  # last: marks it complete
            if final.exists():  # a re-run of the same step after resuming from an earlier checkpoint
                trash = self.ckpt_dir / f".{name}.old"
                shutil.rmtree(trash, ignore_errors=True)
                os.replace(final, trash)
                shutil.rmtree(trash, ignore_errors=True)
            os.replace(tmp, final)
            _atomic_write_text(self.ckpt_dir / "latest", name + "\n")
            self._prune_checkpoints()
            log.info("saved checkpoint %s", final)
        self.accelerator.wait_for_everyone()
        return final

    def _prune_checkpoints(self) -> None:
        keep = self.config.keep_checkpoints
        if not keep:
            return
        done = sorted(p for p in self.ckpt_dir.glob("step_*") if (p / "state.json").is_file())
        for old in done[:-keep]:
            shutil.rmtree(old, ignore_errors=True)

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore every piece of training state from a checkpoint folder."""
        from safetensors.torch import load_file

        path = Path(path)
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
        self.generator.load_trainable_state_dict(load_file(str(path / "model" / "model.safetensors")))
        heads = load_file(str(path / "discriminators.safetensors"))
        for prefix, disc in (("disc_normal.", self.disc_normal), ("disc_low.", self.disc_low)):
            sub = {k[len(prefix):]: v for k, v in heads.items() if k.startswith(prefix)}
            disc.heads.load_state_dict(sub, strict=True)
        self.opt_g.load_state_dict(_load(path / "optimizer_g.pt"))
        self.opt_d.load_state_dict(_load(path / "optimizer_d.pt"))
        self.sched_g.load_state_dict(_load(path / "scheduler_g.pt"))
        self.sched_d.load_state_dict(_load(path / "scheduler_d.pt"))
        if self.accelerator.scaler is not None and (path / "scaler.pt").is_file():
            self.accelerator.scaler.load_state_dict(_load(path / "scaler.pt"))
        rng = path / f"rng_state_{self.rank}.pt"
        if rng.is_file():
            _set_rng_state(_load(rng))
        if state.get("world_size", 1) != self.world:
            log.warning("resuming a %d-process run on %d processes: the data order from here on differs",
                        state.get("world_size", 1), self.world)
        self.step = int(state["step"])
        log.info("resumed from %s at step %d", path, self.step)


def _merge_resumed(saved: TrainConfig, given: TrainConfig) -> TrainConfig:
    """The saved config with the runtime fields of ``given``; any other difference is an error."""
    a, b = saved.to_dict(), given.to_dict()
    diffs = []
    for key in a:
        if key in RUNTIME_FIELDS or key == "preset":
            continue
        if key == "data":
            for k in a["data"]:
                if k not in RUNTIME_DATA_FIELDS and a["data"][k] != b["data"][k]:
                    diffs.append(f"data.{k}: {a['data'][k]!r} → {b['data'][k]!r}")
        elif a[key] != b[key]:
            if isinstance(a[key], dict):
                diffs += [f"{key}.{k}: {a[key][k]!r} → {b[key].get(k)!r}" for k in a[key] if a[key][k] != b[key].get(k)]
            else:
                diffs.append(f"{key}: {a[key]!r} → {b[key]!r}")
    if diffs:
        raise ValueError("the checkpoint was trained with another configuration; resuming would not continue the "
                         "same run. Differences: " + "; ".join(diffs[:8]) + ". Resume without a config (the "
                         "checkpoint's is used), or start a new output folder.")
    merged = dict(a)
    for key in RUNTIME_FIELDS:
        merged[key] = b[key]
    merged["data"] = {**a["data"], **{k: b["data"][k] for k in RUNTIME_DATA_FIELDS}}
    return TrainConfig.from_dict(merged)


def _tensorboard(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is an optional extra
        return None
    return SummaryWriter(str(path))


def train(
    config: TrainConfig | None,
    output_dir: str | os.PathLike,
    *,
    resume: str | os.PathLike | None = None,
    cpu: bool = False,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
) -> Path:
    """Build a ``Trainer`` and run it → folder of the final model (``create_enhancer("scuf", checkpoint=...)``)."""
    return Trainer(config, output_dir, resume=resume, cpu=cpu, progress=progress).run()
