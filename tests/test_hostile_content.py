"""Hostile content behind valid checksums, and faults of the last round: a model directory whose training history is
malformed (checksums recomputed, as another program would), a run file whose `train_config` holds the wrong types,
`train --overwrite` on a full disk, `--data-dir` naming a file. Each: one line, nothing of the user's changed.
"""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

import samformer.forecasting.modelfile as modelfile
import samformer.training.checkpoint as checkpoint_module
from samformer import Forecaster, ModelFileError, SamformerError
from samformer.experiments.store import read_run
from samformer.files import file_sha256
from samformer.forecasting.modelfile import config_sha256
from samformer.plots import plot_training
from samformer.training.logs import history_problem
from tests.helpers import run_cli

from .hostile import TINY, Refused, check_verdict, make_sources, prepare_user_files, snapshot


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    return make_sources(tmp_path_factory.mktemp("sources"))


def rewrite_history(model: Path, history: Any) -> None:
    """Give the saved model `history`, with its config checksum recomputed so that only the content is wrong."""
    path = model / "config.json"
    config = json.loads(path.read_text())
    config["forecaster"]["history"] = history
    config["weights_sha256"] = file_sha256(model / "model.safetensors")
    config["config_sha256"] = config_sha256(config)
    path.write_text(json.dumps(config))


GOOD_EPOCH = {"epoch": 1, "lr": 1e-3, "train_loss": 0.5, "val_mse": 0.4, "val_mae": 0.5}
MALFORMED_HISTORIES = {
    "an object, not a list": {"epoch": 1},
    "a string": "none",
    "null": None,
    "a number in the list": [1],
    "a list in the list": [[1, 0.5, 0.4]],
    "val_mse as text": [{**GOOD_EPOCH, "val_mse": "0.4"}],
    "no epoch": [{k: v for k, v in GOOD_EPOCH.items() if k != "epoch"}],
    "epoch as text": [{**GOOD_EPOCH, "epoch": "1"}],
    "epoch 0": [{**GOOD_EPOCH, "epoch": 0}],
    "epoch true": [{**GOOD_EPOCH, "epoch": True}],
    "train_loss as text": [{**GOOD_EPOCH, "train_loss": "0.5"}],
    "val_mae as a list": [{**GOOD_EPOCH, "val_mae": [0.5]}],
    "lr null": [{**GOOD_EPOCH, "lr": None}],
    "second epoch broken": [GOOD_EPOCH, {**GOOD_EPOCH, "epoch": 2, "val_mse": {}}],
}


@pytest.mark.parametrize("case", list(MALFORMED_HISTORIES))
def test_a_malformed_history_behind_valid_checksums_is_refused_on_load(tmp_path, sources, case):
    prepare_user_files(tmp_path, sources)
    rewrite_history(tmp_path / "model", MALFORMED_HISTORIES[case])
    with pytest.raises(ModelFileError, match=r"config\.json holds a malformed training history \(.+\); re-save the model"):
        Forecaster.load(tmp_path / "model")


@pytest.mark.parametrize("case", ["a string", "epoch as text", "val_mse as text"])
def test_samformer_plot_refuses_a_malformed_history_in_one_line(capsys, tmp_path, sources, case):
    prepare_user_files(tmp_path, sources)
    rewrite_history(tmp_path / "model", MALFORMED_HISTORIES[case])
    before = snapshot(tmp_path)
    code, out, err = run_cli(capsys, *["plot", "training", "--model", str(tmp_path / "model"), "--out", str(tmp_path / "p.png")])
    check_verdict(Refused(r"malformed training history"), code, out, err, tmp_path, before)


def test_samformer_plot_refuses_a_history_without_what_it_draws_in_one_line(capsys, tmp_path, sources):
    prepare_user_files(tmp_path, sources)
    rewrite_history(tmp_path / "model", [{k: v for k, v in GOOD_EPOCH.items() if k != "val_mse"}])
    Forecaster.load(tmp_path / "model")  # only `epoch` is required of a stored record
    before = snapshot(tmp_path)
    code, out, err = run_cli(capsys, *["plot", "training", "--model", str(tmp_path / "model"), "--out", str(tmp_path / "p.png")])
    check_verdict(Refused(r"cannot plot this training history: history entry 0 lacks val_mse"), code, out, err, tmp_path, before)


def test_samformer_plot_refuses_an_empty_history_in_one_line(capsys, tmp_path, sources):
    prepare_user_files(tmp_path, sources)
    rewrite_history(tmp_path / "model", [])
    Forecaster.load(tmp_path / "model")  # an empty history is a valid one: nothing to plot, though
    before = snapshot(tmp_path)
    code, out, err = run_cli(capsys, *["plot", "training", "--model", str(tmp_path / "model"), "--out", str(tmp_path / "p.png")])
    check_verdict(Refused(r"training history is empty.*nothing to plot"), code, out, err, tmp_path, before)


@pytest.mark.parametrize("history", [[], [{"epoch": "x"}], "abc", [None]])
def test_plot_training_refuses_what_it_cannot_draw_by_the_librarys_own_error(history):
    with pytest.raises(SamformerError, match=r"training history"):
        plot_training(history)


def test_history_problem_accepts_what_training_writes():
    assert history_problem([GOOD_EPOCH, {**GOOD_EPOCH, "epoch": 2, "val_loss": 0.3, "seconds": 1.5, "diagnostic": "any"}]) is None
    assert history_problem([]) is None


# --- run files whose train_config passes JSON but not TrainConfig's rules -------------------------------------

