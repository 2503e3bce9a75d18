"""The weight table against the upstream manifest, and the verified store: resolve, provision --from, download."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from _shared import SHARED_WEIGHTS
from gefu import weights
from gefu.cli import main
from gefu.weights import MissingWeightsError

MANIFEST = SHARED_WEIGHTS / "MANIFEST.tsv"
needs_manifest = pytest.mark.skipif(not MANIFEST.is_file(), reason=f"{MANIFEST} is absent (../shared/weights)")


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    """An empty weight store for this test."""
    monkeypatch.setenv("GEFU_WEIGHTS", str(tmp_path / "store"))
    monkeypatch.delenv("GEFU_RETINEXNET", raising=False)
    return tmp_path / "store"


def _manifest() -> dict[str, dict[str, str]]:
    with open(MANIFEST, newline="") as f:
        return {row["sha256"]: row for row in csv.DictReader(f, delimiter="\t")}


@needs_manifest
def test_every_file_entry_matches_the_upstream_manifest():
    """Size, sha256, licence and the pinned URL (repository, commit, path) agree with ../shared's MANIFEST.tsv,
    which records where each byte-identical copy came from — an independent record of the upstream files."""
    rows = _manifest()
    checked = 0
    for w in weights.WEIGHTS:
        if w.kind != "file" or w.store == "torch-hub":
            continue
        row = rows.get(w.sha256)
        assert row is not None, f"{w.name}: sha256 {w.sha256[:12]} is not in the manifest"
        assert int(row["bytes"]) == w.size, w.name
        if row["commit"] != "-":  # pinned to the manifest's commit
            assert w.url == f"https://github.com/{row['source repo']}/raw/{row['commit']}/{row['path in source']}"
        else:  # the manifest names a package release; the table pins the repository commit holding that file
            assert w.url.endswith("/" + row["path in source"]) and "/raw/" in w.url and len(w.url.split("/")[6]) == 40
        checked += 1
    assert checked >= 29
    # and nothing of the paper's methods is missing from the table
    names = set(weights.TABLE)
    for name in ("zero-dce", "zero-dce++", "sgz", "sci-easy", "sci-medium", "sci-difficult", "ruas-upe", "ruas-lol",
                 "ruas-dark", "pairlie", "clip-lit", "iat-lol-v1", "iat-lol-v2", "zero-ig-lol", "zero-ig-lsrw-huawei",
                 "zero-ig-lsrw-nikon", "retinexnet-decom", "retinaface-mnet025", "espnet-cityscapes",
                 "espnetv2-cityscapes", "niqe-pris-params", "brisque-model", "brisque-range"):
        assert name in names


def test_every_entry_says_where_it_comes_from_and_its_licence():
    for w in weights.WEIGHTS:
        assert w.licence and w.source and w.used_by, w.name
        if w.kind == "file":
            assert w.url.startswith("https://") and len(w.sha256) == 64 and w.size > 0, w.name


def test_missing_file_is_one_line_with_the_url_and_both_commands(store):
    with pytest.raises(MissingWeightsError) as err:
        weights.weight_path("sci-easy")
    msg = str(err.value)
    assert "\n" not in msg
    assert weights.TABLE["sci-easy"].url in msg
    assert "gefu weights download sci-easy" in msg and "gefu weights provision --from DIR" in msg
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, ValueError)
    with pytest.raises(ValueError, match="did you mean 'sci-easy'"):
        weights.weight_path("sci-eazy")


@pytest.mark.skipif(not (SHARED_WEIGHTS / "ruas").is_dir(), reason="../shared/weights is absent")
def test_provision_from_matches_by_sha256_not_by_name(store, tmp_path):
    src = tmp_path / "downloads" / "deep" / "er"
    src.mkdir(parents=True)
    shutil.copyfile(SHARED_WEIGHTS / "ruas" / "upe.pt", src / "renamed.bin")  # right bytes, any name
    decoy = src / "lol.pt"  # right name and size, wrong bytes
    data = bytearray((SHARED_WEIGHTS / "ruas" / "lol.pt").read_bytes())
    data[-1] ^= 1
    decoy.write_bytes(bytes(data))
    results = {r.name: r for r in weights.provision_from(tmp_path / "downloads", names=["ruas-upe", "ruas-lol"])}
    assert results["ruas-upe"].action == "copied"
    assert results["ruas-lol"].action == "missing" and not results["ruas-lol"].ok
    path = weights.weight_path("ruas-upe")
    assert path.parent == store
    assert hashlib.sha256(path.read_bytes()).hexdigest() == weights.TABLE["ruas-upe"].sha256
    assert weights.provision_from(tmp_path / "downloads", names=["ruas-upe"])[0].action == "present"


@pytest.mark.skipif(not (SHARED_WEIGHTS / "sci").is_dir(), reason="../shared/weights is absent")
def test_a_damaged_file_in_the_store_is_refused(store):
    weights.provision_from(SHARED_WEIGHTS / "sci", names=["sci-easy"])
    path = weights.weight_path("sci-easy")
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF  # same size, one flipped byte
    path.write_bytes(bytes(data))
    with pytest.raises(MissingWeightsError, match="not the expected sci-easy file"):
        weights.weight_path("sci-easy")
    path.write_bytes(bytes(data[:1000]))  # truncated
    with pytest.raises(MissingWeightsError, match="not the expected"):
        weights.weight_path("sci-easy")


@pytest.mark.skipif(not (SHARED_WEIGHTS / "retinexnet_decom.pth").is_file(), reason="../shared/weights is absent")
def test_environment_variable_points_at_a_file(store, tmp_path, monkeypatch):
    good = tmp_path / "my-decom.pth"
    shutil.copyfile(SHARED_WEIGHTS / "retinexnet_decom.pth", good)
    monkeypatch.setenv("GEFU_RETINEXNET", str(good))
    assert weights.weight_path("retinexnet-decom") == good == weights.retinexnet_path()
    assert {w.name: w for w in weights.weight_status()}["retinexnet-decom"].location == str(good)
    bad = tmp_path / "other.pth"
    bad.write_bytes(b"x")
    monkeypatch.setenv("GEFU_RETINEXNET", str(bad))
    with pytest.raises(MissingWeightsError, match="GEFU_RETINEXNET"):
        weights.weight_path("retinexnet-decom")
    assert weights.retinexnet_path() is None


def _local_entry(monkeypatch, name: str, payload: bytes, tmp_path: Path, sha: str | None = None):
    """Point entry `name` at a file:// URL holding `payload` (no network)."""
    from dataclasses import replace

    src = tmp_path / "upstream.bin"
    src.write_bytes(payload)
    w = replace(weights.TABLE[name], url=src.as_uri(), size=len(payload),
                sha256=sha or hashlib.sha256(payload).hexdigest())
    monkeypatch.setitem(weights.TABLE, name, w)
    return w


