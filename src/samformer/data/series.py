"""Reading and validating one series, the literature's train/val/test splits, train-only scaling and sliding windows.

Benchmark names and whole loads go through `samformer.data.loading`, which calls down into this module.

Splits follow the loaders the paper used (TSMixer's, itself from Informer/Autoformer):
ETT hourly train [0, 8640), val [8640 − L, 11520), test [11520 − L, 14400); ETT 15-minute the same
×4; every other series 70/10/20 by rows, each later split starting L rows early so its first target
follows the previous split. A per-channel standard scaler is fitted on the training rows only.
Windows (input L rows, target the next H rows, stride 1) are views into one tensor per split.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pandas.tseries.frequencies import to_offset

from samformer.errors import DataError, ShapeError
from samformer.files import require_regular_file

SplitKind = Literal["ett_hour", "ett_minute", "ratio"]  # the border rules of `split_borders`
DATE_COLUMNS = ("date", "ds", "timestamp", "time", "datetime")


def read_series_csv(path: str | os.PathLike, check_time: bool = True) -> pd.DataFrame:
    """Read a CSV (plain or .gz) of a date column plus numeric channels into a float frame.

    The date column is the first one named date/ds/timestamp/time/datetime, else the first column if
    it parses as dates; it becomes the index. Every other column must be numeric and finite. With
    `check_time`, the timestamps must be sorted, unique and evenly spaced (`check_time_index`), since
    windows are cut by row position.
    """
    frame = read_csv(path, missing_hint="give the path of a CSV file or a benchmark name")
    frame = validate_frame(frame, source=str(path))
    if check_time and isinstance(frame.index, pd.DatetimeIndex):
        check_time_index(frame.index, str(path))
    return frame


def read_csv(path: str | os.PathLike, missing_hint: str = "give the path of a CSV file") -> pd.DataFrame:
    """Read a CSV (plain or .gz) as it is, unvalidated; a one-line `DataError` if it cannot be read.

    The one place a CSV file is opened: `read_series_csv` validates what it returns, `Forecaster`
    users' files (wide or long) go to `samformer.data.frames.to_wide`. `missing_hint` ends the message
    for a path that is not a file.
    """
    path = require_regular_file(path, "CSV file")
    if not path.is_file():
        raise DataError(f"{path}: no such file; {missing_hint}")
    try:
        return _overflowed_as_numbers(pd.read_csv(path))
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty; a CSV needs a header row and one row per time step") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} could not be parsed as CSV ({exc}); check the delimiter and encoding") from None


def _overflowed_as_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with each text column whose every value is a number made numeric: pandas before 3 reads a column holding
    a value beyond float64 ("1e400") as text, pandas 3 as inf; both then get the same refusal (an infinite value)."""
    for column in frame.select_dtypes(include="object").columns:
        try:
            numbers = frame[column].astype(np.float64)  # Python's float(): "1e400" is inf (pandas' parser gives NaN)
        except (ValueError, TypeError):
            continue  # text, refused by name where the frame is validated
        if np.isinf(numbers).any():
            frame[column] = numbers
    return frame


def infer_frequency(index: pd.DatetimeIndex) -> str | None:
    """The pandas frequency alias of evenly spaced timestamps ("h", "15min", "B", ...); None for fewer than 3 or uneven ones."""
    if len(index) < 3:
        return None
    with warnings.catch_warnings():  # pandas 3 announces that infer_freq will return an offset
        warnings.simplefilter("ignore")
        inferred = pd.infer_freq(index)
    return None if inferred is None else to_offset(inferred).freqstr


def check_time_index(index: pd.DatetimeIndex, source: str = "the data") -> None:
    """Require timestamps that are set, unique, sorted and evenly spaced; raise a `DataError` saying how to fix them.

    Calendar frequencies count as even: pandas-inferable ones (business days, month ends, ...) and
    steps within 15% of the median step (months of 28 to 31 days).
    """
    rows = "(rows counted from 0 after the header)"
    if index.hasnans:
        raise DataError(f"{source}: timestamp missing in row {int(np.argmax(index.isna()))} {rows}; fill it in or drop that row")
    if index.has_duplicates:
        first = int(np.argmax(index.duplicated()))
        raise DataError(
            f"{source}: timestamp {index[first]} appears more than once (row {first} {rows}); "
            f"keep one row per time step, e.g. average them with df.groupby('date').mean()"
        )
    steps = np.diff(index.asi8)
    if (steps < 0).any():
        i = int(np.argmax(steps < 0)) + 1
        raise DataError(
            f"{source}: timestamps are not sorted (row {i}, {index[i]}, comes after {index[i - 1]}) {rows}; "
            f"sort the rows by date first, e.g. df.sort_values('date')"
        )
    if len(index) < 3:
        return
    inferred = infer_frequency(index)
    median = float(np.median(steps))  # in the index's unit, which pandas 3 infers (s, us, ns ...)
    off = np.abs(steps - median) > 0.15 * median
    if inferred is None and off.any():
        i = int(np.argmax(off))
        typical = (index[1:] - index[:-1]).median()
        raise DataError(
            f"{source}: timestamps are unevenly spaced (a step of {index[i + 1] - index[i]} after row {i}, most are "
            f"{typical}); resample to one frequency, e.g. df.resample('{_offset_alias(typical)}', on='date').mean().interpolate(), "
            f"or drop the date column to use the rows as they are"
        )


