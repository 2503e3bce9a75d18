"""DARK FACE face detection (the paper's Table 2): mAP at IoU 0.5 of a frozen face detector.

protocol="standard" (default): annotations as written (`label/*.txt` when present, else the VOC XML), boxes
compared as given; `difficult` XML faces ignored. protocol="official": exactly the authors' evaluation (MAET's
`UG2FaceDataset` + mmdetection 2.7 `eval_map`): the VOC XML of `main/val.txt`'s images, coordinates `int()`-
truncated and shifted by − 1, `difficult` faces ignored (neither hit nor miss). The − 1 shift assumes 1-based
VOC coordinates; on DARK FACE's tiny faces it moves a box by a large fraction of its size, which is why it is
not the default. Under both protocols each image keeps its detections with score ≥ 0.05, at most 100 (the
paper's YOLOv3 test settings), whatever the detector.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ... import metrics
from . import published
from .base import SUITES, Aggregate, Metric, Sample
from .scoring import boxes_array, check_protocol, detect
from .task_suite import TaskSuite

#: The paper's YOLOv3 test settings (mmdetection `test_cfg`: score_thr 0.05, max_per_img 100).
SCORE_THRESHOLD = 0.05
MAX_PER_IMAGE = 100


def keep_top(dets: np.ndarray, score_threshold: float = SCORE_THRESHOLD,
             max_per_image: int = MAX_PER_IMAGE) -> np.ndarray:
    """(K, 5) detections → those with score ≥ threshold, the `max_per_image` highest-scored, by score."""
    dets = dets[dets[:, 4] >= score_threshold]
    return dets[np.argsort(-dets[:, 4], kind="stable")[:max_per_image]]


@SUITES.register("darkface", "dark-face")
class DarkFaceSuite(TaskSuite):
    """DARK FACE (the paper: `main/val.txt`, 600 images): face-detection mAP at IoU 0.5, VOC all-point.

    The detector: the paper's YOLOv3 when you give it (`--task-model module --option suite.target=...` with its
    checkpoint); otherwise RetinaFace MobileNet-0.25 with its official WIDER FACE weights stands in (the report
    says so). Its defaults already are the protocol's: score ≥ 0.05, at most 100 per image.

    Suite options (`--option suite.KEY=VALUE`): protocol, test_list, image_dir, label_dir, xml_dir,
    annotations ("auto" / "txt" / "xml"), score_threshold (0.05), max_per_image (100); any other key goes to
    the detector (e.g. `conf=` for YuNet, which defaults to 0.05 here so that it reports low-score faces too).
    """

    name = "darkface"
    title = "DARK FACE (face detection)"
    dataset = "darkface"
    layout = "DARK_FACE/{images,xml,main/val.txt} or image/*.png + label/*.txt"
    kind = "detector"
    default_model = "retinaface"
    paper_model = "YOLOv3 (mmdetection 2.7, Darknet-53; the yolov3.pth checkpoint of the GEFU release)"
    stand_ins = {"retinaface": "RetinaFace MobileNet-0.25 (WIDER FACE, official weights retinaface-mnet025)",
                 "yunet": "YuNet (libfacedetection)", "mtcnn": "MTCNN (facenet-pytorch)",
                 "haar": "OpenCV's Haar cascade"}
    table = published.DARKFACE
    metrics = (Metric("map", "mAP (%)", True, ".2f"),)

    def __init__(self, data: str | None = None, model: str | None = None, weights: str | None = None,
                 protocol: str = "standard", test_list: str | None = None, image_dir: str | None = None,
                 label_dir: str | None = None, xml_dir: str | None = None, annotations: str = "auto",
                 score_threshold: float = SCORE_THRESHOLD, max_per_image: int = MAX_PER_IMAGE,
                 **model_options: Any) -> None:
        if (model or self.default_model) == "yunet":
            model_options.setdefault("conf", SCORE_THRESHOLD)
        suite_options = {
            "protocol": check_protocol(protocol),
            "test_list": str(Path(test_list).expanduser().resolve()) if test_list else None,
            "image_dir": image_dir, "label_dir": label_dir, "xml_dir": xml_dir, "annotations": annotations,
            "score_threshold": float(score_threshold), "max_per_image": int(max_per_image),
        }
        super().__init__(data, model, weights, suite_options, model_options)

    def dataset_options(self) -> dict[str, Any]:
        o = self.options
        opts = {k: o[k] for k in ("test_list", "image_dir", "label_dir", "xml_dir") if o[k]}
        if o["protocol"] == "official":
            return {**opts, "annotations": "xml", "official_boxes": True}
        return {**opts, "annotations": o["annotations"]}

    def note(self) -> str:
        return " ".join(t for t in (self.model_note(), self.protocol_note()) if t)

    def conventions(self) -> dict[str, str]:
        o = self.options
        info = self.ds.info if self.ds is not None else {}
        rule = ("official: VOC XML, int() then − 1 on every coordinate, difficult faces ignored"
                if o["protocol"] == "official" else
                "standard: annotations as written, difficult (XML) faces ignored")
        return {**super().conventions(),
                "annotations": f"{info.get('annotations', '?')}; test list {info.get('test_list') or 'all images'}",
                "boxes": rule,
                "map": f"VOC all-point AP at IoU 0.5 (IoU without +1), detections with score ≥ "
                f"{o['score_threshold']:g}, at most {o['max_per_image']} per image, ×100"}

    def score(self, sample: Sample, enhanced: torch.Tensor) -> dict[str, Any]:
        o = self.options
        dets = keep_top(detect(self.model, enhanced), o["score_threshold"], o["max_per_image"])
        return {"dets": dets.round(3).tolist()}

    def aggregate(self, samples, records) -> Aggregate:
        dets = [boxes_array(records[s.id]["dets"]) for s in samples]
        gts = [np.asarray(s.target.boxes, dtype=np.float64).reshape(-1, 4) for s in samples]
        ignore = [np.asarray(s.target.ignore, dtype=np.float64).reshape(-1, 4) for s in samples]
        ap = 100.0 * float(metrics.voc_ap(dets, gts, iou_threshold=0.5, ignore=ignore))
        return Aggregate({"map": ap}, per_class={"AP50 (%)": {"face": ap}})
