"""Internal: DataFrames as users have them → one wide float frame on a regular time grid, and back.

Two layouts are accepted: wide (a DatetimeIndex or a date column, one numeric column per channel) and
long (`unique_id, ds, y`, as Nixtla's neuralforecast). Both become the same wide frame, channels in
column order (long: `unique_id` sorted) named by `str(label)` (integer and tuple labels included),
rows on a regular grid of one frequency; timestamps missing from the grid become rows of NaN, which
the forecaster masks. Time-zone-aware timestamps are gridded in UTC (sub-daily) or on local dates. Series of a panel may start and end on
different dates (ragged): before its first and after its last value a series is missing, and that is
allowed at any length; gaps inside a series must be shorter than the look-back.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from samformer.data.series import DATE_COLUMNS, infer_frequency, validate_frame
from samformer.errors import DataError

Layout = Literal["wide", "long"]
LONG_COLUMNS = ("unique_id", "ds", "y")


def detect_layout(df: pd.DataFrame) -> Layout:
    """'long' when the frame has exactly the columns unique_id, ds, y (any order), else 'wide'."""
    return "long" if set(map(str, df.columns)) == set(LONG_COLUMNS) else "wide"


def long_to_wide(df: pd.DataFrame) -> pd.DataFrame:
    """Pivot a long `unique_id, ds, y` frame to one column per `unique_id` (sorted), indexed by `ds`."""
    for column in ("unique_id", "ds"):
        _refuse_unhashable(df[column])
    if df.duplicated(["unique_id", "ds"]).any():
        dup = df[df.duplicated(["unique_id", "ds"])].iloc[0]
        raise DataError(f"the long frame has several rows for unique_id={dup['unique_id']!r}, ds={dup['ds']}; keep one per series and time")
    try:
        ds = pd.to_datetime(df["ds"])
    except (ValueError, TypeError) as exc:
        raise DataError(f"column 'ds' does not parse as dates ({exc})") from None
    wide = df.assign(ds=ds).pivot(index="ds", columns="unique_id", values="y")
    wide.columns = [str(c) for c in wide.columns]
    wide.index.name = "date"
    return wide


def _refuse_unhashable(column: pd.Series) -> None:
    """Refuse (DataError) a long frame's key column holding a value that cannot be a key (a list, a dict, ...)."""
    if column.dtype != object:
        return
    for row, value in enumerate(column):
        try:
            hash(value)
        except TypeError:
            raise DataError(
                f"the long frame's {column.name!r} holds {type(value).__name__} {value!r} at row {row}, which cannot name a "
                "series or a time; use strings, numbers or timestamps"
            ) from None


def to_wide(
    df: pd.DataFrame, freq: str | None = None, source: str = "the frame", drop: Sequence[str] = ()
) -> tuple[pd.DataFrame, str, Layout]:
    """Validate `df` (wide or long) and return (wide float64 frame on a regular grid, frequency string, layout).

    `freq` (a pandas offset alias such as "h", "15min", "D", "B") is inferred from the timestamps when
    None; with gaps in the timestamps it cannot be inferred and must be given. Columns of a wide `df`
    named in `drop` are left out before validation (unused columns, which may hold text). Time-zone-aware
    timestamps stay in their zone (see `to_wide_zoned` for how the grid is built).
    """
    frame, freq, layout, tz = to_wide_zoned(df, freq, source, drop)
    frame.index = localize(frame.index, tz, freq)
    return frame, freq, layout


