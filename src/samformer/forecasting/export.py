"""ONNX export of a fitted forecaster: raw-unit windows in, raw-unit forecasts out.

The graph contains the standard scaling and its inverse (a float32 `samformer.forecasting.predictor.Predictor`),
so a consumer feeds the last `seq_len` rows as they are: input "x" of shape
(batch, seq_len, n_channels) with the columns in the order of `Forecaster.columns_`, output "forecast"
of shape (batch, horizon, n_targets), or (batch, horizon, n_targets, n_quantiles) for a quantile model
(`n_targets` = `len(Forecaster.targets_)`).
A known-future channel (future covariate or calendar feature) holds its values up to the horizon's
end: rows [t - seq_len + horizon, t + horizon) for a forecast from origin t.
The batch dimension is dynamic. Inputs must be complete (no NaN); missing values need the PyTorch path.
Requires the `onnx` extra (`pip install samformer[onnx]`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import torch

from samformer.checks import check_bool
from samformer.errors import DataError
from samformer.files import atomic_destination
from samformer.forecasting.arguments import check_model_path
from samformer.forecasting.predictor import Predictor


class HasPredictor(Protocol):
    """Anything fitted that gives its `Predictor` (a `Forecaster`)."""

    def predictor(self, dtype: torch.dtype = torch.float64) -> Predictor: ...


def export_onnx(model: Predictor | HasPredictor, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write `model` (a fitted `Forecaster`, or a `Predictor`) as an ONNX file at `path`, atomically.

    Refuses to replace an existing file unless `overwrite`.
    """
    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError:
        raise ImportError("ONNX export needs the onnx extra: pip install 'samformer[onnx]'") from None
    path, overwrite = check_model_path(path), check_bool("overwrite", overwrite)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another path or pass overwrite=True (--overwrite)")
    schema = getattr(model, "schema_", None)
    if schema is not None and schema.stand_ins:
        raise DataError(
            f"targets {', '.join(schema.stand_ins)} are forecast by statistical stand-ins, which ONNX cannot hold; "
            "fit with Forecaster(fallback=False) to export"
        )
    module = model if isinstance(model, Predictor) else model.predictor(torch.float32)
    module = module.cpu().eval()
    example = torch.zeros(2, module.seq_len, module.n_channels)  # (B, L, D)
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
