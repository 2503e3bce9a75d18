"""Atomic, durable file writing: a file appears complete or not at all.

Data is written to a hidden temporary file in the same folder, flushed to disk (fsync), then renamed onto the
target. Temporary names are short whatever the target's name (a 250-byte file name still fits the usual
255-byte limit) and carry the writer's host and process id, so that `remove_stale_temps` can later delete the
leftovers of a killed run without touching the files another running process is still writing.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import socket
import tempfile
import time
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

logger = logging.getLogger(__name__)

__all__ = ["atomic_path", "write_atomic", "remove_stale_temps", "is_temp_name"]

#: At most this many characters of the target's name go into its temporary name.
_NAME_CHARS = 40
#: A temporary file of another host is only taken as stale after this many seconds without a write.
STALE_AFTER_S = 3600.0

# .<start of the name>.<host tag>-<pid>.<random>.gefu-tmp
_TEMP_RE = re.compile(r"^\..*\.([0-9a-f]{8})-(\d+)\.[A-Za-z0-9_]+\.gefu-tmp$")


def _host_tag() -> str:
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


def _temp_prefix(name: str) -> str:
    short = name[:_NAME_CHARS]
    while len(short.encode("utf-8", "surrogateescape")) > _NAME_CHARS:  # multi-byte names: bound the bytes
        short = short[:-1]
    return f".{short}.{_host_tag()}-{os.getpid()}."


def is_temp_name(name: str) -> bool:
    """Whether `name` is a temporary file name made by `atomic_path`."""
    return _TEMP_RE.match(name) is not None


@contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to `path` to write to; on success it is flushed to disk (`durable`), given
    mode 0644 and renamed onto `path`; on any error it is removed and `path` is left as it was. Parent folders
    are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path.name), suffix=".gefu-tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write text (UTF-8) or bytes to `path` atomically and durably (fsync before the rename)."""
    path = Path(path)
    with atomic_path(path, durable=False) as tmp:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temps(folders: Iterable[str | os.PathLike], now: float | None = None) -> list[Path]:
    """Delete the temporary files that `atomic_path` left in `folders` (not recursive) when its process was killed.

    A temporary file is stale when the process named in it is gone (same host) or, for a file written from
    another host (a shared file system), when it has not been written to for `STALE_AFTER_S`. Returns the
    removed paths; folders that do not exist or cannot be read are passed over.
    """
    host, now = _host_tag(), time.time() if now is None else now
    removed: list[Path] = []
    for folder in dict.fromkeys(Path(f) for f in folders):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            m = _TEMP_RE.match(name)
            if m is None:
                continue
            path = folder / name
            tag, pid = m.group(1), int(m.group(2))
            try:
                if tag == host:
                    stale = pid != os.getpid() and not _pid_alive(pid)
                else:
                    stale = now - path.stat().st_mtime > STALE_AFTER_S
                if stale:
                    path.unlink()
                    removed.append(path)
            except OSError as err:  # removed meanwhile, or not ours to remove
                if err.errno != errno.ENOENT:
                    logger.warning("could not remove the stale temporary file %s: %s", path, err)
    return removed
