"""Benchmark datasets with their real on-disk layouts (DESIGN §3), and generic paired / labelled folders.

Every loader returns a `Dataset`: a task name, the class names where they matter, and a list of `Sample`s with a
stable `id` (the image's path relative to the dataset folder, POSIX style), the input image path and the target:

=================  ====================================================  ==========================================
task               loaders                                               `Sample.target`
=================  ====================================================  ==========================================
``iqa``            lol-v2-real, lsrw, paired                             Path of the normal-light reference image
``classification`` codan, labelled                                       int class index into `Dataset.classes`
``detection``      darkface                                              `FaceBoxes`: (M, 4) x1, y1, x2, y2 + ignored
``segmentation``   bdd-night                                             Path of the trainId label PNG (`load_label`)
=================  ====================================================  ==========================================

Pairs are always matched by file name (or by the number in it), never by listing order; a file without a
partner, or two files claiming the same partner, is an error that names them.

    ds = load_dataset("lol-v2-real", "~/data/LOL-v2")
    for s in ds: print(s.id, s.image, s.target)
"""

from .base import (
    CITYSCAPES_CLASSES,
    CODAN_CLASSES,
    DATASETS,
    Dataset,
    Sample,
    list_datasets,
    load_boxes,
    load_dataset,
    load_label,
)
from .classification import codan, labelled
from .detection import FaceBoxes, darkface, load_voc_faces
from .iqa import lol_v2_real, lsrw, paired
from .segmentation import bdd_night

__all__ = [
    "Sample", "Dataset", "DATASETS", "load_dataset", "list_datasets", "load_boxes", "load_label", "CODAN_CLASSES",
    "CITYSCAPES_CLASSES", "FaceBoxes", "load_voc_faces", "lol_v2_real", "lsrw", "codan", "darkface", "bdd_night",
    "paired", "labelled",
]  # fmt: skip
