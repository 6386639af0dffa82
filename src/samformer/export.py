"""ONNX export of a fitted `Forecaster`: raw-unit windows in, raw-unit forecasts out.

The graph contains the standard scaling and its inverse, so a consumer feeds the last `seq_len` rows
as they are: input "x" of shape (batch, seq_len, n_channels) with the columns in the order of
`Forecaster.columns_`, output "forecast" of shape (batch, horizon, n_targets), or
(batch, horizon, n_targets, n_quantiles) for a quantile model (`n_targets` = `len(Forecaster.targets_)`).
A known-future channel (future covariate or calendar feature) holds its values up to the horizon's
end: rows [t - seq_len + horizon, t + horizon) for a forecast from origin t.
The batch dimension is dynamic. Inputs must be complete (no NaN); missing values need the PyTorch path.
Requires the `onnx` extra (`pip install samformer[onnx]`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from samformer.io import atomic_destination
from samformer.quantile import apply_offsets

if TYPE_CHECKING:
    from samformer.forecaster import Forecaster


class ScaledForecaster(nn.Module):
    """The fitted network between the forecaster's standard scaling and its inverse, in (B, L, D) layout."""

    def __init__(
        self,
        net: nn.Module,
        mean: torch.Tensor,
        std: torch.Tensor,
        targets: list[int],
        offsets: torch.Tensor | None = None,
        median: int = 0,
    ) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("offsets", offsets)  # calibrated intervals: (D_targets, Q) added to the quantiles, or None
        self.median = median
        self.register_buffer("mean", mean.float())  # (D,)
        self.register_buffer("std", std.float())  # (D,)
        self.register_buffer("target_mean", mean[targets].float())  # (D_targets,)
        self.register_buffer("target_std", std[targets].float())  # (D_targets,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x - self.mean) / self.std).transpose(1, 2)  # (B, L, D) -> (B, D, L)
        y = self.net.forward_channels_first(x)  # (B, D_targets, H) or (B, D_targets, H, Q)
        if y.ndim == 4:
            y = y.transpose(1, 2) * self.target_std[:, None] + self.target_mean[:, None]  # (B, H, D_targets, Q)
            return y if self.offsets is None else apply_offsets(y, self.offsets, self.median)
        return y.transpose(1, 2) * self.target_std + self.target_mean  # (B, H, D_targets)


def export_onnx(forecaster: Forecaster, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write `forecaster`'s network as an ONNX file at `path` (atomically); refuses to replace a file unless `overwrite`."""
    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError:
        raise ImportError("ONNX export needs the onnx extra: pip install 'samformer[onnx]'") from None
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another path or pass overwrite=True (--overwrite)")
    targets = [forecaster.columns_.index(c) for c in forecaster.targets_]
    mean, std = torch.from_numpy(forecaster.scaler_.mean), torch.from_numpy(forecaster.scaler_.std)
    offsets = None if forecaster.interval_offsets_ is None else torch.from_numpy(forecaster.interval_offsets_).float()
    median = forecaster.quantiles.index(0.5) if forecaster.quantiles else 0
    module = ScaledForecaster(forecaster.net_, mean, std, targets, offsets, median)
    module = module.cpu().eval()
    example = torch.zeros(2, forecaster.seq_len, len(forecaster.columns_))
    with atomic_destination(path) as tmp:
        torch.onnx.export(
            module,
            (example,),
            str(tmp),
            input_names=["x"],
            output_names=["forecast"],
            dynamic_axes={"x": {0: "batch"}, "forecast": {0: "batch"}},
            dynamo=False,
        )
    return path
