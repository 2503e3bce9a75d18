"""Enhancers behind one interface: `create_enhancer(name, **options)`, `list_enhancers()`.

`gefu.enhancers.base` holds the contract and the registry; the modules listed in `_MODULES` register the
enhancers and are imported on first use, so `import gefu` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import ENHANCERS, Enhancer, NumpyEnhancer, PublishedFigure

# Modules that register enhancers; imported lazily so `import gefu` stays light.
_MODULES = (
    "classical", "zero_dce", "sgz", "sci", "ruas", "clip_lit", "scuf",
    "pairlie", "iat", "zero_ig", "uretinex", "retinexnet",
)


def _load_all() -> None:
    for mod in _MODULES:
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as err:  # a module not written yet must not hide the others
            if err.name != f"{__name__}.{mod}":
                raise


def create_enhancer(name: str, **options: Any) -> Enhancer:
    """Build a registered enhancer by name, e.g. `create_enhancer("lime", alpha=0.15)`.

    Unknown options raise ValueError with the closest valid one; out-of-range values raise ValueError with the
    valid range."""
    _load_all()
    ENHANCERS.check_options(name, options)
    return ENHANCERS.create(name, **options)


def list_enhancers() -> list[str]:
    """Names of all registered enhancers."""
    _load_all()
    return ENHANCERS.names()


__all__ = ["ENHANCERS", "Enhancer", "NumpyEnhancer", "PublishedFigure", "create_enhancer", "list_enhancers"]
