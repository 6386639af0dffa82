"""Comparisons, summary and markdown table of `benchmarks/own_data.py`, rebuilt from its per-series JSON files."""

from __future__ import annotations

import json
import math
import os
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

LIBRARY = ("default", "pure")
STATS = ("naive", "seasonal_naive", "auto_ets", "auto_theta", "auto_arima")
SIMPLE = ("naive", "seasonal_naive")
REFERENCES = {"best_simple": "the better of naive and seasonal naive", "auto_ets": "AutoETS", "best_stat": "the best of the five"}


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _best(mse: dict[str, float | None], names: tuple[str, ...]) -> str | None:
    scored = [n for n in names if mse.get(n) is not None]
    return min(scored, key=lambda n: mse[n]) if scored else None


def comparisons(methods: dict[str, dict]) -> dict[str, Any]:
    """Winner, best statistical method, and each library column's MSE ratio to the references (< 1: better)."""
    mse = {k: v["mse"] for k, v in methods.items()}
    best = {"best_simple": _best(mse, SIMPLE), "auto_ets": "auto_ets" if mse.get("auto_ets") is not None else None}
    best["best_stat"] = _best(mse, STATS)
    ratios = {
        column: {ref: mse[column] / mse[name] if name and mse[column] is not None else None for ref, name in best.items()}
        for column in LIBRARY
    }
    return {"winner": _best(mse, tuple(mse)), "best_stat": best["best_stat"], "best_simple": best["best_simple"], "ratios": ratios}


def _geometric_mean(values: list[float]) -> float | None:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def summarize(results: list[dict]) -> dict[str, Any]:
    """Over the series: geometric means of the ratios, wins per reference, pooled coverage and fit time per method."""
    columns = {}
    for column in LIBRARY:
        ratios = {ref: [r["comparison"]["ratios"][column][ref] for r in results] for ref in REFERENCES}
        ets_seasonal = [r["comparison"]["ratios"][column]["auto_ets"] for r in results if r["season"] <= 24]
        columns[column] = {
            "geomean_ratio": {ref: _geometric_mean([v for v in vs if v is not None]) for ref, vs in ratios.items()},
            "geomean_ratio_auto_ets_season_le_24": _geometric_mean([v for v in ets_seasonal if v is not None]),
            "series_better": {ref: sum(v is not None and v < 1 for v in vs) for ref, vs in ratios.items()},
            "worst_ratio_best_simple": max((v for v in ratios["best_simple"] if v is not None), default=None),
        }
    methods = {}
    for name in (*LIBRARY, *STATS):
        inside = sum(r["methods"][name]["band_inside"] for r in results)
        scored = sum(r["methods"][name]["band_scored"] for r in results)
        methods[name] = {
            "pooled_coverage": inside / scored if scored else None,
            "fit_seconds_total": round(sum(r["methods"][name]["fit_seconds"] for r in results), 1),
            "wins": sum(r["comparison"]["winner"] == name for r in results),
        }
    return {"series": [r["series"] for r in results], "n_series": len(results), "library": columns, "methods": methods}


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f} %"


def _series_rows(results: list[dict]) -> list[str]:
    head = "| series (source) | freq | rows × ch | H (m) | origins | default | pure | naive | snaive | AutoETS | AutoTheta | AutoARIMA |"
    rows = [head, "|" + "---|" * 12]
    for r in results:
        mse = {k: v["mse"] for k, v in r["methods"].items()}
        best = r["comparison"]["winner"]
        cells = [f"**{_num(mse[k])}**" if k == best else _num(mse[k]) for k in (*LIBRARY, *STATS)]
        shape = f"{r['freq']} | {r['rows']} × {r['channels']} | {r['horizon']} ({r['season']}) | {r['origins']}"
        rows.append(f"| {r['series']} ({r['source']}) | {shape} | " + " | ".join(cells) + " |")
    return rows


def _ratio_rows(results: list[dict]) -> list[str]:
    head = "| series | default ÷ best simple | ÷ AutoETS | ÷ best stat (which) | pure ÷ best simple | ÷ AutoETS | ÷ best stat |"
    rows = [head, "|" + "---|" * 7]
    for r in results:
        c = r["comparison"]
        d, p = c["ratios"]["default"], c["ratios"]["pure"]
        stat = f"{_num(d['best_stat'])} ({c['best_stat']})"
        rows.append(
            f"| {r['series']} | {_num(d['best_simple'])} | {_num(d['auto_ets'])} | {stat} | "
            f"{_num(p['best_simple'])} | {_num(p['auto_ets'])} | {_num(p['best_stat'])} |"
        )
    return rows