def _offset_alias(step: pd.Timedelta) -> str:
    """The pandas frequency string of a time step, in days when it is whole days ('7D', not '168h')."""
    day = pd.Timedelta(days=1)
    return f"{step // day}D" if step >= day and step % day == pd.Timedelta(0) else to_offset(step).freqstr


def _holds_dates(column: pd.Series) -> bool:
    """Whether a non-numeric column parses as timestamps in every row."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return bool(pd.to_datetime(column, errors="raise").notna().all())
    except (ValueError, TypeError, OverflowError):
        return False


def validate_frame(frame: pd.DataFrame, source: str = "the data", allow_missing: bool = False) -> pd.DataFrame:
    """Check a wide frame (optional date column + numeric channels) and return it as float64.

    Raises a `DataError` naming the problem for: no rows, a single non-numeric column (wrong
    delimiter), complex-valued or non-numeric channels, NaN (unless `allow_missing`) or infinite values.
    """
    if frame.empty or len(frame.columns) == 0:
        raise DataError(f"{source} has no data rows; it needs one row per time step after the header")
    frame = frame.copy()
    date_col = next((c for c in frame.columns if str(c).strip().lower() in DATE_COLUMNS), None)
    if date_col is None and frame.shape[1] > 1 and _holds_dates(frame.iloc[:, 0]):
        date_col = frame.columns[0]  # a date column by content, whatever its name ("day", "Datum", ...)
    if date_col is not None:
        try:
            with warnings.catch_warnings():  # pandas warns before falling back to per-element parsing
                warnings.simplefilter("ignore", UserWarning)
                frame.index = pd.DatetimeIndex(pd.to_datetime(frame.pop(date_col)), name="date")
        except (ValueError, TypeError) as exc:
            raise DataError(
                f"{source}: column {date_col!r} does not parse as dates ({exc}); write them as YYYY-MM-DD HH:MM:SS, or rename the column"
            ) from None
    if frame.shape[1] == 0:
        raise DataError(f"{source} has a date column but no channels; add at least one numeric column")
    complex_valued = [str(c) for c in frame.columns if pd.api.types.is_complex_dtype(frame[c])]
    if complex_valued:  # numeric to pandas, but casting to float would drop the imaginary part
        raise DataError(
            f"{source}: column(s) {', '.join(complex_valued)} hold complex numbers; samformer forecasts real values: "
            "keep the real part (df[col].real) or give the real and imaginary parts as two columns"
        )
    non_numeric = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        hint = " (is the delimiter a comma?)" if frame.shape[1] == 1 else ""
        raise DataError(f"{source}: column(s) {', '.join(non_numeric)} are not numeric{hint}; keep only numeric channels and a date column")
    values = frame.to_numpy(dtype=np.float64)
    bad = np.isinf(values) if allow_missing else ~np.isfinite(values)
    if bad.any():
        cols = [str(c) for c, n in zip(frame.columns, bad.sum(axis=0), strict=True) if n]
        first = int(np.argmax(bad.any(axis=1)))
        raise DataError(
            f"{source}: {int(bad.sum())} missing or infinite value(s) in column(s) {', '.join(cols)} (first at row {first}); "
            f"fill or drop them first"
        )
    return frame.astype(np.float64)


def split_borders(kind: SplitKind, n_rows: int, seq_len: int) -> dict[str, tuple[int, int]]:
    """Row ranges [start, end) of the train / val / test splits (val and test include L context rows)."""
    if kind in ("ett_hour", "ett_minute"):
        per_month = 30 * 24 * (4 if kind == "ett_minute" else 1)
        train_end, val_end, test_end = 12 * per_month, 16 * per_month, 20 * per_month
    else:
        train_end = int(0.7 * n_rows)
        val_end = n_rows - int(0.2 * n_rows)
        test_end = n_rows
    if test_end > n_rows:
        raise DataError(f"the {kind} split needs {test_end} rows, the series has {n_rows}")
    return {"train": (0, train_end), "val": (train_end - seq_len, val_end), "test": (val_end - seq_len, test_end)}


@dataclass(frozen=True)
class StandardScaler:
    """Per-channel z-scoring; channels with zero variance keep scale 1 (as scikit-learn does)."""

    mean: np.ndarray  # (D,)
    std: np.ndarray  # (D,)

    @classmethod
    def fit(cls, values: np.ndarray, ignore_nan: bool = False) -> StandardScaler:
        """Fit on (T, D) values; with `ignore_nan`, missing values are left out of each channel's statistics."""
        mean, std = (np.nanmean(values, axis=0), np.nanstd(values, axis=0)) if ignore_nan else (values.mean(axis=0), values.std(axis=0))
        return cls(mean, np.where(std > 0, std, 1.0))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / self.std

    def inverse_transform(self, values: np.ndarray) -> np.ndarray:
        return values * self.std + self.mean


