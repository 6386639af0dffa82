"""`samformer study`: the paper's trainability study (toy task) and sharpness/entropy on real data.

`study toy --out DIR` trains the Transformer, SAMformer, Transformer + σReparam (attention only / every linear
map) and the two random Transformers (W_Q, W_K frozen / all attention frozen) on the toy task (`samformer.experiments.toy`)
and writes `summary.json` plus the four PNGs of `samformer.plots.write_toy_figures`.
`study sharpness --dataset NAME --horizon H` trains the Transformer and SAMformer on a benchmark and
prints their sharpness, attention entropy and nuclear norm side by side (`samformer.experiments.sharpness`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from samformer.cli.options import positive_int
from samformer.errors import SamformerError
from samformer.experiments.sharpness import compare_sharpness
from samformer.experiments.toy import METHODS, QUICK_STUDY, StudyConfig, run_toy_study
from samformer.files import write_json
from samformer.plots import require_matplotlib, write_toy_figures


def register(sub: argparse._SubParsersAction) -> None:
    study = sub.add_parser("study", help="trainability study: toy task, sharpness, attention entropy")
    kinds = study.add_subparsers(dest="study", required=True, parser_class=type(study))

    toy = kinds.add_parser("toy", help="the paper's toy task: 6 methods, the oracle, figures and summary.json")
    toy.add_argument("--out", required=True, help="directory for the PNGs and summary.json")
    toy.add_argument("--quick", action="store_true", help="reduced run (2000 training samples, 10 epochs): under 2 minutes")
    toy.add_argument(
        "--epochs", type=positive_int, default=None, help=f"epochs per method (default {StudyConfig.epochs}, quick {QUICK_STUDY.epochs})"
    )
    toy.add_argument(
        "--methods",
        type=_methods_list,
        default=None,
        help=f"comma-separated methods to train (default all: {','.join(METHODS)})",
    )
    toy.add_argument(
        "--unshuffled", action="store_true", help="feed the training samples in their stored order every epoch, as the original TF pipeline"
    )
    toy.add_argument(
        "--workers", type=positive_int, default=2, help="processes training the methods in parallel, one thread each (default 2)"
    )
    toy.add_argument(
        "--threads", type=positive_int, default=1, help="torch CPU threads with --workers 1 (default 1: these matrices are small)"
    )
    toy.add_argument("--progress", action="store_true", help="show a progress bar per method (with --workers 1)")
    toy.set_defaults(func=cmd_toy)

    sharp = kinds.add_parser("sharpness", help="train Transformer and SAMformer on a benchmark; compare sharpness and entropy")
    sharp.add_argument("--dataset", required=True, help="benchmark name (ETTh1, ...) or path of a CSV")
    sharp.add_argument("--horizon", type=positive_int, required=True, help="forecast length H")
    sharp.add_argument("--data-dir", default=None, help="directory holding the benchmark CSVs (else $SAMFORMER_DATA, cache)")
    sharp.add_argument("--epochs", type=positive_int, default=None, help="maximum epochs (default 100, early stopping)")
    sharp.add_argument("--seed", type=int, default=0)
    sharp.add_argument("--samples", type=positive_int, default=1024, help="training windows for the diagnostics (default 1024)")
    sharp.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's choice)")
    sharp.add_argument("--out", default=None, help="directory for summary.json (optional)")
    sharp.set_defaults(func=cmd_sharpness)


def _methods_list(text: str) -> tuple[str, ...]:
    """Parse `--methods a,b` into known method names (argparse reports the error in one line)."""
    methods = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise argparse.ArgumentTypeError(f"unknown method(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(METHODS)}")
    return methods


def _prepare_out(out: str) -> Path:
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SamformerError(f"cannot create {path} ({exc.strerror or exc}); choose a writable --out") from None
    if not os.access(path, os.W_OK):
        raise SamformerError(f"{path} is not writable; choose a writable --out")
    return path


def cmd_toy(args: argparse.Namespace) -> int:
    study = QUICK_STUDY if args.quick else StudyConfig()
    if args.epochs is not None:
        study = replace(study, epochs=args.epochs)
    if args.methods is not None:
        study = replace(study, methods=args.methods, sharpness_methods=tuple(m for m in study.sharpness_methods if m in args.methods))
    if args.unshuffled:
        study = replace(study, shuffle=False)
    out = _prepare_out(args.out)
    require_matplotlib()
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        summary = run_toy_study(study, args.workers, args.progress, log=lambda line: print(line, file=sys.stderr))
    finally:
        torch.set_num_threads(threads)
    summary["command"] = " ".join(
        [
            "samformer study toy --out",
            str(args.out),
            *(["--quick"] if args.quick else []),
            *(["--epochs", str(args.epochs)] if args.epochs else []),
            *(["--methods", ",".join(args.methods)] if args.methods else []),
            *(["--unshuffled"] if args.unshuffled else []),
        ]
    )
    write_json(out / "summary.json", _json_safe(summary))
    write_toy_figures(summary, out)
    keys = ("final_val_loss", "final_sharpness", "final_entropy")
    print(json.dumps({"oracle_val_loss": summary["oracle_val_loss"], **{m: {k: summary[m][k] for k in keys} for m in study.methods}}))
    return 0


def cmd_sharpness(args: argparse.Namespace) -> int:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    out = _prepare_out(args.out) if args.out else None
    result = compare_sharpness(args.dataset, args.horizon, args.data_dir, args.epochs, args.seed, args.samples)
    print(f"{'':22}{'Transformer':>14}{'SAMformer':>14}")
    for key, label in (
        ("sharpness", "sharpness (λmax)"),
        ("attention_entropy", "attention entropy"),
        ("nuclear_norm", "nuclear norm"),
        ("test_mse", "test MSE"),
    ):
        print(f"{label:22}{result['transformer'][key]:>14.4g}{result['samformer'][key]:>14.4g}")
    if out is not None:
        write_json(out / "summary.json", result)
    print(json.dumps(result))
    return 0


def _json_safe(obj: Any) -> Any:
    """Non-finite floats become None so that summary.json is strict JSON."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
