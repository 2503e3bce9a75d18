"""`gefu bench` end to end (tiny GEFU-mini run), option parsing and user errors."""

from __future__ import annotations

import json

import pytest
from _shared import WEIGHT_STORE, needs_weights

from gefu.cli import main
from gefu.cli.bench import split_options


def test_tiny_mini_run_end_to_end(tmp_path, capsys):
    out = tmp_path / "mini"
    argv = ["bench", "--suite", "mini", "--methods", "none,gamma", "--limit", "2", "-o", str(out),
            "--device", "cpu", "--option", "suite.max_side=160", "--option", "suite.photos=astronaut,coffee", "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| none |" in printed and "| gamma |" in printed
    for name in ("results.json", "results.csv", "results.md", "results.tex", "report.html"):
        assert (out / name).is_file()
    records = json.loads((out / "results.json").read_text())["records"]
    assert [r["method"] for r in records] == ["clean", "oracle", "none", "gamma"]
    assert all(r["n_images"] == 2 and r["suite_config"]["max_side"] == 160 for r in records)
    assert all(r["time"]["computed_this_run"] == 2 for r in records[2:])
    assert records[2]["enhancer"]["name"] == "none"

    # Rerun: everything comes from the cache, same numbers.
    assert main(argv) == 0
    again = json.loads((out / "results.json").read_text())["records"]
    assert all(r["time"]["computed_this_run"] == 0 for r in again[2:])
    assert [r["metrics"] for r in again] == [r["metrics"] for r in records]
    # The former spelling --out still works (hidden), --output is the long form of -o.
    for flag in ("--out", "--output"):
        assert main([a if a != "-o" else flag for a in argv]) == 0


def test_split_options():
    per_method, suite = split_options(
        ["lime.alpha=0.2", "lime.solver=cg", "suite.max_side=384", "zero-dce.iterations=4"], ["lime", "zero-dce"]
    )
    assert per_method == {"lime": {"alpha": 0.2, "solver": "cg"}, "zero-dce": {"iterations": 4}}
    assert suite == {"max_side": 384}
    # every registered name is a scope, "+" included
    assert split_options(["zero-dce++.scale_factor=1"], ["zero-dce++"]) == ({"zero-dce++": {"scale_factor": 1}}, {})
    # One KEY=VALUE grammar with the rest of the CLI (gefu.cli.common.parse_key_values): scopes, duplicates,
    # non-finite values.
    with pytest.raises(ValueError, match="'clahe' is not one of lime, suite"):
        split_options(["clahe.clip=2"], ["lime"])
    with pytest.raises(ValueError, match="SCOPE.KEY=VALUE"):
        split_options(["alpha=0.2"], ["lime"])
    with pytest.raises(ValueError, match="did you mean 'lime'"):
        split_options(["lmie.alpha=0.2"], ["lime"])
    with pytest.raises(ValueError, match="given twice"):
        split_options(["lime.alpha=0.2", "lime.alpha=0.3"], ["lime"])
    with pytest.raises(ValueError, match="finite"):
        split_options(["lime.alpha=nan"], ["lime"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--suite", "lol", "--methods", "none"], "--data"),
        (["--suite", "mini", "--methods", "none", "--option", "lime.alpha=1"], "is not one of none, suite"),
        (["--suite", "mini", "--methods", "nonee"], "did you mean"),
        (["--suite", "mini", "--methods", "none", "--task-weights", "x.pt"], "suite.classifier"),
        (["--suite", "mini", "--methods", "none", "--limit", "0"], "--limit"),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, argv, message):
    assert main(["bench", *argv, "-o", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message.lower() in err.lower() and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_output_naming_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "results.txt").write_text("mine")
    assert main(["bench", "--suite", "mini", "--methods", "none", "-o", str(tmp_path / "results.txt")]) == 2
    err = capsys.readouterr().err
    assert "is a file" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "results.txt").read_text() == "mine"


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = capsys.readouterr().out
    assert "gefu bench --suite mini --methods none,gamma,lime,zero-dce" in text
    assert "model agreement" in text
    assert "-o DIR, --output DIR" in text and "suite.protocol=official" in text
    assert "--out " not in text  # the former spelling is accepted but not advertised


@needs_weights("sci-easy")
def test_methods_group_runs_what_is_present_and_says_what_was_skipped(tmp_path, monkeypatch, capsys):
    from gefu.enhancers.groups import official_enhancers
    from gefu.weights import provision_from

    monkeypatch.setenv("GEFU_WEIGHTS", str(tmp_path / "store"))  # a store holding only sci-easy's file
    provision_from(WEIGHT_STORE, names=["sci-easy"])
    out = tmp_path / "o"
    argv = ["bench", "--suite", "mini", "--methods", "none,all-official", "--limit", "1", "-o", str(out),
            "--device", "cpu", "--option", "suite.max_side=64", "--option", "suite.lpips=false", "--quiet"]
    assert main(argv) == 0
    err = capsys.readouterr().err.strip().splitlines()
    skipped = sorted(line.split()[3] for line in err if line.startswith("gefu bench: skipped "))
    assert skipped == sorted(set(official_enhancers()) - {"sci-easy"})  # one line each, nothing else skipped
    records = json.loads((out / "results.json").read_text())["records"]
    assert [r["method"] for r in records] == ["clean", "oracle", "none", "sci-easy"]  # 2 reference rows first
    assert records[3]["enhancer"]["weights_sha256"]["sci-easy"]

    monkeypatch.setenv("GEFU_WEIGHTS", str(tmp_path / "empty"))
    assert main([*argv[:4], "all-official", *argv[5:]]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no method left to run" in last and "provision" in last
