"""The one KEY=VALUE parser of the command line (enhance --option, bench --option, train --set)."""

from __future__ import annotations

import pytest

from gefu.cli.common import parse_key_values, parse_value


@pytest.mark.parametrize(
    "raw, expected",
    [("0.2", 0.2), ("3", 3), ("true", True), ("null", None), ("[15, 80]", [15, 80]), ("cg", "cg"),
     ('"0.5"', "0.5"), ("", ""), ("a=b", "a=b"), ("1e308", 1e308), ("-0.5", -0.5)],
)
def test_values_are_json_or_strings(raw, expected):
    assert parse_value(raw) == expected and type(parse_value(raw)) is type(expected)


@pytest.mark.parametrize("raw", ["nan", "NaN", "Infinity", "-Infinity", "inf", "-inf", "1e999", "[1, NaN]",
                                 '{"a": Infinity}', "[1e400]"])
def test_non_finite_values_are_refused(raw):
    with pytest.raises(ValueError, match="not a finite number"):
        parse_value(raw)


def test_flat_keys_keep_dots():
    got = parse_key_values(["alpha=0.2", "loss.gan=0.5", "model.adapter=ip", "solver = cg"])
    assert got == {"alpha": 0.2, "loss.gan": 0.5, "model.adapter": "ip", "solver": "cg"}
    assert parse_key_values(None) == {} and parse_key_values([]) == {}


def test_scoped_keys_are_grouped():
    got = parse_key_values(["lime.alpha=0.2", "suite.max_side=384", "lime.solver=cg"], scopes=["lime", "suite"])
    assert got == {"lime": {"alpha": 0.2, "solver": "cg"}, "suite": {"max_side": 384}}


@pytest.mark.parametrize(
    "items, message",
    [(["alpha"], r"--option expects KEY=VALUE \(e.g. --option alpha=0.2\), got 'alpha'"),
     (["=3"], "expects KEY=VALUE"),
     (["al pha=3"], "expects KEY=VALUE"),
     (["a.=3"], "expects KEY=VALUE"),
     (["alpha=1", "alpha=2"], "--option alpha is given twice"),
     (["gamma=NaN"], r"--option 'gamma=NaN': not a finite number"),
     ],
)
def test_flat_errors(items, message):
    with pytest.raises(ValueError, match=message):
        parse_key_values(items)


def test_scoped_errors_name_the_flag_and_the_choices():
    with pytest.raises(ValueError, match=r"--option expects SCOPE.KEY=VALUE \(e.g. --option lime.key=0.5\), got 'alpha'"):
        parse_key_values(["alpha=0.2"], scopes=["lime", "suite"])
    with pytest.raises(ValueError, match=r"'lmie' is not one of lime, suite \(did you mean 'lime'\?\)"):
        parse_key_values(["lmie.alpha=0.2"], scopes=["lime", "suite"])
    with pytest.raises(ValueError, match=r"^--set expects KEY=VALUE"):
        parse_key_values(["loss.gan"], flag="--set")
