"""Shared pieces of the hostile-input suite (tests/test_hostile*.py): tiny data, a fitted model, snapshots, verdicts.

Every case runs in a directory that also holds files the user already had (a CSV, a fitted model, a
finished training run, notes). It is snapshotted (every path: kind, bytes, mode, modification time)
before and after. A refusal must be one line on stderr naming the problem, exit code 2 (130 for an
interrupt), nothing on stdout, and an unchanged directory. A documented success must exit 0 and
leave every file the user had unchanged. Progress bars and `samformer: warning:`/`samformer: note:`
lines printed before the outcome are information, not part of the refusal.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from samformer.cli.main import main

from .conftest import make_frame

ROWS = 240
TINY = ["--seq-len", "24", "--epochs", "1", "--batch-size", "64", "--quiet"]
ERROR_LINE = re.compile(r"samformer( [\w-]+)*: error: ")
PROGRESS_BAR = re.compile(r"\d+/\d+ \[")  # tqdm's "0/1 [00:00<?, ?run/s]": progress, not a message
NOTICE = re.compile(r"^samformer: (warning|note): ")  # informational lines printed before the outcome


@dataclass(frozen=True)
class Refused:
    """Exit `code`, one line on stderr matching `pattern`, nothing written but the files named in `kept`
    (e.g. the checkpoint of a run whose final write failed, kept for `--resume`)."""

    pattern: str
    code: int = 2
    kept: tuple[str, ...] = ()


@dataclass(frozen=True)
class Succeeds:
    """Exit 0; `check(root)` holds afterwards; the files the user had stay as they were, except samformer's own
    leftovers named in `cleaned` (directories may change: a run directory is replaced as a unit)."""

    check: Callable[[Path], bool] = lambda root: True
    cleaned: tuple[str, ...] = ()


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under `root` with its kind, bytes, permission bits and modification time.

    A directory's modification time is left out: creating and removing a temporary file in it (every
    atomic write does) changes it, and it holds no data of the user's.
    """
    entries = {}
    for p in sorted(root.rglob("*")):
        stat = p.lstat()
        if p.is_dir() and not p.is_symlink():
            entries[str(p.relative_to(root))] = (True, None, stat.st_mode, None)
            continue
        content = p.read_bytes() if p.is_file() and stat.st_mode & 0o444 else None
        entries[str(p.relative_to(root))] = (False, content, stat.st_mode, stat.st_mtime_ns)
    return entries


def prepare_user_files(root: Path, source: Path) -> None:
    """Copy the prepared CSVs, model and run from `source` into `root`, plus a note of the user's."""
    for entry in source.iterdir():
        if entry.is_dir():
            shutil.copytree(entry, root / entry.name)
        else:
            shutil.copy2(entry, root / entry.name)
    (root / "notes.txt").write_text("the user's own file")


def make_sources(root: Path) -> Path:
    """The user's files every case starts from: data.csv, recent.csv, model/ (fitted), run/ (trained)."""
    frame = make_frame(ROWS, 2)
    frame.to_csv(root / "data.csv")
    frame.iloc[-40:].to_csv(root / "recent.csv")
    # --no-fallback: a network every command can use (export-onnx refuses statistical stand-ins by design)
    assert main(["fit", "--csv", str(root / "data.csv"), "--horizon", "6", "--out", str(root / "model"), "--no-fallback", *TINY]) == 0
    assert main(["train", "--dataset", str(root / "data.csv"), "--horizon", "6", "--out", str(root / "run"), *TINY]) == 0
    return root


def check_verdict(expect: Refused | Succeeds, code: int, out: str, err: str, root: Path, before: dict[str, tuple]) -> None:
    """Assert the case's verdict (see the module docstring)."""
    after = snapshot(root)
    if isinstance(expect, Refused):
        assert code == expect.code, (code, err)
        assert out == "", out
        lines = [line for line in re.split(r"[\r\n]", err) if line.strip()]
        err = "\n".join(line for line in lines if not PROGRESS_BAR.search(line) and not NOTICE.match(line)) + "\n"
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        if expect.code == 2:
            assert ERROR_LINE.match(err), err
        assert re.search(expect.pattern, err), f"{expect.pattern!r} not in {err!r}"
        after = {k: v for k, v in after.items() if k not in expect.kept}
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        assert after == before, changed
    else:
        assert code == 0, err
        files = {k: v for k, v in before.items() if k not in expect.cleaned}
        assert {k: v for k, v in after.items() if k in files} == files
        assert not any(k in after for k in expect.cleaned)
        assert expect.check(root)
