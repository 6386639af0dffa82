"""The `samformer` command line: argument parsing and translation to the library, nothing else.

Errors a user can fix print one line on stderr (`samformer: error: ...`) and exit with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

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

    for module in COMMANDS:
        importlib.import_module(f"samformer.commands.{module}").register(sub)
    return parser


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


if __name__ == "__main__":
    sys.exit(main())
