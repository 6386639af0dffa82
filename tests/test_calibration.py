"""Calibrated intervals: conformal offsets by hand, their application, and the coverage they deliver."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from samformer import Forecaster
from samformer.nn.quantile import apply_offsets, calibrate, conformal_offsets, step_scale


def test_conformal_offsets_by_hand():
    # One channel, interval [0, 1] at every step, levels (0.25, 0.5, 0.75): nominal coverage 0.5.
    # Scores max(lo - y, y - hi) for y = -1, 0.5, 2, 3 (and one unobserved): 1, -0.5, 1, 2.
    # Sorted -0.5, 1, 1, 2; rank ceil((4 + 1) * 0.5) = 3 -> delta = 1.
    y = np.array([-1.0, 0.5, 2.0, 3.0, np.nan]).reshape(1, 5, 1)  # (N, H, D)
    forecasts = np.stack([np.zeros((1, 5, 1)), np.full((1, 5, 1), 0.5), np.ones((1, 5, 1))], axis=-1)  # (N, H, D, Q)
    offsets = conformal_offsets(forecasts, y, (0.25, 0.5, 0.75))
    np.testing.assert_array_equal(offsets, [[-1.0, 0.0, 1.0]])
    # an interval that already covers too much is narrowed: y all at 0.5 gives scores -0.5 -> delta -0.5
    offsets = conformal_offsets(forecasts, np.full((1, 5, 1), 0.5), (0.25, 0.5, 0.75))
    np.testing.assert_array_equal(offsets, [[0.5, 0.0, -0.5]])


def test_apply_offsets_keeps_the_median_and_the_order():
    forecasts = torch.tensor([[1.0, 1.5, 2.0, 2.5, 3.0]])  # (D=1, Q=5), median at index 2
    wider = apply_offsets(forecasts, torch.tensor([[-1.0, -0.5, 0.0, 0.5, 1.0]]), median=2)
    torch.testing.assert_close(wider, torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0]]))
    # narrowed past the median: the ends collapse onto it, the levels do not cross
    narrowed = apply_offsets(forecasts, torch.tensor([[1.5, 0.2, 0.0, -0.2, -1.5]]), median=2)
    torch.testing.assert_close(narrowed, torch.tensor([[1.7, 2.0, 2.0, 2.0, 2.3]]))


def _noise(n: int, seed: int, start: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.standard_normal(n), "b": 3 + 2 * rng.standard_normal(n)}, index=pd.date_range(start, periods=n, freq="h"))


@pytest.fixture(scope="module")
def undertrained() -> tuple[Forecaster, Forecaster, pd.DataFrame]:
    """The same barely trained quantile network, raw and calibrated, on i.i.d. noise."""
    frame = _noise(6000, 0, "2020")
    options = {"epochs": 1, "batch_size": 256, "lr": 1e-4, "sam": False, "progress": False, "seed": 0}
    model_options = {"revin": False, "attention": False}
    raw = Forecaster(2, 8, quantiles=(0.1, 0.9), calibrate=False, model_options=model_options, **options).fit(frame)
    calibrated = Forecaster(2, 8, quantiles=(0.1, 0.9), model_options=model_options, **options).fit(frame)
    return raw, calibrated, frame


def _coverage(model: Forecaster, frame: pd.DataFrame, start: int | None = None) -> pd.Series:
    bt = model.backtest(frame, start=start)
    lo = bt.forecasts[["a_q0.1", "b_q0.1"]].to_numpy()
    hi = bt.forecasts[["a_q0.9", "b_q0.9"]].to_numpy()
    y = bt.actuals[["a", "b"]].to_numpy()
    return pd.Series(((lo <= y) & (y <= hi)).mean(axis=0), index=["a", "b"])


def test_calibration_covers_the_nominal_share_of_the_validation_rows(undertrained):
    raw, calibrated, frame = undertrained
    np.testing.assert_array_equal(raw.predict()[["a", "b"]], calibrated.predict()[["a", "b"]])  # medians untouched
    train_end = len(frame) - math.ceil(0.2 * len(frame))
    n = (len(frame) - train_end - 2 + 1) * 2  # validation windows × steps, per channel
    expected = math.ceil((n + 1) * 0.8) / n
    coverage = _coverage(calibrated, frame, start=train_end)  # exactly the validation windows
    assert ((coverage - expected).abs() <= 2 / n).all(), (coverage, expected)


def test_calibrated_intervals_hold_their_coverage_on_new_data(undertrained):
    raw, calibrated, _ = undertrained
    fresh = _noise(3000, 1, "2021")
    raw_coverage, coverage = _coverage(raw, fresh), _coverage(calibrated, fresh)
    assert ((raw_coverage - 0.8).abs() > 0.1).any(), raw_coverage  # the raw heads are far off: a real test
    assert ((coverage - 0.8).abs() < 0.04).all(), coverage


def test_calibration_survives_save_and_load(undertrained, tmp_path):
    _, calibrated, frame = undertrained
    calibrated.save(tmp_path / "m")
    loaded = Forecaster.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.interval_offsets_, calibrated.interval_offsets_)
    pd.testing.assert_frame_equal(loaded.predict(frame), calibrated.predict(frame))


# ------------------------------------------------------- per-step calibration, floor, few windows
def test_step_scale_is_the_rmse_of_the_median_at_each_step_never_below_an_earlier_one():
    median = np.zeros((2, 4, 1))  # (N, H, D)
    actuals = np.array([[1.0, 3.0, np.nan, 1.0], [1.0, 1.0, 5.0, 1.0]])[..., None]
    # step 1: errors 1, 1 -> 1; step 2: 3, 1 -> sqrt(5); step 3: 5 -> 5; step 4: 1, 1 -> 1, held at 5
    np.testing.assert_allclose(step_scale(median, actuals)[:, 0], [1.0, math.sqrt(5.0), 5.0, 5.0])


def test_intervals_cover_their_share_at_every_step_when_the_noise_grows_over_the_horizon():
    # iid Gaussian noise of standard deviation 1, 2, 3, 4 at steps 1-4 around a zero median; zero-width raw bands,
    # so the calibration alone sets the width. 80 % bands must cover about 80 % at each step on fresh draws
    # (400 windows: the coverage's sampling error is about 0.02; a pooled scale gave 0.90, 0.81, 0.76, 0.74).
    rng = np.random.default_rng(0)
    sigma = np.array([1.0, 2.0, 3.0, 4.0])[None, :, None]
    calibration = calibrate(np.zeros((400, 4, 1, 3)), rng.normal(size=(400, 4, 1)) * sigma, (0.1, 0.5, 0.9))
    fresh = rng.normal(size=(20_000, 4, 1)) * sigma
    bands = apply_offsets(torch.zeros(1, 4, 1, 3, dtype=torch.float64), torch.from_numpy(calibration.offsets), 1).numpy()
    covered = (fresh >= bands[..., 0]) & (fresh <= bands[..., 2])  # (20000, 4, 1)
    np.testing.assert_allclose(covered.mean(axis=0)[:, 0], 0.8, atol=0.05)


def test_calibrate_by_hand_pools_the_steps_with_their_scale():
    # median 0 at every step; errors ±1 at step 1 and ±3 at step 2 of 9 windows: the step scale is
    # 1 then 3. Interval [-s_h/2, s_h/2] everywhere; scores |y| − s_h/2 divided by s_h.
    n = 9
    y = np.stack([np.tile([1.0, -1.0, 1.0], 3), np.tile([3.0, -3.0, 3.0], 3)], axis=1)[..., None]  # (9, 2, 1)
    scale = np.array([1.0, 3.0])
    half = scale[None, :, None] / 2
    forecasts = np.stack([-half.repeat(n, 0), np.zeros((n, 2, 1)), half.repeat(n, 0)], axis=-1)  # (N, H, D, Q)
    result = calibrate(forecasts, y, (0.1, 0.5, 0.9))
    scores = np.sort(np.concatenate([np.full(n, 1.0 - 0.5), np.full(n, 3 / 3 - 0.5)]))  # pooled, in units of s_h
    delta = scores[math.ceil((2 * n + 1) * 0.8) - 1]
    np.testing.assert_allclose(result.offsets[:, 0, 2], delta * scale)
    np.testing.assert_allclose(result.offsets[:, 0, 0], -delta * scale)
    np.testing.assert_array_equal(result.offsets[..., 1], 0.0)
    # floor: a quarter of the residual band's half-width (the 80 % conformal quantile of |y| / s_h), times s_h
    residual = np.sort(np.concatenate([np.full(n, 1.0), np.full(n, 3 / 3)]))[math.ceil((2 * n + 1) * 0.8) - 1]
    np.testing.assert_allclose(result.floor[:, 0, 2], 0.25 * residual * scale)


def test_a_collapsed_band_keeps_a_floor_width():
    forecasts = torch.zeros(4, 3, 1, 3)  # (B, H, D, Q): every quantile on the median
    floor = torch.tensor([0.5, 1.0, 2.0])[:, None, None] * torch.tensor([1.0, 0.0, 1.0])  # (H, D, Q)
    out = apply_offsets(forecasts, torch.zeros(3, 1, 3), median=1, floor=floor)
    torch.testing.assert_close(out[0, :, 0, 2] - out[0, :, 0, 0], torch.tensor([1.0, 2.0, 4.0]))


def test_too_few_validation_windows_warn_in_one_line():
    forecasts = np.zeros((5, 2, 1, 3))
    with pytest.warns(UserWarning, match=r"only 5 validation windows to calibrate the 80% intervals, fewer than 10") as record:
        calibrate(forecasts, np.ones((5, 2, 1)), (0.1, 0.5, 0.9))
    assert all("\n" not in str(w.message) for w in record)


def test_short_noisy_series_get_open_bands_that_cover_their_share():
    # known noise: y = sin + N(0, 0.5²); 240 rows in all, as short as the macro data; a quantile model fitted
    # with the defaults (look-back chosen) must never give a zero-width band, and cover ≈ 80 % of fresh rows
    rng = np.random.default_rng(3)
    t = np.arange(1240)
    y = np.sin(2 * np.pi * t / 12) + 0.5 * rng.standard_normal(len(t))
    frame = pd.DataFrame({"y": y}, index=pd.date_range("1900-01", periods=len(t), freq="MS"))
    model = Forecaster(4, quantiles=(0.1, 0.9), epochs=5, progress=False).fit(frame.iloc[:240])
    bt = model.backtest(frame.iloc[240 - model.seq_len_ :])  # 1000 fresh origins
    lo, hi, actual = bt.forecasts["y_q0.1"], bt.forecasts["y_q0.9"], bt.actuals["y"]
    assert (hi - lo > 0).all()
    coverage = ((lo <= actual) & (actual <= hi)).mean()
    assert 0.72 <= coverage <= 0.88, coverage
    assert model.interval_offsets_.shape == (4, 1, 3) and (model.schema_.interval_floor[..., [0, 2]] > 0).all()
