"""NIQE and BRISQUE against the MATLAB release's published outputs, BasicSR's implementation (recorded) and
OpenCV's QualityBRISQUE called directly; both must rank degradations of real photos."""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from _shared import SHARED_DATA, needs_weights
from scipy import ndimage

from gefu import metrics, weights
from gefu.metrics import noref
from gefu.samples import load_sample

NIQE = needs_weights("niqe-pris-params")
BRISQUE = needs_weights("brisque-model", "brisque-range")


def _u8(name: str) -> np.ndarray:
    return np.round(load_sample(name).permute(1, 2, 0).numpy() * 255).astype(np.uint8)  # (H, W, 3)


# ---- NIQE ------------------------------------------------------------------------------------------------------

# The MATLAB release (niqe_release.zip, computequality.m, modelparameters.mat, rgb2gray input) on five TID2013
# images, as published by IQA-PyTorch (chaofengc/IQA-PyTorch @01ae427, ResultsCalibra/results_official.csv,
# images in ResultsCalibra/dist_dir); and MATLAB R2021a on BasicSR's baboon with the Y of rgb2ycbcr as input
# (XPixelGroup/BasicSR basicsr/metrics/niqe.py docstring; image test_scripts/data/baboon.png).
PUBLISHED = [
    ("I03.bmp", "gray", 15.7536293917814),
    ("I04.bmp", "gray", 3.65492152353770),
    ("I06.bmp", "gray", 3.23547743716998),
    ("I08.bmp", "gray", 3.18403333858339),
    ("I19.bmp", "gray", 8.63519663862637),
    ("baboon.png", "y", 5.72957338),
]
_REF_DIRS = [Path(p) for p in os.environ.get("GEFU_NIQE_REFERENCE_IMAGES", "").split(os.pathsep) if p]


def _reference_image(name: str) -> Path | None:
    return next((d / name for d in _REF_DIRS if (d / name).is_file()), None)


@NIQE
@pytest.mark.parametrize("name, luminance, published", PUBLISHED)
def test_niqe_reproduces_the_matlab_release(name, luminance, published):
    path = _reference_image(name)
    if path is None:
        pytest.skip(f"{name} not found: set GEFU_NIQE_REFERENCE_IMAGES to the folder(s) holding the published "
                    "images (IQA-PyTorch ResultsCalibra/dist_dir, BasicSR test_scripts/data)")
    import imageio.v3 as iio

    ours = float(metrics.niqe(iio.imread(path)[..., :3], luminance=luminance)[0])
    assert ours == pytest.approx(published, rel=0.01)


# BasicSR's NIQE (basicsr/metrics/niqe.py @8d56e3a, run outside the project) on the same MATLAB-rgb2gray grey
# image ('HW' input) and, second column, with its default Y-of-YCbCr conversion.
BASICSR = {
    "astronaut": (3.065775902584051, 3.0649476661849033),
    "coffee": (4.058493948520581, 4.115241615372864),
    "chelsea": (2.572083313990127, 2.625524381291432),
}


@NIQE
@pytest.mark.parametrize("name", sorted(BASICSR))
def test_niqe_agrees_with_basicsr_on_real_photos(name):
    gray_ref, y_ref = BASICSR[name]
    img = load_sample(name)  # (3, H, W) in [0, 1], from an 8-bit file
    assert float(metrics.niqe(img)[0]) == pytest.approx(gray_ref, rel=1e-3)
    assert float(metrics.niqe(img, luminance="y")[0]) == pytest.approx(y_ref, rel=1e-3)


@NIQE
def test_niqe_input_forms_agree():
    u8 = _u8("chelsea")
    t = torch.from_numpy(u8).permute(2, 0, 1).float() / 255
    batch = metrics.niqe(torch.stack([t, t.flip(-1)]))
    assert batch.shape == (2,) and batch.dtype == torch.float64
    assert batch[0].item() == metrics.niqe(u8)[0].item() == metrics.niqe(t)[0].item()
    gray = noref.rgb2gray_uint8(u8)
    assert metrics.niqe(gray)[0].item() == metrics.niqe(torch.from_numpy(gray)[None].float() / 255)[0].item()
    assert batch[0].item() == metrics.niqe(gray)[0].item()


def test_flat_neighbourhoods_give_exact_zero_coefficients():
    # MATLAB leaves ±1e-14 residue here; its sign flips the AGGD side counts (TID2013 I19 moved 5 %).
    for level in (17.0, 37.0, 200.0, 254.0):
        assert not np.any(noref._mscn(np.full((40, 40), level)))
    im = np.full((40, 40), 100.0)
    im[20:, :] = 120.0  # an edge: coefficients non-zero within 3 px of it, exactly zero beyond
    m = noref._mscn(im)
    assert np.all(m[:14] == 0) and np.all(m[27:] == 0) and np.all(m[18:22] != 0)


