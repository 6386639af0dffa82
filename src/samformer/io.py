"""Atomic file writes and the on-disk model format (safetensors weights + JSON, never pickle).

Every file is written to a temporary name in its destination directory and renamed over the target
only once complete, so an interruption (even SIGKILL) never leaves a half-written file where a good
one was.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from samformer.errors import ModelFileError
from samformer.model import SAMformer, SAMformerConfig

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT_VERSION = 1


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


def write_json(path: str | os.PathLike, obj: Any, *, make_dirs: bool = False) -> None:
    """Write `obj` as indented JSON, atomically; with `make_dirs`, missing parent directories are created first."""
    if make_dirs:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_destination(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file."""
    with open(path) as f:
        return json.load(f)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def config_sha256(config: dict[str, Any]) -> str:
    """Hex SHA-256 of a config's canonical JSON, leaving out its own `config_sha256` entry."""
    body = {k: v for k, v in config.items() if k != "config_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def save_model(directory: str | os.PathLike, model: SAMformer, extra: dict[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Save `model` to `directory` as `model.safetensors` + `config.json` (plus `extra` metadata).

    The config records the SHA-256 of the weights file and of itself, so that `load_model` detects a
    file changed after saving (corruption or editing; a checksum is not a signature). Refuses to replace
    an existing model unless `overwrite` is set.
    """
    from samformer import __version__

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / WEIGHTS_FILE
    if weights.exists() and not overwrite:
        raise FileExistsError(f"{weights} already exists; choose another directory or pass overwrite=True (--overwrite)")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_destination(weights) as tmp:
        save_file(state, str(tmp), metadata={"format": "samformer", "format_version": str(FORMAT_VERSION)})
        weights_sha256 = file_sha256(tmp)
    config = {
        "format_version": FORMAT_VERSION,
        "samformer_version": __version__,
        "model": model.config.__dict__,
        "tensors": {k: list(v.shape) for k, v in state.items()},
        **(extra or {}),
        "weights_sha256": weights_sha256,
    }
    config["config_sha256"] = config_sha256(config)
    write_json(directory / CONFIG_FILE, config)
    return directory


def load_model(directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[SAMformer, dict[str, Any]]:
    """Load a model saved by `save_model`; returns it (in eval mode) and its config dict.

    Checks the format version, the recorded SHA-256 of the weights and of the config (when present),
    and every tensor's name and shape before building the model.
    """
    directory = Path(directory)
    weights, config_path = directory / WEIGHTS_FILE, directory / CONFIG_FILE
    for path in (weights, config_path):
        if not path.is_file():
            raise ModelFileError(f"{path} is missing: {directory} is not a saved samformer model directory")
    try:
        config = read_json(config_path)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{config_path} is not valid JSON ({exc}); re-save the model") from exc
    # The version first: another version's config may hold fields this one cannot build a model from.
    if not isinstance(config, dict):
        raise ModelFileError(f"{config_path} is not a samformer config (a JSON object is expected); re-save the model")
    if config.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{directory} uses model format {config.get('format_version')!r}, this samformer reads format {FORMAT_VERSION}; "
            f"load it with the samformer release that saved it ({config.get('samformer_version', '?')}) and re-save it, or retrain"
        )
    try:
        model = SAMformer.from_config(SAMformerConfig(**config["model"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{config_path} is not a valid samformer config ({exc}); re-save the model") from exc
    if "config_sha256" in config and config["config_sha256"] != config_sha256(config):
        raise ModelFileError(f"{config_path} was changed after saving (its checksum does not match); re-save the model")
    if "weights_sha256" in config and config["weights_sha256"] != file_sha256(weights):
        raise ModelFileError(f"{weights} was changed after saving (its SHA-256 differs from the one in {CONFIG_FILE}); re-save the model")
    try:
        state = load_file(str(weights), device=str(map_location))
    except (SafetensorError, OSError) as exc:
        raise ModelFileError(f"{weights} cannot be read as safetensors ({exc}); the file is truncated or corrupt") from exc
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    if expected != found:
        diff = sorted(set(expected.items()) ^ set(found.items()))
        raise ModelFileError(f"{weights} does not match its config (differing tensors: {diff[:4]}); the directory was altered")
    model.load_state_dict(state)
    return model.to(map_location).eval(), config
