"""Reliability: repeatable runs, resume after interruption or SIGKILL, atomic writes, untrusted files, numerics.

Every comparison is against an independent run: a resumed training must end bit for bit where an
uninterrupted one ends, two runs with one seed must agree bit for bit, and a planted pickle payload
must be shown to be live (it runs under `pickle.loads`) before it is shown not to run under our loaders.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from samformer import ModelFileError, SAMformer, TrainConfig, fit
from samformer.data.series import split_frame
from samformer.errors import CheckpointError
from samformer.forecasting.modelfile import load_model, save_model
from samformer.nn.model import RevIN
from samformer.training.checkpoint import CHECKPOINT_FILE, read_checkpoint
from samformer.training.config import seed_everything
from samformer.training.fit import score_test

from .conftest import make_frame
from .helpers import flip_byte, run_cli

SRC = Path(__file__).resolve().parents[1] / "src" / "samformer"
FAST = ["--horizon", "12", "--seq-len", "48", "--batch-size", "32", "--quiet"]
# One thread everywhere: bit-identity needs a fixed thread count, and it is much faster on a busy machine.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and torch.equal(a[name], b[name]), f"{name} differs"


def comparable(result: dict) -> dict:
    """A result record without wall-clock times, which legitimately differ between runs."""
    record = {k: v for k, v in result.items() if k != "train_seconds"}
    record["history"] = [{k: v for k, v in h.items() if k != "seconds"} for h in result["history"]]
    return record


# --- determinism ----------------------------------------------------------------------------------


def test_same_seed_is_bit_identical_and_another_seed_differs(capsys, small_csv, tmp_path):
    runs = {}
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        code, _, err = run_cli(
            capsys, "train", "--dataset", str(small_csv), "--out", str(tmp_path / name), "--seed", seed, "--epochs", "3", *FAST
        )
        assert code == 0, err
        runs[name] = (tensors(tmp_path / name / "model.safetensors"), json.loads((tmp_path / name / "result.json").read_text()))
    (wa, ra), (wb, rb), (wc, rc) = runs["a"], runs["b"], runs["c"]
    assert_same_tensors(wa, wb)
    assert comparable(ra) == comparable(rb)
    assert ra["test_mse"] == rb["test_mse"] and len(ra["history"]) == 3
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert ra["test_mse"] != rc["test_mse"]


# --- resume in process (interruptions injected after chosen epochs) -------------------------------


class Interrupt(Exception):
    """Stands for a crash between the end of an epoch's work and its checkpoint."""


def train(data, cfg: TrainConfig, checkpoint: Path | None = None, resume: bool = False, stop_at: int | None = None):
    """Seeded model + fit; `stop_at` raises `Interrupt` during that epoch (before its checkpoint)."""
    seed_everything(cfg.seed)
    model = SAMformer(data.n_channels, data.seq_len, data.horizon)

    def crash(_model, record):
        if record["epoch"] == stop_at:
            raise Interrupt

    return model, score_test(model, data, cfg, fit(model, data, cfg, (crash,), checkpoint=checkpoint, resume=resume))


RESUME_CASES = {
    # name: (TrainConfig options, epochs to interrupt in) — "0" means just after the reference's best epoch
    "sam-cosine": ({"epochs": 7}, [2, 5]),
    "adam": ({"epochs": 6, "sam": False}, [3]),
    "asam": ({"epochs": 5, "adaptive": True, "rho": 0.5}, [2, 3, 4]),
    "early-stop": ({"epochs": 30, "patience": 2, "lr": 0.05, "lr_schedule": "constant"}, [0]),
}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_fit_resumed_after_interruptions_ends_exactly_as_an_uninterrupted_run(tmp_path, case):
    options, stops = RESUME_CASES[case]
    data = split_frame(make_frame(500), 24, 6)
    cfg = TrainConfig(batch_size=16, progress=False, **options)
    ref_model, ref = train(data, cfg)
    if case == "early-stop":
        assert ref.epochs_run < cfg.epochs, "the reference must stop early for this case to test the counters"
        stops = [ref.best_epoch + 2]  # the checkpoint then holds a non-zero patience counter
    path = tmp_path / "ckpt.safetensors"
    for stop in stops:
        with pytest.raises(Interrupt):
            train(data, cfg, path, resume=True, stop_at=stop)
        assert read_checkpoint(path)[1]["loop"]["epoch"] == stop - 1
    model, result = train(data, cfg, path, resume=True)
    assert_same_tensors(ref_model.state_dict(), model.state_dict())
    for field in ("val_mse", "test_mse", "test_mae", "best_epoch", "epochs_run"):
        assert getattr(result, field) == getattr(ref, field), field
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in result.history] == [
        {k: v for k, v in h.items() if k != "seconds"} for h in ref.history
    ]
    # resuming a finished checkpoint trains nothing more and gives the same result again
    _, again = train(data, cfg, path, resume=True)
    assert again.test_mse == ref.test_mse and again.epochs_run == ref.epochs_run


