"""The SCUF paper's published numbers (Wang et al., "From Enhancement to Understanding", ICCV 2025,
arXiv:2507.08380), with the table and the evaluation protocol each was measured under.

Table 2 of the paper reports the GEFU tasks (CODaN top-1, DARK FACE mAP, BDD100k-night mIoU); Table 4 the image
quality on LSRW and LOL-v2-real (PSNR / SSIM / LPIPS). Every number was produced with the authors' evaluation
code (github.com/wangsen99/GEFU: `gefu_eval/` and `src/iqa_eval.py`), i.e. gefu's `protocol="official"`.

Only numbers checked against the paper are entered. The baseline rows of both tables (no enhancement beyond
CODaN's 53.24, LIME, DUAL, Zero-DCE and the other compared methods) could not be read from the copy of the paper
available when this table was written (its stored text ends before the tables); they are listed in
`MISSING` and must be filled in from the paper, not guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PAPER = "Wang et al., ICCV 2025 (arXiv:2507.08380)"


@dataclass(frozen=True)
class PublishedTable:
    """One of the paper's tables, restricted to one suite: method → metric key → value."""

    table: str  # e.g. "Table 2"
    protocol: str  # the gefu protocol that reproduces the paper's evaluation
    rows: dict[str, dict[str, float]] = field(default_factory=dict)

    def source(self) -> str:
        return (f"{self.table} of {PAPER}, measured with the authors' evaluation code "
                f"(gefu protocol '{self.protocol}')")


TASKS = "Table 2"
IQA = "Table 4"

CODAN = PublishedTable(TASKS, "official", {"none": {"top1": 53.24}, "scuf": {"top1": 60.92}})
DARKFACE = PublishedTable(TASKS, "official", {"scuf": {"map": 16.9}})
BDD_NIGHT = PublishedTable(TASKS, "official", {"scuf": {"miou": 20.1}})
LSRW = PublishedTable(IQA, "official", {"scuf": {"psnr": 18.41, "ssim": 0.5341, "lpips": 0.2974}})
LOL = PublishedTable(IQA, "official", {"scuf": {"psnr": 21.32, "ssim": 0.8073, "lpips": 0.1928}})

#: Rows the paper has and this module does not (yet): they could not be read from the available copy.
MISSING = {
    TASKS: "every baseline row (no enhancement on DARK FACE and BDD100k-night, LIME, DUAL, Zero-DCE and the other "
    "compared methods)",
    IQA: "every baseline row (LIME, DUAL, Zero-DCE and the other compared methods)",
}
