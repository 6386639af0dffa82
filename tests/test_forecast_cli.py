"""`samformer fit | predict | plot | export-onnx`: outputs, refusal to overwrite, one-line errors with exit code 2."""

from __future__ import annotations

import errno
import json
import os
import re

import numpy as np
import pandas as pd
import pytest

from samformer import Forecaster
from samformer.cli.main import main
from samformer.files import exclusive_lock

from .conftest import make_frame
from .helpers import run_cli, write_file

# SAMformer on every target (--no-fallback): these tests check the network as the commands serve it.
FAST = ["--seq-len", "24", "--epochs", "1", "--batch-size", "64", "--quiet", "--no-fallback"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A small saved quantile forecaster and the CSVs it was fitted on / forecasts from."""
    root = tmp_path_factory.mktemp("cli")
    frame = make_frame(200, 2)
    frame.iloc[20:23, 1] = np.nan
    frame.to_csv(root / "train.csv")
    frame.iloc[-60:].to_csv(root / "recent.csv")
    assert main(["fit", "--csv", str(root / "train.csv"), "--horizon", "6", "--out", str(root / "m"), "--quantiles", "0.1,0.9", *FAST]) == 0
    return root


def test_fit_then_predict_writes_the_forecast_csv(capsys, model_dir, tmp_path):
    out = tmp_path / "forecast.csv"
    code, stdout, _ = run_cli(capsys, "predict", "--model", model_dir / "m", "--csv", model_dir / "recent.csv", "--out", out)
    assert code == 0
    forecast = pd.read_csv(out, index_col="date", parse_dates=True)
    expected = Forecaster.load(model_dir / "m").predict(pd.read_csv(model_dir / "recent.csv"))
    assert list(forecast.columns) == list(expected.columns)
    np.testing.assert_allclose(forecast.to_numpy(), expected.to_numpy(), rtol=1e-12)
    assert forecast.index[0] == make_frame(200, 2).index[-1] + pd.Timedelta("1h")
    assert json.loads(stdout)["rows"] == 6


def test_fit_on_a_long_csv_predicts_long(capsys, tmp_path):
    frame = make_frame(200, 2)
    frame.rename_axis("ds").reset_index().melt(id_vars="ds", var_name="unique_id", value_name="y").to_csv(
        tmp_path / "long.csv", index=False
    )
    assert run_cli(capsys, "fit", "--csv", tmp_path / "long.csv", "--horizon", "6", "--out", tmp_path / "m", *FAST)[0] == 0
    assert run_cli(capsys, "predict", "--model", tmp_path / "m", "--csv", tmp_path / "long.csv", "--out", tmp_path / "f.csv")[0] == 0
    forecast = pd.read_csv(tmp_path / "f.csv")
    assert list(forecast.columns) == ["unique_id", "ds", "y"] and len(forecast) == 12


@pytest.mark.parametrize("kind", ["forecast", "attention", "training"])
def test_plot_writes_a_png(capsys, model_dir, tmp_path, kind):
    pytest.importorskip("matplotlib")
    extra = [] if kind == "training" else ["--csv", model_dir / "train.csv"]
    code, _, err = run_cli(capsys, "plot", kind, "--model", model_dir / "m", *extra, "--out", tmp_path / "p.png")
    assert code == 0, err
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_export_onnx_writes_a_model(capsys, model_dir, tmp_path):
    pytest.importorskip("onnx")
    code, stdout, err = run_cli(capsys, "export-onnx", "--model", model_dir / "m", "--out", tmp_path / "m.onnx")
    assert code == 0, err
    assert (tmp_path / "m.onnx").stat().st_size > 1000 and json.loads(stdout)["input"] == ["batch", 24, 2]


def test_existing_outputs_are_never_overwritten_without_the_flag(capsys, model_dir, tmp_path):
    target = tmp_path / "mine.csv"
    target.write_text("precious")
    for argv in (
        ["predict", "--model", model_dir / "m", "--csv", model_dir / "recent.csv", "--out", target],
        ["plot", "training", "--model", model_dir / "m", "--out", target],
        ["export-onnx", "--model", model_dir / "m", "--out", target],
        ["fit", "--csv", model_dir / "train.csv", "--horizon", "6", "--out", model_dir / "m", *FAST],
    ):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and "--overwrite" in err, argv
    assert target.read_text() == "precious"
    code, _, _ = run_cli(capsys, "predict", "--model", model_dir / "m", "--csv", model_dir / "recent.csv", "--out", target, "--overwrite")
    assert code == 0 and target.read_text().startswith("date,")


def fit(t, m):
    return ["fit", "--csv", m / "train.csv", "--horizon", "6", "--out", t / "o"]


def predict(m):
    return ["predict", "--model", m / "m", "--csv"]


def tampered(tmp_path, model_dir):
    import shutil

    copy = tmp_path / "tampered"
    shutil.copytree(model_dir / "m", copy)
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[-3] ^= 1
    (copy / "model.safetensors").write_bytes(bytes(data))
    return copy


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (lambda t, m: ["fit", "--csv", t / "missing.csv", "--horizon", "6", "--out", t / "o"], "no such file"),
        (lambda t, m: ["fit", "--csv", write_file(t, "e.csv", ""), "--horizon", "6", "--out", t / "o"], "is empty"),
        (lambda t, m: ["fit", "--csv", write_file(t, "s.csv", "a;b\n1;2\n"), "--horizon", "6", "--out", t / "o"], "not numeric"),
        (lambda t, m: ["fit", "--csv", write_file(t, "n.csv", "a,b\n1,2\n3,4\n"), "--horizon", "6", "--out", t / "o"], "no timestamps"),
        (lambda t, m: ["fit", "--csv", m / "train.csv", "--horizon", "0", "--out", t / "o"], "--horizon: must be a positive integer"),
        (lambda t, m: [*fit(t, m), "--quantiles", "0.1,2"], "--quantiles"),
        (lambda t, m: [*fit(t, m), "--val-size", "-1"], "--val-size"),
        (
            lambda t, m: [*fit(t, m), "--freq", "fortnightly"],
            "not a pandas frequency",
        ),
        (lambda t, m: [*fit(t, m), "--freq", "D"], "expected 'D'"),
        (lambda t, m: [*fit(t, m), "--seq-len", "500"], "too few for seq_len=500"),
        (lambda t, m: [*fit(t, m), "--target", "sales", *FAST], "sales not in the data; available: c0, c1"),
        (
            lambda t, m: [*predict(m), m / "recent.csv", "--future-csv", m / "recent.csv", "--out", t / "f.csv"],
            "fitted without future_covariates",
        ),
        (lambda t, m: ["predict", "--model", t / "nothing", "--csv", m / "recent.csv", "--out", t / "f.csv"], "no such model directory"),
        (lambda t, m: ["predict", "--model", m, "--csv", m / "recent.csv", "--out", t / "f.csv"], "not a saved samformer model directory"),
        (lambda t, m: ["predict", "--model", tampered(t, m), "--csv", m / "recent.csv", "--out", t / "f.csv"], "changed after saving"),
        (
            lambda t, m: [*predict(m), write_file(t, "x.csv", "date,c0\n2020-01-01,1\n"), "--out", t / "f.csv"],
            "missing",
        ),
        (
            lambda t, m: [*predict(m), write_file(t, "y.csv", "date,c0,c1\n2020-01-01,1,2\n"), "--out", t / "f.csv"],
            "pass freq=|fewer",
        ),
        (lambda t, m: ["predict", "--model", m / "m", "--csv", m / "recent.csv", "--out", t / "no" / "f.csv"], "does not exist"),
        (lambda t, m: ["plot", "forecast", "--model", m / "m", "--out", t / "p.png"], "needs --csv"),
        (lambda t, m: ["plot", "heatmap", "--model", m / "m", "--out", t / "p.png"], "invalid choice"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(capsys, tmp_path, model_dir, argv, message):
    args = argv(tmp_path, model_dir)
    code, _, err = run_cli(capsys, *args, *(["--quiet"] if args[0] == "fit" else []))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(message, err), err
    assert not (tmp_path / "o").exists() and not (tmp_path / "f.csv").exists()


UNWRITABLE = "/proc"  # no regular file can be created there, even by root


def _dir(t):
    (t / "d").mkdir(exist_ok=True)
    return t / "d"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (lambda t, m: ["predict", "--model", m / "m", "--csv", m / "recent.csv", "--out", _dir(t), "--overwrite"], "is a directory"),
        (lambda t, m: ["plot", "training", "--model", m / "m", "--out", _dir(t), "--overwrite"], "is a directory"),
        (lambda t, m: ["export-onnx", "--model", m / "m", "--out", _dir(t), "--overwrite"], "is a directory"),
        (lambda t, m: ["predict", "--model", m / "m", "--csv", m / "recent.csv", "--out", f"{UNWRITABLE}/f.csv"], "cannot write to"),
        (lambda t, m: ["export-onnx", "--model", m / "m", "--out", f"{UNWRITABLE}/m.onnx"], "cannot write to"),
        (lambda t, m: ["fit", "--csv", m / "train.csv", "--horizon", "6", "--out", f"{UNWRITABLE}/m", *FAST], "cannot write to"),
    ],
)
def test_unwritable_outputs_are_refused_before_any_work_in_one_line(capsys, tmp_path, model_dir, argv, message):
    if not os.path.isdir(UNWRITABLE):
        pytest.skip(f"{UNWRITABLE} is not mounted here")
    code, out, err = run_cli(capsys, *argv(tmp_path, model_dir))
    assert code == 2 and len(err.strip().splitlines()) == 1 and re.search(message, err), err
    assert "epoch" not in out + err  # refused before training
    assert not (tmp_path / "d").exists() or list((tmp_path / "d").iterdir()) == []


def test_a_full_disk_while_writing_the_forecast_is_one_line_and_leaves_no_file(capsys, tmp_path, model_dir, monkeypatch):
    def full_disk(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    code, _, err = run_cli(capsys, "predict", "--model", model_dir / "m", "--csv", model_dir / "recent.csv", "--out", tmp_path / "f.csv")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "No space left on device" in err, err
    assert list(tmp_path.iterdir()) == []


def test_fit_into_an_out_another_process_is_writing_is_refused_before_any_training(capsys, tmp_path, small_csv):
    out = tmp_path / "model"
    with exclusive_lock(out):  # what a running `samformer fit --out model` holds
        code, stdout, err = run_cli(capsys, "fit", "--csv", small_csv, "--horizon", "6", "--seq-len", "24", "--out", out)
    assert code == 2 and stdout == "" and "another samformer process is writing to" in err and len(err.splitlines()) == 1
    assert not out.exists()
