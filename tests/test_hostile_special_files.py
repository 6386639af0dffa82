"""Hostile special files: a FIFO, a socket or a device where samformer reads a file (or a file where it reads a folder).

Opening a FIFO for reading blocks until a writer comes, and a device can stream without end, so every
reader checks the kind of the path first (`samformer.files.require_regular_file` / `require_directory`).
Each case runs under a deadline (SIGALRM) that raises `Blocked`, which no handler of samformer's catches,
so a regression fails the test instead of hanging the suite.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from samformer import Forecaster, SamformerError, load_dataset
from samformer.data.benchmarks import content_sha256, locate
from samformer.data.series import read_csv, read_series_csv
from samformer.experiments.ensembles import iter_ensembles
from samformer.experiments.store import read_run
from samformer.files import file_sha256, read_json, require_directory
from samformer.forecasting.modelfile import load_model, read_config
from samformer.training.checkpoint import read_checkpoint
from tests.helpers import run_cli

from .hostile import TINY, Refused, check_verdict, make_sources, prepare_user_files, snapshot

DEADLINE_SECONDS = 30


class Blocked(BaseException):
    """Raised by the deadline's alarm: the code under test blocked (opened a FIFO, read a device)."""


@contextlib.contextmanager
def deadline(seconds: float = DEADLINE_SECONDS) -> Iterator[None]:
    def expire(signum, frame):
        raise Blocked(f"still blocked after {seconds} s: a special file was opened")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def make_special(path: Path, kind: str) -> socket.socket | None:
    """Put a special file of `kind` at `path`: a FIFO, a listening UNIX socket, or a link to the /dev/zero device."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        return server
    else:
        os.symlink("/dev/zero", path)
    return None


KIND_WORDS = {"fifo": "FIFO", "socket": "socket", "device": "character device"}


Placement = Callable[[Path, Path], tuple[Path, Path]]  # (root, sources) -> (where the special file goes, the argument)


def in_model(name: str) -> Placement:
    """A model directory (copied from the sources) whose `name` is replaced by the special file; returns the directory."""

    def build(root: Path, sources: Path) -> tuple[Path, Path]:
        shutil.copytree(sources / "model", root / "model")
        (root / "model" / name).unlink()
        return root / "model" / name, root / "model"

    return build


def plain(name: str) -> Placement:
    return lambda root, sources: (root / name, root / name)


# reader -> (its placement, the call)
READERS: dict[str, tuple[Placement, Callable[[Path], object]]] = {
    "read_json": (plain("a.json"), read_json),
    "file_sha256": (plain("a.bin"), file_sha256),
    "read_checkpoint (train --resume)": (plain("checkpoint.safetensors"), read_checkpoint),
    "read_csv (predict, fit)": (plain("data.csv"), read_csv),
    "read_series_csv (train)": (plain("data.csv"), read_series_csv),
    "load_dataset by path": (plain("data.csv"), lambda p: load_dataset(p, 24, 6)),
    "content_sha256": (plain("data.csv"), content_sha256),
    "read_run (table)": (plain("seed0.json"), read_run),
    "read_config: config.json": (in_model("config.json"), read_config),
    "load_model: model.safetensors": (in_model("model.safetensors"), load_model),
    "Forecaster.load: config.json": (in_model("config.json"), Forecaster.load),
    "benchmark file in --data-dir": (plain("ETTh1.csv"), lambda p: locate("ETTh1", p.parent, download=False)),
}


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    return make_sources(tmp_path_factory.mktemp("sources"))


@pytest.mark.parametrize("kind", list(KIND_WORDS))
@pytest.mark.parametrize("reader", list(READERS))
def test_a_special_file_is_refused_by_every_reader_without_opening_it(tmp_path, sources, reader, kind):
    place, call = READERS[reader]
    special, argument = place(tmp_path, sources)
    server = make_special(special, kind)
    try:
        with deadline(), pytest.raises(SamformerError) as refused:
            call(argument)
    finally:
        if server is not None:
            server.close()
    message = str(refused.value)
    assert KIND_WORDS[kind] in message and "not a regular file" in message, message
    assert "\n" not in message


@pytest.mark.parametrize("kind", ["regular file", "fifo"])
def test_a_folder_argument_that_is_not_a_folder_is_refused_naming_its_kind(tmp_path, kind):
    path = tmp_path / "data"
    path.write_text("x") if kind == "regular file" else os.mkfifo(path)
    with deadline(), pytest.raises(SamformerError, match=rf"is a {'regular file' if kind == 'regular file' else 'FIFO'}.*not a folder"):
        require_directory(path, "folder of CSVs")
    with deadline(), pytest.raises(SamformerError, match="not a folder"):
        load_model(path)


def test_a_fifo_ensemble_record_is_skipped_with_a_warning(tmp_path, capsys):
    os.mkfifo(tmp_path / "ensemble-seeds0-1.json")
    with deadline():
        assert list(iter_ensembles(tmp_path)) == []
    assert "FIFO" in capsys.readouterr().err


# --- through the command line: one line, exit 2, nothing of the user's changed -----------------------------


def _fifo_run(root: Path, name: str) -> None:
    (root / "run" / name).unlink(missing_ok=True)
    os.mkfifo(root / "run" / name)


CLI: dict[str, tuple[Callable[[Path], None], Callable[[Path], list[str]]]] = {
    "train --resume with a FIFO checkpoint": (
        lambda r: (shutil.rmtree(r / "run"), (r / "run").mkdir(), os.mkfifo(r / "run" / "checkpoint.safetensors")),
        lambda r: ["train", "--dataset", str(r / "data.csv"), "--horizon", "6", "--out", str(r / "run"), "--resume", *TINY],
    ),
    "train --resume of a finished run with a FIFO result.json": (
        lambda r: _fifo_run(r, "result.json"),
        lambda r: ["train", "--dataset", str(r / "data.csv"), "--horizon", "6", "--out", str(r / "run"), "--resume", *TINY],
    ),
    "train --dataset a FIFO .csv": (
        lambda r: os.mkfifo(r / "pipe.csv"),
        lambda r: ["train", "--dataset", str(r / "pipe.csv"), "--horizon", "6", "--out", str(r / "new"), *TINY],
    ),
    "fit --csv a FIFO": (
        lambda r: os.mkfifo(r / "pipe.csv"),
        lambda r: ["fit", "--csv", str(r / "pipe.csv"), "--horizon", "6", "--out", str(r / "new"), *TINY],
    ),
    "predict --csv a FIFO": (
        lambda r: os.mkfifo(r / "pipe.csv"),
        lambda r: ["predict", "--model", str(r / "model"), "--csv", str(r / "pipe.csv"), "--out", str(r / "f.csv")],
    ),
    "plot with a FIFO config.json in --model": (
        lambda r: ((r / "model" / "config.json").unlink(), os.mkfifo(r / "model" / "config.json")),
        lambda r: ["plot", "training", "--model", str(r / "model"), "--out", str(r / "p.png")],
    ),
    "train --data-dir a FIFO": (
        lambda r: os.mkfifo(r / "pipe"),
        lambda r: ["train", "--dataset", "ETTh1", "--data-dir", str(r / "pipe"), "--horizon", "6", "--out", str(r / "new"), *TINY],
    ),
}


@pytest.mark.parametrize("case", list(CLI))
def test_the_commands_refuse_special_files_in_one_line(capsys, tmp_path, sources, case):
    prepare, argv = CLI[case]
    prepare_user_files(tmp_path, sources)
    prepare(tmp_path)
    before = snapshot(tmp_path)
    with deadline():
        code, out, err = run_cli(capsys, *argv(tmp_path))
    check_verdict(Refused(r"is a FIFO \(named pipe\), not a (regular file|folder)"), code, out, err, tmp_path, before)
