"""The base of the paper's task suites (its Table 2): a real dataset scored by one frozen task model of
`gefu.bench.tasks`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch

from .base import Sample, stable_hash
from .dataset import DatasetSuite
from .scoring import build_task


class TaskSuite(DatasetSuite):
    """A dataset scored by one frozen task model of `gefu.bench.tasks`.

    `model` is its registry name, `weights` its checkpoint (passed as the model's `checkpoint=`), and every
    other keyword that is not an option of the suite itself goes to the model's factory (e.g. `arch=` for
    torchvision models, `target=` for your own module).
    """

    kind: ClassVar[str] = ""  # classifier / detector / segmenter
    default_model: ClassVar[str] = ""
    paper_model: ClassVar[str] = ""  # the frozen model behind the published numbers

    def __init__(self, data: str | None, model: str | None, weights: str | None,
                 suite_options: dict[str, Any], model_options: dict[str, Any]) -> None:
        weights = str(Path(weights).expanduser().resolve()) if weights else None
        if weights is not None and not Path(weights).is_file():
            raise FileNotFoundError(f"task weights {weights}: no such file")
        super().__init__(data=data, model=model or self.default_model, weights=weights,
                         model_options=dict(model_options), **suite_options)
        self.model: Any = None

    def score_key(self) -> str:
        return stable_hash(self.config())

    def _load_model(self) -> None:
        o = self.options
        opts = {**o["model_options"], **({"checkpoint": o["weights"]} if o["weights"] else {})}
        try:
            self.model = build_task(self.kind, o["model"], self.device, **opts)
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f"{self.name}: the frozen {self.kind} {o['model']!r} cannot be loaded: {err}. Pass its checkpoint "
                f"with --task-weights PATH (the paper used {self.paper_model})"
            ) from None

    def prepare(self, cache_dir, device="cpu", limit=None, progress=None) -> list[Sample]:
        self.device = torch.device(device)
        samples = self._samples(limit)
        self._load_model()
        return samples

    def model_description(self) -> str:
        """The frozen model actually used, as a reader needs it: name, options, weights."""
        o = self.options
        desc = f"{self.kind} {o['model']!r}" + "".join(f", {k}={v}" for k, v in o["model_options"].items())
        return desc + (f", weights {o['weights']}" if o["weights"] else "")

    def conventions(self) -> dict[str, str]:
        return {"data": f"{self.dataset} at {self.options['data']}",
                "model": f"{self.model_description()}; the paper's numbers come from {self.paper_model}",
                "protocol": self.options.get("protocol", "standard")}
