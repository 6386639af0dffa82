"""Splits, scaling and windows against the literature's protocol (REFERENCE.md / data README)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from samformer import DataError, load_dataset
from samformer.data.series import Windows, read_series_csv, split_borders, split_frame, validate_frame

from .conftest import make_frame


def test_etth1_window_counts_match_the_paper(data_dir):
    data = load_dataset("ETTh1", 512, 96, data_dir=data_dir)
    assert [len(data.windows(s)) for s in ("train", "val", "test")] == [8033, 2785, 2785]
    assert data.borders == {"train": (0, 8640), "val": (8640 - 512, 11520), "test": (11520 - 512, 14400)}


def test_etth1_is_scaled_with_training_rows_only(data_dir):
    raw = pd.read_csv(data_dir / "ETTh1.csv").iloc[:, 1:].to_numpy()
    data = load_dataset("ETTh1", 512, 96, data_dir=data_dir)
    np.testing.assert_allclose(data.scaler.mean, raw[:8640].mean(0))
    np.testing.assert_allclose(data.scaler.std, raw[:8640].std(0))
    # the train split is z-scored exactly; row 11520 of the raw file is row 512 of the test split
    np.testing.assert_allclose(data.train.mean(0).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(data.test[512].numpy(), (raw[11520] - raw[:8640].mean(0)) / raw[:8640].std(0), rtol=1e-5)


def test_changing_a_test_value_leaves_the_scaling_unchanged():
    frame = make_frame(1000)
    before = split_frame(frame, 48, 12)
    frame.iloc[950, 1] = 1e6  # inside the test rows
    after = split_frame(frame, 48, 12)
    np.testing.assert_array_equal(before.scaler.mean, after.scaler.mean)
    np.testing.assert_array_equal(before.scaler.std, after.scaler.std)
    frame.iloc[10, 1] = 1e6  # inside the training rows
    assert not np.array_equal(split_frame(frame, 48, 12).scaler.mean, before.scaler.mean)


@pytest.mark.parametrize(
    ("kind", "n", "expected"),
    [
        ("ett_minute", 69680, {"train": (0, 34560), "val": (34560 - 96, 46080), "test": (46080 - 96, 57600)}),
        ("ratio", 7588, {"train": (0, 5311), "val": (5311 - 96, 6071), "test": (6071 - 96, 7588)}),  # exchange_rate
        ("ratio", 52696, {"train": (0, 36887), "val": (36887 - 96, 42157), "test": (42157 - 96, 52696)}),  # weather
    ],
)
def test_split_borders_follow_the_literature(kind, n, expected):
    assert split_borders(kind, n, 96) == expected


def test_a_window_target_follows_its_input():
    series = torch.arange(40, dtype=torch.float32).reshape(20, 2)  # value = 2·row + channel
    w = Windows(series, seq_len=5, horizon=3)
    assert len(w) == 20 - 5 - 3 + 1
    x, y = w.batch(torch.tensor([0, 7]))
    assert x.shape == (2, 2, 5) and y.shape == (2, 2, 3)
    torch.testing.assert_close(x[1, 0], torch.tensor([14.0, 16, 18, 20, 22]))  # rows 7..11, channel 0
    torch.testing.assert_close(y[1, 1], torch.tensor([25.0, 27, 29]))  # rows 12..14, channel 1
    assert w._view.untyped_storage().nbytes() == series.numel() * 4, "windows must be views of one copy of the series"


def test_a_window_mask_is_gathered_with_its_window_by_index_or_slice():
    series = torch.arange(40, dtype=torch.float32).reshape(20, 2)  # value = 2·row + channel
    w = Windows(series, seq_len=5, horizon=3, mask=series % 3 != 0)  # observed unless the value divides by 3
    index = torch.tensor([7, 2, 9])  # unordered, as a shuffled batch
    (x, y), (x_mask, y_mask) = w.batch(index), w.batch_mask(index)
    assert torch.equal(x_mask, x % 3 != 0) and torch.equal(y_mask, y % 3 != 0)
    torch.testing.assert_close(y[2, 0], torch.tensor([28.0, 30, 32]))  # window 9: rows 14..16, channel 0
    for by_slice, by_index in zip(w.batch(slice(2, 5)), w.batch(torch.arange(2, 5)), strict=True):
        assert torch.equal(by_slice, by_index)


def test_exchange_rate_dates_parse_and_weather_gz_reads(data_dir):
    frame = read_series_csv(data_dir / "exchange_rate.csv")
    assert frame.shape == (7588, 8) and frame.index[0] == pd.Timestamp("1990-01-01")
    if (data_dir / "weather.csv.gz").exists():
        assert read_series_csv(data_dir / "weather.csv.gz", check_time=False).shape == (52696, 21)


def test_constant_channel_keeps_unit_scale():
    frame = make_frame(600)
    frame["c1"] = 5.0
    data = split_frame(frame, 48, 12)
    assert data.scaler.std[1] == 1.0 and torch.isfinite(data.train).all()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("date,a,b\n", "no data rows"),
        ("date;a;b\n2020-01-01;1;2\n2020-01-02;3;4\n", "delimiter"),
        ("date,a,b\n2020-01-01,1,x\n2020-01-02,3,4\n", "column.*b.*not numeric"),
        ("date,a,b\n2020-01-01,1,\n2020-01-02,3,4\n", "missing or infinite.*b"),
        ("date,a,b\n2020-01-01,1,inf\n2020-01-02,3,4\n", "missing or infinite"),
        ("date\n2020-01-01\n2020-01-02\n", "no channels"),
        ("date,a\nnot-a-date,1\nalso-not,2\n", "does not parse as dates"),
    ],
)
def test_malformed_csvs_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_series_csv(path)


def test_too_short_series_names_the_fix():
    with pytest.raises(DataError, match="too short.*seq_len=512"):
        split_frame(make_frame(300), 512, 96)


def test_validate_frame_accepts_a_date_column():
    frame = make_frame(50).reset_index()
    assert isinstance(validate_frame(frame).index, pd.DatetimeIndex)


def test_a_date_column_is_found_by_its_content_whatever_its_name():
    frame = pd.DataFrame({"day": ["2020-01-06", "2020-01-07", "2020-01-08"], "usd_gbp": [1.0, 2.0, 3.0]})
    wide = validate_frame(frame)
    assert list(wide.columns) == ["usd_gbp"] and wide.index[0] == pd.Timestamp("2020-01-06")
    with pytest.raises(DataError, match="not numeric"):
        validate_frame(pd.DataFrame({"city": ["Paris", "Oslo", "Rome"], "load": [1.0, 2.0, 3.0]}))
