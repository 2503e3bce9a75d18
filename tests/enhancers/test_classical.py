"""Classic enhancers: brightening on a real darkened photo, hand-worked values, LIME's refinement against an
independent sparse solve, DUAL's fusion, colour preservation of HE / CLAHE."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from skimage.color import rgb2hsv

from gefu import create_enhancer
from gefu.bench.degrade import darken
from gefu.enhancers import classical as C
from gefu.enhancers.lime import _solve_multires
from gefu.samples import load_sample

CLASSIC = ["gamma", "he", "clahe", "msrcr", "lime", "dual"]


def _np(img: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) tensor → (H, W, 3) float32 array."""
    return img[0].permute(1, 2, 0).numpy().astype(np.float32)


@pytest.fixture(scope="module")
def dark(dark_photo: torch.Tensor) -> np.ndarray:
    return _np(dark_photo)


@pytest.fixture(scope="module")
def small_dark(dark_photo: torch.Tensor) -> np.ndarray:
    """The dark photo at 24×32 (area downscaling), for exact solves."""
    small = torch.nn.functional.interpolate(dark_photo, size=(24, 32), mode="area")
    return _np(small)


# ----------------------------------------------------------------------------------------------------------
# every classic enhancer brightens a dark real photo
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CLASSIC)
def test_brightens_dark_photo(name: str, dark_photo: torch.Tensor) -> None:
    out = create_enhancer(name)(dark_photo)
    assert out.shape == dark_photo.shape and out.dtype == dark_photo.dtype
    assert out.min() >= 0 and out.max() <= 1
    lum_in = dark_photo.mean(1).flatten()
    lum_out = out.mean(1).flatten()
    assert lum_out.mean() > lum_in.mean() + 0.05
    # the dark regions get brighter too, not only the mean
    assert torch.quantile(lum_out, 0.10) > torch.quantile(lum_in, 0.10)
    assert torch.quantile(lum_out, 0.25) > torch.quantile(lum_in, 0.25)


def test_none_is_identity(dark_photo: torch.Tensor) -> None:
    assert torch.equal(create_enhancer("none")(dark_photo), dark_photo)


# ----------------------------------------------------------------------------------------------------------
# gamma, HE, CLAHE
# ----------------------------------------------------------------------------------------------------------


def test_gamma_hand_worked() -> None:
    x = torch.tensor([0.0, 0.25, 0.0625, 1.0]).view(1, 1, 2, 2).expand(1, 3, 2, 2).contiguous()
    out = create_enhancer("gamma", gamma=0.5)(x)
    assert torch.allclose(out[0, 0], torch.tensor([[0.0, 0.5], [0.25, 1.0]]), atol=1e-6)
    assert create_enhancer("gamma").options == {"gamma": 0.4}  # the default brightens
    with pytest.raises(ValueError, match="gamma"):
        C.gamma_correction(np.zeros((1, 1, 3), np.float32), gamma=0.0)


