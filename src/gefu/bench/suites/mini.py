"""GEFU-mini, the offline smoke benchmark.

The real photographs shipped in scikit-image, matplotlib and scikit-learn (`gefu.samples`), downscaled to a longest
side of 512 px, darkened with `gefu.bench.degrade.darken` at the three `LEVELS` (seed per photo and level). IQA
against the (downscaled) original; classification AGREEMENT with MobileNetV2's top-1 on the original;
face-detection AP against the detector's own boxes on the original (YuNet by default; only photos where it finds
a face). These labels are model agreement, not human labels: the report says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ... import metrics
from ...fileio import write_atomic
from ...imageio import load_image, save_image
from ...samples import sample_photos
from ..cache import file_key
from ..degrade import LEVELS, darken
from .base import SUITES, Aggregate, Metric, Sample, Suite, open_bar, stable_hash
from .scoring import (IQA_METRICS, IQAScorer, boxes_array, build_task, classify, detect, iqa_aggregate,
                      psnr_cap_note, PSNR_CAP_DB)

log = logging.getLogger(__name__)


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
        self.iqa = IQAScorer(use_lpips=bool(lpips))
        self.classifier: Any = None
        self.detector: Any = None
        self.class_error: str | None = None
        self.det_error: str | None = None
        self.labels: dict[str, Any] = {}  # photo → {"class": int, "faces": [[x1, y1, x2, y2], ...]}
        self._photo_names: list[str] = []
        self._photo_keys: dict[str, str] = {}
        self._used: list[str] = []  # photos used by this run (after --limit)

    def input_key(self) -> str:
        o = self.options
        return stable_hash({"mini": 1, "photos": self._photo_names, "levels": self.levels, "seed": o["seed"],
                            "max_side": o["max_side"], "content": self._photo_keys})

    def score_key(self) -> str:
        return stable_hash({
            "input": self.input_key(),
            "lpips": self.iqa.has_lpips,
            "psnr_cap_db": PSNR_CAP_DB,
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
        self.device = torch.device(device)
        photos = self._resolve_photos()
        root = Path(cache_dir) / f"mini-inputs-{self.input_key()}"
        samples = [
            Sample(id=f"{name}-{lv}", input=root / f"{name}-{lv}.png", group=lv, reference=root / f"{name}.png",
                   meta={"photo": name})
            for name in photos
            for lv in self.levels
        ]  # photo-major order
        if limit is not None:
            samples = samples[: int(limit)]
        self._used = list(dict.fromkeys(s.meta["photo"] for s in samples))
        self._cache_inputs(root, photos, progress)
        self.iqa.check(self.device)  # can LPIPS run? (cheap; the network is built on the first score)
        self.labels = self._model_labels(root, progress)
        for s in samples:
            s.target = self.labels.get(s.meta["photo"], {})
        return samples

    def _resolve_photos(self) -> dict[str, Path]:
        """The photos of this run (name → file), checked against what the installed packages ship."""
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
        self._photo_keys = {p: file_key(available[p]) for p in wanted}  # a package upgrade changes the photos
        return {p: available[p] for p in wanted}

    def _cache_inputs(self, root: Path, photos: dict[str, Path], progress: Any) -> None:
        """Write the downscaled originals and their darkened versions of the used photos as PNG under `root`
        (lossless: both are 8-bit already, so a cached image is bit-identical to a freshly made one)."""
        todo = [p for p in self._used if not all((root / f"{p}-{lv}.png").is_file() for lv in self.levels)
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

    def _model_labels(self, root: Path, progress: Any) -> dict[str, dict[str, Any]]:
        """"Labels": what the frozen models say on the originals, cached per model choice together with which
        models could be loaded. A rerun whose labels are all cached loads no model until it has something to
        score; a model that failed before is tried again (it may have been provisioned)."""
        o = self.options
        label_file = root / f"labels-{stable_hash([o['classifier'], o['detector'], o['face_threshold']])}.json"
        cached = json.loads(label_file.read_text()) if label_file.is_file() else {}
        photos_done = cached.get("photos", {})
        errors = (cached.get("class_error"), cached.get("det_error"))
        if label_file.is_file() and all(p in photos_done for p in self._used) \
                and all(e is None or e.startswith("disabled") for e in errors):
            self.class_error, self.det_error = errors
            return photos_done
        self._load_models(strict=False)
        if errors != (self.class_error, self.det_error):
            photos_done = {}  # other models available than when the labels were made: redo them
        need = [p for p in self._used if p not in photos_done]
        bar = open_bar(progress, "mini: model labels on originals", len(need))
        for name in need:
            photos_done[name] = self._label_photo(load_image(root / f"{name}.png"))
            bar.update()
        bar.close()
        write_atomic(label_file, json.dumps({"class_error": self.class_error, "det_error": self.det_error,
                                             "photos": photos_done}, indent=1))
        return photos_done

    def _label_photo(self, ref: torch.Tensor) -> dict[str, Any]:
        """ref (3, H, W) original → {"class": top-1 index, "faces": boxes with score ≥ face_threshold}."""
        entry: dict[str, Any] = {}
        if self.classifier is not None:
            entry["class"] = classify(self.classifier, ref.to(self.device))
        if self.detector is not None:
            dets = detect(self.detector, ref)
            keep = dets[dets[:, 4] >= self.options["face_threshold"]] if len(dets) else dets
            entry["faces"] = keep[:, :4].round(2).tolist()
        return entry

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
                setattr(self, attr, build_task(kind, o[kind], self.device))
                setattr(self, err_attr, None)
            except (FileNotFoundError, RuntimeError, ValueError, ImportError, OSError) as err:
                if strict:
                    raise
                setattr(self, err_attr, f"{type(err).__name__}: {err}")
                log.warning("%s is skipped: %s", what, getattr(self, err_attr))

    def score(self, sample: Sample, enhanced: torch.Tensor) -> dict[str, Any]:
        ref = load_image(sample.reference)
        rec: dict[str, Any] = self.iqa(enhanced.to(self.device), ref.to(self.device))
        if (self.classifier is None and self.class_error is None) or (self.detector is None and self.det_error is None):
            self._load_models(strict=True)  # labels came from the cache; the models are needed now
        if self.classifier is not None and "class" in sample.target:
            rec["pred"] = classify(self.classifier, enhanced.to(self.device))
        if self.detector is not None and sample.target.get("faces"):
            rec["dets"] = detect(self.detector, enhanced).round(3).tolist()
        return rec

    def _task_metrics(self, samples: list[Sample], records: dict[str, dict[str, Any]]) -> dict[str, float]:
        out: dict[str, float] = {}
        with_class = [s for s in samples if "pred" in records[s.id] and "class" in s.target]
        if with_class:
            preds = torch.tensor([records[s.id]["pred"] for s in with_class])
            labels = torch.tensor([s.target["class"] for s in with_class])
            out["top1_agreement"] = 100.0 * metrics.top1(preds, labels)
        faces = [s for s in samples if s.target.get("faces") and "dets" in records[s.id]]
        if faces:
            dets = [boxes_array(records[s.id]["dets"]) for s in faces]
            gts = [np.asarray(s.target["faces"], dtype=np.float64).reshape(-1, 4) for s in faces]
            out["face_ap"] = 100.0 * float(metrics.voc_ap(dets, gts, iou_threshold=0.5))
        return out

    def aggregate(self, samples, records) -> Aggregate:
        recs = [records[s.id] for s in samples]
        overall = {**iqa_aggregate(recs), **self._task_metrics(samples, records)}
        breakdown = {}
        for lv in self.levels:
            group = [s for s in samples if s.group == lv]
            if group:
                breakdown[lv] = {**iqa_aggregate([records[s.id] for s in group]),
                                 **self._task_metrics(group, records)}
        notes = psnr_cap_note(recs)
        if self.class_error:
            notes.append(f"top-1 agreement skipped: {self.class_error}")
        if self.det_error:
            notes.append(f"face AP skipped: {self.det_error}")
        elif not any(s.target.get("faces") for s in samples):
            notes.append(f"face AP skipped: {self.options['detector']} found no face on any original photo")
        if not self.iqa.has_lpips:
            notes.append(f"LPIPS skipped: {self.iqa.lpips_error}")
        return Aggregate(overall, breakdown, notes)
