"""BDD100k-night semantic segmentation (the paper's Table 2): mIoU over Cityscapes' 19 classes.

protocol="standard" (default): the segmenter's class ids at full resolution, absent classes left out of the
mean (nanmean): it neither rewards nor punishes a method for classes that never occur in the 34 images.
protocol="official": the authors' `gefu_eval/segmentation/eval.py` — image resized to 640×360 with PIL LANCZOS,
label with PIL NEAREST; multi-scale inference: the 640×360 image resized again (LANCZOS) by 0.5, 0.75 and 1.0,
each scale's logits resized bilinearly (align_corners=True) to 360×640 and summed, argmax; an absent class
scores 0 over all 19. The official multi-scale inputs are ToTensor only — [0, 1] without the ImageNet mean/std
its single-scale path applies; a segmenter given as your module receives exactly that, the torchvision one
normalises unless `normalize=False`.

Under both, a label value outside [0, 19) other than 255 is an error naming the file (checked before any
enhancement): the official script stops on it too, and dropping such pixels would score e.g. a labelIds PNG
on half its pixels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ... import metrics
from ..datasets import CITYSCAPES_CLASSES, load_label
from . import published
from .base import SUITES, Aggregate, Metric, Sample
from .scoring import check_protocol
from .task_suite import TaskSuite

OFFICIAL_SIZE = (360, 640)  # (H, W)
OFFICIAL_SCALES = (0.5, 0.75, 1.0)
IGNORE_INDEX = 255


def official_inputs(image: torch.Tensor, label: np.ndarray) -> tuple[list[torch.Tensor], np.ndarray]:
    """The official multi-scale inputs: image (3, H, W) in [0, 1] (8-bit values), label (H, W) →
    ([(3, h_s, w_s) per scale], label (360, 640)). PIL LANCZOS for the image, PIL NEAREST for the label."""
    h, w = OFFICIAL_SIZE
    u8 = (image.detach().float().clamp(0, 1).cpu().permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    img = Image.fromarray(u8).resize((w, h), Image.LANCZOS)
    lab = np.asarray(Image.fromarray(label.astype(np.uint8)).resize((w, h), Image.NEAREST)).astype(np.int64)
    scaled = []
    for s in OFFICIAL_SCALES:
        x = np.asarray(img.resize((int(w * s), int(h * s)), Image.LANCZOS), dtype=np.float32) / 255.0
        scaled.append(torch.from_numpy(x).permute(2, 0, 1))  # (3, h_s, w_s)
    return scaled, lab


def multiscale_predict(segmenter: Any, scaled: list[torch.Tensor], size: tuple[int, int]) -> np.ndarray:
    """Sum of each scale's logits resized to `size` (bilinear, align_corners=True) → argmax (H, W) int64."""
    total = None
    for x in scaled:
        logits = segmenter.logits(x).float()  # (C, h_s, w_s)
        up = F.interpolate(logits[None], size=size, mode="bilinear", align_corners=True)[0]  # (C, H, W)
        total = up if total is None else total + up
    return total.argmax(dim=0).cpu().numpy().astype(np.int64)


