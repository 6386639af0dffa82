"""Test helper: two run records equal but for wall-clock times, and floats within a tolerance (a stack sums in another order)."""

from __future__ import annotations

from typing import Any

import pytest

TIMES = ("train_seconds", "seconds")


def assert_same_record(a: Any, b: Any, tolerance: float = 1e-5, where: str = "record") -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        assert sorted(k for k in a if k not in TIMES) == sorted(k for k in b if k not in TIMES), where
        for key in a:
            if key not in TIMES:
                assert_same_record(a[key], b[key], tolerance, f"{where}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_record(x, y, tolerance, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, abs=tolerance), where
    else:
        assert a == b, where
