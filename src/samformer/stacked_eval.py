"""Every model of a `StackedSAMformer` scored on the same windows at once, as `train.evaluate` scores one."""

from __future__ import annotations

import torch

from samformer.data import Windows
from samformer.model import missing_as_zero
from samformer.stacked import StackedSAMformer, standardize_inputs
from samformer.train import EVAL_ROWS, Precision, autocast


@torch.inference_mode()
def stacked_forecast(stack: StackedSAMformer, x: torch.Tensor, mask: torch.Tensor | None, precision: Precision) -> torch.Tensor:
    """Every model's forecast (k, B, Dt, H) of the same inputs x (B, D, L), by the pass a single model would take."""
    k = len(stack)
    if stack.config.revin:
        z, (mean, std) = standardize_inputs(x, mask)  # statistics of the inputs: the same for every model
        stats = (mean.expand(k, *mean.shape), std.expand(k, *std.shape))
    else:
        z, stats = missing_as_zero(x, mask), None
    z = z.expand(k, *z.shape)  # (B, D, L) -> (k, B, D, L), no copy
    if stack.uses_fused(z):
        dtype = torch.bfloat16 if precision == "bf16" else stack.flat.dtype
        return stack.fused_forecast(z, stats, dtype)
    with autocast(x.device, precision):
        return stack.forward_standardized(z, stats)


@torch.inference_mode()
def evaluate_stacked(
    stack: StackedSAMformer, windows: Windows, batch_size: int = 1024, precision: Precision = "fp32"
) -> dict[str, list[float]]:
    """Each model's MSE and MAE over every window, accumulated in float64, as `train.evaluate` (masks included)."""
    k = len(stack)
    device = stack.flat.device
    sq_err = torch.zeros(k, dtype=torch.float64, device=device)
    abs_err = torch.zeros(k, dtype=torch.float64, device=device)
    count = 0
    n_channels = windows.batch(slice(0, 1))[0].shape[1]
    batch_size = max(1, min(batch_size, EVAL_ROWS // (n_channels * k)))  # k forecasts per window
    for start in range(0, len(windows), batch_size):
        index = slice(start, start + batch_size)
        x, y = windows.batch(index)
        mask = windows.batch_mask(index)
        pred = stacked_forecast(stack, x, None if mask is None else mask[0], precision)  # (k, B, Dt, H)
        diff = pred.float() - y
        if mask is not None:
            diff = torch.where(mask[1], diff, 0.0)
        sq_err += diff.square().flatten(1).sum(dim=1, dtype=torch.float64)
        abs_err += diff.abs().flatten(1).sum(dim=1, dtype=torch.float64)
        count += diff[0].numel() if mask is None else int(mask[1].sum())
    count = max(count, 1)
    return {"mse": (sq_err / count).tolist(), "mae": (abs_err / count).tolist()}