def test_download_verifies_and_never_leaves_a_wrong_file(store, tmp_path, monkeypatch):
    _local_entry(monkeypatch, "sgz", b"the right bytes", tmp_path)
    (res,) = weights.download(["sgz"])
    assert res.action == "downloaded" and Path(res.path).read_bytes() == b"the right bytes"
    assert weights.download(["sgz"])[0].action == "present"
    _local_entry(monkeypatch, "pairlie", b"tampered upstream", tmp_path, sha="0" * 64)
    (res,) = weights.download(["pairlie"])
    assert res.action == "failed" and "sha256" in res.message
    assert not any(store.glob("*PairLIE*")) and not any(store.glob(".*"))  # no partial or temporary file left


def test_cli_weights(store, tmp_path, monkeypatch, capsys):
    assert main(["weights", "status", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["iat-lol-v1"]["licence"] == "Apache-2.0" and rows["iat-lol-v1"]["available"] is False
    assert set(rows) == set(weights.TABLE)
    assert main(["weights", "download", "sci-eazy"]) == 2  # typo: usage error before any work
    assert "did you mean 'sci-easy'" in capsys.readouterr().err
    _local_entry(monkeypatch, "sgz", b"payload", tmp_path)
    assert main(["weights", "download", "sgz"]) == 0
    assert "downloaded" in capsys.readouterr().out
    assert main(["weights", "status"]) == 0
    out = capsys.readouterr().out
    assert "[yes] sgz" in out and "licence MIT" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["weights", "provision", "--from", str(empty), "--only", "sci-easy"]) == 1  # asked for, not there
    assert main(["weights", "provision", "--from", str(tmp_path / "nope")]) == 2