def _band_rows(results: list[dict]) -> list[str]:
    names = (*LIBRARY, *STATS)
    head = "| series | scored | " + " | ".join(f"{n} cov." for n in names) + " | " + " | ".join(f"{n} s" for n in names) + " | L | epochs |"
    rows = [head, "|" + "---|" * (2 * len(names) + 4)]
    for r in results:
        m = r["methods"]
        cov = " | ".join(_pct(m[n]["coverage"]) for n in names)
        secs = " | ".join(f"{m[n]['fit_seconds']:.1f}" for n in names)
        fit = f"{r['seq_len']['default']} | {r['epochs_run']['default']}"
        rows.append(f"| {r['series']} | {m['default']['band_scored']} | {cov} | {secs} | {fit} |")
    return rows


def _summary_lines(summary: dict) -> list[str]:
    n = summary["n_series"]
    lines = []
    for column, s in summary["library"].items():
        g, wins = s["geomean_ratio"], s["series_better"]
        better = "; ".join(f"{REFERENCES[ref]} on {wins[ref]} of {n}" for ref in REFERENCES)
        lines.append(
            f"- **{column}**: better than {better}. Geometric mean of its MSE over the best simple's "
            f"{_num(g['best_simple'])}, over AutoETS's {_num(g['auto_ets'])} (series with m ≤ 24; statsforecast's ETS drops "
            f"longer seasons: {_num(s['geomean_ratio_auto_ets_season_le_24'])}), over the best stat's {_num(g['best_stat'])}; "
            f"worst ratio to the best simple {_num(s['worst_ratio_best_simple'])}."
        )
    methods = summary["methods"]
    cov = ", ".join(f"{k} {_pct(v['pooled_coverage'])}" for k, v in methods.items())
    lines.append(f"- Pooled coverage of the 80 % band: {cov}.")
    lines.append("- Wins (lowest MSE): " + ", ".join(f"{k} {v['wins']}" for k, v in methods.items() if v["wins"]) + ".")
    lines.append("- Total fit seconds: " + ", ".join(f"{k} {v['fit_seconds_total']}" for k, v in methods.items()) + ".")
    return lines


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def markdown(results: list[dict], summary: dict, options: dict, command: str) -> str:
    """The README of the results directory: the command, the protocol in brief, the tables."""
    same = "the pure column reuses the default's fit (same options)" if results and results[0]["pure_reuses_default"] else ""
    lines = [
        "# Your own data: the Forecaster beside statsforecast (issue 26, item 5)",
        "",
        f"```bash\n{command}\n```",
        "",
        f"Generated by `benchmarks/own_data.py` on {date.today()} at commit {_commit()}; options {json.dumps(options)}"
        + (f"; {same}." if same else "."),
        "Protocol (the script's docstring): every model fitted once on the first 80 % of the rows; origins every H rows",
        "over the rest; MSE per channel on the fitted rows' standard scale, averaged over channels; coverage of the",
        "80 % band ([q0.1, q0.9], statsforecast `level=[80]`). m = season of the seasonal methods (1: annual).",
        "",
        "## Summary",
        "",
        *_summary_lines(summary),
        "",
        "## Scaled MSE (lowest in bold)",
        "",
        *_series_rows(results),
        "",
        "## The library's MSE over the references (< 1: the library is better)",
        "",
        *_ratio_rows(results),
        "",
        "## Coverage of the 80 % band, fit seconds, the default's look-back L and epochs",
        "",
        *_band_rows(results),
        "",
    ]
    return "\n".join(lines)


def write_report(out: Path, names: list[str], options: dict, command: str) -> None:
    """Rebuild `summary.json` and `README.md` in `out` from the series JSON files made with `options`."""
    results = []
    for name in names:
        path = out / f"{name}.json"
        if path.exists():
            record = json.loads(path.read_text())
            if record.get("options") == options:
                results.append(record)
    summary = summarize(results)
    atomic_write(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write(out / "README.md", markdown(results, summary, options, command))
