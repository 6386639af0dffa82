"""`samformer train`: one training run on a benchmark or a CSV."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from samformer import distributed
from samformer.checkpoint import CHECKPOINT_FILE, remove_partial_files
from samformer.commands.options import add_training_options, positive_int, run_spec_from_args
from samformer.commands.train_seeds import seed_list, train_seeds
from samformer.errors import SamformerError
from samformer.experiment import execute
from samformer.files import read_json, write_json
from samformer.modelfile import save_model


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train on a benchmark or a CSV and report test metrics")
    train.add_argument("--dataset", required=True, help="benchmark name (ETTh1, weather, ...) or path of a CSV")
    train.add_argument("--horizon", type=positive_int, required=True, help="forecast length H (96, 192, 336, 720)")
    train.add_argument("--data-dir", default=None, help="directory holding the benchmark CSVs (else $SAMFORMER_DATA, cache)")
    train.add_argument("--seed", type=int, default=0)
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


def _default_out(dataset: str, horizon: int, seed: int) -> Path:
    base = Path("runs") / "train" / f"{Path(dataset).stem}-H{horizon}-seed{seed}"
    out, n = base, 1
    while out.exists():
        out, n = base.with_name(f"{base.name}-{n}"), n + 1
    return out


def _check_writable(out: Path) -> None:
    """Refuse an --out that cannot become a writable directory, before any training time is spent."""
    existing = next(p for p in (out, *out.parents) if p.exists())  # "/" or "." at the latest
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise SamformerError(f"cannot write to {out} ({existing} is not a writable directory); choose a writable --out")


def _summary(record: dict[str, Any], out: Path) -> str:
    """The one-line JSON printed last: the result without its bulky parts."""
    summary = {k: v for k, v in record.items() if k not in ("history", "model_config", "train_config", "data_protocol")}
    return json.dumps({**summary, "out": str(out)})


def cmd_train(args: argparse.Namespace) -> int:
    """Train one run; under `torchrun --nproc-per-node N` the N processes train it together (rank 0 writes)."""
    with distributed.session():
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    if args.seeds is not None:
        return train_seeds(args, _check_writable, _summary)
    if args.resume and (args.out is None or args.overwrite):
        raise SamformerError("--resume continues the run in an existing --out: give --out, and do not combine it with --overwrite")
    out = _default_out(args.dataset, args.horizon, args.seed) if args.out is None else Path(args.out)
    out = distributed.broadcast_object(out)  # rank 0's choice: the default name depends on what exists
    _check_writable(out)
    checkpoint, weights, result = out / CHECKPOINT_FILE, out / "model.safetensors", out / "result.json"
    resuming = args.resume and checkpoint.exists()
    if args.resume and not resuming and weights.exists() and result.exists():
        if distributed.is_main():
            print(f"samformer: {out} holds a finished run; nothing to resume, its files are unchanged", file=sys.stderr)
            print(_summary(read_json(result), out))
        return 0
    if not resuming and not args.overwrite:
        if weights.exists():
            raise SamformerError(f"{out} already holds a model; choose another --out or pass --overwrite")
        if checkpoint.exists():
            raise SamformerError(f"{out} holds an interrupted run's checkpoint; pass --resume to continue it, or --overwrite to start over")
    if out.is_dir() and distributed.is_main():
        remove_partial_files(out)
    spec = run_spec_from_args(args, args.dataset, args.horizon, args.seed)
    device = distributed.device_for_rank(spec.train_options.get("device", "auto"))
    if device != spec.train_options.get("device", "auto"):
        spec.train_options["device"] = device  # this process's GPU (LOCAL_RANK) under torchrun
    model, _, record = execute(spec, data_dir=args.data_dir, checkpoint=checkpoint, resume=args.resume)
    if not distributed.is_main():
        return 0  # rank 0 writes the model and the result; the others leave quietly
    try:
        out.mkdir(parents=True, exist_ok=True)
        save_model(out, model, extra={"dataset": record["dataset"], "horizon": args.horizon}, overwrite=True)
        write_json(result, record)
        checkpoint.unlink(missing_ok=True)  # only once the model and result are safely in place
    except OSError as exc:
        raise SamformerError(f"cannot write to {out} ({exc.strerror or exc}); choose a writable --out") from None
    print(_summary(record, out))
    return 0
