"""Internal: `samformer benchmark` (run the grid, resumable) and `samformer table` (regenerate the table from run files)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from samformer.cli.options import add_shuffle_option, count, csv_list, non_negative_float, positive_int, seed, variant
from samformer.data.benchmarks import get_benchmark
from samformer.errors import SamformerError, quoted
from samformer.experiments.ensembles import render_ensemble_table, summarise_ensembles
from samformer.experiments.grid import grid, run_grids
from samformer.experiments.paper import HORIZONS
from samformer.experiments.run import RunSpec
from samformer.experiments.tables import cells_as_json, render_table, summarise, summarise_tuned
from samformer.files import check_writable_directory, removed_if_left_empty
from samformer.nn.model import list_variants
from samformer.threads import choose_threads


def register(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("benchmark", help="run a grid of trainings; re-running skips finished runs")
    bench.add_argument("--datasets", type=csv_list(str), required=True, help="comma-separated benchmark names or CSV paths")
    bench.add_argument("--horizons", type=csv_list(positive_int), default=list(HORIZONS), help="default 96,192,336,720")
    bench.add_argument("--seeds", type=csv_list(seed), default=[0], help="default 0")
    bench.add_argument("--variants", type=csv_list(variant), default=["samformer"], help=", ".join(list_variants()))
    bench.add_argument("--seq-len", type=positive_int, default=512)
    bench.add_argument("--data-dir", default=None)
    bench.add_argument("--workers", type=positive_int, default=1, help="parallel training processes")
    bench.add_argument(
        "--threads", type=count, default=None, help="torch threads per worker (default: $OMP_NUM_THREADS, else the cores / --workers)"
    )
    bench.add_argument("--out", default="runs/benchmark", help="directory of run files (default runs/benchmark)")
    bench.add_argument(
        "--stack",
        action="store_true",
        help="train the pending seeds (and --rho-grid values) of a cell together as one stack, and store their ensemble",
    )
    opt = bench.add_argument_group("protocol overrides (the table labels such runs 'custom(...)')")
    opt.add_argument("--rho", type=non_negative_float, default=None)
    opt.add_argument(
        "--rho-grid",
        type=csv_list(non_negative_float),
        default=None,
        help="several rho values (with --stack trained together): run files of each under OUT/rho=<value>",
    )
    opt.add_argument("--epochs", type=positive_int, default=None)
    opt.add_argument("--batch-size", type=positive_int, default=None)
    opt.add_argument("--precision", choices=["fp32", "bf16"], default=None)
    opt.add_argument("--value-dim", type=positive_int, default=None)
    add_shuffle_option(opt)
    bench.set_defaults(func=cmd_benchmark)

    table = sub.add_parser("table", help="the comparison table, regenerated from stored run files only")
    table.add_argument("runs", help="directory written by `samformer benchmark`")
    table.add_argument("--format", choices=["md", "csv", "json"], default="md")
    table.add_argument(
        "--tuned",
        metavar="DIR",
        default=None,
        help="also the cells of a search directory (a sub-directory per setting, e.g. rho=0.3), at the setting selected on validation",
    )
    table.add_argument(
        "--ensembles",
        action="store_true",
        help="instead, the table of ensembles (mean forecast of each cell's seeds trained together), never mixed with single models",
    )
    table.set_defaults(func=cmd_table)


def specs_from_args(args: argparse.Namespace) -> list[RunSpec]:
    """The grid of runs named by the grid options shared by `benchmark` and `sweep` (datasets checked first)."""
    for name in args.datasets:
        if not Path(name).suffix:
            get_benchmark(name)  # unknown names fail before any training starts
    train_options = {k: v for k, v in {"rho": args.rho, "epochs": args.epochs, "batch_size": args.batch_size}.items() if v is not None}
    if args.precision:
        train_options["precision"] = args.precision
    if getattr(args, "no_shuffle", False):  # `sweep` shares this function and has no such flag
        train_options["shuffle"] = False
    model_options = {"value_dim": args.value_dim} if args.value_dim else {}
    return grid(args.datasets, args.horizons, args.seeds, args.variants, args.seq_len, model_options, train_options)


def grids_from_args(args: argparse.Namespace) -> dict[Path, list[RunSpec]]:
    """The runs of `benchmark` by directory of run files: `--out`, or with `--rho-grid` one `--out/rho=<value>` per value."""
    if args.rho_grid is None:
        return {Path(args.out): specs_from_args(args)}
    if args.rho is not None:
        raise SamformerError("give either --rho or --rho-grid, not both")
    return {Path(args.out) / f"rho={rho}": specs_from_args(argparse.Namespace(**{**vars(args), "rho": rho})) for rho in args.rho_grid}


def _threads(args: argparse.Namespace) -> int:
    """Torch threads per worker: --threads, else $OMP_NUM_THREADS, else the cores shared by the workers (in the console
    command, 1 each on a busy machine, said in one line)."""
    threads, note = choose_threads(args.threads, args.workers, adapt_to_load=getattr(args, "adapt_to_load", False))
    if note:
        print(note, file=sys.stderr)
    return threads


def cmd_benchmark(args: argparse.Namespace) -> int:
    check_writable_directory(args.out)
    grids = grids_from_args(args)
    with removed_if_left_empty(args.out):  # an error: one line, by samformer.cli.main
        report = run_grids(grids, data_dir=args.data_dir, workers=args.workers, stack=args.stack, threads=_threads(args))
    print(
        json.dumps(
            {"out": args.out, "runs": report.total, "skipped": report.skipped, "ran": report.ran, "wall_seconds": report.wall_seconds}
        )
    )
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    if not Path(args.runs).is_dir():
        raise SamformerError(f"{quoted(args.runs)} is not a directory of run files; run `samformer benchmark --out {args.runs}` first")
    if args.ensembles:
        return _ensemble_table(args)
    cells = summarise(args.runs)
    if not cells:
        raise SamformerError(f"no run files under {quoted(args.runs)}; run `samformer benchmark --out {args.runs}` first")
    if args.tuned is not None:
        if not Path(args.tuned).is_dir():
            raise SamformerError(
                f"--tuned {quoted(args.tuned)} is not a directory; "
                "give the --out of `samformer sweep --search` (or of benchmarks/tune_rho.sh)"
            )
        tuned = summarise_tuned(args.tuned)
        if not tuned:
            raise SamformerError(
                f"no run files in setting directories (named like rho=0.3) under {quoted(args.tuned)}; run tune_rho.sh first"
            )
        cells += tuned
    sys.stdout.write(cells_as_json(cells) + "\n" if args.format == "json" else render_table(cells, args.format))
    return 0


def _ensemble_table(args: argparse.Namespace) -> int:
    cells = summarise_ensembles(args.runs)
    if not cells:
        raise SamformerError(
            f"no ensemble records under {args.runs}; they are written when a cell's seeds train together, "
            f"e.g. `samformer benchmark --stack --seeds 0,1,2,3,4 --out {args.runs}` on a fresh --out"
        )
    sys.stdout.write(json.dumps(cells) + "\n" if args.format == "json" else render_ensemble_table(cells, args.format))
    return 0
