"""Frozen task models behind three small plug-in interfaces, registered by name like enhancers.

=============  ===============================================  ==========================================
interface      call                                             built-ins (registry names)
=============  ===============================================  ==========================================
`Classifier`   images (N, 3, H, W) float [0, 1] → logits (N, C)  resnet18-codan, mobilenet_v2, torchvision,
                                                                module
`Detector`     image (3, H, W) float [0, 1] → (K, 5) float32     retinaface, mtcnn, yunet, haar, torchvision,
               array x1, y1, x2, y2, score (pixels)              module
`Segmenter`    image (3, H, W) float [0, 1] → (H, W) int64       espnet, espnetv2, torchvision,
               class ids                                         module
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

from .base import (
    CLASSIFIERS,
    DETECTORS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    SEGMENTERS,
    Classifier,
    Detector,
    Segmenter,
    TaskModel,
    create_classifier,
    create_detector,
    create_segmenter,
    load_checkpoint,
    load_object,
)
from .classifiers import mobilenet_v2, resnet18_codan, torchvision_classifier, user_classifier
from .detectors import HaarDetector, MTCNNDetector, TorchvisionDetector, YuNetDetector, user_detector
from .espnet import ESPNetSegmenter
from .espnetv2 import ESPNetv2Segmenter
from .retinaface import RetinaFaceDetector
from .segmenters import TorchvisionSegmenter, user_segmenter

__all__ = [
    "TaskModel", "Classifier", "Detector", "Segmenter", "CLASSIFIERS", "DETECTORS", "SEGMENTERS",
    "create_classifier", "create_detector", "create_segmenter", "load_object", "load_checkpoint",
    "IMAGENET_MEAN", "IMAGENET_STD", "mobilenet_v2", "resnet18_codan", "torchvision_classifier",
    "user_classifier", "HaarDetector", "MTCNNDetector", "TorchvisionDetector", "YuNetDetector", "user_detector",
    "RetinaFaceDetector", "ESPNetSegmenter", "ESPNetv2Segmenter",
    "TorchvisionSegmenter", "user_segmenter",
]  # fmt: skip
