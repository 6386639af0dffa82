"""`samformer study`: the paper's trainability study (toy task) and sharpness/entropy on real data.

`study toy --out DIR` trains the Transformer, SAMformer, Transformer + σReparam and the Transformer with
frozen random attention on the toy task (`samformer.toy`) and writes `summary.json` plus four PNGs.
`study sharpness --dataset NAME --horizon H` trains the Transformer and SAMformer on a benchmark and
prints their sharpness, attention entropy and nuclear norm side by side (`samformer.analysis`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from samformer.analysis import attention_statistics, fixed_subset, sharpness
from samformer.commands.options import positive_int
from samformer.errors import SamformerError
from samformer.experiment import RunSpec, execute
from samformer.files import atomic_destination, write_json
from samformer.loading import load_dataset
from samformer.toy import METHOD_LABELS, StudyConfig, ToyConfig, run_toy_study

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# --quick: the same dimensions (D=7, L=512, H=96) on a fifth of the samples and 10 epochs, for tests and a
# first look; far too short to converge (the full run needs ≈ 75 epochs for SAM to reach the oracle).
QUICK = StudyConfig(
    toy=ToyConfig(n_train=2000, n_val=1000, n_test=500),
    epochs=10,
    diagnostic_samples=256,
    sharpness_iterations=10,
    full_sharpness=False,
)
COLORS = {"transformer": "tab:red", "samformer": "tab:blue", "sigma_reparam": "tab:green", "random_attention": "tab:gray"}


def register(sub: argparse._SubParsersAction) -> None:
    study = sub.add_parser("study", help="trainability study: toy task, sharpness, attention entropy")
    kinds = study.add_subparsers(dest="study", required=True, parser_class=type(study))

    toy = kinds.add_parser("toy", help="the paper's toy task: 4 methods, the oracle, figures and summary.json")
    toy.add_argument("--out", required=True, help="directory for the PNGs and summary.json")
    toy.add_argument("--quick", action="store_true", help="reduced run (2000 training samples, 10 epochs): under 2 minutes")
    toy.add_argument(
        "--epochs", type=positive_int, default=None, help=f"epochs per method (default {StudyConfig.epochs}, quick {QUICK.epochs})"
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
    study = QUICK if args.quick else StudyConfig()
    if args.epochs is not None:
        study = replace(study, epochs=args.epochs)
    out = _prepare_out(args.out)
    _require_matplotlib()
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
        ]
    )
    write_json(out / "summary.json", _json_safe(summary))
    for name, plot in FIGURES.items():
        _save(plot(summary), out / f"{name}.png")
    keys = ("final_val_loss", "final_sharpness", "final_entropy")
    print(json.dumps({"oracle_val_loss": summary["oracle_val_loss"], **{m: {k: summary[m][k] for k in keys} for m in study.methods}}))
    return 0


def cmd_sharpness(args: argparse.Namespace) -> int:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    out = _prepare_out(args.out) if args.out else None
    data = load_dataset(args.dataset, RunSpec.seq_len, args.horizon, data_dir=args.data_dir)
    x, y = fixed_subset(data.windows("train"), args.samples)
    result: dict[str, Any] = {"dataset": data.name, "horizon": args.horizon, "seed": args.seed, "diagnostic_samples": len(x)}
    options = {"progress": False, **({"epochs": args.epochs} if args.epochs else {})}
    for label, variant in (("transformer", "no-sam"), ("samformer", "samformer")):
        spec = RunSpec(args.dataset, args.horizon, variant, seed=args.seed, train_options=options)
        model, train_result, _ = execute(spec, data=data)
        result[label] = {
            "sharpness": sharpness(model, x, y, max_iter=30, tol=1e-3, seed=args.seed),
            **attention_statistics(model, x),
            "test_mse": train_result.test_mse,
            "val_mse": train_result.val_mse,
            "best_epoch": train_result.best_epoch,
            "epochs_run": train_result.epochs_run,
            "train_seconds": train_result.train_seconds,
        }
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


# ---------------------------------------------------------------------------------------------------
# Figures (matplotlib is optional: imported here, on the Agg canvas, no pyplot state).


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SamformerError("the study's figures need matplotlib: pip install 'samformer[plot]'") from None


def _figure(figsize: tuple[float, float] = (7, 4.4)) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> None:
    with atomic_destination(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")


def _line(ax, summary: dict[str, Any], method: str, key: str, **style: Any) -> None:
    series = summary[method]["series"]
    points = [(e, v) for e, v in zip(series["epoch"], series[key], strict=True) if v is not None]
    if points:
        epochs, values = zip(*points, strict=True)
        style = {"marker": "o", "markersize": 2.5, "linewidth": 1.3, "label": METHOD_LABELS[method], **style}
        ax.plot(epochs, values, color=COLORS[method], **style)


def _methods(summary: dict[str, Any], only: tuple[str, ...] | None = None) -> list[str]:
    return [m for m in summary["settings"]["methods"] if only is None or m in only]


def _setting_note(summary: dict[str, Any]) -> str:
    st = summary["settings"]
    toy = st["toy"]
    values = f"W_V W_O (L→{st['value_dim']}→L)" if st.get("value_dim") else "W_V (L→L)"
    return (
        f"D={toy['n_channels']}, L={toy['seq_len']}, H={toy['horizon']}, {toy['n_train']} training samples; "
        f"Adam lr {st['lr']:g}, batch {st['batch_size']}, SAM rho {st['rho']:g}; values {values}"
    )


def plot_val_loss(summary: dict[str, Any]) -> Figure:
    """Training and validation MSE per epoch of every method, with the least-squares oracle as a line (log scale)."""
    fig = _figure(figsize=(11, 4.4))
    axes = fig.subplots(1, 2, sharey=True)
    oracle = summary["oracle_val_loss"]
    for ax, key, title in ((axes[0], "train_loss", "training loss (mean over the epoch)"), (axes[1], "val_loss", "validation loss")):
        for method in _methods(summary):
            _line(ax, summary, method, key)
        ax.axhline(oracle, color="black", linestyle="--", linewidth=1, label=f"oracle (least squares): {oracle:.3f}")
        ax.set(yscale="log", xlabel="epoch (0 = initialisation)", title=title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("MSE (log scale)")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"Toy task: loss per epoch\n{_setting_note(summary)}", fontsize=10)
    return fig


def plot_sharpness(summary: dict[str, Any]) -> Figure:
    """λmax of the training-loss Hessian, Transformer vs SAMformer (log scale), at the epochs it was measured."""
    fig = _figure()
    ax = fig.add_subplot()
    for method in _methods(summary, tuple(summary["settings"]["sharpness_methods"])):
        _line(ax, summary, method, "sharpness", markersize=4)
    n = summary["settings"]["diagnostic_samples"]
    every = summary["settings"].get("sharpness_every", 1)
    ax.set(
        yscale="log",
        xlabel="epoch (0 = initialisation)",
        ylabel="λmax of the Hessian (log scale)",
        title=f"Sharpness: top Hessian eigenvalue of the mean training MSE\n({n} fixed training samples, every {every} epochs)",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_entropy(summary: dict[str, Any]) -> Figure:
    """Mean attention entropy per epoch (log scale), with ln D (uniform attention) as a line."""
    fig = _figure()
    ax = fig.add_subplot()
    for method in _methods(summary):
        _line(ax, summary, method, "attention_entropy")
    ln_d = math.log(summary["settings"]["toy"]["n_channels"])
    ax.axhline(ln_d, color="black", linestyle=":", label=f"uniform attention: ln D = {ln_d:.2f}")
    ax.set(
        yscale="log",
        xlabel="epoch (0 = initialisation)",
        ylabel="entropy (nats, log scale)",
        title="Attention entropy (mean over rows and samples; 0 = one-hot rows)",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right", bbox_to_anchor=(1, 0.86))  # between ln D and the collapsed curves
    return fig


def plot_nuclear_norm(summary: dict[str, Any]) -> Figure:
    """Mean nuclear norm of the D×D attention per epoch for every method (D for a permutation, 1 for uniform)."""
    fig = _figure()
    ax = fig.add_subplot()
    for method in _methods(summary):
        _line(ax, summary, method, "nuclear_norm")
    d = summary["settings"]["toy"]["n_channels"]
    ax.axhline(d, color="black", linestyle=":", linewidth=1, label=f"identity / permutation: D = {d}")
    ax.axhline(1, color="black", linestyle="-.", linewidth=1, label="uniform attention: 1")
    ax.set(xlabel="epoch (0 = initialisation)", ylabel="nuclear norm", title="Nuclear norm of the D×D attention (mean over samples)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


FIGURES = {"val_loss": plot_val_loss, "sharpness": plot_sharpness, "entropy": plot_entropy, "nuclear_norm": plot_nuclear_norm}


def _json_safe(obj: Any) -> Any:
    """Non-finite floats become None so that summary.json is strict JSON."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
