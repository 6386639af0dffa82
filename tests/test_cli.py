"""`samformer train` end to end: result JSON, files, refusal to overwrite, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from .conftest import make_frame
from .helpers import run_cli, write_file

FAST = ["--seq-len", "48", "--epochs", "2", "--batch-size", "64", "--quiet"]


def test_train_on_a_csv_writes_model_result_and_last_line_json(capsys, small_csv, tmp_path):
    out_dir = tmp_path / "run"
    code, out, _ = run_cli(capsys, "train", "--dataset", str(small_csv), "--horizon", "12", "--out", str(out_dir), *FAST)
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    for key in ("dataset", "horizon", "seq_len", "seed", "test_mse", "test_mae", "val_mse", "best_epoch", "epochs_run", "train_seconds"):
        assert key in summary
    assert summary["horizon"] == 12 and summary["seq_len"] == 48 and summary["epochs_run"] == 2
    assert (out_dir / "model.safetensors").is_file() and (out_dir / "config.json").is_file()
    stored = json.loads((out_dir / "result.json").read_text())
    assert stored["test_mse"] == summary["test_mse"] and len(stored["history"]) == 2


def test_existing_model_is_not_overwritten_without_flag(capsys, small_csv, tmp_path):
    out_dir = tmp_path / "run"
    assert run_cli(capsys, "train", "--dataset", str(small_csv), "--horizon", "12", "--out", str(out_dir), *FAST)[0] == 0
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    code, _, err = run_cli(capsys, "train", "--dataset", str(small_csv), "--horizon", "12", "--out", str(out_dir), "--seed", "1", *FAST)
    assert code == 2 and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before
    code, _, _ = run_cli(
        capsys, "train", "--dataset", str(small_csv), "--horizon", "12", "--out", str(out_dir), "--seed", "1", "--overwrite", *FAST
    )
    assert code == 0 and (out_dir / "model.safetensors").read_bytes() != before["model.safetensors"]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (lambda t: ["--dataset", "ETTh9", "--horizon", "96"], "unknown dataset"),
        (lambda t: ["--dataset", "ETTh1", "--horizon", "0"], "--horizon: must be a positive integer"),
        (lambda t: ["--dataset", "ETTh1", "--horizon", "-5"], "--horizon"),
        (lambda t: ["--dataset", "ETTh1", "--horizon", "abc"], "expected a positive integer"),
        (lambda t: ["--dataset", str(t / "missing.csv"), "--horizon", "12"], "no such file"),
        (
            lambda t: ["--dataset", write_file(t, "nan.csv", "date,a\n2020-01-01,1\n2020-01-02,\n"), "--horizon", "12"],
            "missing or infinite",
        ),
        (lambda t: ["--dataset", write_file(t, "txt.csv", "date,a\n2020-01-01,1\n2020-01-02,up\n"), "--horizon", "12"], "not numeric"),
        (lambda t: ["--dataset", write_file(t, "empty.csv", ""), "--horizon", "12"], "is empty"),
        (lambda t: ["--dataset", "ETTh1", "--horizon", "96", "--seq-len", "100000"], "too short"),
        (lambda t: ["--dataset", "ETTh1", "--horizon", "96", "--rho", "-1"], "--rho"),
        (lambda t: ["--dataset", "ETTh1", "--horizon", "96", "--lr", "0"], "--lr"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(capsys, tmp_path, data_dir, case, message):
    code, _, err = run_cli(capsys, "train", *case(tmp_path), "--out", str(tmp_path / "o"), "--data-dir", str(data_dir), "--quiet")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "o").exists()


def test_too_short_csv_is_refused(capsys, tmp_path):
    path = tmp_path / "short.csv"
    make_frame(100).to_csv(path)
    code, _, err = run_cli(capsys, "train", "--dataset", str(path), "--horizon", "12", "--seq-len", "96", "--quiet")
    assert code == 2 and "too short" in err


def test_unwritable_out_is_a_clear_error(capsys, small_csv, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("mine")
    code, _, err = run_cli(capsys, "train", "--dataset", str(small_csv), "--horizon", "12", "--out", str(blocker / "sub"), *FAST)
    assert code == 2 and "cannot write" in err and blocker.read_text() == "mine"


def test_console_entry_point_runs_as_a_process(small_csv, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "samformer", "train", "--dataset", str(small_csv), "--horizon", "12", "--out", str(tmp_path / "r"), *FAST],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert np.isfinite(json.loads(proc.stdout.strip().splitlines()[-1])["test_mse"])


def test_console_entry_point_exits_with_the_commands_code(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "samformer", "train", "--dataset", "ETTh9", "--horizon", "96", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "unknown dataset" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_importing_the_package_or_the_command_line_loads_neither_torch_nor_pandas():
    probe = "import sys, samformer, samformer.cli.main; print(sorted({'torch', 'pandas'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_the_package_exports_its_public_names_on_first_use():
    import samformer
    from samformer.nn.model import SAMformer

    assert samformer.SAMformer is SAMformer and "fit" in dir(samformer)
    assert set(samformer.__all__) == set(samformer._SOURCES) | {"__version__"}
    assert all(getattr(samformer, name) is not None for name in samformer.__all__)
    with pytest.raises(AttributeError, match="no attribute 'Samformer'"):
        samformer.Samformer  # noqa: B018
