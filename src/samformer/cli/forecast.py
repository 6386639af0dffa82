"""`samformer fit | predict | plot | export-onnx`: the `Forecaster` on CSV files.

    samformer fit --csv FILE --horizon H --out MODEL_DIR [--quantiles 0.1,0.9] [--freq h] [--season 24] [--val-size 0.2]
                  [--seq-len L] [--target y [--mode S|MS]] [--past-covariates a,b] [--future-covariates c] [--calendar]
                  [--ensemble K]
    samformer predict --model MODEL_DIR --csv FILE [--future-csv FILE] --out forecast.csv [--device cpu]
    samformer plot {forecast,attention,training} --model MODEL_DIR [--csv FILE] --out figure.png [--device cpu]
    samformer export-onnx --model MODEL_DIR --out model.onnx

No command replaces an existing file or model directory without --overwrite. `fit` chooses the
look-back on the validation rows unless --seq-len is given, and reports the search, and the model's
validation errors next to the naive baselines', in its JSON line; its warnings are one line each.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from samformer.cli.options import add_training_options, positive_int, run_spec_from_args
from samformer.data.frames import to_wide
from samformer.data.series import read_csv
from samformer.errors import SamformerError
from samformer.files import atomic_destination, exclusive_lock

DEVICE_HELP = "where to run the model: auto (default), cpu, cuda or cuda:N; whatever it was fitted on"


def _quantiles(text: str) -> tuple[float, ...]:
    try:
        levels = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated levels such as 0.1,0.9, got {text!r}") from None
    if not all(0 < q < 1 for q in levels):
        raise argparse.ArgumentTypeError(f"quantile levels must lie strictly between 0 and 1, got {text!r}")
    return levels


def _size(text: str) -> int | float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a row count or a fraction, got {text!r}") from None
    if value.is_integer() and value >= 1:
        return int(value)
    if 0 < value < 1:
        return value
    raise argparse.ArgumentTypeError(f"must be a row count ≥ 1 or a fraction in (0, 1), got {text}")


def register(sub: argparse._SubParsersAction) -> None:
    fit = sub.add_parser("fit", help="fit a forecaster on your CSV and save it to a model directory")
    fit.add_argument("--csv", required=True, help="CSV with a date column (or unique_id,ds,y rows) and numeric channels")
    fit.add_argument("--horizon", type=positive_int, required=True, help="number of future steps to forecast")
    fit.add_argument("--out", required=True, help="model directory to create")
    fit.add_argument("--quantiles", type=_quantiles, default=None, help="e.g. 0.1,0.9: forecast intervals (0.5 is added)")
    fit.add_argument("--freq", default=None, help="pandas frequency of the data (h, 15min, D, B, ...); default: inferred")
    fit.add_argument("--season", type=positive_int, default=None, help="seasonal period in steps (default: from the frequency)")
    fit.add_argument("--val-size", type=_size, default=0.2, help="validation rows at the end: a count or a fraction (default 0.2)")
    fit.add_argument("--log-dir", default=None, help="write per-epoch metrics.csv (and TensorBoard events if installed) here")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--ensemble", type=positive_int, default=1, help="train K seeds (seed..seed+K-1) in one pass; forecast their mean")
    fit.add_argument("--overwrite", action="store_true", help="replace an existing model directory")
    fit.add_argument(
        "--no-fallback",
        dest="fallback",
        action="store_false",
        help="SAMformer on every target, even where a statistical forecaster does better on validation",
    )
    add_training_options(fit, seq_len_default=None)
    fit.set_defaults(func=cmd_fit)

    predict_help = "forecast the steps after the end of a CSV with a saved forecaster"
    predict = _saved_model_command(sub, "predict", predict_help, "CSV file to write the forecast to")
    predict.add_argument("--csv", required=True, help="recent history: at least seq_len rows with the fitted columns")
    predict.add_argument("--future-csv", default=None, help="values of the known-future covariates over the next horizon steps")
    predict.add_argument("--device", default=None, help=DEVICE_HELP)
    predict.set_defaults(func=cmd_predict)

    plot_help = "draw a forecast, the channel-attention matrix or the training curves (PNG)"
    plot = _saved_model_command(sub, "plot", plot_help, "PNG file to write")
    plot.add_argument("kind", choices=["forecast", "attention", "training"])
    plot.add_argument("--csv", default=None, help="history to forecast from / average attention over (forecast, attention)")
    plot.add_argument("--holdout", action="store_true", help="forecast: hold out the CSV's last horizon rows and draw them as actuals")
    plot.add_argument("--future-csv", default=None, help="forecast: known-future covariates over the horizon (not with --holdout)")
    plot.add_argument("--device", default=None, help=DEVICE_HELP)
    plot.set_defaults(func=cmd_plot)

    export = _saved_model_command(sub, "export-onnx", "export a saved forecaster (scaling included) to ONNX", "ONNX file to write")
    export.set_defaults(func=cmd_export)


def _saved_model_command(sub: argparse._SubParsersAction, name: str, help: str, out_help: str) -> argparse.ArgumentParser:
    """A subcommand that reads a saved forecaster (`--model`) and writes one file (`--out`, `--overwrite`)."""
    parser = sub.add_parser(name, help=help)
    parser.add_argument("--model", required=True, help="model directory written by `samformer fit`")
    parser.add_argument("--out", required=True, help=out_help)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    return parser


def _load(model_dir: str, device: str | None = None):
    from samformer.forecasting.forecaster import Forecaster

    if not Path(model_dir).is_dir():
        raise SamformerError(f"{model_dir}: no such model directory; create one with `samformer fit`")
    return Forecaster.load(model_dir, device=device)


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse an --out file that exists (without --overwrite), is a directory, or cannot be created, before any work."""
    if out.is_dir():
        raise SamformerError(f"{str(out)!r} is a directory; --out takes the path of a file")
    if out.exists() and not overwrite:
        raise SamformerError(f"{out} already exists; choose another --out or pass --overwrite")
    if not out.parent.is_dir():
        raise SamformerError(f"cannot write {out}: directory {out.parent} does not exist")
    _check_writable(out.parent)


