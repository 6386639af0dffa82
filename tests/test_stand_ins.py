"""The default Forecaster's statistical stand-ins (where validation prefers seasonal naive, the model is seasonal naive),
and its backtest's out-of-sample default start.

The series is an exact weekly cycle, so seasonal naive forecasts it without error on every origin and no trained
network can beat it: the default must pick it on both channels, and its forecasts must be the last week repeated —
a truth computed from the cycle, not from the code. `fallback=False` keeps SAMformer.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from samformer import DataError, Forecaster

H, L = 7, 14
OPTIONS = {"epochs": 1, "batch_size": 32, "progress": False, "seed": 0}
CYCLE = np.array([[3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0], [6.0, 5.0, 3.0, 5.0, 8.0, 9.0, 7.0]]).T  # (7, 2): one week


def weekly(n: int) -> pd.DataFrame:
    index = pd.date_range("2021-01-04", periods=n, freq="D")
    return pd.DataFrame(CYCLE[np.arange(n) % 7], index=index, columns=["a", "b"])


@pytest.fixture(scope="module")
def fitted() -> tuple[Forecaster, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = Forecaster(H, L, quantiles=(0.1, 0.9), **OPTIONS).fit(weekly(140))
    return model, caught


def test_validation_picks_seasonal_naive_on_an_exact_cycle_and_fit_says_so(fitted):
    model, caught = fitted
    assert model.forecasters_.to_dict() == {"a": "seasonal_naive", "b": "seasonal_naive"}
    assert list(model.validation_["forecaster"]) == ["seasonal_naive", "seasonal_naive", "mixed"]
    assert model.validation_.loc[["a", "b"], "mse"].max() < 1e-12  # the actuals went through the scaler and back
    said = [str(w.message) for w in caught if "statistical forecaster" in str(w.message)]
    assert len(said) == 1 and "a: seasonal naive" in said[0] and "fallback=False" in said[0]
    assert not any("does not beat" in str(w.message) for w in caught)  # serving the baseline ties it: no loss to warn of


def test_the_forecast_is_the_last_week_repeated_inside_its_band(fitted):
    model, _ = fitted
    forecast = model.predict()
    expected = CYCLE[np.arange(140, 140 + H) % 7]  # the next week of the cycle
    np.testing.assert_array_equal(forecast[["a", "b"]].to_numpy(), expected)
    for channel in ("a", "b"):
        assert (forecast[f"{channel}_q0.1"] <= forecast[channel]).all() and (forecast[channel] <= forecast[f"{channel}_q0.9"]).all()


def test_backtest_uses_the_stand_ins_and_its_summary_says_which(fitted):
    model, _ = fitted
    summary = model.backtest(weekly(196), start=140).summary()
    assert list(summary["forecaster"]) == ["seasonal_naive", "seasonal_naive", "mixed"]
    assert summary.loc[["a", "b"], "mse"].max() == 0.0


def test_windows_cut_by_the_caller_are_forecast_by_the_stand_ins(fitted):
    model, _ = fitted
    values = weekly(40).to_numpy()
    windows = np.stack([values[s : s + L] for s in (0, 3, 10)])  # (3, L, 2)
    expected = np.stack([CYCLE[np.arange(s + L, s + L + H) % 7] for s in (0, 3, 10)])  # (3, H, 2)
    np.testing.assert_array_equal(model.forecast_windows(windows)[..., 1], expected)  # level 1 of (0.1, 0.5, 0.9): the median


def test_a_saved_model_keeps_its_stand_ins(fitted, tmp_path):
    model, _ = fitted
    loaded = Forecaster.load(model.save(tmp_path / "m"))
    assert loaded.forecasters_.to_dict() == model.forecasters_.to_dict()
    history = weekly(150)
    pd.testing.assert_frame_equal(loaded.predict(history), model.predict(history))


def test_onnx_export_refuses_a_model_with_stand_ins(fitted, tmp_path):
    with pytest.raises(DataError, match=r"statistical stand-ins, which ONNX cannot hold; fit with Forecaster\(fallback=False\)"):
        fitted[0].export_onnx(tmp_path / "m.onnx")


def test_fallback_false_keeps_samformer_on_every_target():
    model = Forecaster(H, L, fallback=False, **OPTIONS).fit(weekly(140))
    assert model.forecasters_.to_dict() == {"a": "samformer", "b": "samformer"}
    assert list(model.validation_["forecaster"]) == ["samformer", "samformer", "samformer"]


def test_a_cap_that_ended_training_is_said_in_one_line():
    with pytest.warns(UserWarning, match=r"stopped at its cap of 2 epochs with the validation MSE still improving"):
        Forecaster(H, L, fallback=False, **{**OPTIONS, "epochs": 2, "patience": 50}).fit(weekly(140))


def test_backtest_starts_after_the_fitted_rows_and_warns_when_told_to_start_on_them(fitted):
    model, _ = fitted  # fitted on the first 140 days
    frame = weekly(196)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default start is out-of-sample: no warning
        default = model.backtest(frame)
    assert default.forecasts.index.get_level_values("cutoff").min() == frame.index[139]  # first origin: row 140
    with pytest.warns(UserWarning, match=r"forecast rows the model was fitted on .* in-sample"):
        model.backtest(frame, start=L)


def test_few_validation_windows_are_joined_by_two_earlier_folds_in_the_calibration(monkeypatch):
    import samformer.forecasting.fitting as fitting

    seen = []
    real = fitting.calibrate
    monkeypatch.setattr(fitting, "calibrate", lambda f, a, q: seen.append((f.shape, a.shape)) or real(f, a, q))
    Forecaster(H, L, quantiles=(0.1, 0.9), fallback=False, **OPTIONS).fit(weekly(140))
    # 140 rows, 28 validation rows: 28 - 7 + 1 = 22 windows (< 50); folds end at rows 112 and 84, 22 windows each
    assert seen == [((66, H, 2, 3), (66, H, 2))]
