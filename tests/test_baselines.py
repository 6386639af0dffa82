"""Naive baselines and skill, checked against forecasts written out by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from samformer import Forecaster
from samformer.forecasting.baselines import naive_forecasts, season_length, seasonal_naive_forecasts, skill_table

from .conftest import make_frame


@pytest.mark.parametrize(
    ("freq", "season"),
    [("30min", 48), ("h", 24), ("15min", 96), ("min", 60), ("D", 7), ("B", 5), ("W-SAT", 52), ("MS", 12), ("QS", 4), ("YS", None)],
)
def test_season_of_a_frequency(freq, season):
    assert season_length(freq) == season


def test_naive_and_seasonal_naive_by_hand():
    values = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0])[:, None]  # (T=7, D=1), row 2 missing
    origins = np.array([3, 5])  # forecasts of rows 3.. and 5..
    # naive: the last observed value before the origin (row 2 is missing, so row 1's 2.0 for origin 3)
    np.testing.assert_array_equal(naive_forecasts(values, origins, 3)[..., 0], [[2.0, 2.0, 2.0], [5.0, 5.0, 5.0]])
    # season 2: origin 5 repeats rows 3, 4 -> 4, 5, 4; origin 3 repeats rows 1, 2 (2.0, then 2.0 carried) -> 2, 2, 2
    np.testing.assert_array_equal(seasonal_naive_forecasts(values, origins, 3, 2)[..., 0], [[2.0, 2.0, 2.0], [4.0, 5.0, 4.0]])
    # an origin with less than a season before it gets the naive forecast
    np.testing.assert_array_equal(seasonal_naive_forecasts(values, np.array([1]), 2, 3)[..., 0], [[1.0, 1.0]])


def test_skill_table_by_hand():
    actual = np.array([[[1.0, 10.0], [2.0, 20.0]]])  # (N=1, H=2, D=2)
    model = np.array([[[1.0, 12.0], [3.0, 20.0]]])  # errors a: 0, 1; b: 2, 0
    naive = np.array([[[0.0, 10.0], [0.0, 10.0]]])  # errors a: 1, 2; b: 0, 10
    table = skill_table({"model": model, "naive": naive}, actual, ["a", "b"], scale=np.array([1.0, 2.0]))
    assert table.loc["a", "mse"] == pytest.approx(0.5) and table.loc["a", "naive_mse"] == pytest.approx(2.5)
    assert table.loc["b", "mae"] == pytest.approx(1.0) and table.loc["b", "naive_mse"] == pytest.approx(50.0)
    assert table.loc["a", "skill"] == pytest.approx(1 - 0.5 / 2.5)
    # overall: each channel's MSE over its variance (b's scale is 2), then averaged
    assert table.loc["overall", "mse"] == pytest.approx((0.5 + 2.0 / 4) / 2)
    assert table.loc["overall", "skill"] == pytest.approx(1 - 0.5 / ((2.5 + 50.0 / 4) / 2))
    assert list(table.index) == ["a", "b", "overall"] and (table["best_baseline"] == "naive").all()


def test_backtest_summary_puts_the_model_next_to_hand_computed_baselines():
    frame = make_frame(300, 2)
    model = Forecaster(6, 24, epochs=1, batch_size=64, progress=False).fit(frame)
    start = 250
    bt = model.backtest(frame, start=start)
    values = frame.to_numpy()
    origins = np.arange(start, len(frame) - 6 + 1)
    actual = np.stack([values[o : o + 6] for o in origins])  # (N, H, D)
    naive = np.stack([np.repeat(values[o - 1][None], 6, axis=0) for o in origins])
    seasonal = np.stack([values[o - 24 : o - 24 + 6] for o in origins])  # hourly: a day; H < 24 so no wrap
    summary = bt.summary()
    for j, channel in enumerate(["c0", "c1"]):
        naive_mse, seasonal_mse = ((naive - actual) ** 2)[..., j].mean(), ((seasonal - actual) ** 2)[..., j].mean()
        assert summary.loc[channel, "naive_mse"] == pytest.approx(naive_mse)
        assert summary.loc[channel, "seasonal_naive_mse"] == pytest.approx(seasonal_mse)
        assert summary.loc[channel, "seasonal_naive_mae"] == pytest.approx(np.abs(seasonal - actual)[..., j].mean())
        best = min(naive_mse, seasonal_mse)
        assert summary.loc[channel, "skill"] == pytest.approx(1 - summary.loc[channel, "mse"] / best)
    assert bt.summary().loc["c0", "mse"] == pytest.approx(bt.metrics.loc["c0", "mse"].mean())


def test_fit_warns_in_one_line_when_a_baseline_is_better():
    t = np.arange(400)
    frame = pd.DataFrame({"a": np.sin(2 * np.pi * t / 24)}, index=pd.date_range("2021", periods=400, freq="h"))  # seasonal naive is exact
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # fallback=False: SAMformer itself must lose here (the default would serve seasonal naive instead)
        model = Forecaster(6, 24, epochs=1, lr=1e-5, sam=False, progress=False, fallback=False).fit(frame)
    messages = [str(w.message) for w in caught if "baseline" in str(w.message)]
    assert len(messages) == 1 and "\n" not in messages[0] and "seasonal naive" in messages[0], messages
    assert model.validation_.loc["overall", "skill"] < 0
    assert model.validation_.loc["a", "seasonal_naive_mse"] == pytest.approx(0.0, abs=1e-12)
