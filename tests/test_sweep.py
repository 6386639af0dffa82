"""`samformer sweep` on a local Ray instance with 2 CPUs: the same run files as `samformer benchmark`,
retries of killed or transiently failing tasks, finished runs kept across failures, and the Tune search."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import sys
import uuid
from pathlib import Path

import pytest

from samformer.cli.main import main
from samformer.errors import SamformerError
from samformer.experiments.grid import grid
from samformer.experiments.run import RunSpec
from samformer.experiments.scheduler import train_record
from samformer.experiments.store import run_path
from samformer.experiments.sweep import SUMMARY_FILE, run_search, run_sweep
from samformer.experiments.tables import render_table, summarise
from samformer.files import write_json
from tests.conftest import make_frame

ray = pytest.importorskip("ray")

TINY = ["--horizons", "4,8", "--seeds", "0,1", "--seq-len", "16", "--epochs", "2"]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "small.csv"
    make_frame(600, 3).to_csv(path)
    return path


def _run_dir(csv: Path) -> str:
    """A CSV's run directory as documented: its name and the first 8 hex digits of the SHA-256 of its resolved path."""
    return f"{csv.stem}-{hashlib.sha256(str(csv.resolve()).encode()).hexdigest()[:8]}"


def _specs(csv: Path) -> list[RunSpec]:
    return grid([str(csv)], [4, 8], [0, 1], seq_len=16, train_options={"epochs": 2})


def _without_timings(record: dict) -> dict:
    record = {k: v for k, v in record.items() if k != "train_seconds"}
    record["history"] = [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in record["history"]]
    return record


def _files(root: Path) -> dict[str, dict]:
    return {str(p.relative_to(root)): json.loads(p.read_text()) for p in sorted(root.rglob("seed*.json"))}


