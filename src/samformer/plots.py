"""Figures: a forecast against what happened, the channel-attention matrix, training curves, the toy study.

matplotlib is an optional extra (`pip install samformer[plot]`), imported when a function is called.
Figures are built with the object-oriented API on the Agg canvas (no pyplot state, no display
needed); each function returns the `Figure` and writes a PNG when given `path`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from samformer.errors import DataError, SamformerError
from samformer.experiments.toy import METHOD_LABELS
from samformer.files import atomic_destination
from samformer.training.logs import PLOTTED, history_problem

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def require_matplotlib() -> None:
    """Fail early, in one line, when matplotlib is missing (before a long run whose figures need it)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SamformerError("the study's figures need matplotlib: pip install 'samformer[plot]'") from None


def _figure(width: float, height: float) -> Figure:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'samformer[plot]'") from None
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _finish(fig: Figure, path: str | os.PathLike | None) -> Figure:
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plot_forecast(
    forecast: pd.DataFrame,
    history: pd.DataFrame | None = None,
    actual: pd.DataFrame | None = None,
    columns: Sequence[str] | None = None,
    n_history: int | None = None,
    path: str | os.PathLike | None = None,
    forecasters: Mapping[str, str] | None = None,
) -> Figure:
    """One panel per channel: recent history, the forecast, its widest quantile interval, and the actual values.

    Args:
        forecast: a frame from `Forecaster.predict`: wide (channel columns, optional `<channel>_q<level>`)
            or long (`unique_id, ds, y`, optional `y_q<level>`: one panel per series).
        history: the values before the forecast (e.g. the frame given to `predict`), wide or long.
        actual: the values that happened over the forecast dates, wide or long.
        columns: channels to draw (default: every point column of `forecast`, at most 8).
        n_history: how many history rows to show (default: 3 × the horizon).
        path: where to write a PNG.
        forecasters: what forecast each channel (`Forecaster.forecasters_`): a channel a statistical stand-in
            forecast is labelled with its name, e.g. "forecast (ets)". Default: every channel is SAMformer's.
    """
    forecast, history, actual = (_wide(f) for f in (forecast, history, actual))
    forecasters = {} if forecasters is None else dict(forecasters)
    if columns is None:
        columns = [c for c in forecast.columns if "_q" not in str(c)][:8]
    n_history = 3 * len(forecast) if n_history is None else n_history
    fig = _figure(10, 2.2 * len(columns))
    axes = fig.subplots(len(columns), 1, sharex=True, squeeze=False)[:, 0]
    for ax, col in zip(axes, columns, strict=True):
        if history is not None:
            ax.plot(history.index[-n_history:], history[col].iloc[-n_history:], color="0.35", lw=1, label="history")
        if actual is not None:
            ax.plot(actual.index, actual[col], color="black", lw=1.2, label="actual")
        bands = sorted(c for c in forecast.columns if str(c).startswith(f"{col}_q"))
        if len(bands) >= 2:
            lo, hi = bands[0], bands[-1]
            label = f"{lo.removeprefix(col + '_q')}–{hi.removeprefix(col + '_q')} quantiles"
            ax.fill_between(forecast.index, forecast[lo], forecast[hi], color="tab:blue", alpha=0.25, label=label)
        made_by = forecasters.get(col, "samformer")
        line_label = "forecast" if made_by == "samformer" else f"forecast ({made_by})"
        ax.plot(forecast.index, forecast[col], color="tab:blue", lw=1.5, label=line_label)
        ax.set_ylabel(str(col))
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize="small", ncol=4)
    stand_ins = any(forecasters.get(col, "samformer") != "samformer" for col in columns)
    axes[0].set_title("Forecast: SAMformer, and statistical stand-ins where labelled" if stand_ins else "SAMformer forecast")
    return _finish(fig, path)


