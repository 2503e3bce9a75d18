"""Physically based low-light synthesis for GEFU-mini (in the spirit of the SID / MAET degradation pipelines).

sRGB → linear light (inverse sRGB transfer) → exposure scale k → optional per-channel white-balance cast →
shot noise (Poisson at a photon scale) + Gaussian read noise, in linear space → back to sRGB → 8-bit
quantisation. Every random draw comes from a generator seeded by the caller, so a (photo, level, seed) triple
always gives the same dark image.
"""

from __future__ import annotations

import torch

#: Named darkness levels → exposure scale (fraction of the original light).
LEVELS: dict[str, float] = {"dim": 0.25, "dark": 0.12, "night": 0.05}


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """Inverse sRGB transfer function, [0, 1] → [0, 1]."""
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """sRGB transfer function, [0, 1] → [0, 1]."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


def darken(
    img: torch.Tensor,
    exposure: float = 0.12,
    seed: int = 0,
    noise: bool = True,
    cast: bool = True,
    photons: float = 400.0,
    read_noise: float = 0.002,
) -> torch.Tensor:
    """Simulate a low-light capture of a normal-light photo.

    img: (3, H, W) or (N, 3, H, W) float in [0, 1]. `exposure` is the fraction of light kept (0.05–0.3 is dark);
    `photons` is the photon count of a full-scale pixel at the ORIGINAL exposure (shot-noise strength); `read_noise`
    the std of Gaussian read noise in linear units. Returns the same shape, float32, quantised to 8-bit levels.
    """
    if not 0.0 < exposure <= 1.0:
        raise ValueError(f"exposure must be in (0, 1], got {exposure}")
    g = torch.Generator().manual_seed(int(seed))
    x = img.detach().float().cpu()
    lin = srgb_to_linear(x) * exposure
    if cast:
        shape = (3, 1, 1) if x.ndim == 3 else (x.shape[0], 3, 1, 1)
        lin = lin * (0.9 + 0.2 * torch.rand(shape, generator=g))
    if noise:
        lam = lin.clamp_min(0) * photons  # expected photon count
        lin = torch.poisson(lam, generator=g) / photons
        lin = lin + read_noise * torch.randn(lin.shape, generator=g)
    out = linear_to_srgb(lin.clamp(0.0, 1.0))
    return (torch.round(out * 255.0) / 255.0).to(torch.float32)
