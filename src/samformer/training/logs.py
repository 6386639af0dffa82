"""Per-epoch training metrics to `metrics.csv`, and to TensorBoard when the `tensorboard` package is installed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from samformer.files import atomic_destination


class MetricsLogger:
    """An epoch callback for `train.fit`: rewrites `log_dir/metrics.csv` (atomically) after every epoch.

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
