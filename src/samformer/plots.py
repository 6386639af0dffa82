"""Figures: a forecast against what happened, the channel-attention matrix, training curves.

matplotlib is an optional extra (`pip install samformer[plot]`), imported when a function is called.
Figures are built with the object-oriented API on the Agg canvas (no pyplot state, no display
needed); each function returns the `Figure` and writes a PNG when given `path`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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
    """
    forecast, history, actual = (_wide(f) for f in (forecast, history, actual))
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
        ax.plot(forecast.index, forecast[col], color="tab:blue", lw=1.5, label="forecast")
        ax.set_ylabel(str(col))
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper left", fontsize="small", ncol=4)
    axes[0].set_title("SAMformer forecast")
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
    frame = pd.DataFrame(history)
    if frame.empty:
        raise ValueError("the history is empty: fit the model first")
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
