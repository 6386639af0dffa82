"""Per-epoch training metrics to `metrics.csv`, and to TensorBoard when the `tensorboard` package is installed."""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any

import pandas as pd

from samformer.files import atomic_destination


class MetricsLogger:
    """An epoch callback for `training.fit.fit`: rewrites `log_dir/metrics.csv` (atomically) after every epoch.

    TensorBoard scalars go to `log_dir` as well when `torch.utils.tensorboard` can be imported.
    """

    def __init__(self, log_dir: str | os.PathLike) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.records: list[dict[str, Any]] = []
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            self.writer = None
        else:
            self.writer = SummaryWriter(str(self.log_dir))

    def __call__(self, model: Any, record: dict[str, Any]) -> None:
        self.records.append(dict(record))
        with atomic_destination(self.log_dir / "metrics.csv") as tmp:
            pd.DataFrame(self.records).to_csv(tmp, index=False)
        if self.writer is not None:
            for key, value in record.items():
                if key != "epoch" and isinstance(value, int | float):
                    self.writer.add_scalar(key, value, record["epoch"])
            self.writer.flush()


HISTORY_NUMBERS = ("lr", "train_loss", "val_mse", "val_mae", "val_loss", "seconds")  # numbers wherever present
PLOTTED = ("epoch", "train_loss", "val_mse")  # what a plot of the history needs in every record


def history_problem(history: Any, required: tuple[str, ...] = ("epoch",)) -> str | None:
    """What is wrong with a training history read back from a file (a list of epoch records), or None if nothing.

    Each record must be a JSON object holding the `required` entries, with a positive integer `epoch` and
    numbers wherever `HISTORY_NUMBERS` are present; other entries (a callback's) are not judged. An empty
    list is a valid history (nothing was trained); what needs an epoch says so itself.
    """
    if not isinstance(history, list):
        return f"the history is {type(history).__name__}, not a list of epoch records"
    for i, record in enumerate(history):
        if not isinstance(record, dict):
            return f"history entry {i} is {record!r}, not an object of per-epoch metrics"
        missing = [key for key in required if key not in record]
        if missing:
            return f"history entry {i} lacks {', '.join(missing)}"
        epoch = record["epoch"]
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
            return f"history entry {i} has epoch={epoch!r}, not an epoch number >= 1"
        wrong = [key for key in HISTORY_NUMBERS if key in record and not _is_number(record[key])]
        if wrong:
            return f"history entry {i} has {wrong[0]}={record[wrong[0]]!r}, not a number"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