def test_he_hand_worked() -> None:
    # V = max(R, G, B) = 0.1, 0.1, 0.5, 0.9 → cdf 2, 2, 3, 4 of 4 → V' = 0, 0, 0.5, 1 (darkest level → 0)
    img = np.array([[[0.1, 0.05, 0.0], [0.1, 0.1, 0.1]], [[0.5, 0.25, 0.0], [0.9, 0.9, 0.45]]], np.float32)
    out = C.histogram_equalization(img)
    expected = np.array([[[0, 0, 0], [0, 0, 0]], [[0.5, 0.25, 0.0], [1.0, 1.0, 0.5]]], np.float32)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def _hue_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Circular hue difference (in turns) on pixels that are colourful and not black in both images."""
    ha, hb = rgb2hsv(a), rgb2hsv(b)
    ok = (ha[..., 1] > 0.3) & (hb[..., 1] > 0.3) & (ha[..., 2] > 0.05) & (hb[..., 2] < 0.99)
    assert ok.sum() > 200
    d = np.abs(ha[..., 0] - hb[..., 0])[ok]
    return np.minimum(d, 1 - d)


def test_he_keeps_hue_and_flattens_value_histogram(dark: np.ndarray) -> None:
    out = C.histogram_equalization(dark)
    assert np.percentile(_hue_error(dark, out), 99) < 1e-3  # only clipping at V' = 1 could change hue
    v = out.max(axis=2).ravel()
    q = np.linspace(0.1, 0.9, 9)
    assert np.abs(np.quantile(v, q) - q).max() < 0.1  # ≈ uniform value distribution


def test_clahe_keeps_hue(dark: np.ndarray) -> None:
    out = C.clahe(dark)
    assert np.median(_hue_error(dark, out)) < 0.02
    assert out.max(axis=2).std() > dark.max(axis=2).std()  # more contrast


# ----------------------------------------------------------------------------------------------------------
# MSRCR
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [15.0, 80.0, 250.0])
def test_fast_gaussian_blur_matches_exact(photo: torch.Tensor, sigma: float) -> None:
    img = _np(photo)
    exact = np.stack([ndi.gaussian_filter(img[..., c], sigma, mode="nearest", truncate=4.0) for c in range(3)], -1)
    fast = C.gaussian_blur(img, sigma)
    assert fast.shape == img.shape
    assert np.abs(fast - exact).max() < 2e-3
    assert np.abs(fast - exact).mean() < 5e-4


def test_msrcr_stretches_each_channel(dark: np.ndarray) -> None:
    out = C.msrcr(dark)
    for c in range(3):  # simplest colour balance: 1 % clipped at each end, the rest spans [0, 1]
        assert np.mean(out[..., c] <= 0.0) == pytest.approx(0.01, abs=0.01)
        assert np.mean(out[..., c] >= 1.0) == pytest.approx(0.01, abs=0.01)


# ----------------------------------------------------------------------------------------------------------
# LIME
# ----------------------------------------------------------------------------------------------------------


def _reference_illumination(img: np.ndarray, alpha: float, strategy: int, sigma: float, eps: float) -> np.ndarray:
    """LIME's refined T built independently: kron difference operators, scipy.ndimage windows, spsolve."""
    t_hat = img.max(axis=2).astype(np.float64)
    h, w = t_hat.shape

    def diff(n: int) -> sp.csr_matrix:  # (n−1, n) forward difference
        return sp.diags([-np.ones(n - 1), np.ones(n - 1)], [0, 1], shape=(n - 1, n), format="csr")

    dh = sp.kron(sp.identity(h), diff(w), format="csr")  # (h(w−1), hw)
    dv = sp.kron(diff(h), sp.identity(w), format="csr")  # ((h−1)w, hw)
    gh, gv = dh @ t_hat.ravel(), dv @ t_hat.ravel()
    if strategy == 1:
        wh, wv = np.ones_like(gh), np.ones_like(gv)
    elif strategy == 2:
        wh, wv = 1 / (np.abs(gh) + eps), 1 / (np.abs(gv) + eps)
    else:  # Σ_Ω G / (|Σ_Ω G ∇T̂| + ε), unnormalised Gaussian, radius ceil(3σ), zero outside the image
        r = int(np.ceil(3 * sigma))
        g1 = np.exp(-(np.arange(-r, r + 1) ** 2) / (2 * sigma**2))
        k = np.outer(g1, g1)
        full_h = np.zeros((h, w)); full_h[:, :-1] = gh.reshape(h, w - 1)
        full_v = np.zeros((h, w)); full_v[:-1] = gv.reshape(h - 1, w)
        mass = ndi.correlate(np.ones((h, w)), k, mode="constant")
        wh = (mass / (np.abs(ndi.correlate(full_h, k, mode="constant")) + eps))[:, :-1].ravel()
        wv = (mass / (np.abs(ndi.correlate(full_v, k, mode="constant")) + eps))[:-1].ravel()
    wh, wv = wh / (np.abs(gh) + eps), wv / (np.abs(gv) + eps)
    a = sp.identity(h * w) + alpha * (dh.T @ sp.diags(wh) @ dh + dv.T @ sp.diags(wv) @ dv)
    return spla.spsolve(a.tocsc(), t_hat.ravel()).reshape(h, w)


@pytest.mark.parametrize("strategy", [1, 2, 3])
@pytest.mark.parametrize("solver", ["direct", "cg"])
def test_lime_illumination_matches_independent_solve(small_dark: np.ndarray, strategy: int, solver: str) -> None:
    ref = _reference_illumination(small_dark, alpha=0.15, strategy=strategy, sigma=2.0, eps=1e-3)
    t = C.lime_illumination(small_dark, alpha=0.15, weight_strategy=strategy, solver=solver)
    assert t.shape == small_dark.shape[:2] and t.dtype == np.float32
    np.testing.assert_allclose(t, ref, atol=2e-5)


