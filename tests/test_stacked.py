"""k SAMformers trained as one stacked network against the same models trained one at a time by `train.fit`."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from samformer import SAMformer
from samformer.data.loading import load_dataset
from samformer.data.series import ChannelRoles, SplitData, split_frame
from samformer.errors import SamformerError, ShapeError
from samformer.metrics import QuantileLoss
from samformer.nn.fused import MSEPass
from samformer.nn.quantile import QuantileSAMformer
from samformer.nn.stacked import StackedSAMformer
from samformer.training.config import TrainConfig, seed_everything
from samformer.training.evaluation import evaluate
from samformer.training.fit import fit, score_test
from samformer.training.stacked.evaluation import evaluate_stacked, score_stacked
from samformer.training.stacked.fit import fit_stacked, seeded_models

from .conftest import make_frame

L, H = 48, 12
VARIANTS = {
    "default": {},
    "value_dim": {"value_dim": 4},
    "linear": {"attention": False},
    "no_revin": {"revin": False},
    "targets": {"target_channels": (2, 0)},
}


def small_data(options: dict, masked: bool = False, rows: int = 500) -> SplitData:
    """A float64 synthetic series (covariate roles when the model forecasts target channels; optional missing values)."""
    data = split_frame(make_frame(rows), L, H)
    data = dataclasses.replace(data, **{s: getattr(data, s).double() for s in ("train", "val", "test")})
    if "target_channels" in options:
        data = dataclasses.replace(data, roles=ChannelRoles(targets=options["target_channels"], future=(1,)))
    if masked:
        g = torch.Generator().manual_seed(5)
        data = dataclasses.replace(data, masks={s: torch.rand(getattr(data, s).shape, generator=g) > 0.1 for s in ("train", "val", "test")})
    return data


def build(seed: int, options: dict, fuse: bool | None, dtype: torch.dtype = torch.float64, n_channels: int = 3) -> SAMformer:
    """A model created as a separate run creates it: seed everything, then the constructor."""
    seed_everything(seed)
    model = SAMformer(n_channels, L, H, d_model=6, **options).to(dtype)
    model.fused = "auto" if fuse is None else fuse  # False: the plain modules under autograd, True: the fused pass
    return model


def max_weight_diff(a: SAMformer, b: SAMformer) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def separate_and_stacked(data: SplitData, cfgs: list[TrainConfig], options: dict, fuse: bool | None, dtype=torch.float64):
    """Each config trained alone by `train.fit`, and all of them together by `fit_stacked`."""
    singles = [build(c.seed, options, fuse, dtype) for c in cfgs]
    single_results = [score_test(m, data, c, fit(m, data, c)) for m, c in zip(singles, cfgs, strict=True)]
    stacked = [build(c.seed, options, fuse, dtype) for c in cfgs]
    return singles, single_results, stacked, score_stacked(stacked, data, cfgs[0], fit_stacked(stacked, data, cfgs))[0]


# --- the stacked network computes each model's function


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("fuse", [False, True, None])  # None: "auto", which on 4 x 3 rows computes the values (`stacked_plain`)
def test_stacked_forward_is_each_models_forward(name: str, fuse: bool | None) -> None:
    options = VARIANTS[name]
    models = [build(seed, options, fuse) for seed in range(3)]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 3, L, generator=g, dtype=torch.float64) * 2 + 1  # (k, B, D, L): each model its own batch
    mask = torch.rand(x.shape, generator=g) > 0.2
    stack = StackedSAMformer(models)
    for m in (None, mask):
        expected = torch.stack([model.forward_channels_first(x[j], mask=None if m is None else m[j]) for j, model in enumerate(models)])
        torch.testing.assert_close(stack.forward(x, m), expected, rtol=0, atol=1e-12)
        if stack.takes_hand_pass():
            torch.testing.assert_close(stack.fused_forecast(*stack.standardize(x, m), torch.float64), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["default", "targets", "no_revin"])
def test_stacked_fused_gradients_are_each_models(name: str) -> None:
    options = VARIANTS[name]
    models = [build(seed, options, True) for seed in range(3)]
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, 3, L, generator=g, dtype=torch.float64)
    y = torch.randn(3, 4, len(options.get("target_channels", range(3))), H, generator=g, dtype=torch.float64)
    y_mask = torch.rand(y.shape, generator=g) > 0.3
    stack = StackedSAMformer(models)
    for mask in (None, y_mask):
        loss, grads = stack.mse_pass(*stack.standardize(x), y, mask, torch.float64)()
        for j, model in enumerate(models):
            model.zero_grad(set_to_none=True)
            masks = None if mask is None else (torch.ones_like(x[j], dtype=torch.bool), mask[j])
            expected_loss = MSEPass(model, x[j], y[j], torch.float64, masks)()
            torch.testing.assert_close(loss[j], expected_loss, rtol=0, atol=1e-12)
            for grad, param in zip(grads, model.parameters(), strict=True):
                torch.testing.assert_close(grad[j], param.grad, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["default", "targets", "no_revin"])
def test_stacked_plain_gradients_are_each_models_autograd_gradients(name: str) -> None:
    """The hand-written pass in the modules' algebra (taken by "auto" where folding costs more), against autograd
    through each model's own modules, at weights moved off their initial values (RevIN's a ≠ 1, b ≠ 0)."""
    options = VARIANTS[name]
    models = [build(seed, options, False) for seed in range(3)]
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in (p for m in models for p in m.parameters()):
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.3)
    x = torch.randn(3, 4, 3, L, generator=g, dtype=torch.float64) * 2 + 1
    y = torch.randn(3, 4, len(options.get("target_channels", range(3))), H, generator=g, dtype=torch.float64)
    y_mask = torch.rand(y.shape, generator=g) > 0.3
    stack = StackedSAMformer(models)
    stack.fused = "auto"
    assert not stack.folds_values(4 * 3)
    for mask in (None, y_mask):
        loss, grads = stack.mse_pass(*stack.standardize(x), y, mask, torch.float64)()
        for j, model in enumerate(models):
            diff = model.forward_channels_first(x[j]) - y[j]
            observed = torch.ones_like(diff, dtype=torch.bool) if mask is None else mask[j]
            expected_loss = torch.where(observed, diff, 0.0).square().sum() / observed.sum()
            expected = torch.autograd.grad(expected_loss, list(model.parameters()))
            torch.testing.assert_close(loss[j], expected_loss.detach(), rtol=1e-12, atol=1e-12)
            for grad, exact in zip(grads, expected, strict=True):
                torch.testing.assert_close(grad[j], exact, rtol=1e-10, atol=1e-12)


def test_the_stack_folds_the_values_where_that_costs_fewer_multiply_adds() -> None:
    """Hand-counted multiply-adds per training pass, weather's sizes (L 512, d 16, 32 windows x 21 channels = 672 rows).
    H = 96: folded 2·672·512·224 + 3·96·512² = 229.6M, plain 672·512·(2·544 + 288) = 473.4M: fold.
    H = 720: folded 2·672·512·1472 + 3·720·512² = 1 579.2M, plain 672·512·(2·544 + 2160) = 1 117.5M: compute the values."""
    stacks = {h: StackedSAMformer([SAMformer(21, 512, h)]) for h in (96, 720)}
    assert stacks[96].folds_values(672) and not stacks[720].folds_values(672)
    # forward only (evaluation): H = 720 on 1024 windows, folded 21504·512·1472 + 720·512² = 16.4G, plain 21504·512·1264 = 13.9G
    assert not stacks[720].folds_values(21504, gradients=False)
    stacks[720].fused = True
    assert stacks[720].folds_values(672), "fused=True always folds"


def test_model_j_comes_back_as_an_ordinary_samformer() -> None:
    models = [build(seed, {"value_dim": 4}, None) for seed in range(3)]
    stack = StackedSAMformer(models)
    for j, model in enumerate(models):
        back = stack.model(j)
        assert isinstance(back, SAMformer) and back.config == model.config
        assert max_weight_diff(back, model) == 0.0


def test_seeded_models_are_the_models_separate_runs_create() -> None:
    models = seeded_models(lambda: SAMformer(3, L, H, d_model=6), [4, 7])
    for seed, model in zip([4, 7], models, strict=True):
        seed_everything(seed)
        assert max_weight_diff(model, SAMformer(3, L, H, d_model=6)) == 0.0
    assert max_weight_diff(models[0], models[1]) > 0  # different seeds, different initial weights


def test_a_stack_keeps_the_chosen_models_in_order() -> None:
    models = [build(seed, {}, None) for seed in range(4)]
    stack = StackedSAMformer(models)
    stack.keep(torch.tensor([3, 1]))
    assert len(stack) == 2
    assert max_weight_diff(stack.model(0), models[3]) == 0.0 and max_weight_diff(stack.model(1), models[1]) == 0.0


# --- stacked training is separate training


SETTINGS = [
    {"seed": 0, "lr": 1e-3, "rho": 0.7},
    {"seed": 1, "lr": 3e-3, "rho": 0.2},
    {"seed": 2, "lr": 2e-3, "rho": 0.5, "adaptive": True, "weight_decay": 1e-3},
]


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("fuse", [False, True])
def test_stacked_training_is_separate_training_in_float64(name: str, fuse: bool) -> None:
    options = VARIANTS[name]
    cfgs = [TrainConfig(epochs=2, batch_size=16, progress=False, **s) for s in SETTINGS]
    singles, single_results, stacked, results = separate_and_stacked(small_data(options), cfgs, options, fuse)
    for single, result, model, stacked_result in zip(singles, single_results, stacked, results, strict=True):
        assert max_weight_diff(single, model) < 1e-10
        assert (stacked_result.best_epoch, stacked_result.epochs_run) == (result.best_epoch, result.epochs_run)
        assert stacked_result.test_mse == pytest.approx(result.test_mse, abs=1e-10)
        assert stacked_result.val_mse == pytest.approx(result.val_mse, abs=1e-10)


def test_stacked_training_with_missing_values_is_separate_training() -> None:
    options = VARIANTS["targets"]
    cfgs = [TrainConfig(epochs=2, batch_size=16, progress=False, **s) for s in SETTINGS]
    # fused=True: single and stacked runs take the same algebra, so only summation order differs (a ragged last batch
    # would take `stacked_plain` under "auto", and Adam magnifies rounding differences where a gradient is ~0)
    singles, single_results, stacked, results = separate_and_stacked(small_data(options, masked=True), cfgs, options, True)
    for single, result, model, stacked_result in zip(singles, single_results, stacked, results, strict=True):
        assert max_weight_diff(single, model) < 1e-10
        assert stacked_result.test_mse == pytest.approx(result.test_mse, abs=1e-10)


def test_models_stop_early_as_they_would_alone_and_leave_the_stack() -> None:
    """Models with their own patience, epoch budget, lr and SAM setting stop at different epochs; the others go on."""
    settings = [
        {"seed": 0, "lr": 5e-3, "rho": 0.7, "patience": 1},
        {"seed": 1, "lr": 1e-3, "rho": 0.2, "patience": 2, "sam": False},
        {"seed": 2, "lr": 3e-3, "rho": 0.5, "patience": 3, "epochs": 5, "lr_schedule": "constant"},
    ]
    cfgs = [TrainConfig(**{"epochs": 12, "batch_size": 32, "progress": False, **s}) for s in settings]
    singles, single_results, stacked, results = separate_and_stacked(small_data({}), cfgs, {}, True)  # one algebra, as above
    assert len({r.epochs_run for r in single_results}) > 1  # they leave the stack at different epochs
    assert any(r.epochs_run < c.epochs for r, c in zip(single_results, cfgs, strict=True))  # early stopping happened
    for single, result, model, stacked_result in zip(singles, single_results, stacked, results, strict=True):
        assert (stacked_result.best_epoch, stacked_result.epochs_run) == (result.best_epoch, result.epochs_run)
        assert [h["val_mse"] for h in stacked_result.history] == pytest.approx([h["val_mse"] for h in result.history], abs=1e-10)
        assert max_weight_diff(single, model) < 1e-10  # both restored the best epoch's weights


def test_bf16_stacked_forecast_is_each_models_bf16_forecast() -> None:
    models = [build(seed, {}, None, torch.float32) for seed in range(3)]
    x = torch.randn(3, 64, 3, L, generator=torch.Generator().manual_seed(2))  # B·D ≥ H: the fused pass
    stack = StackedSAMformer(models)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = torch.stack([model.forward_channels_first(x[j]) for j, model in enumerate(models)])
        plain = stack.forward(x)
    fused = stack.fused_forecast(*stack.standardize(x), torch.bfloat16)
    assert stack.takes_hand_pass() and fused.dtype == torch.float32  # products in bf16, the forecast in the weights' precision
    for forecast in (plain, fused):
        torch.testing.assert_close(forecast.float(), expected.float(), rtol=0.05, atol=0.05)  # bf16: 8 bits of mantissa


@pytest.mark.parametrize("name", ["default", "value_dim"])  # the fused pass, and autograd under autocast
def test_bf16_stacked_training_follows_separate_bf16_training(name: str) -> None:
    """bf16 products round alike but accumulate in another order in batched products: the same path, not the same bits."""
    options = VARIANTS[name]
    cfgs = [TrainConfig(epochs=1, batch_size=16, progress=False, precision="bf16", **s) for s in SETTINGS]
    data = split_frame(make_frame(500), L, H)
    initial = [build(c.seed, options, None, torch.float32) for c in cfgs]
    singles, single_results, stacked, results = separate_and_stacked(data, cfgs, options, None, dtype=torch.float32)
    for start, single, result, model, stacked_result in zip(initial, singles, single_results, stacked, results, strict=True):
        moved_alone = torch.cat([(p - p0).flatten() for p, p0 in zip(single.parameters(), start.parameters(), strict=True)])
        moved_stacked = torch.cat([(p - p0).flatten() for p, p0 in zip(model.parameters(), start.parameters(), strict=True)])
        assert torch.nn.functional.cosine_similarity(moved_alone, moved_stacked, dim=0) > 0.99
        assert stacked_result.test_mse == pytest.approx(result.test_mse, rel=1e-2)


@pytest.mark.slow
def test_stacked_training_is_separate_training_on_etth1(data_dir) -> None:
    """fp32, 2 epochs: every weight within 1e-4 but the key bias, whose exact gradient is zero.

    A key bias adds the same q·b to every score of a row, which softmax ignores: its gradient is rounding
    noise (~1e-10), which Adam scales to steps of up to ~1 % of lr whose sign the noise decides. So it
    drifts apart in any two computations that round differently, and the forecasts still agree.
    """
    data = load_dataset("ETTh1", 512, 96, data_dir=data_dir)
    settings = [{"seed": 0, "lr": 1e-3, "rho": 0.7}, {"seed": 1, "lr": 5e-4, "rho": 0.3}]
    cfgs = [TrainConfig(epochs=2, progress=False, **s) for s in settings]
    singles, results_single, stacked = [], [], []
    for cfg in cfgs:
        seed_everything(cfg.seed)
        singles.append(SAMformer(data.n_channels, 512, 96))
        stacked.append(copy.deepcopy(singles[-1]))
        results_single.append(score_test(singles[-1], data, cfg, fit(singles[-1], data, cfg)))
    results, _ = score_stacked(stacked, data, cfgs[0], fit_stacked(stacked, data, cfgs))
    x, _ = data.windows("test").batch(slice(0, 256))
    for single, result, model, stacked_result in zip(singles, results_single, stacked, results, strict=True):
        weights = zip(single.state_dict().items(), model.state_dict().values(), strict=True)
        assert max((p - q).abs().max().item() for (name, p), q in weights if name != "attention.key.bias") < 1e-4
        with torch.no_grad():
            assert (single.forward_channels_first(x) - model.forward_channels_first(x)).abs().max().item() < 1e-4
        assert stacked_result.test_mse == pytest.approx(result.test_mse, abs=1e-4)
        assert (stacked_result.best_epoch, stacked_result.epochs_run) == (result.best_epoch, result.epochs_run)


# --- bad input


def test_bad_stacks_are_refused_with_one_clear_error() -> None:
    data = small_data({})
    cfg = TrainConfig(epochs=1, progress=False)
    with pytest.raises(SamformerError, match="at least one model"):
        fit_stacked([], data, [])
    with pytest.raises(SamformerError, match="one TrainConfig per model"):
        fit_stacked([build(0, {}, None)], data, [cfg, cfg])
    with pytest.raises(SamformerError, match="share batch_size"):
        fit_stacked([build(0, {}, None), build(1, {}, None)], data, [cfg, dataclasses.replace(cfg, batch_size=8)])
    with pytest.raises(SamformerError, match="share one configuration"):
        StackedSAMformer([build(0, {}, None), build(1, {"value_dim": 4}, None)])
    with pytest.raises(SamformerError, match="σReparam"):
        StackedSAMformer([build(0, {"sigma_reparam": True}, None)])
    with pytest.raises(ShapeError, match="do not fit the data"):
        fit_stacked([build(0, {}, None, n_channels=4)], data, [cfg])


@pytest.mark.parametrize("masked", [False, True])
def test_stacked_quantile_networks_train_as_separate_quantile_models(masked: bool) -> None:
    """With the pinball loss (quantile heads), each stacked network is `fit(QuantileSAMformer(...), criterion=...)`'s:
    the same weights, pinball and MSE histories, early-stopping decisions and validation scores."""
    levels = (0.1, 0.5, 0.9)
    criterion = QuantileLoss(levels)
    data = small_data({}, masked=masked)
    cfgs = [TrainConfig(epochs=3, batch_size=16, progress=False, **s) for s in SETTINGS]

    def network(seed: int) -> SAMformer:
        seed_everything(seed)
        return SAMformer(3, L, H * len(levels), d_model=6).double()

    singles = [network(c.seed) for c in cfgs]
    single_results = [fit(QuantileSAMformer(m, levels), data, c, criterion=criterion) for m, c in zip(singles, cfgs, strict=True)]
    stacked = [network(c.seed) for c in cfgs]
    results = fit_stacked(stacked, data, cfgs, criterion=criterion)
    val = data.windows("val")
    scores = evaluate_stacked(StackedSAMformer(stacked), val, criterion=criterion)
    for j, (single, result, model, stacked_result) in enumerate(zip(singles, single_results, stacked, results, strict=True)):
        # The pinball loss is computed in float32 (metrics.pinball), so float64 networks agree to float32 rounding.
        assert max_weight_diff(single, model) < 1e-6
        assert (stacked_result.best_epoch, stacked_result.epochs_run) == (result.best_epoch, result.epochs_run)
        for key in ("val_loss", "val_mse", "train_loss"):
            assert [h[key] for h in stacked_result.history] == pytest.approx([h[key] for h in result.history], rel=1e-6), key
        alone = evaluate(QuantileSAMformer(single, levels), val, criterion=criterion)
        assert (scores["loss"][j], scores["mse"][j]) == pytest.approx((alone["loss"], alone["mse"]), rel=1e-6)


def test_quantile_networks_must_forecast_every_level() -> None:
    models = [build(seed, {}, None) for seed in range(2)]  # horizon H: point networks, not H x 3 quantile outputs
    cfgs = [TrainConfig(epochs=1, progress=False, seed=s) for s in range(2)]
    with pytest.raises(ShapeError, match="horizon=12 vs 36"):
        fit_stacked(models, small_data({}), cfgs, criterion=QuantileLoss((0.1, 0.5, 0.9)))


def test_the_fused_stacked_pass_records_no_graph() -> None:
    """The fused pass computes its gradients by hand: a recorded graph would keep every step's activations alive
    for as long as the loss is (the epoch's loss sum held them all: 28 GB on weather at H = 336)."""
    models = [build(seed, {}, True, torch.float32) for seed in range(2)]
    stack = StackedSAMformer(models)
    x, y = torch.randn(2, 16, 3, L), torch.randn(2, 16, 3, H)
    z, stats = stack.standardize(x, None)
    loss, grads = stack.mse_pass(z, stats, y, None, torch.float32)()
    assert loss.grad_fn is None and not loss.requires_grad
    assert all(g.grad_fn is None for g in grads)
