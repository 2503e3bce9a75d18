"""Reflectance teachers: RetinexNet DecomNet with the shared weights, and the weight-free classic fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from gefu.scuf.retinex import (
    ClassicReflectance,
    DecomNet,
    classic_reflectance,
    load_decomnet,
    load_reflectance_teacher,
)

WEIGHTS = Path(__file__).resolve().parents[2] / ".." / "shared" / "weights" / "retinexnet_decom.pth"
needs_weights = pytest.mark.skipif(
    not WEIGHTS.is_file(), reason=f"RetinexNet DecomNet weights not found at {WEIGHTS}"
)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = torch.mean((a.double() - b.double()) ** 2).item()
    return 10.0 * np.log10(1.0 / mse)


def test_decomnet_architecture_and_shapes():
    net = DecomNet()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [tuple(c.weight.shape) for c in convs] == [(64, 4, 9, 9)] + [(64, 64, 3, 3)] * 5 + [(4, 64, 3, 3)]
    assert all(c.padding_mode == "replicate" for c in convs)
    x = torch.rand(2, 3, 20, 24)
    r, l = net.decompose(x)
    assert r.shape == (2, 3, 20, 24) and l.shape == (2, 1, 20, 24)


def test_decomnet_puts_channel_max_first():
    """Only the first input channel of conv0 sees the channel max: zero the other weights and compare."""
    net = DecomNet()
    with torch.no_grad():
        net.net1_conv0.weight[:, 1:] = 0
    x = torch.rand(1, 3, 16, 16)
    y = x.clone()
    y[:, 0], y[:, 1] = x[:, 1], x[:, 0]  # permuting RGB keeps the max, changes what channels 1-3 see
    assert torch.allclose(net.decompose(x)[1], net.decompose(y)[1])


@needs_weights
def test_shared_weights_load_strictly():
    raw = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    net = load_decomnet(WEIGHTS)
    own = {f"DecomNet.{k}" for k in net.state_dict()}
    assert own == set(raw)
    assert not any(p.requires_grad for p in net.parameters())
    assert torch.equal(net.net1_recon.weight, raw["DecomNet.net1_recon.weight"])


@needs_weights
def test_decomposition_reconstructs_real_photo(photo, dark_photo):
    net = load_decomnet(WEIGHTS)
    with torch.no_grad():
        r, l = net.decompose(photo)
        r_dark, l_dark = net.decompose(dark_photo)
    assert r.min() >= 0 and r.max() <= 1 and l.min() >= 0 and l.max() <= 1
    assert _psnr(r * l, photo) > 25.0
    assert _psnr(r_dark * l_dark, dark_photo) > 25.0
    # Retinex: reflectance is (roughly) illumination invariant, illumination follows the exposure.
    assert (r - r_dark).abs().mean() < 0.5 * (photo - dark_photo).abs().mean()
    assert l_dark.mean() < 0.6 * l.mean()


def test_load_decomnet_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="classic"):
        load_decomnet(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"foo.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not a RetinexNet DecomNet"):
        load_decomnet(bad)


def test_load_decomnet_accepts_unprefixed_keys(tmp_path):
    net = DecomNet()
    path = tmp_path / "plain.pth"
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)
    loaded = load_decomnet(path)
    assert torch.equal(loaded.net1_conv0.weight, net.net1_conv0.weight)


def test_classic_reflectance_against_scipy(photo):
    sigma, eps = 3.0, 0.05
    got = classic_reflectance(photo, sigma=sigma, eps=eps)[0].numpy()
    img = photo[0].double().numpy()
    # Independent reference: scipy's Gaussian (same truncation radius ceil(3σ), mirror padding).
    illum = gaussian_filter(img.max(axis=0), sigma=sigma, mode="mirror", truncate=3.0)
    want = np.clip(img / np.maximum(illum, eps)[None], 0, 1)
    assert np.abs(got - want).max() < 1e-4


def test_classic_reflectance_removes_illumination():
    """A flat texture times a smooth illumination ramp: the ramp is removed (up to the blur's scale)."""
    g = torch.Generator().manual_seed(0)
    texture = 0.5 + 0.5 * torch.rand(1, 3, 64, 64, generator=g)
    ramp = torch.linspace(0.05, 0.4, 64).view(1, 1, 1, 64)
    r = classic_reflectance(texture * ramp, sigma=8.0)
    left, right = r[..., 8:24].mean(), r[..., 40:56].mean()
    assert abs(left.item() - right.item()) < 0.1  # input halves differ by a factor of ~2.5
    assert r.min() >= 0 and r.max() <= 1


def test_teacher_factory_and_interface():
    teacher = load_reflectance_teacher(None)
    assert isinstance(teacher, ClassicReflectance)
    x = torch.rand(1, 3, 8, 8)
    assert teacher(x).shape == (1, 3, 8, 8)
    with pytest.raises(ValueError, match="RGB"):
        teacher(torch.rand(1, 1, 8, 8))