def _wide(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """A long frame (`unique_id, ds, y[, y_q<level>]`) as a wide one (`<id>[_q<level>]` columns, dates as index); others as given."""
    if frame is None or not {"unique_id", "ds"} <= set(map(str, frame.columns)):
        return frame
    values = [c for c in frame.columns if c not in ("unique_id", "ds")]
    wide = frame.pivot(index="ds", columns="unique_id", values=values)  # columns (value, id)
    wide.columns = [f"{series}{str(value)[1:]}" for value, series in wide.columns]  # y -> id, y_q0.1 -> id_q0.1
    wide.index = pd.DatetimeIndex(pd.to_datetime(wide.index), name="date")
    return wide


def plot_attention(matrix: pd.DataFrame, path: str | os.PathLike | None = None, title: str = "channel attention") -> Figure:
    """Heatmap of a D×D attention matrix (`Forecaster.attention`), rows = querying channel, labelled by name."""
    d = len(matrix)
    fig = _figure(1.6 + 0.55 * d, 1.2 + 0.5 * d)
    ax = fig.subplots()
    image = ax.imshow(matrix.to_numpy(), cmap="viridis", vmin=0)
    ax.set_xticks(range(d), [str(c) for c in matrix.columns], rotation=45, ha="right")
    ax.set_yticks(range(d), [str(c) for c in matrix.index])
    ax.set_xlabel("attended channel")
    ax.set_ylabel("channel")
    if d <= 12:
        for i in range(d):
            for j in range(d):
                value = matrix.iat[i, j]
                ax.text(
                    j,
                    i,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if value < 0.5 * matrix.to_numpy().max() else "black",
                )
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(title)
    return _finish(fig, path)


def plot_training(history: Sequence[dict[str, Any]] | pd.DataFrame, path: str | os.PathLike | None = None) -> Figure:
    """Training loss and validation metrics per epoch (`Forecaster.history_` or a `metrics.csv`), best epoch marked."""
    if not isinstance(history, pd.DataFrame):
        listed = isinstance(history, Sequence) and not isinstance(history, str)
        problem = history_problem(list(history), PLOTTED) if listed else "not a list"
        if problem is not None:
            raise DataError(f"cannot plot this training history: {problem}; pass Forecaster.history_ or a metrics.csv frame")
    frame = pd.DataFrame(history)
    if frame.empty:
        raise DataError("the training history is empty (no epoch was recorded), so there is nothing to plot; fit the model first")
    fig = _figure(7, 3.5)  # first: it gives the install hint when matplotlib is missing
    from matplotlib.ticker import MaxNLocator

    score = "val_loss" if "val_loss" in frame else "val_mse"
    ax = fig.subplots()
    ax.plot(frame["epoch"], frame["train_loss"], marker="o", label="train loss")
    ax.plot(frame["epoch"], frame[score], marker="o", label=score.replace("_", " "))
    if score != "val_mse":
        ax.plot(frame["epoch"], frame["val_mse"], marker=".", ls="--", label="val mse (median)")
    best = frame.loc[frame[score].idxmin()]
    ax.axvline(best["epoch"], color="0.5", ls=":", label=f"best epoch {int(best['epoch'])}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (standardised scale)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("training curves")
    return _finish(fig, path)


# ---------------------------------------------------------------------------------------------------
# The toy trainability study (`samformer.experiments.toy`, `samformer study toy`): one figure per diagnostic.

STUDY_COLORS = {
    "transformer": "tab:red",
    "samformer": "tab:blue",
    "sigma_reparam": "tab:green",
    "sigma_reparam_all": "tab:olive",
    "random_attention": "tab:gray",
    "random_attention_all": "tab:brown",
}


def _save_atomic(fig: Figure, path: Path) -> None:
    with atomic_destination(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")


def _study_line(ax, summary: dict[str, Any], method: str, key: str, **style: Any) -> None:
    series = summary[method]["series"]
    points = [(e, v) for e, v in zip(series["epoch"], series[key], strict=True) if v is not None]
    if points:
        epochs, values = zip(*points, strict=True)
        style = {"marker": "o", "markersize": 2.5, "linewidth": 1.3, "label": METHOD_LABELS[method], **style}
        ax.plot(epochs, values, color=STUDY_COLORS[method], **style)


def _every_method(summary: dict[str, Any], key: str) -> tuple[Figure, Any]:
    """A figure with one axis and every method's per-epoch `key` drawn on it."""
    fig = _figure(7, 4.4)
    ax = fig.add_subplot()
    for method in _study_methods(summary):
        _study_line(ax, summary, method, key)
    return fig, ax


def _study_methods(summary: dict[str, Any], only: tuple[str, ...] | None = None) -> list[str]:
    return [m for m in summary["settings"]["methods"] if only is None or m in only]


def _setting_note(summary: dict[str, Any]) -> str:
    st = summary["settings"]
    toy = st["toy"]
    values = f"W_V W_O (L→{st['value_dim']}→L)" if st.get("value_dim") else "W_V (L→L)"
    return (
        f"D={toy['n_channels']}, L={toy['seq_len']}, H={toy['horizon']}, {toy['n_train']} training samples; "
        f"Adam lr {st['lr']:g}, batch {st['batch_size']}{'' if st.get('shuffle', True) else ' (unshuffled)'}, "
        f"SAM rho {st['rho']:g}; values {values}"
    )


def plot_toy_losses(summary: dict[str, Any]) -> Figure:
    """Training and validation MSE per epoch of every method, with the least-squares oracle as a line (log scale)."""
    fig = _figure(11, 4.4)
    axes = fig.subplots(1, 2, sharey=True)
    oracle = summary["oracle_val_loss"]
    for ax, key, title in ((axes[0], "train_loss", "training loss (mean over the epoch)"), (axes[1], "val_loss", "validation loss")):
        for method in _study_methods(summary):
            _study_line(ax, summary, method, key)
        ax.axhline(oracle, color="black", linestyle="--", linewidth=1, label=f"oracle (least squares): {oracle:.3f}")
        ax.set(yscale="log", xlabel="epoch (0 = initialisation)", title=title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("MSE (log scale)")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"Toy task: loss per epoch\n{_setting_note(summary)}", fontsize=10)
    return fig


def plot_toy_sharpness(summary: dict[str, Any]) -> Figure:
    """λmax of the training-loss Hessian, Transformer vs SAMformer (log scale), at the epochs it was measured."""
    fig = _figure(7, 4.4)
    ax = fig.add_subplot()
    for method in _study_methods(summary, tuple(summary["settings"]["sharpness_methods"])):
        _study_line(ax, summary, method, "sharpness", markersize=4)
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


def plot_toy_entropy(summary: dict[str, Any]) -> Figure:
    """Mean attention entropy per epoch (log scale), with ln D (uniform attention) as a line."""
    fig, ax = _every_method(summary, "attention_entropy")
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


def plot_toy_nuclear_norm(summary: dict[str, Any]) -> Figure:
    """Mean nuclear norm of the D×D attention per epoch for every method (D for a permutation, 1 for uniform)."""
    fig, ax = _every_method(summary, "nuclear_norm")
    d = summary["settings"]["toy"]["n_channels"]
    ax.axhline(d, color="black", linestyle=":", linewidth=1, label=f"identity / permutation: D = {d}")
    ax.axhline(1, color="black", linestyle="-.", linewidth=1, label="uniform attention: 1")
    ax.set(xlabel="epoch (0 = initialisation)", ylabel="nuclear norm", title="Nuclear norm of the D×D attention (mean over samples)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


# File stem of each figure of `samformer study toy`.
TOY_FIGURES = {
    "val_loss": plot_toy_losses,
    "sharpness": plot_toy_sharpness,
    "entropy": plot_toy_entropy,
    "nuclear_norm": plot_toy_nuclear_norm,
}


def write_toy_figures(summary: dict[str, Any], out: Path) -> None:
    """Write every `TOY_FIGURES` PNG of a `samformer.experiments.toy.run_toy_study` summary into `out` (atomically)."""
    for name, plot in TOY_FIGURES.items():
        _save_atomic(plot(summary), out / f"{name}.png")


def plot_toy_entropy_factors(result: dict[str, Any]) -> Figure:
    """Attention entropy per epoch, SAMformer (solid) against the Transformer (dashed), one panel per factor.

    `result` is the JSON of `benchmarks/toy_entropy.py`: `runs` keyed "setting/method" and `verdicts`
    giving each setting's factor and value. Every panel repeats the default setting in black.
    """
    runs, verdicts = result["runs"], result["verdicts"]
    factors = [f for f in dict.fromkeys(v["factor"] for v in verdicts.values()) if f != "default"]
    rows = math.ceil(len(factors) / 2)
    fig = _figure(11, 4 * rows)
    axes = fig.subplots(rows, 2, sharey=True, squeeze=False).ravel()
    for ax in axes[len(factors) :]:
        ax.set_visible(False)
    for ax, factor in zip(axes, factors, strict=False):
        settings = ["default", *(s for s, v in verdicts.items() if v["factor"] == factor)]
        for i, setting in enumerate(settings):
            color = "black" if setting == "default" else f"C{i}"
            label = "default" if setting == "default" else verdicts[setting]["value"]
            for method, style in (("samformer", "-"), ("transformer", "--")):
                run = runs.get(f"{setting}/{method}")
                if run is not None:
                    series = run["series"]
                    name = "SAMformer" if method == "samformer" else "Transformer"
                    ax.plot(series["epoch"], series["attention_entropy"], style, color=color, linewidth=1.2, label=f"{name}, {label}")
        ax.set(yscale="log", xlabel="epoch (0 = initialisation)", title=f"factor: {factor}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[::2]:
        ax.set_ylabel("attention entropy (nats, log scale)")
    title = "Toy task: attention entropy, one factor at a time around the defaults\n(solid: SAMformer, dashed: Transformer)"
    fig.suptitle(title, fontsize=10)
    return fig


def write_figure(fig: Figure, path: str | os.PathLike) -> None:
    """Write `fig` as a PNG at `path`, atomically."""
    _save_atomic(fig, Path(path))
