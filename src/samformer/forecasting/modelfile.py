"""The on-disk model format: `model.safetensors` + `config.json` (never pickle), verified before use.

`load_model` checks, in this order and before any network is built or tensor allocated: the JSON's
size and nesting depth, the format version, the config's and the weights' SHA-256, the dimension
limits, and every tensor's name and shape against the safetensors header (read without the data).

An ensemble (`samformer.nn.stacked.StackedSAMformer`, k models of one configuration) is saved as one model:
each named weight of the k models as one (k, *shape) tensor, and `"ensemble": k` in the config (absent
for a single model, whose files are unchanged). `load_network` reads both; `load_model` a single model.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from samformer.errors import DataError, ModelFileError
from samformer.files import atomic_destination, file_sha256, read_json, require_directory, require_regular_file, write_json
from samformer.nn.model import SAMformer, SAMformerConfig
from samformer.nn.stacked import StackedSAMformer
from samformer.training.checkpoint import safetensors_bytes
from samformer.version import __version__

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
MODEL_FILES = (WEIGHTS_FILE, CONFIG_FILE)  # everything a saved model directory holds
FORMAT_VERSION = 1
MAX_DIMENSION = 2**20  # largest n_channels, seq_len, horizon, d_model or value_dim a saved model may declare
_DIMENSIONS = ("n_channels", "seq_len", "horizon", "d_model", "value_dim")
MAX_ENSEMBLE = 4096  # most models a saved ensemble may declare


def config_sha256(config: dict[str, Any]) -> str:
    """Hex SHA-256 of a config's canonical JSON, leaving out its own `config_sha256` entry."""
    body = {k: v for k, v in config.items() if k != "config_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def check_model_destination(directory: str | os.PathLike, overwrite: bool) -> None:
    """Raise FileExistsError unless `directory` may receive a saved model as a unit.

    It may if it is absent or empty, or, with `overwrite`, if it holds nothing but a model's files
    (other files are never deleted to make room).
    """
    directory = Path(directory)
    if not directory.exists():
        return
    if not directory.is_dir():
        raise FileExistsError(f"{directory} exists and is not a directory; choose another path")
    present = sorted(p.name for p in directory.iterdir())
    if present and not overwrite:
        raise FileExistsError(f"{directory} already exists and is not empty; choose another path or pass overwrite=True (--overwrite)")
    others = [name for name in present if name not in MODEL_FILES]
    if others:
        raise FileExistsError(
            f"{directory} holds files other than a saved model ({', '.join(others[:3])}); overwrite replaces only a model "
            "directory: move them or choose another path"
        )


def save_model(
    directory: str | os.PathLike, model: SAMformer | StackedSAMformer, extra: dict[str, Any] | None = None, overwrite: bool = False
) -> Path:
    """Save `model` (one SAMformer, or a stack saved as one ensemble) to `directory` as `model.safetensors` + `config.json`
    (plus `extra` metadata).

    The config records the SHA-256 of the weights file and of itself, so that `load_model` detects a
    file changed after saving (corruption or editing; a checksum is not a signature). Refuses to replace
    an existing model unless `overwrite` is set. To replace a whole directory as a unit, write into
    `samformer.files.atomic_directory`.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / WEIGHTS_FILE
    if weights.exists() and not overwrite:
        raise FileExistsError(f"{weights} already exists; choose another directory or pass overwrite=True (--overwrite)")
    state = _weights(model)
    blob = safetensors_bytes(state, {"format": "samformer", "format_version": str(FORMAT_VERSION)})
    with atomic_destination(weights) as tmp:
        tmp.write_bytes(blob)
    config = {
        "format_version": FORMAT_VERSION,
        "samformer_version": __version__,
        "model": asdict(model.config),
        **({"ensemble": len(model)} if isinstance(model, StackedSAMformer) else {}),
        "tensors": {k: list(v.shape) for k, v in state.items()},
        **(extra or {}),
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
    }
    config["config_sha256"] = config_sha256(config)
    write_json(directory / CONFIG_FILE, config)
    return directory


def load_model(directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[SAMformer, dict[str, Any]]:
    """Load a model saved by `save_model`; returns it (in eval mode) and its config dict.

    Everything is verified (see the module docstring) before the model is built on `map_location`.
    Refuses an ensemble (see `load_network`).
    """
    model, config = load_network(directory, map_location)
    if isinstance(model, StackedSAMformer):
        raise ModelFileError(f"{directory} holds an ensemble of {len(model)} models; load it with Forecaster.load or load_network")
    return model, config


def load_network(
    directory: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[SAMformer | StackedSAMformer, dict[str, Any]]:
    """Load a single model or an ensemble saved by `save_model`, verified as `load_model` does; in eval mode."""
    directory = Path(directory)
    weights = directory / WEIGHTS_FILE
    config = read_config(directory)
    model_config = _model_config(config, directory / CONFIG_FILE)
    k = _ensemble_size(config, directory / CONFIG_FILE)
    _check_shapes(weights, model_config, k)
    try:
        state = load_file(str(weights), device=str(map_location))
    except (SafetensorError, OSError) as exc:
        raise ModelFileError(f"{weights} cannot be read as safetensors ({exc}); the file is truncated or corrupt") from exc
    if k is None:
        model = SAMformer.from_config(model_config)
        model.load_state_dict(state)
        return model.to(map_location).eval(), config
    members = []
    for j in range(k):
        member = SAMformer.from_config(model_config)
        member.load_state_dict({name: weight[j] for name, weight in state.items()})
        members.append(member)
    return StackedSAMformer(members).to(map_location).eval(), config


def _weights(model: SAMformer | StackedSAMformer) -> dict[str, torch.Tensor]:
    """The tensors to save: a model's state dict, or each named weight of a stack's k models as (k, *shape)."""
    state = model.params() if isinstance(model, StackedSAMformer) else model.state_dict()
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def _ensemble_size(config: dict[str, Any], config_path: Path) -> int | None:
    """The number of models of a saved ensemble, None for a single model."""
    k = config.get("ensemble")
    if k is None:
        return None
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_ENSEMBLE:
        raise ModelFileError(f"{config_path} declares ensemble={k!r}, not a model count in 1..{MAX_ENSEMBLE}; re-save the model")
    return k


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    """The verified `config.json` of a model directory: bounded JSON, known format, both checksums matching."""
    directory = require_directory(directory, "saved model directory", ModelFileError)
    weights, config_path = directory / WEIGHTS_FILE, directory / CONFIG_FILE
    for path in (weights, config_path):
        require_regular_file(path, f"model's {path.name} (re-save the model)", ModelFileError)
        if not path.is_file():
            raise ModelFileError(f"{path} is missing: {directory} is not a saved samformer model directory")
    try:
        config = read_json(config_path)
    except DataError as exc:  # too large or too deeply nested
        raise ModelFileError(str(exc)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{config_path} is not valid JSON ({exc}); re-save the model") from None
    # The version first: another version's config may hold fields this one cannot read.
    if not isinstance(config, dict):
        raise ModelFileError(f"{config_path} is not a samformer config (a JSON object is expected); re-save the model")
    if config.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{directory} uses model format {config.get('format_version')!r}, this samformer reads format {FORMAT_VERSION}; "
            f"load it with the samformer release that saved it ({config.get('samformer_version', '?')}) and re-save it, or retrain"
        )
    if "config_sha256" in config and config["config_sha256"] != config_sha256(config):
        raise ModelFileError(f"{config_path} was changed after saving (its checksum does not match); re-save the model")
    if "weights_sha256" in config and config["weights_sha256"] != file_sha256(weights):
        raise ModelFileError(f"{weights} was changed after saving (its SHA-256 differs from the one in {CONFIG_FILE}); re-save the model")
    return config


def _model_config(config: dict[str, Any], config_path: Path) -> SAMformerConfig:
    """The `model` section as a SAMformerConfig, its dimensions within `MAX_DIMENSION`."""
    section = config.get("model")
    if not isinstance(section, dict):
        raise ModelFileError(f"{config_path} has no model section; re-save the model")
    too_large = [f"{k}={section[k]!r}" for k in _DIMENSIONS if isinstance(section.get(k), int) and section[k] > MAX_DIMENSION]
    if too_large:
        raise ModelFileError(
            f"{config_path} declares {', '.join(too_large)}; a saved model's dimensions must be at most {MAX_DIMENSION}; re-save the model"
        )
    try:
        return SAMformerConfig(**section)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{config_path} is not a valid samformer config ({exc}); re-save the model") from None


def _check_shapes(weights: Path, model_config: SAMformerConfig, ensemble: int | None = None) -> None:
    """Refuse weights whose tensor names or shapes (from the header alone) differ from those `model_config` builds
    (with a leading axis of `ensemble` models, when given)."""
    with torch.device("meta"):  # shapes without memory
        expected = {k: tuple(v.shape) for k, v in SAMformer.from_config(model_config).state_dict().items()}
    if ensemble is not None:
        expected = {k: (ensemble, *shape) for k, shape in expected.items()}
    try:
        with safe_open(str(weights), framework="pt") as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except (SafetensorError, OSError) as exc:
        raise ModelFileError(f"{weights} cannot be read as safetensors ({exc}); the file is truncated or corrupt") from None
    if expected != found:
        diff = sorted(set(expected.items()) ^ set(found.items()))
        raise ModelFileError(f"{weights} does not match its config (differing tensors: {diff[:4]}); the directory was altered")
