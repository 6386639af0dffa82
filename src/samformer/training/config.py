"""What a training run is asked to do (`TrainConfig`, every field checked on construction) and what it produced
(`TrainResult`); seeding and device resolution, shared by every trainer and by the Forecaster."""

from __future__ import annotations

import math
import numbers
import random
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from samformer.errors import ConfigError, SamformerError

Precision = Literal["fp32", "bf16"]


@dataclass
class TrainConfig:
    """Optimisation settings. Defaults are the paper's protocol (see `default_train_config`)."""

    lr: float = 1e-3  # Adam's (peak) learning rate
    batch_size: int = 32
    epochs: int = 100  # upper bound; early stopping usually ends sooner
    patience: int = 5  # epochs without a better validation MSE before stopping
    sam: bool = True  # wrap Adam in SAM
    rho: float = 0.7  # SAM's neighbourhood radius
    adaptive: bool = False  # ASAM instead of SAM
    weight_decay: float = 0.0
    lr_schedule: Literal["cosine-restarts", "constant"] = "cosine-restarts"
    restart_period: int = 5  # epochs per cosine cycle (the paper's TF code: 5)
    min_lr: float = 1e-6  # floor of each cosine cycle
    seed: int = 0
    device: str = "auto"  # "auto" picks CUDA when available
    precision: Precision = "fp32"  # "bf16": bf16 autocast, fp32 master weights and loss
    eval_batch_size: int = 1024
    progress: bool = True  # tqdm bar on stderr
    compile: bool = False  # torch.compile the step (SAM over Adam on the direct pass: all of it, else the passes); eager if unavailable
    shuffle: bool = True  # False: every epoch serves the training windows in stored order (the TF toy pipeline's)

    def __post_init__(self) -> None:
        bad = train_config_problems(vars(self))
        if bad:
            raise ConfigError("; ".join(bad))


def train_config_problems(settings: Mapping[str, Any]) -> list[str]:
    """Each `TrainConfig` field in `settings` whose value is out of its type or range, as 'name=value out of range:
    must be ...'; fields absent from `settings` and names that are not fields are not judged (a stored run of an
    older version lacks some). For settings read back from a file before any code relies on their types."""
    return [
        f"{name}={settings[name]!r} out of range: must be {accepted}"
        for name, (ok, accepted) in _FIELD_RULES.items()
        if name in settings and not ok(settings[name])
    ]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


MAX_BATCH = 2**20  # the largest batch accepted: far beyond any memory here, small enough to refuse a typo early


def _is_device(value: Any) -> bool:
    """'auto', or a CPU or CUDA device (what training runs on); other torch device types are refused up front."""
    if value == "auto":
        return True
    try:
        return torch.device(value).type in ("cpu", "cuda")
    except (RuntimeError, TypeError):
        return False


_POSITIVE_INT = (lambda v: _is_int(v) and v >= 1, "positive (an integer >= 1)")
_BATCH = (lambda v: _is_int(v) and 1 <= v <= MAX_BATCH, f"positive (an integer >= 1, at most {MAX_BATCH})")
_NON_NEGATIVE = (lambda v: _is_number(v) and v >= 0, "non-negative (a finite number >= 0)")
_BOOL = (lambda v: isinstance(v, bool), "True or False")
# TrainConfig field -> (whether a value is accepted, what is accepted)
_FIELD_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "lr": (lambda v: _is_number(v) and v > 0, "positive (a finite number > 0)"),
    "batch_size": _BATCH,
    "epochs": _POSITIVE_INT,
    "patience": _POSITIVE_INT,
    "sam": _BOOL,
    "rho": _NON_NEGATIVE,
    "adaptive": _BOOL,
    "weight_decay": _NON_NEGATIVE,
    "lr_schedule": (lambda v: v in ("cosine-restarts", "constant"), "'cosine-restarts' or 'constant'"),
    "restart_period": _POSITIVE_INT,
    "min_lr": _NON_NEGATIVE,
    "seed": (lambda v: _is_int(v) and 0 <= v < 2**64, "an integer from 0 to 2**64 - 1 (what torch.manual_seed takes)"),
    "device": (_is_device, "a device name (auto, cpu, cuda or cuda:N)"),
    "precision": (lambda v: v in ("fp32", "bf16"), "'fp32' or 'bf16'"),
    "eval_batch_size": _BATCH,
    "progress": _BOOL,
    "compile": _BOOL,
    "shuffle": _BOOL,
}


@dataclass
class TrainResult:
    """What a training run produced (metrics on the standardised scale).

    `fit` fills everything but the test scores, which `score_test` adds (the experiment runner calls it).
    """

    val_mse: float
    best_epoch: int  # 1-based epoch whose weights were restored
    epochs_run: int
    train_seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    test_mse: float | None = None
    test_mae: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so that model initialisation and shuffling repeat."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' → CUDA if available, else CPU; anything else as given, if this machine has it."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise SamformerError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and (not torch.cuda.is_available() or (resolved.index or 0) >= torch.cuda.device_count()):
        raise SamformerError(f"device {device!r} is not available on this machine; use --device cpu or auto")
    return resolved
