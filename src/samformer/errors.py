"""Exceptions raised for bad input; the CLI turns them into one-line messages and exit code 2."""


class SamformerError(ValueError):
    """Base class of the errors a user can fix: the message says what was wrong and what to do."""


class DataError(SamformerError):
    """A data file or frame that cannot be used as given (missing, malformed, too short, ...)."""


class ShapeError(SamformerError):
    """A tensor or array whose shape does not match what the model expects."""


class ModelFileError(SamformerError):
    """A saved model directory that is missing, incomplete, tampered with or incompatible."""


class CheckpointError(SamformerError):
    """A training checkpoint that cannot be resumed: damaged, foreign, or written by a run with other settings."""


class ConfigError(SamformerError):
    """A setting out of its accepted type or range (a training option, a variant name, ...)."""


def one_line(text: str) -> str:
    """`text` with its control characters (newline, carriage return, tab, escape, ...) escaped as `repr` writes them."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def quoted(path: object) -> str:
    """A path or name for a message: quoted and escaped as `repr` writes a string, so it cannot break the line."""
    return repr(str(path))


def shown(value: object, limit: int = 80) -> str:
    """`repr(value)` for a message: on one line (`one_line`) and cut to `limit` characters ('...' marks a cut)."""
    text = one_line(repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."
