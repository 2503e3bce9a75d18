"""gefu.tiling: the uint8 band-by-band tiler agrees bit for bit with the in-memory one; automatic tile sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gefu.imageio import to_uint8
from gefu.tiling import auto_tile, tile_apply, tile_apply_uint8, tile_geometry

K = torch.full((3, 1, 5, 5), 1 / 25)


def _blur_gain(t: torch.Tensor) -> torch.Tensor:
    """A local, non-pointwise function (5×5 box blur, then a gain): tiles see different borders."""
    return (1.7 * F.conv2d(F.pad(t, (2, 2, 2, 2), mode="replicate"), K, groups=3)).clamp(0, 1)


@pytest.mark.parametrize("h, w, tile, overlap", [(70, 90, 32, 8), (100, 37, 40, 16), (64, 64, 64, 8), (33, 200, 48, 0),
                                                 (129, 129, 64, 32)])
def test_uint8_tiler_equals_quantised_in_memory_tiler(h, w, tile, overlap):
    g = torch.Generator().manual_seed(h * w)
    x = torch.rand(1, 3, h, w, generator=g)
    reads = []

    def read(y0, y1, x0, x1):
        reads.append((y1 - y0, x1 - x0))
        return x[:, :, y0:y1, x0:x1]

    got = tile_apply_uint8(_blur_gain, read, (h, w), tile, overlap)
    ref = to_uint8(tile_apply(_blur_gain, x, tile, overlap)[0])
    assert got.dtype == np.uint8 and got.shape == (h, w, 3)
    np.testing.assert_array_equal(got, ref)
    t, _ = tile_geometry(tile, overlap)
    assert max(r[0] for r in reads) <= t and max(r[1] for r in reads) <= t


def test_uint8_tiler_keeps_only_one_band_of_float_sums(monkeypatch):
    """The float accumulators are one band (tile rows × W), not the image (H × W)."""
    shapes = []
    real_zeros = torch.zeros

    def zeros(*size, **kw):
        t = real_zeros(*size, **kw)
        shapes.append(tuple(t.shape))
        return t

    monkeypatch.setattr(torch, "zeros", zeros)
    x = torch.rand(1, 3, 300, 50)
    tile_apply_uint8(lambda t: t, lambda y0, y1, x0, x1: x[:, :, y0:y1, x0:x1], (300, 50), 32, 8)
    assert shapes and max(np.prod(s) for s in shapes) <= 3 * 32 * 50


@pytest.mark.parametrize(
    "bpp, size, available, expected",
    [
        (400, (16000, 16000), 12 * 2**30, 3840),  # sqrt(6 GiB / 400 B) = 4013 → 3840 (a multiple of 256)
        (400, (600, 400), 12 * 2**30, 0),  # fits: no tiling
        (400, (16000, 16000), 2**20, None),  # not even 256² (26 MB) fits in half a MiB
        (30, (1000, 1000), 2 * 30 * 1000 * 1000, 0),  # exactly half: fits
    ],
)
def test_auto_tile(bpp, size, available, expected):
    assert auto_tile(bpp, size, available) == expected


def test_tile_geometry_refuses_bad_values():
    assert tile_geometry(100, 80) == (96, 48)  # rounded down to 8, overlap at most half
    with pytest.raises(ValueError, match="tile must be positive"):
        tile_geometry(0, 8)
    with pytest.raises(ValueError, match="overlap must be >= 0"):
        tile_geometry(64, -10)
