"""Built-in segmenters: any torchvision segmentation model with your Cityscapes checkpoint, or yours."""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import torch

from ..datasets import CITYSCAPES_CLASSES
from .base import (SEGMENTERS, Segmenter, build_user, check_images, hold, load_checkpoint, load_into,
                   normalize_imagenet)


@SEGMENTERS.register("torchvision")
class TorchvisionSegmenter(Segmenter):
    """Any torchvision segmentation model (`arch`, e.g. 'deeplabv3_resnet50') with your checkpoint; ImageNet
    mean/std normalisation (normalize=False feeds [0, 1] as is), full resolution, argmax of the 'out' logits.
    num_classes defaults to Cityscapes' 19."""

    name = "torchvision"

    def __init__(self, arch: str, checkpoint: str | os.PathLike | None = None, num_classes: int = 19,
                 normalize: bool = True, **model_options: Any) -> None:
        super().__init__(arch=arch, checkpoint=str(checkpoint), num_classes=num_classes, normalize=normalize,
                         **model_options)
        from torchvision.models import get_model, list_models, segmentation

        if arch not in list_models(module=segmentation):
            raise ValueError(
                f"unknown torchvision segmentation model {arch!r}; see list_models(torchvision.models.segmentation)"
            )
        what = f"segmenter 'torchvision' ({arch})"
        state = load_checkpoint(checkpoint, what, "pass checkpoint=PATH to a state dict for this architecture")
        if any(k.startswith("aux_classifier.") for k in state):
            model_options.setdefault("aux_loss", True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self.net = get_model(arch, weights=None, weights_backbone=None, num_classes=num_classes, **model_options)
        load_into(self.net, state, what, checkpoint)
        self.classes = CITYSCAPES_CLASSES if num_classes == len(CITYSCAPES_CLASSES) else ()

    def logits(self, image: torch.Tensor) -> torch.Tensor:
        x = self._prepare(check_images(image, batched=False))[None]  # (1, 3, H, W)
        return self.net(normalize_imagenet(x) if self.options["normalize"] else x)["out"][0]  # (C, H, W)

    def forward(self, image: torch.Tensor) -> np.ndarray:
        return self.logits(image).argmax(dim=0).cpu().numpy().astype(np.int64)  # (H, W)


class _UserSegmenter(Segmenter):
    name = "module"

    def __init__(self, target: str, **options: Any) -> None:
        super().__init__(target=target, **options)
        hold(self, build_user(target, options))
        self.classes = tuple(getattr(self.inner, "classes", ()) or ())

    def _call(self, image: torch.Tensor) -> np.ndarray | torch.Tensor:
        out = self.inner(self._prepare(check_images(image, batched=False)))
        return out.detach() if isinstance(out, torch.Tensor) else np.asarray(out)

    def logits(self, image: torch.Tensor) -> torch.Tensor:
        out = torch.as_tensor(self._call(image))
        if out.ndim != 3 or not out.is_floating_point():
            raise ValueError(f"{self.options['target']} returns {tuple(out.shape)} {out.dtype} values; the official "
                             "multi-scale protocol needs logits (C, H, W) of a float type")
        return out  # (C, h, w)

    def forward(self, image: torch.Tensor) -> np.ndarray:
        out = self._call(image)
        if out.ndim == 3:  # logits (C, H, W)
            out = torch.as_tensor(out).argmax(dim=0)
        arr = out.cpu().numpy() if isinstance(out, torch.Tensor) else out
        if arr.shape != tuple(image.shape[-2:]):
            want = tuple(image.shape[-2:])
            raise ValueError(f"{self.options['target']} must return (H, W) = {want} class ids or (C, H, W) logits, "
                             f"got {arr.shape}")
        return arr.astype(np.int64)


@SEGMENTERS.register("module", "user")
def user_segmenter(target: str, **options: Any) -> Segmenter:
    """Your own segmenter: `target="pkg.module:factory"`; `factory(**options)` returns a callable mapping an image
    (3, H, W) in [0, 1] to an (H, W) array of class ids, or to (C, H, W) logits (float tensor; needed by the
    official multi-scale BDD100k-night protocol, where the output may be smaller than the input)."""
    return _UserSegmenter(target, **options)
