"""Built-in segmenters: any torchvision segmentation model with your Cityscapes checkpoint, or yours."""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import torch

from ..datasets import CITYSCAPES_CLASSES
from .base import SEGMENTERS, Segmenter, build_user, check_images, hold, load_checkpoint, load_into, normalize_imagenet


@SEGMENTERS.register("torchvision")
class TorchvisionSegmenter(Segmenter):
    """Any torchvision segmentation model (`arch`, e.g. 'deeplabv3_resnet50') with your checkpoint; ImageNet
    mean/std normalisation, full resolution, argmax of the 'out' logits. num_classes defaults to Cityscapes' 19."""

    name = "torchvision"

    def __init__(self, arch: str, checkpoint: str | os.PathLike | None = None, num_classes: int = 19,
                 **model_options: Any) -> None:
        super().__init__(arch=arch, checkpoint=str(checkpoint), num_classes=num_classes, **model_options)
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

    def forward(self, image: torch.Tensor) -> np.ndarray:
        x = self._prepare(check_images(image, batched=False))
        logits = self.net(normalize_imagenet(x[None]))["out"]  # (1, C, H, W)
        return logits[0].argmax(dim=0).cpu().numpy().astype(np.int64)  # (H, W)


class _UserSegmenter(Segmenter):
    name = "module"

    def __init__(self, target: str, **options: Any) -> None:
        super().__init__(target=target, **options)
        hold(self, build_user(target, options))
        self.classes = tuple(getattr(self.inner, "classes", ()) or ())

    def forward(self, image: torch.Tensor) -> np.ndarray:
        image = check_images(image, batched=False)
        out = self.inner(self._prepare(image))
        if isinstance(out, torch.Tensor):
            out = out.detach().cpu().numpy()
        arr = np.asarray(out)
        if arr.shape != tuple(image.shape[-2:]):
            want = tuple(image.shape[-2:])
            raise ValueError(f"{self.options['target']} must return (H, W) = {want}, got {arr.shape}")
        return arr.astype(np.int64)


@SEGMENTERS.register("module", "user")
def user_segmenter(target: str, **options: Any) -> Segmenter:
    """Your own segmenter: `target="pkg.module:factory"`; `factory(**options)` returns a callable mapping an image
    (3, H, W) in [0, 1] to an (H, W) array of class ids."""
    return _UserSegmenter(target, **options)
