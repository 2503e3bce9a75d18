"""Enhancer options are checked at construction: unknown names (did you mean), non-finite and out-of-range values
(with the valid range) — never discovered in the middle of a folder, never a SIGFPE (issue 11, items 5 and 6)."""

from __future__ import annotations

import math

import pytest
import torch

import gefu
from gefu.enhancers import ENHANCERS
from gefu.enhancers.base import Choice, Flag, Number, Numbers


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("gamma", {"gamma": math.nan}, r"gamma: gamma must be a finite number in \(0, 10\], got nan"),
        ("gamma", {"gamma": math.inf}, r"gamma must be a finite number in \(0, 10\], got inf"),
        ("gamma", {"gamma": "0.5"}, r"gamma must be a finite number in \(0, 10\], got '0.5'"),
        ("lime", {"alpha": 1e308}, r"lime: alpha must be a finite number in \[0, 1000\], got 1e\+308"),
        ("lime", {"alpha": math.nan}, r"alpha must be a finite number in \[0, 1000\], got nan"),
        ("lime", {"gamma": 0}, r"gamma must be a finite number in \(0, 10\], got 0"),
        ("lime", {"weight_strategy": 4}, r"weight_strategy must be one of 1, 2, 3, got 4"),
        ("lime", {"denoise": "yes"}, r"denoise must be true or false, got 'yes'"),
        ("dual", {"downscale": 0.5}, r"dual: downscale must be a finite number in \[1, 64\], got 0.5"),
        ("msrcr", {"sigmas": []}, r"msrcr: sigmas must be a non-empty list of numbers, each in \(0, 10000\], got \[\]"),
        ("msrcr", {"sigmas": 0}, r"sigmas must be a non-empty list of numbers, each in \(0, 10000\], got \[0\]"),
        ("msrcr", {"sigmas": [15, math.nan]}, r"sigmas must be a non-empty list"),
        ("clahe", {"tiles": 0}, r"clahe: tiles must be an integer in \[1, 256\], got 0"),
        ("clahe", {"tiles": 2.5}, r"tiles must be an integer in \[1, 256\], got 2.5"),
        ("clahe", {"clip_limit": -1}, r"clip_limit must be a finite number in \[0, 1000\], got -1"),
        ("he", {"bins": 1}, r"bins must be an integer in \[2, 65536\], got 1"),
    ],
)
def test_bad_values_are_refused_with_the_valid_range(name, options, message):
    with pytest.raises(ValueError, match=message):
        gefu.create_enhancer(name, **options)


def test_unknown_option_names_suggest_the_closest():
    with pytest.raises(ValueError, match=r"unknown option 'alhpa' for enhancer 'lime' \(did you mean 'alpha'\?\); "
                                         r"it takes alpha, gamma, weight_strategy"):
        gefu.create_enhancer("lime", alhpa=0.2)
    with pytest.raises(ValueError, match="unknown option 'dtype' for enhancer 'lime'; it takes"):
        gefu.create_enhancer("lime", dtype=torch.float16)
    with pytest.raises(ValueError, match="it takes no options"):
        gefu.create_enhancer("none", gamma=1)


def test_edge_values_inside_the_range_work():
    x = torch.rand(1, 3, 9, 11)
    for name, options in [("clahe", {"tiles": 1, "clip_limit": 0}), ("clahe", {"tiles": 256}),
                          ("msrcr", {"sigmas": 15}), ("lime", {"alpha": 0}), ("gamma", {"gamma": 10})]:
        y = gefu.create_enhancer(name, **options)(x)
        assert torch.isfinite(y).all()
    assert gefu.create_enhancer("msrcr", sigmas=15).options["sigmas"] == [15.0]


def test_every_classic_option_has_a_declared_range():
    """A new option without a range would accept NaN again."""
    for name in ("gamma", "he", "clahe", "msrcr", "lime", "dual"):
        cls = ENHANCERS.get(name)
        assert set(ENHANCERS.options(name)[0]) == set(cls.specs), name


def test_spec_descriptions():
    assert Number(0, 10, low_open=True).describe() == "a finite number in (0, 10]"
    assert Number(1, integer=True).describe() == "an integer >= 1"
    assert Choice(("a", 2)).describe() == "one of 'a', 2"
    assert Flag().describe() == "true or false"
    assert not Number(0, 1).ok(True) and Number(0, 1).ok(1) and not Numbers(Number(0, 1)).ok([])
