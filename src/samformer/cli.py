"""The `samformer` command line: argument parsing and translation to the library, nothing else.

Errors a user can fix print one line on stderr (`samformer: error: ...`) and exit with code 2.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from samformer.allocator import keep_freed_memory
from samformer.errors import SamformerError

# Subcommand modules under samformer/commands/, each with a `register(subparsers)` function.
COMMANDS = ["train", "benchmark", "forecast", "study", "sweep"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump), exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="samformer", description="SAMformer: train, benchmark and forecast.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    for module in _command_modules():
        module.register(sub)
    return parser


def _command_modules() -> list[ModuleType]:
    return [importlib.import_module(f"samformer.commands.{name}") for name in COMMANDS]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed on one line
        return int(exc.code or 0)
    keep_freed_memory()  # the CLI owns its process: let glibc keep freed memory for reuse (see samformer.allocator)
    try:
        return args.func(args)
    except (SamformerError, FloatingPointError) as exc:
        print(f"samformer: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("samformer: interrupted", file=sys.stderr)
        return 130


def run() -> NoReturn:
    """The `samformer` console script: `main` on the process's arguments, then exit with its code.

    The process ends right after the command, so Python's cyclic garbage collector has little to do:
    importing torch creates ~10⁶ objects that live until exit. The collector is off while they are
    imported, and they are frozen (`gc.freeze`) so that later collections skip them; at the end
    everything is frozen again, so that interpreter shutdown does not walk the heap one last time only
    for the operating system to reclaim the memory (together ~1 s per run here).
    """
    gc.disable()
    _command_modules()
    gc.freeze()
    gc.enable()
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