@SUITES.register("bdd-night", "bdd100k-night")
class BDDNightSuite(TaskSuite):
    """BDD100k-night (34 images, Cityscapes trainIds, 255 = ignore): mIoU over 19 classes (see the module doc).

    The segmenter: the paper's RefineNet when you give it (`--task-model module|torchvision` with its
    checkpoint); otherwise ESPNetv2 (s = 2.0) with its official Cityscapes weights stands in (the report says
    so; `--task-model espnet` picks ESPNet instead). Both predict a 20th background class, scored as a miss.
    """

    name = "bdd-night"
    title = "BDD100k-night (segmentation)"
    dataset = "bdd-night"
    layout = "images/test/*.jpg + labels/test/*.png (trainIds)"
    kind = "segmenter"
    default_model = "espnetv2"
    paper_model = "RefineNet-101 trained on Cityscapes (best_weights.pth.tar of the GEFU release)"
    stand_ins = {"espnetv2": "ESPNetv2 s=2.0 (Cityscapes, official weights espnetv2-cityscapes)",
                 "espnet": "ESPNet p=2 q=8 (Cityscapes, official weights espnet-cityscapes)"}
    table = published.BDD_NIGHT
    metrics = (Metric("miou", "mIoU (%)", True, ".2f"),)
    num_classes = len(CITYSCAPES_CLASSES)

    def __init__(self, data: str | None = None, model: str | None = None, weights: str | None = None,
                 protocol: str = "standard", image_dir: str | None = None, label_dir: str | None = None,
                 **model_options: Any) -> None:
        super().__init__(data, model, weights, {"protocol": check_protocol(protocol), "image_dir": image_dir,
                                                "label_dir": label_dir}, model_options)

    def dataset_options(self) -> dict[str, Any]:
        return {k: self.options[k] for k in ("image_dir", "label_dir") if self.options[k]}

    def note(self) -> str:
        return " ".join(t for t in (self.model_note(), self.protocol_note()) if t)

    def _load_model(self) -> None:
        o = self.options
        if o["model"] == "torchvision" and "arch" not in o["model_options"]:
            raise ValueError(
                "bdd-night with --task-model torchvision needs the architecture of your Cityscapes segmenter "
                "(19 trainId classes), e.g. --option suite.arch=deeplabv3_resnet50 --task-weights city.pth; or your "
                "own with --task-model module --option suite.target=my_pkg.seg:build (the paper used a RefineNet)"
            )
        super()._load_model()

    def prepare(self, cache_dir, device="cpu", limit=None, progress=None) -> list[Sample]:
        samples = self._samples(limit)
        for s in samples:  # fail on a wrong label file before any image is enhanced
            load_label(s.target, num_classes=self.num_classes, ignore_index=IGNORE_INDEX)
        self.device = torch.device(device)
        self._load_model()
        return samples

    def conventions(self) -> dict[str, str]:
        std = self.options["protocol"] == "standard"
        return {**super().conventions(),
                "miou": "one confusion matrix over the whole set (19 classes, 255 ignored), ×100; "
                + ("standard protocol: full resolution, absent classes excluded (nanmean)" if std else
                   "official protocol: image (PIL LANCZOS) and label (PIL NEAREST) resized to 640×360, logits of "
                   "scales 0.5/0.75/1.0 summed, absent classes scored 0")}

    def score(self, sample: Sample, enhanced: torch.Tensor) -> dict[str, Any]:
        label = load_label(sample.target, num_classes=self.num_classes, ignore_index=IGNORE_INDEX)  # (H, W)
        with torch.inference_mode():
            if self.options["protocol"] == "official":
                scaled, label = official_inputs(enhanced, label)
                pred = multiscale_predict(self.model, scaled, OFFICIAL_SIZE)
            else:
                pred = np.asarray(self.model(enhanced))  # (H, W) int64 class ids
        if pred.shape != label.shape:
            pred = F.interpolate(torch.from_numpy(pred.astype(np.float32))[None, None], size=label.shape,
                                 mode="nearest")[0, 0].numpy().astype(np.int64)
        cm = metrics.confusion_matrix([pred], [label], self.num_classes, ignore_index=IGNORE_INDEX)
        return {"cm": cm.tolist()}

    def aggregate(self, samples, records) -> Aggregate:
        cm = sum(np.asarray(records[s.id]["cm"], dtype=np.int64) for s in samples)
        absent = "nan" if self.options["protocol"] == "standard" else "zero"
        miou, per_class = metrics.iou_from_confusion(cm, absent=absent)
        per = {f"iou_{c.replace(' ', '_')}": 100.0 * float(v) for c, v in zip(CITYSCAPES_CLASSES, per_class)
               if not math.isnan(v)}
        table = {c: 100.0 * float(v) for c, v in zip(CITYSCAPES_CLASSES, per_class) if not math.isnan(v)}
        return Aggregate({"miou": 100.0 * miou, **per}, per_class={"IoU (%)": table})
