"""GEFU-mini's camera model: the pipeline inverts exactly, the noise has the variance it claims, the oracle undoes
exposure and cast exactly, and the calibration recovers known parameters and reproduces the real LOL-v1 statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from _shared import SHARED_DATA, needs_shared_data
from gefu import metrics
from gefu.bench import camera
from gefu.bench.calibrate import calibrate, fit_noise, pair_statistics, simulate_like
from gefu.imageio import load_image
from gefu.samples import load_sample


def _small(name: str, h: int = 120, w: int = 160) -> torch.Tensor:
    img = F.interpolate(load_sample(name)[None], size=(h, w), mode="area")[0]
    return (img.clamp(0, 1) * 255).round() / 255


def test_tone_curve_inverse_is_exact():
    y = torch.linspace(0, 1, 1001, dtype=torch.float64)
    assert torch.allclose(camera.tone_curve(camera.inverse_tone_curve(y)), y, atol=1e-12)
    # smoothstep by hand at a few points
    x = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64)
    assert torch.allclose(camera.tone_curve(x), torch.tensor([0, 0.15625, 0.5, 0.84375, 1], dtype=torch.float64))


def test_process_inverts_unprocess_on_a_photo():
    img = _small("coffee")
    raw = camera.unprocess(img)
    assert raw.min() >= 0 and raw.max() <= 1  # nothing a photo holds is clipped on the way
    back = camera.process(raw)
    assert torch.allclose(back, img.double(), atol=1e-9)
    assert torch.equal(camera.quantize(back), img)
    # Raw is greenish before white balance (a real sensor's look): the camera's gains are ≥ 1 on R and B.
    grey = camera.unprocess(torch.full((3, 2, 2), 0.5))
    assert grey[1].mean() > grey[0].mean() and grey[1].mean() > grey[2].mean()


def test_oracle_undoes_exposure_light_field_and_cast_exactly_without_noise():
    img = _small("chelsea")
    level = camera.LowLight(exposure=0.05, cast=(0.8, 1.0, 1.2), shot=1e-4, read=1e-6, illumination=4.0)
    cap = camera.capture(img, level, seed=3, noise=False, quantise=False)
    assert float(cap.image.mean()) < 0.35 * float(img.mean())  # it is dark
    f = cap.gain.mean(dim=0)  # the light field is uneven, max/min = 4
    assert float(f.max() / f.min()) == pytest.approx(4.0, rel=1e-6)
    assert torch.allclose(camera.oracle(cap.image.double(), cap.gain, quantise=False).double(), img.double(),
                          atol=1e-5)
    # With noise the oracle keeps the noise: it brightens, but does not restore the photo.
    noisy = camera.capture(img, level, seed=3)
    restored = camera.oracle(noisy.image, noisy.gain)
    assert abs(float(restored.mean() - img.mean())) < 0.05 and not torch.equal(restored, img)


def test_sensor_noise_has_the_poisson_gaussian_variance():
    g = torch.Generator().manual_seed(0)
    shot, read = 2e-4, 4e-6
    for mu in (0.005, 0.05):
        x = camera.add_sensor_noise(torch.full((200_000,), mu, dtype=torch.float64), shot, read, g).numpy()
        assert x.mean() == pytest.approx(mu, rel=0.01)
        assert x.var() == pytest.approx(shot * mu + read, rel=0.03)


def test_capture_is_seeded_and_levels_are_ordered():
    img = _small("astronaut")
    lv = camera.mini_levels()
    assert list(lv) == ["dim", "dark", "night"]
    assert lv["dim"].exposure > lv["dark"].exposure > lv["night"].exposure
    a, b = camera.capture(img, lv["dark"], seed=1), camera.capture(img, lv["dark"], seed=1)
    assert torch.equal(a.image, b.image)
    assert not torch.equal(a.image, camera.capture(img, lv["dark"], seed=2).image)
    means = [float(camera.capture(img, lv[k], seed=1).image.mean()) for k in lv]
    assert means[0] > means[1] > means[2] > 0


def test_calibration_recovers_known_parameters():
    """Pairs simulated with known exposure, cast and noise: the statistics give back the exposure and cast, and
    the simulate-and-match loop gives back the noise (which the raw estimator alone gets wrong)."""
    truth = camera.LowLight(exposure=0.08, cast=(0.9, 1.0, 1.1), shot=4e-5, read=1e-6)
    highs = [_small(n, 160, 240) for n in ("coffee", "chelsea", "rocket", "astronaut")]
    pairs = [(camera.capture(h, truth, seed=10 + i).image, h) for i, h in enumerate(highs)]
    st = [pair_statistics(lo, hi) for lo, hi in pairs]
    for s in st:
        assert s.exposure[1] == pytest.approx(0.08, rel=0.03)
        assert s.exposure[0] / s.exposure[1] == pytest.approx(0.9, rel=0.03)
        assert s.exposure[2] / s.exposure[1] == pytest.approx(1.1, rel=0.03)
    res = calibrate(pairs, rounds=3)
    assert res["fit"]["shot"] == pytest.approx(4e-5, rel=0.2)
    assert res["fit"]["read"] == pytest.approx(1e-6, rel=0.2)


def test_fit_noise_least_squares_by_hand():
    from gefu.bench.calibrate import PairStats

    mean = np.array([0.01, 0.02, 0.03])
    s = PairStats(np.ones(3), mean, 3e-4 * mean + 2e-6, np.full(3, 1000.0))
    shot, read = fit_noise([s])
    assert shot == pytest.approx(3e-4) and read == pytest.approx(2e-6)


LOL = SHARED_DATA / "lol-v1" / "eval15"


@needs_shared_data("lol-v1", "eval15", "low")
def test_fitted_constants_reproduce_the_lol_v1_statistics():
    """LOL_V1_FIT (written by benchmarks/calibrate_degradation.py) against LOL-v1 eval15 measured now: the exposure
    percentiles and cast are the real ones, and simulated low shots of the real high shots with the fitted noise
    give the real noise curve (whole frames: the noise of an ISP depends on content, so crops do not do)."""
    fit = camera.LOL_V1_FIT
    pairs = [(load_image(p), load_image(LOL / "high" / p.name)) for p in sorted((LOL / "low").iterdir())]
    real = [pair_statistics(lo, hi) for lo, hi in pairs]
    green = np.array([s.exposure[1] for s in real])
    for q, key in ((0.1, "exposure_p10"), (0.5, "exposure_p50"), (0.9, "exposure_p90")):
        assert float(np.quantile(green, q)) == pytest.approx(fit[key], rel=1e-3)
    cast = np.median([s.exposure / s.exposure[1] for s in real], axis=0)
    assert cast == pytest.approx(np.array(fit["cast"]), abs=1e-3)
    lows = [simulate_like(hi, s.exposure, fit["shot"], fit["read"], seed=500 + i)
            for i, ((_, hi), s) in enumerate(zip(pairs, real))]
    sim = [pair_statistics(lo, hi) for lo, (_, hi) in zip(lows, pairs)]
    real_shot, real_read = fit_noise(real)
    sim_shot, sim_read = fit_noise(sim)
    assert sim_shot == pytest.approx(real_shot, rel=0.1)
    assert sim_read == pytest.approx(real_read, rel=0.1)
    # and the simulated low shots are as far from the high shots as the real ones (input PSNR 7.77 dB)
    psnr_real = np.mean([float(metrics.psnr(lo[None], hi[None])[0]) for lo, hi in pairs])
    psnr_sim = np.mean([float(metrics.psnr(lo[None], hi[None])[0]) for lo, (_, hi) in zip(lows, pairs)])
    assert psnr_sim == pytest.approx(psnr_real, abs=0.2)
