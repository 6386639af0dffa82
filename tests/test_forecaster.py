"""The pandas-facing Forecaster: timestamps, layouts, units, missing values, quantiles, backtests, persistence."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from samformer import ConfigError, DataError, Forecaster, ModelFileError
from samformer.data.series import Windows
from samformer.metrics import pinball
from samformer.nn.model import SAMformer
from samformer.training.steps import batch_loss

from .conftest import make_frame
from .helpers import edit_config, flip_byte, run_cli

# These tests check the network's plumbing, so SAMformer forecasts every target; tests/test_stand_ins.py checks the default's
# statistical stand-ins (fallback=True).
FAST = {"epochs": 1, "batch_size": 64, "progress": False, "fallback": False}


def fitted(frame: pd.DataFrame, horizon: int = 6, seq_len: int = 24, **options) -> Forecaster:
    return Forecaster(horizon, seq_len, **{**FAST, **options}).fit(frame)


def to_long(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename_axis("ds").reset_index().melt(id_vars="ds", var_name="unique_id", value_name="y")


# ---------------------------------------------------------------- timestamps
@pytest.mark.parametrize("freq", ["h", "15min", "D", "B"])
def test_forecast_timestamps_continue_the_series(freq):
    full = make_frame(160 + 6, 2, freq=freq)  # the 6 rows after the fitted part are the expected dates
    forecast = fitted(full.iloc[:160]).predict()
    assert list(forecast.index) == list(full.index[160:])
    assert list(forecast.columns) == ["c0", "c1"]


def test_business_day_forecast_skips_the_weekend():
    frame = make_frame(100, 2, freq="B")
    frame = frame[frame.index <= pd.Timestamp("2020-05-15")]  # ends on a Friday
    forecast = fitted(frame).predict()
    assert forecast.index[0] == pd.Timestamp("2020-05-18")  # Monday
    assert (forecast.index.day_of_week < 5).all()


def test_frequency_is_inferred_or_refused_when_ambiguous():
    frame = make_frame(120, 2).drop(make_frame(120, 2).index[[30, 31]])  # a gap: no regular frequency
    with pytest.raises(DataError, match="pass freq="):
        fitted(frame)
    with pytest.raises(DataError, match="expected 'D'"):
        fitted(make_frame(120, 2), freq="D")  # hourly data declared daily


def test_timestamps_missing_from_the_grid_become_masked_rows():
    frame = make_frame(200, 2).drop(make_frame(200, 2).index[[50, 51, 52]])
    model = fitted(frame, freq="h")
    assert model.predict().index[0] == make_frame(200, 2).index[-1] + pd.Timedelta("1h")


# --------------------------------------------------------------- layouts, units
def test_wide_long_and_date_column_inputs_give_the_same_model():
    frame = make_frame(200, 3)
    wide = fitted(frame, seed=3)
    long = fitted(to_long(frame), seed=3)
    date_column = fitted(frame.reset_index(), seed=3)
    for other in (long, date_column):
        for (k, a), (_, b) in zip(wide.net_.state_dict().items(), other.net_.state_dict().items(), strict=True):
            assert torch.equal(a, b), k
    forecast = wide.predict()
    long_forecast = long.predict()
    assert list(long_forecast.columns) == ["unique_id", "ds", "y"]
    back = long_forecast.pivot(index="ds", columns="unique_id", values="y")
    np.testing.assert_array_equal(back.to_numpy(), forecast.to_numpy())


def test_forecasts_are_in_the_original_units():
    # Standard scaling removes an affine change of units, so the same seed learns the same model and the
    # forecast of the rescaled data is the rescaled forecast.
    frame = make_frame(200, 2)
    rescaled = frame * [1000.0, 0.01] + [500.0, -3.0]
    a, b = fitted(frame, seed=1).predict(), fitted(rescaled, seed=1).predict()
    np.testing.assert_allclose(b.to_numpy(), a.to_numpy() * [1000.0, 0.01] + [500.0, -3.0], rtol=1e-4, atol=1e-4 * 1000)


def test_predict_from_new_history_uses_its_last_window():
    frame = make_frame(300, 2)
    model = fitted(frame.iloc[:200])
    np.testing.assert_array_equal(model.predict(frame.iloc[:200]).to_numpy(), model.predict().to_numpy())
    later = model.predict(frame)
    assert later.index[0] == frame.index[-1] + pd.Timedelta("1h")
    window = frame.to_numpy()[-24:]
    expected = model.forecast_windows(window[None])[0]  # the network on exactly the last seq_len rows
    np.testing.assert_array_equal(later.to_numpy(), expected)


def test_predict_refuses_other_channels_and_short_history():
    model = fitted(make_frame(200, 2))
    with pytest.raises(DataError, match="missing: \\['c1'\\]"):
        model.predict(make_frame(200, 2)[["c0"]])
    with pytest.raises(DataError, match="fewer than seq_len=24"):
        model.predict(make_frame(10, 2))
    with pytest.raises(DataError, match="not fitted"):
        Forecaster(6, 24).predict()


def test_bad_options_are_refused_with_their_names():
    with pytest.raises(TypeError, match="unknown option\\(s\\) epoch;"):
        Forecaster(6, 24, epoch=3)
    with pytest.raises(TypeError, match="unknown model option"):
        Forecaster(6, 24, model_options={"heads": 2})
    with pytest.raises(ValueError, match="horizon must be a positive integer"):
        Forecaster(0)
    with pytest.raises(ValueError, match="strictly increasing"):
        Forecaster(6, quantiles=(0.1, 1.5))
    with pytest.raises(DataError, match="fewer than horizon"):
        Forecaster(6, 24, **FAST).fit(make_frame(200, 2), val_size=3)


# ------------------------------------------------------------ missing values
def test_masked_revin_statistics_are_those_of_the_observed_values():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 10))
    observed = rng.random((2, 3, 10)) > 0.3
    observed[..., 0] = True
    revin = SAMformer(3, 10, 4).revin
    _, (mean, std) = revin.normalize(torch.tensor(np.where(observed, x, np.nan)), torch.tensor(observed))
    with_nan = np.where(observed, x, np.nan)
    np.testing.assert_allclose(mean[..., 0].numpy(), np.nanmean(with_nan, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(std[..., 0].numpy(), np.sqrt(np.nanvar(with_nan, axis=-1) + 1e-5), rtol=1e-12)


def test_masked_loss_ignores_missing_values_hand_computed():
    torch.manual_seed(0)
    model = SAMformer(2, 8, 3)
    series = torch.randn(20, 2)
    mask = torch.ones(20, 2, dtype=torch.bool)
    mask[[2, 9, 10, 15], [0, 1, 1, 0]] = False  # one input gap, targets missing in both channels
    index = torch.arange(6)
    losses = []
    for fill in (0.0, 1e6):  # whatever the missing entries hold must not matter
        filled = torch.where(mask, series, torch.tensor(fill))
        windows = Windows(filled, 8, 3, mask)
        x, y = windows.batch(index)
        losses.append(batch_loss(model, x, y, windows.batch_mask(index)).item())
    # by hand: forecast each window from its observed inputs, average the squared error over observed targets
    total, count = 0.0, 0
    for i in index.tolist():
        x_i, m_i = series[i : i + 8].T.clone(), mask[i : i + 8].T
        mean = torch.stack([x_i[d][m_i[d]].mean() for d in range(2)])[:, None]
        std = torch.stack([(x_i[d][m_i[d]].var(unbiased=False) + 1e-5).sqrt() for d in range(2)])[:, None]
        z = torch.where(m_i, (x_i - mean) / std, 0.0)
        z = z * model.revin.weight[:, None] + model.revin.bias[:, None]
        z = z + model.attention(z[None])[0][0]
        out = (model.forecaster(z) - model.revin.bias[:, None]) / (model.revin.weight[:, None] + 1e-10) * std + mean
        target, observed = series[i + 8 : i + 11].T, mask[i + 8 : i + 11].T
        total += ((out - target) ** 2)[observed].sum().item()
        count += int(observed.sum())
    assert losses[0] == pytest.approx(total / count, rel=1e-5)
    assert losses[1] == pytest.approx(losses[0], rel=1e-6)


def test_a_series_with_nans_trains_and_forecasts():
    frame = make_frame(300, 3)
    frame.iloc[40:60, 1] = np.nan
    frame.iloc[::17, 0] = np.nan
    frame.iloc[-3:, 2] = np.nan
    model = fitted(frame, epochs=2)
    assert all(np.isfinite(r["train_loss"]) and np.isfinite(r["val_mse"]) for r in model.history_)
    assert np.isfinite(model.predict().to_numpy()).all()
    assert np.isfinite(model.scaler_.mean).all()


def test_all_nan_channels_long_gaps_and_empty_windows_are_clear_errors():
    frame = make_frame(200, 2)
    frame["c1"] = np.nan
    with pytest.raises(DataError, match="channel 'c1' has no values"):
        fitted(frame)
    frame = make_frame(200, 2)
    frame.iloc[50:80, 0] = np.nan
    with pytest.raises(DataError, match="30 consecutive missing values \\(rows 50..79\\)"):
        fitted(frame)
    model = fitted(make_frame(200, 2))
    recent = make_frame(200, 2)
    recent.iloc[-24:, 1] = np.nan
    with pytest.raises(DataError, match="the last 24 rows: channel 'c1' has no values"):
        model.predict(recent)


# ------------------------------------------------------------------ quantiles
def test_pinball_loss_hand_computed():
    pred = torch.tensor([[1.0, 2.0, 3.0]])  # quantile forecasts for one target
    target = torch.tensor([2.5])
    q = torch.tensor([0.1, 0.5, 0.9])
    # errors e = 1.5, 0.5, -0.5 -> losses 0.1·1.5, 0.5·0.5, (0.9-1)·(-0.5)
    assert pinball(pred, target, q).item() == pytest.approx((0.15 + 0.25 + 0.05) / 3)
    mask = torch.tensor([False])
    assert pinball(pred, target, q, mask).item() == 0.0


def test_quantile_forecasts_are_ordered_and_the_median_is_the_point():
    frame = make_frame(300, 2)
    model = fitted(frame, quantiles=(0.9, 0.1))
    assert model.quantiles == (0.1, 0.5, 0.9)
    forecast = model.predict()
    for c in ("c0", "c1"):
        lo, mid, hi = (forecast[f"{c}_q{q}"] for q in ("0.1", "0.5", "0.9"))
        assert (lo <= mid).all() and (mid <= hi).all()
        np.testing.assert_array_equal(forecast[c], mid)
    # the network's raw outputs do cross before training; the ordering is imposed, not luck
    raw = model.net_.net.forward_channels_first(torch.randn(64, 2, 24)).unflatten(-1, (6, 3))
    assert (raw.diff(dim=-1) < 0).any()


def test_quantile_model_learns_the_quantiles_of_noise():
    # i.i.d. N(0, 1) noise: whatever the past, the 10% and 90% quantiles are ±1.28 and cover 80%
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.standard_normal(8000)}, index=pd.date_range("2020", periods=8000, freq="h"))
    options = {"epochs": 20, "batch_size": 64, "lr": 1e-2, "sam": False, "lr_schedule": "constant", "patience": 20}
    model_options = {"revin": False, "attention": False}
    model = Forecaster(2, 8, quantiles=(0.1, 0.9), progress=False, model_options=model_options, fallback=False, **options)
    model.fit(frame)
    test = pd.DataFrame({"a": rng.standard_normal(2000)}, index=pd.date_range("2021", periods=2000, freq="h"))
    bt = model.backtest(test, stride=2)
    inside = (bt.forecasts["a_q0.1"] <= bt.actuals["a"]) & (bt.actuals["a"] <= bt.forecasts["a_q0.9"])
    assert 0.72 < inside.mean() < 0.88
    assert -1.5 < bt.forecasts["a_q0.1"].mean() < -1.0 and 1.0 < bt.forecasts["a_q0.9"].mean() < 1.5


# ------------------------------------------------------------------- backtest
def test_backtest_forecasts_match_predict_and_metrics_match_a_hand_computation():
    frame = make_frame(260, 2)
    model = fitted(frame.iloc[:200])
    bt = model.backtest(frame, start=200, stride=5)
    cutoffs = bt.forecasts.index.get_level_values("cutoff").unique()
    assert list(cutoffs) == list(frame.index[199:254:5])
    for cutoff in cutoffs[:3]:
        expected = model.predict(frame.loc[:cutoff])
        np.testing.assert_allclose(bt.forecasts.loc[cutoff].to_numpy(), expected.to_numpy(), rtol=1e-6, atol=1e-6)
    err = (bt.forecasts - bt.actuals).to_numpy().reshape(len(cutoffs), 6, 2)
    np.testing.assert_allclose(bt.metrics.loc["c1", "mse"].to_numpy(), (err[..., 1] ** 2).mean(axis=0))
    np.testing.assert_allclose(bt.summary().loc["c0", "mae"], np.abs(err[..., 0]).mean())


def test_backtest_start_as_timestamp_or_fraction():
    frame = make_frame(260, 2)
    model = fitted(frame.iloc[:200])
    by_time = model.backtest(frame, start=str(frame.index[220]))
    by_frac = model.backtest(frame, start=220 / 260)
    assert by_time.forecasts.index[0][1] == frame.index[220]
    pd.testing.assert_frame_equal(by_time.forecasts, by_frac.forecasts)
    with pytest.raises(DataError, match="no forecast origin"):
        model.backtest(frame, start=258)


# ---------------------------------------------------------------- attention
def test_attention_matrix_is_labelled_and_row_stochastic():
    frame = make_frame(200, 3)
    attn = fitted(frame).attention(frame)
    assert list(attn.index) == list(attn.columns) == ["c0", "c1", "c2"]
    np.testing.assert_allclose(attn.sum(axis=1), 1.0, rtol=1e-5)


def test_a_loaded_model_refuses_attention_without_a_frame_as_predict_does(tmp_path):
    # A loaded model keeps no data: both calls need the history, and say so in the same words.
    model = fitted(make_frame(200, 2))
    model.save(tmp_path / "m")
    loaded = Forecaster.load(tmp_path / "m")
    with pytest.raises(DataError) as from_predict:
        loaded.predict()
    with pytest.raises(DataError) as from_attention:
        loaded.attention()
    assert str(from_attention.value) == str(from_predict.value)
    assert "pass the recent history" in str(from_attention.value)


# ---------------------------------------------------------------- persistence
@pytest.mark.parametrize("quantiles", [None, (0.1, 0.9)])
def test_save_load_predict_is_exact(tmp_path, quantiles):
    frame = make_frame(200, 2)
    frame.iloc[10:14, 0] = np.nan
    model = fitted(frame, quantiles=quantiles)
    model.save(tmp_path / "m")
    loaded = Forecaster.load(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.predict(frame), model.predict(frame), check_exact=True)
    assert loaded.freq_ == "h" and loaded.columns_ == ["c0", "c1"] and loaded.history_ == model.history_
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["forecaster"]["columns"] == ["c0", "c1"] and "samformer_version" in config
    with pytest.raises(DataError, match="keeps no data"):
        loaded.predict()


def test_save_never_overwrites_unless_asked(tmp_path):
    model = fitted(make_frame(200, 2))
    model.save(tmp_path / "m")
    before = (tmp_path / "m" / "model.safetensors").read_bytes()
    other = fitted(make_frame(200, 2), seed=5)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        other.save(tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == before
    other.save(tmp_path / "m", overwrite=True)
    assert (tmp_path / "m" / "model.safetensors").read_bytes() != before
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "notes")


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda d: flip_byte(d / "model.safetensors", offset=-5, mask=0x01), "model.safetensors was changed after saving"),
        (
            lambda d: edit_config(d / "config.json", lambda c: c["forecaster"]["scaler"]["std"].reverse()),
            "changed after saving",
        ),
        (lambda d: edit_config(d / "config.json", lambda c: c.pop("weights_sha256")), "changed after saving|no checksums"),
        (lambda d: edit_config(d / "config.json", lambda c: c["model"].__setitem__("seq_len", 12)), "does not match|changed after saving"),
        (lambda d: (d / "config.json").write_text("{not json"), "not valid JSON|not a valid samformer config"),
        (lambda d: (d / "model.safetensors").unlink(), "is missing"),
        (lambda d: edit_config(d / "config.json", lambda c: c.__setitem__("format_version", 99)), "format 99"),
    ],
)
def test_tampered_or_incompatible_directories_are_refused(tmp_path, tamper, message):
    fitted(make_frame(200, 2)).save(tmp_path / "m")
    tamper(tmp_path / "m")
    with pytest.raises(ModelFileError, match=message):
        Forecaster.load(tmp_path / "m")


def test_a_consistent_but_rewritten_config_is_still_checked_against_the_weights(tmp_path):
    # an edit that recomputes the config checksum (deliberate, not accidental) still cannot mismatch the weights
    from samformer.forecasting.modelfile import config_sha256

    fitted(make_frame(200, 2)).save(tmp_path / "m")

    def shrink(c):
        c["forecaster"]["columns"] = ["c0"]
        c["config_sha256"] = config_sha256(c)

    edit_config(tmp_path / "m" / "config.json", shrink)
    with pytest.raises(ModelFileError, match="does not match its weights"):
        Forecaster.load(tmp_path / "m")


def test_loading_never_unpickles(tmp_path, monkeypatch):
    import pickle

    fitted(make_frame(200, 2)).save(tmp_path / "m")

    def forbidden(*args, **kwargs):
        raise AssertionError("unpickling during load")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    Forecaster.load(tmp_path / "m")


# ----------------------------------------------------------------------- ONNX
@pytest.mark.parametrize("quantiles", [None, (0.1, 0.9)])
def test_onnx_export_matches_pytorch(tmp_path, quantiles):
    ort = pytest.importorskip("onnxruntime")
    frame = make_frame(200, 3)
    model = fitted(frame, quantiles=quantiles)
    path = model.export_onnx(tmp_path / "m.onnx")
    windows = np.stack([frame.to_numpy()[i : i + 24] for i in (0, 50, 176)])  # (3, L, D), a batch size unlike the export's
    (onnx_out,) = ort.InferenceSession(str(path)).run(None, {"x": windows.astype(np.float32)})
    torch_out = model.forecast_windows(windows)
    assert onnx_out.shape == torch_out.shape
    assert np.abs(onnx_out - torch_out).max() < 1e-5
    with pytest.raises(FileExistsError):
        model.export_onnx(path)


# ---------------------------------------------------------------- feedback, plots
def test_metrics_csv_has_one_row_per_epoch(tmp_path):
    model = fitted(make_frame(200, 2), epochs=3, patience=10, log_dir=tmp_path / "logs")
    logged = pd.read_csv(tmp_path / "logs" / "metrics.csv")
    assert list(logged["epoch"]) == [1, 2, 3]
    np.testing.assert_allclose(logged["val_mse"], [r["val_mse"] for r in model.history_])


def test_plots_return_figures_and_write_pngs(tmp_path):
    pytest.importorskip("matplotlib")
    from samformer.plots import plot_attention, plot_forecast, plot_training

    frame = make_frame(200, 2)
    model = fitted(frame.iloc[:-6], quantiles=(0.1, 0.9), epochs=2)
    fig = plot_forecast(model.predict(), history=frame.iloc[:-6], actual=frame.iloc[-6:], path=tmp_path / "f.png")
    assert len(fig.axes) == 2 and fig.axes[0].get_ylabel() == "c0"
    assert any("quantiles" in t.get_text() for t in fig.axes[0].get_legend().get_texts())
    fig = plot_attention(model.attention(), path=tmp_path / "a.png")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["c0", "c1"]
    plot_training(model.history_, path=tmp_path / "t.png")
    for name in ("f", "a", "t"):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_forecast_plot_names_the_stand_in_that_forecast_a_channel():
    pytest.importorskip("matplotlib")
    from samformer.plots import plot_forecast

    forecast = make_frame(6, 2)
    legends = lambda fig: [[t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes]  # noqa: E731
    fig = plot_forecast(forecast, forecasters=pd.Series({"c0": "ets", "c1": "samformer"}))
    assert legends(fig) == [["forecast (ets)"], ["forecast"]]
    assert "stand-ins" in fig.axes[0].get_title()
    fig = plot_forecast(forecast)  # nothing said: every channel is SAMformer's
    assert legends(fig) == [["forecast"], ["forecast"]] and fig.axes[0].get_title() == "SAMformer forecast"


@pytest.mark.parametrize(
    ("arguments", "pattern"),
    [
        ({"horizon": 0}, r"horizon must be a positive integer, got 0"),
        ({"horizon": True}, r"horizon must be a positive integer, got True"),
        ({"horizon": 6, "seq_len": 24.0}, r"seq_len must be a positive integer or None, got 24\.0"),
        ({"horizon": 6, "quantiles": "0.1,0.9"}, r"quantiles .* got '0\.1,0\.9', not a sequence"),
        ({"horizon": 6, "quantiles": 0.9}, r"quantiles .* got 0\.9, not a sequence"),
        ({"horizon": 6, "quantiles": [0.1, "0.9"]}, r"'0\.9' is not a number in \(0, 1\)"),
        ({"horizon": 6, "quantiles": [0.0, 0.5]}, r"0\.0 is not a number in \(0, 1\)"),
        ({"horizon": 6, "quantiles": [float("nan")]}, r"nan is not a number in \(0, 1\)"),
    ],
)
def test_forecaster_arguments_are_config_errors_naming_the_argument(arguments, pattern):
    with pytest.raises(ConfigError, match=pattern):
        Forecaster(**arguments)


def test_quantile_levels_are_sorted_deduplicated_and_include_the_median():
    assert Forecaster(6, quantiles=np.array([0.9, 0.1, 0.9])).quantiles == (0.1, 0.5, 0.9)
    assert Forecaster(6, seq_len=None).seq_len is None


def test_fit_refuses_a_column_whose_variance_overflows_naming_it():
    frame = make_frame(200, 2)
    frame["c1"] = np.where(np.arange(200) % 2, 1e300, -1e300)  # mean 0, variance 1e600: beyond float64
    with pytest.raises(DataError, match=r"the training frame: column\(s\) c1 hold values too large to standardise"):
        Forecaster(6, 24, **FAST).fit(frame)


def test_fit_refuses_values_beyond_float32_once_standardised_naming_the_column():
    frame = make_frame(200, 2)
    frame.iloc[180, 0] = 1e39  # in the validation rows: (1e39 - mean) / std of values near 1 exceeds float32's 3.4e38
    with pytest.raises(DataError, match=r"column\(s\) 'c0' become non-finite once standardised"):
        Forecaster(6, 24, **FAST).fit(frame)


# ------------------------------------------------------------ time zones
def zoned_frame(start: str, n_rows: int, freq: str, tz: str) -> pd.DataFrame:
    """make_frame's values on `n_rows` timestamps of `freq` from local `start` in zone `tz`."""
    frame = make_frame(n_rows, 2)
    frame.index = pd.date_range(start, periods=n_rows, freq=freq, tz=tz, name="date")
    return frame


