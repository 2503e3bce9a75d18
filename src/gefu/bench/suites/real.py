"""Suites over real low-light captures that are not the paper's: LOL-v1 (paired) and folders of real dark photos
without references (DICM, LIME, your own).

- `lol-v1`: the LOL-v1 layout (`eval15/{low,high}`, `our485/{low,high}`, or any folder with `low/` and `high/`),
  pairs by file name, PSNR / SSIM / LPIPS with the paper's IQA conventions (`scoring.IQAScorer`), no resizing
  (LOL-v1 pairs share their size; an output of another size is an error, not resized).
- `unpaired`: every image under `--data` (recursively), scored by the no-reference measures of `gefu.metrics`
  that are available (`NR_METRICS`: NIQE, BRISQUE); a measure that is missing is left out and the report says
  so.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import torch

from ... import metrics
from ...imageio import find_images, load_image
from ..datasets import load_dataset
from .base import SUITES, Aggregate, Metric, Sample, Suite, mean_finite, stable_hash
from .paper_iqa import IQASuite

log = logging.getLogger(__name__)

LOL_V1_SPLITS = ("eval15", "our485")


def lol_v1_folder(root: Path, split: str) -> Path:
    """The folder holding `low/` and `high/`: `root` itself when it has them, else `root/<split>`."""
    if (root / "low").is_dir() and (root / "high").is_dir():
        return root
    base = root / split
    if (base / "low").is_dir() and (base / "high").is_dir():
        return base
    found = ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir())[:12]) if root.is_dir() else "nothing"
    raise FileNotFoundError(
        f"LOL-v1: expected {root}/{split}/{{low,high}} or {root}/{{low,high}} (the LOL-v1 layout: "
        f"eval15/{{low,high}}, our485/{{low,high}}), found {found}"
    )


@SUITES.register("lol-v1", "lolv1")
class LOLv1Suite(IQASuite):
    """LOL-v1 pairs (Wei et al., BMVC 2018): PSNR / SSIM / LPIPS against the normal-light shot.

    `data` is the LOL-v1 folder (then `split`, default eval15, picks the sub-folder) or any folder with `low/`
    and `high/`. Pairs by identical file stem. No resizing: LOL-v1 outputs must keep the input size.
    """

    name = "lol-v1"
    title = "LOL-v1 (IQA, real pairs)"
    dataset = "lol-v1"
    layout = "eval15/{low,high}, our485/{low,high}, or a folder with low/ and high/"

    def __init__(self, data: str | None = None, split: str = "eval15", **options: Any) -> None:
        if split not in LOL_V1_SPLITS:
            raise ValueError(f"LOL-v1 split must be one of {LOL_V1_SPLITS}, got {split!r}")
        super().__init__(data=data, split=split, **options)
        self.folder = lol_v1_folder(Path(self.options["data"]), split)

    def input_key(self) -> str:
        return stable_hash({"dataset": self.dataset, "folder": str(self.folder)})

    def _samples(self, limit: int | None) -> list[Sample]:
        self.ds = load_dataset("paired", self.folder, low="low", high="high", key="stem")
        items = list(self.ds)[: int(limit)] if limit is not None else list(self.ds)
        return [Sample(id=it.id, input=Path(it.image), target=it.target) for it in items]

    def score(self, sample: Sample, enhanced: torch.Tensor) -> dict[str, Any]:
        ref = load_image(sample.reference)
        if ref.shape != enhanced.shape:
            raise ValueError(f"{sample.id}: output {tuple(enhanced.shape)} and reference {tuple(ref.shape)} differ "
                             "in size; LOL-v1 is scored without resizing")
        return self.iqa(enhanced.to(self.device), ref.to(self.device))

    def conventions(self) -> dict[str, str]:
        conv = super().conventions()
        conv["data"] = f"LOL-v1 pairs in {self.folder} (low/ vs high/, paired by file stem)"
        conv["resize"] = "none: outputs must keep the input size (LOL-v1 low and high shots share theirs)"
        return conv


# ----------------------------------------------------------------------------------------------------------------
# Unpaired real photos: no-reference IQA
# ----------------------------------------------------------------------------------------------------------------

#: No-reference measures the suite reports when `gefu.metrics` has them: key → (function name, column).
NR_METRICS: dict[str, tuple[str, Metric]] = {
    "niqe": ("niqe", Metric("niqe", "NIQE", False, ".3f")),
    "brisque": ("brisque", Metric("brisque", "BRISQUE", False, ".2f")),
}


def available_nr_metrics() -> dict[str, Callable[..., Any]]:
    """key → function for the no-reference measures `gefu.metrics` provides in this installation."""
    return {k: getattr(metrics, fn) for k, (fn, _) in NR_METRICS.items() if callable(getattr(metrics, fn, None))}


@SUITES.register("unpaired", "folder")
class UnpairedSuite(Suite):
    """A folder of real low-light photos without references (DICM, LIME, yours): no-reference IQA per image
    (lower NIQE / BRISQUE = more natural-looking), then the mean. `metrics` (comma list) restricts the measures.
    """

    name = "unpaired"
    title = "Real low-light photos (no-reference IQA)"
    metrics = tuple(m for _, m in NR_METRICS.values())

    def __init__(self, data: str | None = None, metrics: list[str] | str | None = None) -> None:
        if data is None:
            raise ValueError("the unpaired suite needs a folder of real low-light photos: pass --data DIR "
                             "(e.g. DICM, LIME or your own)")
        root = Path(data).expanduser().resolve()
        if not root.is_dir():
            raise FileNotFoundError(f"unpaired suite: {root} is not a folder")
        if isinstance(metrics, str):
            metrics = [m for m in metrics.split(",") if m]
        unknown = sorted(set(metrics or []) - set(NR_METRICS))
        if unknown:
            raise ValueError(f"unknown no-reference metric(s) {unknown}; choose from {list(NR_METRICS)}")
        super().__init__(data=str(root), metrics=list(metrics) if metrics else None)
        wanted = metrics or list(NR_METRICS)
        have = available_nr_metrics()
        self.funcs = {k: have[k] for k in wanted if k in have}
        self.missing = [k for k in wanted if k not in have]

    def input_key(self) -> str:
        return stable_hash({"unpaired": self.options["data"]})

    def score_key(self) -> str:
        return stable_hash({"input": self.input_key(), "metrics": sorted(self.funcs)})

    def prepare(self, cache_dir, device="cpu", limit=None, progress=None) -> list[Sample]:
        self.device = torch.device(device)
        if not self.funcs:
            raise ValueError(
                "no no-reference IQA measure is available in gefu.metrics (wanted: "
                f"{', '.join(self.missing)}); NIQE and BRISQUE need `gefu weights provision`"
            )
        files = find_images([self.options["data"]])
        if not files:
            raise ValueError(f"unpaired suite: no images found in {self.options['data']}")
        files = files[: int(limit)] if limit is not None else files
        return [Sample(id=rel.as_posix(), input=path) for path, rel in files]

    def score(self, sample: Sample, enhanced: torch.Tensor) -> dict[str, Any]:
        x = enhanced[None]  # (1, 3, H, W)
        return {k: float(torch.as_tensor(fn(x)).reshape(-1)[0]) for k, fn in self.funcs.items()}

    def aggregate(self, samples, records) -> Aggregate:
        recs = [records[s.id] for s in samples]
        out = {k: mean_finite([r.get(k) for r in recs]) for k in self.funcs}
        notes = [f"{k.upper()} is not available in this installation of gefu.metrics; it is left out"
                 for k in self.missing]
        return Aggregate(out, {}, notes)

    def conventions(self) -> dict[str, str]:
        conv = {"data": f"every image under {self.options['data']} (no references)"}
        for k in self.funcs:
            doc = (getattr(self.funcs[k], "__doc__", "") or "").strip().splitlines()
            conv[k] = (doc[0] if doc else k) + "; per image, then the mean (lower is better)"
        return conv

    def note(self) -> str:
        return ("No-reference measures judge how natural an output looks, not whether it is faithful to the scene: "
                "a method can lower NIQE / BRISQUE by inventing texture.")
