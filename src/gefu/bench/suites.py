"""Benchmark suites: which images, which frozen task models and metrics, which conventions, which paper numbers.

A suite turns a data source into a list of `Sample`s (a low-light input image file plus whatever its score
needs: a reference image, a class, boxes, a label map), scores one enhanced image at a time into a small
JSON-serialisable record, and aggregates the records of a whole run into metrics. The runner
(`gefu.bench.runner`) does the enhancing, caching and resuming; the suite knows nothing about enhancers.

Suites (`create_suite(name, ...)`, `list_suites()`):

- `mini` — GEFU-mini, the offline smoke benchmark: the real photographs shipped in scikit-image, matplotlib and
  scikit-learn (`gefu.samples`), downscaled to a longest side of 512 px, darkened with `gefu.bench.degrade.darken`
  at the three `LEVELS` (seed per photo and level). IQA against the (downscaled) original; classification
  AGREEMENT with MobileNetV2's top-1 on the original; face-detection AP against the detector's own boxes on the
  original (YuNet by default; only photos where it finds a face). These labels are model agreement, not
  human labels: the report says so.
- `lol`, `lsrw` — IQA on LOL-v2-real and LSRW (the paper's Table 2).
- `codan`, `darkface`, `bdd-night` — classification top-1, face-detection mAP and segmentation mIoU (the paper's
  Table 4). They need `data=DIR` and, for the frozen models that cannot be had offline, a user checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from ..registry import Registry

log = logging.getLogger(__name__)


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
    """A run's scores: overall metrics, per-group metrics, and notes for the report (skips, caveats)."""

    metrics: dict[str, float]
    breakdown: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _mean(values: list[float]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


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


# ------------------------------------------------------------------------------------------------------------
# Scoring helpers shared by the suites
# ------------------------------------------------------------------------------------------------------------


class _IQA:
    """PSNR / SSIM / LPIPS of one image against its reference, with LPIPS skipped (and said so) when its
    weights are not available."""

    def __init__(self, use_lpips: bool = True, net: str = "alex") -> None:
        self.use_lpips = use_lpips
        self.net = net
        self.lpips_error: str | None = None if use_lpips else "disabled (lpips=False)"

    def check(self, device: torch.device) -> None:
        """Find out before the run whether LPIPS can be computed, cheaply: the `lpips` package and a trunk
        file (gefu's converted one or torchvision's) must be there. The network itself is built on the first
        score (importing `lpips` takes seconds, which a fully cached rerun should not pay)."""
        if not self.use_lpips:
            return
        import importlib.util

        from .. import weights

        if importlib.util.find_spec("lpips") is None:
            self.lpips_error = "the lpips package is not installed (pip install lpips==0.1.4)"
        else:
            trunk_files = getattr(weights, "_TORCHVISION_TRUNK_FILES", {})
            candidates = [weights.lpips_trunk_path(self.net)]
            if self.net in trunk_files:
                candidates.append(weights.hub_checkpoints_dir() / trunk_files[self.net])
            if not any(p.is_file() for p in candidates):
                self.lpips_error = f"no LPIPS {self.net} trunk weights ({candidates[0]} is missing)"
        if self.lpips_error:
            log.warning("LPIPS is skipped: %s", self.lpips_error)

    @property
    def has_lpips(self) -> bool:
        return self.lpips_error is None

    def __call__(self, pred: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
        """pred, ref: (3, H, W) in [0, 1]; pred is resized to the reference size when they differ."""
        from .. import metrics

        r = ref[None].to(pred.device)  # (1, 3, H, W)
        p = metrics.match_size(pred[None], r)  # (1, 3, H, W)
        out = {"psnr": float(metrics.psnr(p, r)[0]), "ssim": float(metrics.ssim(p, r)[0])}
        if self.has_lpips:
            out["lpips"] = float(torch.as_tensor(metrics.lpips(p, r, net=self.net)).reshape(-1)[0])
        return out

    def conventions(self) -> dict[str, str]:
        conv = {
            "psnr": "RGB, [0, 1] floats, 10·log10(1/MSE) per image, then the mean over images",
            "ssim": "MATLAB-style: Gaussian window 11, σ 1.5, valid crop, C1 = 0.01², C2 = 0.03², mean over RGB "
            "channels, per image then the mean",
            "lpips": f"official lpips package, {self.net} backbone, inputs mapped to [-1, 1]"
            if self.has_lpips
            else f"skipped — {self.lpips_error} (run `gefu weights provision`)",
            "resize": "an output whose size differs from the reference is resized to it (bicubic, antialiased) before scoring",
        }
        return conv


IQA_METRICS = (
    Metric("psnr", "PSNR", True, ".2f"),
    Metric("ssim", "SSIM", True, ".4f"),
    Metric("lpips", "LPIPS", False, ".4f"),
)
TIME_METRIC = Metric("time_s", "Time (s)", False, ".3f")


def _iqa_aggregate(records: list[dict[str, Any]]) -> dict[str, float]:
    out = {k: _mean([r.get(k) for r in records]) for k in ("psnr", "ssim", "lpips")}
    return {k: v for k, v in out.items() if not math.isnan(v)}


def _boxes_array(boxes: Any) -> np.ndarray:
    """(K, 5) detections / (M, 4) boxes as float64 numpy (an empty list gives (0, 5))."""
    arr = np.asarray(boxes, dtype=np.float64)
    return arr.reshape(0, 5) if arr.size == 0 else arr


# ------------------------------------------------------------------------------------------------------------
# Frozen task models (gefu.bench.tasks)
# ------------------------------------------------------------------------------------------------------------


def _build_task(kind: str, name: str, device: torch.device, **options: Any) -> Any:
    """Create a frozen classifier / detector / segmenter of `gefu.bench.tasks` on `device`."""
    from . import tasks

    create = {"classifier": tasks.create_classifier, "detector": tasks.create_detector,
              "segmenter": tasks.create_segmenter}[kind]
    try:
        model = create(name, **{k: v for k, v in options.items() if v is not None})
    except TypeError as err:  # a missing / unexpected option of the model's factory
        raise ValueError(f"{kind} {name!r}: {err} (model options are passed as --option suite.KEY=VALUE)") from None
    return model.to(device).eval()


def _classify(model: Any, img: torch.Tensor) -> int:
    """img (3, H, W) in [0, 1] → top-1 class index (the classifier moves it to its device)."""
    with torch.inference_mode():
        logits = model(img[None])  # (1, C)
    return int(logits.argmax(dim=-1)[0])


def _detect(model: Any, img: torch.Tensor) -> np.ndarray:
    """img (3, H, W) in [0, 1] → detections (K, 5): x1, y1, x2, y2, score (pixels of img)."""
    with torch.inference_mode():
        dets = model(img)
    return _boxes_array(dets.detach().cpu().numpy() if isinstance(dets, torch.Tensor) else dets)


# ------------------------------------------------------------------------------------------------------------
# GEFU-mini
# ------------------------------------------------------------------------------------------------------------


def level_seed(photo: str, level: str, seed: int = 0) -> int:
    """The darkening seed of one (photo, level): stable across processes and platforms."""
    digest = hashlib.sha256(f"{seed}:{photo}:{level}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def downscale(img: torch.Tensor, max_side: int) -> torch.Tensor:
    """(3, H, W) → (3, h, w) with max(h, w) <= max_side (area interpolation, aspect kept, 8-bit quantised)."""
    h, w = img.shape[-2:]
    if max(h, w) > max_side:
        s = max_side / max(h, w)
        img = F.interpolate(img[None], size=(round(h * s), round(w * s)), mode="area")[0]
    return (img.clamp(0, 1) * 255.0).round() / 255.0  # what the cached PNG holds


def make_mini_images(
    photos: dict[str, Path], levels: dict[str, float], seed: int, max_side: int
) -> dict[str, tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """photo name → (downscaled original (3, H, W), {level: darkened (3, H, W)}); pure and deterministic."""
    from ..imageio import load_image
    from .degrade import darken

    out = {}
    for name, path in photos.items():
        ref = downscale(load_image(path), max_side)
        out[name] = (ref, {lv: darken(ref, exposure=k, seed=level_seed(name, lv, seed)) for lv, k in levels.items()})
    return out


@SUITES.register("mini", "gefu-mini")
class MiniSuite(Suite):
    """GEFU-mini: real photographs from installed packages, darkened at three levels (see the module doc).

    Options: `max_side` (512: keeps a 4-method CPU run within minutes), `seed` (0), `photos` (list of names;
    default all of `gefu.samples.sample_photos()`), `levels` (names from `LEVELS`; default all),
    `classifier` ("mobilenet_v2"), `detector` ("yunet"), `face_threshold` (0.8: score a box on the original must
    reach to count as a face "ground truth"), `lpips` (True).
    """

    name = "mini"
    title = "GEFU-mini (offline smoke benchmark)"
    metrics = (
        *IQA_METRICS,
        Metric("top1_agreement", "Top-1 agr. (%)", True, ".2f"),
        Metric("face_ap", "Face AP agr. (%)", True, ".2f"),
    )

    def __init__(
        self,
        max_side: int = 512,
        seed: int = 0,
        photos: list[str] | str | None = None,
        levels: list[str] | str | None = None,
        classifier: str | None = "mobilenet_v2",
        detector: str | None = "yunet",
        face_threshold: float = 0.8,
        lpips: bool = True,
        data: str | None = None,
    ) -> None:
        from .degrade import LEVELS

        if data is not None:
            raise ValueError("the mini suite builds its images from installed packages; it takes no --data")
        if isinstance(photos, str):
            photos = [p for p in photos.split(",") if p]
        if isinstance(levels, str):
            levels = [lv for lv in levels.split(",") if lv]
        unknown = sorted(set(levels or []) - set(LEVELS))
        if unknown:
            raise ValueError(f"unknown darkness level(s) {unknown}; choose from {list(LEVELS)}")
        if int(max_side) < 32:
            raise ValueError(f"max_side must be at least 32, got {max_side}")
        self.levels = {lv: LEVELS[lv] for lv in (levels or LEVELS)}
        super().__init__(
            max_side=int(max_side),
            seed=int(seed),
            photos=list(photos) if photos else None,
            levels=list(self.levels),
            classifier=classifier,
            detector=detector,
            face_threshold=float(face_threshold),
            lpips=bool(lpips),
        )
        self.iqa = _IQA(use_lpips=bool(lpips))
        self.classifier: Any = None
        self.detector: Any = None
        self.class_error: str | None = None
        self.det_error: str | None = None
        self.labels: dict[str, Any] = {}  # photo → {"class": int, "faces": [[x1, y1, x2, y2], ...]}
        self._photo_names: list[str] = []
        self._used: list[str] = []  # photos used by this run (after --limit)

    def input_key(self) -> str:
        o = self.options
        return stable_hash({"mini": 1, "photos": self._photo_names, "levels": self.levels, "seed": o["seed"],
                            "max_side": o["max_side"]})

    def score_key(self) -> str:
        return stable_hash({
            "input": self.input_key(),
            "lpips": self.iqa.has_lpips,
            "classifier": None if self.class_error else self.options["classifier"],
            "detector": None if self.det_error else self.options["detector"],
            "face_threshold": self.options["face_threshold"],
        })

    def note(self) -> str:
        o = self.options
        models = " and ".join(f"{m} ({what})" for m, what in ((o["classifier"], "top-1 class"),
                                                             (o["detector"], "faces")) if m)
        text = ("GEFU-mini is a smoke benchmark, not the paper's: real photographs, darkened synthetically, "
                "scored against the originals.")
        if models:
            text += (" Its classification and face-detection labels are MODEL AGREEMENT, not human labels: a "
                     f"method scores 100 when {models} see on its output what they see on the original photo.")
        return text

    def conventions(self) -> dict[str, str]:
        o = self.options
        conv = {
            "inputs": f"{len(self._used)} photographs shipped with scikit-image / matplotlib / scikit-learn "
            f"({', '.join(self._used)}), downscaled to a longest side of {o['max_side']} px (area), "
            "8-bit; darkened with gefu.bench.degrade.darken (inverse sRGB, exposure scale, colour cast, "
            "Poisson-Gaussian noise, sRGB, 8-bit) at levels "
            + ", ".join(f"{k} (exposure {v})" for k, v in self.levels.items())
            + f"; seed per (photo, level) from base seed {o['seed']}",
            "iqa_reference": "the downscaled original photograph",
            **self.iqa.conventions(),
            "top1_agreement": (
                f"skipped — {self.class_error}" if self.class_error else
                f"% of images where {o['classifier']}'s top-1 class on the output equals its top-1 class on the "
                "original photo (model agreement, not human labels)"
            ),
            "face_ap": (
                f"skipped — {self.det_error}" if self.det_error else
                f"VOC all-point AP (IoU 0.5, ×100) of {o['detector']} on the output against {o['detector']}'s own "
                f"boxes (score ≥ {o['face_threshold']}) on the original, over photos where it finds a face"
                f" ({', '.join(self._face_photos()) or 'none'}) (model agreement, not human labels)"
            ),
        }
        return conv

    def _face_photos(self) -> list[str]:
        return [p for p in self._used if self.labels.get(p, {}).get("faces")]

    def prepare(self, cache_dir, device="cpu", limit=None, progress=None) -> list[Sample]:
        from ..imageio import load_image, save_image
        from ..samples import sample_photos

        self.device = torch.device(device)
        available = sample_photos()
        wanted = self.options["photos"] or list(available)
        missing = [p for p in wanted if p not in available]
        if missing:
            raise ValueError(
                f"sample photo(s) {missing} not found; available: {', '.join(available) or 'none'} "
                "(they ship with scikit-image, matplotlib and scikit-learn)"
            )
        if not wanted:
            raise ValueError("no sample photographs found: install scikit-image, matplotlib and scikit-learn")
        self._photo_names = list(wanted)
        photos = {p: available[p] for p in wanted}

        # 1. Inputs: the downscaled originals and their darkened versions, cached as PNG (lossless: both are
        #    8-bit already, so a cached image is bit-identical to a freshly made one). Photo-major order.
        root = Path(cache_dir) / f"mini-inputs-{self.input_key()}"
        samples = [
            Sample(id=f"{name}-{lv}", input=root / f"{name}-{lv}.png", group=lv, reference=root / f"{name}.png",
                   meta={"photo": name})
            for name in photos
            for lv in self.levels
        ]
        if limit is not None:
            samples = samples[: int(limit)]
        used = list(dict.fromkeys(s.meta["photo"] for s in samples))
        todo = [p for p in used if not all((root / f"{p}-{lv}.png").is_file() for lv in self.levels)
                or not (root / f"{p}.png").is_file()]
        bar = open_bar(progress, "mini: darken photos", len(todo))
        for name in todo:
            ref, dark = make_mini_images({name: photos[name]}, self.levels, self.options["seed"],
                                         self.options["max_side"])[name]
            for lv, img in dark.items():
                save_image(img, root / f"{name}-{lv}.png")
            save_image(ref, root / f"{name}.png")
            bar.update()
        bar.close()
        self._used = used

        # 2. LPIPS: can it run? (cheap check; the network is built on the first score)
        self.iqa.check(self.device)

        # 3. "Labels": what the frozen models say on the originals, cached per model choice together with
        #    which models could be loaded. A rerun whose labels are all cached loads no model until it has
        #    something to score; a model that failed before is tried again (it may have been provisioned).
        o = self.options
        label_file = root / f"labels-{stable_hash([o['classifier'], o['detector'], o['face_threshold']])}.json"
        cached = json.loads(label_file.read_text()) if label_file.is_file() else {}
        photos_done = cached.get("photos", {})
        errors = (cached.get("class_error"), cached.get("det_error"))
        if label_file.is_file() and all(p in photos_done for p in used) \
                and all(e is None or e.startswith("disabled") for e in errors):
            self.class_error, self.det_error = errors
        else:
            self._load_models(strict=False)
            if (cached.get("class_error"), cached.get("det_error")) != (self.class_error, self.det_error):
                photos_done = {}  # other models available than when the labels were made: redo them
            need = [p for p in used if p not in photos_done]
            bar = open_bar(progress, "mini: model labels on originals", len(need))
            for name in need:
                ref = load_image(root / f"{name}.png")
                entry: dict[str, Any] = {}
                if self.classifier is not None:
                    entry["class"] = _classify(self.classifier, ref.to(self.device))
                if self.detector is not None:
                    dets = _detect(self.detector, ref)
                    keep = dets[dets[:, 4] >= o["face_threshold"]] if len(dets) else dets
                    entry["faces"] = keep[:, :4].round(2).tolist()
                photos_done[name] = entry
                bar.update()
            bar.close()
            from ..fileio import write_atomic

            write_atomic(label_file, json.dumps({"class_error": self.class_error, "det_error": self.det_error,
                                                 "photos": photos_done}, indent=1))
        self.labels = photos_done
        for s in samples:
            s.target = photos_done.get(s.meta["photo"], {})
        return samples

    def _load_models(self, strict: bool) -> None:
        """Load the classifier and detector not loaded yet. strict=False: a model that cannot be loaded is
        skipped (its metric says why); strict=True: it raises (the run was planned with it available)."""
        o = self.options
        for kind, attr, err_attr, what in (("classifier", "classifier", "class_error", "top-1 agreement"),
                                           ("detector", "detector", "det_error", "face AP")):
            if not o[kind]:
                setattr(self, err_attr, f"disabled ({kind}=None)")
                continue
            if getattr(self, attr) is not None:
                continue
            try:
                setattr(self, attr, _build_task(kind, o[kind], self.device))
                setattr(self, err_attr, None)
            except (FileNotFoundError, RuntimeError, ValueError, ImportError, OSError) as err:
                if strict:
                    raise
                setattr(self, err_attr, f"{type(err).__name__}: {err}")
                log.warning("%s is skipped: %s", what, getattr(self, err_attr))

    def score(self, sample: Sample, enhanced: torch.Tensor) -> dict[str, Any]:
        from ..imageio import load_image

        ref = load_image(sample.reference)
        rec: dict[str, Any] = self.iqa(enhanced.to(self.device), ref.to(self.device))
        if (self.classifier is None and self.class_error is None) or (self.detector is None and self.det_error is None):
            self._load_models(strict=True)  # labels came from the cache; the models are needed now
        if self.classifier is not None and "class" in sample.target:
            rec["pred"] = _classify(self.classifier, enhanced.to(self.device))
        if self.detector is not None and sample.target.get("faces"):
            rec["dets"] = _detect(self.detector, enhanced).round(3).tolist()
        return rec

    def _task_metrics(self, samples: list[Sample], records: dict[str, dict[str, Any]]) -> dict[str, float]:
        from .. import metrics

        out: dict[str, float] = {}
        with_class = [s for s in samples if "pred" in records[s.id] and "class" in s.target]
        if with_class:
            preds = torch.tensor([records[s.id]["pred"] for s in with_class])
            labels = torch.tensor([s.target["class"] for s in with_class])
            out["top1_agreement"] = 100.0 * metrics.top1(preds, labels)
        faces = [s for s in samples if s.target.get("faces") and "dets" in records[s.id]]
        if faces:
            dets = [_boxes_array(records[s.id]["dets"]) for s in faces]
            gts = [np.asarray(s.target["faces"], dtype=np.float64).reshape(-1, 4) for s in faces]
            out["face_ap"] = 100.0 * float(metrics.voc_ap(dets, gts, iou_threshold=0.5))
        return out

    def aggregate(self, samples, records) -> Aggregate:
        recs = [records[s.id] for s in samples]
        overall = {**_iqa_aggregate(recs), **self._task_metrics(samples, records)}
        breakdown = {}
        for lv in self.levels:
            group = [s for s in samples if s.group == lv]
            if group:
                breakdown[lv] = {**_iqa_aggregate([records[s.id] for s in group]),
                                 **self._task_metrics(group, records)}
        notes = []
        if self.class_error:
            notes.append(f"top-1 agreement skipped: {self.class_error}")
        if self.det_error:
            notes.append(f"face AP skipped: {self.det_error}")
        elif not any(s.target.get("faces") for s in samples):
            notes.append(f"face AP skipped: {self.options['detector']} found no face on any original photo")
        if not self.iqa.has_lpips:
            notes.append(f"LPIPS skipped: {self.iqa.lpips_error}")
        return Aggregate(overall, breakdown, notes)




# ------------------------------------------------------------------------------------------------------------
# The paper's suites: real datasets (gefu.bench.datasets), user checkpoints for frozen models
# ------------------------------------------------------------------------------------------------------------

_PAPER = "published in the SCUF paper (Wang et al., ICCV 2025; Tables 2 and 4)"


class _DatasetSuite(Suite):
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
        from .datasets import load_dataset

        self.ds = load_dataset(self.dataset, self.options["data"], **self.dataset_options())
        items = list(self.ds)[: int(limit)] if limit is not None else list(self.ds)
        return [Sample(id=it.id, input=Path(it.image), group=self._group(it.id), target=it.target) for it in items]

    def _group(self, sample_id: str) -> str:
        return ""


class _IQASuite(_DatasetSuite):
    metrics = IQA_METRICS

    def __init__(self, data: str | None = None, lpips: bool = True, lpips_net: str = "alex", **options: Any):
        super().__init__(data=data, lpips=bool(lpips), lpips_net=lpips_net, **options)
        self.iqa = _IQA(use_lpips=bool(lpips), net=lpips_net)

    def score_key(self) -> str:
        return stable_hash({"input": self.input_key(), "lpips": self.iqa.has_lpips, "net": self.iqa.net})

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
        from ..imageio import load_image

        return self.iqa(enhanced.to(self.device), load_image(sample.reference).to(self.device))

    def aggregate(self, samples, records) -> Aggregate:
        groups = sorted({s.group for s in samples} - {""})
        breakdown = {g: _iqa_aggregate([records[s.id] for s in samples if s.group == g]) for g in groups}
        notes = [] if self.iqa.has_lpips else [f"LPIPS skipped: {self.iqa.lpips_error}"]
        return Aggregate(_iqa_aggregate([records[s.id] for s in samples]), breakdown if len(groups) > 1 else {},
                         notes)


@SUITES.register("lol", "lol-v2-real")
class LOLSuite(_IQASuite):
    """LOL-v2-real test pairs (`Real_captured/Test/{Low,Normal}`, 100 pairs): PSNR, SSIM, LPIPS."""

    name = "lol"
    title = "LOL-v2-real (IQA)"
    dataset = "lol-v2-real"
    layout = "Real_captured/Test/{Low,Normal}"
    paper_source = _PAPER
    published = {"scuf": {"psnr": 21.32, "ssim": 0.8073, "lpips": 0.1928}}


@SUITES.register("lsrw")
class LSRWSuite(_IQASuite):
    """LSRW evaluation pairs (`Eval/{Huawei,Nikon}/{low,high}`): PSNR, SSIM, LPIPS, also per camera."""

    name = "lsrw"
    title = "LSRW (IQA)"
    dataset = "lsrw"
    layout = "Eval/{Huawei,Nikon}/{low,high}"
    paper_source = _PAPER
    published = {"scuf": {"psnr": 18.41, "ssim": 0.5341, "lpips": 0.2974}}

    def __init__(self, data: str | None = None, subsets: list[str] | str = ("Huawei", "Nikon"), **options: Any):
        if isinstance(subsets, str):
            subsets = [s for s in subsets.split(",") if s]
        super().__init__(data=data, subsets=list(subsets), **options)

    def dataset_options(self) -> dict[str, Any]:
        return {"subsets": self.options["subsets"]}

    def _group(self, sample_id: str) -> str:
        return sample_id.split("/", 1)[0]


class _TaskSuite(_DatasetSuite):
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
            self.model = _build_task(self.kind, o["model"], self.device, **opts)
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

    def conventions(self) -> dict[str, str]:
        o = self.options
        desc = f"{self.kind} {o['model']!r}" + "".join(f", {k}={v}" for k, v in o["model_options"].items())
        desc += f", weights {o['weights']}" if o["weights"] else ""
        return {"data": f"{self.dataset} at {o['data']}",
                "model": f"{desc}; the paper's numbers come from {self.paper_model}"}


@SUITES.register("codan")
class CODaNSuite(_TaskSuite):
    """CODaN `test_night` (2,500 images, 10 classes): top-1 of a ResNet-18 trained on CODaN day images."""

    name = "codan"
    title = "CODaN night (classification)"
    dataset = "codan"
    layout = "test_night/<Class>/*.jpg"
    kind = "classifier"
    default_model = "resnet18-codan"
    paper_model = "the authors' ResNet-18 trained on CODaN day images"
    paper_source = _PAPER
    metrics = (Metric("top1", "Top-1 (%)", True, ".2f"),)
    published = {"scuf": {"top1": 60.92}, "none": {"top1": 53.24}}

    def __init__(self, data: str | None = None, model: str | None = None, weights: str | None = None,
                 **model_options: Any) -> None:
        super().__init__(data, model, weights, {}, model_options)

    def conventions(self) -> dict[str, str]:
        return {**super().conventions(),
                "top1": "% of images whose argmax class equals the folder's class; full resolution, ToTensor + "
                "ImageNet mean/std (applied by the classifier), no resize"}

    def score(self, sample: Sample, enhanced: torch.Tensor) -> dict[str, Any]:
        return {"pred": _classify(self.model, enhanced.to(self.device))}

    def aggregate(self, samples, records) -> Aggregate:
        from .. import metrics

        preds = [records[s.id]["pred"] for s in samples]
        return Aggregate({"top1": 100.0 * metrics.top1(torch.tensor(preds), torch.tensor([s.target for s in samples]))})


@SUITES.register("darkface", "dark-face")
class DarkFaceSuite(_TaskSuite):
    """DARK FACE (the paper: a 600-image test list): face-detection mAP at IoU 0.5, VOC all-point."""

    name = "darkface"
    title = "DARK FACE (face detection)"
    dataset = "darkface"
    layout = "image/*.png + label/*.txt (+ test_list=FILE)"
    kind = "detector"
    default_model = "yunet"
    paper_model = "a YOLOv3 trained on WIDER FACE (mmdetection 2.7)"
    paper_source = _PAPER
    metrics = (Metric("map", "mAP (%)", True, ".2f"),)
    published = {"scuf": {"map": 16.9}}

    def __init__(self, data: str | None = None, model: str | None = None, weights: str | None = None,
                 test_list: str | None = None, **model_options: Any) -> None:
        test_list = str(Path(test_list).expanduser().resolve()) if test_list else None
        super().__init__(data, model, weights, {"test_list": test_list}, model_options)

    def dataset_options(self) -> dict[str, Any]:
        return {"test_list": self.options["test_list"]} if self.options["test_list"] else {}

    def note(self) -> str:
        if self.options["model"] != "yolov3":
            return (f"Detector {self.options['model']!r} is not the paper's ({self.paper_model}): the published "
                    "mAP is shown for reference, not for comparison.")
        return ""

    def conventions(self) -> dict[str, str]:
        return {**super().conventions(),
                "map": "VOC all-point AP at IoU 0.5 (IoU without +1), all detections the detector returns, ×100"}

    def score(self, sample: Sample, enhanced: torch.Tensor) -> dict[str, Any]:
        return {"dets": _detect(self.model, enhanced).round(3).tolist()}

    def aggregate(self, samples, records) -> Aggregate:
        from .. import metrics

        dets = [_boxes_array(records[s.id]["dets"]) for s in samples]
        gts = [np.asarray(s.target, dtype=np.float64).reshape(-1, 4) for s in samples]
        return Aggregate({"map": 100.0 * float(metrics.voc_ap(dets, gts, iou_threshold=0.5))})


@SUITES.register("bdd-night", "bdd100k-night")
class BDDNightSuite(_TaskSuite):
    """BDD100k-night (34 images, Cityscapes trainIds, 255 = ignore): mIoU over 19 classes.

    protocol="standard" (default): full resolution, absent classes left out of the mean (nanmean).
    protocol="official": the authors' script — image and label resized to 360×640 (bilinear / nearest) and an
    absent class scored 0 over all 19 classes. Default is standard because it does not reward or punish a
    method for classes that never occur in the 34 images; use official to compare with the paper.
    """

    name = "bdd-night"
    title = "BDD100k-night (segmentation)"
    dataset = "bdd-night"
    layout = "images/*.jpg + labels/*.png (trainIds)"
    kind = "segmenter"
    default_model = "torchvision"
    paper_model = "a RefineNet trained on Cityscapes"
    paper_source = _PAPER
    metrics = (Metric("miou", "mIoU (%)", True, ".2f"),)
    published = {"scuf": {"miou": 20.1}}
    num_classes = 19

    def __init__(self, data: str | None = None, model: str | None = None, weights: str | None = None,
                 protocol: str = "standard", **model_options: Any) -> None:
        if protocol not in ("standard", "official"):
            raise ValueError(f"protocol must be 'standard' or 'official', got {protocol!r}")
        super().__init__(data, model, weights, {"protocol": protocol}, model_options)

    def _load_model(self) -> None:
        o = self.options
        if o["model"] == "torchvision" and "arch" not in o["model_options"]:
            raise ValueError(
                "bdd-night needs a Cityscapes segmenter (19 trainId classes), e.g. --task-model torchvision "
                "--option suite.arch=deeplabv3_resnet50 --task-weights city.pth, or your own with --task-model "
                "module --option suite.target=my_pkg.seg:build (the paper used a RefineNet)"
            )
        super()._load_model()

    def conventions(self) -> dict[str, str]:
        std = self.options["protocol"] == "standard"
        return {**super().conventions(),
                "miou": "one confusion matrix over the whole set (19 classes, 255 ignored), ×100; "
                + ("standard protocol: full resolution, absent classes excluded (nanmean)" if std else
                   "official protocol: image and label resized to 360×640, absent classes scored 0")}

    def score(self, sample: Sample, enhanced: torch.Tensor) -> dict[str, Any]:
        from .. import metrics
        from .datasets import load_label

        label = load_label(sample.target)  # (H, W) int64
        img = enhanced
        if self.options["protocol"] == "official":
            img = F.interpolate(img[None], size=(360, 640), mode="bilinear", align_corners=False)[0].clamp(0, 1)
            label = F.interpolate(torch.from_numpy(label)[None, None].float(), size=(360, 640),
                                  mode="nearest")[0, 0].long().numpy()
        with torch.inference_mode():
            pred = np.asarray(self.model(img))  # (H, W) int64 class ids
        if pred.shape != label.shape:
            pred = F.interpolate(torch.from_numpy(pred.astype(np.float32))[None, None], size=label.shape,
                                 mode="nearest")[0, 0].numpy().astype(np.int64)
        cm = metrics.confusion_matrix([pred], [label], self.num_classes, ignore_index=255)
        return {"cm": cm.tolist()}

    def aggregate(self, samples, records) -> Aggregate:
        from .. import metrics
        from .datasets import CITYSCAPES_CLASSES

        cm = sum(np.asarray(records[s.id]["cm"], dtype=np.int64) for s in samples)
        absent = "nan" if self.options["protocol"] == "standard" else "zero"
        miou, per_class = metrics.iou_from_confusion(cm, absent=absent)
        per = {f"iou_{c.replace(' ', '_')}": 100.0 * float(v) for c, v in zip(CITYSCAPES_CLASSES, per_class)
               if not math.isnan(v)}
        return Aggregate({"miou": 100.0 * miou, **per})
