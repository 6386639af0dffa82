"""benchmarks/own_data_report.py (standard library only): comparisons and summary on hand-made records."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from own_data_report import comparisons, summarize


def method(mse: float | None, inside: int = 8, scored: int = 10, seconds: float = 1.0) -> dict:
    return {"mse": mse, "band_inside": inside, "band_scored": scored, "fit_seconds": seconds}


def record(season: int, **mse: float | None) -> dict:
    methods = {name: method(value) for name, value in mse.items()}
    return {"season": season, "series": f"s{season}", "methods": methods, "comparison": comparisons(methods)}


def test_comparisons_pick_the_references_and_divide_by_them():
    c = record(12, default=0.5, pure=2.0, naive=4.0, seasonal_naive=1.0, auto_ets=0.25, auto_theta=0.4, auto_arima=None)["comparison"]
    assert (c["winner"], c["best_stat"], c["best_simple"]) == ("auto_ets", "auto_ets", "seasonal_naive")
    assert c["ratios"]["default"] == {"best_simple": 0.5, "auto_ets": 2.0, "best_stat": 2.0}  # 0.5/1, 0.5/0.25
    assert c["ratios"]["pure"] == {"best_simple": 2.0, "auto_ets": 8.0, "best_stat": 8.0}


def test_a_failed_auto_ets_gives_no_ratio():
    c = record(4, default=1.0, pure=1.0, naive=2.0, seasonal_naive=2.0, auto_ets=None, auto_theta=0.5, auto_arima=4.0)["comparison"]
    assert c["ratios"]["default"] == {"best_simple": 0.5, "auto_ets": None, "best_stat": 2.0}


def test_summary_geometric_means_wins_and_pooled_coverage():
    rows = [
        record(12, default=0.5, pure=0.5, naive=1.0, seasonal_naive=1.0, auto_ets=1.0, auto_theta=1.0, auto_arima=1.0),
        record(52, default=2.0, pure=2.0, naive=1.0, seasonal_naive=1.0, auto_ets=1.0, auto_theta=1.0, auto_arima=1.0),
    ]
    rows[1]["methods"]["default"].update(band_inside=2, band_scored=30)
    s = summarize(rows)
    default = s["library"]["default"]
    assert default["geomean_ratio"]["auto_ets"] == pytest.approx(1.0)  # sqrt(0.5 · 2)
    assert default["geomean_ratio_auto_ets_season_le_24"] == pytest.approx(0.5)  # m = 52 left out
    assert default["series_better"] == {"best_simple": 1, "auto_ets": 1, "best_stat": 1}
    assert default["worst_ratio_best_simple"] == pytest.approx(2.0)
    assert s["methods"]["default"]["pooled_coverage"] == pytest.approx(10 / 40)  # (8 + 2) / (10 + 30)
    assert s["methods"]["default"]["wins"] == 1