GOOD_RUN = {
    "dataset": "data",
    "variant": "samformer",
    "protocol": "paper",
    "horizon": 6,
    "seq_len": 24,
    "seed": 0,
    "test_mse": 0.5,
    "test_mae": 0.5,
    "val_mse": 0.4,
}
BAD_TRAIN_CONFIGS = {  # case -> (train_config, what the message shows after 'holds train_config')
    "lr as text": ({"lr": "abc"}, "lr="),
    "rho as text": ({"rho": "0.7"}, "rho="),
    "batch_size as a float": ({"batch_size": 32.5}, "batch_size="),
    "epochs 0": ({"epochs": 0}, "epochs="),
    "sam as text": ({"sam": "yes"}, "sam="),
    "precision unknown": ({"precision": "fp8"}, "precision="),
    "lr_schedule a list": ({"lr_schedule": ["constant"]}, "lr_schedule="),
    "a string": ("fast", "='fast'"),
    "a list": ([1, 2], r"=\[1, 2\]"),
}


@pytest.mark.parametrize("case", list(BAD_TRAIN_CONFIGS))
def test_a_run_file_with_a_mistyped_train_config_is_refused_naming_file_and_field(tmp_path, case):
    settings, fragment = BAD_TRAIN_CONFIGS[case]
    path = tmp_path / "seed0.json"
    path.write_text(json.dumps({**GOOD_RUN, "train_config": settings}))
    with pytest.raises(ValueError, match=rf"seed0\.json holds train_config ?{fragment}") as refused:
        read_run(path)
    assert "\n" not in str(refused.value)


def test_samformer_table_warns_in_one_line_and_tables_the_good_runs(capsys, tmp_path):
    runs = tmp_path / "runs" / "samformer" / "data" / "H6"
    runs.mkdir(parents=True)
    (runs / "seed0.json").write_text(json.dumps({**GOOD_RUN, "train_config": {"lr": 0.001, "sam": True}}))
    (runs / "seed1.json").write_text(json.dumps({**GOOD_RUN, "seed": 1, "train_config": {"lr": "abc"}}))
    code, out, err = run_cli(capsys, *["table", str(tmp_path / "runs")])
    assert code == 0, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert re.search(r"^samformer: warning: .*seed1\.json holds train_config lr='abc' out of range.*not used", err), err
    assert re.search(r"\| data \|", out), out


def test_samformer_table_refuses_when_every_run_file_is_mistyped(capsys, tmp_path):
    runs = tmp_path / "runs" / "samformer" / "data" / "H6"
    runs.mkdir(parents=True)
    (runs / "seed0.json").write_text(json.dumps({**GOOD_RUN, "train_config": {"rho": "high"}}))
    code, out, err = run_cli(capsys, *["table", str(tmp_path / "runs")])
    assert code == 2 and out == "", err
    warning, error = err.strip().splitlines()
    assert re.search(r"^samformer: warning: .*seed0\.json holds train_config rho='high' out of range", warning), warning
    assert re.search(r"^samformer: error: no run files under", error), error


# --- train --overwrite on a full disk; --data-dir naming a file ----------------------------------------------


@pytest.mark.parametrize("failing", ["the model's weights", "the result file"])
def test_train_overwrite_on_a_full_disk_leaves_the_old_run_byte_identical(capsys, tmp_path, sources, monkeypatch, failing):
    """Before the fix the new run's checkpoints were written into the old run's directory during training."""
    import samformer.cli.train as train_command

    prepare_user_files(tmp_path, sources)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(train_command, "save_model" if "weights" in failing else "write_json", full_disk)
    before = snapshot(tmp_path)
    argv = ["train", "--dataset", str(tmp_path / "data.csv"), "--horizon", "6", "--out", str(tmp_path / "run"), "--overwrite", *TINY]
    code, out, err = run_cli(capsys, *argv)
    check_verdict(Refused(r"No space left on device.*free some space"), code, out, err, tmp_path, before)
    assert not (tmp_path / "run" / "checkpoint.safetensors").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".tmp", ".old", ".lock"))]


def test_train_overwrite_writes_its_checkpoints_outside_the_old_run(capsys, tmp_path, sources, monkeypatch):
    prepare_user_files(tmp_path, sources)
    written = []
    real = checkpoint_module.atomic_destination

    def spy(target):
        written.append(Path(target))
        return real(target)

    monkeypatch.setattr(checkpoint_module, "atomic_destination", spy)
    argv = ["train", "--dataset", str(tmp_path / "data.csv"), "--horizon", "6", "--out", str(tmp_path / "run"), "--overwrite", *TINY]
    assert run_cli(capsys, *argv)[0] == 0
    assert written and all(p.parent != tmp_path / "run" for p in written), written
    modelfile.load_model(tmp_path / "run")


@pytest.mark.parametrize("command", ["train", "benchmark"])
def test_a_data_dir_that_is_a_file_is_one_line_and_creates_no_cache(capsys, tmp_path, sources, monkeypatch, command):
    prepare_user_files(tmp_path, sources)
    cache = tmp_path / "cache"
    monkeypatch.setenv("SAMFORMER_CACHE", str(cache))
    monkeypatch.delenv("SAMFORMER_DATA", raising=False)
    before = snapshot(tmp_path)
    data_dir = ["--data-dir", str(tmp_path / "notes.txt")]
    if command == "train":
        argv = ["train", "--dataset", "ETTh1", "--horizon", "6", "--out", str(tmp_path / "new"), *data_dir, *TINY]
    else:
        argv = ["benchmark", "--datasets", "ETTh1", "--horizons", "6", "--seq-len", "24", "--epochs", "1", "--out", str(tmp_path / "b")]
        argv += data_dir
    code, out, err = run_cli(capsys, *argv)
    check_verdict(Refused(r"notes\.txt' is a regular file, not a folder"), code, out, err, tmp_path, before)
    assert not cache.exists() and not os.path.lexists(cache)
