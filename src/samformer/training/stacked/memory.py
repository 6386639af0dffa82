"""How much memory a stack of k models needs, checked before anything is allocated."""

from __future__ import annotations

import math

import torch

from samformer.errors import SamformerError
from samformer.nn.memory import available_bytes
from samformer.nn.model import SAMformer

# Per-model copies of the parameters a stacked step holds: weights, gradient, SAM's w + ε, Adam's two
# moments, the best weights, the low-precision cast (counted at full width).
PARAMETER_COPIES = 7
# Per-model float tensors of a batch's (window, channel) rows alive in a step (inputs, standardised inputs,
# attention outputs, their gradients, forecasts and targets), in units of one row's L + H + D + d floats.
ACTIVATION_COPIES = 8


class StackMemoryError(SamformerError):
    """A stack that does not fit in this device's memory."""


def bytes_per_model(model: SAMformer, batch_size: int) -> int:
    """An estimate of the memory one model like `model` adds to a stacked training step, from its parameter and
    activation sizes."""
    config = model.config
    n_parameters = sum(p.numel() for p in model.parameters())
    rows = batch_size * config.n_channels
    width = config.seq_len + config.horizon + config.n_channels + config.d_model
    return 4 * (PARAMETER_COPIES * n_parameters + ACTIVATION_COPIES * rows * width)


def check_stack_memory(model: SAMformer, k: int, batch_size: int, device: torch.device, available: int | None = None) -> None:
    """Refuse (`StackMemoryError`) a stack of k models like `model` that would not fit, saying what it needs and the
    largest k that fits.

    `available` (bytes) defaults to what `available_bytes` finds; unknown means no check.
    """
    available = available_bytes(device) if available is None else available
    per_model = bytes_per_model(model, batch_size)
    if available is None or k * per_model <= available:
        return
    fits = max(0, math.floor(available / per_model))
    advice = f"train at most k={fits} models at once (fewer seeds per stack)" if fits else "train this model alone, or on a larger machine"
    raise StackMemoryError(
        f"a stack of k={k} models needs about {_gigabytes(k * per_model)} ({_gigabytes(per_model)} per model at batch "
        f"{batch_size}), but {device} has {_gigabytes(available)} free; {advice}"
    )


def _gigabytes(n: int) -> str:
    return f"{n / 2**30:.2f} GB" if n >= 2**25 else f"{n / 2**20:.1f} MB"
