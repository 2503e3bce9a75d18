"""Shared SCUF fixtures: ONE tiny-random generator per session, built once and never mutated by tests
(tests that change weights work on a `copy.deepcopy`)."""

from __future__ import annotations

import copy

import pytest
import torch

from gefu.scuf.config import SCUFConfig
from gefu.scuf.generator import SCUFGenerator


@pytest.fixture
def single_thread():
    """Run a test with one torch thread (restored afterwards).

    The tiny models are dominated by per-op overhead; on a shared 2-core machine two OpenMP threads spin against
    other processes and run 10× slower than one.
    """
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_gen() -> SCUFGenerator:
    """The default SCUF architecture (cycle-attention adapter, paper variant, reflectance at the decoder) on
    tiny random components, with `unet_init` and the text encoder (training API available). Do not mutate."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return SCUFGenerator(SCUFConfig(base="tiny-random", seed=0))
    finally:
        torch.set_num_threads(n)


@pytest.fixture
def gen_copy(tiny_gen: SCUFGenerator) -> SCUFGenerator:
    """A private deep copy of the session generator, free to modify."""
    return copy.deepcopy(tiny_gen)


def _perturb_trainable(gen: SCUFGenerator, seed: int = 1, std: float = 0.05) -> None:
    """Add seeded noise to every trainable weight, so that LoRA (B = 0 at init) and skip convs do something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in gen.trainable_parameters():
            p.add_(torch.randn(p.shape, generator=g) * std)


def _small_batch(seed: int = 0, batch: int = 2, h: int = 24, w: int = 40) -> torch.Tensor:
    """A seeded smooth-ish random image batch (B, 3, h, w) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(batch, 3, h // 4, w // 4, generator=g)
    return torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


@pytest.fixture(scope="session")
def perturb():
    """`perturb(gen, seed=1, std=0.05)`: add seeded noise to every trainable weight of `gen` in place."""
    return _perturb_trainable


@pytest.fixture(scope="session")
def make_batch():
    """`make_batch(seed=0, batch=2, h=24, w=40)`: a seeded smooth random batch (B, 3, h, w) in [0, 1]."""
    return _small_batch
