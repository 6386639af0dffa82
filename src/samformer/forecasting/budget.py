"""The Forecaster's training budget: epochs that hold enough optimizer steps on small data, and the cap warning.

The paper's protocol counts in epochs (at most 100, patience 5, a cosine cycle every 5). On a benchmark an
epoch is hundreds of optimizer steps; on a short series it is one or two, and 100 epochs end training long
before validation stops improving. `stretched_config` keeps the protocol's shape but measures it in *passes of
at least `MIN_STEPS_PER_EPOCH` steps*: with s steps per pass, epochs, patience and the cosine period are each
multiplied by ⌈MIN_STEPS_PER_EPOCH / s⌉ (1 on data with enough windows, where nothing changes). Options
the user set are kept as given.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

from samformer.training.config import TrainConfig, TrainResult

MIN_STEPS_PER_EPOCH = 50  # an ETTh1 epoch at batch 32 is 251 steps; a 100-row monthly series gives 1 or 2
STRETCHED = ("epochs", "patience", "restart_period")


def passes_per_epoch(n_train_windows: int, batch_size: int) -> int:
    """How many passes over `n_train_windows` windows make one epoch of at least `MIN_STEPS_PER_EPOCH` steps."""
    steps = max(1, math.ceil(n_train_windows / batch_size))
    return max(1, math.ceil(MIN_STEPS_PER_EPOCH / steps))


def stretched_config(config: TrainConfig, n_train_windows: int, user_set: frozenset[str]) -> TrainConfig:
    """`config` with epochs, patience and the cosine period counted in epochs of at least `MIN_STEPS_PER_EPOCH` steps.

    Args:
        config: the training options.
        n_train_windows: training windows of the run (look-back + horizon rows each).
        user_set: names of the options the user gave; those are not changed.
    """
    factor = passes_per_epoch(n_train_windows, config.batch_size)
    changes = {name: getattr(config, name) * factor for name in STRETCHED if name not in user_set}
    return dataclasses.replace(config, **changes) if factor > 1 and changes else config


def ended_at_cap(result: TrainResult, config: TrainConfig) -> bool:
    """Whether the epoch cap, not early stopping, ended training (validation was still improving in the last epochs)."""
    return result.epochs_run >= config.epochs and result.epochs_run - result.best_epoch < config.patience


def warn_if_capped(result: TrainResult, config: TrainConfig, stacklevel: int = 3) -> None:
    """One-line `UserWarning` when the cap of `config.epochs` epochs, not early stopping, ended training."""
    if ended_at_cap(result, config):
        warnings.warn(
            f"training stopped at its cap of {config.epochs} epochs with the validation MSE still improving "
            f"(best epoch {result.best_epoch}); pass a larger epochs= to train longer",
            UserWarning,
            stacklevel=stacklevel,
        )
