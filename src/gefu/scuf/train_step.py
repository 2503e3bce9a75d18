"""The loss terms of one SCUF training step (paper Alg. 1–2, DESIGN §2.4–2.6), grouped as the updates use them.

One step on a low-light crop ``I_l`` and an unrelated normal-light crop ``I_n`` (both [0, 1], fed to the
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

``R(·)`` is the frozen reflectance teacher, ``c_l``/``c_n`` the captions of the two images, ``U_init`` the frozen
pre-adapter UNet. The discriminators see ``I_n`` as real for D_normal and ``I_l`` as real for D_low.

``StepLosses`` computes the term groups (``cycle``, ``identity``, ``gan_generator``, ``discriminator``); every
random draw of a group (latent samples, scheduler noise, DiffAugment) comes from the one ``torch.Generator`` it is
given, in the order the released code draws them, so a group can be reproduced draw for draw. ``weighted`` sums
a group with the loss weights of Eq. 8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from .generator import SCUFGenerator, StepOutput
from .losses import (
    caption_consistency_loss,
    cycle_loss,
    discriminator_loss,
    generator_gan_loss,
    identity_loss,
    reflectance_loss,
)
from .prompt import illumination_map
from .train_config import TrainConfig

__all__ = ["StepInputs", "StepLosses", "update_seed", "official_param_list", "CYCLE", "IDENTITY", "CAPTION_ENCODER"]

#: (first direction, second direction) of each domain's cycle
CYCLE = {"low": ("lighten", "darken"), "normal": ("darken", "lighten")}
#: direction of each domain's identity pass (the one that should leave it unchanged)
IDENTITY = {"low": "darken", "normal": "lighten"}
#: direction whose encoder gives the caption target of each domain: E_l(I_l), E_d(I_n)
CAPTION_ENCODER = {"low": "lighten", "normal": "darken"}

def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """Half-precision values (under autocast) are upcast for the losses; float32/float64 stay as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


@dataclass
class StepInputs:
    """What one micro-batch needs besides the weights (all detached)."""

    x: dict[str, torch.Tensor]  # "low"/"normal" → (B, 3, H, W) in [-1, 1]
    x01: dict[str, torch.Tensor]  # same in [0, 1]
    embeds: dict[tuple[str, bool], torch.Tensor | None]  # (domain, reverse) → CLIP embedding of V or 1 − V
    teacher: dict[str, torch.Tensor]  # domain → teacher reflectance (B, 3, H, W) in [0, 1]
    captions: dict[str, torch.Tensor]  # domain → caption text embeddings (B, 77, D)
    texts: dict[tuple[str, str], torch.Tensor]  # (direction, domain) → prompt + caption embeddings (Table 6)


