"""Paired IQA datasets: LOL-v2-real, LSRW, generic paired folders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Literal, Sequence

from .base import (DATASETS, Dataset, Sample, child, find_base, key_number, key_stem, list_images, nonempty,
                   pair_by_key, rel)


@DATASETS.register("lol-v2-real", "lol", "lolv2-real")
def lol_v2_real(root: str | os.PathLike, split: str = "Test", strict: bool = True) -> Dataset:
    """LOL-v2-real: `Real_captured/<split>/{Low,Normal}`, pairs `low00690.png` ↔ `normal00690.png` by number.

    `root` may be the LOL-v2 folder, its `Real_captured` folder or the split folder itself. Ids are
    `Low/low00690.png` (relative to the split folder).
    """
    root = Path(root).expanduser()
    base = find_base(
        root, [f"Real_captured/{split}", split, ""], ["Low", "Normal"], "LOL-v2-real",
        f"Real_captured/{split}/{{Low,Normal}}",
    )
    low, normal = child(base, "Low"), child(base, "Normal")
    pairs = pair_by_key(list_images(low), list_images(normal), key_number, f"LOL-v2-real ({base})", strict)
    samples = [Sample(rel(a, base), a, b) for a, b in pairs]
    return Dataset("lol-v2-real", "iqa", base, nonempty(samples, "LOL-v2-real", low), info={"split": split})


@DATASETS.register("lsrw")
def lsrw(root: str | os.PathLike, subsets: Sequence[str] = ("Huawei", "Nikon"), strict: bool = True) -> Dataset:
    """LSRW evaluation set: `Eval/{Huawei,Nikon}/{low,high}`, pairs by identical file stem.

    `root` may be the LSRW folder or its `Eval` folder. Ids are `Huawei/low/2.jpg` (relative to `Eval`).
    """
    if isinstance(subsets, str):
        subsets = [s for s in subsets.split(",") if s]
    root = Path(root).expanduser()
    base = find_base(root, ["Eval", ""], list(subsets), "LSRW", f"Eval/{{{','.join(subsets)}}}/{{low,high}}")
    samples: list[Sample] = []
    for name in subsets:
        sub = child(base, name)
        low, high = child(sub, "low"), child(sub, "high")
        if low is None or high is None:
            raise FileNotFoundError(f"LSRW: expected {sub}/low and {sub}/high")
        pairs = pair_by_key(list_images(low), list_images(high), key_stem, f"LSRW {name} ({sub})", strict)
        samples += [Sample(rel(a, base), a, b) for a, b in pairs]
    return Dataset("lsrw", "iqa", base, nonempty(samples, "LSRW", base), info={"subsets": list(subsets)})


@DATASETS.register("paired")
def paired(
    root: str | os.PathLike,
    low: str = "low",
    high: str = "high",
    key: Literal["stem", "number"] = "stem",
    recursive: bool = False,
    strict: bool = True,
) -> Dataset:
    """Generic paired folders `root/<low>` and `root/<high>` (absolute paths also work), paired by file stem
    (key="stem") or by the last number in the name (key="number", e.g. `low12.png` ↔ `normal12.png`).

    Ids are relative to `root`. recursive=True pairs files in sub-folders by their relative path + key.
    """
    root = Path(root).expanduser()
    low_dir, high_dir = root / low, root / high
    for d in (low_dir, high_dir):
        if not d.is_dir():
            raise FileNotFoundError(f"paired dataset: {d} is not a folder (expected {root}/{{{low},{high}}})")
    if key not in ("stem", "number"):
        raise ValueError(f"key must be 'stem' or 'number', got {key!r}")
    keyfn = key_stem if key == "stem" else key_number

    def rel_key(base: Path) -> Callable[[Path], str]:
        return lambda p: (p.parent.relative_to(base) / keyfn(p)).as_posix()

    pairs = pair_by_key(
        list_images(low_dir, recursive), list_images(high_dir, recursive), rel_key(low_dir), f"paired ({root})", strict,
        target_key=rel_key(high_dir),
    )
    samples = [Sample(rel(x, root), x, y) for x, y in pairs]
    return Dataset("paired", "iqa", root, nonempty(samples, "paired dataset", low_dir), info={"key": key})
