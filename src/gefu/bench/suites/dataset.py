"""The base of the paper's suites: a real dataset of `gefu.bench.datasets` under `--data DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from ..datasets import load_dataset
from .base import Sample, Suite, stable_hash

PAPER = "published in the SCUF paper (Wang et al., ICCV 2025; Tables 2 and 4)"


class DatasetSuite(Suite):
    """A suite over a dataset of `gefu.bench.datasets`; `data` is required."""

    dataset: ClassVar[str] = ""
    layout: ClassVar[str] = ""  # the expected layout, for the error message

    def __init__(self, data: str | None = None, **options: Any) -> None:
        if data is None:
            raise ValueError(
                f"the {self.name} suite needs the dataset: pass --data DIR (layout: {self.layout}); "
                "the offline suite is --suite mini"
            )
        super().__init__(data=str(Path(data).expanduser().resolve()), **options)
        self.ds: Any = None

    def dataset_options(self) -> dict[str, Any]:
        return {}

    def input_key(self) -> str:
        return stable_hash({"dataset": self.dataset, "root": self.options["data"], **self.dataset_options()})

    def _samples(self, limit: int | None) -> list[Sample]:
        self.ds = load_dataset(self.dataset, self.options["data"], **self.dataset_options())
        items = list(self.ds)[: int(limit)] if limit is not None else list(self.ds)
        return [Sample(id=it.id, input=Path(it.image), group=self._group(it.id), target=it.target) for it in items]

    def _group(self, sample_id: str) -> str:
        return ""
