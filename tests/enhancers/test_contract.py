"""The Enhancer contract, checked on every registered enhancer (SCUF has its own tests)."""

from __future__ import annotations

import inspect
import json

import pytest
import torch

import gefu
from gefu.enhancers import ENHANCERS

NAMES = [n for n in gefu.list_enhancers() if n != "scuf"]


def _make(name: str) -> gefu.Enhancer:
    """Default construction; enhancers whose weights are not installed here run with random weights."""
    try:
        return gefu.create_enhancer(name)
    except ValueError:
        if "allow_random" not in inspect.signature(ENHANCERS.get(name)).parameters:
            raise
        return gefu.create_enhancer(name, allow_random=True)


@pytest.fixture(scope="module", params=NAMES)
def enhancer(request: pytest.FixtureRequest) -> tuple[str, gefu.Enhancer]:
    return request.param, _make(request.param)


def _images(n: int, h: int, w: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Dark-ish random images with some structure (a gradient plus noise), (n, 3, h, w) in [0, 1]."""
    g = torch.Generator().manual_seed(h * 1000 + w)
    ramp = torch.linspace(0.02, 0.3, w).view(1, 1, 1, w)
    return (ramp + 0.1 * torch.rand(n, 3, h, w, generator=g)).clamp(0, 1).to(dtype)


def test_registry_has_the_classics() -> None:
    assert {"none", "gamma", "he", "clahe", "msrcr", "lime", "dual"} <= set(gefu.list_enhancers())


@pytest.mark.parametrize("size", [(1, 1), (7, 13), (37, 61)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_range_dtype(enhancer: tuple[str, gefu.Enhancer], size: tuple[int, int], dtype: torch.dtype) -> None:
    _, enh = enhancer
    x = _images(1, *size, dtype=dtype)
    with torch.no_grad():
        y = enh(x)
    assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
    assert torch.isfinite(y).all()
    assert y.min() >= 0 and y.max() <= 1


def test_batch_equals_single_images(enhancer: tuple[str, gefu.Enhancer]) -> None:
    _, enh = enhancer
    x = _images(3, 20, 24)
    with torch.no_grad():
        batch = enh(x)
        single = torch.cat([enh(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=0)


def test_to_cpu_and_config(enhancer: tuple[str, gefu.Enhancer]) -> None:
    name, enh = enhancer
    assert enh.to("cpu") is enh
    assert enh.device == torch.device("cpu")
    cfg = enh.config()
    assert cfg["name"] == name == enh.name
    assert json.loads(json.dumps(cfg)) == cfg  # JSON round trip: usable as a cache key
    x = _images(1, 9, 10)
    with torch.no_grad():
        torch.testing.assert_close(enh.to("cpu")(x), enh(x))


def test_rejects_bad_input(enhancer: tuple[str, gefu.Enhancer]) -> None:
    _, enh = enhancer
    with pytest.raises(ValueError):
        enh(torch.zeros(3, 8, 8))  # no batch dimension
    with pytest.raises(ValueError):
        enh(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(ValueError, match=r"(?i)did you mean 'lime'"):
        gefu.create_enhancer("lmie")
    with pytest.raises(ValueError, match=r"(?i)did you mean 'clahe'"):
        gefu.create_enhancer("clahee")
