"""The `samformer` command line: argument parsing and translation to the library, nothing else.

The error contract lives here, for every command: a failure a user can act on (bad input, a
`SamformerError`, an operating-system error such as permission denied, a read-only file system or a
full disk, a damaged safetensors file, JSON nested too deep, memory) prints one line on stderr
(`samformer: error: ...`, control characters escaped) and exits with code 2; Ctrl-C, also during
start-up, prints `samformer: interrupted` and exits with code 130. Anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from samformer.cli.allocator import keep_freed_memory
from samformer.cli.failures import describe_failure
from samformer.errors import one_line

# Subcommand modules under samformer/commands/, each with a `register(subparsers)` function.
COMMANDS = ["train", "benchmark", "forecast", "study", "sweep"]
INTERRUPTED = 130
USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump, control characters escaped), exit code 2."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        self.exit(USER_ERROR, one_line(f"{self.prog}: error: {message} (see '{self.prog} --help')") + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="samformer", description="SAMformer: train, benchmark and forecast.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    for module in _command_modules():
        module.register(sub)
    for command in sub.choices.values():
        _complete_options(command)
    return parser


def _command_modules() -> list[ModuleType]:
    return [importlib.import_module(f"samformer.cli.{name}") for name in COMMANDS]


def _complete_options(command: argparse.ArgumentParser, threads: bool = True) -> None:
    """Give a command the options every command has, checked the same way everywhere.

    `--seed` and `--device` get the range-checked types of `samformer.cli.options`; with `threads`,
    a command without its own `--threads` gets one, applied by `main` before the command runs.
    """
    from samformer.cli.options import count, device, seed

    groups = [action for action in command._actions if isinstance(action, argparse._SubParsersAction)]
    for group in groups:  # a group of commands (`study`): its own subcommands carry the options
        for subcommand in group.choices.values():
            _complete_options(subcommand, threads)
    if groups:
        return
    options = command._option_string_actions
    if "--seed" in options and options["--seed"].type is int:
        options["--seed"].type = seed
    if "--device" in options and options["--device"].type is None:
        options["--device"].type = device
    if threads and "--threads" not in options:
        command.add_argument("--threads", type=count, default=None, help="torch CPU threads (default: $OMP_NUM_THREADS, else the cores)")
        command.set_defaults(threads_by_cli=True)


def main(argv: Sequence[str] | None = None, adapt_to_load: bool = False) -> int:
    """Run one command; returns its exit code (0, 2 for an error a user can fix, 130 when interrupted).

    With `adapt_to_load` (the console script's choice), a busy machine lowers the default thread count
    (`samformer.threads.choose_threads`).
    """
    try:
        args = build_parser().parse_args(argv)
        keep_freed_memory()  # the CLI owns its process: let glibc keep freed memory for reuse (see samformer.cli.allocator)
        args.adapt_to_load = adapt_to_load  # for commands that choose their workers' threads themselves (benchmark)
        if getattr(args, "threads_by_cli", False):
            _set_threads(args.threads, adapt_to_load)
        return args.func(args)
    except SystemExit as exc:  # --help, or a usage error already printed on one line
        return exc.code if isinstance(exc.code, int) else USER_ERROR
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as exc:
        message = describe_failure(exc)
        if message is None:
            raise  # a bug: keep its traceback
        print(f"samformer: error: {message}", file=sys.stderr)
        return USER_ERROR


def _set_threads(requested: int | None, adapt_to_load: bool) -> None:
    import torch

    from samformer.threads import choose_threads

    threads, note = choose_threads(requested, adapt_to_load=adapt_to_load)
    if note:
        print(note, file=sys.stderr)
    if requested is not None or note:  # otherwise torch's own choice stands (it reads OMP_NUM_THREADS itself)
        torch.set_num_threads(threads)


def _interrupted() -> int:
    print("samformer: interrupted", file=sys.stderr)
    return INTERRUPTED


def run() -> NoReturn:
    """The `samformer` console script: `main` on the process's arguments, then exit with its code.

    The process ends right after the command, so Python's cyclic garbage collector has little to do:
    importing torch creates ~10⁶ objects that live until exit. The collector is off while they are
    imported, and they are frozen (`gc.freeze`) so that later collections skip them; at the end
    everything is frozen again, so that interpreter shutdown does not walk the heap one last time only
    for the operating system to reclaim the memory (together ~1 s per run here).
    """
    gc.disable()
    try:
        _command_modules()
    except KeyboardInterrupt:
        sys.exit(_interrupted())
    gc.freeze()
    gc.enable()
    code = main(adapt_to_load=True)
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
