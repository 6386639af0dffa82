"""`samformer sweep`: the benchmark grid, or a grid search (`--search`), as Ray tasks (local or on a cluster)."""

from __future__ import annotations

import argparse
import json

from samformer.cli.benchmark import specs_from_args
from samformer.cli.options import csv_list, non_negative_float, positive_int, variant
from samformer.errors import SamformerError
from samformer.experiments.paper import HORIZONS
from samformer.files import check_writable_directory
from samformer.nn.model import list_variants


def register(sub: argparse._SubParsersAction) -> None:
    sweep = sub.add_parser(
        "sweep",
        help="run the benchmark grid or a rho/lr search on Ray (pip install 'samformer[ray]'); writes benchmark run files",
    )
    sweep.add_argument("--datasets", type=csv_list(str), required=True, help="comma-separated benchmark names or CSV paths")
    sweep.add_argument("--horizons", type=csv_list(positive_int), default=list(HORIZONS), help="default 96,192,336,720")
    sweep.add_argument("--seeds", type=csv_list(int), default=[0], help="default 0")
    sweep.add_argument("--variants", type=csv_list(variant), default=["samformer"], help=", ".join(list_variants()))
    sweep.add_argument("--seq-len", type=positive_int, default=512)
    sweep.add_argument("--data-dir", default=None, help="benchmark CSVs; on a cluster, a path every node can read")
    sweep.add_argument("--out", default="runs/sweep", help="directory of run files (default runs/sweep); written by this process only")
    ray = sweep.add_argument_group("Ray")
    ray.add_argument("--address", default=None, help="Ray cluster: 'auto', 'ray://head:10001' or 'head:6379' (default: a local instance)")
    ray.add_argument("--workers", type=positive_int, default=2, help="concurrent runs on the local instance (default 2)")
    ray.add_argument("--threads", type=positive_int, default=None, help="CPUs (torch threads) per run (default: cores / workers)")
    ray.add_argument("--max-retries", type=int, default=2, help="retries of a run whose worker died or hit a transient error (default 2)")
    ray.add_argument(
        "--search",
        action="append",
        default=[],
        metavar="NAME=V1,V2",
        help="grid search with Ray Tune over rho, lr, weight_decay or batch_size (repeat for several); selects on val MSE",
    )
    opt = sweep.add_argument_group("protocol overrides (the table labels such runs 'custom(...)')")
    opt.add_argument("--rho", type=non_negative_float, default=None)
    opt.add_argument("--epochs", type=positive_int, default=None)
    opt.add_argument("--batch-size", type=positive_int, default=None)
    opt.add_argument("--precision", choices=["fp32", "bf16"], default=None)
    opt.add_argument("--value-dim", type=positive_int, default=None)
    opt.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from samformer.experiments.sweep import import_ray, parse_search, run_search, run_sweep

    import_ray()  # a one-line error before anything else when Ray is missing
    if args.max_retries < 0:
        raise SamformerError(f"--max-retries must be 0 or more, got {args.max_retries}")
    space = parse_search(args.search)
    check_writable_directory(args.out)
    specs = specs_from_args(args)
    common = {
        "data_dir": args.data_dir,
        "workers": args.workers,
        "address": args.address,
        "threads": args.threads,
        "max_retries": args.max_retries,
        "progress": not args.quiet,
    }
    report = run_search(specs, space, args.out, **common) if space else run_sweep(specs, args.out, **common)
    summary = {"out": args.out, "runs": report.total, "skipped": report.skipped, "ran": report.ran, "wall_seconds": report.wall_seconds}
    if report.best:
        summary["best"] = [{k: b[k] for k in ("variant", "dataset", "horizon", "best", "val_mse", "test_mse")} for b in report.best]
    print(json.dumps(summary))
    return 0
