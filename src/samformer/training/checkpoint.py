"""Training checkpoints: everything `fit` needs to continue an interrupted run bit for bit.

One file, `checkpoint.safetensors`, written atomically at the end of every epoch: the tensors (model
weights, best weights so far, the optimizer's state — Adam's moments and step counts, also under SAM —
and the RNG states) are safetensors tensors; everything else (epoch, early-stopping counters, history,
optimizer hyper-parameters, Python/NumPy RNG states, the run's fingerprint and a SHA-256 of the tensor
bytes) is JSON in the safetensors header. Reading it never executes code: safetensors parses a header
and raw buffers, and nothing is unpickled.

A checkpoint is only resumed by the run that wrote it: its fingerprint (model config, training config,
a hash of the data) must match, so a resumed run ends exactly where an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from samformer.errors import CheckpointError, quoted
from samformer.files import atomic_destination, require_regular_file

CHECKPOINT_FILE = "checkpoint.safetensors"
FORMAT = "samformer-checkpoint"
FORMAT_VERSION = 1
# Files of a run directory, whose leftover temporaries `remove_partial_files` may delete.
PARTIAL_FILE_TARGETS = (CHECKPOINT_FILE, "model.safetensors", "config.json", "result.json")


def safetensors_bytes(state: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """`state` serialised as safetensors with its header's metadata in sorted order, so equal inputs give equal bytes."""
    blob = save(state, metadata=metadata)  # the metadata's order varies from process to process
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    canonical = json.dumps(header, separators=(",", ":")).encode().ljust(n)  # same keys and values: same length
    if len(canonical) != n:
        raise RuntimeError("safetensors header changed length when its metadata was sorted")
    return blob[:8] + canonical + blob[8 + n :]


@dataclass
class LoopState:
    """Where the epoch loop of `fit` stands after a completed epoch."""

    epoch: int  # epochs completed
    best_val: float  # best validation MSE so far (inf before any)
    best_epoch: int  # 1-based epoch of `best_val`, 0 before any
    stale: int  # epochs since `best_val` improved
    finished: bool  # early stopping fired or the last epoch ran: only restoring the best weights is left
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0  # training time spent so far, across processes
    best_state: dict[str, torch.Tensor] | None = None  # weights of `best_epoch`


def run_fingerprint(model: torch.nn.Module, cfg: Any, splits: tuple[Any, ...]) -> dict[str, Any]:
    """What identifies a run: model and training configs (minus the progress bar) and a hash of each split."""
    train = {k: v for k, v in asdict(cfg).items() if k != "progress"}
    data = []
    for windows in splits:
        series = getattr(windows, "series", None)
        digest = hashlib.sha256(series.detach().cpu().contiguous().numpy().tobytes()).hexdigest() if series is not None else None
        data.append({"windows": len(windows), "sha256": digest})
    model_cfg = getattr(model, "config", None)
    return {"model": asdict(model_cfg) if model_cfg is not None else None, "train": train, "data": data}


def _tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    loop: LoopState,
    fingerprint: dict[str, Any],
) -> None:
    """Write the full training state to `path` atomically (a kill leaves the previous checkpoint intact)."""
    tensors: dict[str, torch.Tensor] = {}
    for name, value in model.state_dict().items():
        tensors[f"model.{name}"] = value
    for name, value in (loop.best_state or {}).items():
        tensors[f"best.{name}"] = value
    opt = optimizer.state_dict()
    opt_scalars: dict[str, dict[str, Any]] = {}
    for index, slots in opt["state"].items():
        for slot, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{slot}"] = value
            else:
                opt_scalars.setdefault(str(index), {})[slot] = value
    tensors["rng.generator"] = generator.get_state()
    state = {"loop": loop_json(loop), "optimizer": {"param_groups": opt["param_groups"], "scalars": opt_scalars}}
    write_state(path, tensors, state, fingerprint)


def loop_json(loop: LoopState) -> dict[str, Any]:
    """`loop` as JSON, but its best weights (stored as tensors): whether it has them instead."""
    return {k: v for k, v in asdict(loop).items() if k != "best_state"} | {"has_best": loop.best_state is not None}


def loop_from_json(saved: dict[str, Any], best: dict[str, torch.Tensor] | None) -> LoopState:
    """The `LoopState` of `loop_json`'s output, with the best weights `best` if it had them."""
    loop = dict(saved)
    has_best = loop.pop("has_best")
    return LoopState(**loop, best_state=best if has_best else None)


