"""Choosing the look-back window L on the validation rows (`Forecaster(seq_len=None)`, the default).

Candidates come from the series: powers-of-two multiples of the horizon H and of the season s
(`baselines.season_length`), from max(H, s) up to the largest look-back the training rows allow
(at most 512, the paper's, and at most half the training rows less H, so that every candidate has at
least as many training windows as its look-back); the largest allowed is always a candidate, and at
most `MAX_CANDIDATES` are kept, spread evenly on a log scale.

The search (`search_lookback`): every candidate is trained with the same seed for one cosine cycle of
the learning-rate schedule (`TrainConfig.restart_period` epochs, 5 by default) with early stopping,
and scored by its best validation score (the early-stopping score: MSE for a point model, pinball
loss for a quantile model, both standardised); all candidates forecast the same validation rows. The
winner is then trained to the end with the full `TrainConfig`, except when its search run already
was a full run (it stopped early, or `epochs` ≤ one cycle), which is then kept as it is. Since the
seeds are equal, the winner's final run starts exactly as its search run did.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import pandas as pd

from samformer.errors import DataError

MAX_LOOKBACK = 512  # the paper's look-back; longer ones are not searched
MAX_CANDIDATES = 4
MIN_LOOKBACK = 4  # shorter windows leave RevIN too few values for its statistics

Run = TypeVar("Run")


def lookback_bounds(train_rows: int, horizon: int, season: int | None) -> tuple[int, int]:
    """(smallest, largest) candidate look-back for `train_rows` rows before the validation part."""
    lower = max(horizon, season or 1, MIN_LOOKBACK)
    upper = min(MAX_LOOKBACK, (train_rows - horizon) // 2)
    return min(lower, max(upper, MIN_LOOKBACK)), upper


def min_train_rows(horizon: int) -> int:
    """The fewest rows before the validation part with which some look-back can be chosen."""
    return 2 * MIN_LOOKBACK + horizon


def lookback_candidates(train_rows: int, horizon: int, season: int | None) -> list[int]:
    """The look-backs to try (ascending); DataError when the training rows allow none."""
    lower, upper = lookback_bounds(train_rows, horizon, season)
    if upper < MIN_LOOKBACK:
        raise DataError(
            f"{train_rows} rows before the validation part are too few to choose a look-back for horizon={horizon}: "
            f"at least {min_train_rows(horizon)} are needed; give a longer series, a smaller val_size or horizon, or set seq_len"
        )
    grid = {upper}
    for base in {horizon, season or horizon, lower}:
        grid |= {base * 2**k for k in range(10) if lower <= base * 2**k <= upper}
    return _spread(sorted(grid), MAX_CANDIDATES)


def _spread(values: list[int], k: int) -> list[int]:
    """At most `k` of the sorted `values`: the first, the last, and those nearest to even log-spaced points."""
    if len(values) <= k:
        return values
    logs = [math.log(v) for v in values]
    targets = [logs[0] + i * (logs[-1] - logs[0]) / (k - 1) for i in range(k)]
    return sorted({min(values, key=lambda v, t=t: abs(math.log(v) - t)) for t in targets})


@dataclass(frozen=True)
class Trial(Generic[Run]):
    """One candidate's search run: its look-back, best validation score, epochs run, and the run itself."""

    seq_len: int
    val_score: float
    epochs: int
    run: Run


def search_lookback(
    candidates: list[int], train: Callable[[int, int], Trial[Run]], search_epochs: int, full_epochs: int
) -> tuple[Run, pd.DataFrame]:
    """Train every candidate for `search_epochs`, keep the best, and train it fully unless that run already was full.

    Args:
        candidates: look-backs to try.
        train: `train(seq_len, epochs)` -> the `Trial` of one training run with that look-back and epoch cap.
        search_epochs: the epoch cap of the search runs.
        full_epochs: the epoch cap of a full run.

    Returns:
        the winner's final run, and the search as a frame indexed by `seq_len` with columns
        `val_score`, `epochs` (of the search run) and `chosen`.
    """
    search_epochs = min(search_epochs, full_epochs)
    trials = [train(seq_len, search_epochs) for seq_len in candidates]
    best = min(trials, key=lambda t: (not math.isfinite(t.val_score), t.val_score))
    finished = search_epochs == full_epochs or best.epochs < search_epochs  # capped by nothing but early stopping
    final = best.run if finished else train(best.seq_len, full_epochs).run
    table = pd.DataFrame(
        {"val_score": [t.val_score for t in trials], "epochs": [t.epochs for t in trials], "chosen": [t is best for t in trials]},
        index=pd.Index(candidates, name="seq_len"),
    )
    return final, table
