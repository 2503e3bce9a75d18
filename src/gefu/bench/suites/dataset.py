"""The base of the paper's suites: a real dataset of `gefu.bench.datasets` under `--data DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from ..datasets import load_dataset
from .base import Sample, Suite, stable_hash
from .published import PublishedTable


class DatasetSuite(Suite):
    """A suite over a dataset of `gefu.bench.datasets`; `data` is required."""

    dataset: ClassVar[str] = ""
    layout: ClassVar[str] = ""  # the expected layout, for the error message
    #: The paper's numbers for this suite (`gefu.bench.suites.published`), or None.
    table: ClassVar[PublishedTable | None] = None

    def __init__(self, data: str | None = None, **options: Any) -> None:
        if data is None:
            raise ValueError(
                f"the {self.name} suite needs the dataset: pass --data DIR (layout: {self.layout}); "
                "the offline suite is --suite mini"
            )
        super().__init__(data=str(Path(data).expanduser().resolve()), **options)
        self.ds: Any = None

    @property
    def published(self) -> dict[str, dict[str, float]]:  # type: ignore[override]
        return self.table.rows if self.table else {}

    @property
    def paper_source(self) -> str | None:  # type: ignore[override]
        return self.table.source() if self.table else None

    def protocol_note(self) -> str:
        """Says so when this run's protocol is not the one the paper's numbers were measured under."""
        protocol = self.options.get("protocol", "standard")
        if self.table and protocol != self.table.protocol:
            return (f"This run used the {protocol} protocol; the paper's numbers were measured under the "
                    f"{self.table.protocol} protocol (--option suite.protocol={self.table.protocol}).")
        return ""

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
