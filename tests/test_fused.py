"""The autograd-free training pass (`fused.MSEPass`) against autograd through the plain modules."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

import samformer.training.steps
from samformer import SAMformer
from samformer.errors import ConfigError
from samformer.nn.fused import MSEPass, plain_mse_loss_and_gradients
from samformer.training.config import TrainConfig
from samformer.training.fit import build_optimizer, train_step
from samformer.training.steps import forward_backward

B, L, D, H = 4, 32, 5, 8
OPTIONS = [({}, False), ({}, True), ({"target_channels": (3, 0)}, False), ({"target_channels": (1,)}, True), ({"revin": False}, True)]


def models(options: dict, seed: int = 0) -> tuple[SAMformer, SAMformer]:
    """A fused float64 SAMformer with random weights, and a copy that runs its plain modules under autograd."""
    torch.manual_seed(seed)
    fused = SAMformer(D, L, H, d_model=6, **options).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in fused.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.3 + (1.0 if p.ndim == 1 and p.shape[0] == D else 0.0))
    plain = copy.deepcopy(fused)
    plain.fused = False
    assert fused.uses_fused(torch.zeros(B, D, L))
    return fused, plain


def batch(options: dict, masked: bool, seed: int = 1):
    """Strided inputs (like window views), targets with NaN where the target mask says missing."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(B, L + 3, D, generator=g, dtype=torch.float64) * 3 + 2).transpose(1, 2)[..., :L]
    n_out = len(options.get("target_channels", range(D)))
    y = torch.randn(B, n_out, H, generator=g, dtype=torch.float64)
    if not masked:
        return x, y, None
    mask = (torch.rand(B, D, L, generator=g) > 0.3, torch.rand(B, n_out, H, generator=g) > 0.3)
    return x, torch.where(mask[1], y, torch.nan), mask


@pytest.mark.parametrize("options, masked", OPTIONS)
def test_the_direct_pass_gives_autograds_loss_and_gradients(options, masked):
    fused, plain = models(options)
    x, y, mask = batch(options, masked)
    loss = MSEPass(fused, x, y, torch.float64, mask)()
    pred = plain.forward_channels_first(x, mask=None if mask is None else mask[0])
    observed = torch.ones_like(y, dtype=torch.bool) if mask is None else mask[1]
    expected = torch.where(observed, pred - y, 0.0).square().sum() / observed.sum()  # the mean over observed targets, in float64
    expected.backward()
    assert torch.isfinite(expected)
    torch.testing.assert_close(loss, expected.detach(), rtol=1e-12, atol=1e-12)
    for (name, p), q in zip(fused.named_parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-10, msg=name)


@pytest.mark.parametrize("options, masked", OPTIONS)
def test_the_direct_pass_in_the_modules_algebra_gives_autograds_loss_and_gradients(options, masked):
    """The pass "auto" trains with where the forward pass is not fused (H > B·D): values L → L, then the forecaster."""
    fused, plain = models(options)
    x, y, mask = batch(options, masked)
    loss = MSEPass(fused, x, y, torch.float64, mask, core=plain_mse_loss_and_gradients)()
    pred = plain.forward_channels_first(x, mask=None if mask is None else mask[0])
    observed = torch.ones_like(y, dtype=torch.bool) if mask is None else mask[1]
    expected = torch.where(observed, pred - y, 0.0).square().sum() / observed.sum()
    expected.backward()
    torch.testing.assert_close(loss, expected.detach(), rtol=1e-12, atol=1e-12)
    for (name, p), q in zip(fused.named_parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-10, msg=name)


@pytest.mark.parametrize("fused, expected", [("auto", "plain"), (True, "folded"), (False, "autograd")])
def test_a_batch_the_fused_forward_skips_trains_by_hand_unless_fused_is_false(fused, expected, monkeypatch):
    """H = 8 > B·D = 5 (one window): "auto" does not fold, and trains by the modules' algebra without autograd."""
    cores = []
    monkeypatch.setattr(samformer.training.steps, "MSEPass", lambda *args, core=None: cores.append(core) or MSEPass(*args))
    model, _ = models({})
    model.fused = fused
    x, y, _ = batch({}, False)
    loss = train_step(model, build_optimizer(model, TrainConfig()), x[:1], y[:1], "fp32")
    assert torch.isfinite(loss)
    taken = "autograd" if not cores else ("plain" if cores[0] is plain_mse_loss_and_gradients else "folded")
    assert taken == expected


def test_the_direct_pass_accumulates_and_skips_frozen_parameters():
    fused, _ = models({})
    x, y, _ = batch({}, False)
    fused.forecaster.bias.requires_grad_(False)
    step = MSEPass(fused, x, y, torch.float64)
    step()
    once = {name: p.grad.clone() for name, p in fused.named_parameters() if p.requires_grad}
    step()  # like `backward`, a second pass adds to `.grad`
    for name, p in fused.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(p.grad, 2 * once[name], msg=name)
    assert fused.forecaster.bias.grad is None