def test_hourly_data_across_a_dst_change_keeps_its_zone_in_predict_and_backtest():
    frame = zoned_frame("2021-03-20", 300, "h", "Europe/Paris")  # the clocks go forward on 2021-03-28
    assert frame.index[0].utcoffset() != frame.index[-1].utcoffset()
    forecaster = Forecaster(6, 24, **FAST).fit(frame)
    forecast = forecaster.predict(frame)
    expected = pd.date_range(frame.index[-1] + pd.Timedelta(hours=1), periods=6, freq="h")  # consecutive instants
    assert str(forecast.index.tz) == "Europe/Paris" and forecast.index.equals(expected)
    backtest = forecaster.backtest(frame, start=-30)
    assert str(backtest.forecasts.index.levels[0].tz) == str(backtest.forecasts.index.levels[1].tz) == "Europe/Paris"
    first_cutoff = backtest.forecasts.index.get_level_values("cutoff")[0]
    assert first_cutoff == frame.index[-31]


def test_daily_data_across_a_dst_change_fits_and_forecasts_local_midnights():
    frame = zoned_frame("2021-01-01", 200, "D", "Europe/Paris")  # 23- and 25-hour days in March and October
    forecaster = Forecaster(6, 24, **FAST).fit(frame)
    forecast = forecaster.predict(frame)
    assert forecaster.freq_ == "D"
    assert forecast.index.equals(pd.date_range("2021-07-20", periods=6, freq="D", tz="Europe/Paris"))
    backtest = forecaster.backtest(frame, start=pd.Timestamp("2021-03-25", tz="Europe/Paris"), stride=50)
    assert backtest.forecasts.index.get_level_values("cutoff")[0] == pd.Timestamp("2021-03-24", tz="Europe/Paris")


