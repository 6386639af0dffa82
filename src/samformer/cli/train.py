"""`samformer train`: one training run on a benchmark or a CSV."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from samformer.cli.options import add_training_options, positive_int, run_spec_from_args, seed, seed_list
from samformer.errors import SamformerError, quoted
from samformer.experiments.run import execute
from samformer.experiments.seeds import seed_directory, train_seed_stack
from samformer.files import atomic_directory, carry_over, read_json, run_output, scratch_directory, write_json
from samformer.forecasting.modelfile import MODEL_FILES, WEIGHTS_FILE, save_model
from samformer.training import distributed
from samformer.training.checkpoint import CHECKPOINT_FILE, PARTIAL_FILE_TARGETS, remove_partial_files

RESULT_FILE = "result.json"
RUN_FILES = (*MODEL_FILES, RESULT_FILE, CHECKPOINT_FILE)  # everything a run directory holds, finished or interrupted


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train on a benchmark or a CSV and report test metrics")
    train.add_argument("--dataset", required=True, help="benchmark name (ETTh1, weather, ...) or path of a CSV")
    train.add_argument("--horizon", type=positive_int, required=True, help="forecast length H (96, 192, 336, 720)")
    train.add_argument("--data-dir", default=None, help="directory holding the benchmark CSVs (else $SAMFORMER_DATA, cache)")
    train.add_argument("--seed", type=seed, default=0)
    train.add_argument("--out", default=None, help="directory for the model and result.json (default runs/train/...)")
    train.add_argument("--overwrite", action="store_true", help="replace a model already in --out")
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run in --out from its last checkpoint (same options); starts afresh if there is none",
    )
    train.add_argument("--seeds", type=seed_list, default=None, help="train seeds (e.g. 0,1,2,3,4) in one pass: --out/seed<S> each")
    add_training_options(train)
    train.set_defaults(func=cmd_train)


def _default_out(dataset: str, horizon: int, seeds: str) -> Path:
    """A new directory under runs/train named after the dataset, the horizon and `seeds` (e.g. 'seed0', 'seeds0-1')."""
    base = Path("runs") / "train" / f"{Path(dataset).stem}-H{horizon}-{seeds}"
    out, n = base, 1
    while out.exists():
        out, n = base.with_name(f"{base.name}-{n}"), n + 1
    return out


def _partial_files(out: Path) -> tuple[str, ...]:
    """Names of the temporaries a killed write left in `out` (see checkpoint.remove_partial_files)."""
    return tuple(tmp.name for name in PARTIAL_FILE_TARGETS for tmp in out.glob(f".{name}.*.tmp"))


def _summary(record: dict[str, Any], out: Path) -> str:
    """The one-line JSON printed last: the result without its bulky parts."""
    summary = {k: v for k, v in record.items() if k not in ("history", "model_config", "train_config", "data_protocol")}
    return json.dumps({**summary, "out": str(out)})


def cmd_train(args: argparse.Namespace) -> int:
    """Train one run; under `torchrun --nproc-per-node N` the N processes train it together (rank 0 writes)."""
    with distributed.session():
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    if args.resume and (args.out is None or args.overwrite):
        raise SamformerError("--resume continues the run in an existing --out: give --out, and do not combine it with --overwrite")
    if args.seeds is not None:
        return _train_seeds(args)
    out = _default_out(args.dataset, args.horizon, f"seed{args.seed}") if args.out is None else Path(args.out)
    out = distributed.broadcast_object(out)  # rank 0's choice: the default name depends on what exists
    with run_output(out, lock=distributed.is_main()) as out:  # rank 0 writes: it alone locks
        return _train_into(args, out)


def _train_into(args: argparse.Namespace, out: Path) -> int:
    """Train the run into `out`, whose lock this process holds; the run directory appears whole at the end."""
    checkpoint, weights, result = out / CHECKPOINT_FILE, out / WEIGHTS_FILE, out / RESULT_FILE
    resuming = args.resume and checkpoint.exists()
    if args.resume and not resuming and weights.exists() and result.exists():
        if distributed.is_main():
            finished = read_json(result)  # first: a result that cannot be read is the one line printed
            print(f"samformer: {quoted(out)} holds a finished run; nothing to resume, its files are unchanged", file=sys.stderr)
            print(_summary(finished, out))
        return 0
    if not resuming and not args.overwrite:
        if weights.exists():
            raise SamformerError(f"{quoted(out)} already holds a model; choose another --out or pass --overwrite")
        if checkpoint.exists():
            raise SamformerError(
                f"{quoted(out)} holds an interrupted run's checkpoint; pass --resume to continue it, or --overwrite to start over"
            )
    if distributed.is_main() and out.is_dir():
        remove_partial_files(out)  # a killed run's checkpoint temporaries
    spec = run_spec_from_args(args, args.dataset, args.horizon, args.seed)
    device = distributed.device_for_rank(spec.train_options.get("device", "auto"))
    if device != spec.train_options.get("device", "auto"):
        spec.train_options["device"] = device  # this process's GPU (LOCAL_RANK) under torchrun
    replacing = not resuming and any(path.exists() for path in (checkpoint, weights, result))  # --overwrite of a run
    with scratch_directory(out) if replacing else nullcontext(out) as work:  # the old run stays whole until the swap
        model, _, record = execute(spec, data_dir=args.data_dir, checkpoint=work / CHECKPOINT_FILE, resume=args.resume)
    if not distributed.is_main():
        return 0  # rank 0 writes the model and the result; the others leave quietly
    with atomic_directory(out, overwrite=True) as staging:  # replaces the checkpoint (and an old model) only once complete
        save_model(staging, model, extra={"dataset": record["dataset"], "horizon": args.horizon})
        write_json(staging / RESULT_FILE, record)
        carry_over(out, staging, skip=RUN_FILES + _partial_files(out))  # the other files a user keeps in --out
    print(_summary(record, out))
    return 0


def _train_seeds(args: argparse.Namespace) -> int:
    """`--seeds`: the seeds trained as one stack (`samformer.experiments.seeds`); prints every seed's summary and the
    ensemble's test metrics as one JSON line."""
    specs = [run_spec_from_args(args, args.dataset, args.horizon, s) for s in args.seeds]
    seeds = f"seeds{'-'.join(map(str, args.seeds))}"
    out = _default_out(args.dataset, args.horizon, seeds) if args.out is None else Path(args.out)
    stack = train_seed_stack(specs, out, data_dir=args.data_dir, resume=args.resume, overwrite=args.overwrite)
    if stack.already_finished:
        print(f"samformer: {quoted(stack.out)} holds a finished run; nothing to resume, its files are unchanged", file=sys.stderr)
    runs = [json.loads(_summary(record, seed_directory(stack.out, record["seed"]))) for record in stack.records]
    ensemble = stack.ensemble
    line = {"seeds": ensemble["seeds"], "ensemble_test_mse": ensemble["test_mse"], "ensemble_test_mae": ensemble["test_mae"]}
    print(json.dumps({**line, "runs": runs, "out": str(stack.out)}))
    return 0
