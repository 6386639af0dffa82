"""The statistical stand-ins: exact cases (a line, a pure season) and the per-channel choice by validation MSE."""

import numpy as np
import pytest

from samformer.forecasting.statistical import (
    MAX_FITTED_ORIGINS,
    SAMFORMER,
    candidate_forecasts,
    candidate_names,
    choose_forecasters,
    forecast_channel,
    statsforecast_installed,
)

needs_statsforecast = pytest.mark.skipif(not statsforecast_installed(), reason="the stats extra (statsforecast) is not installed")


def test_naive_and_seasonal_naive_repeat_the_last_value_and_the_last_season():
    history = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    np.testing.assert_array_equal(forecast_channel("naive", history, 3, None), [6.0, 6.0, 6.0])
    np.testing.assert_array_equal(forecast_channel("seasonal_naive", history, 5, 4), [3.0, 4.0, 5.0, 6.0, 3.0])


def test_seasonal_naive_is_offered_only_with_a_season():
    assert "seasonal_naive" not in candidate_names(None) and "seasonal_naive" not in candidate_names(1)
    assert candidate_names(12)[:2] == ("naive", "seasonal_naive")


@needs_statsforecast
def test_ets_extends_a_straight_line_exactly_at_every_origin():
    line = 2.0 * np.arange(60.0) + 5.0  # Holt's linear trend fits it with no error
    origins = np.array([40, 50])
    forecasts = candidate_forecasts(line[:, None], 40, origins, 4, None)["ets"]  # (2, 4, 1)
    expected = 2.0 * (origins[:, None] + np.arange(4)) + 5.0
    np.testing.assert_allclose(forecasts[..., 0], expected, rtol=1e-6)
    np.testing.assert_allclose(forecast_channel("ets", line, 3, None), 2.0 * np.arange(60, 63) + 5.0, rtol=1e-6)


@needs_statsforecast
def test_a_constant_channel_has_no_fitted_candidate_and_naive_still_forecasts_it():
    values = np.column_stack([np.full(30, 3.0), np.arange(30.0)])
    forecasts = candidate_forecasts(values, 20, np.array([20, 25]), 2, None)
    assert np.isnan(forecasts["ets"][..., 0]).all() and not np.isnan(forecasts["ets"][..., 1]).any()
    np.testing.assert_array_equal(forecasts["naive"][..., 0], 3.0)


def test_the_choice_is_the_lowest_validation_mse_per_channel_and_samformer_on_a_tie():
    actuals = np.zeros((2, 3, 3))
    model = np.stack([np.full((2, 3), 1.0), np.full((2, 3), 0.5), np.full((2, 3), 2.0)], axis=-1)
    candidates = {
        "naive": np.stack([np.full((2, 3), 0.5), np.full((2, 3), 0.5), np.full((2, 3), 3.0)], axis=-1),
        "ets": np.stack([np.full((2, 3), 0.2), np.full((2, 3), 0.9), np.full((2, 3), np.nan)], axis=-1),
    }
    # channel 0: ets (0.04) < naive (0.25) < model (1); channel 1: model ties naive (0.25): SAMformer;
    # channel 2: ets has no forecast, naive (9) is worse than the model (4)
    assert choose_forecasters(model, candidates, actuals) == ["ets", SAMFORMER, SAMFORMER]


def test_unobserved_values_are_left_out_of_the_choice():
    actuals = np.array([[[0.0], [np.nan]]])  # (1, 2, 1): the second step unobserved
    model = np.array([[[1.0], [0.0]]])
    naive = np.array([[[0.0], [100.0]]])  # perfect where observed, far off where not
    assert choose_forecasters(model, {"naive": naive}, actuals) == ["naive"]


def test_when_choosing_the_fitted_candidates_are_scored_at_a_bounded_number_of_evenly_spaced_origins():
    values = np.arange(400.0)[:, None] + np.sin(np.arange(400.0))[:, None]  # (T, 1)
    origins = np.arange(100, 397)  # 297 origins
    names = ("theta",) if statsforecast_installed() else ()
    if not names:
        pytest.skip("the stats extra (statsforecast) is not installed")
    some = candidate_forecasts(values, 100, origins, 3, None, names=names, every=False)["theta"]
    scored = ~np.isnan(some[:, 0, 0])
    assert scored.sum() == MAX_FITTED_ORIGINS and scored[0] and scored[-1]
    every = candidate_forecasts(values, 100, origins, 3, None, names=names)["theta"]
    np.testing.assert_array_equal(some[scored], every[scored])  # the same forecast where scored
    assert not np.isnan(every).any()


def test_a_candidate_is_compared_on_the_values_it_forecast():
    actuals = np.zeros((4, 1, 1))
    model = np.array([0.0, 0.0, 5.0, 5.0])[:, None, None]  # perfect on the first two origins, far off on the others
    sparse = np.array([1.0, np.nan, 1.0, np.nan])[:, None, None]  # scored at origins 0 and 2 only: MSE 1 vs 12.5 there
    assert choose_forecasters(model, {"ets": sparse}, actuals) == ["ets"]


def test_a_fitted_candidate_without_statsforecast_names_the_extra_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "statsforecast.models", None)  # `from statsforecast.models import ...` now fails
    with pytest.raises(ImportError, match=r"pip install 'samformer\[stats\]'"):
        forecast_channel("ets", np.arange(30.0), 3, None)
