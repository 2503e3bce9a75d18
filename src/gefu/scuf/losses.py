"""SCUF's training losses, one small function per term (paper Eq. 4–8, DESIGN §2.4–2.6), and their weights.

Conventions: generator images are in [-1, 1] (B, 3, H, W); reflectance maps in [0, 1] (B, 3, H, W); latents are
the one-step x0 latents (B, 4, h, w). Every function returns a scalar tensor (mean over the batch).

The paper's objective (Eq. 7 defines the identity term, Eq. 8 the total)::

    L_idt = L1_idt + L_cap,idt + L_ref,idt                                                  (Eq. 7)
    L     = L_cycle + L_cap + L_ref + λ_idt·L_idt + λ_GAN·L_GAN                             (Eq. 8)

so the identity caption and reflectance terms are weighted by λ_idt too (``LossWeights.idt_weights_semantic``,
True in the paper preset). The released code weights only the identity L1/LPIPS by λ_idt and adds the identity
caption and reflectance terms with weight 1 (``idt_weights_semantic=False``).

``LossWeights`` holds every weight; ``LOSS_PRESETS`` has the paper's (λ_idt 0.5, λ_GAN 1, L1 only) and the
official code's (λ_gan 0.5, λ_idt 1, cycle LPIPS-vgg 10, identity LPIPS 1, ``1 − SSIM`` on the reflectance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..metrics import ssim
from .fields import check_fields, option, to_dict

__all__ = [
    "LossWeights",
    "LOSS_PRESETS",
    "GAN_LOSSES",
    "reconstruction_loss",
    "cycle_loss",
    "identity_loss",
    "generator_gan_loss",
    "discriminator_loss",
    "caption_consistency_loss",
    "reflectance_loss",
    "ssim_loss",
]

GAN_LOSSES = ("multilevel_sigmoid", "hinge")


@dataclass
class LossWeights:
    """Weights of every loss term. Defaults = the paper (Eq. 7–8)."""

    SECTION: ClassVar[str] = "loss"

    cycle: float = option(1.0, ge=0)  # L1 of the cycle reconstructions (λ_cycle, 1 in both paper and code)
    cycle_lpips: float = option(0.0, ge=0)  # LPIPS-vgg of the cycle reconstructions (official: 10)
    idt: float = option(0.5, ge=0)  # λ_idt on the identity terms (official: 1)
    idt_lpips: float = option(0.0, ge=0)  # LPIPS-vgg of the identity outputs (official: 1)
    # Eq. 7–8: λ_idt also weights the identity caption and reflectance terms (paper). False: they get weight 1
    # and λ_idt weights only the identity L1/LPIPS (official code).
    idt_weights_semantic: bool = True
    gan: float = option(1.0, ge=0)  # λ_GAN, generator and discriminator sides (official: 0.5)
    caption: float = option(1.0, ge=0)  # L_cap, caption consistency (0 switches it off: Table 5 rows 1, 2, 8)
    reflectance: float = option(1.0, ge=0)  # L_ref, reflectance consistency (0 switches it off: rows 1-3)
    reflectance_ssim: bool = False  # add 1 − SSIM(R_d, R_teacher) to the L1 term (official: True)
    gan_loss: str = option("multilevel_sigmoid", choices=GAN_LOSSES)

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def needs_lpips(self) -> bool:
        return self.cycle_lpips > 0 or self.idt_lpips > 0

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


LOSS_PRESETS: dict[str, LossWeights] = {
    "paper": LossWeights(),
    "official": LossWeights(
        cycle=1.0, cycle_lpips=10.0, idt=1.0, idt_lpips=1.0, gan=0.5, caption=1.0, reflectance=1.0,
        reflectance_ssim=True, idt_weights_semantic=False,
    ),
}


# ----------------------------------------------------------------------------------------------------------------
# Image reconstruction terms
# ----------------------------------------------------------------------------------------------------------------


def reconstruction_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    l1_weight: float = 1.0,
    lpips_net: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    lpips_weight: float = 0.0,
) -> torch.Tensor:
    """``l1_weight·L1(pred, target) + lpips_weight·LPIPS(pred, target)``, images (B, 3, H, W) in [-1, 1].

    ``lpips_net`` is an ``lpips.LPIPS`` module (inputs in [-1, 1], output (B, 1, 1, 1)); it is only called when
    ``lpips_weight > 0``.
    """
    loss = l1_weight * F.l1_loss(pred, target)
    if lpips_weight > 0:
        if lpips_net is None:
            raise ValueError("an LPIPS weight > 0 needs an LPIPS network (lpips_net)")
        loss = loss + lpips_weight * lpips_net(pred, target).mean()
    return loss


def cycle_loss(
    reconstruction: torch.Tensor,
    original: torch.Tensor,
    weights: LossWeights,
    lpips_net: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """One direction of the cycle term: ``f_d(f_l(I_l))`` vs ``I_l`` (or ``f_l(f_d(I_n))`` vs ``I_n``)."""
    return reconstruction_loss(reconstruction, original, weights.cycle, lpips_net, weights.cycle_lpips)


def identity_loss(
    output: torch.Tensor,
    original: torch.Tensor,
    weights: LossWeights,
    lpips_net: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """One identity term: ``f_d(I_l, V(I_l))`` vs ``I_l`` (or ``f_l(I_n, V(I_n))`` vs ``I_n``), weighted by λ_idt."""
    return reconstruction_loss(output, original, weights.idt, lpips_net, weights.idt_lpips)


# ----------------------------------------------------------------------------------------------------------------
# Adversarial terms
# ----------------------------------------------------------------------------------------------------------------


def generator_gan_loss(
    discriminator: nn.Module, fake: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Generator side: the discriminator of the target domain should call ``fake`` (in [-1, 1]) real."""
    return discriminator.loss(fake, "generator", generator=generator)


