"""Data-parallel training: N gloo processes with a global batch B train exactly as one process with B.

Independent truth: the single-process `fit` (whose numbers the rest of the suite pins down). Two CPU
processes, each holding half of every global batch, must reach the same weights (to 1e-5) with SAM on
and off, with a ragged last batch that leaves rank 1 without any window, and with masked targets whose
observed counts differ between the shards.

One parameter is left out of the weight comparison: the key bias of the attention. Its gradient is
zero in exact arithmetic (softmax over keys is invariant to the constant q·b_k it adds to every score
of a row), so what it receives is rounding noise, which Adam normalises into steps of size lr: it
wanders by ~lr per step in any two runs whose sums are ordered differently (one process with another
thread count too), and it has no effect on any forecast. The forecasts are compared instead.

The two processes are started by torchrun itself (`--standalone`, which picks its own free port), as a
user would start them; a failed launch shows torchrun's stderr in the assertion message.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from samformer.data.series import split_frame
from samformer.nn.model import SAMformer
from samformer.training import distributed
from samformer.training.config import TrainConfig, seed_everything
from samformer.training.fit import fit, score_test
from tests.conftest import make_frame

# Ratio split at L=16, H=4 and B=8: 603 rows give 403 training windows, so each epoch ends with a
# batch of 3 (shards of 2 and 1: a plain average of the ranks' gradients would be wrong); 600 rows give
# 401 windows, a last batch of 1 (rank 1's shard is empty).
ROWS, SEQ_LEN, HORIZON, BATCH = 600, 16, 4, 8
ROOT = Path(__file__).resolve().parents[1]
FUNCTIONLESS = {"attention.key.bias"}  # see the module docstring
CASES = {
    "sam": {"sam": True, "rows": 603},
    "no-sam": {"sam": False, "rows": 603},
    "sam-empty-shard": {"sam": True, "rows": 600},
    "sam-masked-sigma-reparam": {"sam": True, "rows": 600, "masked": True, "sigma_reparam": True},
}


def _data(masked: bool, rows: int = ROWS):
    data = split_frame(make_frame(rows, 3), SEQ_LEN, HORIZON)
    if masked:  # about a fifth of the values missing, not evenly spread over the shards
        rng = np.random.default_rng(1)
        # One mask over the whole series, cut like the splits: the splits overlap (val starts seq_len rows before the
        # end of train) and may share storage, so each row must be missing in every split that holds it, or none.
        observed = rng.random((rows, 3)) > 0.2
        data.masks = {s: torch.from_numpy(observed[a:b]) for s, (a, b) in data.borders.items()}
        for split, mask in data.masks.items():
            getattr(data, split)[~mask] = float("nan")  # must never reach the loss
    return data


def _train(case: str, batch_size: int = BATCH, epochs: int = 2) -> tuple[SAMformer, object]:
    options = dict(CASES[case])
    data = _data(options.pop("masked", False), options.pop("rows"))
    seed_everything(0)
    model = SAMformer(3, SEQ_LEN, HORIZON, sigma_reparam=options.pop("sigma_reparam", False))
    cfg = TrainConfig(lr=1e-3, batch_size=batch_size, epochs=epochs, patience=10, seed=0, device="cpu", progress=False, **options)
    return model, score_test(model, data, cfg, fit(model, data, cfg))  # the test split shared by the ranks too


def _worker(out: str) -> None:
    """One torchrun process: train every case in the process group and store its weights and result."""
    torch.set_num_threads(1)
    rank = os.environ["RANK"]
    with distributed.session():
        for case in CASES:
            model, result = _train(case)
            save_file(model.state_dict(), f"{out}/{case}-rank{rank}.safetensors")
            Path(f"{out}/{case}-rank{rank}.json").write_text(json.dumps(result.to_dict()))


def _torchrun(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc-per-node 2 ARGS` (it picks a free port itself); fails with its stderr."""
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    # this checkout's package and tests (not whichever samformer the environment has installed)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    done = subprocess.run([*launch, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    assert done.returncode == 0, f"torchrun exited with {done.returncode}:\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    _torchrun("-m", "tests.test_distributed", str(out))
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_with_half_batches_match_one_process_with_the_global_batch(two_process_runs, case):
    torch.set_num_threads(1)
    model, result = _train(case)
    single = model.state_dict()
    rank0 = load_file(two_process_runs / f"{case}-rank0.safetensors")
    rank1 = load_file(two_process_runs / f"{case}-rank1.safetensors")
    assert set(rank0) == set(single)  # the unwrapped model's names: no "module." prefix
    for name in single:
        assert torch.equal(rank0[name], rank1[name]), f"{name} differs between the ranks"
    diff = max((rank0[n] - v).abs().max().item() for n, v in single.items() if n not in FUNCTIONLESS)
    two_proc = SAMformer(3, SEQ_LEN, HORIZON, sigma_reparam=CASES[case].get("sigma_reparam", False)).eval()
    two_proc.load_state_dict(rank0)
    x, _ = _data(False).windows("test").batch(slice(None))
    with torch.no_grad():
        forecast_diff = (two_proc.forward_channels_first(x) - model.eval().forward_channels_first(x)).abs().max().item()
    print(f"{case}: max |w_2proc - w_1proc| = {diff:.2e}, max forecast difference = {forecast_diff:.2e}")
    assert diff < 1e-5
    assert forecast_diff < 1e-5

    # The comparison is meaningful: training moved the weights far more than the tolerance, and another
    # batch size (what each rank sees locally) would have ended elsewhere.
    seed_everything(0)
    initial = SAMformer(3, SEQ_LEN, HORIZON, sigma_reparam=CASES[case].get("sigma_reparam", False)).state_dict()
    assert max((single[n] - initial[n]).abs().max().item() for n in single) > 1e-2
    half, _ = _train(case, batch_size=BATCH // 2)
    assert max((half.state_dict()[n] - rank0[n]).abs().max().item() for n in single if n not in FUNCTIONLESS) > 1e-3

    two = json.loads((two_process_runs / f"{case}-rank0.json").read_text())
    assert two["best_epoch"] == result.best_epoch and two["epochs_run"] == result.epochs_run
    for key in ("val_mse", "test_mse", "test_mae"):
        assert two[key] == pytest.approx(getattr(result, key), rel=1e-5)
    for mine, theirs in zip(result.history, two["history"], strict=True):
        assert theirs["train_loss"] == pytest.approx(mine["train_loss"], rel=1e-5)
        assert theirs["val_mse"] == pytest.approx(mine["val_mse"], rel=1e-5)


def test_torchrun_train_writes_one_result_matching_a_single_process_run(tmp_path, capsys):
    csv = tmp_path / "small.csv"
    make_frame(ROWS, 3).to_csv(csv)
    args = ["train", "--dataset", str(csv), "--horizon", str(HORIZON), "--seq-len", str(SEQ_LEN), "--epochs", "2", "--batch-size", "8"]
    done = _torchrun("-m", "samformer", *args, "--out", str(tmp_path / "ddp"), timeout=120)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1  # only rank 0 prints its summary
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["config.json", "model.safetensors", "result.json"]
    record = json.loads((tmp_path / "ddp" / "result.json").read_text())
    assert all(math.isfinite(record[k]) for k in ("test_mse", "test_mae", "val_mse"))
    assert json.loads(lines[0])["test_mse"] == record["test_mse"]

    from samformer.cli.main import main

    torch.set_num_threads(1)
    assert main([*args, "--out", str(tmp_path / "one"), "--quiet"]) == 0
    single = json.loads((tmp_path / "one" / "result.json").read_text())
    assert record["test_mse"] == pytest.approx(single["test_mse"], rel=1e-5)
    assert record["history"][-1]["train_loss"] == pytest.approx(single["history"][-1]["train_loss"], rel=1e-5)


def test_without_torchrun_everything_is_single_process(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert not distributed.launched_by_torchrun()
    with distributed.session() as created:
        assert not created
        assert (distributed.world_size(), distributed.rank(), distributed.is_main()) == (1, 0, True)
        assert distributed.broadcast_object("x") == "x"
        index = torch.arange(5)
        assert torch.equal(distributed.shard(index), index)


if __name__ == "__main__":  # a torchrun worker of the `two_process_runs` fixture
    _worker(sys.argv[1])
