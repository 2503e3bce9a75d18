"""Shared fixtures: real photographs from installed packages, and darkened versions of them.

Importing `_shared` first points the weight store at a session folder provisioned from ../shared/weights (see
tests/_shared.py, which also has the skip markers for tests that need real data or official weights).
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import _shared  # noqa: E402,F401  (the session weight store, before anything resolves weights)

from gefu.bench.degrade import darken  # noqa: E402
from gefu.samples import load_sample  # noqa: E402


@pytest.fixture(scope="session")
def photo() -> torch.Tensor:
    """A real photo (scikit-image's coffee), (1, 3, 96, 128) float32 in [0, 1]."""
    img = load_sample("coffee")[None]
    return F.interpolate(img, size=(96, 128), mode="area").clamp(0, 1)


@pytest.fixture(scope="session")
def dark_photo(photo: torch.Tensor) -> torch.Tensor:
    """`photo` darkened (exposure 0.1, noise, colour cast), (1, 3, 96, 128)."""
    return darken(photo, exposure=0.1, seed=0)


@pytest.fixture(scope="module")
def register_enhancers():
    """`register_enhancers(Cls, ...)` registers test-only enhancers for one test module and removes them after,
    so they never leak into other modules (the contract tests run over every registered name)."""
    from gefu.enhancers import ENHANCERS, list_enhancers

    list_enhancers()  # the built-ins first, so a test name can never shadow them
    added: list[str] = []

    def register(*classes):
        for cls in classes:
            ENHANCERS.register(cls.name)(cls)
            added.append(cls.name)

    yield register
    for name in added:
        ENHANCERS.unregister(name)
