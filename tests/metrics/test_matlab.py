"""MATLAB image functions that NIQE depends on, against hand-worked values and MATLAB's documentation."""

from __future__ import annotations

import numpy as np
import pytest

from gefu.metrics.matlab import RGB2GRAY_COEFFS, fspecial_gaussian, imresize, rgb2gray_uint8, rgb2ycbcr_y_uint8

# Keys' cubic (a = -0.5) stretched ×2 and scaled by 1/2, at the 8 input offsets ±0.5, ±1.5, ±2.5, ±3.5 of an
# output pixel when halving: cubic(0.25) = 0.8671875, cubic(0.75) = 0.2265625, cubic(1.25) = -0.0703125,
# cubic(1.75) = -0.0234375 (worked by hand); they already sum to 1.
HALF = np.array([-0.0234375, -0.0703125, 0.2265625, 0.8671875, 0.8671875, 0.2265625, -0.0703125, -0.0234375]) / 2


def test_rgb2gray_coefficients_are_matlabs():
    # MATLAB's documentation: 0.2989 R + 0.5870 G + 0.1140 B (BT.601 rounded would be 0.299/0.587/0.114).
    assert RGB2GRAY_COEFFS == pytest.approx([0.2989, 0.5870, 0.1140], abs=5e-5)
    assert RGB2GRAY_COEFFS[0] < 0.299  # the unrounded NTSC inverse, not BT.601
    assert RGB2GRAY_COEFFS.sum() == pytest.approx(1.0, abs=1e-12)


def test_rgb2gray_rounds_like_matlab():
    # 0.298936·200 + 0.587043·100 + 0.114021·50 = 124.189 → 124; (1, 1, 0): 0.886 → 1; (255, 0, 0): 76.229 → 76.
    # (11, 128, 255): MATLAB's weights give 107.505 → 108, BT.601's (0.299, 0.587, 0.114) 107.495 → 107;
    # (38, 128, 0): 86.501 → 87 vs 86.498 → 86.
    rgb = np.array([[[200, 100, 50], [1, 1, 0], [255, 255, 255], [255, 0, 0], [11, 128, 255], [38, 128, 0]]],
                   dtype=np.uint8)
    assert rgb2gray_uint8(rgb).tolist() == [[124, 1, 255, 76, 108, 87]]
    with pytest.raises(ValueError):
        rgb2gray_uint8(rgb.astype(np.float64))


def test_rgb2ycbcr_y_is_studio_range():
    rgb = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], dtype=np.uint8)
    assert rgb2ycbcr_y_uint8(rgb).tolist() == [[16, 235, 81]]  # 16 + 65.481 = 81.481 → 81


def test_fspecial_gaussian():
    g = fspecial_gaussian(7, 7 / 6)
    x = np.arange(7) - 3
    ref = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * (7 / 6) ** 2))
    np.testing.assert_allclose(g, ref / ref.sum(), rtol=1e-14)


def test_imresize_half_interior_uses_the_antialiased_cubic():
    a = np.random.default_rng(0).random((40, 1))
    out = imresize(np.repeat(a, 2, axis=1), 0.5)[:, 0]  # (20,): columns stay identical, rows halved
    assert out.shape == (20,)
    # output j (0-based) sits at input coordinate 2j + 0.5 → taps 2j-3 .. 2j+4
    for j in range(2, 18):
        assert out[j] == pytest.approx(HALF @ a[2 * j - 3 : 2 * j + 5, 0], abs=1e-14)


def test_imresize_half_mirrors_at_the_border():
    a = np.arange(1.0, 13.0) ** 2  # (12,) a curved ramp, so the border rule matters
    out = imresize(a[:, None] * np.ones((1, 2)), 0.5)[:, 0]
    # first output: taps at input indices -3..4 (0-based); 'symmetric' mirror: -1→0, -2→1, -3→2
    taps = a[[2, 1, 0, 0, 1, 2, 3, 4]]
    assert out[0] == pytest.approx(HALF @ taps, abs=1e-12)
    # last output (j = 5): taps 7..14 → 12→11, 13→10, 14→9
    taps = a[[7, 8, 9, 10, 11, 11, 10, 9]]
    assert out[5] == pytest.approx(HALF @ taps, abs=1e-12)


def test_imresize_sizes_and_constants():
    assert imresize(np.ones((97, 50)), 0.5).shape == (49, 25)  # ceil, like MATLAB
    np.testing.assert_allclose(imresize(np.full((30, 20), 7.0), 0.5), 7.0, rtol=1e-14)
    np.testing.assert_allclose(imresize(np.full((5, 4), 3.0), 2.0), 3.0, rtol=1e-14)
    with pytest.raises(ValueError):
        imresize(np.ones((4, 4)), 0)
