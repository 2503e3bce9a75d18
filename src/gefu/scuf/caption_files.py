"""Captions files: one caption per training image, in TSV/CSV/JSONL (``filepath`` + ``caption``/``title``).

``gefu caption`` writes them; training reads them with ``load_captions`` and matches them to the image files with
``match_captions`` (absolute path, path relative to the captions file or the image folder, or a unique file name).
Every problem a user can fix (a missing file, a wrong separator, a malformed row, images without a caption) is one
ValueError naming the file (and line) and the fix.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Iterable, Sequence

from .rewrite import rewrite_caption

__all__ = ["CAPTION_SUFFIXES", "load_captions", "find_captions_file", "match_captions", "domain_captions"]

CAPTION_SUFFIXES = (".tsv", ".csv", ".jsonl")
_PATH_COLUMNS = ("filepath", "file_path", "path", "file", "image", "file_name", "filename")
_TEXT_COLUMNS = ("caption", "title", "text")




def _pick(columns: Iterable[str], wanted: Sequence[str]) -> str | None:
    lower = {c.strip().lower(): c for c in columns if c}
    return next((lower[w] for w in wanted if w in lower), None)


def _not_text(path: Path, err: Exception) -> ValueError:
    return ValueError(f"{path}: not a UTF-8 text file ({err}); a captions file is a UTF-8 TSV, CSV or JSONL file "
                      f"as `gefu caption DIR -o {path.name}` writes it")


def _load_jsonl(path: Path) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{n}: not valid JSON ({err}); each line must be one object like "
                                 '{"filepath": "a.png", "caption": "..."}') from None
            key = _pick(obj, _PATH_COLUMNS) if isinstance(obj, dict) else None
            text = _pick(obj, _TEXT_COLUMNS) if isinstance(obj, dict) else None
            if key is None or text is None:
                raise ValueError(f"{path}:{n}: expected an object with keys 'filepath' and 'caption' (or 'title')")
            rows.append((str(obj[key]), str(obj[text])))
    return rows


def _load_table(path: Path, delimiter: str) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    other = "," if delimiter == "\t" else "\t"
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        names = reader.fieldnames or []
        key, text = _pick(names, _PATH_COLUMNS), _pick(names, _TEXT_COLUMNS)
        if key is None or text is None:
            hint = ""
            if names and other in names[0]:
                hint = (f" (the header is separated by {'tabs' if other == chr(9) else 'commas'}: rename the file to "
                        f"{path.stem}{'.tsv' if other == chr(9) else '.csv'})")
            raise ValueError(f"{path}: the header must name a 'filepath' column and a 'caption' (or 'title') column; "
                             f"found {names}{hint}")
        for row in reader:
            line = reader.line_num
            if row.get(None):  # more fields than the header
                raise ValueError(f"{path}:{line}: {len(names) + len(row[None])} fields but the header has "
                                 f"{len(names)} (a {'tab' if delimiter == chr(9) else 'comma'} inside a caption? quote "
                                 "the caption, or write JSONL)")
            if not row.get(key):
                continue
            if row.get(text) is None:
                raise ValueError(f"{path}:{line}: no caption after {row[key]!r} (expected filepath"
                                 f"{'<TAB>' if delimiter == chr(9) else ','}caption)")
            rows.append((row[key], row[text]))
    return rows


def load_captions(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Read a captions file → list of (filepath, caption) in file order.

    TSV (``.tsv``), CSV (``.csv``) with a header naming a path column (``filepath``, ``path``, ``file``, …) and a
    text column (``caption`` or ``title``), or JSONL (``.jsonl``) objects with the same keys. A malformed file
    raises one ValueError naming the file (and line) and what to fix.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"captions file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in CAPTION_SUFFIXES:
        raise ValueError(f"{path}: captions must be a .tsv, .csv or .jsonl file")
    try:
        if suffix == ".jsonl":
            return _load_jsonl(path)
        return _load_table(path, "\t" if suffix == ".tsv" else ",")
    except UnicodeDecodeError as err:
        raise _not_text(path, err) from None
    except csv.Error as err:
        raise ValueError(f"{path}: unreadable as {suffix[1:].upper()} ({err}); write it again with `gefu caption`, "
                         "or as JSONL") from None


def find_captions_file(folder: Path) -> Path | None:
    """``<folder>/captions.{tsv,csv,jsonl}`` or ``<folder>_captions.{…}`` next to it, whichever exists first."""
    candidates = [folder / f"captions{s}" for s in CAPTION_SUFFIXES]
    candidates += [folder.parent / f"{folder.name}_captions{s}" for s in CAPTION_SUFFIXES]
    return next((c for c in candidates if c.is_file()), None)


def match_captions(
    images: Sequence[tuple[Path, Path]], entries: Sequence[tuple[str, str]], captions_file: Path, folder: Path
) -> tuple[list[str | None], list[Path]]:
    """Caption of each image (None when missing) and the list of images without one.

    An entry's ``filepath`` matches an image when it resolves to the same file (absolute, relative to the captions
    file, or relative to the image folder), else when the relative path is equal, else by file name if that name
    is unique among the entries.
    """
    by_file: dict[str, str] = {}
    by_rel: dict[str, str] = {}
    by_name: dict[str, str | None] = {}
    for key, text in entries:
        p = Path(key).expanduser()
        for base in ((None,) if p.is_absolute() else (captions_file.parent, folder)):
            full = p if base is None else base / p
            by_file[os.path.normpath(str(full.absolute()))] = text
        by_rel[p.as_posix()] = text
        by_name[p.name] = None if p.name in by_name and by_name[p.name] != text else text
    captions: list[str | None] = []
    missing: list[Path] = []
    for path, rel in images:
        text = by_file.get(os.path.normpath(str(path.absolute())))
        if text is None:
            text = by_rel.get(rel.as_posix())
        if text is None:
            text = by_name.get(path.name)
        captions.append(text)
        if text is None:
            missing.append(path)
    return captions, missing


def domain_captions(
    images: Sequence[tuple[Path, Path]], folder: Path, explicit: str | None, what: str, rewrite: str = "none"
) -> list[str]:
    captions_file = Path(explicit).expanduser() if explicit else find_captions_file(folder)
    if captions_file is None:
        raise FileNotFoundError(
            f"no captions for the {what} images in {folder}: caption consistency needs one caption per image. "
            f"Create them with `gefu caption {folder} -o {folder / 'captions.tsv'}` or pass a captions file."
        )
    entries = load_captions(captions_file)
    captions, missing = match_captions(images, entries, captions_file, folder)
    if missing:
        shown = ", ".join(str(m) for m in missing[:5]) + (" …" if len(missing) > 5 else "")
        raise ValueError(
            f"{len(missing)} of {len(images)} {what} images have no caption in {captions_file}: {shown}. "
            f"Run `gefu caption {folder} -o {captions_file}` again: it captions only the missing images."
        )
    return [rewrite_caption(c or "", rewrite) for c in captions]