def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path):
    data = split_frame(make_frame(400), 24, 6)
    path = tmp_path / "ckpt.safetensors"
    train(data, TrainConfig(epochs=1, progress=False), path)
    with pytest.raises(CheckpointError, match=r"other settings \(lr: 0\.001 -> 0\.002\).*same options"):
        train(data, TrainConfig(epochs=1, lr=2e-3, progress=False), path, resume=True)
    other_data = split_frame(make_frame(400, seed=1), 24, 6)
    with pytest.raises(CheckpointError, match="the data differ"):
        train(other_data, TrainConfig(epochs=1, progress=False), path, resume=True)


def test_a_failing_checkpoint_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    data = split_frame(make_frame(400), 24, 6)
    path = tmp_path / "ckpt.safetensors"
    train(data, TrainConfig(epochs=1, progress=False), path)
    before = path.read_bytes()

    def half_written(tmp: Path, blob: bytes) -> None:
        with open(tmp, "wb") as f:
            f.write(b"\x00" * 100)  # a torn write, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_written)  # how the checkpoint's bytes reach its temporary file
    with pytest.raises(CheckpointError, match="No space left on device.*choose a writable --out"):
        train(data, TrainConfig(epochs=1, seed=1, progress=False), path)  # a new run over the old one
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.safetensors"]


