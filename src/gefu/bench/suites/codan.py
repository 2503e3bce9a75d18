"""CODaN night classification (the paper's Table 2): top-1 of the authors' day-trained ResNet-18."""

from __future__ import annotations

from typing import Any

import torch

from ... import metrics
from . import published
from .base import SUITES, Aggregate, Metric, Sample
from .scoring import check_protocol, classify
from .task_suite import TaskSuite


@SUITES.register("codan")
class CODaNSuite(TaskSuite):
    """CODaN `test_night` (2,500 images of 224×224, 10 classes): top-1 of a ResNet-18 trained on CODaN day images.

    The official evaluation (`gefu_eval/classification/eval.py`) is ToTensor + ImageNet mean/std at native size
    and argmax, which is what gefu does; its checkpoint loading (`ResNet_BYOL` wrapper, `strict=False`) is
    handled by the `resnet18-codan` classifier, which reports every key it skips (see the report's notes).
    """

    name = "codan"
    title = "CODaN night (classification)"
    dataset = "codan"
    layout = "test_night/<Class>/*.jpg"
    kind = "classifier"
    default_model = "resnet18-codan"
    paper_model = "the authors' ResNet-18 trained on CODaN day images (model_best.pt of the GEFU release)"
    paper_capable = ("resnet18-codan", "module", "user")
    table = published.CODAN
    metrics = (Metric("top1", "Top-1 (%)", True, ".2f"),)

    def __init__(self, data: str | None = None, model: str | None = None, weights: str | None = None,
                 protocol: str = "standard", **model_options: Any) -> None:
        super().__init__(data, model, weights, {"protocol": check_protocol(protocol)}, model_options)

    def protocol_note(self) -> str:
        return ""  # both protocols score CODaN the same way (the official one has nothing to fix)

    def conventions(self) -> dict[str, str]:
        conv = {**super().conventions(),
                "top1": "% of images whose argmax class equals the folder's class; native resolution (224×224), "
                "ToTensor + ImageNet mean/std (applied by the classifier), no resize"}
        report = getattr(self.model, "load_report", None)
        if report:
            conv["checkpoint"] = report
        return conv

    def score(self, sample: Sample, enhanced: torch.Tensor) -> dict[str, Any]:
        return {"pred": classify(self.model, enhanced.to(self.device))}

    def aggregate(self, samples, records) -> Aggregate:
        preds = [records[s.id]["pred"] for s in samples]
        top1 = 100.0 * metrics.top1(torch.tensor(preds), torch.tensor([s.target for s in samples]))
        summary = getattr(self.model, "load_summary", "")
        return Aggregate({"top1": top1}, notes=[summary] if summary else [])
