"""The paper's task suites (Table 4): CODaN classification, DARK FACE detection, BDD100k-night segmentation,
each scored by one frozen task model of `gefu.bench.tasks`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ... import metrics
from ..datasets import CITYSCAPES_CLASSES, load_label
from .base import SUITES, Aggregate, Metric, Sample, stable_hash
from .dataset import PAPER, DatasetSuite
from .scoring import boxes_array, build_task, classify, detect


class TaskSuite(DatasetSuite):
    """A dataset scored by one frozen task model of `gefu.bench.tasks`.

    `model` is its registry name, `weights` its checkpoint (passed as the model's `checkpoint=`), and every
    other keyword that is not an option of the suite itself goes to the model's factory (e.g. `arch=` for
    torchvision models, `target=` for your own module).
    """

    kind: ClassVar[str] = ""  # classifier / detector / segmenter
    default_model: ClassVar[str] = ""
    paper_model: ClassVar[str] = ""  # the frozen model behind the published numbers

    def __init__(self, data: str | None, model: str | None, weights: str | None,
                 suite_options: dict[str, Any], model_options: dict[str, Any]) -> None:
        weights = str(Path(weights).expanduser().resolve()) if weights else None
        if weights is not None and not Path(weights).is_file():
            raise FileNotFoundError(f"task weights {weights}: no such file")
        super().__init__(data=data, model=model or self.default_model, weights=weights,
                         model_options=dict(model_options), **suite_options)
        self.model: Any = None

    def score_key(self) -> str:
        return stable_hash(self.config())

    def _load_model(self) -> None:
        o = self.options
        opts = {**o["model_options"], **({"checkpoint": o["weights"]} if o["weights"] else {})}
        try:
            self.model = build_task(self.kind, o["model"], self.device, **opts)
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f"{self.name}: the frozen {self.kind} {o['model']!r} cannot be loaded: {err}. Pass its checkpoint "
                f"with --task-weights PATH (the paper used {self.paper_model})"
            ) from None

    def prepare(self, cache_dir, device="cpu", limit=None, progress=None) -> list[Sample]:
        self.device = torch.device(device)
        samples = self._samples(limit)
        self._load_model()
        return samples

    def conventions(self) -> dict[str, str]:
        o = self.options
        desc = f"{self.kind} {o['model']!r}" + "".join(f", {k}={v}" for k, v in o["model_options"].items())
        desc += f", weights {o['weights']}" if o["weights"] else ""
        return {"data": f"{self.dataset} at {o['data']}",
                "model": f"{desc}; the paper's numbers come from {self.paper_model}"}


@SUITES.register("codan")
class CODaNSuite(TaskSuite):
    """CODaN `test_night` (2,500 images, 10 classes): top-1 of a ResNet-18 trained on CODaN day images."""

    name = "codan"
    title = "CODaN night (classification)"
    dataset = "codan"
    layout = "test_night/<Class>/*.jpg"
    kind = "classifier"
    default_model = "resnet18-codan"
    paper_model = "the authors' ResNet-18 trained on CODaN day images"
    paper_source = PAPER
    metrics = (Metric("top1", "Top-1 (%)", True, ".2f"),)
    published = {"scuf": {"top1": 60.92}, "none": {"top1": 53.24}}

    def __init__(self, data: str | None = None, model: str | None = None, weights: str | None = None,
                 **model_options: Any) -> None:
        super().__init__(data, model, weights, {}, model_options)

    def conventions(self) -> dict[str, str]:
        return {**super().conventions(),
                "top1": "% of images whose argmax class equals the folder's class; full resolution, ToTensor + "
                "ImageNet mean/std (applied by the classifier), no resize"}

    def score(self, sample: Sample, enhanced: torch.Tensor) -> dict[str, Any]:
        return {"pred": classify(self.model, enhanced.to(self.device))}

    def aggregate(self, samples, records) -> Aggregate:
        preds = [records[s.id]["pred"] for s in samples]
        return Aggregate({"top1": 100.0 * metrics.top1(torch.tensor(preds), torch.tensor([s.target for s in samples]))})


@SUITES.register("darkface", "dark-face")
class DarkFaceSuite(TaskSuite):
    """DARK FACE (the paper: a 600-image test list): face-detection mAP at IoU 0.5, VOC all-point."""

    name = "darkface"
    title = "DARK FACE (face detection)"
    dataset = "darkface"
    layout = "image/*.png + label/*.txt (+ test_list=FILE)"
    kind = "detector"
    default_model = "yunet"
    paper_model = "a YOLOv3 trained on WIDER FACE (mmdetection 2.7)"
    paper_source = PAPER
    metrics = (Metric("map", "mAP (%)", True, ".2f"),)
    published = {"scuf": {"map": 16.9}}

    def __init__(self, data: str | None = None, model: str | None = None, weights: str | None = None,
                 test_list: str | None = None, **model_options: Any) -> None:
        test_list = str(Path(test_list).expanduser().resolve()) if test_list else None
        super().__init__(data, model, weights, {"test_list": test_list}, model_options)

    def dataset_options(self) -> dict[str, Any]:
        return {"test_list": self.options["test_list"]} if self.options["test_list"] else {}

    def note(self) -> str:
        if self.options["model"] != "yolov3":
            return (f"Detector {self.options['model']!r} is not the paper's ({self.paper_model}): the published "
                    "mAP is shown for reference, not for comparison.")
        return ""

    def conventions(self) -> dict[str, str]:
        return {**super().conventions(),
                "map": "VOC all-point AP at IoU 0.5 (IoU without +1), all detections the detector returns, ×100"}

    def score(self, sample: Sample, enhanced: torch.Tensor) -> dict[str, Any]:
        return {"dets": detect(self.model, enhanced).round(3).tolist()}

    def aggregate(self, samples, records) -> Aggregate:
        dets = [boxes_array(records[s.id]["dets"]) for s in samples]
        gts = [np.asarray(s.target, dtype=np.float64).reshape(-1, 4) for s in samples]
        return Aggregate({"map": 100.0 * float(metrics.voc_ap(dets, gts, iou_threshold=0.5))})


@SUITES.register("bdd-night", "bdd100k-night")
class BDDNightSuite(TaskSuite):
    """BDD100k-night (34 images, Cityscapes trainIds, 255 = ignore): mIoU over 19 classes.

    protocol="standard" (default): full resolution, absent classes left out of the mean (nanmean).
    protocol="official": the authors' script — image and label resized to 360×640 (bilinear / nearest) and an
    absent class scored 0 over all 19 classes. Default is standard because it does not reward or punish a
    method for classes that never occur in the 34 images; use official to compare with the paper.
    """

    name = "bdd-night"
    title = "BDD100k-night (segmentation)"
    dataset = "bdd-night"
    layout = "images/*.jpg + labels/*.png (trainIds)"
    kind = "segmenter"
    default_model = "torchvision"
    paper_model = "a RefineNet trained on Cityscapes"
    paper_source = PAPER
    metrics = (Metric("miou", "mIoU (%)", True, ".2f"),)
    published = {"scuf": {"miou": 20.1}}
    num_classes = 19

    def __init__(self, data: str | None = None, model: str | None = None, weights: str | None = None,
                 protocol: str = "standard", **model_options: Any) -> None:
        if protocol not in ("standard", "official"):
            raise ValueError(f"protocol must be 'standard' or 'official', got {protocol!r}")
        super().__init__(data, model, weights, {"protocol": protocol}, model_options)

    def _load_model(self) -> None:
        o = self.options
        if o["model"] == "torchvision" and "arch" not in o["model_options"]:
            raise ValueError(
                "bdd-night needs a Cityscapes segmenter (19 trainId classes), e.g. --task-model torchvision "
                "--option suite.arch=deeplabv3_resnet50 --task-weights city.pth, or your own with --task-model "
                "module --option suite.target=my_pkg.seg:build (the paper used a RefineNet)"
            )
        super()._load_model()

    def conventions(self) -> dict[str, str]:
        std = self.options["protocol"] == "standard"
        return {**super().conventions(),
                "miou": "one confusion matrix over the whole set (19 classes, 255 ignored), ×100; "
                + ("standard protocol: full resolution, absent classes excluded (nanmean)" if std else
                   "official protocol: image and label resized to 360×640, absent classes scored 0")}

    def score(self, sample: Sample, enhanced: torch.Tensor) -> dict[str, Any]:
        label = load_label(sample.target)  # (H, W) int64
        img = enhanced
        if self.options["protocol"] == "official":
            img = F.interpolate(img[None], size=(360, 640), mode="bilinear", align_corners=False)[0].clamp(0, 1)
            label = F.interpolate(torch.from_numpy(label)[None, None].float(), size=(360, 640),
                                  mode="nearest")[0, 0].long().numpy()
        with torch.inference_mode():
            pred = np.asarray(self.model(img))  # (H, W) int64 class ids
        if pred.shape != label.shape:
            pred = F.interpolate(torch.from_numpy(pred.astype(np.float32))[None, None], size=label.shape,
                                 mode="nearest")[0, 0].numpy().astype(np.int64)
        cm = metrics.confusion_matrix([pred], [label], self.num_classes, ignore_index=255)
        return {"cm": cm.tolist()}

    def aggregate(self, samples, records) -> Aggregate:
        cm = sum(np.asarray(records[s.id]["cm"], dtype=np.int64) for s in samples)
        absent = "nan" if self.options["protocol"] == "standard" else "zero"
        miou, per_class = metrics.iou_from_confusion(cm, absent=absent)
        per = {f"iou_{c.replace(' ', '_')}": 100.0 * float(v) for c, v in zip(CITYSCAPES_CLASSES, per_class)
               if not math.isnan(v)}
        return Aggregate({"miou": 100.0 * miou, **per})