DAMAGE = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "truncated or corrupt"),
    "bit-flip": (flip_byte, "does not match its own checksum"),
    "foreign": (lambda p: save_file({"x": torch.zeros(2)}, str(p), metadata={"format": "other"}), "not a samformer checkpoint"),
    "empty": (lambda p: p.write_bytes(b""), "truncated or corrupt"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_checkpoints_are_refused_with_advice(tmp_path, damage):
    data = split_frame(make_frame(400), 24, 6)
    path = tmp_path / "ckpt.safetensors"
    train(data, TrainConfig(epochs=1, progress=False), path)
    corrupt, message = DAMAGE[damage]
    corrupt(path)
    with pytest.raises(CheckpointError, match=f"{message}.*(delete|--overwrite)"):
        train(data, TrainConfig(epochs=2, progress=False), path, resume=True)


# --- SIGKILL of a real `samformer train` at random points -----------------------------------------


def checkpoint_epoch(path: Path) -> int:
    """Epochs completed in the checkpoint at `path` (0 if none); reads the header only."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return json.loads(f.metadata()["state"])["loop"]["epoch"]
    except FileNotFoundError:
        return 0


def test_sigkill_at_random_points_then_resume_gives_the_uninterrupted_result(tmp_path):
    csv = tmp_path / "series.csv"
    make_frame(1500).to_csv(csv)
    argv = [sys.executable, "-m", "samformer", "train", "--dataset", str(csv), "--epochs", "12", *FAST]

    def start(out: Path, *extra: str) -> subprocess.Popen:
        return subprocess.Popen([*argv, "--out", str(out), *extra], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    reference = start(tmp_path / "reference")
    assert reference.wait(timeout=300) == 0, reference.stderr.read()
    ref_result = json.loads((tmp_path / "reference" / "result.json").read_text())
    epoch_seconds = max(h["seconds"] for h in ref_result["history"])

    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    out, ckpt, kills, last_epoch = tmp_path / "killed", tmp_path / "killed" / CHECKPOINT_FILE, [], 0
    for round_ in range(5):
        proc = start(out, *(["--resume"] if round_ else []))
        deadline = time.monotonic() + 120
        if round_ == 0:
            time.sleep(rng.uniform(0, 2.0))  # anywhere from start-up to the first epochs
        else:  # wait for at least one more epoch, then strike at a random moment of the next one
            while checkpoint_epoch(ckpt) <= last_epoch and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 1.2 * epoch_seconds))
        if proc.poll() is not None:
            break  # finished before the blow: no kill this round
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        last_epoch = checkpoint_epoch(ckpt)
        kills.append(last_epoch)
        if ckpt.exists():
            read_checkpoint(ckpt)  # never half-written: parses and matches its checksum
        assert not (out / "model.safetensors").exists() or last_epoch == 12, f"seed {seed}"
    print(f"SIGKILL seed {seed}: {len(kills)} kills, checkpointed epochs at each kill {kills}")
    assert len(kills) >= 4, f"only {len(kills)} kills landed (seed {seed}, epochs at kills {kills})"
    assert kills[-1] > 0, f"no kill after a checkpoint (seed {seed}, {kills})"
    out.mkdir(exist_ok=True)
    # leftovers of writes interrupted by SIGKILL are cleaned on resume; other files are left alone
    (out / f".{CHECKPOINT_FILE}.abc123.tmp").write_bytes(b"partial")
    (out / ".result.json.xyz.tmp").write_bytes(b"partial")
    (out / "notes.tmp").write_text("the user's")
    final = start(out, "--resume")
    assert final.wait(timeout=300) == 0, final.stderr.read()
    result = json.loads((out / "result.json").read_text())
    assert comparable(result) == comparable(ref_result), f"seed {seed}, epochs at kills {kills}"
    assert_same_tensors(tensors(out / "model.safetensors"), tensors(tmp_path / "reference" / "model.safetensors"))
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors", "notes.tmp", "result.json"]


def test_resume_of_a_finished_run_changes_nothing(capsys, small_csv, tmp_path):
    out = tmp_path / "run"
    assert run_cli(capsys, "train", "--dataset", str(small_csv), "--out", str(out), "--epochs", "1", *FAST)[0] == 0
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    code, stdout, err = run_cli(capsys, "train", "--dataset", str(small_csv), "--out", str(out), "--epochs", "1", "--resume", *FAST)
    assert code == 0 and "nothing to resume" in err
    assert json.loads(stdout.strip().splitlines()[-1])["test_mse"] == json.loads(before["result.json"][0])["test_mse"]
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == before


# --- untrusted files ------------------------------------------------------------------------------


class Payload:
    """Unpickling this creates the directory `marker`: stands for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_the_payload_is_live_under_pickle(tmp_path):
    """Control for the tests below: this payload does run when unpickled."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.is_dir()


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_a_pickle_planted_as_model_weights_is_refused_and_never_runs(tmp_path, writer):
    model_dir, marker = tmp_path / "model", tmp_path / "pwned"
    save_model(model_dir, SAMformer(3, 24, 6))
    weights = model_dir / "model.safetensors"
    if writer == "pickle":
        weights.write_bytes(pickle.dumps(Payload(marker)))
    else:
        torch.save(Payload(marker), weights)
    with pytest.raises(ModelFileError, match="model.safetensors"):
        load_model(model_dir)
    assert not marker.exists()


def test_a_pickle_planted_as_checkpoint_is_refused_by_resume_and_never_runs(capsys, small_csv, tmp_path):
    out, marker = tmp_path / "run", tmp_path / "pwned"
    out.mkdir()
    torch.save({"model": Payload(marker)}, out / CHECKPOINT_FILE)
    before = (out / CHECKPOINT_FILE).read_bytes()
    code, _, err = run_cli(capsys, "train", "--dataset", str(small_csv), "--out", str(out), "--epochs", "1", "--resume", *FAST)
    assert code == 2 and "not a readable samformer checkpoint" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists()
    assert (out / CHECKPOINT_FILE).read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == [CHECKPOINT_FILE]


def test_no_code_executing_loader_in_the_package():
    """No pickle, no unsafe torch.load / np.load, no eval/exec anywhere in src/samformer."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            unsafe = (
                re.search(r"\bimport (c?pickle|dill|joblib|shelve|marshal)\b|\bpickle\.", code)
                or (re.search(r"torch\.load\(", code) and "weights_only=True" not in code)
                or "allow_pickle=True" in code
                or re.search(r"(?<![\w.])(eval|exec)\(", code)
            )
            if unsafe:
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert not offenders, offenders


