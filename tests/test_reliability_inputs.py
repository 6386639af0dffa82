"""Malformed input, CLI and Python API: one clear line (what was wrong, how to fix it), exit code 2, no user file touched.

Every case runs in a directory that also holds files the user already had; the directory is
snapshotted (every path, its bytes and modification time) before and after, and must not change.
The message must match both what went wrong and a remedy.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from samformer import SAMformer, TrainConfig, fit, load_dataset
from samformer.cli.main import main
from samformer.data.series import Windows, check_time_index, read_series_csv, split_frame, validate_frame
from samformer.experiments.run import RunSpec, execute
from samformer.forecasting.modelfile import config_sha256, load_model, save_model
from samformer.training.checkpoint import CHECKPOINT_FILE, load_checkpoint

from .conftest import make_frame
from .helpers import flip_byte

OPTIONS = ["--horizon", "12", "--seq-len", "48", "--epochs", "1", "--batch-size", "64", "--quiet"]
GOOD_ROWS = make_frame(600)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under `root` with its kind, bytes and modification time."""
    return {
        str(p.relative_to(root)): (p.is_dir(), None if p.is_dir() else p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture(scope="module")
def run_files(tmp_path_factory) -> dict[str, Path]:
    """A finished model directory and an interrupted run's checkpoint, both for GOOD_ROWS with OPTIONS."""
    root = tmp_path_factory.mktemp("runs")
    csv = root / "good.csv"
    GOOD_ROWS.to_csv(csv)
    spec = RunSpec(str(csv), 12, seq_len=48, train_options={"epochs": 1, "batch_size": 64, "progress": False})
    model, _, _ = execute(spec, checkpoint=root / "interrupted" / CHECKPOINT_FILE)
    save_model(root / "model", model)
    return {"csv": csv, "model": root / "model", "checkpoint": root / "interrupted" / CHECKPOINT_FILE}


def csv(text: str) -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        path = root / "data.csv"
        path.write_text(text)
        return path

    return make


def frame_csv(edit: Callable[[pd.DataFrame], pd.DataFrame], rows: int = 600) -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        path = root / "data.csv"
        edit(make_frame(rows).reset_index()).to_csv(path, index=False)
        return path

    return make


def with_row(i: int, column: str, value) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = frame[column].astype(object)
        frame.loc[i, column] = value
        return frame

    return edit


def copy_run(run_files, root: Path, kind: str) -> Path:
    """Copy a prepared run into root/out: 'model' (a finished model) or 'checkpoint' (an interrupted run)."""
    out = root / "out"
    if kind == "model":
        shutil.copytree(run_files["model"], out)
    else:
        out.mkdir()
        shutil.copy(run_files["checkpoint"], out / CHECKPOINT_FILE)
    return out


# --- the CLI: (argv builder, what went wrong, how to fix it) ---------------------------------------
# A builder gets (root, run_files) and returns the argv after `samformer train`; OPTIONS come first,
# so a builder's own --horizon etc. wins (argparse keeps the last).


def data_case(make: Callable[[Path], Path], *extra: str):
    return lambda root, runs: ["--dataset", str(make(root)), "--out", str(root / "out"), *extra]


def good(*extra: str):
    return lambda root, runs: ["--dataset", str(runs["csv"]), "--out", str(root / "out"), *extra]


def with_out(kind: str, *extra: str):
    return lambda root, runs: ["--dataset", str(runs["csv"]), "--out", str(copy_run(runs, root, kind)), *extra]


def tamper_checkpoint(change: Callable[[Path], None], *extra: str):
    def build(root: Path, runs) -> list[str]:
        out = copy_run(runs, root, "checkpoint")
        change(out / CHECKPOINT_FILE)
        return ["--dataset", str(runs["csv"]), "--out", str(out), "--resume", *extra]

    return build


def out_under_a_file(root: Path, runs) -> list[str]:
    (root / "a-file").write_text("mine")
    return ["--dataset", str(runs["csv"]), "--out", str(root / "a-file" / "run")]


def out_is_a_file(root: Path, runs) -> list[str]:
    (root / "a-file").write_text("mine")
    return ["--dataset", str(runs["csv"]), "--out", str(root / "a-file")]


def garbage(root: Path) -> Path:
    path = root / "data.csv"
    path.write_bytes(np.random.default_rng(0).integers(128, 256, 3000, dtype=np.uint8).tobytes())
    return path


def directory(root: Path) -> Path:
    (root / "folder.csv").mkdir()
    return root / "folder.csv"


HEADER = "date,a,b\n"
WEEKLY = pd.date_range("2020-01-05", periods=40, freq="7D")  # Sundays
ROWS = "".join(f"2020-01-01 {h:02d}:00:00,{h},{2 * h}\n" for h in range(3))
CLI_CASES = {
    "empty file": (data_case(csv("")), r"is empty", r"needs a header row"),
    "header only": (data_case(csv(HEADER)), r"no data rows", r"one row per time step"),
    "semicolon delimiter": (data_case(csv(HEADER.replace(",", ";") + ROWS.replace(",", ";"))), r"not numeric", r"delimiter a comma"),
    "tab delimiter": (data_case(csv(HEADER.replace(",", "\t") + ROWS.replace(",", "\t"))), r"not numeric", r"delimiter a comma"),
    "non-numeric channel": (data_case(frame_csv(with_row(5, "c1", "high"))), r"column\(s\) c1 are not numeric", r"keep only numeric"),
    "empty cell": (data_case(frame_csv(with_row(7, "c0", ""))), r"1 missing or infinite value.*c0.*row 7", r"fill or drop"),
    "NaN literal": (data_case(frame_csv(with_row(9, "c2", "NaN"))), r"missing or infinite.*c2", r"fill or drop"),
    "inf": (data_case(frame_csv(with_row(3, "c0", "inf"))), r"missing or infinite.*c0", r"fill or drop"),
    "-inf": (data_case(frame_csv(with_row(4, "c1", "-inf"))), r"missing or infinite.*c1", r"fill or drop"),
    "duplicated timestamps": (
        data_case(frame_csv(lambda f: f.assign(date=f["date"].where(f.index != 11, f["date"][10])))),
        r"appears more than once \(row 11",
        r"keep one row per time step",
    ),
    "unsorted timestamps": (
        data_case(frame_csv(lambda f: f.iloc[[*range(20), 21, 20, *range(22, len(f))]])),
        r"not sorted \(row 21",
        r"sort the rows by date",
    ),
    "irregular frequency": (
        data_case(frame_csv(lambda f: f.drop(index=[300, 301]))),
        r"unevenly spaced.*0 days 03:00",
        r"resample\('h', on='date'\)",  # the typical (hourly) step
    ),
    "irregular weekly dates": (
        data_case(csv("date,a\n" + "".join(f"{d:%Y-%m-%d},{i}\n" for i, d in enumerate(WEEKLY) if i != 9))),
        r"a step of 14 days",
        r"resample\('7D', on='date'\)",
    ),
    "missing timestamp": (data_case(frame_csv(with_row(6, "date", ""))), r"timestamp missing in row 6", r"fill it in or drop"),
    "unparseable dates": (data_case(csv("date,a\nsoon,1\nlater,2\n")), r"does not parse as dates", r"YYYY-MM-DD"),
    "date column only": (data_case(csv("date\n2020-01-01\n2020-01-02\n")), r"no channels", r"add at least one numeric column"),
    "too-short series": (data_case(frame_csv(lambda f: f, rows=100)), r"too short for seq_len=48", r"shorter --seq-len"),
    "overflowing values": (data_case(frame_csv(lambda f: f.assign(c0=f["c0"] * 1e300))), r"c0 hold values too large", r"rescale"),
    "binary garbage": (data_case(garbage), r"could not be parsed as CSV", r"check the delimiter and encoding"),
    "missing file": (
        lambda root, runs: ["--dataset", str(root / "nope.csv"), "--out", str(root / "out")],
        r"no such file",
        r"give the path",
    ),
    "directory as data": (data_case(directory), r"is a directory, not a regular file", r"pass the path of the CSV"),
    "unknown dataset": (lambda root, runs: ["--dataset", "ETTh9", "--out", str(root / "out")], r"unknown dataset 'ETTh9'", r"use one of"),
    "zero horizon": (good("--horizon", "0"), r"--horizon: must be a positive integer, got 0", r"--help"),
    "negative horizon": (good("--horizon", "-5"), r"--horizon", r"--help"),
    "fractional horizon": (good("--horizon", "1.5"), r"expected a positive integer, got '1.5'", r"--help"),
    "zero seq-len": (good("--seq-len", "0"), r"--seq-len: must be a positive integer", r"--help"),
    "zero batch size": (good("--batch-size", "0"), r"--batch-size: must be a positive integer", r"--help"),
    "negative lr": (good("--lr=-0.001"), r"--lr: must be a non-negative number", r"--help"),
    "NaN rho": (good("--rho", "nan"), r"--rho: must be a non-negative number", r"--help"),
    "text epochs": (good("--epochs", "many"), r"--epochs: expected a positive integer", r"--help"),
    "unknown precision": (good("--precision", "fp16"), r"invalid choice: 'fp16'", r"--help"),
    "unknown device": (good("--device", "gpu7"), r"unknown device 'gpu7'", r"use auto, cpu, cuda"),
    "absent CUDA device": (good("--device", "cuda:7"), r"'cuda:7' is not available on this machine", r"--device cpu"),
    "output under a file": (out_under_a_file, r"cannot write to .*a-file'? is not a writable directory", r"choose a writable --out"),
    "output is a file": (out_is_a_file, r"cannot write to", r"choose a writable --out"),
    "output holds a model": (with_out("model"), r"already holds a model", r"--overwrite"),
    "output holds an interrupted run": (with_out("checkpoint"), r"interrupted run's checkpoint", r"pass --resume"),
    "resume with other settings": (
        with_out("checkpoint", "--resume", "--lr", "0.01"),
        r"other settings \(lr: 0.001 -> 0.01\)",
        r"same options",
    ),
    "resume other data": (
        lambda root, runs: [
            "--dataset",
            str(frame_csv(with_row(5, "c0", 9.0))(root)),
            "--out",
            str(copy_run(runs, root, "checkpoint")),
            "--resume",
        ],
        r"the data differ",
        r"same options and data",
    ),
    "resume truncated checkpoint": (
        tamper_checkpoint(lambda p: p.write_bytes(p.read_bytes()[:1000])),
        r"not a readable samformer checkpoint",
        r"--overwrite",
    ),
    "resume tampered checkpoint": (tamper_checkpoint(flip_byte), r"does not match its own checksum", r"--overwrite"),
    "resume foreign safetensors": (
        tamper_checkpoint(lambda p: save_file({"w": torch.ones(3)}, str(p))),
        r"not a samformer checkpoint",
        r"--overwrite",
    ),
    "resume without --out": (lambda root, runs: ["--dataset", str(runs["csv"]), "--resume"], r"--resume continues", r"give --out"),
    "resume with --overwrite": (good("--resume", "--overwrite"), r"--resume continues", r"do not combine it with --overwrite"),
    "NaN loss": (good("--lr", "1e30", "--no-sam"), r"training loss became (nan|inf)", r"lower --lr"),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_refuses_bad_input_in_one_line_exit_2_touching_nothing(capsys, tmp_path, monkeypatch, run_files, case):
    if case == "absent CUDA device" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    build, what, fix = CLI_CASES[case]
    monkeypatch.chdir(tmp_path)  # a default --out would land here, and would show in the snapshot
    (tmp_path / "notes.txt").write_text("the user's own file")
    argv = ["train", *OPTIONS, *build(tmp_path, run_files)]
    before = snapshot(tmp_path)
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (code, err)
    assert out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert re.match(r"samformer( train)?: error: ", err), err
    assert re.search(what, err), f"what: {what!r} not in {err!r}"
    assert re.search(fix, err), f"fix: {fix!r} not in {err!r}"
    assert snapshot(tmp_path) == before


# --- the Python API: (callable builder, exception type, what, how to fix) --------------------------


def model_dir(runs, root: Path, change: Callable[[Path], None] | None = None) -> Path:
    directory = root / "model"
    shutil.copytree(runs["model"], directory)
    if change is not None:
        change(directory)
    return directory


def rewrite_config(edit: Callable[[dict], None], keep_checksum: bool = True) -> Callable[[Path], None]:
    """Edit config.json; with `keep_checksum`, as a genuine save by another version would (checksum recomputed)."""

    def change(directory: Path) -> None:
        config = json.loads((directory / "config.json").read_text())
        edit(config)
        if keep_checksum and "config_sha256" in config:
            config["config_sha256"] = config_sha256(config)
        (directory / "config.json").write_text(json.dumps(config))

    return change


def reading(make: Callable[[Path], Path]) -> Callable:
    """A builder: write the CSV now, return the `read_series_csv` call."""

    def build(root: Path, runs) -> Callable[[], object]:
        path = make(root)
        return lambda: read_series_csv(path)

    return build


def loading(change: Callable[[Path], None]) -> Callable:
    """A builder: copy the good model directory, apply `change` now, and return the `load_model` call."""

    def build(root: Path, runs) -> Callable[[], object]:
        directory = model_dir(runs, root, change)
        return lambda: load_model(directory)

    return build


def bigger_weights(directory: Path) -> None:
    save_file({k: v.contiguous() for k, v in SAMformer(4, 48, 12).state_dict().items()}, str(directory / "model.safetensors"))


def unfitting_model():
    data = split_frame(GOOD_ROWS, 48, 12)
    return lambda: fit(SAMformer(4, 48, 12), data, TrainConfig(epochs=1, progress=False))


def future_version(config: dict) -> None:
    config["format_version"] = 2
    config["model"]["positional_encoding"] = "rotary"  # a field this version does not know


API_CASES = {
    "empty frame": (lambda root, runs: lambda: validate_frame(pd.DataFrame()), "DataError", r"no data rows", r"one row per time step"),
    "object column": (
        lambda root, runs: lambda: validate_frame(pd.DataFrame({"a": ["x", "y"], "b": [1.0, 2.0]})),
        "DataError",
        r"column\(s\) a are not numeric",
        r"keep only numeric",
    ),
    "inf in frame": (
        lambda root, runs: lambda: validate_frame(pd.DataFrame({"a": [1.0, np.inf]})),
        "DataError",
        r"missing or infinite",
        r"fill or drop",
    ),
    "duplicated index": (
        lambda root, runs: lambda: check_time_index(pd.DatetimeIndex(["2020-01-01", "2020-01-02", "2020-01-02"])),
        "DataError",
        r"appears more than once",
        r"keep one row",
    ),
    "unsorted csv": (
        reading(frame_csv(lambda f: f.iloc[::-1])),
        "DataError",
        r"not sorted",
        r"sort_values",
    ),
    "zero horizon": (lambda root, runs: lambda: split_frame(GOOD_ROWS, 48, 0), "DataError", r"horizon=0", r"must be positive integers"),
    "negative horizon": (
        lambda root, runs: lambda: split_frame(GOOD_ROWS, 48, -3),
        "DataError",
        r"horizon=-3",
        r"must be positive integers",
    ),
    "too-short frame": (lambda root, runs: lambda: split_frame(make_frame(80), 48, 12), "DataError", r"too short", r"longer series"),
    "too-short windows": (
        lambda root, runs: lambda: Windows(torch.zeros(10, 2), 8, 4),
        "DataError",
        r"10 rows is too short",
        r"shorter --seq-len",
    ),
    "unknown dataset": (lambda root, runs: lambda: load_dataset("weather2"), "DataError", r"unknown dataset", r"use one of"),
    "input (B, D, L) instead of (B, L, D)": (
        lambda root, runs: lambda: SAMformer(3, 48, 12)(torch.zeros(2, 3, 48)),
        "ShapeError",
        r"expects input of shape \(batch, seq_len=48, n_channels=3\), got \(2, 3, 48\)",
        r"transpose",
    ),
    "2-D input": (lambda root, runs: lambda: SAMformer(3, 48, 12)(torch.zeros(48, 3)), "ShapeError", r"got \(48, 3\)", r"seq_len=48"),
    "integer input": (
        lambda root, runs: lambda: SAMformer(3, 48, 12)(torch.zeros(2, 48, 3, dtype=torch.int64)),
        "TypeError",
        r"floating-point tensor, got dtype torch.int64",
        r"x.float\(\)",
    ),
    "zero batch size": (
        lambda root, runs: lambda: TrainConfig(batch_size=0),
        "ConfigError",
        r"batch_size=0 out of range",
        r"must be positive",
    ),
    "fp16 precision": (lambda root, runs: lambda: TrainConfig(precision="fp16"), "ConfigError", r"precision", r"'fp32' or 'bf16'"),
    "zero channels": (lambda root, runs: lambda: SAMformer(0, 48, 12), "ValueError", r"n_channels", r"positive integer"),
    "model does not fit data": (
        lambda root, runs: unfitting_model(),
        "ShapeError",
        r"n_channels=4 vs 3",
        r"build it from the data's sizes",
    ),
    "model dir missing": (
        lambda root, runs: lambda: load_model(root / "nothing"),
        "ModelFileError",
        r"is missing",
        r"not a saved samformer model directory",
    ),
    "model dir from another version": (
        loading(rewrite_config(future_version)),
        "ModelFileError",
        r"uses model format 2, this samformer reads format 1",
        r"load it with the samformer release that saved it",
    ),
    "config edited by hand": (
        loading(rewrite_config(lambda c: c["model"].update(horizon=24), False)),
        "ModelFileError",
        r"changed after saving",
        r"re-save",
    ),
    "config not JSON": (
        loading(lambda d: (d / "config.json").write_text("{oops")),
        "ModelFileError",
        r"not valid JSON",
        r"re-save",
    ),
    "truncated weights": (
        loading(lambda d: (d / "model.safetensors").write_bytes(b"\x08\x00")),
        "ModelFileError",
        r"model.safetensors",
        r"re-save|truncated",
    ),
    "tampered weights": (
        loading(lambda d: flip_byte(d / "model.safetensors")),
        "ModelFileError",
        r"changed after saving",
        r"re-save",
    ),
    "weights of another model": (
        loading(bigger_weights),
        "ModelFileError",
        r"model.safetensors",
        r"re-save|altered",
    ),
    "model weights as checkpoint": (
        lambda root, runs: lambda: load_checkpoint(runs["model"] / "model.safetensors", SAMformer(3, 48, 12), None, None, {}),
        "CheckpointError",
        r"not a samformer checkpoint",
        r"delete .* to start the run over",
    ),
}


@pytest.mark.parametrize("case", list(API_CASES))
def test_api_refuses_bad_input_with_a_one_line_remedy_touching_nothing(tmp_path, run_files, case):
    build, error, what, fix = API_CASES[case]
    (tmp_path / "notes.txt").write_text("the user's own file")
    action = build(tmp_path, run_files)
    before = snapshot(tmp_path)
    with pytest.raises(Exception) as info:  # the exact class is checked below
        action()
    assert type(info.value).__name__ == error, repr(info.value)
    message = str(info.value)
    assert "\n" not in message, message
    assert re.search(what, message), f"what: {what!r} not in {message!r}"
    assert re.search(fix, message), f"fix: {fix!r} not in {message!r}"
    assert snapshot(tmp_path) == before


def test_the_table_is_as_large_as_promised():
    """docs/reliability.md quotes these counts."""
    assert len(CLI_CASES) >= 30 and len(CLI_CASES) + len(API_CASES) >= 60
