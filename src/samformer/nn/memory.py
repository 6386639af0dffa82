"""How much memory a SAMformer and one training step need, from its configuration alone, checked before allocating.

A typo such as `value_dim=10**12` would otherwise reach torch's allocator, which tries to reserve the
192 TB and fails with a message about `alloc_cpu.cpp`. The estimate counts float32 values:

- the weights (and σReparam's vectors), exactly as the network builds them;
- for training: their gradient, Adam's two moments, SAM's copy of the weights, the best weights kept
  for early stopping;
- per training batch: the D×D attention (scores, softmax, its gradient) and the activations of every
  (window, channel) row (inputs, targets, standardised inputs, queries, keys, values, the attention
  output and forecast), each held twice (the forward value and its gradient).

It is an order of magnitude, not a measurement: it refuses what cannot fit, never what merely might not.
"""

from __future__ import annotations

import os
from typing import Protocol

import torch

from samformer.errors import ConfigError


class SAMformerConfig(Protocol):
    """The fields of `samformer.nn.model.SAMformerConfig` the estimate reads (a structural type: no import of the model)."""

    n_channels: int
    seq_len: int
    horizon: int
    d_model: int
    value_dim: int | None
    attention: bool
    revin: bool
    sigma_reparam: bool
    sigma_reparam_scope: str


FLOAT_BYTES = 4  # float32 master weights and activations
GRADIENT_AND_ADAM = 3  # a gradient and Adam's two moments per weight
BEST_WEIGHTS = 1  # the snapshot early stopping restores
ATTENTION_COPIES = 3  # the D×D scores, their softmax and its gradient, per window
BACKWARD_COPIES = 2  # every activation is held with its gradient


class ModelMemoryError(ConfigError):
    """A model, or one training step of it, that needs more memory than this machine has available."""


def _linear_floats(n_in: int, n_out: int, reparam: bool) -> int:
    """Weight and bias of a linear map; σReparam adds its scale γ and its singular vectors u, v."""
    return n_in * n_out + n_out + (1 + n_out + n_in if reparam else 0)


def weight_floats(config: SAMformerConfig) -> int:
    """The number of float values (parameters and buffers) a `SAMformerConfig` builds, without building it."""
    L, H, D, d = config.seq_len, config.horizon, config.n_channels, config.d_model
    reparam = config.sigma_reparam
    total = 2 * D if config.revin else 0  # RevIN's affine weight and bias
    if config.attention:
        total += 2 * _linear_floats(L, d, reparam)  # queries and keys: L -> d
        total += _linear_floats(L, config.value_dim or L, reparam)  # values: L -> L (or L -> value_dim)
        if config.value_dim:
            total += _linear_floats(config.value_dim, L, reparam)  # the output map back to L
    total += _linear_floats(L, H, reparam and config.sigma_reparam_scope == "all")  # the shared forecaster
    return total


def training_bytes(config: SAMformerConfig, batch_size: int, sam: bool = True) -> int:
    """An estimate of the memory one training step of a `SAMformerConfig` holds at `batch_size` windows."""
    L, H, D, d = config.seq_len, config.horizon, config.n_channels, config.d_model
    weights = weight_floats(config)
    copies = 1 + GRADIENT_AND_ADAM + BEST_WEIGHTS + (1 if sam else 0)  # SAM keeps w while at w + ε
    attention = ATTENTION_COPIES * D * D if config.attention else 0  # per window
    row = 3 * L + 2 * H + 2 * d + (config.value_dim or L) + L  # per (window, channel): see the module docstring
    per_window = attention + BACKWARD_COPIES * D * row
    return FLOAT_BYTES * (copies * weights + batch_size * per_window)


def available_bytes(device: torch.device | str = "cpu") -> int | None:
    """Memory `device` can still give: CUDA's free memory, else the system's available memory (None if unknown).

    On the CPU: psutil when installed, else /proc/meminfo's MemAvailable, else the free physical pages.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(
    config: SAMformerConfig,
    batch_size: int | None = None,
    sam: bool = True,
    device: torch.device | str = "cpu",
    available: int | None = None,
) -> None:
    """Refuse (`ModelMemoryError`) a network whose weights — or, given `batch_size`, one training step — would not fit.

    `available` (bytes) defaults to what `available_bytes(device)` finds; unknown means no check. The
    message gives the estimate, what the device has, and the options that shrink it.
    """
    available = available_bytes(device) if available is None else available
    need = FLOAT_BYTES * weight_floats(config) if batch_size is None else training_bytes(config, batch_size, sam)
    if available is None or need <= available:
        return
    what = "its weights" if batch_size is None else f"training at batch_size={batch_size}"
    shape = f"n_channels={config.n_channels}, seq_len={config.seq_len}, horizon={config.horizon}, d_model={config.d_model}"
    raise ModelMemoryError(
        f"a SAMformer with {shape}, value_dim={config.value_dim} needs about {format_bytes(need)} for {what}, but "
        f"{torch.device(device)} has {format_bytes(available)} available; use a smaller value_dim, seq_len or d_model"
        + ("" if batch_size is None else ", a smaller batch_size")
        + ", or fewer channels"
    )


def format_bytes(n: int) -> str:
    """A byte count in the largest unit that keeps it >= 1 (B, KB, MB, GB, TB, PB; powers of 1024)."""
    value, unit = float(n), "B"
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if value < 1024 or unit == "PB":
            break
        value /= 1024
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