@NIQE
def test_niqe_edge_cases():
    with pytest.raises(ValueError, match="96"):
        metrics.niqe(torch.rand(3, 95, 200))
    assert math.isnan(metrics.niqe(torch.full((3, 192, 192), 0.5))[0].item())  # no texture anywhere
    with pytest.raises(ValueError, match="luminance"):
        metrics.niqe(torch.rand(3, 96, 96), luminance="lab")


def test_niqe_model_is_the_release_one():
    path = weights.find_weight("niqe-pris-params")
    if path is None:
        pytest.skip("niqe-pris-params not provisioned (../shared/weights is absent)")
    mu, cov = noref.load_niqe_model(str(path))
    assert mu.shape == (36,) and cov.shape == (36, 36)
    np.testing.assert_allclose(cov, cov.T, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(cov) > 0)


def test_missing_niqe_model_names_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("GEFU_WEIGHTS", str(tmp_path))
    noref.load_niqe_model.cache_clear()
    try:
        with pytest.raises(weights.MissingWeightsError, match="niqe"):
            metrics.niqe(torch.rand(3, 96, 96))
    finally:
        noref.load_niqe_model.cache_clear()


# ---- BRISQUE ---------------------------------------------------------------------------------------------------


@BRISQUE
@pytest.mark.parametrize("name", ["coffee", "astronaut"])
def test_brisque_equals_opencv_on_the_bgr_image(name):
    u8 = _u8(name)
    model, rng = str(weights.weight_path("brisque-model")), str(weights.weight_path("brisque-range"))
    direct = cv2.quality.QualityBRISQUE_compute(np.ascontiguousarray(u8[..., ::-1]), model, rng)[0]
    ours = metrics.brisque(torch.from_numpy(u8).permute(2, 0, 1).float() / 255)
    assert ours.shape == (1,) and ours[0].item() == pytest.approx(direct, abs=1e-9)
    assert metrics.brisque(u8)[0].item() == pytest.approx(direct, abs=1e-9)


@BRISQUE
def test_brisque_channel_order_matters():
    # The bug this guards: RGB handed to OpenCV as if BGR (coffee: 1.69 instead of 3.61).
    u8 = _u8("coffee")
    model, rng = str(weights.weight_path("brisque-model")), str(weights.weight_path("brisque-range"))
    swapped = cv2.quality.QualityBRISQUE_compute(u8, model, rng)[0]
    assert abs(metrics.brisque(u8)[0].item() - swapped) > 1.0


# ---- both: ranking of degradations on real photos --------------------------------------------------------------


def _ladder(x: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """clean, darkened ×0.5 + noise σ 0.02, ×0.5 + noise σ 0.05, Gaussian blur σ 6 px; float (H, W, 3)."""
    rng = np.random.default_rng(seed)
    dark = x * 0.5
    return [
        x,
        np.clip(dark + rng.normal(0, 0.02, x.shape), 0, 1),
        np.clip(dark + rng.normal(0, 0.05, x.shape), 0, 1),
        ndimage.gaussian_filter(x, (6, 6, 0)),
    ]


def _real_photos() -> list[tuple[str, np.ndarray]]:
    import imageio.v3 as iio

    photos = [(n, _u8(n)) for n in ("astronaut", "coffee", "chelsea")]
    for rel in ("dicm/01.jpg", "lime/1.bmp"):  # real dark captures, when ../shared/data is there
        if (SHARED_DATA / rel).is_file():
            photos.append((rel, iio.imread(SHARED_DATA / rel)[..., :3]))
    return photos


@NIQE
@BRISQUE
def test_both_rank_clean_dark_noisier_blurred():
    for name, u8 in _real_photos():
        levels = [torch.from_numpy(v).permute(2, 0, 1) for v in _ladder(u8.astype(np.float64) / 255)]
        for fn in (metrics.niqe, metrics.brisque):
            scores = [fn(v)[0].item() for v in levels]
            assert scores == sorted(scores) and len(set(scores)) == 4, (name, fn.__name__, scores)


def test_directions():
    from gefu.bench.suites.scoring import IQA_METRICS

    assert metrics.HIGHER_IS_BETTER["niqe"] is False and metrics.HIGHER_IS_BETTER["brisque"] is False
    for m in IQA_METRICS:  # the bench's table columns agree
        assert metrics.HIGHER_IS_BETTER[m.key] is m.higher_is_better