class StepLosses:
    """The loss groups of a training step for one generator, two discriminators, a teacher and LPIPS."""

    def __init__(
        self,
        config: TrainConfig,
        generator: SCUFGenerator,
        disc_normal: nn.Module,
        disc_low: nn.Module,
        teacher: Callable[[torch.Tensor], torch.Tensor] | None,
        lpips: nn.Module | None,
    ) -> None:
        self.config = config
        self.gen = generator
        self.disc = {"normal": disc_normal, "low": disc_low}
        self.teacher = teacher
        self.lpips = lpips

    # ------------------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def inputs(self, low: torch.Tensor, normal: torch.Tensor, low_captions=None, normal_captions=None) -> StepInputs:
        """Batches (B, 3, H, W) in [0, 1] on the model's device (+ their captions) → everything the groups need."""
        gen, cfg = self.gen, self.config
        x01 = {"low": low, "normal": normal}
        x = {k: v * 2.0 - 1.0 for k, v in x01.items()}
        embeds: dict[tuple[str, bool], torch.Tensor | None] = {}
        for domain in ("low", "normal"):
            for reverse in (True, False):
                embeds[(domain, reverse)] = (gen.encode_image_prompt(illumination_map(x01[domain], reverse))
                                             if cfg.model.uses_image_prompt else None)
        teacher = {k: _at_least_fp32(self.teacher(v)) for k, v in x01.items()} if self.teacher is not None else {}
        caps = {"low": low_captions, "normal": normal_captions}
        captions = {k: gen.encode_prompt(v) for k, v in caps.items()} if cfg.loss.caption > 0 else {}
        texts: dict[tuple[str, str], torch.Tensor] = {}
        if cfg.caption_in_prompt:
            fixed = {"lighten": cfg.model.lighten_prompt, "darken": cfg.model.darken_prompt}
            for direction, prompt in fixed.items():
                for domain, c in caps.items():
                    texts[(direction, domain)] = gen.encode_prompt([f"{prompt} {t}" for t in c])
        return StepInputs(x, x01, embeds, teacher, captions, texts)

    def run_pass(self, x: torch.Tensor, direction: str, domain: str, reverse: bool, inp: StepInputs,
                 g: torch.Generator) -> StepOutput:
        """f_direction(x) prompted with the map (1 − V if ``reverse`` else V) of the ``domain`` input image."""
        text = inp.texts.get((direction, domain)) if self.config.caption_in_prompt else None
        return self.gen.step(x, direction, sample=self.config.sample_latents, generator=g,
                             image_embeds=inp.embeds[(domain, reverse)], text_embeds=text)

    def caption_target(self, inp: StepInputs, domain: str, g: torch.Generator,
                       z_enc: torch.Tensor | None = None) -> torch.Tensor:
        """``U_init(E(I), c)`` for the domain's image: from ``z_enc`` (the pass's own latent), or — with the
        ``caption_reencode`` quirk, or when no latent is at hand — from a fresh encode and latent draw."""
        gen = self.gen
        reencode = self.config.quirks.caption_reencode
        if z_enc is None or reencode:
            posterior, _ = gen.vae(CAPTION_ENCODER[domain]).encode(inp.x[domain])
            z = posterior.sample(g) if self.config.sample_latents else posterior.mode()
            z_enc = z * gen.scaling_factor
        return gen.caption_x0(z_enc, inp.captions[domain], generator=g if reencode else None)

    def reflectance(self, out: StepOutput) -> torch.Tensor:
        return _at_least_fp32(self.gen.step_reflectance(out))

    # ------------------------------------------------------------------------------------------------------------
    # groups
    def cycle(self, inp: StepInputs, domain: str, g: torch.Generator) -> tuple[StepOutput, dict[str, torch.Tensor]]:
        """The cycle of one domain's image → (first pass, its terms)."""
        cfg, q = self.config, self.config.quirks
        d1, d2 = CYCLE[domain]
        x = inp.x[domain]
        z_cap = self.caption_target(inp, domain, g) if cfg.loss.caption > 0 and q.caption_reencode else None
        fwd = self.run_pass(x, d1, domain, True, inp, g)
        back = self.run_pass(fwd.image, d2, domain, False, inp, g)
        terms = {f"cycle_{domain}": cycle_loss(back.image, x, cfg.loss, self.lpips)}
        if cfg.loss.caption > 0:
            if z_cap is None:
                z_cap = self.caption_target(inp, domain, g, fwd.z_enc)
            terms[f"caption_cycle_{domain}"] = caption_consistency_loss(back.z0, z_cap)
        if cfg.uses_reflectance:
            terms[f"reflectance_cycle_{domain}"] = reflectance_loss(
                self.reflectance(back), inp.teacher[domain], self.reflectance(fwd), use_ssim=cfg.loss.reflectance_ssim,
                detach_back=q.reflectance_detach_back, ssim_data_range=q.ssim_data_range,
            )
        return fwd, terms

    def identity(self, inp: StepInputs, g: torch.Generator,
                 z_enc: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Identity terms of both domains. ``z_enc``: E_l(I_l) under "low", E_d(I_n) under "normal" (the joint
        update passes the cycle's forward latents); without it the caption targets encode afresh."""
        cfg = self.config
        z_cap: dict[str, torch.Tensor] = {}
        if cfg.loss.caption > 0 and (z_enc is None or cfg.quirks.caption_reencode):  # targets first, as released
            z_cap = {d: self.caption_target(inp, d, g) for d in ("low", "normal")}
        idt = {d: self.run_pass(inp.x[d], IDENTITY[d], d, False, inp, g) for d in ("normal", "low")}
        terms = {f"idt_{d}": identity_loss(idt[d].image, inp.x[d], cfg.loss, self.lpips) for d in ("low", "normal")}
        if cfg.loss.caption > 0:
            for d in ("low", "normal"):
                target = z_cap[d] if d in z_cap else self.caption_target(inp, d, g, z_enc[d])
                terms[f"caption_idt_{d}"] = caption_consistency_loss(idt[d].z0, target)
        if cfg.uses_reflectance:
            for d in ("low", "normal"):
                terms[f"reflectance_idt_{d}"] = reflectance_loss(
                    self.reflectance(idt[d]), inp.teacher[d], use_ssim=cfg.loss.reflectance_ssim,
                    ssim_data_range=cfg.quirks.ssim_data_range,
                )
        return terms

    def fakes(self, inp: StepInputs, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Fresh translations for the GAN update (darkened I_n first, as released) → (fake normal, fake low)."""
        fake_low = self.run_pass(inp.x["normal"], "darken", "normal", True, inp, g).image
        fake_normal = self.run_pass(inp.x["low"], "lighten", "low", True, inp, g).image
        return fake_normal, fake_low

    def gan_generator(self, fake_normal: torch.Tensor, fake_low: torch.Tensor,
                      g: torch.Generator) -> dict[str, torch.Tensor]:
        """The generator's GAN terms: each domain's discriminator should call the translation into it real."""
        return {"gan_normal": generator_gan_loss(self.disc["normal"], fake_normal, g),
                "gan_low": generator_gan_loss(self.disc["low"], fake_low, g)}

    def discriminator(self, inp: StepInputs, fakes: tuple[torch.Tensor, torch.Tensor] | None, real: bool,
                      g: torch.Generator) -> dict[str, torch.Tensor]:
        """The discriminators' terms: translations (detached) → fake, and with ``real`` each domain's own
        images → real (D_normal sees I_n, D_low sees I_l)."""
        terms = {}
        if fakes is not None:
            fake_normal, fake_low = fakes
            terms["d_normal_fake"] = discriminator_loss(self.disc["normal"], fake=fake_normal, generator=g)
            terms["d_low_fake"] = discriminator_loss(self.disc["low"], fake=fake_low, generator=g)
        if real:
            terms["d_normal_real"] = discriminator_loss(self.disc["normal"], real=inp.x["normal"], generator=g)
            terms["d_low_real"] = discriminator_loss(self.disc["low"], real=inp.x["low"], generator=g)
        return terms

    # ------------------------------------------------------------------------------------------------------------
    def weighted(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """Σ of the terms with the weights of Eq. 8. Cycle/identity image terms already carry λ_cycle, λ_idt and
        their LPIPS weights; the identity caption and reflectance terms also get λ_idt when
        ``loss.idt_weights_semantic`` (Eq. 7, paper) — weight 1 otherwise (released code)."""
        w = self.config.loss
        total = torch.zeros((), device=next(iter(terms.values())).device)
        for name, value in terms.items():
            if name.startswith("caption"):
                scale = w.caption
            elif name.startswith("reflectance"):
                scale = w.reflectance
            elif name.startswith(("gan", "d_")):
                scale = w.gan
            else:
                scale = 1.0
            if w.idt_weights_semantic and name.startswith(("caption_idt", "reflectance_idt")):
                scale *= w.idt
            total = total + scale * _at_least_fp32(value)
        return total


# ----------------------------------------------------------------------------------------------------------------
def update_seed(seed: int, step: int, micro: int, rank: int, update: int) -> int:
    """The seed of one update's random draws: a 63-bit number from the integers (same in any process, any run)."""
    parts = [seed, step, micro, rank, update]
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def official_param_list(gen: SCUFGenerator) -> list[nn.Parameter]:
    """The generator's trainable parameters listed as the released code lists them for its optimiser: each VAE's
    LoRA factors followed by its skip convs' parameters again (lighten, darken), then the reflectance decoder's
    LoRA factors followed by the DARKEN decoder's skip convs once more (its typo), then projection and adapter.
    Frozen entries are left out (they never get a gradient). The same set as `trainable_parameters()`."""
    out: list[nn.Parameter] = []

    def skip_params(vae: nn.Module) -> list[nn.Parameter]:
        return [p for conv in vae.decoder.skip_convs() for p in conv.parameters() if p.requires_grad]

    for vae in (gen.vae_l, gen.vae_d):
        out += [p for n, p in vae.named_parameters() if "lora_" in n and p.requires_grad]
        out += skip_params(vae)
    if gen.reflect is not None:
        out += [p for n, p in gen.reflect.decoder.named_parameters() if "lora_" in n and p.requires_grad]
        out += skip_params(gen.vae_d)
    for module in (gen.projection, gen.adapter):
        if module is not None:
            out += [p for p in module.parameters() if p.requires_grad]
    if gen.config.unet_lora:
        out += [p for n, p in gen.unet.named_parameters() if "lora_" in n and p.requires_grad]
    if {id(p) for p in out} != {id(p) for p in gen.trainable_parameters()}:
        raise RuntimeError("the official parameter list does not cover the trainable set")  # a bug, not user input
    return out