@pytest.mark.parametrize("strategy", [2, 3])
def test_lime_cg_tolerance_bounds_the_error(dark_photo: torch.Tensor, strategy: int) -> None:
    # ‖A⁻¹‖_∞ = 1, so max |residual| ≤ tol guarantees max |T_cg − T| ≤ tol (here at 48×64: at 96×128
    # Jacobi-CG needs up to 30 s on a loaded 2-core machine)
    img = _np(torch.nn.functional.interpolate(dark_photo, size=(48, 64), mode="area"))
    exact = C.lime_illumination(img, weight_strategy=strategy, solver="direct")
    approx = C.lime_illumination(img, weight_strategy=strategy, solver="cg", tol=1e-3)
    assert np.abs(approx - exact).max() <= 1e-3 + 1e-6


def test_lime_weight_strategies(small_dark: np.ndarray) -> None:
    t_hat = small_dark.max(axis=2)
    w1, _ = C.lime_weights(t_hat, 1)
    w2, _ = C.lime_weights(t_hat, 2)
    w3, _ = C.lime_weights(t_hat, 3)
    grad = np.abs(np.diff(t_hat.astype(np.float64), axis=1))
    np.testing.assert_allclose(w1, 1 / (grad + 1e-3), rtol=1e-6)  # I: W = 1
    np.testing.assert_allclose(w2, w1**2, rtol=1e-6)  # II: one more 1/(|∇T̂| + ε)
    assert not np.allclose(w3, w2, rtol=0.1)  # III: the gradient is smoothed before the reciprocal
    # stronger weights smooth more: total variation T̂ > T_I > T_II
    tv = [np.abs(np.diff(t, axis=1)).sum() + np.abs(np.diff(t, axis=0)).sum()
          for t in (t_hat, *(C.lime_illumination(small_dark, weight_strategy=s) for s in (1, 2)))]  # fmt: skip
    assert tv[0] > tv[1] > tv[2]
    with pytest.raises(ValueError, match="weight_strategy"):
        C.lime_weights(t_hat, 4)


def test_lime_rejects_bad_options(small_dark: np.ndarray) -> None:
    with pytest.raises(ValueError, match="solver"):
        C.lime_illumination(small_dark, solver="amg")
    with pytest.raises(ValueError, match="eps"):
        C.lime_illumination(small_dark, eps=0.0)


def test_lime_constant_image_keeps_illumination() -> None:
    img = np.full((9, 11, 3), 0.2, np.float32)
    img[..., 0] = 0.25  # T̂ = 0.25 everywhere: no gradient, so T = T̂ and R = I / 0.25^γ
    np.testing.assert_allclose(C.lime_illumination(img), 0.25, atol=1e-6)
    np.testing.assert_allclose(C.lime(img, gamma=0.8), np.clip(img / 0.25**0.8, 0, 1), atol=1e-5)


def test_lime_output_is_input_over_illumination(small_dark: np.ndarray) -> None:
    t = C.lime_illumination(small_dark)
    assert t.min() >= small_dark.max(axis=2).min() - 1e-6 and t.max() <= small_dark.max(axis=2).max() + 1e-6
    out = C.lime(small_dark, gamma=0.8)
    np.testing.assert_allclose(out, np.clip(small_dark / np.maximum(t, 1e-3)[..., None] ** 0.8, 0, 1), atol=1e-5)


def test_lime_denoise_smooths_dark_regions(dark: np.ndarray) -> None:
    plain = C.lime(dark)
    den = C.lime(dark, denoise=True)
    dark_mask = C.lime_illumination(dark) < 0.2
    assert dark_mask.sum() > 100

    def hf(x: np.ndarray) -> float:  # high-frequency energy (Laplacian) in the dark region
        return float(np.abs(ndi.laplace(x.mean(axis=2)))[dark_mask].mean())

    assert hf(den) < 0.8 * hf(plain)


