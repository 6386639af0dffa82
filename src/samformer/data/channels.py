"""Forecasting modes (M, S, MS, any target list) and covariates as extra channels.

How covariates enter SAMformer: every column is one token of the channel-wise attention, so a
covariate is simply another channel that the targets can attend to. Only the target channels go
through the linear forecaster and count in the loss and metrics.

- Past covariates are observed up to the forecast origin: their token is the usual L inputs.
- Known-future covariates (calendar features, planned prices, holidays) are known over the horizon:
  their token is shifted forward by H, holding rows [t+H, t+L+H), so it ends at the horizon's end.
- `calendar=True` derives sin/cos encodings of hour of day, day of week and day of year from the
  timestamps, as known-future covariates (features that are constant over the series are dropped).

`ChannelSpec.apply` works on the frame it is given; `samformer.data.loading.load_dataset(..., channels=)`
reads, applies and splits in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from samformer.data.series import ChannelRoles
from samformer.errors import DataError

MODES = ("M", "S", "MS")


def calendar_features(index: pd.DatetimeIndex, names: list[str] | None = None) -> pd.DataFrame:
    """Cyclic calendar encodings of `index` (sin/cos of hour of day, day of week, day of year).

    Features constant over `index` (e.g. the hour of daily data) are left out, unless `names` picks
    the features to return (as a fitted model does for the timestamps it forecasts from).
    """
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError("calendar features need timestamps: give the data a date column or a DatetimeIndex")
    hour = index.hour + index.minute / 60
    cycles = {"hour": (hour, 24.0), "weekday": (index.day_of_week, 7.0), "yearday": (index.day_of_year - 1, 365.25)}
    features = {}
    for name, (values, period) in cycles.items():
        angle = 2 * np.pi * np.asarray(values, dtype=np.float64) / period
        for fn, suffix in ((np.sin, "sin"), (np.cos, "cos")):
            features[f"cal_{name}_{suffix}"] = fn(angle)
    if names is not None:
        return pd.DataFrame({name: features[name] for name in names}, index=index)
    varying = {name: column for name, column in features.items() if len(column) and np.ptp(column) > 1e-9}
    return pd.DataFrame(varying, index=index)


@dataclass(frozen=True)
class ChannelSpec:
    """Which columns are forecast and which are covariates, by name."""

    mode: str = "M"  # M: all → all; S: target → itself; MS: all → target(s)
    targets: tuple[str, ...] = ()  # default: every non-covariate column (M) or the last column (S, MS; OT in the benchmarks)
    past_covariates: tuple[str, ...] = ()  # extra inputs observed up to the origin (S mode keeps only these)
    future_covariates: tuple[str, ...] = ()  # inputs known over the horizon
    calendar: bool = False  # add calendar features as known-future covariates

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise DataError(f"unknown mode {self.mode!r}: use M (all → all), S (target → itself) or MS (all → target)")

    @property
    def is_default(self) -> bool:
        return self == ChannelSpec()

    def apply(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, ChannelRoles]:
        """The frame's columns for this spec (plus calendar features) and the channel roles."""
        columns = [str(c) for c in frame.columns]
        frame = frame.set_axis(columns, axis=1)
        named = [*self.targets, *self.past_covariates, *self.future_covariates]
        missing = [c for c in named if c not in columns]
        if missing:
            raise DataError(f"column(s) {', '.join(missing)} not in the data; available: {', '.join(columns)}")
        overlap = set(self.targets) & (set(self.past_covariates) | set(self.future_covariates))
        if overlap or set(self.past_covariates) & set(self.future_covariates):
            raise DataError("a column can be a target, a past covariate or a future covariate, not several of these")
        covariates = set(self.past_covariates) | set(self.future_covariates)
        targets = list(self.targets) or ([c for c in columns if c not in covariates] if self.mode == "M" else [columns[-1]])
        if set(targets) & covariates:
            raise DataError(
                f"target(s) {', '.join(sorted(set(targets) & covariates))} also named as covariates; name the target with --target"
            )
        # S keeps the targets (and any past covariates named); M and MS take every non-future column as input
        inputs = targets + list(self.past_covariates) if self.mode == "S" else [c for c in columns if c not in self.future_covariates]
        selected = frame[inputs + list(self.future_covariates)]
        future = list(self.future_covariates)
        if self.calendar:
            calendar = calendar_features(frame.index)
            clash = set(calendar.columns) & set(selected.columns)
            if clash:
                raise DataError(f"column(s) {', '.join(sorted(clash))} clash with the calendar features' names; rename them")
            selected = pd.concat([selected, calendar], axis=1)
            future += list(calendar.columns)
        order = list(selected.columns)
        roles = ChannelRoles(
            targets=None if targets == order else tuple(order.index(c) for c in targets),
            future=tuple(order.index(c) for c in future),
        )
        return selected, roles
