"""`Predictor`: a fitted network between the forecaster's standard scaling and its inverse.

The one place where forecasts go back to original units (inverse scaling of the targets, then the
calibration offsets of quantile intervals). `Forecaster.predict`/`backtest` call `forecast_scaled` on
windows they have scaled themselves (missing values masked); the ONNX export traces `forward`, which
takes raw complete windows.
"""

from __future__ import annotations

import torch
from torch import nn

from samformer.forecasting.schema import FrameSchema
from samformer.nn.quantile import apply_offsets


class Predictor(nn.Module):
    """Forecasts in original units from the network of a fitted forecaster and its `FrameSchema`.

    Args:
        net: a `SAMformer` or `QuantileSAMformer` (its `forward_channels_first` takes (B, D, L)).
        schema: the fitted scaler, targets, quantiles and calibration offsets.
        dtype: precision of the scaling arithmetic (float64 for `predict`, float32 for ONNX).
    """

    def __init__(self, net: nn.Module, schema: FrameSchema, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.net = net
        self.seq_len, self.n_channels = schema.seq_len, len(schema.channels.columns)
        targets = schema.channels.target_indices
        mean, std = (torch.from_numpy(a).to(dtype) for a in (schema.scaler.mean, schema.scaler.std))
        self.register_buffer("mean", mean)  # (D,)
        self.register_buffer("std", std)  # (D,)
        self.register_buffer("target_mean", mean[targets])  # (D_targets,)
        self.register_buffer("target_std", std[targets])  # (D_targets,)
        offsets, floor = schema.interval_offsets, schema.interval_floor
        self.register_buffer("offsets", None if offsets is None else torch.from_numpy(offsets).to(dtype))  # ([H,] D_targets, Q)
        self.register_buffer("floor", None if floor is None else torch.from_numpy(floor).to(dtype))  # (H, D_targets, Q)
        self.median = schema.quantiles.index(0.5) if schema.quantiles else 0

    def to_original_units(self, y: torch.Tensor) -> torch.Tensor:
        """Network outputs (B, D_targets, H[, Q]) in standardised units -> forecasts (B, H, D_targets[, Q])."""
        y = y.to(self.mean.dtype).transpose(1, 2)  # (B, D_targets, H[, Q]) -> (B, H, D_targets[, Q])
        if y.ndim == 4:
            y = y * self.target_std[:, None] + self.target_mean[:, None]
            return y if self.offsets is None else apply_offsets(y, self.offsets, self.median, self.floor)
        return y * self.target_std + self.target_mean

    def forecast_scaled(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Forecasts (B, H, D_targets[, Q]) in original units from standardised inputs (B, D, L)."""
        kwargs = {} if mask is None else {"mask": mask}
        return self.to_original_units(self.net.forward_channels_first(x, **kwargs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forecasts (B, H, D_targets[, Q]) in original units from complete raw windows (B, L, D)."""
        x = ((x - self.mean) / self.std).to(x.dtype).transpose(1, 2)  # (B, L, D) -> (B, D, L), standardised
        return self.forecast_scaled(x)