def test_the_time_zone_survives_save_and_load_and_is_checked_at_predict(tmp_path):
    frame = zoned_frame("2021-10-25", 300, "h", "Europe/Paris")  # the clocks go back on 2021-10-31
    forecaster = Forecaster(6, 24, **FAST).fit(frame)
    loaded = Forecaster.load(forecaster.save(tmp_path / "model"))
    assert json.loads((tmp_path / "model" / "config.json").read_text())["forecaster"]["tz"] == "Europe/Paris"
    pd.testing.assert_frame_equal(loaded.predict(frame), forecaster.predict(frame))
    with pytest.raises(DataError, match=r"time zone 'UTC', the model was fitted on time zone 'Europe/Paris'.*tz_convert"):
        loaded.predict(frame.tz_convert("UTC"))
    with pytest.raises(DataError, match=r"naive timestamps .*tz_localize\('Europe/Paris'\)"):
        loaded.predict(frame.tz_localize(None))


def test_a_naive_model_saves_no_zone_and_refuses_zoned_timestamps(tmp_path):
    frame = make_frame(200, 2)
    forecaster = Forecaster(6, 24, **FAST).fit(frame)
    forecaster.save(tmp_path / "model")
    assert "tz" not in json.loads((tmp_path / "model" / "config.json").read_text())["forecaster"]
    with pytest.raises(DataError, match=r"fitted on naive timestamps; pass naive timestamps"):
        forecaster.predict(frame.tz_localize("UTC"))


