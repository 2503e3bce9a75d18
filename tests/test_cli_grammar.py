"""One command-line grammar across subcommands (issue 11, item 13): an example in every --help, -o/--output for
every subcommand that writes, the same tile overlap default everywhere, one KEY=VALUE parser."""

from __future__ import annotations

import argparse
import inspect

import pytest

from gefu.cli import build_parser
from gefu.tiling import DEFAULT_OVERLAP, tile_apply, tile_apply_uint8


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_help_has_an_example(name):
    epilog = _subcommands()[name].epilog or ""
    assert "example" in epilog and f"gefu {name}" in epilog


def test_enhance_caption_train_write_with_o_output():
    for name in ("enhance", "caption", "train"):
        if name in _subcommands():
            strings = {s for a in _subcommands()[name]._actions for s in a.option_strings}
            assert {"-o", "--output"} <= strings, name


def test_one_overlap_default():
    from gefu.cli import enhance

    assert DEFAULT_OVERLAP == 32
    assert inspect.signature(tile_apply).parameters["overlap"].default == DEFAULT_OVERLAP
    assert inspect.signature(tile_apply_uint8).parameters["overlap"].default == DEFAULT_OVERLAP
    assert enhance.DEFAULT_OVERLAP is DEFAULT_OVERLAP


def test_enhance_option_goes_through_the_common_parser(monkeypatch, tmp_path):
    """--option values are parsed by cli.common.parse_key_values (so bench --option and train --set agree)."""
    from gefu.cli import common, enhance
    from gefu.cli import main

    calls = []
    real = common.parse_key_values
    monkeypatch.setattr(enhance, "parse_key_values", lambda *a, **k: calls.append(a) or real(*a, **k))
    main(["enhance", str(tmp_path), "-o", str(tmp_path / "o"), "-m", "gamma", "--option", "gamma=0.5"])
    assert calls and calls[0][0] == ["gamma=0.5"]


def test_train_set_goes_through_the_common_parser(tmp_path, capsys):
    from gefu.cli import main

    dump = tmp_path / "cfg.json"
    assert main(["train", "--preset", "official", "--set", "loss.gan=NaN", "--dump-config", str(dump)]) == 2
    assert capsys.readouterr().err.splitlines() == ["gefu train: error: --set 'loss.gan=NaN': not a finite number; "
                                                    "give a finite number"]
    assert main(["train", "--preset", "official", "--set", "loss.gan=0.5", "--set", "loss.gan=1",
                 "--dump-config", str(dump)]) == 2
    assert "--set loss.gan is given twice" in capsys.readouterr().err
    assert main(["train", "--preset", "official", "--set", "loss.gan=0.25", "--dump-config", str(dump)]) == 0
    assert '"gan": 0.25' in dump.read_text()


def test_messages_name_the_installed_hub_cli():
    """The hub's installed CLI is `hf` (`hf download REPO`); its old name is deprecated."""
    from pathlib import Path

    import gefu

    root = Path(gefu.__file__).parents[2]
    offenders = [str(p.relative_to(root)) for folder in ("src", "tests") for p in (root / folder).rglob("*.py")
                 if "huggingface" + "-cli" in p.read_text(encoding="utf-8")]
    assert offenders == []
