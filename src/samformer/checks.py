"""Boundary checks of public arguments: each refusal a one-line `ConfigError` naming the argument, what it got and
what is accepted, raised before a value reaches pandas, torch or pathlib (whose own errors do not say what to do).
Imports nothing of ours but `samformer.errors`."""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

from samformer.errors import ConfigError, shown


def check_int(name: str, value: object, low: int = 1, high: int | None = None) -> int:
    """`value` as an int if it is an integer (not a bool) in [low, high]; else a `ConfigError` naming `name`."""
    accepted = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name} must be {accepted}, got {shown(value)} ({type(value).__name__})")
    if value < low or (high is not None and value > high):
        raise ConfigError(f"{name} must be {accepted}, got {shown(value)}")
    return int(value)


def check_real(name: str, value: object, low: float = 0.0) -> float:
    """`value` as a float if it is a finite real number (not a bool) >= `low`; else a `ConfigError` naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < low:
        raise ConfigError(f"{name} must be a finite number >= {low:g}, got {shown(value)}")
    return float(value)


def check_bool(name: str, value: object) -> bool:
    """`value` if it is True or False (not 0/1, not a string); else a `ConfigError` naming `name`."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be True or False, got {shown(value)}")
    return value


def check_path(name: str, value: object) -> Path:
    """`value` as a Path if it is a non-empty str or os.PathLike of text; else a `ConfigError` naming `name`."""
    if not isinstance(value, str | os.PathLike):
        raise ConfigError(f"{name} must be a path (str or os.PathLike), got {shown(value)} ({type(value).__name__})")
    text = os.fspath(value)
    if not isinstance(text, str) or not text or "\0" in text:
        raise ConfigError(f"{name} must be a path of non-empty text without NUL characters, got {shown(value)}")
    return Path(text)
