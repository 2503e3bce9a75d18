"""Registry hints, sample photos, and the low-light synthesis."""

from __future__ import annotations

import pytest
import torch

from gefu.bench.degrade import LEVELS, darken, linear_to_srgb, srgb_to_linear
from gefu.registry import Registry
from gefu.samples import FACE_PHOTOS, load_sample, sample_photos


def test_registry_create_and_did_you_mean():
    reg: Registry = Registry("widget")

    @reg.register("lime", "lime-fast")
    def make(alpha=1):
        return ("lime", alpha)

    assert reg.create("LIME", alpha=3) == ("lime", 3)
    assert reg.names() == ["lime", "lime-fast"] and "Lime" in reg
    with pytest.raises(ValueError, match="did you mean 'lime'"):
        reg.get("lme")
    with pytest.raises(ValueError, match="unknown widget 'zzz'.*Available: lime, lime-fast"):
        reg.get("zzz")
    with pytest.raises(KeyError, match="already registered"):
        reg.register("lime")(make)


def test_sample_photos_are_real_colour_photographs():
    photos = sample_photos()
    assert len(photos) >= 6 and set(FACE_PHOTOS) <= set(photos)
    for name in photos:
        x = load_sample(name)
        assert x.shape[0] == 3 and min(x.shape[1:]) >= 200
        assert float((x[0] - x[1]).abs().mean()) > 0.01  # colour, not grey
    with pytest.raises(ValueError, match="available: astronaut"):
        load_sample("nope")


def test_srgb_transfer_round_trip_and_known_values():
    x = torch.linspace(0, 1, 101)
    torch.testing.assert_close(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-5, rtol=0)
    # sRGB 0.5 is 21.4 % linear light (IEC 61966-2-1)
    assert abs(float(srgb_to_linear(torch.tensor(0.5))) - 0.21404) < 1e-4


def test_darken_is_seeded_quantised_and_ordered(photo):
    a, b = darken(photo, 0.12, seed=3), darken(photo, 0.12, seed=3)
    assert torch.equal(a, b) and not torch.equal(a, darken(photo, 0.12, seed=4))
    assert torch.equal(torch.round(a * 255) / 255, a)  # 8-bit levels
    means = [float(darken(photo, k, seed=0).mean()) for k in sorted(LEVELS.values())]
    assert means == sorted(means) and means[-1] < float(photo.mean())
    # without noise or cast, darkening is exactly exposure scaling in linear light
    clean = darken(photo, 0.25, noise=False, cast=False)
    ref = linear_to_srgb(srgb_to_linear(photo) * 0.25)
    assert float((clean - ref).abs().max()) <= 0.5 / 255 + 1e-6
    with pytest.raises(ValueError, match="exposure"):
        darken(photo, 0.0)


def test_registry_checks_option_names_against_the_signature():
    reg: Registry = Registry("widget")

    @reg.register("lime")
    def make(alpha=1, gamma=2):
        return (alpha, gamma)

    @reg.register("open")
    def make_open(**kwargs):
        return kwargs

    assert reg.options("lime") == (["alpha", "gamma"], False)
    reg.check_options("lime", {"alpha": 3})
    reg.check_options("open", {"anything": 1})  # **kwargs: nothing to check against
    with pytest.raises(ValueError, match=r"^unknown option 'alhpa' for widget 'lime' \(did you mean 'alpha'\?\); "
                                         r"it takes alpha, gamma$"):
        reg.check_options("lime", {"alhpa": 3})
    with pytest.raises(ValueError, match=r"^--seed does not apply to widget 'lime'; it takes alpha, gamma$"):
        reg.check_options("lime", {"seed": 3}, flags={"seed": "--seed"})
