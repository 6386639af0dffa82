"""Forecasting modes and covariates: target-only loss, no leakage of past covariates, calendar features."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from samformer import DataError, SAMformer
from samformer.cli.main import main
from samformer.data.channels import ChannelSpec, calendar_features
from samformer.data.loading import load_dataset_with_roles
from samformer.data.series import ChannelRoles, Windows, split_frame
from samformer.metrics import mse

from .conftest import make_frame

L, H = 12, 4


def test_target_only_loss_by_hand():
    series = torch.arange(60, dtype=torch.float32).reshape(20, 3) / 10  # value = (3·row + channel) / 10
    w = Windows(series, L, H, roles=ChannelRoles(targets=(1,)))
    x, y = w.batch(torch.tensor([0, 2]))
    assert x.shape == (2, 3, L) and y.shape == (2, 1, H)
    torch.testing.assert_close(y[1, 0], torch.tensor([43.0, 46, 49, 52]) / 10)  # rows 14..17, channel 1
    torch.manual_seed(0)
    full = SAMformer(3, L, H)
    only = SAMformer(3, L, H, target_channels=[1])
    only.load_state_dict(full.state_dict())
    pred = only.forward_channels_first(x)
    assert pred.shape == (2, 1, H)
    torch.testing.assert_close(pred, full.forward_channels_first(x)[:, [1]])
    hand = sum((float(pred[b, 0, h]) - float(y[b, 0, h])) ** 2 for b in range(2) for h in range(H)) / (2 * H)
    assert mse(pred, y).item() == pytest.approx(hand, rel=1e-6)


def test_past_covariates_never_leak_and_future_covariates_are_used():
    torch.manual_seed(0)
    series = torch.randn(40, 3)  # channel 0 target, 1 past covariate, 2 known-future covariate
    roles = ChannelRoles(targets=(0,), future=(2,))
    model = SAMformer(3, L, H, target_channels=[0]).eval()
    origin = 10  # window 10: inputs rows 10..21, forecast rows 22..25

    def forecast(s):
        x, _ = Windows(s, L, H, roles=roles).batch(torch.tensor([origin]))
        return model.forward_channels_first(x)

    base = forecast(series)
    changed = series.clone()
    changed[origin + L :, 1] += 100.0  # the past covariate after the origin
    changed[origin + L :, 0] += 100.0  # and the target itself after the origin
    torch.testing.assert_close(forecast(changed), base, rtol=0, atol=0)
    known = series.clone()
    known[origin + L + 1, 2] += 5.0  # a known-future value inside the horizon
    assert not torch.allclose(forecast(known), base)
    beyond = series.clone()
    beyond[origin + L + H :, 2] += 5.0  # known-future values past the horizon's end are not used
    torch.testing.assert_close(forecast(beyond), base, rtol=0, atol=0)


def test_modes_select_columns_and_targets():
    frame = make_frame(100, 4)  # c0..c3
    s_frame, s_roles = ChannelSpec("S").apply(frame)
    assert list(s_frame.columns) == ["c3"] and s_roles.targets is None
    ms_frame, ms_roles = ChannelSpec("MS").apply(frame)
    assert list(ms_frame.columns) == ["c0", "c1", "c2", "c3"] and ms_roles.targets == (3,)
    m_frame, m_roles = ChannelSpec("M", past_covariates=("c1",), future_covariates=("c0",)).apply(frame)
    assert list(m_frame.columns) == ["c1", "c2", "c3", "c0"]
    assert m_roles.targets == (1, 2) and m_roles.future == (3,)
    assert ChannelSpec().apply(frame)[1] == ChannelRoles()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ChannelSpec("MS", targets=("nope",)), "nope.*not in the data"),
        (ChannelSpec("MS", targets=("c1",), past_covariates=("c1",)), "not several"),
        (ChannelSpec("MS", past_covariates=("c3",)), "also named as covariates"),
    ],
)
def test_bad_channel_specs_are_refused(spec, message):
    with pytest.raises(DataError, match=message):
        spec.apply(make_frame(50, 4))


def test_unknown_mode_is_refused():
    with pytest.raises(DataError, match="unknown mode 'X'"):
        ChannelSpec("X")


def test_calendar_features_by_hand():
    index = pd.date_range("2021-01-04 06:00", periods=48, freq="h")  # a Monday
    cal = calendar_features(index)
    assert cal.loc[index[0], "cal_hour_sin"] == pytest.approx(1.0)  # sin(2π·6/24)
    assert cal.loc[index[0], "cal_weekday_cos"] == pytest.approx(1.0)  # Monday = 0
    assert cal.loc[index[0], "cal_yearday_sin"] == pytest.approx(math.sin(2 * math.pi * 3 / 365.25))
    daily = calendar_features(pd.date_range("2021-01-01", periods=30, freq="D"))
    assert not any(c.startswith("cal_hour") for c in daily.columns)  # constant over daily data


def test_default_spec_leaves_mode_m_unchanged(tmp_path):
    path = tmp_path / "s.csv"
    make_frame(400, 3).to_csv(path)
    plain = split_frame(make_frame(400, 3), 48, 12)
    with_roles = load_dataset_with_roles(path, ChannelSpec(), 48, 12)
    assert with_roles.roles == ChannelRoles()
    torch.testing.assert_close(with_roles.train, plain.train)


def test_cli_ms_mode_with_calendar(tmp_path, capsys):
    path = tmp_path / "s.csv"
    make_frame(600, 3).to_csv(path)
    argv = ["train", "--dataset", str(path), "--horizon", "12", "--seq-len", "48", "--epochs", "1", "--quiet"]
    assert main([*argv, "--mode", "MS", "--target", "c1", "--calendar", "--out", str(tmp_path / "o")]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["channels"]["targets"] == ["c1"] and "cal_hour_sin" in summary["channels"]["columns"]
    assert np.isfinite(summary["test_mse"])
    assert main([*argv, "--mode", "MS", "--target", "zz", "--out", str(tmp_path / "p")]) == 2
    assert "zz" in capsys.readouterr().err


def test_benchmark_files_with_irregular_timestamps_load_in_every_mode(data_dir):
    # weather.csv repeats one timestamp and skips a few: benchmarks are cut by row, in every mode.
    from samformer.data.loading import load_dataset

    spec = ChannelSpec(mode="S", targets=("T (degC)",))
    data = load_dataset_with_roles("weather", spec, seq_len=96, horizon=24, data_dir=data_dir)
    full = load_dataset("weather", seq_len=96, horizon=24, data_dir=data_dir)
    assert data.columns == ["T (degC)"] and data.borders == full.borders
    column = full.columns.index("T (degC)")
    torch.testing.assert_close(data.train[:, 0], full.train[:, column])