def to_wide_zoned(
    df: pd.DataFrame,
    freq: str | None = None,
    source: str = "the frame",
    drop: Sequence[str] = (),
    *,
    check_tz: bool = False,
    fitted_tz: str | None = None,
) -> tuple[pd.DataFrame, str, Layout, str | None]:
    """`to_wide` on naive timestamps, and the time zone they came in (None when naive).

    Time-zone-aware timestamps are put on a grid that a daylight-saving change cannot break: sub-daily
    data in UTC, daily-or-coarser data on their local wall-clock dates. `localize` turns such an index
    back into the zone. With `check_tz`, timestamps in another zone than `fitted_tz` (None: naive) are
    refused first (`check_zone`).
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{source} must be a pandas DataFrame, got {type(df).__name__}")
    layout = detect_layout(df)
    if layout == "wide":
        df = df.drop(columns=[c for c in df.columns if str(c) in set(drop)])
        _refuse_long_lookalike(df, source)
    frame = long_to_wide(df) if layout == "long" else df
    frame = validate_frame(frame, source=source, allow_missing=True)
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise DataError(
            f"{source} has no timestamps: give it a DatetimeIndex, a date column (date, ds, timestamp, time or datetime) "
            f"or the long layout unique_id, ds, y"
        )
    frame.columns = text_labels(frame.columns, source)
    if check_tz:
        check_zone(None if frame.index.tz is None else str(frame.index.tz), fitted_tz, source)
    frame.index, tz = _naive(frame.index, freq, source)
    if frame.index.hasnans:
        raise DataError(f"{source} has missing timestamps (NaT) in its date column; drop those rows")
    if frame.index.has_duplicates:
        first = frame.index[frame.index.duplicated()][0]
        raise DataError(f"{source} has duplicate timestamps (first: {first}); keep one row per time step")
    frame = frame.sort_index()
    freq = _resolve_freq(frame.index, freq, source)
    grid = pd.date_range(frame.index[0], frame.index[-1], freq=freq, name="date")
    off_grid = frame.index.difference(grid)
    if len(off_grid):
        raise DataError(f"{source}: timestamp {off_grid[0]} is not on the {freq!r} grid from {frame.index[0]}; resample the data first")
    return frame.reindex(grid), freq, layout, tz


def text_labels(labels: pd.Index, source: str) -> list[str]:
    """Column labels of any hashable type as the strings the model knows them by: `str(label)` (0 -> '0', ('a', 1) -> "('a', 1)").

    Two labels with the same string (1 and '1') are refused, since their forecasts could not be told apart.
    """
    names = [str(label) for label in labels]
    if len(set(names)) < len(names):
        first = next(name for name in names if names.count(name) > 1)
        clashing = ", ".join(repr(label) for label in labels if str(label) == first)
        raise DataError(f"{source} has columns {clashing} that all read as {first!r}; rename them so their str() differ")
    return names


def _naive(index: pd.DatetimeIndex, freq: str | None, source: str) -> tuple[pd.DatetimeIndex, str | None]:
    """`index` without its time zone (UTC if sub-daily, wall-clock dates otherwise) and the zone's name (None if naive)."""
    if index.tz is None:
        return index, None
    tz = str(index.tz)
    try:
        pd.Timestamp(0).tz_localize(tz)
    except (ValueError, TypeError, KeyError):
        raise DataError(
            f"{source} has timestamps in time zone {tz!r}, which cannot be saved by name; tz_convert them to a named zone or UTC"
        ) from None
    sub_daily = _is_sub_daily(freq) if freq is not None else _steps_below_a_day(index)
    return _drop_zone(index, sub_daily), tz


def _drop_zone(times: pd.DatetimeIndex | pd.Timestamp, sub_daily: bool) -> pd.DatetimeIndex | pd.Timestamp:
    """Zone-aware `times` made naive: in UTC when `sub_daily`, else as local wall-clock times."""
    return times.tz_convert(None) if sub_daily else times.tz_localize(None)


def localize(index: pd.DatetimeIndex, tz: str | None, freq: str) -> pd.DatetimeIndex:
    """A naive `index` of `to_wide_zoned` back in time zone `tz` (unchanged when `tz` is None)."""
    if tz is None:
        return index
    if _is_sub_daily(freq):
        return index.tz_localize("UTC").tz_convert(tz)
    dst = np.ones(len(index), dtype=bool)  # a wall-clock date at an ambiguous hour: its daylight-saving instant
    return index.tz_localize(tz, ambiguous=dst, nonexistent="shift_forward")


def naive_timestamp(timestamp: pd.Timestamp, freq: str) -> pd.Timestamp:
    """`timestamp` on the naive grid of `to_wide_zoned` (UTC if sub-daily, its wall-clock date otherwise); naive ones as given."""
    if timestamp.tz is None:
        return timestamp
    return _drop_zone(timestamp, _is_sub_daily(freq))


def check_zone(found: str | None, fitted: str | None, source: str) -> None:
    """Refuse timestamps in another time zone than the model's (naive ones count as a zone of their own)."""
    if found == fitted:
        return
    if fitted is None:
        fix = "pass naive timestamps, e.g. df.tz_convert(None)"
    else:
        fix = f"{'convert' if found else 'localize'} them, e.g. df.{'tz_convert' if found else 'tz_localize'}({fitted!r})"
    where = f"time zone {found!r}" if found else "naive timestamps (no time zone)"
    fitted_on = f"time zone {fitted!r}" if fitted else "naive timestamps"
    raise DataError(f"{source} has {where}, the model was fitted on {fitted_on}; {fix}")


def _is_sub_daily(freq: str) -> bool:
    """Whether `freq` is a fixed step shorter than a day ("h", "15min"); calendar steps (B, W, MS) are not."""
    try:
        return pd.Timedelta(to_offset(freq)) < pd.Timedelta(days=1)
    except (ValueError, TypeError):  # a frequency without a fixed length, or not a frequency (refused later, by name)
        return False


def _steps_below_a_day(index: pd.DatetimeIndex) -> bool:
    """Whether consecutive distinct timestamps (in UTC) are ever less than 23 hours apart (a DST day lasts 23)."""
    instants = index.unique().sort_values()
    return len(instants) > 1 and (instants[1:] - instants[:-1]).min() < pd.Timedelta(hours=23)


