"""Built-in face / object detectors: MTCNN, YuNet, OpenCV Haar, any torchvision detector, yours."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .base import DETECTORS, Detector, build_user, check_images, hold, load_checkpoint, load_into, to_uint8_hwc


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
        img = to_uint8_hwc(check_images(image, batched=False))  # (H, W, 3) RGB
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

        rgb = to_uint8_hwc(check_images(image, batched=False))
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
    """OpenCV's Haar cascade (frontal face, ships in opencv(-contrib)-python < 5). Score = the cascade's level weight
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
                f"detector 'haar': cascade {cascade} not found; it ships in opencv-contrib-python-headless < 5 "
                "(pip install 'opencv-contrib-python-headless<5'), or pass cascade=/path/to/file.xml"
            )
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ValueError(f"detector 'haar': OpenCV could not load {path}")

    def forward(self, image: torch.Tensor) -> np.ndarray:
        import cv2

        gray = cv2.cvtColor(to_uint8_hwc(check_images(image, batched=False)), cv2.COLOR_RGB2GRAY)
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
        load_into(self.net, state, what, checkpoint)

    def forward(self, image: torch.Tensor) -> np.ndarray:
        x = self._prepare(check_images(image, batched=False))
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
        hold(self, build_user(target, options))

    def forward(self, image: torch.Tensor) -> np.ndarray:
        out = self.inner(self._prepare(check_images(image, batched=False)))
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
