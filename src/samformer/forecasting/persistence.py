"""A fitted `Forecaster` on disk: its network in the model-file format, its `FrameSchema` as the config's `forecaster` section.

The file format itself (safetensors + JSON with checksums) is `samformer.forecasting.modelfile`; this
module adds what a forecaster needs around it: the serving wrappers (quantile heads, an ensemble's mean)
taken off before saving and put back after loading, and the constructor arguments a loaded model is
rebuilt with.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from torch import nn

from samformer.checks import check_bool
from samformer.errors import ModelFileError, SamformerError
from samformer.files import atomic_directory
from samformer.forecasting.arguments import check_model_path
from samformer.forecasting.modelfile import check_model_destination, load_network, save_model
from samformer.forecasting.options import TRAIN_OPTIONS, ForecastOptions
from samformer.forecasting.schema import FrameSchema
from samformer.nn.model import SAMformer
from samformer.nn.quantile import PointQuantiles, QuantileSAMformer
from samformer.nn.stacked import MeanForecast, StackedSAMformer
from samformer.training.config import resolve_device


def bare_network(net: nn.Module) -> SAMformer | StackedSAMformer:
    """The trained network of a forecaster's `net_` without its serving wrappers: one SAMformer, or the ensemble's stack."""
    inner = net.net if isinstance(net, QuantileSAMformer | PointQuantiles) else net
    return inner.stack if isinstance(inner, MeanForecast) else inner


def serving_network(net: SAMformer | StackedSAMformer, quantiles: tuple[float, ...] | None) -> nn.Module:
    """What `Forecaster.net_` holds for a loaded network: an ensemble's mean, with quantile outputs when `quantiles` are set."""
    if isinstance(net, StackedSAMformer):
        return PointQuantiles(MeanForecast(net), quantiles) if quantiles else MeanForecast(net)
    return QuantileSAMformer(net, quantiles) if quantiles else net


def save_forecaster(path: str | os.PathLike, net: nn.Module, schema: FrameSchema, options: ForecastOptions, overwrite: bool) -> Path:
    """Write the directory `path` atomically (see `Forecaster.save`); the options' model and training settings go in the schema."""
    path, overwrite = check_model_path(path), check_bool("overwrite", overwrite)
    check_model_destination(path, overwrite)
    schema = schema.replace(model_options=options.model_options, train_config=asdict(options.train_config))
    with atomic_directory(path, overwrite=overwrite) as tmp:
        save_model(tmp, bare_network(net), extra={"forecaster": schema.to_dict()})
    return Path(path)


def read_forecaster(path: str | os.PathLike, device: str | None) -> tuple[FrameSchema, SAMformer | StackedSAMformer, dict[str, Any]]:
    """The schema, the bare network and the `Forecaster` constructor arguments saved in directory `path`.

    Refuses (`ModelFileError`) a bare SAMformer's directory and one without checksums; `device` (None: the
    saved default) must be one a forecaster runs on.
    """
    path = check_model_path(path)
    net, config = load_network(path)
    if "forecaster" not in config:
        raise ModelFileError(
            f"{path} holds a bare SAMformer (from `samformer train`?), not a Forecaster; "
            "load it with samformer.forecasting.modelfile.load_model"
        )
    if "weights_sha256" not in config or "config_sha256" not in config:
        raise ModelFileError(f"{path}/config.json has no checksums; it was not written by Forecaster.save or was altered")
    members = len(net) if isinstance(net, StackedSAMformer) else 1
    schema = FrameSchema.from_dict(config["forecaster"], net.config, f"{path}/config.json", members)
    train_options = {k: v for k, v in schema.train_config.items() if k in TRAIN_OPTIONS}
    if device is not None:
        if resolve_device(device).type not in ("cpu", "cuda"):
            raise SamformerError(f"device {device!r} cannot run a forecaster; use auto, cpu, cuda or cuda:N")
        train_options["device"] = device
    options = {"quantiles": schema.quantiles, "freq": schema.freq, "season": schema.season, "model_options": schema.model_options}
    arguments = {"horizon": schema.horizon, "seq_len": schema.seq_len, **options, "ensemble": schema.ensemble, **train_options}
    return schema, net, arguments


def invalid_section(path: str | os.PathLike, exc: Exception) -> ModelFileError:
    """The error for saved constructor arguments that the `Forecaster` refuses."""
    return ModelFileError(f"{path}/config.json has an invalid forecaster section ({exc!r}); re-save the model")
