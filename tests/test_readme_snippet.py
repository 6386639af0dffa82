"""The README's `Forecaster` snippet runs as printed, and its printed output has the shape the README shows.

The snippet is the ```python block between `<!-- forecaster-snippet -->` and `<!-- /forecaster-snippet -->`
in README.md; a second fenced block there is its output. Numbers may differ from machine to machine,
so the output is compared with every number masked: same lines, same labels, same columns.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
MARKED = re.compile(r"<!-- forecaster-snippet -->(.*?)<!-- /forecaster-snippet -->", re.DOTALL)
FENCED = re.compile(r"```(\w*)\n(.*?)```", re.DOTALL)
NUMBER = re.compile(r"-?\d+(\.\d+)?|True|False")  # numbers, and which candidate won


def _blocks() -> tuple[str, str | None]:
    marked = MARKED.search(README.read_text(encoding="utf-8"))
    if marked is None:
        pytest.skip("README.md has no <!-- forecaster-snippet --> ... <!-- /forecaster-snippet --> markers yet")
    blocks = FENCED.findall(marked.group(1))
    code = next(text for lang, text in blocks if lang == "python")
    output = next((text for lang, text in blocks if lang != "python"), None)
    return code, output


def _shape(text: str) -> list[str]:
    return [" ".join(NUMBER.sub("#", line).split()) for line in text.strip().splitlines()]


def test_the_readme_forecaster_snippet_runs_and_prints_what_the_readme_shows(data_dir, tmp_path, monkeypatch):
    code, output = _blocks()
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code.replace("../shared/data", str(data_dir)), "README.md snippet", "exec"), {"__name__": "__readme__"})
    if "plot_forecast" in code:
        assert (tmp_path / "forecast.png").stat().st_size > 0
    if output is not None:
        assert _shape(printed.getvalue()) == _shape(output), printed.getvalue()
