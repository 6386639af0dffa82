"""samformer: SAMformer (Ilbert et al., ICML 2024) — channel-wise attention trained with SAM.

The public names below are imported on first use (PEP 562), so that ``import samformer`` and the
command line's start do not pay for torch and pandas before they are needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from samformer.data.benchmarks import BENCHMARKS
    from samformer.data.loading import load_dataset
    from samformer.data.series import SplitData, Windows
    from samformer.errors import ConfigError, DataError, ModelFileError, SamformerError, ShapeError
    from samformer.forecasting.backtest import Backtest
    from samformer.forecasting.forecaster import Forecaster
    from samformer.nn.model import SAMformer, SAMformerConfig, create_model, list_variants
    from samformer.nn.reparam import SigmaReparamLinear
    from samformer.training.config import TrainConfig, TrainResult
    from samformer.training.evaluation import evaluate
    from samformer.training.fit import fit
    from samformer.training.sam import SAM

from samformer.version import __version__

# public name -> the module that defines it
_SOURCES = {
    **dict.fromkeys(["SplitData", "Windows"], "samformer.data.series"),
    "load_dataset": "samformer.data.loading",
    "BENCHMARKS": "samformer.data.benchmarks",
    **dict.fromkeys(["ConfigError", "DataError", "ModelFileError", "SamformerError", "ShapeError"], "samformer.errors"),
    "evaluate": "samformer.training.evaluation",
    "Backtest": "samformer.forecasting.backtest",
    "Forecaster": "samformer.forecasting.forecaster",
    **dict.fromkeys(["SAMformer", "SAMformerConfig", "create_model", "list_variants"], "samformer.nn.model"),
    "SigmaReparamLinear": "samformer.nn.reparam",
    "SAM": "samformer.training.sam",
    **dict.fromkeys(["TrainConfig", "TrainResult"], "samformer.training.config"),
    "fit": "samformer.training.fit",
}

__all__ = [
    "BENCHMARKS",
    "SAM",
    "Backtest",
    "ConfigError",
    "DataError",
    "Forecaster",
    "ModelFileError",
    "SAMformer",
    "SAMformerConfig",
    "SamformerError",
    "ShapeError",
    "SigmaReparamLinear",
    "SplitData",
    "TrainConfig",
    "TrainResult",
    "Windows",
    "__version__",
    "create_model",
    "evaluate",
    "fit",
    "list_variants",
    "load_dataset",
]


def __getattr__(name: str) -> Any:
    if name not in _SOURCES:
        raise AttributeError(f"module 'samformer' has no attribute {name!r}")
    value = getattr(importlib.import_module(_SOURCES[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SOURCES))
