"""Benchmark suites: which images, which frozen task models and metrics, which conventions, which paper numbers.

A suite turns a data source into a list of `Sample`s, scores one enhanced image at a time into a small
JSON-serialisable record, and aggregates the records of a whole run into metrics (`base.Suite`). The runner
(`gefu.bench.runner`) does the enhancing, caching and resuming; the suite knows nothing about enhancers.

Suites (`create_suite(name, ...)`, `list_suites()`), one module per family:

- `mini` (`mini.py`) — GEFU-mini, the offline smoke benchmark: real photographs shipped with installed packages,
  darkened synthetically, scored against the originals (model agreement, not human labels).
- `lol`, `lsrw` (`paper_iqa.py`) — IQA on LOL-v2-real and LSRW (the paper's Table 4).
- `lol-v1`, `unpaired` (`real.py`) — real captures beyond the paper's tables: LOL-v1 pairs (PSNR / SSIM / LPIPS)
  and folders of real dark photos without references (no-reference IQA: NIQE, BRISQUE).
- `codan` (`codan.py`), `darkface` (`darkface.py`), `bdd-night` (`bdd_night.py`) — classification top-1,
  face-detection mAP and segmentation mIoU (the paper's Table 2). They need `data=DIR` and, for the frozen
  models that cannot be had offline, a user checkpoint.

Every paper suite takes `protocol="standard"` (the default: sane conventions) or `"official"` (exactly the
authors' evaluation code, quirks included; the published numbers were measured under it). `base.py` holds the
interface and registry, `scoring.py` the IQA and task-model helpers the suites share, `dataset.py` the base of
the suites over a real dataset, `task_suite.py` the base of those scored by a frozen task model, and
`published.py` the paper's numbers.
"""

from .base import (
    SUITES,
    Aggregate,
    Metric,
    ProgressBar,
    ProgressFactory,
    Sample,
    Suite,
    create_suite,
    list_suites,
    open_bar,
    stable_hash,
)
from .dataset import DatasetSuite
from .bdd_night import BDDNightSuite
from .codan import CODaNSuite
from .darkface import DarkFaceSuite
from .mini import MiniSuite, downscale, level_seed
from .paper_iqa import IQASuite, LOLSuite, LSRWSuite
from .real import NR_METRICS, LOLv1Suite, UnpairedSuite, available_nr_metrics
from .scoring import IQA_METRICS, PSNR_CAP_DB, TIME_METRIC, IQAScorer
from .task_suite import TaskSuite

__all__ = [
    "SUITES", "Aggregate", "Metric", "ProgressBar", "ProgressFactory", "Sample", "Suite", "create_suite",
    "list_suites", "open_bar", "stable_hash", "DatasetSuite", "MiniSuite", "downscale", "level_seed",
    "IQASuite", "LOLSuite", "LSRWSuite", "TaskSuite", "CODaNSuite", "DarkFaceSuite",
    "BDDNightSuite", "LOLv1Suite", "UnpairedSuite", "NR_METRICS", "available_nr_metrics", "IQA_METRICS",
    "PSNR_CAP_DB", "TIME_METRIC", "IQAScorer",
]  # fmt: skip
