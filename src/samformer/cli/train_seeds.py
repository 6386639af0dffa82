"""`samformer train --seeds 0,1,2,3,4`: several seeds of one run trained in one pass, as one stack.

Each seed's directory (`--out/seed<S>`) gets exactly what `samformer train --seed S --out DIR` writes
(model.safetensors, config.json, result.json); `--out` itself holds the stack's checkpoint while it
trains and `ensemble.json`, the test metrics of the seeds' mean forecast, once it is done. The last
stdout line is one JSON object: every seed's summary (as `samformer train` prints it) and the ensemble's
test MSE/MAE.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from samformer.cli.options import run_spec_from_args
from samformer.errors import SamformerError, quoted
from samformer.experiments.run import StackOutcome, execute_stacked
from samformer.files import atomic_directory, carry_over, read_json, run_output, scratch_directory, write_json
from samformer.forecasting.modelfile import save_model
from samformer.training import distributed
from samformer.training.checkpoint import CHECKPOINT_FILE, remove_partial_files

ENSEMBLE_FILE = "ensemble.json"
Summary = Callable[[dict[str, Any], Path], str]  # `samformer train`'s summary line of a run record and its directory


def seed_list(text: str) -> list[int]:
    """A comma-separated list of distinct integer seeds (at least one)."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    try:
        seeds = [int(t) for t in items]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integer seeds such as 0,1,2, got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("expected at least one seed (k >= 1), such as 0,1,2")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"seed {', '.join(map(str, repeated))} is repeated; give each seed once")
    return seeds


def seed_directory(out: Path, seed: int) -> Path:
    """Where seed `seed` of a `--seeds` run is written."""
    return out / f"seed{seed}"


def _default_out(dataset: str, horizon: int, seeds: list[int]) -> Path:
    base = Path("runs") / "train" / f"{Path(dataset).stem}-H{horizon}-seeds{'-'.join(map(str, seeds))}"
    out, n = base, 1
    while out.exists():
        out, n = base.with_name(f"{base.name}-{n}"), n + 1
    return out


def _refuse_existing(args: argparse.Namespace, out: Path, resuming: bool) -> None:
    if resuming or args.overwrite:
        return
    held = [d for d in (seed_directory(out, s) for s in args.seeds) if (d / "model.safetensors").exists()]
    if held or (out / ENSEMBLE_FILE).exists():
        raise SamformerError(f"{held[0] if held else out} already holds a model; choose another --out or pass --overwrite")
    if (out / CHECKPOINT_FILE).exists():
        raise SamformerError(f"{out} holds an interrupted run's checkpoint; pass --resume to continue it, or --overwrite to start over")


def train_seeds(args: argparse.Namespace, summary: Summary) -> int:
    """Train `args.seeds` as one stack and write every seed's directory and the ensemble's metrics as one unit.

    `summary` is `samformer train`'s summary line of a run. Like a single run, the output directory is
    checked before any work, locked for the run, and appears whole at the end.
    """
    if distributed.is_distributed():
        raise SamformerError("--seeds trains every seed in one process; run it without torchrun")
    out = _default_out(args.dataset, args.horizon, args.seeds) if args.out is None else Path(args.out)
    with run_output(out) as out:
        return _train_seeds_into(args, out, summary)


def _train_seeds_into(args: argparse.Namespace, out: Path, summary: Summary) -> int:
    """Train the stack into `out`, whose lock this process holds."""
    checkpoint = out / CHECKPOINT_FILE
    resuming = args.resume and checkpoint.exists()
    if args.resume and not resuming and (out / ENSEMBLE_FILE).exists():
        records = [read_json(seed_directory(out, s) / "result.json") for s in args.seeds]
        ensemble = read_json(out / ENSEMBLE_FILE)  # both first: a record that cannot be read is the one line printed
        print(f"samformer: {quoted(out)} holds a finished run; nothing to resume, its files are unchanged", file=sys.stderr)
        print(_summary_line(records, ensemble, out, summary))
        return 0
    _refuse_existing(args, out, resuming)
    if out.is_dir():
        remove_partial_files(out)
    specs = [run_spec_from_args(args, args.dataset, args.horizon, seed) for seed in args.seeds]
    held = [checkpoint, out / ENSEMBLE_FILE, *(seed_directory(out, s) for s in args.seeds)]
    replacing = not resuming and any(path.exists() for path in held)  # --overwrite: the old runs stay whole until the swap
    with scratch_directory(out) if replacing else nullcontext(out) as work:
        outcome = execute_stacked(specs, data_dir=args.data_dir, checkpoint=work / CHECKPOINT_FILE, resume=args.resume)
    ensemble = {"seeds": args.seeds, **outcome.ensemble}
    _write(out, args, outcome, ensemble)
    print(_summary_line(outcome.records, ensemble, out, summary))
    return 0


def _write(out: Path, args: argparse.Namespace, outcome: StackOutcome, ensemble: dict[str, Any]) -> None:
    """Every seed's directory as `samformer train` writes it and the ensemble file, swapped in as one directory that
    replaces the checkpoint only once complete; other files a user keeps in `out` are carried over."""
    seed_names = tuple(seed_directory(out, s).name for s in args.seeds)
    with atomic_directory(out, overwrite=True) as staging:
        for seed, model, record in zip(args.seeds, outcome.models, outcome.records, strict=True):
            directory = seed_directory(staging, seed)
            directory.mkdir()
            save_model(directory, model, extra={"dataset": record["dataset"], "horizon": args.horizon}, overwrite=True)
            write_json(directory / "result.json", record)
        write_json(staging / ENSEMBLE_FILE, ensemble)
        carry_over(out, staging, skip=(CHECKPOINT_FILE, ENSEMBLE_FILE, *seed_names))


def _summary_line(records: list[dict[str, Any]], ensemble: dict[str, Any], out: Path, summary: Summary) -> str:
    """The one-line JSON printed last: each seed's summary and the ensemble's test metrics."""
    runs = [json.loads(summary(record, seed_directory(out, record["seed"]))) for record in records]
    line = {"seeds": ensemble["seeds"], "ensemble_test_mse": ensemble["test_mse"], "ensemble_test_mae": ensemble["test_mae"]}
    return json.dumps({**line, "runs": runs, "out": str(out)})
