"""Benchmark suites: which images, which frozen task models and metrics, which conventions, which paper numbers.

A suite turns a data source into a list of `Sample`s, scores one enhanced image at a time into a small
JSON-serialisable record, and aggregates the records of a whole run into metrics (`base.Suite`). The runner
(`gefu.bench.runner`) does the enhancing, caching and resuming; the suite knows nothing about enhancers.

Suites (`create_suite(name, ...)`, `list_suites()`), one module per family:

- `mini` (`mini.py`) — GEFU-mini, the offline smoke benchmark: real photographs shipped with installed packages,
  darkened synthetically, scored against the originals (model agreement, not human labels).
- `lol`, `lsrw` (`paper_iqa.py`) — IQA on LOL-v2-real and LSRW (the paper's Table 2).
- `lol-v1`, `unpaired` (`real.py`) — real captures beyond the paper's tables: LOL-v1 pairs (PSNR / SSIM / LPIPS)
  and folders of real dark photos without references (no-reference IQA: NIQE, BRISQUE).
- `codan`, `darkface`, `bdd-night` (`paper_tasks.py`) — classification top-1, face-detection mAP and
  segmentation mIoU (the paper's Table 4). They need `data=DIR` and, for the frozen models that cannot be had
  offline, a user checkpoint.

`base.py` holds the interface and registry, `scoring.py` the IQA and task-model helpers the suites share,
`dataset.py` the base of the suites over a real dataset.
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
from .mini import MiniSuite, downscale, level_seed, make_mini_images
from .paper_iqa import IQASuite, LOLSuite, LSRWSuite
from .real import NR_METRICS, LOLv1Suite, UnpairedSuite, available_nr_metrics
from .paper_tasks import BDDNightSuite, CODaNSuite, DarkFaceSuite, TaskSuite
from .scoring import IQA_METRICS, TIME_METRIC, IQAScorer

__all__ = [
    "SUITES", "Aggregate", "Metric", "ProgressBar", "ProgressFactory", "Sample", "Suite", "create_suite",
    "list_suites", "open_bar", "stable_hash", "DatasetSuite", "MiniSuite", "downscale", "level_seed",
    "make_mini_images", "IQASuite", "LOLSuite", "LSRWSuite", "TaskSuite", "CODaNSuite", "DarkFaceSuite",
    "BDDNightSuite", "LOLv1Suite", "UnpairedSuite", "NR_METRICS", "available_nr_metrics", "IQA_METRICS", "TIME_METRIC", "IQAScorer",
]  # fmt: skip
