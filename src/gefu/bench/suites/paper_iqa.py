"""The paper's IQA suites (its Table 4): LOL-v2-real and LSRW, full-reference PSNR / SSIM / LPIPS.

protocol="standard" (default) or "official" (the authors' `src/iqa_eval.py`): see `IQAScorer`. Both pair
outputs with references by file name. (The official script pairs `os.listdir` orders — its `sorted()` result is
discarded — which matches pairs only when both folders happen to list in the same order; gefu does not
reproduce that.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ...imageio import load_image
from . import published
from .base import SUITES, Aggregate, Sample, stable_hash
from .dataset import DatasetSuite
from .scoring import IQA_METRICS, PSNR_CAP_DB, IQAScorer, iqa_aggregate, psnr_cap_note


class IQASuite(DatasetSuite):
    metrics = IQA_METRICS

    def __init__(self, data: str | None = None, lpips: bool = True, lpips_net: str = "alex",
                 protocol: str = "standard", **options: Any):
        super().__init__(data=data, lpips=bool(lpips), lpips_net=lpips_net, protocol=protocol, **options)
        self.iqa = IQAScorer(use_lpips=bool(lpips), net=lpips_net, protocol=protocol)

    def score_key(self) -> str:
        return stable_hash({"input": self.input_key(), "lpips": self.iqa.has_lpips, "net": self.iqa.net,
                            "protocol": self.iqa.protocol, "psnr_cap": PSNR_CAP_DB})

    def note(self) -> str:
        return self.protocol_note()

    def conventions(self) -> dict[str, str]:
        return {"data": f"{self.dataset} at {self.options['data']}", "pairing": "by file name (gefu.bench.datasets)",
                **self.iqa.conventions()}

    def prepare(self, cache_dir, device="cpu", limit=None, progress=None) -> list[Sample]:
        self.device = torch.device(device)
        samples = self._samples(limit)
        for s in samples:
            s.reference = Path(s.target)
        self.iqa.check(self.device)
        return samples

    def score(self, sample: Sample, enhanced: torch.Tensor) -> dict[str, Any]:
        return self.iqa(enhanced.to(self.device), load_image(sample.reference).to(self.device))

    def aggregate(self, samples, records) -> Aggregate:
        groups = sorted({s.group for s in samples} - {""})
        breakdown = {g: iqa_aggregate([records[s.id] for s in samples if s.group == g]) for g in groups}
        notes = psnr_cap_note([records[s.id] for s in samples])
        notes += [] if self.iqa.has_lpips else [f"LPIPS skipped: {self.iqa.lpips_error}"]
        return Aggregate(iqa_aggregate([records[s.id] for s in samples]), breakdown if len(groups) > 1 else {},
                         notes)


@SUITES.register("lol", "lol-v2-real")
class LOLSuite(IQASuite):
    """LOL-v2-real test pairs (`Real_captured/Test/{Low,Normal}`, 100 pairs): PSNR, SSIM, LPIPS."""

    name = "lol"
    title = "LOL-v2-real (IQA)"
    dataset = "lol-v2-real"
    layout = "Real_captured/Test/{Low,Normal}"
    table = published.LOL


@SUITES.register("lsrw")
class LSRWSuite(IQASuite):
    """LSRW evaluation pairs (`Eval/{Huawei,Nikon}/{low,high}`): PSNR, SSIM, LPIPS, also per camera."""

    name = "lsrw"
    title = "LSRW (IQA)"
    dataset = "lsrw"
    layout = "Eval/{Huawei,Nikon}/{low,high}"
    table = published.LSRW

    def __init__(self, data: str | None = None, subsets: list[str] | str = ("Huawei", "Nikon"), **options: Any):
        if isinstance(subsets, str):
            subsets = [s for s in subsets.split(",") if s]
        super().__init__(data=data, subsets=list(subsets), **options)

    def dataset_options(self) -> dict[str, Any]:
        return {"subsets": self.options["subsets"]}

    def _group(self, sample_id: str) -> str:
        return sample_id.split("/", 1)[0]
