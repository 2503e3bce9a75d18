"""`--preset official` = the released training code (issue 10 part B): every quirk is a named switch, and each
switch is checked here against a hand-computed or independent expectation of what it changes.

The side-by-side check of a whole iteration against the released code (every loss term and updated parameter)
needs that code and runs outside the project; its method and figures are in the README ("paper, official and the
defaults").
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from gefu.scuf.discriminator import Blur, MultiLevelHeads, VisionAidedDiscriminator, diff_augment
from gefu.scuf.losses import LOSS_PRESETS, LossWeights, reflectance_loss, ssim_loss
from gefu.scuf.train import OfficialQuirks, Trainer, TrainConfig, make_preset, preset_differences
from gefu.scuf.train_step import StepLosses, official_param_list

pytestmark = pytest.mark.usefixtures("single_thread")


# ----------------------------------------------------------------------------------------------------------------
# the preset itself
def test_official_preset_switches_every_quirk_and_nothing_unlisted():
    cfg = make_preset("official")
    assert cfg.quirks == OfficialQuirks.official()
    q = cfg.quirks
    assert (q.reflectance_detach_back, q.gan_keep_d_grads, q.caption_reencode, q.lora_param_duplicates,
            q.clip_grad_counts_duplicates) == (True,) * 5
    assert (q.ssim_data_range, q.blurpool_pad, q.spectral_norm, q.diffaug_translation_sign) == (
        None, "official", "legacy", -1)
    # B1: the released processor, skip-conv bases frozen; B5: seed 42; B4: the released caption rewrite
    assert (cfg.model.adapter_variant, cfg.model.train_skip_conv_base) == ("official", False)
    assert (cfg.seed, cfg.data.seed, cfg.data.caption_rewrite, cfg.update) == (42, 42, "official", "sequential")
    assert cfg.reflectance_teacher == "decomnet"  # B8: never the classic fallback
    # the defaults and the paper preset are the sane behaviour: no quirk on
    assert TrainConfig().quirks == OfficialQuirks() == make_preset("paper").quirks
    diff = preset_differences("official")
    assert {k.split(".")[0] for k in diff} == {"model", "loss", "data", "quirks", "update", "reflectance_teacher",
                                               "seed"}
    assert diff["quirks.spectral_norm"] == ("parametrization", "legacy")
    assert preset_differences("paper") == {}  # the paper preset is gefu's default


# ----------------------------------------------------------------------------------------------------------------
# B2: reflectance consistency with R_back detached
def test_reflectance_detach_back_gradients():
    n = 2 * 3 * 4 * 4
    r_back = torch.full((2, 3, 4, 4), 0.5, requires_grad=True)
    r_fwd = torch.full((2, 3, 4, 4), 0.7, requires_grad=True)
    teacher = torch.full((2, 3, 4, 4), 0.3)
    for detach, back_grad in ((False, 1.0 - 0.4), (True, 1.0)):  # L1 slope 1/n; MSE slope 2·(0.5 − 0.7)/n
        loss = reflectance_loss(r_back, teacher, r_fwd, detach_back=detach)
        gb, gf = torch.autograd.grad(loss, (r_back, r_fwd))
        assert math.isclose(loss.item(), 0.2 + 0.04, rel_tol=1e-6)  # the value is the same either way
        torch.testing.assert_close(gb, torch.full_like(gb, back_grad / n))
        torch.testing.assert_close(gf, torch.full_like(gf, 0.4 / n))


# ----------------------------------------------------------------------------------------------------------------
# B6: SSIM with data_range taken from the images (torchmetrics' None)
def _skimage_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float) -> float:
    vals = [structural_similarity(x[0, c].double().numpy(), y[0, c].double().numpy(), data_range=data_range,
                                  gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
            for c in range(x.shape[1])]
    return float(np.mean(vals))


def test_ssim_data_range_from_the_images():
    g = torch.Generator().manual_seed(0)
    x = (0.2 + 0.4 * torch.rand(1, 3, 24, 24, generator=g)).double()  # range < 0.4
    y = (0.1 + 0.3 * torch.rand(1, 3, 24, 24, generator=g)).double()
    dr = max(float(x.max() - x.min()), float(y.max() - y.min()))
    assert math.isclose(ssim_loss(x, y, None).item(), 1 - _skimage_ssim(x, y, dr), rel_tol=1e-6)
    assert math.isclose(ssim_loss(x, y, 1.0).item(), 1 - _skimage_ssim(x, y, 1.0), rel_tol=1e-6)
    assert abs(ssim_loss(x, y, None).item() - ssim_loss(x, y, 1.0).item()) > 1e-3
    # the gradient also flows through the range: at the brightest pixel it matches central differences of the
    # whole function (range included)
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(ssim_loss(xr, y, None), xr)
    idx = np.unravel_index(int(torch.argmax(x)), x.shape)
    h = 1e-6
    up, down = x.clone(), x.clone()
    up[idx] += h
    down[idx] -= h
    fd = (ssim_loss(up, y, None).item() - ssim_loss(down, y, None).item()) / (2 * h)
    assert math.isclose(grad[idx].item(), fd, rel_tol=1e-4, abs_tol=1e-9)
    (grad_fixed,) = torch.autograd.grad(ssim_loss(xr, y, dr), xr)
    assert abs(grad[idx].item() - grad_fixed[idx].item()) > 1e-6  # the range term is really in there


# ----------------------------------------------------------------------------------------------------------------
# B6: the heads' blur padding (vision-aided-loss BlurPool: pad 1 on each side)
def _blur_by_hand(x: np.ndarray, pad: tuple[int, int, int, int]) -> np.ndarray:
    a = np.array([1.0, 3.0, 3.0, 1.0])
    k = np.outer(a, a) / 64.0
    left, right, top, bottom = pad
    p = np.pad(x, ((top, bottom), (left, right)))
    out = np.zeros((p.shape[0] - 3, p.shape[1] - 3))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = (p[i:i + 4, j:j + 4] * k).sum()
    return out


def test_blurpool_pad_official_shrinks_the_map_by_one():
    x = torch.arange(49, dtype=torch.float64).reshape(1, 1, 7, 7)
    official = Blur(1, "official").double()(x)[0, 0].numpy()
    same = Blur(1, "same").double()(x)[0, 0].numpy()
    np.testing.assert_allclose(official, _blur_by_hand(x[0, 0].numpy(), (1, 1, 1, 1)), rtol=1e-12)
    np.testing.assert_allclose(same, _blur_by_hand(x[0, 0].numpy(), (1, 2, 1, 2)), rtol=1e-12)
    assert official.shape == (6, 6) and same.shape == (7, 7)
    feats = [torch.randn(1, 8, 7, 7), torch.randn(1, 8, 7, 7), torch.randn(1, 5)]
    shapes = {pad: [tuple(o.shape) for o in MultiLevelHeads(2, 8, 5, 4, blur_pad=pad)(feats)] for pad in
              ("official", "same")}
    assert shapes == {"official": [(1, 3, 3), (1, 3, 3), (1, 1)], "same": [(1, 4, 4), (1, 4, 4), (1, 1)]}


# ----------------------------------------------------------------------------------------------------------------
# B6: legacy spectral norm (v then u, no warm-up)
def test_legacy_spectral_norm_is_one_v_then_u_iteration():
    torch.manual_seed(0)
    heads = MultiLevelHeads(1, 3, 2, 4, norm="legacy").train()
    lin = heads.cls[0]  # Linear(2 → 4) under torch.nn.utils.spectral_norm
    w = lin.weight_orig.detach().double().numpy()
    u0 = lin.weight_u.detach().double().numpy()
    v = w.T @ u0
    v /= np.linalg.norm(v)
    u = w @ v
    u /= np.linalg.norm(u)
    sigma = u @ w @ v
    x = torch.randn(3, 2)
    y = heads.cls[0](x).detach().double().numpy()
    np.testing.assert_allclose(y, x.double().numpy() @ (w / sigma).T + lin.bias.detach().double().numpy(), rtol=1e-5)
    np.testing.assert_allclose(lin.weight_u.detach().numpy(), u, rtol=1e-5)  # the stored u moved once
    # the parametrization version runs 15 warm-up iterations at construction: σ is then (close to) the largest
    # singular value, which one legacy iteration from a random u generally is not
    torch.manual_seed(0)
    par = MultiLevelHeads(1, 3, 2, 4, norm="parametrization").cls[0]
    w2 = par.parametrizations.weight.original.detach().double().numpy()
    eff = par.weight.detach().double().numpy()
    assert math.isclose(np.linalg.norm(eff, 2), 1.0, rel_tol=1e-3)
    assert not math.isclose(sigma, np.linalg.norm(w, 2), rel_tol=1e-3) or np.allclose(w, w2)


# ----------------------------------------------------------------------------------------------------------------
# B6: DiffAugment translation sign
@pytest.mark.parametrize("sign", [1, -1])
def test_diffaug_translation_sign(sign):
    x = torch.zeros(1, 1, 16, 16)
    x[0, 0, 8, 8] = 1.0
    out = diff_augment(x, ("translation",), torch.Generator().manual_seed(3), translation_sign=sign)
    # the draws, made independently with the same seed: shift in y, then in x, each in [-2, 2] (16 · 0.125)
    g = torch.Generator().manual_seed(3)
    dy, dx = int(torch.randint(-2, 3, (1,), generator=g)), int(torch.randint(-2, 3, (1,), generator=g))
    assert (dy, dx) != (0, 0)
    assert out[0, 0, 8 + sign * dy, 8 + sign * dx] == 1.0 and out.sum() == 1.0


# ----------------------------------------------------------------------------------------------------------------
# B7: the paper weights the identity caption and reflectance terms by λ_idt
def test_paper_weights_identity_semantic_terms_by_lambda_idt():
    terms = {"caption_idt_low": 1.0, "reflectance_idt_normal": 2.0, "caption_cycle_low": 4.0, "idt_low": 8.0,
             "gan_low": 16.0}
    terms = {k: torch.tensor(v) for k, v in terms.items()}

    def total(weights: LossWeights) -> float:
        cfg = TrainConfig(loss=weights)
        return StepLosses(cfg, None, None, None, None, None).weighted(terms).item()

    paper, official = LOSS_PRESETS["paper"], LOSS_PRESETS["official"]
    assert total(paper) == 0.5 * 1 + 0.5 * 2 + 4 + 8 + 1.0 * 16  # Eq. 7-8: λ_idt = 0.5 on the identity terms
    assert total(official) == 1 + 2 + 4 + 8 + 0.5 * 16  # released: weight 1, λ_gan 0.5
    mixed = LossWeights(idt=0.5, idt_weights_semantic=False)
    assert total(mixed) == 1 + 2 + 4 + 8 + 16


# ----------------------------------------------------------------------------------------------------------------
# B5/B6: the duplicated optimiser list and the clip norm over it (tiny-random trainer)
@pytest.fixture(scope="module")
def official_trainer(tiny_config, decomnet, tmp_path_factory):
    cfg = tiny_config("official", max_steps=1, retinex_weights=str(decomnet))
    return Trainer(cfg, tmp_path_factory.mktemp("official"))


def _multiplicity(trainer: Trainer) -> dict[str, int]:
    ids = {}
    for p in trainer.opt_g.param_groups[0]["params"]:
        ids[id(p)] = ids.get(id(p), 0) + 1
    return {name: ids.get(id(p), 0) for name, p in trainer.generator.trainable_named_parameters().items()}


def _expected_multiplicity(name: str) -> int:
    """The released list (get_traininable_params_vae_ref): a VAE's LoRA, then its skip convs again; the
    reflectance decoder's LoRA, then the darken decoder's skip convs once more."""
    if ".skip_conv_" in name and "lora_" in name:
        return {"vae_l": 2, "vae_d": 3, "reflect": 1}[name.split(".")[0]]
    return 1


def test_lora_param_duplicates(official_trainer, tiny_config):
    counts = _multiplicity(official_trainer)
    assert any(c == 3 for c in counts.values()) and any(c == 2 for c in counts.values())
    assert counts == {name: _expected_multiplicity(name) for name in counts}
    # the skip convs' base weights are frozen (B1), so they are in no list
    assert not [n for n in counts if ".skip_conv_" in n and "base_layer" in n]
    plain = Trainer(tiny_config("official", max_steps=1, quirks__lora_param_duplicates=False,
                                reflectance_teacher="classic"), official_trainer.output_dir.parent / "plain")
    assert set(_multiplicity(plain).values()) == {1}


def test_duplicates_step_a_parameter_twice_or_thrice(official_trainer):
    """AdamW applied to the released list: a parameter listed k times takes k Adam steps with the same gradient
    per update (hand-computed Adam; torch's per-tensor CPU implementation, as on this machine)."""
    gen = copy.deepcopy(official_trainer.generator)
    listed = official_param_list(gen)
    lr, (b1, b2), eps, wd = 1e-5, (0.9, 0.999), 1e-8, 1e-2
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = torch.optim.AdamW(listed, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, foreach=False)
    params = gen.trainable_named_parameters()
    names = {}
    for name in params:
        names.setdefault(_expected_multiplicity(name), name)
    assert set(names) == {1, 2, 3}
    start = {name: params[name].detach().clone().double() for name in names.values()}
    for p in gen.trainable_parameters():
        p.grad = torch.full_like(p, 0.25)
    opt.step()
    for k, name in names.items():
        want = start[name]
        m = v = torch.zeros_like(want)
        for t in range(1, k + 1):
            want = want * (1 - lr * wd)
            m = b1 * m + (1 - b1) * 0.25
            v = b2 * v + (1 - b2) * 0.25 ** 2
            want = want - lr * (m / (1 - b1 ** t)) / ((v / (1 - b2 ** t)).sqrt() + eps)
        torch.testing.assert_close(params[name].detach().double(), want, rtol=0, atol=5e-7)  # float32 rounding; one step is 1e-5


@pytest.mark.parametrize("counts_duplicates", [True, False])
def test_clip_norm_over_the_listed_parameters(official_trainer, monkeypatch, counts_duplicates):
    trainer = official_trainer
    monkeypatch.setattr(trainer, "clip_g", official_param_list(trainer.generator) if counts_duplicates
                        else trainer.generator.trainable_parameters())
    monkeypatch.setattr(trainer.opt_g, "step", lambda *a, **k: None)
    for p in trainer.generator.trainable_parameters():
        p.grad = torch.full_like(p, 1e-3)
    names = trainer.generator.trainable_named_parameters()
    numel = sum(p.numel() * (_expected_multiplicity(n) if counts_duplicates else 1) for n, p in names.items())
    norm = trainer._apply("g")
    assert math.isclose(norm, 1e-3 * math.sqrt(numel), rel_tol=1e-5)


# ----------------------------------------------------------------------------------------------------------------
# B3: the discriminator heads keep the generator's GAN gradient into their "fake" update
@pytest.mark.parametrize("keep", [True, False])
def test_gan_keep_d_grads(official_trainer, monkeypatch, keep):
    trainer = official_trainer
    monkeypatch.setattr(trainer.config.quirks, "gan_keep_d_grads", keep)
    batch = trainer.data.batch(0)
    inputs = [trainer.inputs(batch)]
    fakes = [(inputs[0].x["normal"].clone(), inputs[0].x["low"].clone())]
    heads = trainer.params_d
    left = [torch.full_like(p, 0.125) for p in heads]  # what a generator GAN backward leaves on the heads
    for p, g in zip(heads, left):
        p.grad = g.clone()
    # the D-fake gradient alone, on copies of the discriminators (same spectral-norm state, same random draws)
    cfg, q = trainer.config, trainer.config.quirks

    def twin(disc):  # (a deepcopy of a module under the legacy spectral norm fails after a forward)
        new = VisionAidedDiscriminator(disc.backbone, cfg.disc_head_channels, blur_pad=q.blurpool_pad,
                                       spectral_norm=q.spectral_norm, translation_sign=q.diffaug_translation_sign)
        new.heads.load_state_dict(disc.heads.state_dict())
        return new.train()

    d_normal, d_low = twin(trainer.disc_normal), twin(trainer.disc_low)
    shadow_heads = d_normal.trainable_parameters() + d_low.trainable_parameters()
    for p in shadow_heads:
        p.grad = None
    shadow = StepLosses(trainer.config, trainer.generator, d_normal, d_low, None, None)
    step = 0
    terms = shadow.discriminator(inputs[0], fakes[0], False, trainer.generator_for(step, 0, 10))
    shadow.weighted(terms).backward()
    alone = [p.grad.clone() for p in shadow_heads]
    seen = []
    monkeypatch.setattr(trainer, "_apply", lambda which: seen.append([p.grad.clone() for p in heads]) or 0.0)
    trainer._discriminators(step, inputs, fakes, {})
    expected = [a + g if keep else a for a, g in zip(alone, left)]
    for got, want in zip(seen[0], expected):
        torch.testing.assert_close(got, want)


# ----------------------------------------------------------------------------------------------------------------
# B5: the caption target re-encodes the input with its own latent draw, before the pass's draw
@pytest.mark.parametrize("reencode", [True, False])
def test_caption_reencode(official_trainer, monkeypatch, reencode):
    trainer = official_trainer
    monkeypatch.setattr(trainer.config.quirks, "caption_reencode", reencode)
    gen = trainer.generator
    inp = trainer.inputs(trainer.data.batch(0))
    seen, steps = {}, []
    real_cap, real_step = gen.caption_x0, gen.step

    def caption_x0(z, *args, **kwargs):
        seen["caption"] = z
        return real_cap(z, *args, **kwargs)

    def step(*args, **kwargs):
        steps.append(real_step(*args, **kwargs))
        return steps[-1]

    monkeypatch.setattr(gen, "caption_x0", caption_x0)
    monkeypatch.setattr(gen, "step", step)
    with torch.no_grad():
        trainer.losses_of.cycle(inp, "low", torch.Generator().manual_seed(7))
        # independently: the encoder posterior of I_l and the first two draws of the same seed
        posterior, _ = gen.vae_l.encode(inp.x["low"])
        g = torch.Generator().manual_seed(7)
        first = posterior.sample(g) * gen.scaling_factor
    if reencode:
        torch.testing.assert_close(seen["caption"], first)  # the target drew first…
        assert not torch.equal(steps[0].z_enc, first)  # …and the forward pass drew anew
    else:
        torch.testing.assert_close(steps[0].z_enc, first)  # the pass drew first; the target reuses its latent
        assert seen["caption"] is steps[0].z_enc


# ----------------------------------------------------------------------------------------------------------------
# B8: the official preset never falls back to the classic teacher
def test_official_preset_needs_decomnet(tiny_config, decomnet, tmp_path, monkeypatch):
    monkeypatch.delenv("GEFU_RETINEXNET", raising=False)
    monkeypatch.setenv("GEFU_WEIGHTS", str(tmp_path / "empty-store"))
    with pytest.raises(FileNotFoundError, match="--retinex-weights PATH.*GEFU_RETINEXNET.*gefu weights download "
                                                "retinexnet-decom"):
        Trainer(tiny_config("official", max_steps=1), tmp_path / "a")
    assert not (tmp_path / "a").exists()
    monkeypatch.setenv("GEFU_RETINEXNET", str(decomnet))
    trainer = Trainer(tiny_config("official", max_steps=1), tmp_path / "b")
    assert trainer.teacher.kind == "decomnet"
    paper = Trainer(tiny_config("paper", max_steps=1), tmp_path / "c")  # paper: auto also finds it
    assert paper.teacher.kind == "decomnet"
    monkeypatch.delenv("GEFU_RETINEXNET")
    assert Trainer(tiny_config("paper", max_steps=1), tmp_path / "d").teacher.kind == "classic"
