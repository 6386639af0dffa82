"""Shared fixtures: where the real benchmark data live, and a small synthetic series."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# A relative $SAMFORMER_DATA (the README's own command sets `../shared/data`) names a folder relative to where pytest
# started; made absolute here, before any test changes directory, so every reader of the variable finds the same folder.
if os.environ.get("SAMFORMER_DATA"):
    os.environ["SAMFORMER_DATA"] = str(Path(os.environ["SAMFORMER_DATA"]).resolve())


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The benchmark CSVs: $SAMFORMER_DATA, else ../shared/data beside the project."""
    path = Path(os.environ.get("SAMFORMER_DATA", SHARED_DATA))
    if not (path / "ETTh1.csv").is_file():
        pytest.skip(f"benchmark data not found in {path}; set SAMFORMER_DATA")
    return path


def make_frame(n_rows: int = 600, n_channels: int = 3, freq: str = "h", seed: int = 0) -> pd.DataFrame:
    """A wide frame of noisy sinusoids with a DatetimeIndex named 'date'."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_rows)[:, None]
    values = np.sin(2 * np.pi * t / 24 + np.arange(n_channels)) + 0.1 * rng.standard_normal((n_rows, n_channels))
    index = pd.date_range("2020-01-01", periods=n_rows, freq=freq, name="date")
    return pd.DataFrame(values, index=index, columns=[f"c{i}" for i in range(n_channels)])


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    path = tmp_path / "small.csv"
    make_frame().to_csv(path)
    return path
