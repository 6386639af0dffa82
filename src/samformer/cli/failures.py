"""What a command's failure says to the user: one line, no traceback, for every failure a user can act on.

`describe_failure` turns an exception into that line, or returns None for an exception that is a bug
(a `TypeError` deep in the library, ...), which the command line lets through with its traceback.
`samformer.cli.main` is the one place that calls it.
"""

from __future__ import annotations

import errno
import zlib

from safetensors import SafetensorError

from samformer.errors import SamformerError, one_line, quoted

# errno -> what to do about it
_OS_ADVICE = {
    errno.ENOSPC: "free some space or choose another --out",
    errno.EDQUOT: "free some space or choose another --out",
    errno.EROFS: "the file system is read-only: choose a writable --out",
    errno.EACCES: "check the permissions, or choose another path",
    errno.EPERM: "check the permissions, or choose another path",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file, not a directory: check the path",
    errno.EISDIR: "give the path of a file, not of a directory",
    errno.EEXIST: "choose another path or pass --overwrite",
    errno.ENAMETOOLONG: "use a shorter path",
    errno.ELOOP: "the path is a loop of symbolic links: check it",
}
_MEMORY_MARKERS = ("can't allocate memory", "out of memory")


def describe_failure(exc: BaseException) -> str | None:
    """The one-line message for `exc` (control characters escaped), or None if it is a bug to report."""
    message = _message(exc)
    return None if message is None else one_line(message)


def _message(exc: BaseException) -> str | None:
    if isinstance(exc, (SamformerError, FloatingPointError)):
        return str(exc)
    if isinstance(exc, OSError):
        return _os_message(exc)
    if isinstance(exc, SafetensorError):
        return f"a safetensors file could not be read or written ({exc}); check the file, the free space and the permissions"
    if isinstance(exc, (EOFError, zlib.error)):
        return f"a compressed input is truncated or corrupt ({exc}); check the .gz file, or give it uncompressed"
    if isinstance(exc, RecursionError):
        return "the input is nested too deeply to be read (a JSON file not written by samformer?); check the files given"
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and any(m in str(exc) for m in _MEMORY_MARKERS)):
        return "out of memory; use a smaller --batch-size, --seq-len or --value-dim, or fewer --workers"
    return None


def _os_message(exc: OSError) -> str:
    """'cannot use 'PATH' (reason); advice' from an OSError, naming its file(s) when it has them."""
    names = " -> ".join(quoted(name) for name in (exc.filename, exc.filename2) if name is not None)
    reason = exc.strerror or str(exc) or type(exc).__name__
    advice = _OS_ADVICE.get(exc.errno or 0, "check the path, the free space and the permissions")
    return f"cannot use {names or 'a file'} ({reason}); {advice}"
