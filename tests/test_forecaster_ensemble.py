"""`Forecaster(ensemble=k)`: k seeds trained in one stacked pass, forecast = their mean, saved and exported as one model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from samformer import Forecaster, ModelFileError
from samformer.errors import ConfigError
from samformer.forecasting.modelfile import load_model
from samformer.nn.quantile import calibrate

from .conftest import make_frame

pytestmark = pytest.mark.filterwarnings("ignore:the model does not beat:UserWarning")

# Two epochs with patience 1 and no restarts: every network trains its own schedule; a fixed seq_len skips the search.
# SAMformer on every target: these tests compare the ensemble with its networks (stand-ins: tests/test_stand_ins.py).
OPTIONS = {"epochs": 2, "batch_size": 32, "progress": False, "fallback": False}
HORIZON, SEQ_LEN, K, SEED = 6, 24, 3, 4


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame(200, 2)


@pytest.fixture(scope="module")
def ensemble(frame) -> Forecaster:
    return Forecaster(HORIZON, SEQ_LEN, ensemble=K, seed=SEED, **OPTIONS).fit(frame)


@pytest.fixture(scope="module")
def singles(frame) -> list[Forecaster]:
    """The k forecasters the ensemble stands for: seeds SEED..SEED+K-1, each fitted alone."""
    return [Forecaster(HORIZON, SEQ_LEN, seed=SEED + j, **OPTIONS).fit(frame) for j in range(K)]


def windows(frame: pd.DataFrame) -> np.ndarray:
    return np.stack([frame.to_numpy()[i : i + SEQ_LEN] for i in (0, 50, 176)])  # (3, L, D)


def test_ensemble_forecast_is_the_mean_of_the_separately_fitted_forecasters(ensemble, singles, frame):
    expected = np.mean([single.predict().to_numpy() for single in singles], axis=0)
    np.testing.assert_allclose(ensemble.predict().to_numpy(), expected, atol=1e-4)
    expected_windows = np.mean([single.forecast_windows(windows(frame)) for single in singles], axis=0)
    np.testing.assert_allclose(ensemble.forecast_windows(windows(frame)), expected_windows, atol=1e-4)
    first = singles[0].history_  # the ensemble's history is its first network's
    assert [r["val_mse"] for r in ensemble.history_] == pytest.approx([r["val_mse"] for r in first], rel=1e-4)


def test_backtest_and_validation_score_the_mean_forecast(ensemble, singles, frame):
    backtest = ensemble.backtest(frame, start=150, stride=10)
    expected = np.mean([s.backtest(frame, start=150, stride=10).forecasts.to_numpy() for s in singles], axis=0)
    np.testing.assert_allclose(backtest.forecasts.to_numpy(), expected, atol=1e-4)
    errors = backtest.forecasts.to_numpy() - backtest.actuals.to_numpy()  # (N·H, D)
    np.testing.assert_allclose(backtest.metrics["mse"].groupby(level="channel").mean(), (errors**2).mean(axis=0), rtol=1e-9)
    assert list(ensemble.validation_.index) == ["c0", "c1", "overall"]


def test_attention_is_the_mean_of_the_networks_attention(ensemble, singles, frame):
    expected = np.mean([s.attention(frame).to_numpy() for s in singles], axis=0)
    np.testing.assert_allclose(ensemble.attention(frame).to_numpy(), expected, atol=1e-5)


def test_save_and_load_round_trip_is_identical(ensemble, frame, tmp_path):
    ensemble.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["ensemble"] == K and config["forecaster"]["ensemble"] == K
    assert config["tensors"]["forecaster.weight"] == [K, HORIZON, SEQ_LEN]  # k networks in one file
    loaded = Forecaster.load(tmp_path / "m")
    assert loaded.ensemble == K
    pd.testing.assert_frame_equal(loaded.predict(frame), ensemble.predict(frame))
    with pytest.raises(ModelFileError, match="ensemble of 3 models"):
        load_model(tmp_path / "m")  # the single-network loader names what it found


def test_a_tampered_ensemble_is_refused(ensemble, tmp_path):
    from samformer.forecasting.modelfile import config_sha256

    ensemble.save(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    config["ensemble"] = K - 1  # a consistent rewrite (checksum recomputed) that no longer matches the weights
    config["config_sha256"] = config_sha256(config)
    path.write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="does not match its config"):
        Forecaster.load(tmp_path / "m")
    config["ensemble"] = 0
    config["config_sha256"] = config_sha256(config)
    path.write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="ensemble=0"):
        Forecaster.load(tmp_path / "m")


def test_ensemble_of_one_is_todays_forecaster(frame, singles, tmp_path):
    one = Forecaster(HORIZON, SEQ_LEN, ensemble=1, seed=SEED, **OPTIONS).fit(frame)
    pd.testing.assert_frame_equal(one.predict(), singles[0].predict(), check_exact=True)
    one.save(tmp_path / "one")
    singles[0].save(tmp_path / "single")
    assert (tmp_path / "one" / "model.safetensors").read_bytes() == (tmp_path / "single" / "model.safetensors").read_bytes()
    configs = [json.loads((tmp_path / name / "config.json").read_text()) for name in ("one", "single")]
    for config in configs:  # the epochs' wall times and the checksums covering them differ from run to run
        config.pop("config_sha256")
        for record in config["forecaster"]["history"]:
            record.pop("seconds")
    assert configs[0] == configs[1] and "ensemble" not in configs[0]


def test_onnx_export_of_the_ensemble_matches_pytorch(ensemble, frame, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    path = ensemble.export_onnx(tmp_path / "m.onnx")
    (onnx_out,) = ort.InferenceSession(str(path)).run(None, {"x": windows(frame).astype(np.float32)})
    torch_out = ensemble.forecast_windows(windows(frame))
    assert onnx_out.shape == torch_out.shape
    assert np.abs(onnx_out - torch_out).max() < 1e-5


def test_quantiles_calibrate_the_mean_forecast_on_its_residuals(frame, singles, tmp_path):
    levels = (0.1, 0.5, 0.9)
    model = Forecaster(HORIZON, SEQ_LEN, ensemble=K, seed=SEED, quantiles=(0.1, 0.9), **OPTIONS).fit(frame)
    forecast = model.predict()
    expected_median = np.mean([s.predict().to_numpy() for s in singles], axis=0)  # point networks, as without quantiles
    np.testing.assert_allclose(forecast[["c0", "c1"]].to_numpy(), expected_median, atol=1e-4)
    # the same calibration computed by hand from the mean forecast's validation residuals
    val_frame = frame.iloc[-40 - SEQ_LEN :]
    backtest = model.backtest(val_frame, start=SEQ_LEN)
    point = backtest.forecasts[["c0", "c1"]].to_numpy().reshape(-1, HORIZON, 2)  # (N, H, D)
    actual = backtest.actuals.to_numpy().reshape(-1, HORIZON, 2)
    hand = calibrate(np.repeat(point[..., None], 3, axis=-1), actual, levels)
    np.testing.assert_allclose(model.interval_offsets_, hand.offsets, rtol=1e-4, atol=1e-6)
    lower, upper = forecast["c0_q0.1"], forecast["c0_q0.9"]
    assert (lower < forecast["c0"]).all() and (forecast["c0"] < upper).all()  # the floor keeps every band open
    model.save(tmp_path / "q")
    pd.testing.assert_frame_equal(Forecaster.load(tmp_path / "q").predict(frame), model.predict(frame))
    ort = pytest.importorskip("onnxruntime")
    path = model.export_onnx(tmp_path / "q.onnx")
    (onnx_out,) = ort.InferenceSession(str(path)).run(None, {"x": windows(frame).astype(np.float32)})
    assert np.abs(onnx_out - model.forecast_windows(windows(frame))).max() < 1e-5


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"ensemble": 0}, "ensemble must be a positive integer"),
        ({"ensemble": 2.0}, "ensemble must be a positive integer"),
        ({"ensemble": True}, "ensemble must be a positive integer"),
        ({"ensemble": 2, "model_options": {"sigma_reparam": True}}, "ensemble=2 cannot be combined with model_options sigma_reparam"),
        ({"ensemble": 2, "quantiles": (0.1, 0.9), "calibrate": False}, "ensemble=2 cannot be combined with calibrate=False"),
    ],
)
def test_bad_ensembles_are_refused_in_one_line(arguments, message):
    with pytest.raises(ConfigError, match=message) as info:
        Forecaster(HORIZON, SEQ_LEN, **arguments)
    assert "\n" not in str(info.value)


def test_the_lookback_search_stays_single_seed(frame):
    model = Forecaster(HORIZON, ensemble=2, seed=SEED, **OPTIONS).fit(frame)
    single = Forecaster(HORIZON, seed=SEED, **OPTIONS).fit(frame)
    pd.testing.assert_frame_equal(model.selection_, single.selection_)
    assert model.seq_len_ == single.seq_len_
    assert torch.is_tensor(model.net_.stack.flat) and len(model.net_.stack) == 2


def test_samformer_fit_ensemble_saves_one_model_that_predicts(capsys, frame, tmp_path):
    from samformer.cli.main import main

    frame.to_csv(tmp_path / "train.csv")
    fast = ["--epochs", "1", "--batch-size", "32", "--seq-len", str(SEQ_LEN), "--quiet"]
    fit = ["fit", "--csv", str(tmp_path / "train.csv"), "--horizon", "6"]
    assert main([*fit, "--out", str(tmp_path / "m"), "--ensemble", "2", *fast]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["ensemble"] == 2
    assert Forecaster.load(tmp_path / "m").ensemble == 2
    args = ["predict", "--model", str(tmp_path / "m"), "--csv", str(tmp_path / "train.csv"), "--out", str(tmp_path / "f.csv")]
    assert main(args) == 0
    assert len(pd.read_csv(tmp_path / "f.csv")) == HORIZON
    assert main([*fit, "--out", str(tmp_path / "o"), "--ensemble", "0"]) == 2
    assert "--ensemble" in capsys.readouterr().err


def test_covariates_and_missing_values_reach_every_network_as_alone():
    frame = make_frame(220, 3)
    frame.iloc[40:45, 1] = np.nan  # masked out of the loss and of RevIN's statistics
    future = make_frame(226, 3).iloc[-HORIZON:][["c2"]]
    roles = {"target": "c0", "future_covariates": ["c2"]}
    ensemble = Forecaster(HORIZON, SEQ_LEN, ensemble=2, seed=SEED, **OPTIONS).fit(frame, **roles)
    singles = [Forecaster(HORIZON, SEQ_LEN, seed=SEED + j, **OPTIONS).fit(frame, **roles) for j in range(2)]
    expected = np.mean([s.predict(future_df=future).to_numpy() for s in singles], axis=0)
    np.testing.assert_allclose(ensemble.predict(future_df=future).to_numpy(), expected, atol=1e-4)
