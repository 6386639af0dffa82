"""The training loop: schedule, evaluation, early stopping, and a real (short) run on ETTh1."""

from __future__ import annotations

import dataclasses
import math
import shutil
import warnings

import numpy as np
import pytest
import torch

from samformer import SAMformer, TrainConfig, evaluate, fit, load_dataset
from samformer.data.series import Windows, split_frame
from samformer.errors import CheckpointError, ConfigError, SamformerError
from samformer.training.config import seed_everything
from samformer.training.fit import score_test
from samformer.training.loop import cosine_restart_lr

from .conftest import make_frame


def test_cosine_restarts_follow_the_papers_schedule():
    lrs = [cosine_restart_lr(e, 1e-3, 1e-6, 5) / 1e-3 for e in range(6)]
    # lr, ≈0.905, 0.655, 0.345, 0.095 × lr, then back to lr (REFERENCE.md)
    assert lrs == pytest.approx([1.0, 0.905, 0.655, 0.345, 0.0955, 1.0], abs=2e-3)


def test_evaluate_equals_mse_over_every_window():
    data = split_frame(make_frame(400), 48, 12)
    model = SAMformer(3, 48, 12)
    windows = data.windows("test")
    x, y = windows.batch(slice(None))
    with torch.no_grad():
        expected = torch.mean((model.forward_channels_first(x) - y) ** 2).item()
    assert evaluate(model, windows, batch_size=7)["mse"] == pytest.approx(expected, rel=1e-5)


def test_early_stopping_restores_the_best_epoch():
    data = split_frame(make_frame(800), 48, 12)
    seed_everything(0)
    model = SAMformer(3, 48, 12)
    # a learning rate this large makes validation worse after a few epochs
    result = fit(model, data, TrainConfig(lr=0.05, epochs=30, patience=2, batch_size=16, progress=False, lr_schedule="constant"))
    vals = [h["val_mse"] for h in result.history]
    assert result.best_epoch == 1 + vals.index(min(vals))
    assert result.epochs_run == min(30, result.best_epoch + 2)
    assert evaluate(model, data.windows("val"))["mse"] == pytest.approx(min(vals), rel=1e-5)


def test_same_seed_same_result_different_seed_different():
    data = split_frame(make_frame(500), 48, 12)

    def run(seed):
        seed_everything(seed)
        model = SAMformer(3, 48, 12)
        fit(model, data, TrainConfig(epochs=2, batch_size=32, progress=False, seed=seed))
        return torch.cat([p.flatten() for p in model.parameters()])

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))


def test_a_nan_loss_stops_with_a_clear_message():
    data = split_frame(make_frame(500), 48, 12)
    model = SAMformer(3, 48, 12)
    with torch.no_grad():
        model.forecaster.bias.fill_(math.nan)
    with pytest.raises(FloatingPointError, match="lower --lr"):
        fit(model, data, TrainConfig(epochs=2, progress=False))


@pytest.mark.slow
def test_short_run_on_etth1_lowers_the_validation_loss(data_dir):
    data = load_dataset("ETTh1", 96, 24, data_dir=data_dir)
    seed_everything(0)
    model = SAMformer(data.n_channels, 96, 24)
    before = evaluate(model, data.windows("val"))["mse"]
    cfg = TrainConfig(epochs=2, batch_size=128, progress=False)
    result = score_test(model, data, cfg, fit(model, data, cfg))
    assert result.val_mse < 0.8 * before
    assert math.isfinite(result.test_mse)


def test_evaluation_of_a_wide_panel_covers_every_window_whatever_the_batch():
    # 300 channels: the default batch is capped to 2^16 // 300 = 218 windows; no window may be lost.
    torch.manual_seed(0)
    series = torch.randn(700, 300)
    windows = Windows(series, 64, 8)
    model = SAMformer(300, 64, 8).eval()
    with torch.no_grad():
        pred = model.forward_channels_first(windows.batch(slice(None))[0])  # all 629 windows at once
    expected = (pred - windows.batch(slice(None))[1]).square().mean().item()
    for batch in (1024, 5):
        assert abs(evaluate(model, windows, batch_size=batch)["mse"] - expected) < 1e-5


def _trained_weights(compile_: bool, precision: str = "fp32") -> tuple[dict[str, torch.Tensor], list[float]]:
    data = split_frame(make_frame(400), 48, 12)
    seed_everything(0)
    model = SAMformer(3, 48, 12)
    cfg = TrainConfig(epochs=2, patience=5, batch_size=32, progress=False, compile=compile_, precision=precision)
    result = fit(model, data, cfg)  # 196 training windows: six full batches and a ragged one per epoch
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, [h["train_loss"] for h in result.history]


