"""samformer: SAMformer (Ilbert et al., ICML 2024) — channel-wise attention trained with SAM."""

from samformer.data import SplitData, Windows, load_dataset
from samformer.datasets import BENCHMARKS
from samformer.errors import DataError, ModelFileError, SamformerError, ShapeError
from samformer.forecaster import Backtest, Forecaster
from samformer.model import SAMformer, SAMformerConfig, create_model, list_variants
from samformer.reparam import SigmaReparamLinear
from samformer.sam import SAM
from samformer.train import TrainConfig, TrainResult, evaluate, fit

__version__ = "0.1.0"

__all__ = [
    "BENCHMARKS",
    "SAM",
    "Backtest",
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
