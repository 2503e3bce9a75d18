"""GEFU-mini, the offline benchmark: real photographs shipped with installed packages, captured again in
simulated low light calibrated on real LOL-v1 pairs, and scored against the originals.

The clean images (`mini_images`): the sample photos (IQA; faces: none but on the two portraits, so every false
face counts), classification crops the frozen classifier labels confidently and stably, and mosaics of many small
faces. Each is captured at three darkness levels with `gefu.bench.camera.capture` (unprocess to camera raw, uneven
light, LOL-v1's exposure percentiles, colour cast and sensor noise, develop to 8-bit sRGB), seed per (image,
level).

Two rows are not methods: `clean` (the originals: the ceiling of every task column) and `oracle` (the capture with
the exact exposure, light field and colour cast divided out: what perfect brightness correction gives without
denoising). Every cell carries a percentile-bootstrap 95 % interval over the images of its level
(`gefu.bench.stats`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...fileio import write_atomic
from ...imageio import load_image, save_image
from ...samples import sample_photos
from ...weights import find_weight
from .. import stats
from ..cache import file_key
from ..camera import capture, mini_levels, oracle
from .base import SUITES, Aggregate, Metric, Sample, Suite, open_bar, stable_hash
from .mini_images import (FACE_HEIGHTS, MOSAIC_SIZE, MiniImage, build_images, classification_crops, downscale,
                          mosaic_design)
from .scoring import IQA_METRICS, PSNR_CAP_DB, IQAScorer, boxes_array, build_task, detect

log = logging.getLogger(__name__)

LEVELS = mini_levels()
TASK_METRICS = (Metric("top1", "Top-1 (%)", True, ".1f"), Metric("face_ap", "Face AP50 (%)", True, ".1f"))


def level_seed(image: str, level: str, seed: int = 0) -> int:
    """The capture seed of one (image, level): stable across processes and platforms."""
    digest = hashlib.sha256(f"{seed}:{image}:{level}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


#: The face detector GEFU-mini prefers, the weight-table entry it needs, and the one it falls back to without it.
PREFERRED_DETECTOR, PREFERRED_DETECTOR_WEIGHTS, FALLBACK_DETECTOR = "retinaface", "retinaface-mnet025", "yunet"


def _auto_detector() -> tuple[str, str | None]:
    """detector="auto" → (name, note): RetinaFace when its official weights are present here, else YuNet (it
    ships in the `yuface` package, so a fresh offline install still scores faces), with a note saying so."""
    if find_weight(PREFERRED_DETECTOR_WEIGHTS) is not None:
        return PREFERRED_DETECTOR, None
    return FALLBACK_DETECTOR, (f"face AP by {FALLBACK_DETECTOR} (YuNet, libfacedetection): the default detector "
                               f"{PREFERRED_DETECTOR} needs weights {PREFERRED_DETECTOR_WEIGHTS} (`gefu weights "
                               f"download {PREFERRED_DETECTOR_WEIGHTS}`, or offline `gefu weights provision --from "
                               "DIR`); figures are not comparable across detectors")


@SUITES.register("mini", "gefu-mini")
class MiniSuite(Suite):
    """GEFU-mini (see the module doc).

    Options: `max_side` (512), `seed` (0), `photos` (names; default all of `gefu.samples.sample_photos()`),
    `levels` (of dim, dark, night; default all), `mosaics` (6 face mosaics of 1080×720), `classifier`
    ("mobilenet_v2"),
    `detector` ("auto": "retinaface" — RetinaFace MobileNet-0.25, WIDER FACE, official weights — when its
    weights are present, else "yunet", which ships in a package, with a note in the report; or any detector name),
    `min_score` (0.05) and `max_dets` (100): detections kept per image, `lpips` (True),
    `n_resamples` (1000 bootstrap draws), `references` (True: the clean and oracle rows).
    """

    name = "mini"
    title = "GEFU-mini (offline benchmark)"
    metrics = (*IQA_METRICS, *TASK_METRICS)

    def __init__(self, max_side: int = 512, seed: int = 0, photos: list[str] | str | None = None,
                 levels: list[str] | str | None = None, mosaics: int = 6, classifier: str | None = "mobilenet_v2",
                 detector: str | None = "auto", min_score: float = 0.05, max_dets: int = 100, lpips: bool = True,
                 n_resamples: int = stats.N_RESAMPLES, references: bool = True, data: str | None = None) -> None:
        if data is not None:
            raise ValueError("the mini suite builds its images from installed packages; it takes no --data")
        photos = [p for p in photos.split(",") if p] if isinstance(photos, str) else photos
        levels = [lv for lv in levels.split(",") if lv] if isinstance(levels, str) else levels
        unknown = sorted(set(levels or []) - set(LEVELS))
        if unknown:
            raise ValueError(f"unknown darkness level(s) {unknown}; choose from {list(LEVELS)}")
        if int(max_side) < 32:
            raise ValueError(f"max_side must be at least 32, got {max_side}")
        self.levels = {lv: LEVELS[lv] for lv in (levels or LEVELS)}
        self.det_note: str | None = None
        if detector == "auto":
            detector, self.det_note = _auto_detector()
        super().__init__(max_side=int(max_side), seed=int(seed), photos=list(photos) if photos else None,
                         levels=list(self.levels), mosaics=int(mosaics), classifier=classifier, detector=detector,
                         min_score=float(min_score), max_dets=int(max_dets), lpips=bool(lpips),
                         n_resamples=int(n_resamples), references=bool(references))
        self.iqa = IQAScorer(use_lpips=bool(lpips))
        self.classifier: Any = None
        self.detector: Any = None
        self.class_error: str | None = None if classifier else "disabled (classifier=None)"
        self.det_error: str | None = None if detector else "disabled (detector=None)"
        self.crops: list[dict[str, Any]] | None = None
        self.images: list[MiniImage] = []
        self.root: Path | None = None
        self._photo_paths: dict[str, Path] = {}

    # --- identity -------------------------------------------------------------------------------------------
    def input_key(self) -> str:
        o = self.options
        return stable_hash({"mini": 3, "mosaic_design": mosaic_design(),
                            "photos": {p: file_key(f) for p, f in sorted(self._photo_paths.items())},
                            "levels": {k: repr(v) for k, v in
                            self.levels.items()}, "seed": o["seed"], "max_side": o["max_side"],
                            "mosaics": o["mosaics"], "crops": self.crops})

    def score_key(self) -> str:
        o = self.options
        return stable_hash({"input": self.input_key(), "lpips": self.iqa.has_lpips, "psnr_cap_db": PSNR_CAP_DB,
                            "classifier": None if self.class_error else o["classifier"],
                            "detector": None if self.det_error else o["detector"],
                            "min_score": o["min_score"], "max_dets": o["max_dets"]})

    # --- preparing the images -------------------------------------------------------------------------------
    def prepare(self, cache_dir, device="cpu", limit=None, progress=None) -> list[Sample]:
        self.device = torch.device(device)
        self._photo_paths = self._resolve_photos()
        self.crops = self._classification_crops(Path(cache_dir), progress)
        self.images = build_images(self._photo_paths, self.options["max_side"], self.options["mosaics"],
                                   self.crops, seed=self.options["seed"])
        self.root = Path(cache_dir) / f"mini-inputs-{self.input_key()}"
        samples = [self._sample(im, lv) for im in self.images for lv in self.levels]  # image-major order
        if limit is not None:
            samples = samples[: int(limit)]
        self._cache_inputs(samples, progress)
        self.iqa.check(self.device)
        if not self.det_error:
            self._load_detector(strict=False)
        return samples

    def _sample(self, im: MiniImage, level: str) -> Sample:
        sid = f"{im.name}-{level}"
        return Sample(id=sid, input=self.root / f"{sid}.png", group=level, reference=self.root / f"{im.name}.png",
                      target={"kind": im.kind, "label": im.label, "faces": im.faces},
                      meta={"image": im.name, "source": im.source})

    def _resolve_photos(self) -> dict[str, Path]:
        available = sample_photos()
        wanted = self.options["photos"] or list(available)
        missing = [p for p in wanted if p not in available]
        if missing:
            raise ValueError(f"sample photo(s) {missing} not found; available: {', '.join(available) or 'none'} "
                             "(they ship with scikit-image, matplotlib and scikit-learn)")
        if not wanted:
            raise ValueError("no sample photographs found: install scikit-image, matplotlib and scikit-learn")
        return {p: available[p] for p in wanted}

    def _classification_crops(self, cache_dir: Path, progress: Any) -> list[dict[str, Any]] | None:
        """The labelled crops (`mini_images.classification_crops`), cached per classifier / photos / size.
        None when there is no classifier (disabled, or it cannot be loaded: the report says why)."""
        o = self.options
        if not o["classifier"]:
            return None
        key = stable_hash({"crops": 1, "classifier": o["classifier"], "photos": sorted(self._photo_paths),
                           "max_side": o["max_side"]})
        path = cache_dir / "mini-labels" / f"crops-{key}.json"
        if path.is_file():
            return json.loads(path.read_text())
        try:
            self.classifier = build_task("classifier", o["classifier"], self.device)
        except (FileNotFoundError, RuntimeError, ValueError, ImportError, OSError) as err:
            self.class_error = f"{type(err).__name__}: {err}"
            log.warning("classification is skipped: %s", self.class_error)
            return None
        bar = open_bar(progress, "mini: pick stable classification crops", len(self._photo_paths))
        crops = []
        for name, p in self._photo_paths.items():
            crops += classification_crops(self.classifier, {name: load_image(p)[:3]}, o["max_side"])
            bar.update()
        bar.close()
        write_atomic(path, json.dumps(crops, indent=1))
        return crops

    def _cache_inputs(self, samples: list[Sample], progress: Any) -> None:
        """Write, per used (image, level), the capture, its oracle and a copy of the clean image (the `clean`
        row), and the clean image itself; PNG, so a cached image is bit-identical to a fresh one."""
        by_name = {im.name: im for im in self.images}
        todo = [s for s in samples if not all(p.is_file() for p in self._files(s))]
        bar = open_bar(progress, "mini: capture in low light", len(todo))
        for s in todo:
            im = by_name[s.meta["image"]]
            save_image(im.image, s.reference)
            cap = capture(im.image, self.levels[s.group], seed=level_seed(im.name, s.group, self.options["seed"]))
            save_image(cap.image, s.input)
            save_image(oracle(cap.image, cap.gain), self.root / "oracle" / f"{s.id}.png")
            (self.root / "clean").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(s.reference, self.root / "clean" / f"{s.id}.png")
            bar.update()
        bar.close()

    def _files(self, s: Sample) -> list[Path]:
        return [s.input, s.reference, self.root / "oracle" / f"{s.id}.png", self.root / "clean" / f"{s.id}.png"]

    def reference_rows(self) -> dict[str, Path]:
        if not self.options["references"]:
            return {}
        return {"clean": self.root / "clean", "oracle": self.root / "oracle"}

    def _load_detector(self, strict: bool) -> None:
        try:
            self.detector = build_task("detector", self.options["detector"], self.device)
        except (FileNotFoundError, RuntimeError, ValueError, ImportError, OSError) as err:
            if strict:
                raise
            self.det_error = f"{type(err).__name__}: {err}"
            log.warning("face AP is skipped: %s", self.det_error)

    def _load_classifier(self) -> None:
        if self.classifier is None and not self.class_error:
            self.classifier = build_task("classifier", self.options["classifier"], self.device)

    # --- scoring --------------------------------------------------------------------------------------------
    def score(self, sample: Sample, enhanced: torch.Tensor) -> dict[str, Any]:
        t = sample.target
        rec: dict[str, Any] = {}
        if t["kind"] != "crop":
            rec.update(self.iqa(enhanced.to(self.device), load_image(sample.reference).to(self.device)))
        if t["label"] is not None and not self.class_error:
            self._load_classifier()
            with torch.inference_mode():
                pred = int(self.classifier(enhanced[None].to(self.device)).argmax(dim=-1)[0])
            rec["pred"] = pred
            rec["correct"] = pred == t["label"]
        if t["faces"] is not None and not self.det_error:
            if self.detector is None:
                self._load_detector(strict=True)
            dets = detect(self.detector, enhanced)
            dets = dets[dets[:, 4] >= self.options["min_score"]] if len(dets) else dets
            dets = dets[np.argsort(-dets[:, 4], kind="stable")][: self.options["max_dets"]]
            rec["dets"] = dets.round(3).tolist()
        return rec

    def outcome(self, sample: Sample, record: dict[str, Any]) -> dict[str, Any]:
        t, out = sample.target, {}
        if "pred" in record:
            self._load_classifier()  # class names (the labels may have come from the cache)
        classes = getattr(self.classifier, "classes", ()) if self.classifier is not None else ()
        name = (lambda i: classes[i] if i is not None and i < len(classes) else str(i))
        parts = []
        if "pred" in record:
            parts.append(("✓ " if record["correct"] else "✗ ") + name(record["pred"])
                         + ("" if record["correct"] else f" (clean: {name(t['label'])})"))
        if "dets" in record:
            dets = boxes_array(record["dets"])
            shown = dets[dets[:, 4] >= 0.5] if len(dets) else dets
            out["boxes"] = shown[:, :4].tolist()
            out["gt_boxes"] = t["faces"]
            parts.append(f"{len(shown)} face box(es) ≥ 0.5 of {len(t['faces'])}")
        for k in ("psnr", "ssim"):
            if k in record:
                parts.append(f"{k.upper()} {record[k]:.2f}")
        out["caption"] = " · ".join(parts)
        return out

    # --- aggregating ----------------------------------------------------------------------------------------
    def _per_sample(self, samples: list[Sample], records: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Arrays over the samples: IQA values, correctness (nan: unlabelled), face matches (None: not scored)."""
        recs = [records[s.id] for s in samples]
        arr = {k: np.array([r.get(k, np.nan) for r in recs], dtype=np.float64) for k in ("psnr", "ssim", "lpips")}
        arr["top1"] = np.array([float(r["correct"]) if "correct" in r else np.nan for r in recs])
        matches = []
        for s, r in zip(samples, recs):
            if "dets" in r and s.target["faces"] is not None:
                gt = np.asarray(s.target["faces"], dtype=np.float64).reshape(-1, 4)
                matches.append((*stats.match_detections(boxes_array(r["dets"]), gt), len(gt)))
            else:
                matches.append(None)
        arr["faces"] = matches
        return arr

    @staticmethod
    def _cell(arr: dict[str, Any], idx: np.ndarray) -> dict[str, float]:
        """The metrics of the multiset of samples `idx` (indices into the arrays)."""
        out = {}
        for k in ("psnr", "ssim", "lpips"):
            v = arr[k][idx]
            v = v[np.isfinite(v)]
            out[k] = float(v.mean()) if v.size else float("nan")
        c = arr["top1"][idx]
        c = c[np.isfinite(c)]
        out["top1"] = 100.0 * float(c.mean()) if c.size else float("nan")
        m = [arr["faces"][i] for i in idx if arr["faces"][i] is not None]
        out["face_ap"] = 100.0 * stats.ap_from_matches([x[0] for x in m], [x[1] for x in m], sum(x[2] for x in m)) \
            if m else float("nan")
        return out

    def _with_interval(self, arr: dict[str, Any], n: int, seed: int) -> tuple[dict[str, float], dict[str, tuple]]:
        value = self._cell(arr, np.arange(n))
        draws = stats.resample_indices(n, self.options["n_resamples"], seed)
        reps = [self._cell(arr, row) for row in draws]
        iv = {k: stats.percentile_interval(np.array([r[k] for r in reps])) for k in value}
        keep = {k for k, v in value.items() if np.isfinite(v)}
        return {k: value[k] for k in keep}, {k: iv[k] for k in keep}

    def aggregate(self, samples, records) -> Aggregate:
        overall, iv_all = self._with_interval(self._per_sample(samples, records), len(samples), seed=0)
        breakdown, intervals = {}, {"": iv_all}
        for j, lv in enumerate(self.levels):
            group = [s for s in samples if s.group == lv]
            if group:
                breakdown[lv], intervals[lv] = self._with_interval(self._per_sample(group, records), len(group),
                                                                   seed=1 + j)
        notes = []
        if self.class_error:
            notes.append(f"classification skipped: {self.class_error}")
        elif not any(s.target["label"] is not None for s in samples):
            notes.append("classification skipped: no image passed the confidence / stability filter")
        if self.det_error:
            notes.append(f"face AP skipped: {self.det_error}")
        elif self.det_note:
            notes.append(self.det_note)
        if not self.iqa.has_lpips:
            notes.append(f"LPIPS skipped: {self.iqa.lpips_error}")
        return Aggregate(overall, breakdown, notes, intervals)

    # --- report text ----------------------------------------------------------------------------------------
    def note(self) -> str:
        return ("GEFU-mini is not the paper's benchmark: real photographs, captured again in SIMULATED low light "
                "(calibrated on real LOL-v1 pairs), scored against the originals. `clean` (the originals) and "
                "`oracle` (exact exposure and colour correction of the noisy capture) are reference rows, not "
                "methods (clean's PSNR is the 100 dB cap). Classification labels are the classifier's own confident, "
                "stable answers on the clean images; face boxes are known. Intervals: bootstrap 95 % over images.")

    def conventions(self) -> dict[str, str]:
        o = self.options
        kinds = {k: sum(1 for im in self.images if im.kind == k) for k in ("photo", "crop", "mosaic")}
        n_faces = sum(len(im.faces or []) for im in self.images if im.kind == "mosaic")
        return {
            "images": f"{kinds['photo']} photographs shipped with scikit-image / matplotlib / scikit-learn, "
            f"downscaled to ≤ {o['max_side']} px; {kinds['crop']} classification crops; {kinds['mosaic']} face "
            f"mosaics of {MOSAIC_SIZE[1]}×{MOSAIC_SIZE[0]} px (DARK FACE's frame size) with {n_faces} faces of "
            f"{FACE_HEIGHTS[0]:g}–{FACE_HEIGHTS[1]:g} px among distractor tiles",
            "capture": "gefu.bench.camera.capture: unprocess to camera raw, light field (max/min "
            f"{next(iter(self.levels.values())).illumination:g}), exposure, colour cast, Poisson shot + Gaussian "
            "read noise, develop to 8-bit sRGB; levels " + ", ".join(
                f"{k} (exposure {v.exposure:.3f})" for k, v in self.levels.items())
            + "; exposure percentiles 90/50/10, cast and noise fitted on LOL-v1 eval15 "
            "(benchmarks/calibrate_degradation.py)",
            "iqa_images": "PSNR / SSIM / LPIPS on the photos and mosaics (not the crops) against their clean originals",
            **self.iqa.conventions(),
            "top1": (f"skipped — {self.class_error}" if self.class_error else
                     f"% of labelled images whose {o['classifier']} top-1 equals the label: the classifier's own top-1 "
                     f"on the clean image, kept only when p ≥ 0.6 and unchanged under a horizontal flip, JPEG q75 "
                     "and ×0.8 brightness"),
            "face_ap": (f"skipped — {self.det_error}" if self.det_error else
                        f"VOC all-point AP at IoU 0.5 (×100) of {o['detector']}, detections with score ≥ "
                        f"{o['min_score']:g}, at most {o['max_dets']} per image, on every photo and mosaic (false "
                        "faces count on all of them); ground truth: the known face boxes"),
            "intervals": f"percentile bootstrap, {o['n_resamples']} draws of the images of a cell with "
            "replacement, 2.5th–97.5th percentiles; a value is bold only when its interval does not overlap the "
            "runner-up's",
            "oracle": "the capture divided, in raw space, by its exact gain map (light field × exposure × colour "
            "cast) and developed again: exposure and colour corrected exactly, noise untouched",
        }


__all__ = ["MiniSuite", "LEVELS", "level_seed", "downscale"]