@dataclass(frozen=True)
class ChannelRoles:
    """What each channel is for, as column indices (the default, mode M, forecasts every channel).

    Channels that are neither targets nor known-future covariates are past covariates: inputs only,
    observed up to the forecast origin.
    """

    targets: tuple[int, ...] | None = None  # channels forecast and scored; None: all of them
    future: tuple[int, ...] = ()  # known-future covariates: their token holds rows [t+H, t+L+H), i.e. up to the horizon's end


class Windows:
    """All (input, target) windows of one split, served by index from a single tensor.

    `series` is (T, D); window i has input rows [i, i+L) and target rows [i+L, i+L+H).
    The windows are views of one channels-first copy of the series; a batch is copied when gathered. An optional
    boolean `mask` of the same shape (True = observed) is served alongside by `batch_mask`. `roles` selects the target channels and
    shifts known-future covariates forward by H (see `ChannelRoles`).
    """

    def __init__(
        self, series: torch.Tensor, seq_len: int, horizon: int, mask: torch.Tensor | None = None, roles: ChannelRoles | None = None
    ) -> None:
        n = series.shape[0] - seq_len - horizon + 1
        if n < 1:
            raise DataError(
                f"a split of {series.shape[0]} rows is too short for seq_len={seq_len} + horizon={horizon}; "
                f"use a shorter --seq-len or --horizon, or a longer series"
            )
        self.series = series
        self.seq_len, self.horizon = seq_len, horizon
        self._view = _channels_first_windows(series, seq_len + horizon)  # (N, D, L+H), a view
        if mask is not None and mask.shape != series.shape:
            raise ShapeError(f"the mask has shape {tuple(mask.shape)}, the series {tuple(series.shape)}; they must match")
        self.mask = mask
        self._mask_view = None if mask is None else _channels_first_windows(mask, seq_len + horizon)  # (N, D, L+H) bool
        self.roles = roles or ChannelRoles()
        self._targets = None if self.roles.targets is None else list(self.roles.targets)
        self._future = list(self.roles.future)

    def __len__(self) -> int:
        return self._view.shape[0]

    def batch(self, index: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (B, D, L) and targets (B, D_targets, H) of the windows at `index`, channels first."""
        return self._split(_gather(self._view, index))  # (B, D, L+H)

    def _split(self, block: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cut gathered (B, D, L+H) windows into inputs and targets according to the channel roles."""
        x, y = block[..., : self.seq_len], block[..., self.seq_len :]
        if self._future:
            x = x.clone()
            x[:, self._future] = block[:, self._future, self.horizon :]  # known-future: rows [t+H, t+L+H)
        if self._targets is not None:
            y = y[:, self._targets]  # (B, D, H) -> (B, D_targets, H)
        return x, y

    def batch_mask(self, index: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Observed-value masks (B, D, L) and (B, D, H) of the windows at `index`; None without a mask."""
        if self._mask_view is None:
            return None
        return self._split(_gather(self._mask_view, index))

    def to(self, device: torch.device | str) -> Windows:
        mask = None if self.mask is None else self.mask.to(device)
        return Windows(self.series.to(device), self.seq_len, self.horizon, mask, self.roles)


def _channels_first_windows(series: torch.Tensor, length: int) -> torch.Tensor:
    """Every window of `length` rows of `series` (T, D) as a view (N, D, length) of a channels-first copy (D, T),
    so that each window's channel is one contiguous run: gathering windows from (T, D) directly reads every value
    D floats away from the last, about 5x slower (weather, 21 channels)."""
    return series.t().contiguous().unfold(1, length, 1).transpose(0, 1)  # (D, T) -> (D, N, length) -> (N, D, length)


def _gather(view: torch.Tensor, index: torch.Tensor | slice) -> torch.Tensor:
    """The windows of `view` at `index`: copied into one contiguous block for an index tensor, a view for a slice."""
    return view.index_select(0, index) if isinstance(index, torch.Tensor) else view[index]


@dataclass
class SplitData:
    """A series cut into standardised train/val/test splits (each a (T, D) float32 tensor; `test` None when
    the data have no test split, as a `Forecaster`'s: training never reads it)."""

    name: str
    columns: list[str]
    seq_len: int
    horizon: int
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor | None
    scaler: StandardScaler
    borders: dict[str, tuple[int, int]]
    index: pd.Index = field(repr=False)
    masks: dict[str, torch.Tensor] | None = field(default=None, repr=False)  # per split, (T, D) bool, True = observed
    roles: ChannelRoles = field(default_factory=ChannelRoles)  # targets and known-future covariates
    source: dict[str, Any] | None = None  # the file's identity, {"path": resolved path, "sha256": of its content}

    @classmethod
    def from_series(
        cls,
        series: torch.Tensor,
        borders: dict[str, tuple[int, int]],
        *,
        name: str,
        columns: list[str],
        seq_len: int,
        horizon: int,
        scaler: StandardScaler,
        index: pd.Index,
        mask: torch.Tensor | None = None,
        roles: ChannelRoles | None = None,
    ) -> SplitData:
        """Cut one standardised series (T, D) into the splits `borders` gives as row ranges [start, end).

        `borders` names train and val, and test unless the data have none; `mask` (T, D), True where
        observed, is cut alike. Each split is a row-major (rows, D) slice: a view of a row-major `series`.
        """
        parts = {split: series[start:end].contiguous() for split, (start, end) in borders.items()}  # (T, D) -> (rows, D) each
        masks = None if mask is None else {split: mask[start:end] for split, (start, end) in borders.items()}
        return cls(
            name,
            list(columns),
            seq_len,
            horizon,
            parts["train"],
            parts["val"],
            parts.get("test"),
            scaler,
            dict(borders),
            index,
            masks,
            roles or ChannelRoles(),
        )

    @property
    def n_channels(self) -> int:
        return len(self.columns)

    def windows(self, split: str) -> Windows:
        """Sliding windows over one split: 'train', 'val' or 'test'."""
        mask = None if self.masks is None else self.masks[split]
        return Windows(getattr(self, split), self.seq_len, self.horizon, mask, self.roles)

    def protocol(self) -> dict:
        """What a result needs to say about how the data were cut and scaled."""
        return {
            "dataset": self.name,
            "borders": {k: list(v) for k, v in self.borders.items()},
            "scaler_fit_rows": list(self.borders["train"]),
            "windows": {s: len(self.windows(s)) for s in ("train", "val", "test")},
            **({"source": self.source} if self.source else {}),
        }


def check_scaler_finite(scaler: StandardScaler, columns: list, name: str) -> None:
    """Refuse (DataError) columns whose mean or standard deviation overflowed (values near 1e300): they cannot be standardised."""
    overflow = np.isinf(scaler.mean) | np.isinf(scaler.std)
    if overflow.any():
        cols = ", ".join(str(c) for c, bad in zip(columns, overflow, strict=True) if bad)
        raise DataError(f"{name}: column(s) {cols} hold values too large to standardise (their variance overflows); rescale them first")


def split_frame(frame: pd.DataFrame, seq_len: int, horizon: int, kind: SplitKind = "ratio", name: str = "data") -> SplitData:
    """Cut a validated wide frame into scaled splits with the given border rule."""
    if seq_len < 1 or horizon < 1:
        raise DataError(f"seq_len and horizon must be positive integers, got seq_len={seq_len}, horizon={horizon}")
    n_rows = len(frame)
    borders = split_borders(kind, n_rows, seq_len)
    for split, (start, end) in borders.items():
        if start < 0 or end - start < seq_len + horizon:
            raise DataError(
                f"{name} has {n_rows} rows: too short for seq_len={seq_len} + horizon={horizon} in its {split} split "
                f"(rows {start}..{end}); use a shorter --seq-len or --horizon, or a longer series"
            )
    values = frame.to_numpy(dtype=np.float64)
    with np.errstate(over="ignore"):  # reported below, as a DataError
        scaler = StandardScaler.fit(values[slice(*borders["train"])])
    check_scaler_finite(scaler, list(frame.columns), name)
    scaled = torch.from_numpy(scaler.transform(values).astype(np.float32))  # (T, D)
    columns = [str(c) for c in frame.columns]
    sizes = {"seq_len": seq_len, "horizon": horizon}
    return SplitData.from_series(scaled, borders, name=name, columns=columns, **sizes, scaler=scaler, index=frame.index)
