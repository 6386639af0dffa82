"""Stacks as runs: checkpoint/resume of a whole stack, the memory check, and `samformer train --seeds`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import samformer.training.stacked.checkpoint as stacked_checkpoint
from samformer import SAMformer, TrainConfig
from samformer.cli.main import main
from samformer.data.series import split_frame
from samformer.errors import CheckpointError
from samformer.nn.stacked import StackedSAMformer
from samformer.training.stacked.evaluation import evaluate_stacked, score_stacked
from samformer.training.stacked.fit import fit_stacked, seeded_models
from samformer.training.stacked.memory import StackMemoryError, bytes_per_model, check_stack_memory

from .conftest import make_frame
from .records import assert_same_record

L, H = 24, 6
SETTINGS = [  # the first stops early, well before the others: it has left the stack when the run is interrupted
    {"seed": 0, "lr": 0.05, "patience": 1, "lr_schedule": "constant"},
    {"seed": 1, "lr": 3e-3, "rho": 0.2},
    {"seed": 2, "lr": 2e-3, "rho": 0.5, "adaptive": True, "weight_decay": 1e-3},
]


class Interrupt(Exception):
    """Stands for a crash between the end of an epoch's work and its checkpoint."""


def train_stack(data, cfgs, checkpoint: Path | None = None, resume: bool = False):
    models = seeded_models(lambda: SAMformer(data.n_channels, L, H), [c.seed for c in cfgs])
    results, ensemble = score_stacked(models, data, cfgs[0], fit_stacked(models, data, cfgs, checkpoint=checkpoint, resume=resume))
    return models, results, ensemble


def interrupt_at(monkeypatch, epoch: int) -> None:
    """The stack's checkpoint after `epoch` is never written: the run crashes just before."""
    save = stacked_checkpoint.StackCheckpoints.save

    def crashing(self, loops):
        if max(loop.epoch for loop in loops) == epoch:
            raise Interrupt
        save(self, loops)

    monkeypatch.setattr(stacked_checkpoint.StackCheckpoints, "save", crashing)


def test_a_stack_resumed_after_interruptions_ends_exactly_as_an_uninterrupted_one(tmp_path, monkeypatch):
    data = split_frame(make_frame(500), L, H)
    cfgs = [TrainConfig(**{"epochs": 6, "batch_size": 16, "progress": False, **s}) for s in SETTINGS]
    ref_models, ref, ref_ensemble = train_stack(data, cfgs)
    assert ref[0].epochs_run < 4 < ref[1].epochs_run, "model 0 must have left the stack by the second interruption"
    path = tmp_path / "stack.safetensors"
    for stop in (2, 4):
        with monkeypatch.context() as patch:
            interrupt_at(patch, stop)
            with pytest.raises(Interrupt):
                train_stack(data, cfgs, path, resume=True)
    models, results, ensemble = train_stack(data, cfgs, path, resume=True)
    for ref_model, model, a, b in zip(ref_models, models, ref, results, strict=True):
        for (name, p), q in zip(ref_model.state_dict().items(), model.state_dict().values(), strict=True):
            assert torch.equal(p, q), name
        assert (a.val_mse, a.test_mse, a.best_epoch, a.epochs_run) == (b.val_mse, b.test_mse, b.best_epoch, b.epochs_run)
        assert [{k: v for k, v in h.items() if k != "seconds"} for h in a.history] == [
            {k: v for k, v in h.items() if k != "seconds"} for h in b.history
        ]
    assert ensemble == ref_ensemble


def test_resuming_a_stack_with_other_settings_is_one_clear_error(tmp_path):
    data = split_frame(make_frame(400), L, H)
    cfgs = [TrainConfig(epochs=1, progress=False, seed=s) for s in (0, 1)]
    path = tmp_path / "stack.safetensors"
    train_stack(data, cfgs, path)
    other = [cfgs[0], TrainConfig(epochs=1, progress=False, seed=2)]
    with pytest.raises(CheckpointError, match=r"other settings \(seed: \[0, 1\] -> \[0, 2\]\).*same options"):
        train_stack(data, other, path, resume=True)
    with pytest.raises(CheckpointError, match=r"other settings \(k: 2 -> 3"):
        train_stack(data, [*cfgs, TrainConfig(epochs=1, progress=False, seed=2)], path, resume=True)


def test_the_ensemble_is_scored_on_the_mean_of_the_forecasts():
    data = split_frame(make_frame(400), L, H)
    models = seeded_models(lambda: SAMformer(data.n_channels, L, H), [0, 1, 2])
    windows = data.windows("test")
    x, y = windows.batch(slice(0, len(windows)))
    with torch.no_grad():
        mean = torch.stack([m.forward_channels_first(x) for m in models]).mean(dim=0)
    scores = evaluate_stacked(StackedSAMformer(models), windows)
    assert scores["ensemble_mse"] == pytest.approx((mean - y).square().mean().item(), rel=1e-5)
    assert scores["ensemble_mae"] == pytest.approx((mean - y).abs().mean().item(), rel=1e-5)