# --- numerics -------------------------------------------------------------------------------------


def test_training_on_extreme_scales_and_a_constant_channel_stays_finite():
    frame = make_frame(500, n_channels=4)
    frame["c0"] = 1e6 + 1e3 * frame["c0"]  # ~1e6
    frame["c1"] = 1e-6 * frame["c1"]  # ~1e-6
    frame["c2"] = 7.0  # constant
    data = split_frame(frame, 24, 6)
    seed_everything(0)
    model = SAMformer(4, 24, 6)
    cfg = TrainConfig(epochs=2, batch_size=16, progress=False)
    result = score_test(model, data, cfg, fit(model, data, cfg))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(math.isfinite(v) for v in (result.val_mse, result.test_mse, result.test_mae))
    assert all(math.isfinite(h["train_loss"]) for h in result.history)


def test_revin_on_raw_extreme_windows_is_finite_and_invertible():
    """Unscaled windows: a channel ~1e6 with tiny wiggles, one ~1e-6, one constant (variance 0)."""
    t = torch.linspace(0, 6, 48)
    x = torch.stack([1e6 + torch.sin(t), 1e-6 * torch.sin(t), torch.full_like(t, 3.0)])[None]  # (1, D=3, L)
    revin = RevIN(3)
    z, stats = revin.normalize(x)
    assert torch.isfinite(z).all() and torch.isfinite(stats[1]).all()
    assert z[0, 2].abs().max() == 0  # a constant channel normalises to 0, not NaN (eps under the root)
    back = revin.denormalize(z, stats)
    torch.testing.assert_close(back, x, rtol=1e-6, atol=1e-6)
    y = SAMformer(3, 48, 12)(x.transpose(1, 2))
    assert torch.isfinite(y).all()


def test_a_nan_loss_stops_training_and_writes_no_model(capsys, small_csv, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("kept")
    code, _, err = run_cli(
        capsys, "train", "--dataset", str(small_csv), "--out", str(out), "--epochs", "2", "--lr", "1e30", "--no-sam", *FAST
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert re.search(r"training loss became (nan|inf) in epoch 1; lower --lr", err), err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"] and (out / "notes.txt").read_text() == "kept"


def test_a_nan_epoch_is_never_checkpointed(tmp_path):
    data = split_frame(make_frame(400), 24, 6)
    path = tmp_path / "ckpt.safetensors"
    seed_everything(0)
    model = SAMformer(3, 24, 6)
    fit(model, data, TrainConfig(epochs=1, progress=False), checkpoint=path)
    good = path.read_bytes()
    with torch.no_grad():
        model.forecaster.bias.fill_(math.nan)
    with pytest.raises(FloatingPointError, match="lower --lr"):
        fit(model, data, TrainConfig(epochs=1, progress=False), checkpoint=path)
    assert path.read_bytes() == good
    stored = read_checkpoint(path)[0]
    assert all(torch.isfinite(v).all() for k, v in stored.items() if v.is_floating_point())
    assert np.isfinite(read_checkpoint(path)[1]["loop"]["best_val"])


def test_atomically_written_files_get_the_usual_permissions(tmp_path):
    # mkstemp creates 0600 files; a result or model must be as readable as any file the user writes.
    from samformer.files import write_json

    previous = os.umask(0o022)
    try:
        write_json(tmp_path / "result.json", {"a": 1})
    finally:
        os.umask(previous)
    assert (tmp_path / "result.json").stat().st_mode & 0o777 == 0o644


def test_write_json_creates_missing_directories_only_when_asked(tmp_path):
    from samformer.files import read_json, write_json

    target = tmp_path / "a" / "b" / "result.json"
    with pytest.raises(FileNotFoundError):
        write_json(target, {"a": 1})
    assert not (tmp_path / "a").exists()
    write_json(target, {"a": [1, 2]}, make_dirs=True)
    assert read_json(target) == {"a": [1, 2]}
