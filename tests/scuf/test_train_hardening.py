"""Training as careless and hostile users meet it (issue 11, items 3, 7, 10, 13): nothing of a previous run is lost,
a damaged checkpoint is skipped, refused files and a diverged loss end with one line, and the passes of a step get
the right prompt maps and the discriminators the right images.
"""

from __future__ import annotations

import json
import logging
import pickle
import shutil

import pytest
import torch

from gefu.cli import main as cli_main
from gefu.scuf.train import DamagedCheckpoint, Trainer
from gefu.scuf.train_io import write_manifest

pytestmark = pytest.mark.usefixtures("single_thread")


def _one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("WARNING")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# ----------------------------------------------------------------------------------------------------------------
# item 3: an existing run folder
def test_existing_run_folder_is_refused_unless_resume_or_overwrite(tiny_config, tmp_path, capsys):
    out = tmp_path / "run"
    Trainer(tiny_config(max_steps=1, checkpoint_every=1), out).run()
    (out / "notes.txt").write_text("mine")
    before = (out / "losses.csv").read_text()
    with pytest.raises(ValueError, match="already holds a training run.*--resume latest.*--overwrite"):
        Trainer(tiny_config(max_steps=2), out)
    assert (out / "losses.csv").read_text() == before and (out / "checkpoints" / "step_000001").is_dir()
    cfg = tiny_config(max_steps=2).save(tmp_path / "cfg.json")
    assert cli_main(["train", "--config", str(cfg), "-o", str(out)]) == 2
    assert "--overwrite" in _one_line(capsys.readouterr().err)
    assert cli_main(["train", "--config", str(cfg), "-o", str(out), "--overwrite", "--resume", "latest"]) == 2
    assert "give one of them" in capsys.readouterr().err

    trainer = Trainer(tiny_config(max_steps=1), out, overwrite=True)  # starts over: the old run's files go…
    assert not (out / "checkpoints").exists() and trainer.step == 0
    assert (out / "notes.txt").read_text() == "mine"  # …and nothing else
    trainer.run()
    assert [ln.split(",")[0] for ln in (out / "losses.csv").read_text().splitlines()] == ["step", "1"]


def test_resuming_with_other_data_warns(tiny_config, train_data, tmp_path, caplog):
    out = tmp_path / "run"
    Trainer(tiny_config(max_steps=1, checkpoint_every=1), out).run()
    moved = tmp_path / "moved"
    shutil.copytree(train_data, moved)
    with caplog.at_level(logging.WARNING):
        trainer = Trainer(tiny_config(max_steps=2, data__root=str(moved)), out, resume="latest")
    assert trainer.step == 1
    assert any("other data" in r.message and "data.root" in r.message for r in caplog.records)


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_damaged_checkpoint_falls_back_to_the_previous_one(tiny_config, tmp_path, caplog, damage):
    out = tmp_path / "run"
    Trainer(tiny_config(max_steps=2, checkpoint_every=1), out).run()
    victim = out / "checkpoints" / "step_000002" / "optimizer_g.pt"
    if damage == "truncate":
        victim.write_bytes(victim.read_bytes()[:100])
    else:
        victim.unlink()
    with caplog.at_level(logging.WARNING):
        trainer = Trainer(None, out, resume="latest")
    assert trainer.step == 1
    warning = " ".join(r.message for r in caplog.records)
    assert "step_000002" in warning and "optimizer_g.pt" in warning and "step_000001" in warning
    # every checkpoint damaged: one clear error, nothing loaded
    shutil.rmtree(out / "checkpoints" / "step_000001")
    with pytest.raises(DamagedCheckpoint, match="no intact checkpoint"):
        Trainer(None, out, resume="latest")


