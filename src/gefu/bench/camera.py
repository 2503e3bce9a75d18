"""A camera-faithful low-light capture for GEFU-mini: unprocess an sRGB photo to linear camera space, light it
dimly and unevenly, add sensor noise, and develop it back to 8-bit sRGB (in the spirit of Brooks et al., CVPR 2019,
"Unprocessing images for learned raw denoising"; the parameters are gefu's own).

    sRGB photo ──unprocess──▶ raw (linear camera RGB, white-balanced out)
        raw · illumination(x, y) · exposure · cast[c]          the dim, uneven, tinted light
        Poisson shot noise (gain `shot`) + Gaussian read noise (variance `read`), clipped to [0, 1]
    ──process──▶ sRGB, 8-bit                                   white balance, colour matrix, sRGB curve, tone curve

`process(unprocess(x)) == x` for every 8-bit photo (up to float rounding): nothing in between clips a photo's own
values (the camera matrix has no negative entries, the white-balance gains are ≥ 1). The `oracle` reference
divides the noisy capture, in the same raw space, by the exact gain map (illumination × exposure × cast): a
perfect exposure and colour correction that leaves the noise where it is.

The exposure, colour cast and noise parameters come from real LOL-v1 pairs: `LOL_V1_FIT` holds the values that
`benchmarks/calibrate_degradation.py` fitted (see `gefu.bench.calibrate` for the statistics); the spatial
illumination is a design choice, not a fit (a LOL pair shares its lighting, so it has nothing to say about it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .degrade import linear_to_srgb, srgb_to_linear


# ----------------------------------------------------------------------------------------------------------------
# The camera: white balance, colour matrix, sRGB transfer, tone curve
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Camera:
    """A fixed, plausible camera. `rgb2cam` maps linear sRGB to camera RGB (rows sum to 1, so grey stays grey,
    entries ≥ 0, so a photo never goes negative); `wb_gains` are the daylight white-balance gains (R, G, B) the
    camera applies to its raw values (raw is greenish before them, as a real sensor's)."""

    rgb2cam: tuple[tuple[float, float, float], ...] = ((0.76, 0.20, 0.04), (0.08, 0.84, 0.08), (0.03, 0.24, 0.73))
    wb_gains: tuple[float, float, float] = (2.0, 1.0, 1.6)

    def matrices(self, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        m = torch.tensor(self.rgb2cam, dtype=dtype)
        return m, torch.linalg.inv(m)

    def gains(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        return torch.tensor(self.wb_gains, dtype=dtype).view(3, 1, 1)


CAMERA = Camera()


def tone_curve(x: torch.Tensor) -> torch.Tensor:
    """The camera's global S-shaped tone curve (smoothstep 3x² − 2x³), [0, 1] → [0, 1]."""
    x = x.clamp(0.0, 1.0)
    return 3.0 * x**2 - 2.0 * x**3


def inverse_tone_curve(y: torch.Tensor) -> torch.Tensor:
    """Exact inverse of `tone_curve` on [0, 1]: x = 1/2 − sin(asin(1 − 2y) / 3)."""
    y = y.clamp(0.0, 1.0)
    return 0.5 - torch.sin(torch.asin(1.0 - 2.0 * y) / 3.0)


def _apply_matrix(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(3, 3) colour matrix applied to every pixel of x (..., 3, H, W)."""
    return torch.einsum("ij,...jhw->...ihw", m, x)


def unprocess(img: torch.Tensor, camera: Camera = CAMERA) -> torch.Tensor:
    """sRGB (3, H, W) or (N, 3, H, W) in [0, 1] → linear camera raw (same shape, float64, ≥ 0).

    Inverse tone curve → inverse sRGB transfer → sRGB-to-camera matrix → inverse white balance.
    """
    m, _ = camera.matrices()
    lin = srgb_to_linear(inverse_tone_curve(img.double()))
    return _apply_matrix(m, lin) / camera.gains()


def process(raw: torch.Tensor, camera: Camera = CAMERA) -> torch.Tensor:
    """Linear camera raw → sRGB in [0, 1] (float64, not quantised): white balance → camera-to-sRGB matrix →
    clip to [0, 1] → sRGB transfer → tone curve. The exact inverse of `unprocess` on a photo's own values."""
    _, minv = camera.matrices()
    lin = _apply_matrix(minv, raw.double() * camera.gains()).clamp(0.0, 1.0)
    return tone_curve(linear_to_srgb(lin))


def quantize(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] → the nearest 8-bit level, float32 (what a saved PNG holds)."""
    return (torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0).to(torch.float32)


# ----------------------------------------------------------------------------------------------------------------
# The low-light capture
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LowLight:
    """One darkness level. `exposure`: mean fraction of the light kept (raw space); `cast`: per-channel factor of
    the light's colour relative to the daylight the camera white-balances for (R, G, B; G = 1); `shot`: Poisson
    gain (raw units per photo-electron: variance = shot · signal); `read`: Gaussian read-noise variance (raw
    units²); `illumination`: max/min ratio of the smooth light field over the frame (1 = even light)."""

    exposure: float
    cast: tuple[float, float, float]
    shot: float
    read: float
    illumination: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.exposure <= 1.0:
            raise ValueError(f"exposure must be in (0, 1], got {self.exposure}")
        if self.shot < 0 or self.read < 0 or self.illumination < 1.0 or min(self.cast) <= 0:
            raise ValueError(f"invalid low-light parameters {self}")


def illumination_field(h: int, w: int, ratio: float, generator: torch.Generator, pools: int = 3) -> torch.Tensor:
    """A smooth light field (H, W), mean 1, max/min = `ratio`: a few broad Gaussian pools of light (lamps,
    windows) over a dim ambient floor, at seeded random places and sizes (float64)."""
    if ratio <= 1.0:
        return torch.ones(h, w, dtype=torch.float64)
    ys = torch.linspace(0, 1, h, dtype=torch.float64)[:, None]
    xs = torch.linspace(0, 1, w, dtype=torch.float64)[None, :]
    f = torch.zeros(h, w, dtype=torch.float64)
    p = torch.rand(pools, 4, generator=generator, dtype=torch.float64)  # cy, cx, size, strength
    for cy, cx, size, strength in p.tolist():
        s = 0.25 + 0.35 * size  # pool radius, in frame units
        f += (0.5 + 0.5 * strength) * torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * s * s))
    f = (f - f.min()) / (f.max() - f.min()).clamp_min(1e-12)  # [0, 1]
    f = 1.0 + (ratio - 1.0) * f  # [1, ratio]
    return f / f.mean()


def gain_map(h: int, w: int, level: LowLight, generator: torch.Generator) -> torch.Tensor:
    """(3, H, W) float64: illumination × exposure × cast, the per-pixel factor applied to the raw image."""
    field_ = illumination_field(h, w, level.illumination, generator)
    cast = torch.tensor(level.cast, dtype=torch.float64).view(3, 1, 1)
    return field_[None] * level.exposure * cast


def add_sensor_noise(raw: torch.Tensor, shot: float, read: float, generator: torch.Generator) -> torch.Tensor:
    """Poisson shot noise (variance shot · signal) plus Gaussian read noise (variance `read`), clipped to [0, 1]."""
    x = raw.clamp_min(0.0)
    if shot > 0:
        x = torch.poisson(x / shot, generator=generator) * shot
    if read > 0:
        x = x + math.sqrt(read) * torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return x.clamp(0.0, 1.0)


@dataclass
class Capture:
    """A simulated low-light capture: the 8-bit image, the exact gain map that darkened it, and the oracle."""

    image: torch.Tensor  # (3, H, W) float32, 8-bit levels
    gain: torch.Tensor  # (3, H, W) float64
    meta: dict = field(default_factory=dict)


def capture(img: torch.Tensor, level: LowLight, seed: int, camera: Camera = CAMERA, noise: bool = True,
            quantise: bool = True) -> Capture:
    """Simulate shooting the scene of `img` (3, H, W) sRGB in [0, 1] under `level`'s light with `camera`.

    noise=False / quantise=False turn off the sensor noise / 8-bit rounding (for tests of the exact inverse)."""
    g = torch.Generator().manual_seed(int(seed))
    raw = unprocess(img, camera)  # (3, H, W)
    gain = gain_map(img.shape[-2], img.shape[-1], level, g)
    dark = raw * gain
    if noise:
        dark = add_sensor_noise(dark, level.shot, level.read, g)
    out = process(dark, camera)
    return Capture(quantize(out) if quantise else out.float(), gain)


def oracle(captured: torch.Tensor, gain: torch.Tensor, camera: Camera = CAMERA, quantise: bool = True) -> torch.Tensor:
    """The exact inverse of the exposure, illumination and colour cast applied to a capture (3, H, W): back to
    raw, divided by the gain map, developed again. The noise stays (amplified by the same gain)."""
    out = process(unprocess(captured, camera) / gain, camera)
    return quantize(out) if quantise else out.float()


# ----------------------------------------------------------------------------------------------------------------
# Calibrated levels
# ----------------------------------------------------------------------------------------------------------------

#: Fitted on the 15 real LOL-v1 eval15 pairs by `benchmarks/calibrate_degradation.py` (values and the LOL
#: statistics they reproduce: `benchmarks/degradation_fit.json`). Do not edit by hand: rerun the script.
LOL_V1_FIT: dict[str, float | tuple[float, float, float]] = {
    "exposure_p10": 0.049878,
    "exposure_p50": 0.094119,
    "exposure_p90": 0.13574,
    "cast": (0.9601, 1.0, 0.9862),
    "shot": 3.333e-05,
    "read": 1.059e-06,
}

#: Max/min ratio of GEFU-mini's light field over a frame. A design choice, not fitted (see the module doc): light
#: pools four times brighter than the darkest corner, as under a street lamp or a window.
ILLUMINATION_RATIO = 4.0


def mini_levels(fit: dict = LOL_V1_FIT, illumination: float = ILLUMINATION_RATIO) -> dict[str, LowLight]:
    """GEFU-mini's darkness levels: the 90th, 50th and 10th percentiles of LOL-v1's exposures (dim, dark,
    night), LOL-v1's median colour cast and sensor noise, and an uneven light field."""
    common = dict(cast=tuple(fit["cast"]), shot=float(fit["shot"]), read=float(fit["read"]), illumination=illumination)
    return {"dim": LowLight(float(fit["exposure_p90"]), **common),
            "dark": LowLight(float(fit["exposure_p50"]), **common),
            "night": LowLight(float(fit["exposure_p10"]), **common)}
