"""The Forecaster's training budget on small data, and the warning when the cap ended training."""

import warnings

import pytest

from samformer.forecasting.budget import MIN_STEPS_PER_EPOCH, ended_at_cap, passes_per_epoch, stretched_config, warn_if_capped
from samformer.training.config import TrainConfig, TrainResult


def test_an_epoch_of_enough_windows_is_one_pass():
    assert passes_per_epoch(32 * MIN_STEPS_PER_EPOCH, 32) == 1
    assert passes_per_epoch(8033, 32) == 1  # ETTh1's training windows at L 512, H 96


def test_a_short_series_repeats_its_passes_until_an_epoch_holds_enough_steps():
    assert passes_per_epoch(60, 32) == MIN_STEPS_PER_EPOCH // 2  # 2 steps per pass
    assert passes_per_epoch(1, 32) == MIN_STEPS_PER_EPOCH  # 1 step per pass
    assert passes_per_epoch(32 * 7, 32) == -(-MIN_STEPS_PER_EPOCH // 7)  # ⌈50 / 7⌉ with 7 steps per pass


def test_the_protocols_shape_is_stretched_except_what_the_user_set():
    config = TrainConfig(epochs=100, patience=5, restart_period=5, batch_size=32)
    factor = passes_per_epoch(60, 32)
    stretched = stretched_config(config, 60, frozenset())
    assert (stretched.epochs, stretched.patience, stretched.restart_period) == (100 * factor, 5 * factor, 5 * factor)
    kept = stretched_config(config, 60, frozenset({"epochs"}))
    assert kept.epochs == 100 and kept.patience == 5 * factor
    assert stretched_config(config, 10_000, frozenset()) == config


@pytest.mark.parametrize(
    ("best_epoch", "epochs_run", "capped"),
    [(100, 100, True), (96, 100, True), (95, 100, False), (40, 45, False)],  # patience 5: 95 of 100 is a stop
)
def test_the_cap_is_told_apart_from_early_stopping(best_epoch, epochs_run, capped):
    result = TrainResult(val_mse=1.0, best_epoch=best_epoch, epochs_run=epochs_run, train_seconds=0.0)
    config = TrainConfig(epochs=100, patience=5)
    assert ended_at_cap(result, config) is capped
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_if_capped(result, config)
    assert len(caught) == int(capped)
    if capped:
        assert "cap of 100 epochs" in str(caught[0].message)
