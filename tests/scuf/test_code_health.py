"""Structure of the SCUF code (issue 11, items 11-12): no import cycles, one CLIP constant, one config mechanism,
files and functions small enough to read.

The checks read the source with `ast` (an independent view of the code, not the code under test): a cycle through a
function-level import is still a cycle of the design, even when Python tolerates it at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

SRC = Path(__file__).resolve().parents[2] / "src" / "gefu"
OWNED = sorted((SRC / "scuf").glob("*.py")) + [SRC / "enhancers" / "scuf.py", SRC / "cli" / "train.py",
                                                 SRC / "cli" / "caption.py"]


def _module(path: Path) -> str:
    return ".".join(("gefu", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    """Every gefu module `path` imports, at module level or inside functions (relative imports resolved)."""
    package = _module(path).rsplit(".", 1)[0] if path.name != "__init__.py" else _module(path)
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" for a in node.names]
            out.update(n for n in [target, *names] if n.startswith("gefu"))
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("gefu"))
    return out


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in SRC.rglob("*.py")}
    return {name: {t for t in _imports(path) if t in files and t != name} for name, path in files.items()}


def test_scuf_modules_import_each_other_without_cycles():
    graph = _graph()
    scope = {_module(p) for p in OWNED}
    cycles = []
    for start in sorted(scope):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    cycles.append(" → ".join(path + [start]))
                elif nxt not in path and nxt in scope:
                    stack.append((nxt, path + [nxt]))
    assert not cycles, f"import cycles: {cycles[:3]}"


def test_checkpoint_io_does_not_import_the_generator():
    """The generator uses the checkpoint files module; the importer of the official .pkl lives apart."""
    imports = _imports(SRC / "scuf" / "checkpoint.py")
    assert not {m for m in imports if m.startswith("gefu.scuf.generator")}
    assert "gefu.scuf.checkpoint" in {m.rsplit(".", 1)[0] for m in _imports(SRC / "scuf" / "generator.py")} | \
        _imports(SRC / "scuf" / "generator.py")


def test_one_clip_mean_and_std():
    """The CLIP normalisation constants are written nowhere in SCUF's code: everything uses transformers' own."""
    for path in OWNED:
        text = path.read_text(encoding="utf-8")
        assert "0.48145466" not in text and "0.26862954" not in text, f"{path.name} writes the CLIP mean/std itself"
    from gefu.scuf import discriminator

    assert discriminator.CLIP_MEAN == tuple(OPENAI_CLIP_MEAN) and discriminator.CLIP_STD == tuple(OPENAI_CLIP_STD)


@pytest.mark.parametrize("path", OWNED, ids=lambda p: p.name)
def test_files_and_functions_are_small(path):
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= 500, f"{path.name} has {lines} lines: split it along its seams"
    long = [f"{n.name} ({n.end_lineno - n.lineno + 1} lines)" for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 60]
    assert not long, f"{path.name}: break up {', '.join(long)}"


def test_one_config_mechanism_names_fields_as_users_write_them():
    """Every config section is checked by the same rules and reports `section.field` (the --set syntax)."""
    from gefu.scuf.train import TrainConfig, make_preset, set_by_path

    cfg = make_preset("paper")
    for key, value, message in [
        ("data.hflip", "yes", "data.hflip must be true or false"),
        ("data.crop", 4, "data.crop must be ≥ 8"),
        ("loss.gan", -1, "loss.gan must be ≥ 0"),
        ("loss.gan_loss", "wgan", "loss.gan_loss must be one of"),
        ("optim.lr", "fast", "optim.lr must be a finite number"),
        ("model.adapter", "cross", "model.adapter must be one of"),
        ("model.vae_lora_rank", 0, "model.vae_lora_rank must be ≥ 1"),
        ("quirks.blurpool_pad", "reflect", "quirks.blurpool_pad must be one of"),
        ("max_steps", 1.5, "max_steps must be an integer"),
    ]:
        with pytest.raises(ValueError, match=message):
            set_by_path(cfg, key, value)
    with pytest.raises(ValueError, match=r"unknown config field 'loss.gan_los'\. Did you mean loss.gan_loss"):
        TrainConfig.from_dict({"loss": {"gan_los": "hinge"}})
    with pytest.raises(ValueError, match=r"unknown config field 'model.adaptor'\. Did you mean model.adapter"):
        TrainConfig.from_dict({"model": {"adaptor": "ca"}})
    # integers are accepted for floats and come back as floats; lists for tuples
    again = TrainConfig.from_dict({**cfg.to_dict(), "optim": {**cfg.to_dict()["optim"], "lr": 1, "betas": [0.5, 0.9]}})
    assert again.optim.lr == 1.0 and isinstance(again.optim.lr, float) and again.optim.betas == (0.5, 0.9)