@pytest.mark.skipif(not (shutil.which("g++") or shutil.which("clang++")), reason="Inductor needs a C++ compiler on CPU")
def test_compiled_training_follows_the_eager_one():
    eager, eager_losses = _trained_weights(compile_=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled, compiled_losses = _trained_weights(compile_=True)
    fallbacks = [str(w.message) for w in caught if "torch.compile is unavailable" in str(w.message)]
    assert not fallbacks, fallbacks  # it must really have compiled here
    # Inductor reorders floating-point arithmetic: equal up to rounding, over 14 SAM steps
    assert compiled_losses == pytest.approx(eager_losses, rel=1e-4)
    # Compared through the forecasts, not weight by weight: softmax ignores the key bias (it adds the same
    # q·bk to a whole row of scores), so its gradient is rounding noise that Adam scales up to lr-sized steps.
    x, _ = split_frame(make_frame(400), 48, 12).windows("test").batch(slice(None))
    forecasts = []
    for weights in (eager, compiled):
        model = SAMformer(3, 48, 12)
        model.load_state_dict(weights)
        with torch.no_grad():
            forecasts.append(model.forward_channels_first(x))
    torch.testing.assert_close(forecasts[1], forecasts[0], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("when", ["at torch.compile", "at the first call"])
def test_compile_falls_back_to_eager_with_a_warning(monkeypatch, when):
    def refuse(*args, **kwargs):
        raise RuntimeError("no compiler here")

    # torch.compile itself may refuse, or hand back a function that fails when it first compiles
    monkeypatch.setattr(torch, "compile", refuse if when == "at torch.compile" else lambda fn, **kwargs: refuse)
    eager, _ = _trained_weights(compile_=False)
    with pytest.warns(UserWarning, match="torch.compile is unavailable.*no compiler here"):
        fallback, _ = _trained_weights(compile_=True)
    for name, value in eager.items():
        torch.testing.assert_close(fallback[name], value, rtol=0, atol=0, msg=name)


def test_fit_needs_no_test_split_and_never_reads_it():
    data = split_frame(make_frame(300), 24, 6)
    weights = []
    for test in (data.test, None):  # a SplitData without a test split trains exactly as with one
        seed_everything(0)
        model = SAMformer(3, 24, 6)
        result = fit(model, dataclasses.replace(data, test=test), TrainConfig(epochs=2, batch_size=16, progress=False))
        assert result.test_mse is None and result.test_mae is None  # scoring the test split is the runner's job
        weights.append(model.state_dict())
    for name, value in weights[0].items():
        torch.testing.assert_close(weights[1][name], value, rtol=0, atol=0, msg=name)


# option -> (bad value, what the message must say is accepted)
BAD_TRAIN_OPTIONS = {
    "batch_size": (32.5, "an integer >= 1"),
    "epochs": ("2", "an integer >= 1"),
    "patience": (0, "an integer >= 1"),
    "lr": (-1e-3, "a finite number > 0"),
    "rho": (math.nan, "a finite number >= 0"),
    "weight_decay": (-0.1, "a finite number >= 0"),
    "min_lr": (math.inf, "a finite number >= 0"),
    "seed": (1.5, "an integer"),
    "sam": (1, "True or False"),
    "precision": ("fp16", "'fp32' or 'bf16'"),
    "lr_schedule": ("linear", "'cosine-restarts' or 'constant'"),
    "device": (None, "auto, cpu, cuda or cuda:N"),
    "shuffle": ("no", "True or False"),
}


@pytest.mark.parametrize("option", list(BAD_TRAIN_OPTIONS))
def test_a_bad_train_option_is_refused_naming_it_and_what_is_accepted(option):
    value, accepted = BAD_TRAIN_OPTIONS[option]
    with pytest.raises(ConfigError) as info:
        TrainConfig(**{option: value})
    message = str(info.value)
    assert f"{option}={value!r}" in message and accepted in message and "\n" not in message
    assert isinstance(info.value, SamformerError)


def test_every_bad_train_option_is_named_at_once_and_good_values_of_any_numeric_type_pass():
    with pytest.raises(ConfigError, match=r"lr=0 .*; epochs=0 "):
        TrainConfig(lr=0, epochs=0)
    TrainConfig(lr=1, rho=0, batch_size=np.int64(8), device=torch.device("cpu"))  # an int lr, a NumPy batch size


def _training_batches(monkeypatch, data, cfg: TrainConfig) -> list[list[int]]:
    """The window indices of every training batch `fit` asks for, in order (evaluation reads slices)."""
    n_train, batches = len(data.windows("train")), []
    original = Windows.batch

    def recording(self, index):
        if isinstance(index, torch.Tensor) and len(self) == n_train:
            batches.append(index.tolist())
        return original(self, index)

    monkeypatch.setattr(Windows, "batch", recording)
    seed_everything(cfg.seed)
    fit(SAMformer(data.n_channels, data.seq_len, data.horizon), data, cfg)
    return batches


def test_unshuffled_training_serves_batch_i_as_windows_32i_to_32i_plus_32_every_epoch(monkeypatch):
    data = split_frame(make_frame(500), 24, 6)
    n_train = len(data.windows("train"))
    batches = _training_batches(monkeypatch, data, TrainConfig(epochs=2, batch_size=32, progress=False, shuffle=False))
    per_epoch = math.ceil(n_train / 32)
    assert n_train % 32 != 0, "a short last batch must be covered too"
    expected = [list(range(32 * i, min(32 * i + 32, n_train))) for i in range(per_epoch)]
    assert batches == expected * 2


def test_shuffled_training_serves_each_window_once_per_epoch_in_a_new_order(monkeypatch):
    data = split_frame(make_frame(500), 24, 6)
    n_train = len(data.windows("train"))
    batches = _training_batches(monkeypatch, data, TrainConfig(epochs=2, batch_size=32, progress=False))
    per_epoch = math.ceil(n_train / 32)
    epochs = [[i for batch in batches[:per_epoch] for i in batch], [i for batch in batches[per_epoch:] for i in batch]]
    for order in epochs:
        assert sorted(order) == list(range(n_train))
    assert epochs[0] != list(range(n_train)) and epochs[0] != epochs[1]


def test_the_training_order_is_part_of_a_checkpoints_fingerprint(tmp_path):
    data = split_frame(make_frame(400), 24, 6)
    path = tmp_path / "ckpt.safetensors"
    seed_everything(0)
    fit(SAMformer(3, 24, 6), data, TrainConfig(epochs=1, progress=False, shuffle=False), checkpoint=path)
    with pytest.raises(CheckpointError, match=r"other settings \(shuffle: False -> True\)"):
        fit(SAMformer(3, 24, 6), data, TrainConfig(epochs=1, progress=False), checkpoint=path, resume=True)
