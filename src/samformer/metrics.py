"""Forecast metrics as pure functions (torch for training, on the standardised scale)."""

from __future__ import annotations

import torch


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error, accumulated in float32 whatever the autocast precision."""
    return torch.mean((pred.float() - target.float()) ** 2)


def mae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error, accumulated in float32."""
    return torch.mean(torch.abs(pred.float() - target.float()))
