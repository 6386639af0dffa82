"""The `samformer` command line: argument parsing and translation to the library, nothing else.

Errors a user can fix print one line on stderr (`samformer: error: ...`) and exit with code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from samformer.errors import SamformerError
from samformer.experiment import RunSpec, execute
from samformer.io import save_model, write_json

Command = Callable[[argparse.Namespace], int]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be positive, got 0")
    return value


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """Model and optimisation flags shared by `train` and `benchmark`."""
    model = parser.add_argument_group("model")
    model.add_argument("--seq-len", type=_positive_int, default=512, help="look-back window L (default 512)")
    model.add_argument("--no-attention", action="store_true", help="linear ablation: no attention block")
    model.add_argument("--no-revin", action="store_true", help="ablation: no RevIN")
    model.add_argument("--sigma-reparam", action="store_true", help="σReparam on the attention maps")
    model.add_argument("--value-dim", type=_positive_int, default=None, help="values L→N→L as the paper's TF code (e.g. 16)")
    opt = parser.add_argument_group("optimisation (defaults: the paper's protocol for the dataset)")
    opt.add_argument("--rho", type=_non_negative_float, default=None, help="SAM radius (default 0.7)")
    opt.add_argument("--no-sam", action="store_true", help="train with plain Adam (the paper's 'Transformer')")
    opt.add_argument("--epochs", type=_positive_int, default=None, help="maximum epochs (default 100)")
    opt.add_argument("--batch-size", type=_positive_int, default=None, help="default 32")
    opt.add_argument("--lr", type=_positive_float, default=None, help="learning rate (default per dataset)")
    opt.add_argument("--weight-decay", type=_non_negative_float, default=None)
    opt.add_argument("--patience", type=_positive_int, default=None, help="early-stopping patience (default 5)")
    opt.add_argument("--precision", choices=["fp32", "bf16"], default=None, help="bf16 autocast (fp32 master weights)")
    opt.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:1, ...")
    opt.add_argument("--quiet", action="store_true", help="no progress bar")


def run_spec_from_args(args: argparse.Namespace, dataset: str, horizon: int, seed: int) -> RunSpec:
    """Translate the shared training flags into a `RunSpec`."""
    model_options = {}
    if args.no_attention:
        model_options["attention"] = False
    if args.no_revin:
        model_options["revin"] = False
    if args.sigma_reparam:
        model_options["sigma_reparam"] = True
    if args.value_dim:
        model_options["value_dim"] = args.value_dim
    flags = {
        "rho": args.rho,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "patience": args.patience,
        "precision": args.precision,
        "device": args.device,
    }
    train_options = {k: v for k, v in flags.items() if v is not None}
    if args.no_sam:
        train_options["sam"] = False
    if args.quiet:
        train_options["progress"] = False
    return RunSpec(dataset, horizon, "samformer", args.seq_len, seed, model_options, train_options)


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


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump), exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="samformer", description="SAMformer: train, benchmark and forecast.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser("train", help="train on a benchmark or a CSV and report test metrics")
    train.add_argument("--dataset", required=True, help="benchmark name (ETTh1, weather, ...) or path of a CSV")
    train.add_argument("--horizon", type=_positive_int, required=True, help="forecast length H (96, 192, 336, 720)")
    train.add_argument("--data-dir", default=None, help="directory holding the benchmark CSVs (else $SAMFORMER_DATA, cache)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default=None, help="directory for the model and result.json (default runs/train/...)")
    train.add_argument("--overwrite", action="store_true", help="replace a model already in --out")
    add_training_options(train)
    train.set_defaults(func=cmd_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed on one line
        return int(exc.code or 0)
    try:
        return args.func(args)
    except (SamformerError, FloatingPointError) as exc:
        print(f"samformer: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("samformer: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
