"""The three task-model interfaces (classifier, detector, segmenter), their registries, and the loading of user
checkpoints and user code shared by the built-ins."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ...registry import Registry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ----------------------------------------------------------------------------------------------------------------
# Interfaces
# ----------------------------------------------------------------------------------------------------------------


class TaskModel(nn.Module):
    """Base of the three interfaces: frozen, eval mode, options remembered for `config()`."""

    name: str = ""

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = options

    def config(self) -> dict[str, Any]:
        """Name and options (JSON-friendly), e.g. as part of a results cache key."""
        options = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in self.options.items()}
        return {"name": self.name, **options}

    def freeze(self) -> "TaskModel":
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def train(self, mode: bool = True) -> "TaskModel":
        # Task models are frozen evaluators: stay in eval mode (batch-norm statistics, dropout) whatever happens.
        return super().train(False)

    @property
    def device(self) -> torch.device:
        """Device of the model's parameters (cpu for parameter-free models)."""
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Move inputs to the parameters' device and floating dtype (unchanged for parameter-free models)."""
        p = next(self.parameters(), None)
        return x if p is None else x.to(device=p.device, dtype=p.dtype)


def check_images(x: torch.Tensor, batched: bool) -> torch.Tensor:
    want = 4 if batched else 3
    if not isinstance(x, torch.Tensor) or x.ndim != want or x.shape[-3] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected an RGB {'batch (N, 3, H, W)' if batched else 'image (3, H, W)'}, got {shape}")
    return x


def to_uint8_hwc(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) float [0, 1] → (H, W, 3) uint8 RGB (rounded), for detectors that take 8-bit images."""
    return (image.detach().float().clamp(0, 1).cpu().permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)


class Classifier(TaskModel):
    """images (N, 3, H, W) float in [0, 1] → logits (N, C). `classes` names the C outputs when known."""

    classes: tuple[str, ...] = ()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Detector(TaskModel):
    """image (3, H, W) float in [0, 1] → float32 array (K, 5): x1, y1, x2, y2 (pixels), score (higher = surer)."""

    def forward(self, image: torch.Tensor) -> np.ndarray:
        raise NotImplementedError


class Segmenter(TaskModel):
    """image (3, H, W) float in [0, 1] → int64 array (H, W) of class ids (same size as the input).

    `logits(image)` → (C, h, w) float tensor of class scores, where the model can give them (the official
    BDD100k-night protocol sums the logits of several scales); the output may be smaller than the input.
    """

    classes: tuple[str, ...] = ()

    def forward(self, image: torch.Tensor) -> np.ndarray:
        raise NotImplementedError

    def logits(self, image: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(
            f"segmenter {self.name!r} gives class ids only; the official multi-scale protocol needs a segmenter "
            "that gives logits (C, H, W)"
        )


CLASSIFIERS: Registry[Classifier] = Registry("classifier")
DETECTORS: Registry[Detector] = Registry("detector")
SEGMENTERS: Registry[Segmenter] = Registry("segmenter")


def create_classifier(name: str, **options: Any) -> Classifier:
    """Build a registered classifier (see `CLASSIFIERS.names()`), frozen and in eval mode."""
    return CLASSIFIERS.create(name, **options).freeze()


def create_detector(name: str, **options: Any) -> Detector:
    """Build a registered detector (see `DETECTORS.names()`), frozen and in eval mode."""
    return DETECTORS.create(name, **options).freeze()


def create_segmenter(name: str, **options: Any) -> Segmenter:
    """Build a registered segmenter (see `SEGMENTERS.names()`), frozen and in eval mode."""
    return SEGMENTERS.create(name, **options).freeze()


# ----------------------------------------------------------------------------------------------------------------
# Loading user weights and user code
# ----------------------------------------------------------------------------------------------------------------


def load_checkpoint(path: str | os.PathLike | None, what: str, how: str) -> dict[str, torch.Tensor]:
    """A state dict from a torch checkpoint, unwrapped from common containers and DataParallel prefixes.

    Accepts a plain state dict or a dict holding it under 'state_dict' / 'model' / 'model_state_dict' / 'net';
    strips a leading 'module.'. Loads with weights_only=True. `what`/`how` make the missing-file message.
    """
    if path is None:
        raise FileNotFoundError(f"{what} needs a checkpoint: {how}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{what}: checkpoint {path} does not exist; {how}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state: Any = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model_state_dict", "model", "net"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{what}: {path} does not hold a state dict of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def load_into(model: nn.Module, state: dict[str, torch.Tensor], what: str, path: Any) -> None:
    """Load `state` strictly, or raise one ValueError listing every missing, unexpected and mis-shaped key."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    bad_shape = [f"{k} {tuple(v.shape)}≠{tuple(own[k].shape)}" for k, v in state.items()
                 if k in own and own[k].shape != v.shape]
    if missing or unexpected or bad_shape:
        parts = [f"{name} ({len(keys)}): {', '.join(keys)}" for name, keys in
                 (("missing", missing), ("unexpected", unexpected), ("wrong shape", bad_shape)) if keys]
        raise ValueError(f"{what}: {path} does not fit the architecture (check arch / num_classes) — "
                         + "; ".join(parts))
    model.load_state_dict(state)


def load_object(target: str) -> Any:
    """Import `"pkg.module:attr"` (or `"path/to/file.py:attr"`) and return the attribute."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected 'package.module:factory' or 'file.py:factory', got {target!r}")
    if module_name.endswith(".py"):
        path = Path(module_name).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file (from {target!r})")
        spec = importlib.util.spec_from_file_location(f"gefu_user_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name and module_name.startswith(err.name):
                raise ValueError(f"cannot import {module_name!r} (from {target!r}): is it on PYTHONPATH?") from None
            raise
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{module_name!r} has no attribute {attr!r} (from {target!r})")
        obj = getattr(obj, part)
    return obj


def build_user(target: str, options: dict[str, Any]) -> Any:
    obj = load_object(target)
    if isinstance(obj, type) or (callable(obj) and not isinstance(obj, nn.Module)):
        return obj(**options)
    if options:
        raise ValueError(f"{target!r} is an object, not a factory; it takes no options (got {sorted(options)})")
    return obj


def hold(owner: nn.Module, obj: Any) -> None:
    """Keep a user object (an nn.Module becomes a sub-module, so `.to(device)` reaches it)."""
    if not callable(obj):
        raise ValueError(f"{owner.options['target']!r} gave a {type(obj).__name__}, which is not callable")
    owner.inner = obj


def normalize_imagenet(x: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation of (N, 3, H, W) in [0, 1] (= ToTensor + Normalize, no resize)."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std
