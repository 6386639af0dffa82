"""Scoring a model on windows: MSE and MAE over every window, on one process or shared by torch.distributed ranks.

Evaluation runs under `torch.inference_mode`, in float64 sums, and drops no window.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from samformer.data.series import Windows
from samformer.nn.model import SAMformer
from samformer.training import distributed
from samformer.training.steps import Criterion, Precision, autocast

EVAL_ROWS = 1 << 16  # at most this many (window, channel) rows per evaluation batch


def evaluation_batches(
    windows: Windows, batch_size: int, forecasts_per_window: int = 1
) -> Iterator[tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]]:
    """Every window in order, as batches (x (B, D, L), y (B, Dt, H), their masks or None) of at most `batch_size` windows.

    Wide panels: the batches hold at most `EVAL_ROWS` channel rows per forecast (k forecasts per window for a stack
    of k), so evaluating traffic (862 channels) at the default batch of 1024 windows does not hold gigabytes of
    activations. Sums are the same for any batch size.
    """
    n_channels = windows.batch(slice(0, 1))[0].shape[1]  # x is (1, D, L)
    batch_size = max(1, min(batch_size, EVAL_ROWS // (n_channels * forecasts_per_window)))
    for start in range(0, len(windows), batch_size):
        index = slice(start, start + batch_size)
        yield *windows.batch(index), windows.batch_mask(index)


@torch.inference_mode()
def evaluate(
    model: SAMformer, windows: Windows, batch_size: int = 1024, precision: Precision = "fp32", criterion: Criterion | None = None
) -> dict[str, float]:
    """MSE and MAE over every window (no window dropped), accumulated in float64.

    If `windows` has a mask, only observed targets count and missing inputs are masked in RevIN. With a
    `criterion` (e.g. `metrics.QuantileLoss`), its mean is added as "loss", and MSE/MAE are those of
    `criterion.point(pred)`.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sq_err = abs_err = loss_sum = 0.0
    count = 0
    for x, y, mask in evaluation_batches(windows, batch_size):
        with autocast(device, precision):
            pred = model.forward_channels_first(x) if mask is None else model.forward_channels_first(x, mask=mask[0])
        if criterion is not None:
            y_mask = None if mask is None else mask[1]
            weight = y.numel() if y_mask is None else y_mask.sum().item()
            loss_sum += criterion(pred, y, y_mask).item() * weight
            pred = criterion.point(pred)
        diff = pred.float() - y
        if mask is not None:
            diff = torch.where(mask[1], diff, 0.0)
        sq_err += diff.square().sum(dtype=torch.float64).item()
        abs_err += diff.abs().sum(dtype=torch.float64).item()
        count += diff.numel() if mask is None else int(mask[1].sum())
    model.train(was_training)
    count = max(count, 1)
    metrics = {"mse": sq_err / count, "mae": abs_err / count}
    if criterion is not None:
        metrics["loss"] = loss_sum / count
    return metrics


def evaluate_split(
    model: SAMformer, windows: Windows, batch_size: int = 1024, precision: Precision = "fp32", criterion: Criterion | None = None
) -> dict[str, float]:
    """`evaluate`; under torch.distributed each rank scores a contiguous block and the sums are all-reduced."""
    if not distributed.is_distributed():
        return evaluate(model, windows, batch_size, precision, criterion)
    block = distributed.shard_windows(windows)
    names = ("mse", "mae", "loss")
    sums = torch.zeros(len(names) + 1, dtype=torch.float64, device=windows.series.device)
    if block is not None:
        count = distributed.target_count(block)
        metrics = evaluate(model, block, batch_size, precision, criterion)
        sums = torch.tensor([metrics.get(n, 0.0) * count for n in names] + [count], dtype=torch.float64, device=sums.device)
    distributed.all_reduce_sum(sums)
    total = max(sums[-1].item(), 1.0)
    metrics = {n: sums[i].item() / total for i, n in enumerate(names)}
    if criterion is None:
        del metrics["loss"]
    return metrics