def _refuse_long_lookalike(df: pd.DataFrame, source: str) -> None:
    """Refuse, with the renaming to do, a wide-looking frame of one id, one date and one value column (a long panel)."""
    if df.shape[1] != 3:
        return
    text = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    values = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
    dates = [c for c in text if str(c).strip().lower() in DATE_COLUMNS or _parses_as_dates(df[c])]
    ids = [c for c in text if c not in dates and not _numbers_with_decimal_commas(df[c])]
    if len(values) == len(dates) == len(ids) == 1 and df[ids[0]].nunique() < len(df):
        raise DataError(
            f"{source} looks like a long panel (one row per series and time: {ids[0]}, {dates[0]}, {values[0]}); "
            f"rename its columns to unique_id, ds, y"
        )


def _numbers_with_decimal_commas(column: pd.Series) -> bool:
    """Whether every value of a text column reads as a number once a decimal comma is a point ("1,5"): a channel
    written in another locale, refused later as not numeric, not a series id."""
    text = column.dropna().astype(str).str.replace(",", ".", regex=False)
    return len(text) > 0 and bool(pd.to_numeric(text, errors="coerce").notna().all())


def _parses_as_dates(column: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(column):
        return True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return bool(pd.to_datetime(column.head(50), errors="raise").notna().all())
    except (ValueError, TypeError, OverflowError):
        return False


def unselected_text_columns(df: pd.DataFrame, selected: Collection[str]) -> list[str]:
    """Non-numeric columns of a wide `df` that are not `selected` and are not its date column (by name, or the first)."""
    if detect_layout(df) == "long":
        return []
    return [
        str(c)
        for i, c in enumerate(df.columns)
        if i > 0
        and str(c) not in selected
        and str(c).strip().lower() not in DATE_COLUMNS
        and not pd.api.types.is_numeric_dtype(df[c])
        and not pd.api.types.is_datetime64_any_dtype(df[c])
    ]


def _resolve_freq(index: pd.DatetimeIndex, freq: str | None, source: str) -> str:
    inferred = infer_frequency(index)
    if freq is not None:
        try:
            offset = to_offset(freq)
        except ValueError:
            raise DataError(f"freq={freq!r} is not a pandas frequency; use an alias such as 'h', '15min', 'D' or 'B'") from None
        if inferred is not None and to_offset(inferred) != offset:
            found = to_offset(inferred).freqstr
            raise DataError(f"{source} has frequency {found!r}, expected {offset.freqstr!r}; resample it or give the matching freq")
        return offset.freqstr
    if inferred is None:
        raise DataError(
            f"cannot infer the frequency of {source} (fewer than 3 rows, or gaps in the timestamps); "
            f"pass freq=, e.g. freq='h' (--freq h), and missing time steps become masked values"
        )
    return to_offset(inferred).freqstr


def future_index(last: pd.Timestamp, freq: str, horizon: int) -> pd.DatetimeIndex:
    """The `horizon` timestamps after `last` on the `freq` grid."""
    return pd.date_range(last, periods=horizon + 1, freq=freq, name="date")[1:]


def check_missing(values: np.ndarray, columns: list[str], seq_len: int, source: str) -> None:
    """Refuse a channel with no value, or a gap inside a channel at least `seq_len` long.

    Every input window needs an observed value in each channel for RevIN's statistics. Missing values
    before a channel's first value or after its last (a ragged panel) are allowed at any length.
    """
    observed = ~np.isnan(values)
    for j, name in enumerate(columns):
        if not observed[:, j].any():
            raise DataError(f"{source}: channel {name!r} has no values (all NaN); drop the column or fill it")
        start, end = longest_gap(observed[:, j])
        if end - start >= seq_len:
            raise DataError(
                f"{source}: channel {name!r} has {end - start} consecutive missing values (rows {start}..{end - 1}), "
                f"so some windows of seq_len={seq_len} see no value of it; fill or cut that stretch, or use a longer seq_len"
            )


def check_observed_before(values: np.ndarray, columns: list[str], rows: int, source: str) -> None:
    """Refuse a channel with no value at all, or none in the first `rows` rows (those its scaling is fitted on)."""
    for j, name in enumerate(columns):
        if np.isnan(values[:, j]).all():
            raise DataError(f"{source}: channel {name!r} has no values (all NaN); drop the column or fill it")
        if np.isnan(values[:rows, j]).all():
            raise DataError(
                f"{source}: channel {name!r} has no value before the validation part (row {rows}); it starts too late: "
                f"drop it, or use a smaller val_size"
            )


def longest_gap(observed: np.ndarray) -> tuple[int, int]:
    """[start, end) of the longest run of False between two True values of a boolean vector ((0, 0) if none)."""
    padded = np.concatenate(([True], observed, [True])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))  # alternating starts and ends of missing runs
    starts, ends = edges[::2], edges[1::2]
    inside = (starts > 0) & (ends < len(observed))  # runs touching either end are the panel's ragged edges
    if not inside.any():
        return 0, 0
    starts, ends = starts[inside], ends[inside]
    k = int(np.argmax(ends - starts))
    return int(starts[k]), int(ends[k])
