"""Atomic file and directory writes, bounded JSON reads, checksums; no torch, no model.

Every file is written to a temporary name in its destination directory and renamed over the target
only once complete, so an interruption (even SIGKILL) never leaves a half-written file where a good
one was. A directory of several files (a saved model) is written whole into a temporary sibling and
then renamed into place, so a failure leaves the previous directory as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from samformer.errors import DataError

MAX_JSON_DEPTH = 64  # deeper nesting is refused before parsing (json.load would recurse once per level)
MAX_JSON_BYTES = 64 * 2**20  # a larger JSON file is refused before it is read
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')  # strings (skipped whole) and brackets


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_destination(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target`, on error it vanishes."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes it 0600; give it a new file's usual mode
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_directory(target: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary directory beside `target`; on success it becomes `target`, on error it vanishes.

    An existing `target` that is not an empty directory is refused (FileExistsError) unless `overwrite`;
    with it, the old directory is replaced only after the new one is complete, then deleted.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a directory; choose another path")
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise FileExistsError(f"{target} already exists and is not empty; choose another path or pass overwrite=True (--overwrite)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_current_umask())  # mkdtemp makes it 0700
        _swap_in(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(new: Path, target: Path) -> None:
    """Rename the directory `new` to `target`; an existing `target` is moved aside first and deleted last."""
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a directory; choose another path")
    if not target.exists() or not any(target.iterdir()):
        os.replace(new, target)  # onto nothing or an empty directory: one rename
        return
    old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
    os.replace(target, old)  # a directory may be renamed onto an empty one
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old, target)  # put the previous one back
        raise
    shutil.rmtree(old, ignore_errors=True)


def write_json(path: str | os.PathLike, obj: Any, *, make_dirs: bool = False) -> None:
    """Write `obj` as indented JSON, atomically; with `make_dirs`, missing parent directories are created first."""
    if make_dirs:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_destination(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def json_depth(text: bytes) -> int:
    """The deepest nesting of arrays and objects in JSON `text` (brackets inside strings are not counted)."""
    depth = deepest = 0
    for token in _JSON_TOKENS.finditer(text):
        bracket = token.group()
        if bracket in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif bracket in (b"]", b"}"):
            depth -= 1
    return deepest


def read_json(path: str | os.PathLike, max_depth: int = MAX_JSON_DEPTH, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Read a JSON file; one larger than `max_bytes` or nested deeper than `max_depth` is a DataError.

    Malformed JSON raises json.JSONDecodeError (or UnicodeDecodeError) for the caller to word.
    """
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise DataError(f"{str(path)!r} is larger than {max_bytes} bytes, too large for a samformer JSON file; check the path")
    if json_depth(data) > max_depth:
        raise DataError(f"{str(path)!r} nests JSON more than {max_depth} levels deep; it was not written by samformer")
    return json.loads(data.decode("utf-8"))


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