# --- memory


def test_a_stack_that_does_not_fit_says_what_it_needs_and_a_k_that_fits():
    model = SAMformer(7, 512, 96)
    per_model = bytes_per_model(model, 32)
    n_parameters = sum(p.numel() for p in model.parameters())
    assert per_model >= 4 * 5 * n_parameters  # at least weights, gradient, SAM's copy and Adam's two moments in fp32
    with pytest.raises(StackMemoryError, match=r"k=1000000000 models needs about .* GB .* train at most k=\d+ models at once"):
        check_stack_memory(model, 10**9, 32, torch.device("cpu"))
    with pytest.raises(StackMemoryError, match="train at most k=3 models"):
        check_stack_memory(model, 8, 32, torch.device("cpu"), available=3 * per_model + 1)
    check_stack_memory(model, 3, 32, torch.device("cpu"), available=3 * per_model)  # fits: no error


# --- samformer train --seeds


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


FAST = ["--horizon", str(H), "--seq-len", str(L), "--batch-size", "32", "--epochs", "3", "--quiet"]


def test_train_seeds_writes_each_seed_as_its_own_run_would_and_the_ensemble(capsys, small_csv, tmp_path):
    code, out, err = cli(capsys, "train", "--dataset", str(small_csv), "--out", str(tmp_path / "stack"), "--seeds", "3,1", *FAST)
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    forecasts = []
    for seed, run in zip((3, 1), summary["runs"], strict=True):
        code, single_out, err = cli(
            capsys, "train", "--dataset", str(small_csv), "--out", str(tmp_path / f"alone{seed}"), "--seed", str(seed), *FAST
        )
        assert code == 0, err
        alone, stacked = tmp_path / f"alone{seed}", tmp_path / "stack" / f"seed{seed}"
        assert sorted(p.name for p in alone.iterdir()) == sorted(p.name for p in stacked.iterdir())
        assert_same_record(json.loads((stacked / "result.json").read_text()), json.loads((alone / "result.json").read_text()))
        assert run["test_mse"] == pytest.approx(json.loads(single_out.strip().splitlines()[-1])["test_mse"], abs=1e-6)
        forecasts.append(json.loads((stacked / "result.json").read_text())["test_mse"])
    assert not (tmp_path / "stack" / "checkpoint.safetensors").exists()
    assert summary["seeds"] == [3, 1] and summary["ensemble_test_mse"] < max(forecasts)  # averaging cannot be worse than the worst
    assert json.loads((tmp_path / "stack" / "ensemble.json").read_text())["test_mse"] == summary["ensemble_test_mse"]


@pytest.mark.parametrize(("seeds", "message"), [("0,1,0", "seed 0 is repeated"), (",", "at least one seed"), ("a", "integer seeds")])
def test_bad_seed_lists_are_one_line_exit_2_and_nothing_written(capsys, small_csv, tmp_path, seeds, message):
    code, _, err = cli(capsys, "train", "--dataset", str(small_csv), "--out", str(tmp_path / "out"), "--seeds", seeds, *FAST)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_train_seeds_resumes_an_interrupted_stack_and_refuses_other_settings(capsys, small_csv, tmp_path, monkeypatch):
    base = ["train", "--dataset", str(small_csv), "--seeds", "0,1", *FAST]
    code, out, err = cli(capsys, *base, "--out", str(tmp_path / "straight"))
    assert code == 0, err
    with monkeypatch.context() as patch:
        interrupt_at(patch, 2)
        with pytest.raises(Interrupt):
            main([*base, "--out", str(tmp_path / "resumed")])
    assert (tmp_path / "resumed" / "checkpoint.safetensors").exists() and not (tmp_path / "resumed" / "seed0").exists()
    code, _, err = cli(capsys, *base, "--out", str(tmp_path / "resumed"), "--resume", "--lr", "0.01")
    assert code == 2 and "other settings (lr: 0.001 -> 0.01)" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(capsys, *base, "--out", str(tmp_path / "resumed"))
    assert code == 2 and "pass --resume" in err
    code, resumed, err = cli(capsys, *base, "--out", str(tmp_path / "resumed"), "--resume")
    assert code == 0, err
    for seed in (0, 1):
        a, b = (json.loads((tmp_path / d / f"seed{seed}" / "result.json").read_text()) for d in ("straight", "resumed"))
        assert_same_record(a, b, tolerance=0.0)
    summary = json.loads(resumed.strip().splitlines()[-1])
    assert summary["ensemble_test_mse"] == json.loads(out.strip().splitlines()[-1])["ensemble_test_mse"]
    before = (tmp_path / "resumed" / "seed0" / "model.safetensors").read_bytes()
    code, again, err = cli(capsys, *base, "--out", str(tmp_path / "resumed"), "--resume")  # finished: nothing to do
    assert code == 0 and "nothing to resume" in err and json.loads(again.strip().splitlines()[-1]) == summary
    assert (tmp_path / "resumed" / "seed0" / "model.safetensors").read_bytes() == before
