"""Input as users have it: ragged long panels, unused text columns, long-looking CSVs, long-format plots."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from samformer import Forecaster
from samformer.cli.main import main
from samformer.errors import DataError

from .conftest import make_frame

# These tests check the network's plumbing, so SAMformer forecasts every target; tests/test_stand_ins.py checks the default's
# statistical stand-ins (fallback=True).
FAST = {"epochs": 1, "batch_size": 64, "progress": False, "fallback": False}


def _long(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename_axis("ds").reset_index().melt(id_vars="ds", var_name="unique_id", value_name="y").dropna()


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_ragged_long_panel_is_masked_at_its_ends():
    wide = make_frame(400, 3)
    wide.iloc[:150, 1] = np.nan  # c1 starts late (longer than the look-back)
    wide.iloc[-30:, 2] = np.nan  # c2 ends early
    model = Forecaster(6, 24, **FAST).fit(_long(wide), val_size=60)
    assert model.layout_ == "long" and model.targets_ == ["c0", "c1", "c2"]
    assert np.isfinite(model.scaler_.mean).all()
    bt = model.backtest(wide.iloc[:-30], start=300)  # the panel up to where c2 ends
    assert np.isfinite(bt.summary()[["mse", "naive_mse"]].to_numpy()).all()
    with pytest.raises(DataError, match="channel 'c2' has no values"):
        model.predict(_long(wide))  # c2 has nothing in the last 24 rows: refused, not forecast from nothing


def test_a_gap_inside_a_series_is_still_limited_by_the_look_back():
    wide = make_frame(300, 2)
    wide.iloc[100:140, 1] = np.nan
    with pytest.raises(DataError, match="40 consecutive missing values"):
        Forecaster(6, 24, **FAST).fit(wide)


def test_unselected_text_columns_are_ignored_when_roles_are_given():
    frame = make_frame(300, 2).rename_axis("date").reset_index()
    frame["weather"] = np.where(frame["c0"] > 0, "sun", "rain")
    model = Forecaster(6, 24, **FAST).fit(frame, target=["c0", "c1"])
    assert model.targets_ == ["c0", "c1"] and "weather" in model.ignored_columns_
    assert list(model.predict(frame).columns) == ["c0", "c1"]
    assert len(model.backtest(frame, start=-20).forecasts) > 0
    with pytest.raises(DataError, match=r"column\(s\) weather are not numeric"):
        Forecaster(6, 24, **FAST).fit(frame)  # no roles: every column is a channel, so the text column is an error


def test_a_long_looking_csv_gets_the_renaming_hint(capsys, tmp_path):
    panel = _long(make_frame(100, 2)).rename(columns={"unique_id": "symbol", "ds": "date", "y": "price"})
    with pytest.raises(DataError, match=r"looks like a long panel \(one row per series and time: symbol, date, price\); rename"):
        Forecaster(6, 24, **FAST).fit(panel)
    panel.to_csv(tmp_path / "p.csv", index=False)
    code, _, err = run(capsys, "fit", "--csv", tmp_path / "p.csv", "--horizon", "6", "--out", tmp_path / "m", "--quiet")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "unique_id, ds, y" in err, err
    assert not (tmp_path / "m").exists()


def test_plot_forecast_draws_a_long_forecast_by_series():
    pytest.importorskip("matplotlib")
    from samformer.plots import plot_forecast

    long = _long(make_frame(300, 2))
    model = Forecaster(6, 24, quantiles=(0.1, 0.9), **FAST).fit(long)
    figure = plot_forecast(model.predict(long), history=long)
    labels = [ax.get_ylabel() for ax in figure.axes]
    assert labels == ["c0", "c1"]  # one panel per series, not unique_id / ds
    last_history = pd.Timestamp(make_frame(300, 2).index[-1])
    x = figure.axes[0].lines[-1].get_xdata()  # the forecast line, drawn against its dates
    assert pd.Timestamp(x[0]) == last_history + pd.Timedelta("1h")


def test_plot_forecast_cli_on_a_model_fitted_on_a_long_csv(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    _long(make_frame(300, 2)).to_csv(tmp_path / "long.csv", index=False)
    fit = ["fit", "--csv", tmp_path / "long.csv", "--horizon", "6", "--seq-len", "24", "--out", tmp_path / "m", "--quiet", "--epochs", "1"]
    assert run(capsys, *fit)[0] == 0
    for extra in ([], ["--holdout"]):
        out = tmp_path / f"f{len(extra)}.png"
        code, _, err = run(capsys, "plot", "forecast", "--model", tmp_path / "m", "--csv", tmp_path / "long.csv", "--out", out, *extra)
        assert code == 0 and out.stat().st_size > 0, err


def test_plots_without_matplotlib_say_how_to_install_it(capsys, tmp_path, monkeypatch):
    from samformer import plots

    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")] or ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)  # `import matplotlib...` now raises ImportError
    history = [{"epoch": 1, "train_loss": 1.0, "val_mse": 1.0}]
    for draw in (lambda: plots.plot_training(history), lambda: plots.plot_forecast(make_frame(6, 1))):
        with pytest.raises(ImportError, match=r"pip install 'samformer\[plot\]'"):
            draw()
    model = Forecaster(6, 24, **FAST).fit(make_frame(200, 1))
    model.save(tmp_path / "m")
    code, _, err = run(capsys, "plot", "training", "--model", tmp_path / "m", "--out", tmp_path / "t.png")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "samformer[plot]" in err, err


def test_a_series_that_starts_inside_the_validation_rows_is_refused():
    wide = make_frame(300, 2)
    wide.iloc[:270, 1] = np.nan  # c1 starts in the last 20 % (rows 240..299)
    with pytest.raises(DataError, match=r"channel 'c1' has no value before the validation part \(row 240\).*smaller val_size"):
        Forecaster(6, 24, **FAST).fit(wide)