@pytest.mark.parametrize("sam", [True, False])
@pytest.mark.parametrize("options, masked", OPTIONS[:3])
def test_training_steps_through_the_direct_pass_follow_autograd(options, masked, sam, monkeypatch):
    passes = []
    monkeypatch.setattr(samformer.training.steps, "MSEPass", lambda *args: passes.append(MSEPass(*args)) or passes[-1])
    fused, plain = models(options)
    cfg = TrainConfig(sam=sam, rho=0.5, lr=1e-2)
    optimizers = build_optimizer(fused, cfg), build_optimizer(plain, cfg)
    for seed in range(3):
        x, y, mask = batch(options, masked, seed=seed + 1)
        losses = [train_step(m, o, x, y, "fp32", mask) for m, o in zip((fused, plain), optimizers, strict=True)]
        # autograd's MSE (`metrics.mse`) subtracts in float32: agreement to float32's precision
        torch.testing.assert_close(losses[0], losses[1], rtol=1e-6, atol=1e-6, check_dtype=False)
    assert len(passes) == 3, "one direct pass per step of the fused model (the plain one runs autograd)"
    moved = max((p - q).abs().max().item() for p, q in zip(fused.parameters(), models(options)[0].parameters(), strict=True))
    assert moved > 1e-3, "the steps changed the weights"
    for (name, p), q in zip(fused.named_parameters(), plain.parameters(), strict=True):
        if name != "attention.key.bias":  # its gradient is 0 (softmax ignores a per-row shift): Adam steps on rounding noise
            torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-6, msg=name)


def test_bf16_direct_pass_matches_bf16_autocast_training_to_its_precision():
    torch.manual_seed(0)
    model = SAMformer(D, 64, H)
    x, y = torch.randn(16, D, 64) * 3 + 2, torch.randn(16, D, H)
    direct, autograd = copy.deepcopy(model), copy.deepcopy(model)
    cfg = TrainConfig(rho=0.5)
    train_step(direct, build_optimizer(direct, cfg), x, y, "bf16")
    train_step(autograd, build_optimizer(autograd, cfg), x, y, "bf16", forward_backward_fn=forward_backward)
    for (name, p), q, w in zip(direct.named_parameters(), autograd.parameters(), model.parameters(), strict=True):
        assert p.dtype == torch.float32
        # one Adam step moves each weight by about lr = 1e-3: both runs must have taken the same step
        torch.testing.assert_close(p - w, q - w, rtol=0.05, atol=2e-5, msg=name)


def test_the_path_follows_the_batch_and_the_forecast_does_not():
    torch.manual_seed(0)
    model = SAMformer(D, L, H)  # H = 8: folding pays from B·D = 8 rows, i.e. from B = 2 windows of D = 5
    x = torch.randn(6, D, L) * 2 + 1
    assert not model.uses_fused(x[:1]) and model.uses_fused(x[:2]) and model.uses_fused(x)
    with torch.no_grad():
        one_by_one = torch.cat([model.forward_channels_first(x[i : i + 1]) for i in range(len(x))])  # the modules
        together = model.forward_channels_first(x)  # the fused pass
    torch.testing.assert_close(together, one_by_one, rtol=1e-5, atol=1e-5)


def test_second_derivatives_need_the_plain_modules_and_get_them():
    fused, _ = models({})
    x, y, _ = batch({}, False)
    weight = fused.forecaster.weight
    grad = torch.autograd.grad(((fused.forward_channels_first(x) - y) ** 2).mean(), weight, create_graph=True)[0]
    with pytest.raises(RuntimeError):  # never a silently wrong Hessian: the first gradient has no graph back to the weights
        torch.autograd.grad(grad.sum(), weight)
    with fused.plain_modules():
        assert not fused.uses_fused(x)
        grad = torch.autograd.grad(((fused.forward_channels_first(x) - y) ** 2).mean(), weight, create_graph=True)[0]
    assert torch.autograd.grad(grad.sum(), weight)[0].abs().sum() > 0
    assert fused.uses_fused(x), "the block restores the fused pass"


def test_onnx_export_of_the_fused_pass_serves_any_batch_size(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    torch.manual_seed(0)
    model = SAMformer(16, 24, 6).eval()  # traced at batch 2: B·D = 32 ≥ H, so the export records the fused pass
    assert model.uses_fused(torch.zeros(2, 16, 24))
    path = tmp_path / "m.onnx"
    axes = {"x": {0: "batch"}, "y": {0: "batch"}}
    torch.onnx.export(model, (torch.randn(2, 24, 16),), str(path), input_names=["x"], output_names=["y"], dynamic_axes=axes, dynamo=False)
    x = torch.randn(5, 24, 16)
    model.fused = False  # the reference: the plain modules
    with torch.no_grad():
        expected = model(x).numpy()
    (got,) = ort.InferenceSession(str(path)).run(None, {"x": x.numpy()})
    assert got.shape == expected.shape == (5, 6, 16)
    assert abs(got - expected).max() < 1e-4


def test_the_fused_switch_is_a_runtime_choice_not_part_of_the_saved_config():
    x_small, x_large = torch.zeros(1, D, L), torch.zeros(2, D, L)  # H = 8: B·D = 5 < H, then 10 ≥ H
    rules = {"auto": (False, True), True: (True, True), False: (False, False)}
    for fused, expected in rules.items():
        model = SAMformer(D, L, H, fused=fused)
        assert (model.uses_fused(x_small), model.uses_fused(x_large)) == expected, fused
        assert "fused" not in dataclasses.asdict(model.config)
    assert not SAMformer(D, L, H, fused=True, value_dim=4).uses_fused(x_large), "layers that cannot fuse never do"
    with pytest.raises(ConfigError, match="fused must be 'auto', True or False"):
        SAMformer(D, L, H, fused="yes")