def write_state(path: str | os.PathLike, tensors: dict[str, torch.Tensor], state: dict[str, Any], fingerprint: dict[str, Any]) -> None:
    """Write `tensors` and the JSON `state` atomically as a checkpoint of the run `fingerprint`, with the global RNG states."""
    path = Path(path)
    tensors = dict(tensors)
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = cuda_state
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np_keys.astype(np.int64))
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    py_version, py_state, py_gauss = random.getstate()
    rng = {"numpy": [np_kind, int(np_pos), int(np_has_gauss), float(np_gauss)], "python": [py_version, list(py_state), py_gauss]}
    state = {"fingerprint": fingerprint, **state, "rng": rng, "sha256": _tensor_digest(tensors)}
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "state": json.dumps(state)}
    blob = safetensors_bytes(tensors, metadata)  # serialised in memory: the only file written is our own temporary
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_destination(path) as tmp:
            tmp.write_bytes(blob)
    except OSError as exc:
        raise CheckpointError(
            f"cannot write the checkpoint {quoted(path)} ({exc.strerror or exc}); choose a writable --out with free space"
        ) from None


def remove_partial_files(directory: str | os.PathLike) -> list[Path]:
    """Delete the temporary files a killed write left in `directory` (only those of samformer's own files).

    `files.atomic_destination` writes `.NAME.<random>.tmp` beside NAME; SIGKILL skips its clean-up.
    """
    removed = []
    for name in PARTIAL_FILE_TARGETS:
        for tmp in Path(directory).glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and JSON state of a checkpoint, after checking its format and checksum."""
    advice = f"delete {path} (or pass --overwrite) to start the run over"
    path = require_regular_file(path, f"checkpoint to resume from, or {advice}", CheckpointError)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable samformer checkpoint ({exc}); it is truncated or corrupt: {advice}") from None
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a safetensors file but not a samformer checkpoint; {advice}")
    if metadata.get("format_version") != str(FORMAT_VERSION):
        raise CheckpointError(
            f"{path} uses checkpoint format {metadata.get('format_version')!r}, this samformer reads {FORMAT_VERSION}; {advice}"
        )
    try:
        state = json.loads(metadata["state"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} has a damaged header ({exc}); {advice}") from None
    if state.get("sha256") != _tensor_digest(tensors):
        raise CheckpointError(f"{path} does not match its own checksum: the file was altered or damaged; {advice}")
    return tensors, state


def _describe_mismatch(saved: dict[str, Any], current: dict[str, Any]) -> str:
    """The first few settings that differ between two fingerprints, as 'name: saved -> current'."""
    diffs = []
    for section in ("model", "train"):
        a, b = saved.get(section) or {}, current.get(section) or {}
        diffs += [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    if saved.get("data") != current.get("data"):
        diffs.append("the data differ")
    return ", ".join(diffs[:4])


def read_state(path: str | os.PathLike, fingerprint: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and JSON state of the checkpoint at `path`, once it is known to be this run's (`fingerprint`);
    the global RNG states are restored from it."""
    tensors, state = read_checkpoint(path)
    # JSON turns tuples into lists; compare the fingerprint in its JSON form.
    current = json.loads(json.dumps(fingerprint))
    if state["fingerprint"] != current:
        raise CheckpointError(
            f"{path} was written by a run with other settings ({_describe_mismatch(state['fingerprint'], current)}); "
            f"resume with the same options and data, or pass --overwrite to start over"
        )
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[f"rng.cuda.{i}"] for i in range(sum(k.startswith("rng.cuda.") for k in tensors))]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states)
    np_kind, np_pos, np_has_gauss, np_gauss = state["rng"]["numpy"]
    np.random.set_state((np_kind, tensors["rng.numpy"].numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
    py_version, py_state, py_gauss = state["rng"]["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))
    return tensors, state


def load_checkpoint(
    path: str | os.PathLike,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    fingerprint: dict[str, Any],
) -> LoopState:
    """Restore model, optimizer and RNG states from `path` in place; returns the loop's state.

    Refuses (`CheckpointError`) a file that is not an intact samformer checkpoint or that was written by
    a run with other settings or data.
    """
    tensors, state = read_state(path, fingerprint)
    device = next(model.parameters()).device
    model.load_state_dict({k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")})
    opt_state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, slot = name.split(".", 2)
            opt_state.setdefault(int(index), {})[slot] = value
    for index, slots in state["optimizer"]["scalars"].items():
        opt_state.setdefault(int(index), {}).update(slots)
    fresh_groups = optimizer.state_dict()["param_groups"]
    groups = [
        {k: tuple(v) if isinstance(fresh.get(k), tuple) else v for k, v in saved.items()}
        for saved, fresh in zip(state["optimizer"]["param_groups"], fresh_groups, strict=True)
    ]
    optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    generator.set_state(tensors["rng.generator"])
    best = {k.removeprefix("best."): v.to(device) for k, v in tensors.items() if k.startswith("best.")}
    return loop_from_json(state["loop"], best)
