"""Forecast metrics as pure functions (torch for training, on the standardised scale)."""

from __future__ import annotations

import torch


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error, accumulated in float32 whatever the autocast precision."""
    return torch.mean((pred.float() - target.float()) ** 2)


def mae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error, accumulated in float32."""
    return torch.mean(torch.abs(pred.float() - target.float()))


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """MSE over the entries where the boolean `mask` is True (observed); plain `mse` without a mask.

    Whatever the target holds where the mask is False (NaN included) does not reach the loss or its gradient.
    """
    if mask is None:
        return mse(pred, target)
    diff = torch.where(mask, pred.float() - target.float(), 0.0)
    return diff.square().sum() / mask.sum().clamp(min=1)


def pinball(pred: torch.Tensor, target: torch.Tensor, quantiles: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean pinball (quantile) loss of forecasts `pred` (..., Q) at levels `quantiles` (Q,) for `target` (...).

    For level q and error e = target − forecast the loss is max(q·e, (q − 1)·e); only entries where the
    optional boolean `mask` (shape of `target`) is True count.
    """
    diff = target.float()[..., None] - pred.float()  # (..., Q)
    if mask is not None:
        diff = torch.where(mask[..., None], diff, 0.0)
    q = quantiles.to(diff)
    loss = torch.maximum(q * diff, (q - 1) * diff)
    if mask is None:
        return loss.mean()
    return loss.sum() / (mask.sum().clamp(min=1) * q.numel())


class QuantileLoss:
    """Training criterion of a quantile model: pinball loss over `quantiles`; its point forecast is the median.

    Called as `criterion(pred (B, D, H, Q), target (B, D, H), mask (B, D, H) | None)`.
    """

    def __init__(self, quantiles: tuple[float, ...]) -> None:
        self.quantiles = torch.tensor(quantiles, dtype=torch.float32)
        self.median_index = min(range(len(quantiles)), key=lambda i: abs(quantiles[i] - 0.5))

    def __call__(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return pinball(pred, target, self.quantiles, mask)

    def point(self, pred: torch.Tensor) -> torch.Tensor:
        """The quantile closest to 0.5: (..., Q) -> (...)."""
        return pred[..., self.median_index]