def discriminator_loss(
    discriminator: nn.Module,
    real: torch.Tensor | None = None,
    fake: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Discriminator side: real images → real, generated images (detached here) → fake. Either may be omitted."""
    loss = torch.zeros((), device=(real if real is not None else fake).device)
    if fake is not None:
        loss = loss + discriminator.loss(fake.detach(), "fake", generator=generator)
    if real is not None:
        loss = loss + discriminator.loss(real, "real", generator=generator)
    return loss


# ----------------------------------------------------------------------------------------------------------------
# Semantic terms
# ----------------------------------------------------------------------------------------------------------------


def caption_consistency_loss(z: torch.Tensor, z_caption: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """``1 − cos(z, z_caption)``, cosine over the channel dimension per latent pixel, averaged (Eq. 4).

    z, z_caption: (B, C, h, w). Identical latents → 0, orthogonal → 1, opposite → 2.
    """
    if z.shape != z_caption.shape:
        raise ValueError(f"latent shapes differ: {tuple(z.shape)} vs {tuple(z_caption.shape)}")
    return 1.0 - F.cosine_similarity(z, z_caption, dim=1, eps=eps).mean()


def ssim_loss(x: torch.Tensor, y: torch.Tensor, data_range: float | None = 1.0) -> torch.Tensor:
    """``1 − SSIM(x, y)`` for images in [0, 1] (Gaussian 11, σ 1.5, valid window), averaged over the batch.

    ``data_range=None`` takes it from the images as torchmetrics does (what the released code calls):
    ``max(x.max() − x.min(), y.max() − y.min())``, a tensor through which the gradient also flows. For maps in
    [0, 1] that are not full-range this raises the SSIM constants' effective weight less than ``1.0`` does.
    """
    if data_range is None:
        data_range = torch.maximum(x.max() - x.min(), y.max() - y.min())
    return 1.0 - ssim(x, y, data_range=data_range).mean().to(x.dtype)


def reflectance_loss(
    r_back: torch.Tensor,
    r_teacher: torch.Tensor,
    r_forward: torch.Tensor | None = None,
    use_ssim: bool = False,
    *,
    detach_back: bool = False,
    ssim_data_range: float | None = 1.0,
) -> torch.Tensor:
    """Reflectance consistency (Eq. 5), maps (B, 3, H, W) in [0, 1].

    Cycle: ``MSE(R_forward, R_back) + L1(R_back, R_teacher)`` where ``R_forward`` decodes the first pass's latent
    and ``R_back`` the second's; identity: pass ``r_forward=None`` for the L1 term alone. ``use_ssim`` adds
    ``1 − SSIM(R_back, R_teacher)`` (official code; ``ssim_data_range`` as in ``ssim_loss``). The teacher is
    treated as a constant (detached).

    ``detach_back`` (released code): the MSE target ``R_back`` is detached, so the consistency term pulls only
    ``R_forward`` (and what produced it) towards the back pass; Eq. 5 lets both sides move (default).
    """
    r_teacher = r_teacher.detach()
    loss = F.l1_loss(r_back, r_teacher)
    if use_ssim:
        loss = loss + ssim_loss(r_back, r_teacher, ssim_data_range)
    if r_forward is not None:
        loss = loss + F.mse_loss(r_forward, r_back.detach() if detach_back else r_back)
    return loss
