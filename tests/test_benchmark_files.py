"""Benchmark files checked against the published ones, and electricity/traffic in the Time-Series-Library layout.

Shapes are those of the shared data's README and the paper's reference (not read from the code);
splits of the 70/10/20 datasets follow num_train = int(0.7 N), num_test = int(0.2 N).
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from samformer import DataError, SAMformer, TrainConfig, fit
from samformer.data.benchmarks import BENCHMARKS
from samformer.data.loading import load_dataset, read_source, resolve_source
from samformer.training.fit import score_test

# rows x channels (after the date column), from /work/shared/data/README.md and REFERENCE.md
PUBLISHED_SHAPES = {
    "ETTh1": (17420, 7),
    "ETTh2": (17420, 7),
    "ETTm1": (69680, 7),
    "ETTm2": (69680, 7),
    "weather": (52696, 21),
    "exchange_rate": (7588, 8),
    "electricity": (26304, 321),
    "traffic": (17544, 862),
}


def tsl_columns(n_channels: int) -> list[str]:
    """Time-Series-Library channel names of electricity/traffic/exchange_rate: '0', '1', ..., and 'OT' last."""
    return [str(i) for i in range(n_channels - 1)] + ["OT"]


def write_tsl_csv(path: Path, n_rows: int, n_channels: int) -> Path:
    """A CSV in the Time-Series-Library layout (`date` first, then '0'..'N-2', 'OT'): hourly, a daily cycle per channel."""
    dates = pd.date_range("2016-07-01 02:00", periods=n_rows, freq="h").strftime("%Y-%m-%d %H:%M:%S")
    rows = [",".join(str((hour * 7 + j) % 10) for j in range(n_channels)) for hour in range(24)]
    with open(path, "w") as out:
        out.write("date," + ",".join(tsl_columns(n_channels)) + "\n")
        out.writelines(f"{date},{rows[i % 24]}\n" for i, date in enumerate(dates))
    return path


def copy_as(source: Path, directory: Path, name: str) -> Path:
    directory.mkdir(exist_ok=True)
    return Path(shutil.copy(source, directory / name))


def ratio_borders(n: int, seq_len: int) -> dict[str, tuple[int, int]]:
    num_train, num_test = int(0.7 * n), int(0.2 * n)
    return {"train": (0, num_train), "val": (num_train - seq_len, n - num_test), "test": (n - num_test - seq_len, n)}


def test_every_benchmark_spec_has_the_published_shape():
    assert {name: (spec.n_rows, spec.n_channels) for name, spec in BENCHMARKS.items()} == PUBLISHED_SHAPES
    for name in ("electricity", "traffic", "exchange_rate"):
        assert list(BENCHMARKS[name].columns) == tsl_columns(PUBLISHED_SHAPES[name][1])


@pytest.mark.parametrize("name", ["ETTh1", "ETTh2", "ETTm1", "ETTm2", "weather", "exchange_rate"])
def test_the_published_files_pass_their_checks(data_dir, name):
    frame, identity = read_source(resolve_source(name, data_dir, download=False))
    assert frame.shape == PUBLISHED_SHAPES[name]
    assert identity["sha256"] == BENCHMARKS[name].sha256


def test_a_truncated_file_under_a_benchmark_name_is_refused(data_dir, tmp_path):
    lines = (data_dir / "ETTh1.csv").read_text().splitlines(keepends=True)
    (tmp_path / "ETTh1.csv").write_text("".join(lines[:-100]))
    with pytest.raises(DataError, match=r"has 17320 data rows, the ETTh1 benchmark has 17420.*load the file by its path") as err:
        load_dataset("ETTh1", 96, 24, data_dir=tmp_path)
    assert "\n" not in str(err.value)


def test_a_renamed_column_under_a_benchmark_name_is_refused(data_dir, tmp_path):
    text = (data_dir / "ETTh2.csv").read_text()
    (tmp_path / "ETTh2.csv").write_text(text.replace("MUFL", "MUFL2", 1))
    with pytest.raises(DataError, match=r"channel column 3 named 'MUFL2', the ETTh2 benchmark's is 'MUFL'"):
        load_dataset("ETTh2", 96, 24, data_dir=tmp_path)
    (tmp_path / "ETTh2.csv").write_text(text.replace(",OT\n", "\n", 1))
    with pytest.raises(DataError, match=r"6 channel columns, the ETTh2 benchmark has 7"):
        load_dataset("ETTh2", 96, 24, data_dir=tmp_path)


def test_one_changed_value_under_a_benchmark_name_is_refused_but_loads_by_path(data_dir, tmp_path):
    lines = (data_dir / "ETTh1.csv").read_text().splitlines(keepends=True)
    date, first, rest = lines[500].split(",", 2)
    lines[500] = f"{date},{float(first) + 1:.3f},{rest}"  # same shape, other content
    (tmp_path / "ETTh1.csv").write_text("".join(lines))
    with pytest.raises(DataError, match=r"has the shape of ETTh1.csv but not its content \(SHA-256"):
        load_dataset("ETTh1", 96, 24, data_dir=tmp_path)
    own = load_dataset(tmp_path / "ETTh1.csv", 96, 24)  # by path: the user's own series, 70/10/20
    assert own.borders == ratio_borders(17420, 96)


def test_gzipped_and_lf_copies_of_the_published_files_are_accepted(data_dir, tmp_path):
    with open(data_dir / "exchange_rate.csv", "rb") as src, gzip.open(tmp_path / "exchange_rate.csv.gz", "wb") as dst:
        dst.write(src.read().replace(b"\r\n", b"\n"))  # the common Time-Series-Library copy (LF), gzipped
    data = load_dataset("exchange_rate", 96, 24, data_dir=tmp_path)
    assert data.borders == ratio_borders(7588, 96)


@pytest.mark.parametrize("name", ["electricity", "traffic"])
def test_short_tsl_layout_file_loads_splits_and_trains_by_path(tmp_path, name):
    n_channels, n_rows, seq_len, horizon = PUBLISHED_SHAPES[name][1], 80, 8, 4
    path = write_tsl_csv(tmp_path / f"{name}.csv", n_rows, n_channels)
    data = load_dataset(path, seq_len, horizon)
    assert data.name == name and data.columns == tsl_columns(n_channels)
    assert data.borders == ratio_borders(n_rows, seq_len) == {"train": (0, 56), "val": (48, 64), "test": (56, 80)}
    assert len(data.windows("train")) == 56 - seq_len - horizon + 1 and len(data.windows("test")) == 16 - horizon + 1
    model = SAMformer(n_channels, seq_len, horizon)
    cfg = TrainConfig(epochs=1, batch_size=16, progress=False)
    result = score_test(model, data, cfg, fit(model, data, cfg))  # 45 windows: 3 SAM steps
    assert result.epochs_run == 1 and np.isfinite(result.test_mse)

    # The same short file under the benchmark's own name is not the benchmark: refused, naming the way out.
    with pytest.raises(DataError, match=rf"has 80 data rows, the {name} benchmark has {PUBLISHED_SHAPES[name][0]}"):
        load_dataset(name, seq_len, horizon, data_dir=tmp_path)


@pytest.mark.parametrize(
    "name, train, val, test",
    [
        ("electricity", (0, 18412), (18412 - 96, 21044), (21044 - 96, 26304)),
        ("traffic", (0, 12280), (12280 - 96, 14036), (14036 - 96, 17544)),
    ],
)
def test_full_size_tsl_layout_file_loads_by_name_with_the_literature_splits(tmp_path, name, train, val, test):
    n_rows, n_channels = PUBLISHED_SHAPES[name]
    write_tsl_csv(tmp_path / f"{name}.csv", n_rows, n_channels)
    data = load_dataset(name, 96, 24, data_dir=tmp_path, download=False)
    assert data.borders == {"train": train, "val": val, "test": test}  # the shared data README's table
    assert data.n_channels == n_channels and data.columns[-1] == "OT"
    assert data.protocol()["source"]["path"] == str((tmp_path / f"{name}.csv").resolve())
