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

    Stand-ins: where the paper's frozen model cannot be had (its checkpoint is the user's to supply and gefu has
    no loader for its architecture), `default_model` is a real model with official weights that does the same
    task. It is used only when `model` is not given; the paper's model, given with `--task-model` (and its
    checkpoint with `--task-weights`), always takes precedence. Any model outside `paper_capable` (the names that
    can run the paper's checkpoint) is a stand-in, and `model_note()` says so, naming the model actually used.
    """

    kind: ClassVar[str] = ""  # classifier / detector / segmenter
    default_model: ClassVar[str] = ""
    paper_model: ClassVar[str] = ""  # the frozen model behind the published numbers
    #: registry names that can run the paper's checkpoint (your own module can; built-in stand-ins cannot).
    paper_capable: ClassVar[tuple[str, ...]] = ("module", "user")
    #: readable descriptions of the built-in stand-ins (model name → what it is), for the report's note.
    stand_ins: ClassVar[dict[str, str]] = {}

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

    @property
    def uses_stand_in(self) -> bool:
        """True when the run is scored by a model that is not the paper's (see the class doc)."""
        return self.options["model"] not in self.paper_capable

    def _load_model(self) -> None:
        o = self.options
        opts = {**o["model_options"], **({"checkpoint": o["weights"]} if o["weights"] else {})}
        try:
            self.model = build_task(self.kind, o["model"], self.device, **opts)
        except FileNotFoundError as err:
            how = (f"Get its weights as said, or give the paper's model ({self.paper_model}) with --task-model "
                   "module --option suite.target=PKG.MOD:FACTORY") if self.uses_stand_in else (
                   f"Pass its checkpoint with --task-weights PATH (the paper used {self.paper_model})")
            raise FileNotFoundError(
                f"{self.name}: the frozen {self.kind} {o['model']!r} cannot be loaded: {err}. {how}"
            ) from None
        except ValueError as err:
            if not (o["weights"] and self.uses_stand_in):
                raise
            text = str(err) if len(str(err)) < 300 else str(err)[:300] + " …"
            raise ValueError(
                f"{self.name}: --task-weights {o['weights']} does not load into the {self.kind} {o['model']!r} "
                f"(the paper's {self.paper_model} needs --task-model module --option suite.target=PKG.MOD:FACTORY): "
                f"{text}"
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

    def model_note(self) -> str:
        """The model that scored the run, said so that nobody mistakes a stand-in for the paper's model."""
        o = self.options
        what = self.kind.capitalize()
        if self.uses_stand_in:
            return (f"{what} used: {self.used_description()}, a stand-in: it is NOT the paper's {self.paper_model}, "
                    "so these numbers are not comparable with the paper's (give the paper's model with --task-model "
                    "module --option suite.target=PKG.MOD:FACTORY and its checkpoint).")
        return (f"{what} used: {self.used_description()}. The paper's numbers come from {self.paper_model}; they "
                "are comparable only with that model and --option suite.protocol=official.")

    def used_description(self) -> str:
        """The model that scored the run, for a reader: a stand-in by what it is, your module by its target."""
        o = self.options
        if o["model"] in ("module", "user"):
            return f"your module {o['model_options'].get('target')!r}"
        known = self.stand_ins.get(o["model"])
        return f"{known} ({self.model_description()})" if known else self.model_description()

    def conventions(self) -> dict[str, str]:
        model = self.used_description() + (", a stand-in" if self.uses_stand_in else "")
        return {"data": f"{self.dataset} at {self.options['data']}",
                "model": f"{model}; the paper's numbers come from {self.paper_model}",
                "protocol": self.options.get("protocol", "standard")}
