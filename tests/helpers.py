"""Helpers shared by the test modules: running the CLI in-process, writing inputs, damaging saved files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from samformer.cli.main import main
from samformer.forecasting.modelfile import config_sha256


def run_cli(capsys, *argv: Any) -> tuple[int, str, str]:
    """`samformer ARGV` in this process: its exit code, stdout and stderr (arguments may be paths)."""
    capsys.readouterr()  # what was printed before is not this command's
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def write_file(directory: Path, name: str, text: str) -> Path:
    """`text` written to `directory / name`; returns the path."""
    path = directory / name
    path.write_text(text)
    return path


def flip_byte(path: Path, offset: int = -1, mask: int = 0xFF) -> None:
    """Damage a file in place: XOR the byte at `offset` with `mask` (same length, different content)."""
    raw = bytearray(path.read_bytes())
    raw[offset] ^= mask
    path.write_bytes(bytes(raw))


def edit_config(path: Path, change: Callable[[dict[str, Any]], Any], rechecksum: bool = False) -> None:
    """Apply `change` to the JSON at `path` (a model's config.json); with `rechecksum`, as if saved that way."""
    config = json.loads(path.read_text())
    change(config)
    if rechecksum:
        config["config_sha256"] = config_sha256(config)
    path.write_text(json.dumps(config))