# ------------------------------------------------------------ column labels
def test_labels_of_any_hashable_type_are_named_by_their_str_everywhere(tmp_path):
    frame = make_frame(200, 3).set_axis([0, ("a", 1), 2.5], axis=1)
    forecaster = Forecaster(6, 24, **FAST).fit(frame, target=[0, ("a", 1)])
    assert forecaster.targets_ == ["0", "('a', 1)"] and forecaster.columns_ == ["0", "('a', 1)", "2.5"]
    assert list(forecaster.predict(frame).columns) == ["0", "('a', 1)"]
    as_text = frame.set_axis(["0", "('a', 1)", "2.5"], axis=1)  # the same columns, already named by their str
    pd.testing.assert_frame_equal(forecaster.predict(as_text), forecaster.predict(frame))
    loaded = Forecaster.load(forecaster.save(tmp_path / "model"))
    pd.testing.assert_frame_equal(loaded.predict(frame), forecaster.predict(frame))
    assert list(forecaster.backtest(frame, start=-10).summary().index) == ["0", "('a', 1)", "overall"]


def test_an_integer_label_zero_is_a_target_not_the_default():
    frame = make_frame(200, 2).set_axis([0, 1], axis=1)
    assert Forecaster(6, 24, **FAST).fit(frame, target=0).targets_ == ["0"]


def test_labels_whose_str_collide_are_refused_naming_them():
    frame = make_frame(200, 2).set_axis([1, "1"], axis=1)
    with pytest.raises(DataError, match=r"columns 1, '1' that all read as '1'"):
        Forecaster(6, 24, **FAST).fit(frame)


def test_the_cli_keeps_the_utc_offset_of_a_csv_through_fit_and_predict(capsys, tmp_path):
    frame = make_frame(200, 2)
    frame.index = frame.index.tz_localize("UTC")
    frame.to_csv(tmp_path / "data.csv")  # dates written as 2020-01-01 00:00:00+00:00
    fit_args = ["fit", "--csv", tmp_path / "data.csv", "--horizon", 6, "--seq-len", 24, "--epochs", 1, "--out", tmp_path / "m"]
    assert run_cli(capsys, *fit_args)[0] == 0
    assert run_cli(capsys, "predict", "--model", tmp_path / "m", "--csv", tmp_path / "data.csv", "--out", tmp_path / "p.csv")[0] == 0
    forecast = pd.read_csv(tmp_path / "p.csv")
    assert list(forecast["date"]) == [f"2020-01-09 {h:02d}:00:00+00:00" for h in range(8, 14)]  # row 200 is day 8, 08:00
