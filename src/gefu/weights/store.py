"""The gefu weight store: resolve a table entry to a verified file, download it, or provision it from a folder.

Files of kind "file" live in the store folder (`weights_dir()`: `$GEFU_WEIGHTS`, else `<gefu cache>/weights`),
under `WeightFile.store_name`; torchvision checkpoints live in the torch hub cache, where torchvision looks.
Every file is checked against the table's sha256 before it is handed out (memoised by path, size and mtime, so a
file is hashed once per process unless it changes), so a truncated download or a replaced file is an error, never
a wrong number.

Nothing here touches the network except `download`, which only the user calls (`gefu weights download`).
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch

from ..fileio import atomic_path
from .table import TABLE, WeightFile

log = logging.getLogger(__name__)


class MissingWeightsError(FileNotFoundError, ValueError):
    """A weight file is missing or is not the expected file. Its message is one line: what and how to get it.

    A FileNotFoundError (the file is not there) and a ValueError (the configuration asks for something this
    machine does not have), so callers that handle either treat it as a user-fixable error.
    """


@dataclass
class ProvisionResult:
    """What provisioning or downloading did for one entry: action is 'copied', 'downloaded', 'converted',
    'present', 'missing' (nothing to provision it from) or 'failed'."""

    name: str
    action: str
    path: str | None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.action not in ("failed", "missing")


# ----------------------------------------------------------------------------------------------------------------
# Locations
# ----------------------------------------------------------------------------------------------------------------


def gefu_home(cache_dir: str | os.PathLike | None = None) -> Path:
    """The gefu cache folder: `cache_dir` if given, else `$GEFU_HOME`, else `~/.cache/gefu` (not created)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("GEFU_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gefu"


def weights_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where downloaded / provisioned weight files live: `<cache_dir>/weights` when `cache_dir` is given, else
    `$GEFU_WEIGHTS`, else `<gefu cache>/weights` (not created)."""
    if cache_dir is None and os.environ.get("GEFU_WEIGHTS"):
        return Path(os.environ["GEFU_WEIGHTS"]).expanduser()
    return gefu_home(cache_dir) / "weights"


def hub_checkpoints_dir(hub_dir: str | os.PathLike | None = None) -> Path:
    """`<torch hub dir>/checkpoints` — where torchvision looks for (and downloads) its weights."""
    return Path(hub_dir if hub_dir is not None else torch.hub.get_dir()) / "checkpoints"


def entry(name: str) -> WeightFile:
    """The table entry called `name`; unknown names raise ValueError with the closest names."""
    if name not in TABLE:
        close = difflib.get_close_matches(str(name), list(TABLE), n=3, cutoff=0.5)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        raise ValueError(f"unknown weights {name!r}{hint}; `gefu weights status` lists them all")
    return TABLE[name]


def store_path(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the file of entry `name` lives once downloaded or provisioned (it may not exist)."""
    w = entry(name)
    if w.kind != "file":
        raise ValueError(f"weights {name!r} are of kind {w.kind!r}: they are not kept in the gefu store")
    folder = hub_checkpoints_dir() if w.store == "torch-hub" else weights_dir(cache_dir)
    return folder / w.store_name


# ----------------------------------------------------------------------------------------------------------------
# Verification
# ----------------------------------------------------------------------------------------------------------------


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_VERIFIED: dict[tuple[str, int, int], str] = {}


def _digest_cached(path: Path) -> str:
    """sha256 of `path`, memoised on (path, size, mtime_ns): a replaced or rewritten file is hashed again."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = sha256(path)
    return _VERIFIED[key]


def matches(w: WeightFile, path: Path) -> bool:
    """True when `path` is the file of entry `w` (size and sha256; a sha256 prefix where only that is known)."""
    try:
        if w.size and path.stat().st_size != w.size:
            return False
        return _digest_cached(path).startswith(w.sha256) if w.sha256 else True
    except OSError:
        return False


def _how_to_get(w: WeightFile) -> str:
    return (
        f"with internet: `gefu weights download {w.name}` (from {w.url}); offline: put the file in a folder and run "
        "`gefu weights provision --from DIR`"
    )


def find_weight(name: str, cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The verified file of entry `name`, or None when it is not there (a wrong file there is also None)."""
    w = entry(name)
    candidates = [Path(os.environ[w.env]).expanduser()] if w.env and os.environ.get(w.env) else []
    candidates.append(store_path(name, cache_dir))
    return next((p for p in candidates if p.is_file() and matches(w, p)), None)


def weight_path(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """The verified file of table entry `name` (kind "file").

    Looks at `$<entry.env>` first where the entry names one (e.g. GEFU_RETINEXNET), then the store. Raises
    MissingWeightsError, one line naming the file, its URL and both ways to get it, when the file is absent or
    is not the expected file (wrong size or sha256: a truncated download, another checkpoint under that name).
    """
    w = entry(name)
    found = find_weight(name, cache_dir)
    if found is not None:
        return found
    if w.env and os.environ.get(w.env):
        bad = Path(os.environ[w.env]).expanduser()
        why = "does not exist" if not bad.is_file() else f"is not the expected file (sha256 {w.sha256[:12]}…)"
        raise MissingWeightsError(f"${w.env}={bad} {why}; unset it, or point it at {w.name}'s file ({w.url})")
    path = store_path(name, cache_dir)
    if path.is_file():
        raise MissingWeightsError(
            f"{path} is not the expected {w.name} file (size or sha256 {w.sha256[:12]}… differs): "
            f"{_how_to_get(w)} again"
        )
    raise MissingWeightsError(f"weights {w.name!r} ({w.used_by}) are not in {path.parent}: {_how_to_get(w)}")


# ----------------------------------------------------------------------------------------------------------------
# Provisioning from a folder, downloading
# ----------------------------------------------------------------------------------------------------------------


def _install(w: WeightFile, src: Path, cache_dir: str | os.PathLike | None) -> Path:
    dst = store_path(w.name, cache_dir)
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    if not matches(w, dst):  # the copy itself went wrong (disk full, concurrent writer)
        dst.unlink(missing_ok=True)
        raise OSError(f"the copy of {src} at {dst} does not verify")
    return dst


def _file_entries(names: Iterable[str] | None) -> list[WeightFile]:
    if names is None:
        return [w for w in TABLE.values() if w.kind == "file"]
    out = []
    for name in names:
        w = entry(name)
        if w.kind != "file":
            raise ValueError(f"weights {name!r} are of kind {w.kind!r}: nothing to download or provision by file")
        out.append(w)
    return out


def provision_from(
    folder: str | os.PathLike,
    names: Iterable[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> list[ProvisionResult]:
    """Fill the store from any folder: every file under `folder` (recursively) whose size and sha256 match a table
    entry is copied into the store, whatever its name. One result per wanted entry ('missing' when the folder has
    no copy). Nothing is downloaded."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise NotADirectoryError(f"--from {root}: not a folder")
    wanted = _file_entries(names)
    by_size: dict[int, list[WeightFile]] = {}
    results: dict[str, ProvisionResult] = {}
    for w in wanted:
        if not overwrite and find_weight(w.name, cache_dir) is not None:
            results[w.name] = ProvisionResult(w.name, "present", str(store_path(w.name, cache_dir)))
        else:
            by_size.setdefault(w.size, []).append(w)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            candidates = by_size.get(path.stat().st_size, [])
        except OSError:
            continue
        for w in candidates:
            if w.name not in results and matches(w, path):
                try:
                    dst = _install(w, path, cache_dir)
                    results[w.name] = ProvisionResult(w.name, "copied", str(dst), f"from {path}")
                except OSError as err:
                    results[w.name] = ProvisionResult(w.name, "failed", None, f"{path}: {err}")
    for w in wanted:
        results.setdefault(w.name, ProvisionResult(w.name, "missing", None, f"no copy under {root}"))
        log.info("provision %s: %s %s", w.name, results[w.name].action, results[w.name].message)
    return [results[w.name] for w in wanted]


def download(
    names: Iterable[str] | None = None,
    cache_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: Callable[[str, int], Callable[[int], object]] | None = None,
    timeout: float = 60.0,
) -> list[ProvisionResult]:
    """Download entries (default: every file entry) from their pinned URLs into the store, verifying size and
    sha256 before the file takes its name. `progress(name, total_bytes)` may return a callback `update(n_bytes)`.
    Network errors and checksum mismatches become 'failed' results; the store is never left with a partial file."""
    results = []
    for w in _file_entries(names):
        dst = store_path(w.name, cache_dir)
        if not overwrite and find_weight(w.name, cache_dir) is not None:
            results.append(ProvisionResult(w.name, "present", str(dst)))
            continue
        try:
            results.append(_download_one(w, dst, progress, timeout))
        except (OSError, urllib.error.URLError, ValueError) as err:
            results.append(ProvisionResult(w.name, "failed", None, f"{w.url}: {err}"))
        log.info("download %s: %s %s", w.name, results[-1].action, results[-1].message)
    return results


def _download_one(w: WeightFile, dst: Path, progress, timeout: float) -> ProvisionResult:
    h = hashlib.sha256()
    update = progress(w.name, w.size) if progress is not None else None
    with atomic_path(dst) as tmp:
        with urllib.request.urlopen(w.url, timeout=timeout) as response, open(tmp, "wb") as out:
            for block in iter(lambda: response.read(1 << 16), b""):
                out.write(block)
                h.update(block)
                if update is not None:
                    update(len(block))
        digest, size = h.hexdigest(), Path(tmp).stat().st_size
        if (w.size and size != w.size) or not digest.startswith(w.sha256):
            # Raising inside atomic_path discards the temporary file: nothing wrong ever takes the name.
            raise ValueError(f"downloaded {size} bytes with sha256 {digest[:12]}…, expected {w.size} bytes "
                             f"with sha256 {w.sha256[:12]}…; not installed")
    return ProvisionResult(w.name, "downloaded", str(dst), f"from {w.url}")
