"""Atomic file and directory writes, bounded JSON reads, checksums; no torch, no model.

Every file is written to a temporary name in its destination directory and renamed over the target
only once complete, so an interruption (even SIGKILL) never leaves a half-written file where a good
one was. A directory of several files (a saved model) is written whole into a temporary sibling and
then renamed into place, so a failure leaves the previous directory as it was.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any

from samformer.errors import DataError, SamformerError, quoted

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


@contextmanager
def scratch_directory(target: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory beside `target` (`.NAME.*.tmp`, which `remove_stale_staging` clears after
    a kill), deleted with its contents when the block ends: for the work files of a run that will replace `target`,
    so that nothing is written inside `target` before the replacement is complete."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        yield tmp
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


def check_writable_directory(target: str | os.PathLike, option: str = "--out") -> None:
    """Refuse (SamformerError) a `target` that cannot become or be a writable directory, before any work is done."""
    target = Path(target)
    existing = next(p for p in (target, *target.parents) if p.exists())  # "/" or "." at the latest
    effective = os.access in os.supports_effective_ids  # the ids this process acts with (a set-uid run, tests as 'nobody')
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK, effective_ids=effective):
        raise SamformerError(
            f"cannot write to {quoted(target)} ({quoted(existing)} is not a writable directory); choose a writable {option}"
        )


def remove_stale_staging(target: str | os.PathLike) -> list[Path]:
    """Delete the temporary siblings `atomic_directory(target)` left when killed before its rename (`.NAME.*.tmp`).

    Call it only while holding `exclusive_lock(target)`: then no live writer owns them. The `.NAME.*.old`
    directory of a swap killed half-way is kept: it may hold the only copy of the previous directory.
    """
    target = Path(target)
    stale = [p for p in target.parent.glob(f".{target.name}.*.tmp") if p.is_dir() and not p.is_symlink()]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


@contextmanager
def removed_if_left_empty(directory: str | os.PathLike) -> Iterator[None]:
    """If `directory` does not exist yet and the block fails, delete the empty directories it left under it.

    A failed command then leaves no empty output tree behind; anything with a file in it (a checkpoint
    to resume from, finished run files) stays. A directory that existed before is never touched.
    """
    directory = Path(directory)
    created = not directory.exists()
    try:
        yield
    except BaseException:
        if created and directory.is_dir():
            for path in sorted((p for p in directory.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                with suppress(OSError):
                    path.rmdir()  # only succeeds when empty
            with suppress(OSError):
                directory.rmdir()
        raise


def lock_path(target: str | os.PathLike) -> Path:
    """The lock file of `target`: a hidden file beside it, outside what `atomic_directory` replaces."""
    target = Path(target)
    return target.parent / f".{target.name}.lock"


@contextmanager
def exclusive_lock(target: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive lock on `target` for the block, or refuse at once if another process holds it.

    The lock is `fcntl.flock` on `lock_path(target)`, created for the block and deleted at its end
    (while still held). A lock file deleted by its previous holder between our open and our lock is
    detected (its inode left the directory) and opened afresh, so two processes never both hold one.
    The lock ends with the process, also on SIGKILL.
    """
    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SamformerError(
                f"another samformer process is writing to {quoted(target)} (it holds {quoted(path)}); "
                "wait for it to finish or choose another --out"
            ) from None
        if _same_file(fd, path):
            break
        os.close(fd)  # we locked a file its holder had already deleted: try again
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def carry_over(source: str | os.PathLike, destination: str | os.PathLike, skip: Collection[str] = ()) -> None:
    """Give directory `destination` the entries of `source` not named in `skip`, unchanged (bytes, modes, times).

    Files become hard links (copies where the file system has none), so the originals stay where they
    are: for an `atomic_directory` that must keep files the user had in the directory it replaces.
    """
    source, destination = Path(source), Path(destination)
    if not source.is_dir():
        return
    for entry in source.iterdir():
        if entry.name in skip:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, destination / entry.name, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, destination / entry.name)


def _link_or_copy(source: str | os.PathLike, destination: str | os.PathLike) -> None:
    try:
        os.link(source, destination, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, destination, follow_symlinks=False)


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISREG, "a regular file"),
)


def file_kind(mode: int) -> str:
    """What an `os.stat` mode names, in words: 'a regular file', 'a directory', 'a FIFO (named pipe)', ..."""
    return next((kind for test, kind in _KINDS if test(mode)), "a special file")


def require_regular_file(path: str | os.PathLike, what: str = "file", error: type[SamformerError] = DataError) -> Path:
    """`path` as a Path if it is a regular file (after symbolic links) or does not exist; else `error`.

    Checked with `os.stat`, which never blocks: opening a FIFO for reading waits for a writer forever,
    and a device can stream without end. A missing path passes, so the caller's own missing-file
    message stays as it was.
    """
    return _require_kind(path, stat.S_ISREG, f"not a regular file; pass the path of the {what}", error)


def require_directory(path: str | os.PathLike, what: str = "directory", error: type[SamformerError] = DataError) -> Path:
    """`path` as a Path if it is a directory (after symbolic links) or does not exist; else `error`, naming its kind."""
    return _require_kind(path, stat.S_ISDIR, f"not a folder; pass the path of the {what}", error)


def _require_kind(path: str | os.PathLike, is_kind: Callable[[int], bool], refusal: str, error: type[SamformerError]) -> Path:
    """`path` as a Path if it is missing or `is_kind` of its `os.stat` mode holds; else `error`: its kind, then `refusal`."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return path
    except OSError as exc:
        raise error(f"cannot read {quoted(path)} ({exc.strerror}); check the path and its permissions") from None
    if not is_kind(mode):
        raise error(f"{quoted(path)} is {file_kind(mode)}, {refusal}")
    return path


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

    Malformed JSON raises json.JSONDecodeError (or UnicodeDecodeError) for the caller to word; a path that
    is not a regular file (a FIFO, a device, a directory) is a DataError before anything is opened.
    """
    with open(require_regular_file(path, "JSON file"), "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise DataError(f"{str(path)!r} is larger than {max_bytes} bytes, too large for a samformer JSON file; check the path")
    if json_depth(data) > max_depth:
        raise DataError(f"{str(path)!r} nests JSON more than {max_depth} levels deep; it was not written by samformer")
    return json.loads(data.decode("utf-8"))


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes; a path that is not a regular file is a DataError, never opened."""
    digest = hashlib.sha256()
    with open(require_regular_file(path), "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def run_output(target: str | os.PathLike, lock: bool = True) -> Iterator[Path]:
    """The output directory of one run, ready to be written as a unit: a symbolic link resolved to the directory it
    names (the link stays), checked writable before any work, held under `exclusive_lock` (unless `lock` is False:
    a process that will not write) with the temporaries of a killed run removed, and deleted again if the run
    fails having left it empty. Yields the resolved path."""
    target = Path(target)
    if target.is_symlink():
        target = target.resolve()
    check_writable_directory(target)
    with removed_if_left_empty(target), exclusive_lock(target) if lock else nullcontext():
        if lock:
            remove_stale_staging(target)  # no live writer owns them while we hold the lock
        yield target
