"""Atomic writes: complete or not at all, no temporary files left behind."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import zlib

import pytest

from gefu.fileio import atomic_path, is_temp_name, remove_stale_temps, write_atomic


def test_write_atomic_text_and_bytes(tmp_path):
    p = write_atomic(tmp_path / "a" / "b.txt", "héllo")
    assert p.read_bytes() == "héllo".encode("utf-8")
    write_atomic(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    assert stat.S_IMODE(p.stat().st_mode) == 0o644
    assert sorted(x.name for x in p.parent.iterdir()) == ["b.txt"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = write_atomic(tmp_path / "f.json", "old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.write_text("half-written")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["f.json"]


def test_temporary_names_stay_short_for_long_file_names(tmp_path):
    """A 250-byte name used to get a 264-byte temporary name (over the usual 255-byte limit): the write failed."""
    name = "é" * 123 + ".png"  # 250 bytes in UTF-8
    seen = []
    with atomic_path(tmp_path / name) as tmp:
        seen.append(tmp.name)
        tmp.write_bytes(b"x")
    assert len(seen[0].encode()) < 120 and is_temp_name(seen[0])
    assert (tmp_path / name).read_bytes() == b"x"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temps_of_dead_processes_are_removed_others_kept(tmp_path):
    host = f"{zlib.crc32(socket.gethostname().encode()):08x}"
    dead, alive = _dead_pid(), os.getppid()
    stale = tmp_path / f".photo.png.{host}-{dead}.abc123.gefu-tmp"
    running = tmp_path / f".photo2.png.{host}-{alive}.def456.gefu-tmp"  # another live process is writing it
    remote_old = tmp_path / f".x.png.00000000-{dead}.zz.gefu-tmp"  # another host: judged by age
    remote_new = tmp_path / f".y.png.00000000-{dead}.yy.gefu-tmp"
    user_file = tmp_path / ".photo.png.tmp"  # not ours: never touched
    for p in (stale, running, remote_old, remote_new, user_file):
        p.write_bytes(b"x")
    os.utime(remote_old, (0, 0))
    removed = remove_stale_temps([tmp_path, tmp_path / "missing"])
    assert sorted(removed) == sorted([stale, remote_old])
    assert running.exists() and remote_new.exists() and user_file.exists()


def test_atomic_path_fsyncs_before_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
                        or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append(("replace", str(a))) or real_replace(a, b))
    with atomic_path(tmp_path / "f.bin") as tmp:
        tmp.write_bytes(b"data")
    assert events == [("fsync", str(tmp)), ("replace", str(tmp))]
