"""What keeps cached benchmark results honest: content fingerprints for cache keys, a digest manifest of the
cached images, checksummed per-image score records, and a lock on the output folder.

- **Content, not paths.** A cache key must change when what is behind a path changes: a checkpoint replaced in
  place, a dataset edited. `fingerprint(path)` is the size and mtime of every file (and the sha256 of files up
  to `SMALL_FILE` bytes); `with_content(obj)` adds it to every string of a config that names an existing file
  or folder.
- **Cached images are verified.** Each cache folder has `manifest.jsonl`: per image, the sha256 of the PNG
  written and the content key of the input file it was computed from. An image whose bytes no longer match —
  corrupted, truncated or edited — or whose input changed, is recomputed, never trusted.
- **Score records are checksummed.** Each line of a partial-scores file carries the sha256 of the image it scored,
  the content key of the reference / target it was scored against, and a checksum of its own content keyed by
  the file's context; a line that was edited, appended by hand or copied from another run fails the check and is
  scored again (with a warning).
- **One run per output folder.** `bench_lock(out)` holds `<out>/.gefu-bench.lock` (an OS file lock, released
  even if the process is killed) for the whole run; a second run on the same folder stops with
  `BenchBusyError` instead of racing the first and losing one report.
- **One writer per file.** In a run of several processes (`accelerate launch`), each process appends to its own
  part of a record file (`manifest.rank1.jsonl` beside `manifest.jsonl`: `part_path`), and the main process
  folds the parts into the file, in sample order, once the others are done (`merge_parts`); a part left by a
  killed run is folded in by the next run.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from filelock import FileLock, Timeout

from ..fileio import write_atomic

log = logging.getLogger(__name__)

SMALL_FILE = 1 << 20  # files up to 1 MiB are hashed in full; larger ones by size and mtime
MAX_FILES = 20_000  # a folder with more files is fingerprinted by its first MAX_FILES (sorted) and their count


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _file_entry(path: Path) -> list[Any]:
    st = path.stat()
    entry: list[Any] = [st.st_size, st.st_mtime_ns]
    if st.st_size <= SMALL_FILE:
        entry.append(sha256_file(path))
    return entry


def fingerprint(path: str | os.PathLike) -> str:
    """Content fingerprint of a file or a folder (recursively): sizes, mtimes and hashes of small files."""
    path = Path(path)
    if path.is_file():
        blob: Any = _file_entry(path)
    else:
        files = sorted(p for p in path.rglob("*") if p.is_file())
        blob = {"n": len(files), "files": [[p.relative_to(path).as_posix(), *_file_entry(p)]
                                           for p in files[:MAX_FILES]]}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def files_fingerprint(paths: Sequence[str | os.PathLike]) -> str:
    """Fingerprint of a list of files, in order (the inputs a suite actually reads)."""
    entries = [[str(p), *_file_entry(Path(p))] for p in paths]
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:16]


def with_content(obj: Any) -> Any:
    """`obj` (JSON-like) with every string that names an existing file or folder replaced by
    `{"path": ..., "content": fingerprint}`; everything else unchanged."""
    if isinstance(obj, dict):
        return {k: with_content(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [with_content(v) for v in obj]
    if isinstance(obj, (str, os.PathLike)) and str(obj) and len(str(obj)) < 4096:
        p = Path(obj).expanduser()
        try:
            if p.exists():
                return {"path": str(obj), "content": fingerprint(p)}
        except OSError:
            pass
    return obj


# --------------------------------------------------------------------------------------------------------------
# Cached images: a manifest of digests
# --------------------------------------------------------------------------------------------------------------


def file_key(path: str | os.PathLike) -> str:
    """Content key of one file: size, mtime and (up to `SMALL_FILE` bytes) sha256."""
    return hashlib.sha256(json.dumps(_file_entry(Path(path))).encode()).hexdigest()[:16]


def _jsonable(obj: Any) -> Any:
    """A JSON-able view of a sample's reference / target that changes with its content."""
    if isinstance(obj, (str, os.PathLike)) and Path(obj).is_file():
        return {"file": file_key(obj)}
    if hasattr(obj, "tobytes") and hasattr(obj, "shape"):  # numpy array / tensor
        arr = obj.detach().cpu().numpy() if hasattr(obj, "detach") else obj
        return {"array": hashlib.sha256(arr.tobytes()).hexdigest()[:16], "shape": list(arr.shape)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj if isinstance(obj, (int, float, str, bool, type(None))) else str(obj)


def target_key(sample: Any) -> str:
    """Content key of what scoring one sample reads besides the output: its reference image and its target."""
    blob = json.dumps([_jsonable(sample.reference), _jsonable(sample.target)], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Manifest:
    """`<cache_dir>/manifest.jsonl`: per cached image, the sha256 of the PNG written and the content key of the
    input it was computed from (one JSON line per image written; the last line of an id wins). With `part` (one
    process of several), new lines go to that process's part file (`part_path`) instead."""

    def __init__(self, cache_dir: Path, part: str | None = None) -> None:
        self.path = Path(cache_dir) / "manifest.jsonl"
        self.write_path = part_path(self.path, part)
        self.entries: dict[str, dict[str, str]] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(rec, dict) and isinstance(rec.get("id"), str):
                    self.entries[rec["id"]] = rec

    @property
    def digests(self) -> dict[str, str]:
        """sample id → sha256 of its cached PNG."""
        return {k: v.get("png", "") for k, v in self.entries.items()}

    def record(self, sample_id: str, png: Path, input_key: str) -> str:
        entry = {"id": sample_id, "png": sha256_file(png), "input": input_key}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.write_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, separators=(",", ":")) + "\n")
            f.flush()
        self.entries[sample_id] = entry
        return entry["png"]

    def verified(self, sample_id: str, png: Path, input_key: str) -> str | None:
        """The digest of a cached image that is still the one written from this very input, else None (missing,
        changed or corrupt image; changed input; written before manifests existed)."""
        entry = self.entries.get(sample_id)
        if entry is None or not png.is_file():
            return None
        if entry.get("input") != input_key:
            log.info("input of %s changed since its output was cached: computing it again", sample_id)
            return None
        digest = sha256_file(png)
        if entry.get("png") != digest:
            log.warning("cached image %s changed or is corrupt: computing it again", png)
            return None
        return digest