# ----------------------------------------------------------------------------------------------------------------
# item 7: refused pickles, a diverged loss
def test_refused_pickle_on_resume_is_one_line_and_never_runs(tiny_config, tmp_path, capsys):
    out = tmp_path / "run"
    Trainer(tiny_config(max_steps=1, checkpoint_every=1), out).run()
    ckpt = out / "checkpoints" / "step_000001"
    canary = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            return (open, (str(canary), "w"))

    (ckpt / "optimizer_g.pt").write_bytes(pickle.dumps(Evil()))
    state = json.loads((ckpt / "state.json").read_text())
    state.pop("files")
    write_manifest(ckpt, state)  # a consistent manifest: the file is "intact", only its content is hostile
    assert cli_main(["train", "-o", str(out), "--resume", "latest"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "optimizer_g.pt" in line and "refused" in line and "Delete this checkpoint folder" in line
    assert not canary.exists()


def test_non_finite_loss_stops_with_one_line_and_saves_nothing_of_that_step(tiny_config, tmp_path, capsys):
    cfg = tiny_config(max_steps=4, checkpoint_every=1, optim__lr=1e30).save(tmp_path / "cfg.json")
    out = tmp_path / "run"
    assert cli_main(["train", "--config", str(cfg), "-o", str(out)]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "the training loss is not finite" in line and "--set optim.lr" in line
    step = int(line.split("step ")[1].split(":")[0])
    assert f"step_{step - 1:06d}" in line  # the checkpoint to resume from
    saved = sorted(p.name for p in (out / "checkpoints").glob("step_*"))
    assert saved and saved[-1] == f"step_{step - 1:06d}" and not (out / "model").exists()


def test_mixed_precision_on_cpu_warns(tiny_config, tmp_path, capsys):
    cfg = tiny_config(max_steps=1).save(tmp_path / "cfg.json")
    args = ["train", "--config", str(cfg), "-o", str(tmp_path / "r"), "--mixed-precision", "fp16", "--cpu"]
    assert cli_main([*args, "--dump-config", str(tmp_path / "d.json")]) == 0  # only writes the config
    assert "warning" not in capsys.readouterr().err
    assert cli_main([*args, "--data", str(tmp_path / "nowhere")]) == 2  # stops before any state is set
    warning, error = capsys.readouterr().err.strip().splitlines()
    assert warning.startswith("gefu train: warning: --mixed-precision fp16") and "CPU" in warning
    assert "does not exist" in error


def test_set_uses_the_common_parser(tmp_path, capsys):
    for bad, message in [("loss.gan=nan", "finite number"), ("loss.gan", "KEY=VALUE"),
                         ("loss.gan=1", "given twice")]:
        args = ["train", "--preset", "paper", "--data", "d", "--set", bad, "--dump-config", str(tmp_path / "c.json")]
        if message == "given twice":
            args += ["--set", "loss.gan=2"]
        assert cli_main(args) == 2
        assert message in _one_line(capsys.readouterr().err)
    assert cli_main(["train", "--preset", "paper", "--data", "d", "--set", "loss.gna=1", "--dump-config",
                     str(tmp_path / "c.json")]) == 2
    assert "Did you mean loss.gan" in capsys.readouterr().err


def test_train_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        cli_main(["train", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "-o runs/scuf --resume latest" in out and "--overwrite" in out


# ----------------------------------------------------------------------------------------------------------------
# item 10: which prompt map feeds which pass; which images the discriminators call real
def _v_embed(gen, x01: torch.Tensor, reverse: bool) -> torch.Tensor:
    """The CLIP embedding of V = max over RGB (or 1 − V), computed here from the pixels."""
    v = x01.max(dim=1, keepdim=True).values
    with torch.no_grad():
        return gen.prompt_encoder(1.0 - v if reverse else v)


@pytest.mark.parametrize("update", ["joint", "sequential"])
def test_every_pass_gets_its_prompt_map(tiny_config, tmp_path, monkeypatch, update):
    trainer = Trainer(tiny_config(max_steps=1, update=update, loss__caption=0.0, loss__reflectance=0.0), tmp_path)
    gen = trainer.generator
    batch = trainer.data.batch(0)
    x01 = {"low": batch.low, "normal": batch.normal}
    calls = []
    real = type(gen).step

    def spy(self, x, direction, *args, image_embeds=None, **kwargs):
        out = real(self, x, direction, *args, image_embeds=image_embeds, **kwargs)
        calls.append((direction, x.detach(), image_embeds, out.image.detach()))
        return out

    monkeypatch.setattr(type(gen), "step", spy)
    trainer.train_step(0, [batch])
    # DESIGN §2.2: lighten I_l → 1 − V(I_l); its darken back → V(I_l); darken I_n → 1 − V(I_n); its lighten back →
    # V(I_n); identity f_l(I_n) → V(I_n); identity f_d(I_l) → V(I_l); the GAN's fresh fakes like the cycles' fronts
    inputs = {d: x01[d] * 2 - 1 for d in ("low", "normal")}
    fronts = {("low", "lighten"), ("normal", "darken")}
    found = set()
    for direction, x, embeds, _ in calls:
        domain = next((d for d in inputs if torch.equal(x, inputs[d])), None)
        if domain is not None:  # a front pass (1 − V) or an identity pass (V) on an input image
            want = _v_embed(gen, x01[domain], reverse=(domain, direction) in fronts)
            found.add((domain, direction))
        else:  # a back pass: its input is the translation made by an earlier front pass
            origin = next(d for dd, xx, _, img in calls for d in inputs
                          if torch.equal(img, x) and torch.equal(xx, inputs[d]))
            want = _v_embed(gen, x01[origin], reverse=False)
            found.add((origin, direction, "back"))
        torch.testing.assert_close(embeds, want, rtol=1e-5, atol=1e-6)
    assert found == {("low", "lighten"), ("low", "darken"), ("normal", "darken"), ("normal", "lighten"),
                     ("low", "darken", "back"), ("normal", "lighten", "back")}


@pytest.mark.parametrize("update", ["joint", "sequential"])
def test_discriminators_see_their_own_domain_as_real(tiny_config, tmp_path, monkeypatch, update):
    trainer = Trainer(tiny_config(max_steps=1, update=update, loss__caption=0.0, loss__reflectance=0.0), tmp_path)
    batch = trainer.data.batch(0)
    seen = []
    for name in ("disc_normal", "disc_low"):
        disc = getattr(trainer, name)
        real_loss = disc.loss

        def spy(images, target, generator=None, _name=name, _real=real_loss):
            seen.append((_name, target, images.detach()))
            return _real(images, target, generator)

        monkeypatch.setattr(disc, "loss", spy)
    trainer.train_step(0, [batch])
    reals = {(name, torch.equal(img, batch.normal * 2 - 1), torch.equal(img, batch.low * 2 - 1))
             for name, target, img in seen if target == "real"}
    assert reals == {("disc_normal", True, False), ("disc_low", False, True)}
    # the generator's GAN term and the fakes: D_normal judges translations of I_l, D_low those of I_n — never the
    # inputs themselves
    for name, target, img in seen:
        if target in ("generator", "fake"):
            assert not torch.equal(img, batch.normal * 2 - 1) and not torch.equal(img, batch.low * 2 - 1)
    assert {(n, t) for n, t, _ in seen} == {(d, t) for d in ("disc_normal", "disc_low")
                                            for t in ("generator", "fake", "real")}
