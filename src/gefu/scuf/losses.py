"""SCUF's training losses, one small function per term (paper Eq. 4–8, DESIGN §2.4–2.6), and their weights.

Conventions: generator images are in [-1, 1] (B, 3, H, W); reflectance maps in [0, 1] (B, 3, H, W); latents are
the one-step x0 latents (B, 4, h, w). Every function returns a scalar tensor (mean over the batch).

    L = L_cycle + L_cap + L_ref + λ_idt·L_idt + λ_GAN·L_GAN                                   (Eq. 6)

``LossWeights`` holds every weight; ``LOSS_PRESETS`` has the paper's (Eq. 8: λ_idt 0.5, λ_GAN 1, L1 only) and the
official code's (λ_gan 0.5, λ_idt 1, cycle LPIPS-vgg 10, identity LPIPS 1, ``1 − SSIM`` on the reflectance).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..metrics import ssim

__all__ = [
    "LossWeights",
    "LOSS_PRESETS",
    "reconstruction_loss",
    "cycle_loss",
    "identity_loss",
    "generator_gan_loss",
    "discriminator_loss",
    "caption_consistency_loss",
    "reflectance_loss",
    "ssim_loss",
]


@dataclass
class LossWeights:
    """Weights of every loss term. Defaults = the paper (Eq. 8)."""

    cycle: float = 1.0  # L1 of the cycle reconstructions (λ_cycle, 1 in both paper and code)
    cycle_lpips: float = 0.0  # LPIPS-vgg of the cycle reconstructions (official: 10)
    idt: float = 0.5  # λ_idt on the identity L1 (official: 1)
    idt_lpips: float = 0.0  # LPIPS-vgg of the identity outputs (official: 1)
    gan: float = 1.0  # λ_GAN, generator and discriminator sides (official: 0.5)
    caption: float = 1.0  # L_cap, caption consistency (0 switches it off: Table 5 rows 1, 2, 8)
    reflectance: float = 1.0  # L_ref, reflectance consistency (0 switches it off: rows 1-3)
    reflectance_ssim: bool = False  # add 1 − SSIM(R_d, R_teacher) to the L1 term (official: True)
    gan_loss: str = "multilevel_sigmoid"  # or "hinge"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type in ("float", float):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError(f"loss weight {f.name!r} must be a number ≥ 0; got {value!r}")
                setattr(self, f.name, float(value))
        if not isinstance(self.reflectance_ssim, bool):
            raise ValueError(f"reflectance_ssim must be true or false; got {self.reflectance_ssim!r}")
        if self.gan_loss not in ("multilevel_sigmoid", "hinge"):
            raise ValueError(f"gan_loss must be 'multilevel_sigmoid' or 'hinge'; got {self.gan_loss!r}")

    @property
    def needs_lpips(self) -> bool:
        return self.cycle_lpips > 0 or self.idt_lpips > 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


LOSS_PRESETS: dict[str, LossWeights] = {
    "paper": LossWeights(),
    "official": LossWeights(
        cycle=1.0, cycle_lpips=10.0, idt=1.0, idt_lpips=1.0, gan=0.5, caption=1.0, reflectance=1.0,
        reflectance_ssim=True,
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


def ssim_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``1 − SSIM(x, y)`` for images in [0, 1] (Gaussian 11, σ 1.5), averaged over the batch."""
    return 1.0 - ssim(x, y, data_range=1.0).mean().to(x.dtype)


def reflectance_loss(
    r_back: torch.Tensor,
    r_teacher: torch.Tensor,
    r_forward: torch.Tensor | None = None,
    use_ssim: bool = False,
) -> torch.Tensor:
    """Reflectance consistency (Eq. 5), maps (B, 3, H, W) in [0, 1].

    Cycle: ``MSE(R_forward, R_back) + L1(R_back, R_teacher)`` where ``R_forward`` decodes the first pass's latent
    and ``R_back`` the second's; identity: pass ``r_forward=None`` for the L1 term alone. ``use_ssim`` adds
    ``1 − SSIM(R_back, R_teacher)`` (official code). The teacher is treated as a constant (detached).
    """
    r_teacher = r_teacher.detach()
    loss = F.l1_loss(r_back, r_teacher)
    if use_ssim:
        loss = loss + ssim_loss(r_back, r_teacher)
    if r_forward is not None:
        loss = loss + F.mse_loss(r_forward, r_back)
    return loss