# ----------------------------------------------------------------------------------------------------------
# LIME's multi-resolution solve (the fast default on large images)
# ----------------------------------------------------------------------------------------------------------


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


@pytest.fixture(scope="module", params=["astronaut", "china"])
def dark_150x200(request: pytest.FixtureRequest) -> np.ndarray:
    """A real photo at 150×200, darkened: (150, 200, 3) float32."""
    img = torch.nn.functional.interpolate(load_sample(request.param)[None], size=(150, 200), mode="area")
    return _np(darken(img.clamp(0, 1), exposure=0.1, seed=0))


def test_lime_multires_output_close_to_exact(dark_150x200: np.ndarray) -> None:
    exact = C.lime(dark_150x200, solver="direct")
    fast = C.lime(dark_150x200, solver="multires")
    assert fast.shape == exact.shape and fast.dtype == np.float32
    assert _psnr(fast, exact) > 35.0
    # the α/s scaling matters: keeping α unchanged at half resolution over-smooths visibly
    t_hat = dark_150x200.max(axis=2).astype(np.float64)
    t_same_alpha = _solve_multires(t_hat, 0.3, 3, 2.0, 1e-3, 2.0)  # 2α / 2 = α at half resolution
    t_exact = C.lime_illumination(dark_150x200, solver="direct")
    t_fast = C.lime_illumination(dark_150x200, solver="multires")
    assert np.abs(t_fast - t_exact).mean() < 0.7 * np.abs(t_same_alpha - t_exact).mean()


def test_dual_multires_output_close_to_exact(dark_150x200: np.ndarray) -> None:
    assert _psnr(C.dual(dark_150x200, solver="multires"), C.dual(dark_150x200, solver="direct")) > 35.0


def test_lime_multires_without_downscaling_is_exact(small_dark: np.ndarray) -> None:
    ref = _reference_illumination(small_dark, alpha=0.15, strategy=3, sigma=2.0, eps=1e-3)
    t = C.lime_illumination(small_dark, solver="multires", downscale=1.0)
    np.testing.assert_allclose(t, ref, atol=2e-5)


def test_lime_auto_solver_by_size(dark: np.ndarray) -> None:
    # below MULTIRES_MIN_PIXELS "auto" is the exact solve, from it up the multi-resolution one
    assert dark.shape[0] * dark.shape[1] < C.MULTIRES_MIN_PIXELS
    np.testing.assert_array_equal(C.lime_illumination(dark), C.lime_illumination(dark, solver="direct"))
    big = cv2.resize(dark, (256, 256), interpolation=cv2.INTER_LINEAR)  # (256, 256, 3) = MULTIRES_MIN_PIXELS
    auto = C.lime_illumination(big)
    np.testing.assert_array_equal(auto, C.lime_illumination(big, solver="multires"))
    assert not np.array_equal(auto, C.lime_illumination(big, solver="multires", downscale=1.0))
    with pytest.raises(ValueError, match="downscale"):
        C.lime_illumination(dark, solver="multires", downscale=0.5)


# ----------------------------------------------------------------------------------------------------------
# DUAL
# ----------------------------------------------------------------------------------------------------------


def test_exposure_fusion_of_identical_images_is_the_image(small_dark: np.ndarray) -> None:
    # Mertens weights are normalised per pixel, so the fused Laplacian pyramid is the image's own
    np.testing.assert_allclose(C.exposure_fusion([small_dark] * 3), small_dark, atol=1e-5)


def test_dual_is_a_fusion_of_input_and_both_corrections(dark: np.ndarray) -> None:
    under = C.lime(dark, gamma=0.6, sigma=3.0)
    over = 1.0 - C.lime(1.0 - dark, gamma=0.6, sigma=3.0)
    out = C.dual(dark)
    np.testing.assert_allclose(out, C.exposure_fusion([dark, under, over]), atol=1e-6)
    lo = np.minimum(np.minimum(dark, under), over)
    hi = np.maximum(np.maximum(dark, under), over)
    # pyramid blending is not a per-pixel convex combination: it may overshoot a little near edges
    assert np.mean((out >= lo - 0.02) & (out <= hi + 0.02)) > 0.98
    assert np.mean((out >= lo - 0.1) & (out <= hi + 0.1)) > 0.999
    assert dark.mean() < out.mean() < under.mean() + 0.05  # between the input and the brightening
