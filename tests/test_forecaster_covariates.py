"""`Forecaster` with targets and covariates: which channels go in and come out, how the forecast window
is assembled from the history and `future_df`, leaks, persistence and the errors of a missing future."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from samformer import ConfigError, DataError, Forecaster
from samformer.data.channels import calendar_features

L, H = 24, 6
# These tests check the network's plumbing, so SAMformer forecasts every target; tests/test_stand_ins.py checks the default's
# statistical stand-ins (fallback=True).
FAST = {"epochs": 2, "batch_size": 64, "progress": False, "seed": 0, "fallback": False}


def sales_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Hourly sales driven by a planned price (known ahead) and a temperature observed as it happens."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    price = rng.normal(size=n)
    temp = np.sin(2 * np.pi * t / 24) + 0.1 * rng.normal(size=n)
    sales = 5 - 2 * price + temp + 0.1 * rng.normal(size=n)
    index = pd.date_range("2024-01-01", periods=n, freq="h", name="date")
    return pd.DataFrame({"sales": sales, "price": price, "temp": temp, "other": rng.normal(size=n)}, index=index)


@pytest.fixture(scope="module")
def fitted() -> tuple[Forecaster, pd.DataFrame]:
    frame = sales_frame()
    model = Forecaster(H, L, **FAST).fit(frame.iloc[:-H], target="sales", past_covariates=["temp"], future_covariates=["price"])
    return model, frame


def _future(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[-H:][["price"]]


def test_selection_rules_give_the_documented_inputs_and_targets():
    frame = sales_frame(200)
    cases = [
        ({}, ["sales", "price", "temp", "other"], ["sales", "price", "temp", "other"]),  # M
        ({"target": "sales"}, ["sales", "price", "temp", "other"], ["sales"]),  # MS
        ({"target": "sales", "past_covariates": []}, ["sales"], ["sales"]),  # S
        ({"target": ["sales"], "past_covariates": ["temp"]}, ["sales", "temp"], ["sales"]),
        ({"past_covariates": ["other"]}, ["sales", "price", "temp", "other"], ["sales", "price", "temp"]),
    ]
    for kwargs, inputs, targets in cases:
        model = Forecaster(H, L, epochs=1, batch_size=64, progress=False).fit(frame, **kwargs)
        assert (model.columns_, model.targets_) == (inputs, targets), kwargs
        forecast = model.predict()
        assert list(forecast.columns) == targets and len(forecast) == H


def test_forecast_window_is_assembled_from_history_and_future_values(fitted):
    model, frame = fitted
    history, future = frame.iloc[:-H], _future(frame)
    forecast = model.predict(history, future_df=future)

    # By hand: sales and temp are the last L rows; price's token ends at the horizon's end, so it is its
    # last L - H observed rows followed by the H planned prices; all standardised with the fitted scaler.
    tokens = {
        "sales": history["sales"].to_numpy()[-L:],
        "temp": history["temp"].to_numpy()[-L:],
        "price": np.r_[history["price"].to_numpy()[-(L - H) :], future["price"].to_numpy()],
    }
    assert sorted(model.columns_) == sorted(tokens)
    raw = np.stack([tokens[c] for c in model.columns_], axis=1)  # (L, 3)
    x = torch.tensor((raw - model.scaler_.mean) / model.scaler_.std, dtype=torch.float32).T[None]  # (1, 3, L)
    with torch.no_grad():
        y = model.net_.forward_channels_first(x)[0, 0].double().numpy()  # (H,) the sales channel only
    j = model.columns_.index("sales")
    expected = y * model.scaler_.std[j] + model.scaler_.mean[j]
    np.testing.assert_allclose(forecast["sales"].to_numpy(), expected, rtol=1e-5)
    assert list(forecast.index) == list(future.index)


def test_future_values_steer_the_forecast_and_past_covariates_do_not_leak(fitted):
    model, frame = fitted
    base = model.backtest(frame, start=len(frame) - H).forecasts
    # A past covariate after the origin is never seen: changing it leaves the forecast as it was.
    leaked = frame.copy()
    leaked.iloc[-H:, leaked.columns.get_loc("temp")] += 100.0
    pd.testing.assert_frame_equal(model.backtest(leaked, start=len(frame) - H).forecasts, base)
    # The planned price over the horizon is an input: changing it changes the forecast.
    planned = frame.copy()
    planned.iloc[-H:, planned.columns.get_loc("price")] += 3.0
    assert not np.allclose(model.backtest(planned, start=len(frame) - H).forecasts.to_numpy(), base.to_numpy())
    # predict and backtest agree on the same origin and values.
    direct = model.predict(frame.iloc[:-H], future_df=_future(frame))
    np.testing.assert_allclose(direct.to_numpy(), base.to_numpy(), rtol=1e-6)


def test_backtest_scores_the_targets_only(fitted):
    model, frame = fitted
    result = model.backtest(frame, start=len(frame) - 3 * H, stride=H)
    assert list(result.actuals.columns) == ["sales"]
    assert set(result.metrics.index.get_level_values("channel")) == {"sales"}
    err = result.forecasts["sales"].to_numpy() - result.actuals["sales"].to_numpy()
    assert result.summary().loc["sales", "mse"] == pytest.approx(np.mean(err**2))


@pytest.mark.parametrize(
    ("future", "message"),
    [
        (lambda f: None, "uses known-future covariates (price)"),
        (lambda f: f.iloc[-H:][["temp"]], "future_df has no column price"),
        (lambda f: f.iloc[-H:-1][["price"]], "'price' is missing over the horizon (first at 2024-01-17 15:00:00)"),
        (lambda f: f.iloc[-H:][["price"]].assign(price=lambda d: d["price"].where(d.index != d.index[2])), "first at 2024-01-17 12:00:00"),
    ],
)
def test_a_missing_known_future_value_is_a_clear_error(fitted, future, message):
    model, frame = fitted
    with pytest.raises(DataError) as err:
        model.predict(frame.iloc[:-H], future_df=future(frame))
    assert message in str(err.value)


def test_history_may_keep_the_columns_the_model_ignores(fitted):
    model, frame = fitted
    assert model.ignored_columns_ == ["other"]
    model.predict(frame.iloc[:-H], future_df=_future(frame))  # 'other' is in the history: accepted
    with pytest.raises(DataError, match="unknown: \\['surprise'\\]"):
        model.predict(frame.iloc[:-H].assign(surprise=1.0), future_df=_future(frame))
    with pytest.raises(DataError, match="missing: \\['temp'\\]"):
        model.predict(frame.iloc[:-H].drop(columns="temp"), future_df=_future(frame))


def test_calendar_features_are_derived_for_the_forecast_dates():
    frame = sales_frame(300)[["sales"]]
    model = Forecaster(H, L, **FAST).fit(frame, target="sales", calendar=True)
    assert model.targets_ == ["sales"] and model.calendar_columns_ == [c for c in model.columns_ if c.startswith("cal_")]
    assert {"cal_hour_sin", "cal_hour_cos"} <= set(model.calendar_columns_)
    forecast = model.predict()  # no future_df needed
    # By hand: calendar tokens hold the encodings of rows [T - L + H, T + H), the last H of them future dates.
    dates = frame.index[-(L - H) :].append(forecast.index)
    cal = calendar_features(dates, model.calendar_columns_).to_numpy()  # (L, C)
    raw = np.concatenate([frame.to_numpy()[-L:], cal], axis=1)  # (L, 1 + C)
    x = torch.tensor((raw - model.scaler_.mean) / model.scaler_.std, dtype=torch.float32).T[None]
    with torch.no_grad():
        y = model.net_.forward_channels_first(x)[0, 0].double().numpy()
    np.testing.assert_allclose(forecast["sales"].to_numpy(), y * model.scaler_.std[0] + model.scaler_.mean[0], rtol=1e-5)


def test_save_load_keeps_roles_and_forecasts(fitted, tmp_path):
    model, frame = fitted
    model.save(tmp_path / "m")
    loaded = Forecaster.load(tmp_path / "m")
    assert (loaded.columns_, loaded.targets_, loaded.future_columns_) == (model.columns_, model.targets_, model.future_columns_)
    history, future = frame.iloc[:-H], _future(frame)
    pd.testing.assert_frame_equal(loaded.predict(history, future_df=future), model.predict(history, future_df=future))


def test_quantile_forecasts_of_one_target_among_covariates():
    frame = sales_frame(300)
    model = Forecaster(H, L, quantiles=(0.1, 0.9), **FAST).fit(frame, target="sales")
    forecast = model.predict()
    assert list(forecast.columns) == ["sales", "sales_q0.1", "sales_q0.5", "sales_q0.9"]
    assert (forecast["sales_q0.1"] <= forecast["sales_q0.9"]).all()


def test_a_future_df_for_a_model_without_future_covariates_is_refused():
    frame = sales_frame(200)
    model = Forecaster(H, L, epochs=1, batch_size=64, progress=False).fit(frame, target="sales")
    with pytest.raises(DataError, match="fitted without future_covariates"):
        model.predict(future_df=frame.iloc[-H:])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"target": "nope"}, DataError, "column(s) nope not in the data"),
        ({"target": "sales", "future_covariates": ["sales"]}, DataError, "not several of these"),
        ({"target": "sales", "future_covariates": "price"}, ConfigError, "write ['price']"),
    ],
)
def test_bad_selections_are_refused(kwargs, error, message):
    with pytest.raises(error) as err:
        Forecaster(H, L, epochs=1, progress=False).fit(sales_frame(200), **kwargs)
    assert message in str(err.value)


def test_onnx_export_forecasts_the_targets_in_their_units(fitted, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model, frame = fitted
    path = model.export_onnx(tmp_path / "m.onnx")
    values = frame[model.columns_].to_numpy()
    windows = np.stack([values[i : i + L] for i in (0, 100, 300)])  # (3, L, D) model inputs as raw values
    (onnx_out,) = ort.InferenceSession(str(path)).run(None, {"x": windows.astype(np.float32)})
    assert onnx_out.shape == (3, H, 1)
    np.testing.assert_allclose(onnx_out, model.forecast_windows(windows), atol=1e-4)


def test_cli_fit_and_predict_with_a_known_future_covariate(tmp_path, capsys):
    from samformer.cli.main import main

    frame = sales_frame()
    frame.iloc[:-H].to_csv(tmp_path / "history.csv")
    _future(frame).to_csv(tmp_path / "future.csv")
    fast = ["--seq-len", str(L), "--epochs", "1", "--batch-size", "64", "--quiet"]
    fit = ["fit", "--csv", tmp_path / "history.csv", "--horizon", H, "--out", tmp_path / "m", *fast]
    assert main([str(a) for a in [*fit, "--target", "sales", "--future-covariates", "price"]]) == 0
    predict = ["predict", "--model", tmp_path / "m", "--csv", tmp_path / "history.csv", "--out", tmp_path / "f.csv"]
    assert main([str(a) for a in predict]) == 2
    assert "uses known-future covariates (price)" in capsys.readouterr().err
    assert main([str(a) for a in [*predict, "--future-csv", tmp_path / "future.csv"]]) == 0
    written = pd.read_csv(tmp_path / "f.csv", index_col="date", parse_dates=True)
    expected = Forecaster.load(tmp_path / "m").predict(frame.iloc[:-H], future_df=_future(frame))
    assert list(written.columns) == ["sales"]
    np.testing.assert_allclose(written.to_numpy(), expected.to_numpy(), rtol=1e-9)