def test_sweep_writes_the_run_files_of_a_sequential_benchmark(local_ray, csv, tmp_path, capsys):
    assert main(["sweep", "--datasets", str(csv), *TINY, "--out", str(tmp_path / "ray"), "--workers", "2", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["runs"], summary["ran"], summary["skipped"]) == (4, 4, 0)
    assert main(["benchmark", "--datasets", str(csv), *TINY, "--out", str(tmp_path / "seq"), "--workers", "1"]) == 0

    swept, sequential = _files(tmp_path / "ray"), _files(tmp_path / "seq")
    assert sorted(swept) == sorted(sequential) and len(swept) == 4
    # Training is deterministic on CPU given the seed. The sweep trains with 1 torch thread per task
    # (2 cores / 2 workers), the sequential benchmark with 2; at these shapes no reduction is split
    # across threads, so everything but the timings is equal exactly.
    for name in swept:
        assert _without_timings(swept[name]) == _without_timings(sequential[name]), name
    assert render_table(summarise(tmp_path / "ray")) == render_table(summarise(tmp_path / "seq"))

    # A second sweep finds everything stored and runs nothing.
    assert main(["sweep", "--datasets", str(csv), *TINY, "--out", str(tmp_path / "ray"), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["skipped"] == 4


def test_a_killed_worker_and_a_transient_error_are_retried(local_ray, csv, tmp_path):
    attempts = tmp_path / "attempts"
    attempts.mkdir()

    def flaky(spec: RunSpec, data_dir: str | None, threads: int) -> dict:
        tag = f"H{spec.horizon}-seed{spec.seed}"
        first = not any(p.name.startswith(tag + ".") for p in attempts.iterdir())
        (attempts / f"{tag}.{uuid.uuid4().hex}").touch()
        if first and tag == "H8-seed1":
            os._exit(1)  # the worker process dies mid-run
        if first and tag == "H4-seed1":
            raise RuntimeError("transient")
        return train_record(spec, data_dir, threads)

    report = run_sweep(_specs(csv), tmp_path / "out", workers=2, max_retries=1, progress=False, task=flaky)
    assert (report.ran, report.skipped) == (4, 0)
    tries = {tag: sum(p.name.startswith(tag + ".") for p in attempts.iterdir()) for tag in ("H8-seed1", "H4-seed1", "H4-seed0")}
    assert tries == {"H8-seed1": 2, "H4-seed1": 2, "H4-seed0": 1}
    assert len(_files(tmp_path / "out")) == 4


def test_a_failing_run_keeps_the_finished_ones_and_a_rerun_does_only_it(local_ray, csv, tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()

    def broken(spec: RunSpec, data_dir: str | None, threads: int) -> dict:
        (calls / f"H{spec.horizon}-seed{spec.seed}.{uuid.uuid4().hex}").touch()
        if (spec.horizon, spec.seed) == (8, 1):
            raise SamformerError("bad input")  # would fail again: not retried
        return train_record(spec, data_dir, threads)

    with pytest.raises(SamformerError, match="1 of 4 runs failed"):
        run_sweep(_specs(csv), tmp_path / "out", workers=2, progress=False, task=broken)
    assert sum(p.name.startswith("H8-seed1.") for p in calls.iterdir()) == 1
    assert sorted(_files(tmp_path / "out")) == [f"samformer/{_run_dir(csv)}/H{h}/seed{s}.json" for h, s in ((4, 0), (4, 1), (8, 0))]

    report = run_sweep(_specs(csv), tmp_path / "out", workers=2, progress=False)
    assert (report.skipped, report.ran) == (3, 1)
    assert len(_files(tmp_path / "out")) == 4


def test_search_stores_each_trial_and_selects_the_lowest_validation_mse(local_ray, csv, tmp_path):
    specs = grid([str(csv)], [4], [0], seq_len=16, train_options={"epochs": 2})
    report = run_search(specs, {"lr": [1e-3, 1e-2]}, tmp_path / "search", workers=2, progress=False)
    assert (report.total, report.ran) == (2, 2)
    files = _files(tmp_path / "search")
    assert sorted(files) == [f"lr={lr}/samformer/{_run_dir(csv)}/H4/seed0.json" for lr in ("0.001", "0.01")]
    # Independent truth: each trial trained here, in this process, with its setting.
    direct = {}
    for lr in (1e-3, 1e-2):
        record = train_record(RunSpec(str(csv), 4, seq_len=16, train_options={"epochs": 2, "lr": lr}), None, 1)
        direct[f"lr={lr}"] = record["val_mse"]
        stored = files[f"lr={lr}/samformer/{_run_dir(csv)}/H4/seed0.json"]
        assert stored["train_config"]["lr"] == lr
        assert _without_timings(stored) == _without_timings(json.loads(json.dumps(record)))  # as stored: lists, not tuples
    summary = json.loads((tmp_path / "search" / SUMMARY_FILE).read_text())
    assert summary["best"][0]["best"] == min(direct, key=direct.get)
    assert summary["best"][0]["val_mse_by_setting"] == pytest.approx(direct)
    # The table tells the trials apart by their protocol (the settings that differ from the paper's).
    table = render_table(summarise(tmp_path / "search"))
    assert "custom(epochs=2,lr=0.01,seq_len=16)" in table and "custom(epochs=2,seq_len=16)" in table


def test_sweep_without_ray_says_how_to_install_it(monkeypatch, capsys, csv):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    assert main(["sweep", "--datasets", str(csv), "--horizons", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'samformer[ray]'" in err


@pytest.mark.parametrize("search", ["rho", "gamma=1,2", "lr=0", "batch_size=1.5", "rho=-1"])
def test_bad_search_options_are_one_line_errors(capsys, csv, search):
    assert main(["sweep", "--datasets", str(csv), "--horizons", "4", "--search", search]) == 2
    assert "bad --search" in capsys.readouterr().err


def test_a_relative_data_directory_from_the_environment_reaches_workers_as_absolute(tmp_path, monkeypatch):
    # Ray workers and Tune trials run in other directories: "../shared/data" must not be passed as is.
    from samformer.experiments.sweep import _absolute_data_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAMFORMER_DATA", "data")
    assert _absolute_data_dir(None) == str(tmp_path / "data")
    assert _absolute_data_dir("other") == str(tmp_path / "other")
    monkeypatch.delenv("SAMFORMER_DATA")
    assert _absolute_data_dir(None) is None


@pytest.mark.parametrize("search", [False, True])
def test_a_sweep_compares_stored_runs_with_the_dataset_in_its_data_directory(tmp_path, monkeypatch, data_dir, search):
    # The data are found only through `data_dir` (no environment, an empty cache), and the stored run was
    # trained on another ETTh1 file: the sweep must refuse it, not skip the run as done.
    monkeypatch.delenv("SAMFORMER_DATA", raising=False)
    monkeypatch.setenv("SAMFORMER_CACHE", str(tmp_path / "empty-cache"))
    spec = RunSpec("ETTh1", 96)
    record = {
        "dataset": "ETTh1",
        "variant": "samformer",
        "protocol": spec.protocol(),
        "horizon": 96,
        "seq_len": 512,
        "seed": 0,
        **dict.fromkeys(("test_mse", "test_mae", "val_mse"), 0.5),
        "train_config": json.loads(json.dumps(dataclasses.asdict(spec.train_config()))),
        "data_protocol": {"source": {"path": "/elsewhere/ETTh1.csv", "sha256": "0" * 64}},
    }
    out = tmp_path / "sweep"
    stored = out / "rho=0.7" if search else out
    write_json(run_path(stored, spec), record, make_dirs=True)
    with pytest.raises(SamformerError, match="a different configuration.*dataset path"):
        if search:
            run_search([spec], {"rho": [0.7]}, out, data_dir=data_dir, progress=False)
        else:
            run_sweep([spec], out, data_dir=data_dir, progress=False)