def _check_writable(directory: Path) -> None:
    """Refuse a directory in which no file can be created (read-only, permissions, a pseudo file system)."""
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise SamformerError(f"cannot write to {str(directory)!r} ({exc.strerror or exc}); choose a writable --out") from None


@contextmanager
def _writing(out: Path) -> Iterator[Path]:
    """`files.atomic_destination(out)`, with a failing write (full disk, ...) reported in one line."""
    try:
        with atomic_destination(out) as tmp:
            yield tmp
    except OSError as exc:
        raise SamformerError(f"cannot write {str(out)!r} ({exc.strerror or exc}); nothing was written, choose another --out") from None


def cmd_fit(args: argparse.Namespace) -> int:
    out = Path(args.out)
    _check_model_destination(out, args.overwrite)
    _check_writable(next(p for p in (out.parent, *out.parents) if p.exists()))  # "/" or "." at the latest
    with exclusive_lock(out):  # a second fit into the same --out is refused at once, not after its training
        _check_model_destination(out, args.overwrite)  # another run may have saved there before we held the lock
        return _fit_into(args, out)


def _check_model_destination(out: Path, overwrite: bool) -> None:
    from samformer.forecasting.modelfile import check_model_destination

    try:
        check_model_destination(out, overwrite)
    except FileExistsError as exc:
        raise SamformerError(str(exc).replace("overwrite=True (--overwrite)", "--overwrite")) from None


def _fit_into(args: argparse.Namespace, out: Path) -> int:
    """Fit on `args.csv` and save the model to `out`, whose lock this process holds."""
    from samformer.forecasting.forecaster import Forecaster

    frame = read_csv(args.csv)
    spec = run_spec_from_args(args, args.csv, args.horizon, args.seed)
    options = {"seed": args.seed, **spec.train_options}
    try:
        forecaster = Forecaster(
            args.horizon,
            spec.seq_len,
            quantiles=args.quantiles,
            freq=args.freq,
            season=args.season,
            model_options=spec.model_options,
            log_dir=args.log_dir,
            ensemble=args.ensemble,
            fallback=args.fallback,
            **options,
        )
    except ValueError as exc:
        raise SamformerError(str(exc)) from None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        forecaster.fit(frame, val_size=args.val_size, channels=spec.channels)
    for warning in caught:
        print(f"samformer: warning: {warning.message}", file=sys.stderr)
    try:
        forecaster.save(out, overwrite=args.overwrite)
    except OSError as exc:
        raise SamformerError(f"cannot write to {out} ({exc.strerror or exc}); choose a writable --out") from None
    print(json.dumps(_fit_report(forecaster, out)))
    return 0


