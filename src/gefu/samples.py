"""Real photographs that ship inside installed Python packages: examples and tests need no download.

scikit-image's `data` folder, matplotlib's sample data and scikit-learn's sample images hold a handful of
real colour photographs (an astronaut, a cat, a coffee cup, a rocket launch, a street scene, a portrait, a
temple, a flower, ...). This module finds them on disk.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from .imageio import load_image

# name → (package, path inside the package). Colour photographs only (no synthetic or grey images).
_SOURCES: dict[str, tuple[str, str]] = {
    "astronaut": ("skimage", "data/astronaut.png"),
    "chelsea": ("skimage", "data/chelsea.png"),
    "coffee": ("skimage", "data/coffee.png"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "motorcycle": ("skimage", "data/motorcycle_left.png"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
}

#: Photos with a clearly visible human face (used by face-detection tests and the mini benchmark).
FACE_PHOTOS = ("astronaut", "grace_hopper")

#: The one face of each face photo, x1, y1, x2, y2 in pixels of the original file: the mean of YuNet's and
#: MTCNN's boxes (IoU 0.93 and 0.94 between the two), checked by eye. The other photos hold no human face.
FACE_BOXES: dict[str, tuple[float, float, float, float]] = {
    "astronaut": (179.5, 62.5, 267.5, 173.5),
    "grace_hopper": (178.0, 120.0, 354.0, 336.0),
}


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def sample_photos() -> dict[str, Path]:
    """Name → path of every sample photograph found in the installed packages (missing ones are left out)."""
    found: dict[str, Path] = {}
    for name, (package, rel) in _SOURCES.items():
        root = _package_dir(package)
        if root is not None and (root / rel).is_file():
            found[name] = root / rel
    return found


def load_sample(name: str) -> torch.Tensor:
    """Load a sample photograph by name → float32 (3, H, W) in [0, 1]."""
    photos = sample_photos()
    if name not in photos:
        known = ", ".join(photos) or "none (install scikit-image, matplotlib, scikit-learn)"
        raise ValueError(f"unknown sample photo {name!r}; available: {known}")
    return load_image(photos[name])
