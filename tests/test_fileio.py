"""Atomic writes: complete or not at all, no temporary files left behind."""

from __future__ import annotations

import stat

import pytest

from gefu.fileio import atomic_path, write_atomic


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
