"""`samformer train`: one training run on a benchmark or a CSV."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from samformer.commands.options import add_training_options, positive_int, run_spec_from_args
from samformer.errors import SamformerError
from samformer.experiment import execute
from samformer.io import save_model, write_json


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train on a benchmark or a CSV and report test metrics")
    train.add_argument("--dataset", required=True, help="benchmark name (ETTh1, weather, ...) or path of a CSV")
    train.add_argument("--horizon", type=positive_int, required=True, help="forecast length H (96, 192, 336, 720)")
    train.add_argument("--data-dir", default=None, help="directory holding the benchmark CSVs (else $SAMFORMER_DATA, cache)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default=None, help="directory for the model and result.json (default runs/train/...)")
    train.add_argument("--overwrite", action="store_true", help="replace a model already in --out")
    add_training_options(train)
    train.set_defaults(func=cmd_train)


def _default_out(dataset: str, horizon: int, seed: int) -> Path:
    base = Path("runs") / "train" / f"{Path(dataset).stem}-H{horizon}-seed{seed}"
    out, n = base, 1
    while out.exists():
        out, n = base.with_name(f"{base.name}-{n}"), n + 1
    return out


def cmd_train(args: argparse.Namespace) -> int:
    if args.out is None:
        out = _default_out(args.dataset, args.horizon, args.seed)
    else:
        out = Path(args.out)
        if (out / "model.safetensors").exists() and not args.overwrite:
            raise SamformerError(f"{out} already holds a model; choose another --out or pass --overwrite")
    spec = run_spec_from_args(args, args.dataset, args.horizon, args.seed)
    model, _, record = execute(spec, data_dir=args.data_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        save_model(out, model, extra={"dataset": record["dataset"], "horizon": args.horizon}, overwrite=True)
        write_json(out / "result.json", record)
    except OSError as exc:
        raise SamformerError(f"cannot write to {out} ({exc.strerror or exc}); choose a writable --out") from None
    summary = {k: v for k, v in record.items() if k not in ("history", "model_config", "train_config", "data_protocol")}
    print(json.dumps({**summary, "out": str(out)}))
    return 0
