"""SCUF training on tiny-random components and real photos darkened synthetically (CPU).

What must hold: every loss term is finite and logged, only the documented parameters change, and a resumed run
(in-process, or after SIGKILL) is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from safetensors.torch import load_file

from gefu.cli import main as cli_main
from gefu.scuf.train import ABLATIONS, PRESETS, TrainConfig, Trainer, make_preset, set_by_path

#: the tiny models run thousands of very small kernels: one thread is as fast as two and does not collapse when
#: the machine is shared (OpenMP threads spin-waiting on a busy core slowed steps down by 10-50× in trials)
THREADS_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _snapshot(trainer: Trainer) -> dict[str, torch.Tensor]:
    state = {f"gen.{k}": v.detach().clone() for k, v in trainer.generator.state_dict().items()}
    for name in ("disc_normal", "disc_low"):
        disc = getattr(trainer, name)
        state.update({f"{name}.{k}": v.detach().clone() for k, v in disc.state_dict().items()})
    return state


def _ckpt_state(ckpt: Path) -> dict[str, torch.Tensor]:
    """Everything a checkpoint holds that must match between runs, flattened to tensors."""
    out = {f"w.{k}": v for k, v in load_file(str(ckpt / "model" / "model.safetensors")).items()}
    out.update({f"d.{k}": v for k, v in load_file(str(ckpt / "discriminators.safetensors")).items()})
    for name in ("optimizer_g", "optimizer_d"):
        opt = torch.load(ckpt / f"{name}.pt", weights_only=True)
        for idx, st in opt["state"].items():
            for key, value in st.items():
                out[f"{name}.{idx}.{key}"] = torch.as_tensor(value)
    return out


def _assert_same_state(a: Path, b: Path) -> None:
    sa, sb = _ckpt_state(a), _ckpt_state(b)
    assert sa.keys() == sb.keys()
    different = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


# ----------------------------------------------------------------------------------------------------------------


def test_presets_and_config_json(tmp_path):
    assert {"paper", "official", "table6", *(f"ablation-{i}" for i in range(1, 9))} <= set(PRESETS)
    paper, official = make_preset("paper"), make_preset("official")
    assert (paper.loss.idt, paper.loss.gan, paper.update) == (0.5, 1.0, "joint")
    assert (official.loss.gan, official.loss.cycle_lpips, official.update) == (0.5, 10.0, "sequential")
    o = paper.optim
    assert (o.lr, o.betas, o.weight_decay, o.eps, o.schedule, o.max_grad_norm) == (
        1e-5, (0.9, 0.999), 1e-2, 1e-8, "constant", 10.0)
    rows = {name: make_preset(name) for name in ABLATIONS}
    assert rows["ablation-1"].model.adapter == "none" and not rows["ablation-1"].uses_reflectance
    assert rows["ablation-1"].loss.caption == 0 and rows["ablation-3"].loss.caption == 1
    assert rows["ablation-4"].model.reflectance == "encoder" and rows["ablation-5"].model.reflectance == "decoder"
    assert [rows[f"ablation-{i}"].model.adapter for i in (2, 6, 7)] == ["concat", "ip", "ca"]
    assert rows["ablation-8"].loss.caption == 0 and rows["ablation-8"].model.adapter == "ca"
    assert rows["table6"].caption_in_prompt and rows["table6"].loss.caption == 0 and rows["table6"].uses_captions
    with pytest.raises(ValueError, match="Did you mean .official."):
        make_preset("oficial")

    cfg = set_by_path(official, "model.adapter", "ip")
    cfg = set_by_path(cfg, "data.crop", 128)
    path = cfg.save(tmp_path / "c.json")
    again = TrainConfig.load(path)
    assert again == cfg and again.model.adapter == "ip" and again.optim.betas == (0.9, 0.999)
    with pytest.raises(ValueError, match="unknown config field"):
        set_by_path(cfg, "loss.lambda_gan", 1.0)
    bad = json.loads(path.read_text())
    bad["loss"]["lambda_gan"] = 1
    with pytest.raises(ValueError, match="lambda_gan"):
        TrainConfig.from_dict(bad)
    with pytest.raises(ValueError, match="update"):
        cfg.replace(update="alternating")


def test_thirty_steps_log_every_term_and_change_only_trainable(tiny_config, train_data, tmp_path):
    cfg = tiny_config(max_steps=30, validate_every=30, checkpoint_every=30, data__val=str(train_data / "val"))
    seen: list[int] = []
    trainer = Trainer(cfg, tmp_path / "run", progress=lambda step, total, logs: seen.append(step))
    ids = {id(p) for p in trainer.generator.trainable_parameters()}
    # every state-dict name of a trainable tensor (the adapter weights are also reachable through the UNet)
    trainable = {f"gen.{k}" for k, v in trainer.generator.state_dict(keep_vars=True).items() if id(v) in ids}
    before = _snapshot(trainer)
    final = trainer.run()
    after = _snapshot(trainer)
    assert seen == list(range(1, 31))

    rows = _rows(tmp_path / "run" / "losses.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 31))
    terms = ["cycle_low", "cycle_normal", "idt_low", "idt_normal", "caption_cycle_low", "caption_idt_normal",
             "reflectance_cycle_low", "reflectance_idt_normal", "gan_normal", "gan_low", "d_normal_fake",
             "d_low_real", "loss_g", "loss_d"]
    for term in terms:
        values = [float(r[term]) for r in rows]
        assert all(math.isfinite(v) for v in values), term
    assert float(rows[0]["d_normal_fake"]) > 0.5  # 3 levels of BCE, each ≈ log 2 at the start

    changed = {k for k in before if not torch.equal(before[k], after[k])}
    heads = {k for k in before if k.startswith(("disc_normal.heads.", "disc_low.heads."))}
    assert changed <= trainable | heads, f"frozen tensors changed: {sorted(changed - trainable - heads)[:5]}"
    assert len(changed & trainable) >= 0.9 * len(trainable)  # (practically) every trainable tensor moved
    assert any(k.startswith("gen.adapter.") for k in changed) and any(".lora_B." in k for k in changed)
    assert heads & changed

    metrics = _rows(tmp_path / "run" / "metrics.csv")
    assert len(metrics) == 1 and metrics[0]["step"] == "30" and metrics[0]["images"] == "2"
    assert 0 < float(metrics[0]["psnr"]) < 60 and -1 <= float(metrics[0]["ssim"]) <= 1
    assert (tmp_path / "run" / "samples" / "step_000030.png").is_file()
    assert (tmp_path / "run" / "val" / "step_000030.png").is_file()

    # the final model is a save_pretrained folder holding exactly the trained weights
    from gefu.scuf.generator import SCUFGenerator

    loaded = SCUFGenerator.from_pretrained(final)
    for k, v in loaded.trainable_named_parameters().items():
        assert torch.equal(v, after[f"gen.{k}"])
    from gefu import create_enhancer

    enhancer = create_enhancer("scuf", checkpoint=str(final))
    out = enhancer(torch.rand(1, 3, 20, 28))
    assert out.shape == (1, 3, 20, 28) and out.min() >= 0 and out.max() <= 1


def test_sequential_update_and_table6_run(tiny_config, decomnet, tmp_path):
    """The official six-update step (with 1 − SSIM) and the caption-in-prompt variant both train."""
    for preset in ("official", "table6"):
        cfg = tiny_config(preset, max_steps=2, grad_accum=2 if preset == "table6" else 1,
                   retinex_weights=str(decomnet))
        trainer = Trainer(cfg, tmp_path / preset)
        before = {k: v.clone() for k, v in trainer.generator.trainable_state_dict().items()}
        trainer.run()
        rows = _rows(tmp_path / preset / "losses.csv")
        assert len(rows) == 2
        assert all(math.isfinite(float(v)) for r in rows for k, v in r.items() if k != "step")
        after = trainer.generator.trainable_state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before)


def test_table6_passes_go_through_generator_step(tiny_config, train_data, tmp_path, monkeypatch):
    """One code path for a generator pass: with captions in the prompt (Table 6) every pass of the step is
    SCUFGenerator.step conditioned on "<fixed prompt> <caption of that pass's input image>"."""
    from gefu.scuf.generator import SCUFGenerator

    trainer = Trainer(tiny_config("table6", max_steps=1), tmp_path / "t6")
    calls = []
    real = SCUFGenerator.step

    def spy(self, x, direction, *args, text_embeds=None, **kwargs):
        calls.append((direction, text_embeds))
        return real(self, x, direction, *args, text_embeds=text_embeds, **kwargs)

    monkeypatch.setattr(SCUFGenerator, "step", spy)
    trainer.run()
    assert len(calls) == 6  # joint update: two cycles of two passes, two identity passes
    batch = trainer.data.batch(0)
    prompts = {"lighten": trainer.config.model.lighten_prompt, "darken": trainer.config.model.darken_prompt}
    # pass order: cycle of I_l (lighten I_l, darken back), cycle of I_n (darken I_n, lighten back), identity
    # f_l(I_n), identity f_d(I_l); the caption is always that of the cycle's / identity's input image
    captions = [batch.low_captions, batch.low_captions, batch.normal_captions, batch.normal_captions,
                batch.normal_captions, batch.low_captions]
    assert [d for d, _ in calls] == ["lighten", "darken", "darken", "lighten", "lighten", "darken"]
    for (direction, text), caption in zip(calls, captions):
        want = trainer.generator.encode_prompt([f"{prompts[direction]} {caption[0]}"])
        assert text is not None and torch.equal(text, want)


@pytest.mark.parametrize("preset", ["paper", "official"])
def test_resume_is_exact(tiny_config, train_data, decomnet, tmp_path, preset):
    """Also for the official preset: legacy spectral-norm buffers and the duplicated optimiser list resume exactly."""
    steps = 4 if preset == "paper" else 2
    straight = tmp_path / "straight"
    Trainer(tiny_config(preset, max_steps=steps, checkpoint_every=steps // 2, retinex_weights=str(decomnet)),
            straight).run()
    split = tmp_path / "split"
    Trainer(tiny_config(preset, max_steps=steps // 2, checkpoint_every=steps // 2, retinex_weights=str(decomnet)),
            split).run()
    assert (split / "checkpoints" / "latest").read_text().strip() == f"step_{steps // 2:06d}"
    resumed = Trainer(None, split, resume="latest")
    assert resumed.step == steps // 2
    resumed.config.max_steps = steps
    resumed.run()
    _assert_same_state(straight / "checkpoints" / f"step_{steps:06d}", split / "checkpoints" / f"step_{steps:06d}")
    assert (straight / "losses.csv").read_text() == (split / "losses.csv").read_text()


def test_resume_refuses_another_configuration(tiny_config, train_data, tmp_path):
    Trainer(tiny_config(max_steps=1, checkpoint_every=1), tmp_path / "r").run()
    with pytest.raises(ValueError, match="loss.gan"):
        Trainer(tiny_config(max_steps=2, loss__gan=0.5), tmp_path / "r", resume="latest")
    ok = Trainer(tiny_config(max_steps=3), tmp_path / "r", resume="latest")  # runtime fields may change
    assert ok.step == 1 and ok.config.max_steps == 3
    with pytest.raises(FileNotFoundError, match="state.json"):
        Trainer(None, tmp_path / "x", resume=tmp_path / "r" / "losses.csv")


def test_user_errors_come_before_training(tiny_config, train_data, tmp_path):
    with pytest.raises(FileNotFoundError, match="gefu caption"):
        Trainer(tiny_config(data__captions_low=None, data__low=str(train_data / "val" / "low")), tmp_path / "a")
    with pytest.raises(FileNotFoundError, match="RetinexNet"):
        Trainer(tiny_config(retinex_weights=str(tmp_path / "missing.pth")), tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_presets_and_dump_config(tmp_path, capsys):
    assert cli_main(["train", "--list-presets"]) == 0
    assert "ablation-7" in capsys.readouterr().out
    out = tmp_path / "cfg.json"
    assert cli_main(["train", "--preset", "official", "--data", "d", "--crop", "64", "--set", "loss.gan=0.25",
                     "--set", "model.adapter=ip", "--dump-config", str(out)]) == 0
    cfg = TrainConfig.load(out)
    assert (cfg.loss.gan, cfg.model.adapter, cfg.data.crop, cfg.data.resize, cfg.data.root) == (
        0.25, "ip", 64, 96, "d")
    assert cli_main(["train", "--preset", "paper", "--data", "d"]) == 2  # no --output
    assert "--output" in capsys.readouterr().err


def _gefu(args: list[str], **kw) -> subprocess.Popen:
    env = {**os.environ, **THREADS_ENV, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "gefu", "train", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, **kw)


def test_sigkill_then_resume_matches_uninterrupted(tiny_config, train_data, tmp_path):
    cfg = tiny_config(max_steps=4, checkpoint_every=2)
    cfg_path = cfg.save(tmp_path / "cfg.json")
    straight = _gefu(["--config", str(cfg_path), "--output", str(tmp_path / "straight")])
    victim = _gefu(["--config", str(cfg_path), "--output", str(tmp_path / "killed")])
    latest = tmp_path / "killed" / "checkpoints" / "latest"
    deadline = time.monotonic() + 240
    while not latest.is_file() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    out, _ = victim.communicate()
    assert victim.returncode == -signal.SIGKILL, out.decode(errors="replace")[-2000:]
    assert not (tmp_path / "killed" / "model").exists()  # it really died before the end

    resumed = _gefu(["--output", str(tmp_path / "killed"), "--resume", "latest"])
    out_r, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out_r.decode(errors="replace")[-2000:]
    out_s, _ = straight.communicate(timeout=300)
    assert straight.returncode == 0, out_s.decode(errors="replace")[-2000:]

    _assert_same_state(tmp_path / "straight" / "checkpoints" / "step_000004",
                       tmp_path / "killed" / "checkpoints" / "step_000004")
    assert (tmp_path / "straight" / "losses.csv").read_text() == (tmp_path / "killed" / "losses.csv").read_text()
    a = load_file(str(tmp_path / "straight" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "model" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
