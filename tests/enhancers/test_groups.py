"""Method groups (`all-classic`, `all-official`, `all`, `default`): membership, weights present vs skipped, order,
typos."""

from __future__ import annotations

import pytest
from _shared import WEIGHT_STORE, needs_weights

from gefu.enhancers.groups import classic_enhancers, expand_methods, missing_weights, official_enhancers
from gefu.weights import provision_from

# The methods issue 8 asks for with their official checkpoints (its "What to build", item 1), written out here
# independently of the registry.
ISSUE_8_OFFICIAL = {
    "zero-dce", "zero-dce++", "sci-easy", "sci-medium", "sci-difficult", "ruas-upe", "ruas-lol", "ruas-dark",
    "pairlie", "clip-lit", "iat-lol-v1", "iat-lol-v2", "zero-ig-lol", "zero-ig-lsrw-huawei", "zero-ig-lsrw-nikon",
    "sgz", "uretinex", "retinexnet",
}  # fmt: skip
CLASSICS = ["none", "clahe", "dual", "gamma", "he", "lime", "msrcr"]


@pytest.fixture
def empty_store(tmp_path, monkeypatch):
    """A weight store with nothing in it (the session store stays untouched)."""
    monkeypatch.setenv("GEFU_WEIGHTS", str(tmp_path / "store"))
    return tmp_path / "store"


def test_membership_follows_the_kind_of_method():
    official = official_enhancers()
    assert ISSUE_8_OFFICIAL <= set(official)
    assert "scuf" not in official and not set(official) & set(CLASSICS)
    assert classic_enhancers() == CLASSICS  # `none` first (the baseline row), then by name


def test_all_official_skips_each_method_whose_files_are_missing(empty_store):
    expanded = expand_methods(["none", "all-official"])
    assert expanded.names == ["none"]
    skipped = {s.name: s for s in expanded.skipped}
    assert set(skipped) == set(official_enhancers())
    # one line each, naming every missing file and both ways to get it
    uretinex = skipped["uretinex"].reason
    for file in ("uretinex-init-low", "uretinex-unfolding", "uretinex-l-adjust"):
        assert file in uretinex
    assert "gefu weights download uretinex-init-low uretinex-unfolding uretinex-l-adjust" in uretinex
    assert all("\n" not in s.reason and "gefu weights provision --from DIR" in s.reason for s in skipped.values())
    assert missing_weights("sci-easy") == ["sci-easy"] and missing_weights("lime") == []


@needs_weights("sci-easy", "zero-dce")
def test_all_official_runs_exactly_the_methods_whose_weights_are_present(empty_store):
    provision_from(WEIGHT_STORE, names=["sci-easy", "zero-dce"])
    expanded = expand_methods(["all-official"])
    assert expanded.names == ["sci-easy", "zero-dce"]
    assert {s.name for s in expanded.skipped} == set(official_enhancers()) - {"sci-easy", "zero-dce"}
    everything = expand_methods(["all"])
    assert everything.names == [*CLASSICS, "sci-easy", "zero-dce"]
    assert "scuf" in {s.name for s in everything.skipped}  # said, not silently left out


def test_a_method_is_run_once_however_it_is_named(empty_store):
    assert expand_methods(["lime", "all-classic"]).names == ["lime", "none", "clahe", "dual", "gamma", "he", "msrcr"]
    assert expand_methods(["all-classic", "lime", "all"]).names == CLASSICS
    assert expand_methods(["lime", "lime"]).names == ["lime", "lime"]  # by hand twice: the runner refuses it
    named = expand_methods(["sci-easy", "all-official"])  # asked for by name: not reported as skipped
    assert named.names == ["sci-easy"] and "sci-easy" not in {s.name for s in named.skipped}


def test_a_mistyped_group_names_the_groups():
    with pytest.raises(ValueError, match="did you mean 'all-official'.*all-classic"):
        expand_methods(["all-oficial"])
    assert expand_methods(["nonee"]).names == ["nonee"]  # not a group: the registry judges it later


def test_default_group_runs_zero_dce_only_where_its_weights_are(empty_store):
    """The README's main command (`gefu bench --suite mini`, methods `default`) must run on a fresh offline
    install: without Zero-DCE's official file it is skipped with the commands that get it, not an error."""
    fresh = expand_methods(["default"])
    assert fresh.names == ["none", "gamma", "lime"]
    assert [s.name for s in fresh.skipped] == ["zero-dce"]
    assert "gefu weights download zero-dce" in fresh.skipped[0].reason


@needs_weights("zero-dce")
def test_default_group_with_zero_dce_weights(empty_store):
    provision_from(WEIGHT_STORE, names=["zero-dce"])
    full = expand_methods(["default"])
    assert full.names == ["none", "gamma", "lime", "zero-dce"] and full.skipped == []
