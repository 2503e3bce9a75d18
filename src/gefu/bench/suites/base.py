"""The suite interface: samples, metric columns, aggregates, the registry, and small shared helpers.

A suite turns a data source into a list of `Sample`s (a low-light input image file plus whatever its score
needs: a reference image, a class, boxes, a label map), scores one enhanced image at a time into a small
JSON-serialisable record, and aggregates the records of a whole run into metrics. The runner
(`gefu.bench.runner`) does the enhancing, caching and resuming; the suite knows nothing about enhancers.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol

import numpy as np
import torch

from ...registry import Registry


class ProgressBar(Protocol):
    def update(self, n: int = 1) -> Any: ...
    def close(self) -> Any: ...


#: `progress(description, total) -> bar` — e.g. `lambda desc, total: tqdm(desc=desc, total=total)`.
ProgressFactory = Callable[[str, int], ProgressBar]


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def open_bar(progress: ProgressFactory | None, desc: str, total: int) -> ProgressBar:
    """A progress bar from the caller's factory, or a silent one."""
    return progress(desc, total) if progress is not None else _NoBar()


def stable_hash(obj: Any, n: int = 10) -> str:
    """Short hex digest of a JSON-able object (key order and process independent)."""
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:n]


def mean_finite(values: list[float | None]) -> float:
    """Mean of the values that are not None / nan (nan when none are left)."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


@dataclass(frozen=True)
class Metric:
    """One column of a results table."""

    key: str  # key in the record's `metrics`
    label: str  # column header
    higher_is_better: bool
    fmt: str = ".2f"  # format spec for tables


@dataclass
class Sample:
    """One benchmark image.

    `id` is stable across runs and file-system safe (it names the cached output `<id>.png`); `input` is the
    low-light image file; `group` names a breakdown (darkness level, camera); `reference` is the normal-light
    image for IQA; `target` is what the task score needs (class index, (M, 4) boxes, label-map path).
    """

    id: str
    input: Path
    group: str = ""
    reference: Path | None = None
    target: Any = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Aggregate:
    """A run's scores: overall metrics, per-group metrics, notes for the report (skips, caveats), optional 95 %
    intervals (group → metric → (low, high); group "" is the overall row) and per-class scores (table title →
    class → value, e.g. {"IoU (%)": {"road": 93.1, ...}})."""

    metrics: dict[str, float]
    breakdown: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    intervals: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)


class Suite:
    """Base class. Subclasses set the class attributes and implement `prepare`, `score`, `aggregate`.

    Lifecycle: `prepare(cache_dir, device, limit, progress)` → samples; `score(sample, enhanced)` per enhanced
    image → JSON-able record; `aggregate(samples, records)` → `Aggregate`. `input_key()` must change whenever
    the input images would change (it keys the enhanced-image cache); `score_key()` whenever scoring would
    change (it keys the per-record partial results). Both are valid after `prepare`.
    """

    name: ClassVar[str] = "suite"
    title: ClassVar[str] = ""
    metrics: ClassVar[tuple[Metric, ...]] = ()
    #: Where the published numbers come from, e.g. "Table 2 of the SCUF paper (ICCV 2025)".
    paper_source: ClassVar[str | None] = None
    #: Published numbers: method → metric key → value (only numbers checked against the paper).
    published: ClassVar[dict[str, dict[str, float]]] = {}

    def __init__(self, **options: Any) -> None:
        self.options: dict[str, Any] = dict(options)
        self.device = torch.device("cpu")

    # --- identity -------------------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {"suite": self.name, **self.options}

    def input_key(self) -> str:
        return stable_hash(self.config())

    def score_key(self) -> str:
        return stable_hash(self.config())

    def conventions(self) -> dict[str, str]:
        """Human-readable conventions used by this suite (go into results.json and the report)."""
        return {}

    def note(self) -> str:
        """A caveat the report must show next to the table ('' for none)."""
        return ""

    def reference_rows(self) -> dict[str, Path]:
        """Rows that are not methods (e.g. GEFU-mini's `clean` and `oracle`): name → folder holding
        `<sample id>.png` for every sample. The runner scores them like a method's outputs, before the methods,
        and the report shows them apart (never bold). Valid after `prepare`."""
        return {}

    def outcome(self, sample: Sample, record: dict[str, Any]) -> dict[str, Any]:
        """What the gallery shows under one output: {"caption": str, "boxes": [[x1, y1, x2, y2], ...],
        "gt_boxes": [...]} (all optional; boxes in pixels of the sample's image)."""
        return {}

    # --- work -----------------------------------------------------------------------------------------------
    def prepare(
        self,
        cache_dir: Path,
        device: str | torch.device = "cpu",
        limit: int | None = None,
        progress: ProgressFactory | None = None,
    ) -> list[Sample]:
        raise NotImplementedError

    def score(self, sample: Sample, enhanced: torch.Tensor) -> dict[str, Any]:
        """enhanced: (3, H, W) float [0, 1] (the cached 8-bit PNG, read back) → JSON-able record."""
        raise NotImplementedError

    def aggregate(self, samples: list[Sample], records: dict[str, dict[str, Any]]) -> Aggregate:
        raise NotImplementedError


SUITES: Registry[Suite] = Registry("suite")


def create_suite(name: str, **options: Any) -> Suite:
    """Build a registered suite, e.g. `create_suite("mini")` or `create_suite("lol", data="~/data/LOL-v2")`."""
    return SUITES.create(name, **options)


def list_suites() -> list[str]:
    return SUITES.names()
