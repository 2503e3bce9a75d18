"""Shared SCUF fixtures: ONE tiny-random generator per session, built once and never mutated by tests
(tests that change weights work on a `copy.deepcopy`)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gefu.scuf.config import SCUFConfig
from gefu.scuf.generator import SCUFGenerator


@pytest.fixture
def single_thread():
    """Run a test with one torch thread (restored afterwards).

    The tiny models are dominated by per-op overhead; on a shared 2-core machine two OpenMP threads spin against
    other processes and run 10× slower than one.
    """
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_gen() -> SCUFGenerator:
    """The default SCUF architecture (cycle-attention adapter, paper variant, reflectance at the decoder) on
    tiny random components, with `unet_init` and the text encoder (training API available). Do not mutate."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return SCUFGenerator(SCUFConfig(base="tiny-random", seed=0))
    finally:
        torch.set_num_threads(n)


@pytest.fixture
def gen_copy(tiny_gen: SCUFGenerator) -> SCUFGenerator:
    """A private deep copy of the session generator, free to modify."""
    return copy.deepcopy(tiny_gen)


def _perturb_trainable(gen: SCUFGenerator, seed: int = 1, std: float = 0.05) -> None:
    """Add seeded noise to every trainable weight, so that LoRA (B = 0 at init) and skip convs do something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in gen.trainable_parameters():
            p.add_(torch.randn(p.shape, generator=g) * std)


def _small_batch(seed: int = 0, batch: int = 2, h: int = 24, w: int = 40) -> torch.Tensor:
    """A seeded smooth-ish random image batch (B, 3, h, w) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(batch, 3, h // 4, w // 4, generator=g)
    return torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


@pytest.fixture(scope="session")
def perturb():
    """`perturb(gen, seed=1, std=0.05)`: add seeded noise to every trainable weight of `gen` in place."""
    return _perturb_trainable


@pytest.fixture(scope="session")
def make_batch():
    """`make_batch(seed=0, batch=2, h=24, w=40)`: a seeded smooth random batch (B, 3, h, w) in [0, 1]."""
    return _small_batch


# ----------------------------------------------------------------------------------------------------------------
# training fixtures
#: the released RetinexNet decomp.pth, provided to the project in ../shared (a user's clone has none)
DECOMNET = Path(__file__).resolve().parents[2].parent / "shared" / "weights" / "retinexnet_decom.pth"
_NAMES = ("coffee", "chelsea", "astronaut", "rocket", "motorcycle")


@pytest.fixture(scope="session")
def decomnet() -> Path:
    """The RetinexNet DecomNet weights (skips the test with the reason when ../shared is absent)."""
    if not DECOMNET.is_file():
        pytest.skip(f"{DECOMNET} (RetinexNet DecomNet weights, ../shared) is absent")
    return DECOMNET


@pytest.fixture(scope="session")
def train_data(tmp_path_factory) -> Path:
    """trainA (darkened photos), trainB (other photos), captions for both, and a paired val/ folder."""
    from gefu.bench.degrade import darken
    from gefu.imageio import save_image
    from gefu.samples import load_sample

    root = tmp_path_factory.mktemp("scuf_data")
    for i, name in enumerate(_NAMES):
        img = F.interpolate(load_sample(name)[None], size=(48, 64), mode="area")[0].clamp(0, 1)
        if i < 4:
            save_image(darken(img, exposure=0.1, seed=i), root / "trainA" / f"{name}.png")
        if i > 0:
            save_image(img, root / "trainB" / f"{name}_day.png")
        if i < 2:
            save_image(darken(img, exposure=0.12, seed=20 + i), root / "val" / "low" / f"{name}.png")
            save_image(img, root / "val" / "high" / f"{name}.png")
    (root / "trainA" / "captions.tsv").write_text(
        "filepath\tcaption\n" + "".join(f"{n}.png\ta photo of a {n}\n" for n in _NAMES[:4]), encoding="utf-8")
    (root / "trainB" / "captions.tsv").write_text(
        "filepath\tcaption\n" + "".join(f"{n}_day.png\ta {n} in daylight\n" for n in _NAMES[1:]), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def tiny_config(train_data):
    """`tiny_config(preset="paper", **fields)`: a tiny-random TrainConfig on 32×32 crops of `train_data`;
    keyword fields use dotted names with '__' (data__crop=32)."""
    from gefu.scuf.train import make_preset, set_by_path

    def make(preset: str = "paper", **fields):
        cfg = make_preset(preset)
        base = {"model.base": "tiny-random", "data.root": str(train_data), "data.crop": 32, "data.resize": 40,
                "checkpoint_every": 0, "validate_every": 0, "disc_head_channels": 16,
                "loss.cycle_lpips": 0.0, "loss.idt_lpips": 0.0}
        base.update({k.replace("__", "."): v for k, v in fields.items()})
        for key, value in base.items():
            cfg = set_by_path(cfg, key, value)
        return cfg

    return make
