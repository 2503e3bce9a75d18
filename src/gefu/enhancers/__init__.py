"""Enhancers behind one interface: `create_enhancer(name, **options)`, `list_enhancers()`."""

from __future__ import annotations

import importlib

from .base import ENHANCERS, Enhancer, NumpyEnhancer, PublishedFigure, create_enhancer, list_enhancers

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


__all__ = ["ENHANCERS", "Enhancer", "NumpyEnhancer", "PublishedFigure", "create_enhancer", "list_enhancers"]