def _fit_report(forecaster, out: Path) -> dict:
    """What `samformer fit` prints: the fitted model, its best epoch, the look-back search and the validation skill."""
    best = min(forecaster.history_, key=lambda r: r.get("val_loss", r["val_mse"]))
    selection = forecaster.selection_
    validation = forecaster.validation_
    return {
        "out": str(out),
        "channels": forecaster.columns_,
        "targets": forecaster.targets_,
        "freq": forecaster.freq_,
        "season": forecaster.season_,
        "seq_len": forecaster.seq_len_,
        "selection": None if selection is None else selection.reset_index().to_dict("records"),
        "epochs_run": len(forecaster.history_),
        **({"ensemble": forecaster.ensemble} if forecaster.ensemble > 1 else {}),
        **best,
        "validation": {channel: _json_row(row) for channel, row in validation.iterrows()},
    }


def _json_row(row) -> dict:
    return {k: (v if isinstance(v, str) else float(v)) for k, v in row.items()}


def cmd_predict(args: argparse.Namespace) -> int:
    out = Path(args.out)
    _check_out(out, args.overwrite)
    forecaster = _load(args.model, args.device)
    future = None if args.future_csv is None else read_csv(args.future_csv)
    forecast = forecaster.predict(read_csv(args.csv), future_df=future)
    with _writing(out) as tmp:
        forecast.to_csv(tmp, index=forecaster.layout_ == "wide", index_label="date")
    print(
        json.dumps(
            {
                "out": str(out),
                "rows": len(forecast),
                "first": str(forecast.index[0] if forecaster.layout_ == "wide" else forecast["ds"].min()),
            }
        )
    )
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from samformer import plots

    out = Path(args.out)
    _check_out(out, args.overwrite)
    forecaster = _load(args.model, args.device)
    if args.kind == "training":
        figure = _plot(plots.plot_training, forecaster.history_)
    else:
        if args.csv is None:
            raise SamformerError(f"`samformer plot {args.kind}` needs --csv (the history to forecast from or to average attention over)")
        frame, _, _ = to_wide(read_csv(args.csv), forecaster.freq_, args.csv, drop=forecaster.ignored_columns_)
        if args.kind == "attention":
            figure = _plot(plots.plot_attention, forecaster.attention(frame))
        else:
            if args.holdout and args.future_csv:
                raise SamformerError("--holdout takes the known-future covariates from the held-out rows; leave out --future-csv")
            history, actual = (frame.iloc[: -forecaster.horizon], frame.iloc[-forecaster.horizon :]) if args.holdout else (frame, None)
            future = read_csv(args.future_csv) if args.future_csv else None
            if actual is not None and forecaster.future_columns_:
                future = actual[forecaster.future_columns_]
            forecast = forecaster.predict(history, future_df=future)
            figure = _plot(plots.plot_forecast, forecast, history=history, actual=actual, forecasters=forecaster.forecasters_)
    with _writing(out) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    print(json.dumps({"out": str(out), "kind": args.kind}))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    out = Path(args.out)
    _check_out(out, args.overwrite)
    forecaster = _load(args.model)
    try:
        forecaster.export_onnx(out, overwrite=args.overwrite)
    except ImportError as exc:
        raise SamformerError(str(exc)) from None
    except OSError as exc:
        raise SamformerError(f"cannot write {str(out)!r} ({exc.strerror or exc}); nothing was written, choose another --out") from None
    print(json.dumps({"out": str(out), "input": ["batch", forecaster.seq_len, len(forecaster.columns_)]}))
    return 0


def _plot(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ImportError as exc:
        raise SamformerError(str(exc)) from None
