"""The public real series of `benchmarks/own_data.py`, each shipped inside a PyPI package (nothing is downloaded).

Every loader returns a wide frame on a regular `DatetimeIndex` (one column per channel), except `stocks`,
which stays in the long `unique_id, ds, y` layout users have (a ragged panel, as a check of that input path).
Packages: pmdarima, statsmodels, sktime, vega_datasets (`benchmarks/own_data-requirements.txt`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class Series:
    """One benchmark series and its protocol settings."""

    load: Callable[[], pd.DataFrame]
    horizon: int  # H: one natural cycle (a year, a week, a day); 5 for annual data
    season: int  # m for the seasonal statistical methods: H, or 1 for annual data
    source: str  # package and loader, for the table
    fit_options: dict = field(default_factory=dict)  # keyword arguments of Forecaster.fit


def _dated(values, start: str, freq: str, name: str) -> pd.DataFrame:
    """A one-column frame of `values` on a regular grid starting at `start`."""
    index = pd.date_range(start, periods=len(values), freq=freq, name="date")
    return pd.DataFrame({name: pd.Series(values).to_numpy(dtype=float)}, index=index)


def _pmdarima(name: str, start: str, freq: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from pmdarima import datasets

        return _dated(getattr(datasets, f"load_{name}")(as_series=True), start, freq, name)

    return load


def _sktime_csv(folder: str, file: str) -> pd.DataFrame:
    from importlib.resources import files

    return pd.read_csv(files("sktime.datasets") / "data" / folder / file)


def seatbelts() -> pd.DataFrame:
    """UK drivers killed or seriously injured, monthly 1969–1984 (`label`, the seat-belt law, is left out)."""
    raw = _sktime_csv("seatbelts", "seatbelts.csv")
    return _dated(raw["KSI"], "1969-01-01", "MS", "ksi")


def uschange() -> pd.DataFrame:
    """US quarterly % changes 1970–2016: consumption, income, production, savings, unemployment."""
    raw = _sktime_csv("Uschange", "Uschange.csv").drop(columns=["Unnamed: 0", "Quarter"])
    return raw.set_axis(pd.date_range("1970-01-01", periods=len(raw), freq="QS", name="date"), axis=0)


def elec_equip() -> pd.DataFrame:
    """Euro-area electrical equipment orders index, monthly from 1995."""
    from statsmodels.datasets import elec_equip as module

    raw = module.load().data
    return _dated(raw.iloc[:, 0], str(raw.index[0].date()), "MS", "orders")


def macrodata() -> pd.DataFrame:
    """US macroeconomic data, quarterly 1959–2009, 12 columns."""
    from statsmodels.datasets import macrodata as module

    raw = module.load_pandas().data
    index = pd.date_range(f"{int(raw['year'][0])}-01-01", periods=len(raw), freq="QS", name="date")
    return raw.drop(columns=["year", "quarter"]).set_axis(index, axis=0)


def _statsmodels_annual(module_name: str, column: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from importlib import import_module

        raw = import_module(f"statsmodels.datasets.{module_name}").load_pandas().data
        return _dated(raw[column], f"{int(raw.iloc[0, 0])}-01-01", "YS", module_name)

    return load


def co2() -> pd.DataFrame:
    """Mauna Loa CO2, weekly (Saturdays) 1958–2001, 59 missing weeks left as NaN."""
    from statsmodels.datasets import co2 as module

    return module.load_pandas().data


def us_employment() -> pd.DataFrame:
    """US employment (thousands, not seasonally adjusted), monthly 2006–2015: five sectors."""
    from vega_datasets import data

    sectors = ["construction", "manufacturing", "retail_trade", "leisure_and_hospitality", "government"]
    raw = data.us_employment()
    return raw[sectors].astype(float).set_axis(pd.DatetimeIndex(pd.to_datetime(raw["month"]), name="date"), axis=0)


def seattle_temps_daily() -> pd.DataFrame:
    """Seattle's daily mean temperature in 2010 (vega's hourly `seattle_temps`, averaged per day)."""
    from vega_datasets import data

    hourly = data.seattle_temps().set_index("date")["temp"]
    return hourly.resample("D").mean().rename_axis("date").to_frame("temp")


def seattle_weather() -> pd.DataFrame:
    """Seattle daily weather 2012–2015: four numeric columns and a text one (`weather`, left out by `target`)."""
    from vega_datasets import data

    return data.seattle_weather()


def stocks() -> pd.DataFrame:
    """Five monthly stock prices 2000–2010 in the long layout; GOOG starts in 2004."""
    from vega_datasets import data

    return data.stocks().rename(columns={"symbol": "unique_id", "date": "ds", "price": "y"})


def sunspots_monthly() -> pd.DataFrame:
    from pmdarima.datasets import load_sunspots

    y = load_sunspots(as_series=True)
    return _dated(y, str(pd.to_datetime(y.index[0], format="%b %Y").date()), "MS", "sunspots")


# Short series (<= 400 rows) first, so that they finish first; then the longer ones.
SERIES: dict[str, Series] = {
    "airpassengers": Series(_pmdarima("airpassengers", "1949-01-01", "MS"), 12, 12, "pmdarima load_airpassengers"),
    "wineind": Series(_pmdarima("wineind", "1980-01-01", "MS"), 12, 12, "pmdarima load_wineind"),
    "seatbelts": Series(seatbelts, 12, 12, "sktime data/seatbelts"),
    "elec_equip": Series(elec_equip, 12, 12, "statsmodels elec_equip"),
    "us_employment": Series(us_employment, 12, 12, "vega_datasets us_employment"),
    "stocks": Series(stocks, 12, 12, "vega_datasets stocks (long, ragged)"),
    "austres": Series(_pmdarima("austres", "1971-04-01", "QS"), 4, 4, "pmdarima load_austres"),
    "woolyrnq": Series(_pmdarima("woolyrnq", "1965-01-01", "QS"), 4, 4, "pmdarima load_woolyrnq"),
    "ausbeer": Series(_pmdarima("ausbeer", "1956-01-01", "QS"), 4, 4, "pmdarima load_ausbeer"),
    "uschange": Series(uschange, 4, 4, "sktime data/Uschange"),
    "macrodata": Series(macrodata, 4, 4, "statsmodels macrodata"),
    "lynx": Series(_pmdarima("lynx", "1821-01-01", "YS"), 5, 1, "pmdarima load_lynx"),
    "nile": Series(_statsmodels_annual("nile", "volume"), 5, 1, "statsmodels nile"),
    "sunspots_annual": Series(_statsmodels_annual("sunspots", "SUNACTIVITY"), 5, 1, "statsmodels sunspots"),
    "seattle_temps_daily": Series(seattle_temps_daily, 7, 7, "vega_datasets seattle_temps (daily mean)"),
    "seattle_weather": Series(
        seattle_weather, 7, 7, "vega_datasets seattle_weather", {"target": ["precipitation", "temp_max", "temp_min", "wind"]}
    ),
    "sunspots_monthly": Series(sunspots_monthly, 12, 12, "pmdarima load_sunspots"),
    "co2": Series(co2, 52, 52, "statsmodels co2 (weekly, gaps)"),
    "taylor": Series(_pmdarima("taylor", "2000-06-05", "30min"), 48, 48, "pmdarima load_taylor"),
}