# --------------------------------------------------------------------------------------------------------------
# Per-image score records with checksums
# --------------------------------------------------------------------------------------------------------------


def record_checksum(rec: dict[str, Any], context: str) -> str:
    body = {k: v for k, v in rec.items() if k != "sum"}
    blob = context + json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def record_context(path: Path) -> str:
    """What the checksums of the records in `path` are keyed by: the file's folder and name (which encode the
    suite, its inputs and scoring, and the method configuration), so a line copied from another run's file
    fails. A process's part of the file (`part_path`) uses the file's own context, so merged lines stay valid."""
    return f"{path.parent.name}/{path.name}"


def _context(path: Path, context: str | None) -> str:
    return context if context is not None else record_context(path)


def append_record(path: Path, rec: dict[str, Any], context: str | None = None) -> None:
    """Append one score record (with its checksum) as a JSON line, flushed at once."""
    context = _context(path, context)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({**rec, "sum": record_checksum(rec, context)}, separators=(",", ":"), allow_nan=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()


def read_records(path: Path, context: str | None = None, digests: dict[str, str] | None = None,
                 targets: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Score records saved so far that pass their checksum (and, with `digests` / `targets`, scored the image
    that is cached now against the reference / target that is there now). A torn last line from a killed run is
    skipped silently; any other rejected line is warned about."""
    out: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return out
    context = _context(path, context)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    rejected = 0
    for i, line in enumerate(lines):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            rejected += i < len(lines) - 1  # only the last line can be torn by a kill
            continue
        if not isinstance(rec, dict) or "id" not in rec or rec.get("sum") != record_checksum(rec, context):
            rejected += 1
            continue
        if digests is not None and rec.get("png") != digests.get(rec["id"]):
            continue  # the image was computed again since: score it again
        if targets is not None and rec.get("target") != targets.get(rec["id"]):
            continue  # the reference / target changed since: score it again
        out[rec["id"]] = {k: v for k, v in rec.items() if k != "sum"}
    if rejected:
        log.warning("%s: %d record(s) failed their checksum (edited or not written by gefu): scoring them again",
                    path, rejected)
    return out


# --------------------------------------------------------------------------------------------------------------
# Several processes: one part file per process, merged by the main process
# --------------------------------------------------------------------------------------------------------------


def part_path(path: Path, part: str | None) -> Path:
    """The file a process of a multi-process run appends to instead of `path`: `manifest.jsonl` →
    `manifest.rank1.jsonl` for part "rank1"; `path` itself when `part` is None (a single process)."""
    return path if part is None else path.with_name(f"{path.stem}.{part}{path.suffix}")


def part_files(path: Path) -> list[Path]:
    """The part files of `path` that exist (`<stem>.rank<N><suffix>`), by process index."""
    def rank(p: Path) -> int:
        tail = p.name[len(path.stem) + len(".rank"):-len(path.suffix) or None]
        return int(tail) if tail.isdigit() else -1

    found = [p for p in path.parent.glob(f"{path.stem}.rank*{path.suffix}") if rank(p) >= 0]
    return sorted(found, key=rank)


def merge_parts(path: Path, order: Sequence[str]) -> int:
    """Append the JSON lines of every part file of `path` to `path`, ordered by their id's position in `order`
    (ids not in it last, in file order), then delete the parts; returns how many lines moved. Lines that are not
    JSON (torn by a kill) are dropped; the lines themselves (and so their checksums) are moved unchanged."""
    parts = part_files(path)
    if not parts:
        return 0
    position = {sid: i for i, sid in enumerate(order)}
    lines: list[tuple[int, int, str]] = []
    for part in parts:
        for line in part.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            sid = rec.get("id") if isinstance(rec, dict) else None
            lines.append((position.get(sid, len(position)), len(lines), line))
    if lines:
        with open(path, "a", encoding="utf-8") as f:
            f.write("".join(line + "\n" for _, _, line in sorted(lines)))
            f.flush()
            os.fsync(f.fileno())
    for part in parts:  # a kill between the append and here only repeats lines: the last line of an id wins
        part.unlink(missing_ok=True)
    return len(lines)


# --------------------------------------------------------------------------------------------------------------
# One run per output folder
# --------------------------------------------------------------------------------------------------------------


class BenchBusyError(RuntimeError):
    """Another `gefu bench` run holds the output folder."""


_HELD: dict[tuple[str, int], int] = {}  # (lock path, thread) → depth: nested bench_lock calls of one thread are free
_HELD_LOCK = threading.Lock()


@contextmanager
def bench_lock(out: str | os.PathLike, timeout: float = 0.0) -> Iterator[None]:
    """Hold `<out>/.gefu-bench.lock` for the block. Re-entrant within a thread; another process (or thread) gets
    `BenchBusyError` (after waiting `timeout` seconds) naming the run that holds it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / ".gefu-bench.lock"
    key = (str(path.resolve()), threading.get_ident())
    with _HELD_LOCK:
        if _HELD.get(key):
            _HELD[key] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _HELD_LOCK:
                _HELD[key] -= 1
        return
    lock = FileLock(str(path), timeout=timeout)
    info = out / ".gefu-bench.lock.info"
    try:
        lock.acquire()
    except Timeout:
        holder = info.read_text().strip() if info.is_file() else "another process"
        raise BenchBusyError(
            f"{out} is in use by another gefu bench run ({holder}); wait for it to finish or write to another "
            "folder (-o DIR)"
        ) from None
    try:
        info.write_text(f"pid {os.getpid()}, started {_dt.datetime.now().isoformat(timespec='seconds')}")
        with _HELD_LOCK:
            _HELD[key] = 1
        yield
    finally:
        with _HELD_LOCK:
            _HELD.pop(key, None)
        info.unlink(missing_ok=True)
        lock.release()
