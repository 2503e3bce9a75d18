"""The resumable SCUF training loop (paper Alg. 1, DESIGN §2.6): `Trainer(config, output_dir).run()`.

Two ways to apply a step's updates (``TrainConfig.update``):

- ``"joint"`` (preset ``paper``): the total of Eq. 8 in one generator update, then one discriminator update
  (fakes → fake, reals → real). Holds all six passes for one backward: more memory.
- ``"sequential"`` (preset ``official``): as the released code (inherited from CycleGAN-Turbo), six updates per
  step — generator on the ``I_l`` cycle, on the ``I_n`` cycle, on the GAN term (fresh fakes), on the identity
  terms, then the discriminators on the fakes and on the reals. The learning-rate schedule advances once per
  step (the released code advances it once per update; with its constant schedule this is the same).

The loss terms themselves are in `gefu.scuf.train_step`; the run folder's files in `gefu.scuf.train_io`.

Exact resume: every random draw of an update (latent samples, scheduler noise, DiffAugment) comes from a
generator seeded by ``(seed, step, micro-batch, process, update)`` (``update_seed``), and the data order, pairing,
crops and flips from ``(data.seed, sample)``; a checkpoint holds the trainable weights (``model/``, a
``save_pretrained`` folder usable for inference), the discriminator heads (with their spectral-norm vectors), both
optimiser and scheduler states, the gradient-scaler state, the global RNG states of every process, the step and
the config.

Components can be given instead of loaded (`TrainerParts`: base model, discriminator CLIP tower, LPIPS, teacher),
so that a run can be reproduced side by side with another implementation from the same weights.

Several GPUs: launch with ``accelerate launch``; every process draws its own micro-batches, and the gradients of
the trainable parameters are averaged across processes before each update (an explicit all-reduce rather than
DDP wrapping, because the training calls several methods of the generator, not only ``forward``).
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn as nn

from .data import MicroBatches, PairedValData, TrainBatch, UnpairedData, build_train_data, build_val_data
from .discriminator import CLIPFeatureExtractor, VisionAidedDiscriminator
from .generator import SCUFGenerator
from .pretrained import TINY_RANDOM, BaseComponents, load_clip_vision, load_components
from .retinex import ClassicReflectance, load_decomnet
from .train_config import TrainConfig, merge_resumed
from .train_io import (
    CSVLog,
    TrainingState,
    check_run_folder,
    clear_run_folder,
    find_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from .train_monitor import Monitor
from .train_step import StepInputs, StepLosses, official_param_list, update_seed

__all__ = ["Trainer", "TrainerParts", "TrainingDiverged"]

log = logging.getLogger(__name__)

#: update index of each part of a step (seeds its random draws; see update_seed)
JOINT, CYCLE_LOW, CYCLE_NORMAL, GAN, IDENTITY, D_FAKE, D_REAL, D_JOINT = 0, 1, 2, 3, 4, 10, 11, 10


class TrainingDiverged(ArithmeticError):
    """A loss term became NaN or infinite; the message names the step, the terms and the checkpoint to resume."""


@dataclass
class TrainerParts:
    """Components given to a `Trainer` instead of loaded (None: load as the config says). The trainer takes them
    over (the generator is built on `base`'s modules)."""

    base: BaseComponents | None = None  # SD-Turbo + (for an image prompt) the CLIP tower; see SCUFGenerator
    disc_clip: nn.Module | None = None  # CLIPVisionModelWithProjection shared by both discriminators
    lpips: nn.Module | None = None  # LPIPS-vgg (inputs in [-1, 1])
    teacher: nn.Module | None = None  # reflectance teacher: image [0, 1] → reflectance [0, 1]


class Trainer:
    """Builds everything a run needs (checking data, weights, config and the output folder first), then ``run()``
    trains.

    Args:
        config: the run's ``TrainConfig``; may be None when resuming (the checkpoint's config is used).
        output_dir: the run folder (``losses.csv``, ``metrics.csv``, ``samples/``, ``checkpoints/``, ``model/``).
        resume: None, "latest" (the newest intact checkpoint in ``output_dir``; starts fresh when there is none)
            or a checkpoint folder. Without it, a folder that already holds a run is refused…
        overwrite: …unless this is set: then the previous run's files are deleted.
        cpu: force the CPU even when a GPU is visible.
        progress: called after every step as ``progress(step, max_steps, logs)``.
        parts: components to use instead of loading them (see ``TrainerParts``).
    """

    def __init__(
        self,
        config: TrainConfig | None,
        output_dir: str | os.PathLike,
        *,
        resume: str | os.PathLike | None = None,
        overwrite: bool = False,
        cpu: bool = False,
        progress: Callable[[int, int, dict[str, float]], None] | None = None,
        parts: TrainerParts | None = None,
    ) -> None:
        from accelerate import Accelerator

        parts = parts or TrainerParts()
        self.output_dir = Path(output_dir)
        self.ckpt_dir = self.output_dir / "checkpoints"
        self.progress = progress
        ckpt = self._resolve_config(config, resume)
        if resume is None and not overwrite:
            check_run_folder(self.output_dir)
        cfg = self.config
        # everything a user can get wrong is checked before any model is built (and before accelerate's
        # process-wide state is set)
        self.data: UnpairedData = build_train_data(cfg.data, need_captions=cfg.uses_captions)
        self.val: PairedValData | None = build_val_data(cfg.data)
        self.teacher = parts.teacher if parts.teacher is not None else self._load_teacher()
        self.lpips = parts.lpips if parts.lpips is not None or not cfg.loss.needs_lpips else self._load_lpips()

        self.accelerator = Accelerator(mixed_precision=cfg.mixed_precision, cpu=cpu)
        self.device = self.accelerator.device
        self.rank = self.accelerator.process_index
        self.world = self.accelerator.num_processes
        self.is_main = self.accelerator.is_main_process

        self._build_models(parts)
        self._build_optimizers()
        self.step = 0
        self.losses = CSVLog(self.output_dir / "losses.csv", ["step", *self._loss_columns()])
        self._last_images: dict[str, torch.Tensor] = {}
        self._last_good: Path | None = ckpt
        if ckpt is not None:
            self.load_checkpoint(ckpt)
        if self.is_main:
            if resume is None and overwrite:
                clear_run_folder(self.output_dir)
            self.output_dir.mkdir(parents=True, exist_ok=True)
            cfg.save(self.output_dir / "config.json")
        self.monitor = Monitor(self.output_dir, self.val, self.accelerator, cfg.val_images_in_grid,
                               tensorboard=self.is_main)
        if self.is_main:
            self.losses.truncate(self.step)
            self.monitor.metrics.truncate(self.step)

    # ------------------------------------------------------------------------------------------------------------
    # construction
    def _resolve_config(self, config: TrainConfig | None, resume: str | os.PathLike | None) -> Path | None:
        """Set ``self.config`` (merged with the checkpoint's when resuming) → the checkpoint to load, if any."""
        ckpt = find_checkpoint(self.output_dir, resume) if resume is not None else None
        if resume is not None and ckpt is None:
            log.warning("no checkpoint in %s to resume from: starting a new run", self.ckpt_dir)
        if ckpt is not None:
            saved = TrainConfig.load(ckpt / "config.json")
            if config is None:
                config = saved
            else:
                config, moved = merge_resumed(saved, config)
                if moved:
                    log.warning("resuming %s with other data (%s): the run continues on different images",
                                self.output_dir, "; ".join(moved))
        if config is None:
            raise ValueError("a training config (or a checkpoint to resume) is needed")
        self.config = config
        return ckpt

    def _load_teacher(self) -> nn.Module | None:
        """The reflectance teacher the config asks for (see ``TrainConfig.reflectance_teacher``)."""
        from ..weights import MissingWeightsError, find_weight, weight_path

        cfg = self.config
        if not cfg.uses_reflectance:
            return None
        if cfg.reflectance_teacher == "classic":
            return ClassicReflectance().eval()
        if cfg.retinex_weights:
            return load_decomnet(cfg.retinex_weights)
        if cfg.reflectance_teacher == "decomnet":
            try:
                return load_decomnet(weight_path("retinexnet-decom"))
            except MissingWeightsError as err:
                raise MissingWeightsError(
                    f"preset {cfg.preset!r} trains with RetinexNet's DecomNet as reflectance teacher: pass "
                    f"--retinex-weights PATH or set GEFU_RETINEXNET=PATH (the released decomp.pth), or get it: {err}. "
                    "(--set reflectance_teacher=classic uses the weight-free teacher instead)"
                ) from None
        found = find_weight("retinexnet-decom")
        if found is not None:
            return load_decomnet(found)
        log.warning("no RetinexNet weights given or found: using the classic Retinex reflectance (I / blur(max_c I)) "
                    "as teacher (gefu weights download retinexnet-decom, or --retinex-weights PATH)")
        return ClassicReflectance().eval()

    def _load_lpips(self) -> nn.Module:
        from ..weights import load_lpips

        return load_lpips("vgg")

    def _disc_clip(self) -> nn.Module:
        cfg = self.config
        if cfg.model.base == TINY_RANDOM and cfg.disc_clip is None:
            from .tiny import tiny_clip_vision

            return tiny_clip_vision(cfg.model.seed)
        return load_clip_vision(cfg.disc_clip or cfg.model.clip)

    def _build_models(self, parts: TrainerParts) -> None:
        cfg, q = self.config, self.config.quirks
        base = parts.base
        if base is None:
            clip = cfg.model.clip if cfg.model.uses_image_prompt else None
            base = load_components(cfg.model.base, clip, seed=cfg.model.seed)
        self.generator = SCUFGenerator(cfg.model, base)
        if cfg.gradient_checkpointing:
            self.generator.enable_gradient_checkpointing()
        backbone = CLIPFeatureExtractor(parts.disc_clip if parts.disc_clip is not None else self._disc_clip())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.disc_normal, self.disc_low = (
                VisionAidedDiscriminator(backbone, cfg.disc_head_channels, cfg.loss.gan_loss, cfg.diffaug,
                                         blur_pad=q.blurpool_pad, spectral_norm=q.spectral_norm,
                                         translation_sign=q.diffaug_translation_sign)
                for _ in range(2)
            )
        for module in (self.generator, self.disc_normal, self.disc_low, self.teacher, self.lpips):
            if module is not None:
                module.to(self.device)
        self.generator.train()
        self.disc_normal.train()
        self.disc_low.train()
        self.losses_of = StepLosses(cfg, self.generator, self.disc_normal, self.disc_low, self.teacher, self.lpips)

    def _build_optimizers(self) -> None:
        from diffusers.optimization import get_scheduler

        cfg, o, q = self.config, self.config.optim, self.config.quirks
        unique_g = self.generator.trainable_parameters()
        listed_g = official_param_list(self.generator) if q.lora_param_duplicates else unique_g
        self.params_g = unique_g  # what gradients are averaged over
        self.clip_g = listed_g if q.clip_grad_counts_duplicates else unique_g
        self.params_d = self.disc_normal.trainable_parameters() + self.disc_low.trainable_parameters()
        kw = dict(betas=o.betas, weight_decay=o.weight_decay, eps=o.eps)
        with warnings.catch_warnings():  # the duplicated list is the point of lora_param_duplicates
            warnings.filterwarnings("ignore", message="optimizer contains a parameter group with duplicate")
            opt_g = torch.optim.AdamW(listed_g, lr=o.lr, **kw)
        opt_d = torch.optim.AdamW(self.params_d, lr=o.disc_lr if o.disc_lr is not None else o.lr, **kw)
        self.sched_g, self.sched_d = (
            get_scheduler(o.schedule, opt, num_warmup_steps=o.warmup_steps, num_training_steps=cfg.max_steps)
            for opt in (opt_g, opt_d)
        )
        self.opt_g, self.opt_d = self.accelerator.prepare(opt_g, opt_d)

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
    # one step
    def generator_for(self, step: int, micro: int, update: int) -> torch.Generator:
        """The RNG of one update of one micro-batch (see ``update_seed``)."""
        seed = update_seed(self.config.seed, step, micro, self.rank, update)
        return torch.Generator(device=self.device).manual_seed(seed)

    def inputs(self, batch: TrainBatch) -> StepInputs:
        return self.losses_of.inputs(batch.low.to(self.device), batch.normal.to(self.device), batch.low_captions,
                                     batch.normal_captions)

    def _backward(self, loss: torch.Tensor) -> None:
        self.accelerator.backward(loss / self.config.grad_accum)

    def _apply(self, which: str) -> float:
        """Average gradients over processes, clip, step the optimiser, zero its gradients → grad norm."""
        opt, params, clip = ((self.opt_g, self.params_g, self.clip_g) if which == "g"
                             else (self.opt_d, self.params_d, self.params_d))
        if self.world > 1:
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
            flat = self.accelerator.reduce(torch.cat([gr.reshape(-1) for gr in grads]), reduction="mean")
            offset = 0
            for p, gr in zip(params, grads):
                p.grad = flat[offset : offset + gr.numel()].view_as(p).to(p.dtype)
                offset += gr.numel()
        norm = self.accelerator.clip_grad_norm_(clip, self.config.optim.max_grad_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(norm) if norm is not None else float("nan")

    def _update(self, which: str, update: int, step: int, inputs: Sequence[StepInputs],
                terms_of: Callable[[int, StepInputs, torch.Generator], dict[str, torch.Tensor]],
                acc: dict[str, float]) -> float:
        """Backward the weighted terms of every micro-batch (``terms_of(micro, inputs, rng)``), then apply one
        optimiser update → its gradient norm. Terms and the total are averaged into ``acc``."""
        total = "loss_g" if which == "g" else "loss_d"
        for m, inp in enumerate(inputs):
            with self.accelerator.autocast():
                terms = terms_of(m, inp, self.generator_for(step, m, update))
                loss = self.losses_of.weighted(terms)
            self._backward(loss)
            for k, v in terms.items():
                acc[k] = acc.get(k, 0.0) + float(v.detach()) / len(inputs)
            acc[total] = acc.get(total, 0.0) + float(loss.detach()) / len(inputs)
        return self._apply(which)

    def _joint_generator(self, step: int, inputs: Sequence[StepInputs], acc: dict[str, float]) -> list:
        """The paper's update: the total of Eq. 8 in one backward → the fakes for the discriminators."""
        fakes = []

        def terms_of(m: int, inp: StepInputs, g: torch.Generator) -> dict[str, torch.Tensor]:
            fwd_low, terms = self.losses_of.cycle(inp, "low", g)
            fwd_normal, terms_n = self.losses_of.cycle(inp, "normal", g)
            terms.update(terms_n)
            terms.update(self.losses_of.identity(inp, g, {"low": fwd_low.z_enc, "normal": fwd_normal.z_enc}))
            terms.update(self.losses_of.gan_generator(fwd_low.image, fwd_normal.image, g))
            fakes.append((fwd_low.image.detach(), fwd_normal.image.detach()))
            return terms

        acc["grad_norm_g"] = self._update("g", JOINT, step, inputs, terms_of, acc)
        return fakes

    def _sequential_generator(self, step: int, inputs: Sequence[StepInputs], acc: dict[str, float]) -> list:
        """The released code's four generator updates: cycle I_l, cycle I_n, GAN on fresh fakes, identity."""
        fakes: list = []
        losses = self.losses_of

        def gan(m: int, inp: StepInputs, g: torch.Generator) -> dict[str, torch.Tensor]:
            fake_normal, fake_low = losses.fakes(inp, g)
            fakes.append((fake_normal.detach(), fake_low.detach()))
            return losses.gan_generator(fake_normal, fake_low, g)

        updates = [(CYCLE_LOW, lambda m, inp, g: losses.cycle(inp, "low", g)[1]),
                   (CYCLE_NORMAL, lambda m, inp, g: losses.cycle(inp, "normal", g)[1]),
                   (GAN, gan),
                   (IDENTITY, lambda m, inp, g: losses.identity(inp, g))]
        norms = [self._update("g", update, step, inputs, fn, acc) for update, fn in updates]
        acc["grad_norm_g"] = max(norms)
        return fakes

    def _discriminators(self, step: int, inputs: Sequence[StepInputs], fakes: list, acc: dict[str, float]) -> None:
        """Discriminator updates: fakes → fake and reals → real, together (joint) or one after the other
        (sequential). Unless ``quirks.gan_keep_d_grads``, the heads' gradients left by the generator's GAN term
        are dropped first."""
        if not self.config.quirks.gan_keep_d_grads:
            self.opt_d.zero_grad(set_to_none=True)
        losses = self.losses_of
        if self.config.update == "sequential":
            parts = [(D_FAKE, True, False), (D_REAL, False, True)]
        else:
            parts = [(D_JOINT, True, True)]
        norms = [self._update("d", update, step, inputs,
                              lambda m, inp, g, f=with_fakes, r=real: losses.discriminator(
                                  inp, fakes[m] if f else None, r, g), acc)
                 for update, with_fakes, real in parts]
        acc["grad_norm_d"] = max(norms)

    def train_step(self, step: int, batches: Sequence[TrainBatch]) -> dict[str, float]:
        """One optimisation step over ``grad_accum`` micro-batches → logged values (means over micro-batches)."""
        inputs = [self.inputs(b) for b in batches]
        acc: dict[str, float] = {}
        self.opt_g.zero_grad(set_to_none=True)
        if self.config.update == "joint":
            fakes = self._joint_generator(step, inputs, acc)
        else:
            fakes = self._sequential_generator(step, inputs, acc)
        self._keep_images(inputs[-1], fakes[-1])
        self._discriminators(step, inputs, fakes, acc)
        if self.world > 1:  # keep the spectral-norm power-iteration vectors identical on every process
            from accelerate.utils import broadcast

            for buf in list(self.disc_normal.heads.buffers()) + list(self.disc_low.heads.buffers()):
                buf.copy_(broadcast(buf.contiguous(), from_process=0))
        self.sched_g.step()
        self.sched_d.step()
        acc["lr"] = self.sched_g.get_last_lr()[0]
        if self.world > 1:
            keys = sorted(acc)
            vec = self.accelerator.reduce(torch.tensor([acc[k] for k in keys], device=self.device), "mean")
            acc = {k: float(v) for k, v in zip(keys, vec.tolist())}
        return acc

    def _keep_images(self, inp: StepInputs, fakes: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Remember this step's first images for the sample grid: inputs and their translations."""
        self._last_images = {"low": inp.x["low"].detach(), "normal": inp.x["normal"].detach(),
                             "fake_normal": fakes[0], "fake_low": fakes[1]}

    # ------------------------------------------------------------------------------------------------------------
    # the loop
    def _batches(self):
        """Micro-batches of the remaining steps, in order (prefetched by DataLoader workers when configured)."""
        cfg = self.config
        indices = [(s * cfg.grad_accum + m) * self.world + self.rank
                   for s in range(self.step, cfg.max_steps) for m in range(cfg.grad_accum)]
        dataset = MicroBatches(self.data, indices, cfg.batch_size)
        if cfg.data.num_workers == 0:
            return (dataset[i] for i in range(len(dataset)))
        return iter(torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False,
                                                num_workers=cfg.data.num_workers, prefetch_factor=2))

    def _check_finite(self, logs: dict[str, float]) -> None:
        bad = {k: v for k, v in logs.items() if not math.isfinite(v) and not k.startswith("grad_norm")}
        if not bad:
            return
        terms = ", ".join(f"{k}={v}" for k, v in sorted(bad.items())[:6])
        where = (f"resume from {self._last_good} (--resume latest)" if self._last_good is not None
                 else "start again")
        raise TrainingDiverged(
            f"step {self.step}: the training loss is not finite ({terms}), so the weights of this step are unusable "
            f"and were not saved; {where} with a lower learning rate (--set optim.lr=…), or with "
            "--mixed-precision bf16 instead of fp16"
        )

    def run(self) -> Path:
        """Train until ``max_steps`` (from the resumed step), checkpointing and validating on the way.

        Returns the folder of the final model (``<output>/model``, a ``save_pretrained`` folder). Raises
        ``TrainingDiverged`` (before anything of that step is saved) when a loss term is NaN or infinite.
        """
        cfg = self.config
        batches = self._batches()
        log.info("training from step %d to %d on %s (%d process%s)", self.step, cfg.max_steps, self.device,
                 self.world, "es" if self.world > 1 else "")
        while self.step < cfg.max_steps:
            t0 = time.perf_counter()
            logs = self.train_step(self.step, [next(batches) for _ in range(cfg.grad_accum)])
            self.step += 1
            logs["seconds"] = time.perf_counter() - t0
            self._check_finite(logs)
            self._after_step(logs)
        final = self.output_dir / "model"
        if self.is_main:
            self.generator.save_pretrained(final)
            self.monitor.close()
        self.accelerator.wait_for_everyone()
        return final

    def _after_step(self, logs: dict[str, float]) -> None:
        cfg = self.config
        last = self.step == cfg.max_steps
        if self.is_main and (self.step % cfg.log_every == 0 or last):
            self.losses.append({"step": self.step, **logs})
            self.monitor.scalars("train", logs, self.step)
        if cfg.validate_every and (self.step % cfg.validate_every == 0 or last):
            self.validate()
        if cfg.checkpoint_every and (self.step % cfg.checkpoint_every == 0 or last):
            self.save_checkpoint()
        if self.progress is not None:
            self.progress(self.step, cfg.max_steps, logs)

    # ------------------------------------------------------------------------------------------------------------
    # validation and checkpoints
    def validate(self) -> dict[str, float]:
        """PSNR/SSIM of the lighten pass on the paired validation images (main process) + sample grids."""
        out = self.monitor.validate(self.generator, self.step, self._last_images) if self.is_main else {}
        self.accelerator.wait_for_everyone()
        return out

    def _state(self) -> TrainingState:
        return TrainingState(
            self.generator, {"disc_normal": self.disc_normal.heads, "disc_low": self.disc_low.heads},
            {"optimizer_g": self.opt_g, "optimizer_d": self.opt_d, "scheduler_g": self.sched_g,
             "scheduler_d": self.sched_d, "scaler": self.accelerator.scaler}, self.config,
        )

    def save_checkpoint(self) -> Path:
        """Write ``checkpoints/step_XXXXXX/`` atomically and point ``latest`` at it (see ``train_io``)."""
        self._last_good = save_checkpoint(self._state(), self.ckpt_dir, self.step, self.accelerator,
                                          self.config.keep_checkpoints)
        return self._last_good

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restore every piece of training state from a checkpoint folder (checked against its manifest)."""
        self.step = load_checkpoint(self._state(), Path(path), self.rank, self.world)
