"""Every model of a `StackedSAMformer` scored on the same windows at once, as `train.evaluate` scores one, and their ensemble."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from samformer.data.series import SplitData, Windows
from samformer.metrics import QuantileLoss
from samformer.nn.model import SAMformer
from samformer.nn.quantile import sorted_quantiles
from samformer.nn.stacked import StackedSAMformer
from samformer.training.config import Precision, TrainConfig, TrainResult
from samformer.training.evaluation import evaluation_batches
from samformer.training.steps import autocast


@torch.inference_mode()
def stacked_forecast(stack: StackedSAMformer, x: torch.Tensor, mask: torch.Tensor | None, precision: Precision) -> torch.Tensor:
    """Every model's forecast (k, B, Dt, H) of the same inputs x (B, D, L), by the pass a single model would take."""
    if stack.takes_hand_pass():
        dtype = torch.bfloat16 if precision == "bf16" else stack.flat.dtype
        return stack.fused_forecast(*stack.standardize_shared(x, mask, dtype), dtype)  # (B, D, L) -> (k, B, D, L), no copy
    with autocast(x.device, precision):
        return stack.forward_standardized(*stack.standardize_shared(x, mask))


def mean_forecast(
    stack: StackedSAMformer, x: torch.Tensor, mask: torch.Tensor | None = None, precision: Precision = "fp32"
) -> torch.Tensor:
    """The ensemble's forecast (B, Dt, H) of inputs x (B, D, L): the mean of the k models' forecasts."""
    return stacked_forecast(stack, x, mask, precision).float().mean(dim=0)


@torch.inference_mode()
def evaluate_stacked(
    stack: StackedSAMformer, windows: Windows, batch_size: int = 1024, precision: Precision = "fp32", criterion: QuantileLoss | None = None
) -> dict[str, list[float] | float]:
    """Each model's MSE and MAE over every window, as `train.evaluate` (masks included; each (window, channel) row summed
    over the horizon in the forecasts' precision, the rows in float64),
    and those of the ensemble (the mean of the k forecasts): {"mse": [k], "mae": [k], "ensemble_mse", "ensemble_mae"}.

    With a `criterion` (quantile networks) each model's pinball loss is added as "loss": [k], and the errors are
    those of its point forecast (`criterion.point`), as `train.evaluate` scores a `QuantileSAMformer`.
    """
    k = len(stack)
    device = stack.flat.device
    errors = torch.zeros(4, k + 1, dtype=torch.float64, device=device)  # (squared, absolute) x (k models, ensemble)
    losses = [0.0] * k  # pinball sums, weighted by the targets they cover
    count = 0
    for x, y, mask in evaluation_batches(windows, batch_size, forecasts_per_window=k):
        pred = stacked_forecast(stack, x, None if mask is None else mask[0], precision)  # (k, B, Dt, H), or H·Q outputs
        if criterion is not None:
            y_mask = None if mask is None else mask[1]
            weight = y.numel() if y_mask is None else y_mask.sum().item()
            forecasts = sorted_quantiles(pred, len(criterion.quantiles))  # (k, B, Dt, H, Q)
            losses = [total + criterion(f, y, y_mask).item() * weight for total, f in zip(losses, forecasts, strict=True)]
            pred = criterion.point(forecasts)  # (k, B, Dt, H)
        pred = pred.float()
        for models, forecasts in ((slice(0, k), pred), (k, pred.mean(dim=0))):  # each model's (k, B, Dt, H), the ensemble's
            diff = forecasts - y
            if mask is not None:
                diff = torch.where(mask[1], diff, 0.0)
            # per (window, channel) row over the horizon, without writing the squares; then summed in float64
            errors[0, models] += torch.linalg.vector_norm(diff, 2, dim=-1).square_().flatten(-2).sum(dim=-1, dtype=torch.float64)
            errors[1, models] += torch.linalg.vector_norm(diff, 1, dim=-1).flatten(-2).sum(dim=-1, dtype=torch.float64)
        count += y.numel() if mask is None else int(mask[1].sum())
    mse, mae = (errors[:2] / max(count, 1)).tolist()
    scores = {"mse": mse[:k], "mae": mae[:k], "ensemble_mse": mse[k], "ensemble_mae": mae[k]}
    if criterion is not None:
        scores["loss"] = [total / max(count, 1) for total in losses]
    return scores


def score_stacked(
    models: Sequence[SAMformer], data: SplitData, cfg: TrainConfig, results: Sequence[TrainResult], criterion: QuantileLoss | None = None
) -> tuple[list[TrainResult], dict[str, float]]:
    """`results` with each model's test MSE and MAE (as `train.score_test` adds them), and the ensemble's
    {"test_mse", "test_mae"}: the models scored together, as one stack, on the test split of `data` (quantile
    networks, with a `criterion`, by their point forecasts)."""
    stack = StackedSAMformer(models)
    test = evaluate_stacked(stack, data.windows("test").to(stack.flat.device), cfg.eval_batch_size, cfg.precision, criterion)
    scored = [replace(r, test_mse=mse, test_mae=mae) for r, mse, mae in zip(results, test["mse"], test["mae"], strict=True)]
    return scored, {"test_mse": test["ensemble_mse"], "test_mae": test["ensemble_mae"]}
