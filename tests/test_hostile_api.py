"""Hostile input through the Python API: a `SamformerError` subclass naming the argument, no user file touched.

A case that fails because of code elsewhere is marked `xfail(strict=True)` with a reason saying what
happens today; it flips to passing, and must then be unmarked, once fixed there (none is left).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from samformer import ConfigError, DataError, Forecaster, SamformerError, TrainConfig, load_dataset
from samformer.cli.failures import describe_failure
from samformer.data.loading import check_finite_after_scaling
from samformer.data.series import split_frame
from samformer.errors import one_line, quoted
from samformer.files import atomic_directory, check_writable_directory, read_json, removed_if_left_empty
from samformer.threads import choose_threads

from .conftest import make_frame
from .hostile import ROWS

Case = tuple[Callable[[Path], object], type[BaseException], str]


def csv_with(edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        path = root / "data.csv"
        edit(make_frame(ROWS, 2)).to_csv(path)
        return path

    return make


def set_value(row: int, column: str, value: float) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame.iloc[row, frame.columns.get_loc(column)] = value
        return frame

    return edit


def load(edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], object]:
    return lambda root: load_dataset(csv_with(edit)(root), 24, 6)


def write(name: str, content: bytes) -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        (root / name).write_bytes(content)
        return root / name

    return make


CASES: dict[str, Case] = {
    # non-finite after scaling, through samformer.data.loading (a column named in the message)
    "1e300 in the test rows of c1": (load(set_value(230, "c1", 1e300)), DataError, r"'c1' become non-finite"),
    "-1e300 in the validation rows of c0": (load(set_value(175, "c0", -1e300)), DataError, r"'c0' become non-finite"),
    "1e39 beside values near 1 (beyond float32)": (load(set_value(200, "c0", 1e39)), DataError, r"'c0'"),
    "1e300 in the training rows": (load(set_value(10, "c1", 1e300)), DataError, r"c1"),
    "inf in a cell": (load(set_value(10, "c1", np.inf)), DataError, r"infinite"),
    # bounded JSON
    "JSON nested 100 deep": (lambda r: read_json(write("a.json", b"[" * 100 + b"]" * 100)(r)), DataError, r"nests JSON more than 64"),
    "JSON of 200000 brackets": (lambda r: read_json(write("a.json", b"{" * 200000)(r)), DataError, r"nests JSON"),
    "JSON larger than the limit": (lambda r: read_json(write("a.json", b" " * 100 + b"1")(r), max_bytes=50), DataError, r"larger than 50"),
    "JSON with a newline in the path": (lambda r: read_json(write("a\nb.json", b"[" * 100)(r)), DataError, r"a\\nb\.json"),
    # writable outputs
    "output under a file": (lambda r: check_writable_directory(write("f", b"x")(r) / "o"), SamformerError, r"not a writable directory"),
    "output is a file": (lambda r: check_writable_directory(write("f", b"x")(r)), SamformerError, r"not a writable directory"),
    "atomic directory onto a file": (lambda r: atomic_directory(write("f", b"x")(r)).__enter__(), FileExistsError, r"not a directory"),
    "atomic directory onto a non-empty one": (
        lambda r: atomic_directory(write("f", b"x")(r).parent).__enter__(),
        FileExistsError,
        r"not empty",
    ),
    # TrainConfig
    "TrainConfig batch_size=32.5": (lambda r: TrainConfig(batch_size=32.5), ConfigError, r"batch_size=32.5"),
    "TrainConfig epochs='2'": (lambda r: TrainConfig(epochs="2"), ConfigError, r"epochs='2'"),
    "TrainConfig lr=nan": (lambda r: TrainConfig(lr=float("nan")), ConfigError, r"lr=nan"),
    "TrainConfig rho=-1": (lambda r: TrainConfig(rho=-1), ConfigError, r"rho=-1"),
    "TrainConfig patience=0": (lambda r: TrainConfig(patience=0), ConfigError, r"patience=0"),
    "TrainConfig precision='fp16'": (lambda r: TrainConfig(precision="fp16"), ConfigError, r"precision"),
    "TrainConfig seed=2**70": (lambda r: TrainConfig(seed=2**70), ConfigError, r"seed"),
    "TrainConfig batch_size=10**20": (lambda r: TrainConfig(batch_size=10**20), ConfigError, r"batch_size"),
    "TrainConfig device='meta'": (lambda r: TrainConfig(device="meta"), ConfigError, r"device"),
    # Forecaster arguments
    "Forecaster horizon=0": (lambda r: Forecaster(0, 24), SamformerError, r"horizon"),
    "Forecaster horizon=2.5": (lambda r: Forecaster(2.5, 24), SamformerError, r"horizon"),
    "Forecaster seq_len=-1": (lambda r: Forecaster(6, -1), SamformerError, r"seq_len"),
    "Forecaster quantiles='0.1,0.9'": (lambda r: Forecaster(6, 24, quantiles="0.1,0.9"), SamformerError, r"quantiles"),
    "Forecaster quantiles=[1.5]": (lambda r: Forecaster(6, 24, quantiles=[1.5]), SamformerError, r"quantiles"),
    "Forecaster batch_size=32.5": (lambda r: Forecaster(6, 24, batch_size=32.5), ConfigError, r"batch_size"),
}


@pytest.mark.parametrize("case", CASES)
def test_hostile_api_input(tmp_path, case):
    call, error, pattern = CASES[case]
    (tmp_path / "notes.txt").write_text("the user's")
    with pytest.raises(error, match=pattern) as raised:
        call(tmp_path)  # writes its own input files first
    assert "\n" not in str(raised.value)
    assert (tmp_path / "notes.txt").read_text() == "the user's"


# --- the Forecaster on unusual but valid data: documented successes (docs/api.md) ----------------------

FORECASTER_DATA = {
    "integer column labels": lambda f: f.set_axis([0, 1], axis=1),
    "tuple column labels": lambda f: f.set_axis([("a", 1), ("b", 2)], axis=1),
    "time-zone-aware index": lambda f: f.tz_localize("UTC").tz_convert("Europe/Paris"),
    "newline in a column label": lambda f: f.set_axis(["a\nb", "c"], axis=1),
    "float32 values": lambda f: f.astype(np.float32),
}


@pytest.mark.parametrize("case", FORECASTER_DATA)
def test_forecaster_keeps_the_labels_and_time_zone_it_was_given(case):
    frame = FORECASTER_DATA[case](make_frame(ROWS, 2))
    forecaster = Forecaster(6, 24, epochs=1, progress=False).fit(frame)
    forecast = forecaster.predict(frame)
    assert list(forecast.columns) == [str(label) for label in frame.columns]  # labels of any type named str(label) (docs/api.md)
    assert getattr(forecast.index, "tz", None) == getattr(frame.index, "tz", None)
    assert forecast.index[0] == frame.index[-1] + (frame.index[1] - frame.index[0])
    assert np.isfinite(forecast.to_numpy(dtype=float)).all()


def test_forecaster_refuses_values_that_overflow_once_scaled():
    frame = make_frame(ROWS, 2)
    frame.iloc[200, 1] = 1e300
    with pytest.raises(DataError, match="c1"):
        Forecaster(6, 24, epochs=1, progress=False).fit(frame)


# --- the pieces of the error contract ---------------------------------------------------------------

CONTROL = ["\n", "\r", "\t", "\x1b", "\x00", "\x7f", "\u2028", "\x85"]


@pytest.mark.parametrize("char", CONTROL)
def test_one_line_escapes_every_control_character(char):
    text = one_line(f"bad{char}name")
    assert text.isprintable() and text == "bad" + repr(char)[1:-1] + "name"


@pytest.mark.parametrize("name", ["plain", "with space", "new\nline", "quote'd", "tab\there", "naïve σ"])
def test_quoted_names_round_trip_through_python_literals(name):
    import ast

    assert ast.literal_eval(quoted(name)) == name and "\n" not in quoted(name)


@pytest.mark.parametrize(
    ("exc", "pattern"),
    [
        (KeyError("x"), None),
        (TypeError("a bug"), None),
        (ZeroDivisionError(), None),
        (OSError(28, "No space left on device", "/a\nb"), r"'/a\\nb' \(No space left on device\); free some space"),
        (OSError(30, "Read-only file system", "/r"), r"'/r' \(Read-only file system\); .*writable --out"),
        (OSError(13, "Permission denied", "/p", None, "/q"), r"'/p' -> '/q' \(Permission denied\); check the permissions"),
        (DataError("a\nb"), r"a\\nb"),
    ],
)
def test_describe_failure_words_user_errors_and_lets_bugs_through(exc, pattern):
    message = describe_failure(exc)
    if pattern is None:
        assert message is None
    else:
        assert message is not None and message.isprintable() and re.search(pattern, message), message


# --- threads -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "env", "workers", "cores", "load", "expected"),
    [
        (3, "2", 1, 8, 50.0, 3),  # an explicit count wins over everything
        (None, "2", 1, 8, 50.0, 2),  # then OMP_NUM_THREADS
        (None, None, 1, 8, 1.0, 8),  # an idle machine: every core
        (None, None, 2, 8, 1.0, 4),  # shared among the workers
        (None, None, 3, 8, 1.0, 2),
        (None, None, 1, 2, 8.0, 1),  # busy: one thread
        (None, None, 1, 2, 2.0, 2),  # load equal to the cores is not oversubscribed
        (None, "zero", 1, 4, 0.0, 4),  # an OMP_NUM_THREADS that is not a count is ignored
        (None, "0", 1, 4, 0.0, 4),
    ],
)
def test_choose_threads(monkeypatch, requested, env, workers, cores, load, expected):
    import samformer.threads as threads

    if env is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", env)
    monkeypatch.setattr(threads, "available_cores", lambda: cores)
    monkeypatch.setattr(threads, "load_average", lambda: load)
    count, note = choose_threads(requested, workers)
    assert count == expected
    assert (note is not None) == (requested is None and env is None and load > cores and cores // workers > 1)
    assert note is None or "\n" not in note


def test_removed_if_left_empty_keeps_what_has_files_and_what_existed(tmp_path):
    new = tmp_path / "new"
    with pytest.raises(OSError), removed_if_left_empty(new):
        (new / "a" / "b").mkdir(parents=True)
        (new / "keep").mkdir()
        (new / "keep" / "checkpoint").write_text("resume me")
        raise OSError(28, "full")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["new", "new/keep", "new/keep/checkpoint"]
    old = tmp_path / "old"
    (old / "empty").mkdir(parents=True)
    with pytest.raises(OSError), removed_if_left_empty(old):
        raise OSError(28, "full")
    assert (old / "empty").is_dir()


def test_finite_after_scaling_names_only_the_bad_columns():
    frame = make_frame(ROWS, 3)
    frame.iloc[220, 0] = 1e300
    frame.iloc[221, 2] = -1e300
    with np.errstate(over="ignore"):
        data = split_frame(frame, 24, 6)
    with pytest.raises(DataError, match=r"column\(s\) 'c0', 'c2' become non-finite") as raised:
        check_finite_after_scaling(data)
    assert "'c1'" not in str(raised.value)
    assert torch.isfinite(data.train).all()  # the training rows themselves were fine: it is the scaling that overflows
