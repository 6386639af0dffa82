"""Quantile forecasts from a SAMformer: one linear head per quantile level, trained with the pinball loss.

The underlying `SAMformer` forecasts `horizon · Q` values per channel; they are read as Q quantiles of
each of the `horizon` steps. RevIN's inverse is per channel and affine, so it applies to every quantile
alike. The Q outputs of a step are sorted, so quantiles never cross (sorting keeps the pinball
gradient: each output receives the gradient of the level it is sorted into).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from samformer.errors import ShapeError
from samformer.model import SAMformer, SAMformerConfig


class QuantileSAMformer(nn.Module):
    """Wraps a `SAMformer` whose horizon is `horizon · len(quantiles)`.

    Args:
        net: the SAMformer; its `config.horizon` must be a multiple of `len(quantiles)`.
        quantiles: increasing levels in (0, 1), e.g. (0.1, 0.5, 0.9).
    """

    def __init__(self, net: SAMformer, quantiles: tuple[float, ...]) -> None:
        super().__init__()
        check_quantiles(quantiles)
        if net.config.horizon % len(quantiles):
            raise ShapeError(f"the network forecasts {net.config.horizon} values, not a multiple of {len(quantiles)} quantiles")
        self.net = net
        self.quantiles = tuple(float(q) for q in quantiles)
        self.horizon = net.config.horizon // len(quantiles)

    @property
    def config(self) -> SAMformerConfig:
        """The wrapped network's config with `horizon` counted in forecast steps (not steps × quantiles)."""
        return replace(self.net.config, horizon=self.horizon)

    def forward_channels_first(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Quantile forecasts (B, D, H, Q) from inputs (B, D, L), sorted along Q."""
        y = self.net.forward_channels_first(x, mask=mask)  # (B, D, H·Q)
        y = y.unflatten(-1, (self.horizon, len(self.quantiles)))  # (B, D, H·Q) -> (B, D, H, Q)
        return y.sort(dim=-1).values

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Quantile forecasts (B, H, D, Q) from inputs (B, L, D)."""
        self.net._check_input(x)
        return self.forward_channels_first(x.transpose(1, 2)).transpose(1, 2)  # (B, D, H, Q) -> (B, H, D, Q)


def check_quantiles(quantiles: tuple[float, ...]) -> None:
    """Raise ValueError unless `quantiles` is a non-empty strictly increasing sequence in (0, 1)."""
    qs = list(quantiles)
    if not qs or any(not 0 < q < 1 for q in qs) or any(a >= b for a, b in itertools.pairwise(qs)):
        raise ValueError(f"quantiles must be strictly increasing levels in (0, 1), e.g. (0.1, 0.5, 0.9); got {quantiles!r}")


def conformal_offsets(forecasts: np.ndarray, actuals: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """Per-channel widenings of each central interval that make it cover its nominal share on held-out data.

    Conformalized quantile regression (Romano et al., 2019): for the interval [q_k, q_{Q-1-k}] of nominal
    coverage c = q_{Q-1-k} − q_k, the score of an actual y is max(q_k − y, y − q_{Q-1-k}) (negative
    inside the interval); δ is its ⌈(n + 1)·c⌉-th smallest value over the n observed (window, step)
    pairs of a channel, so moving both ends out by δ (in by −δ) covers ⌈(n + 1)·c⌉ of them.

    Args:
        forecasts: quantile forecasts (N, H, D, Q) in original units, levels ascending.
        actuals: what happened (N, H, D), NaN where unobserved.
        quantiles: the Q levels, symmetric around 0.5 pairs taken from the outside in.

    Returns:
        additive offsets (D, Q): −δ on a lower level, +δ on its upper partner, 0 on the median (and on a
        level without a partner).
    """
    n_q = len(quantiles)
    offsets = np.zeros((forecasts.shape[2], n_q))
    for k in range(n_q // 2):
        lo, hi = forecasts[..., k], forecasts[..., n_q - 1 - k]  # (N, H, D)
        score = np.maximum(lo - actuals, actuals - hi)  # NaN where unobserved
        coverage = quantiles[n_q - 1 - k] - quantiles[k]
        for d in range(offsets.shape[0]):
            s = np.sort(score[..., d][~np.isnan(score[..., d])])
            if len(s) == 0:
                raise ValueError(f"channel {d} has no observed value to calibrate its intervals on")
            rank = min(math.ceil((len(s) + 1) * coverage), len(s))  # 1-based
            offsets[d, k], offsets[d, n_q - 1 - k] = -s[rank - 1], s[rank - 1]
    return offsets


def apply_offsets(forecasts: torch.Tensor, offsets: torch.Tensor, median: int) -> torch.Tensor:
    """Quantile forecasts (..., D, Q) moved by `offsets` (D, Q), lower levels kept ≤ the median ≤ upper ones.

    The median is unchanged; an interval narrowed past it collapses onto it, and each side is re-sorted
    so that levels never cross.
    """
    moved = forecasts + offsets
    center = moved[..., median : median + 1]
    lower = torch.minimum(moved[..., :median], center).sort(dim=-1).values
    upper = torch.maximum(moved[..., median + 1 :], center).sort(dim=-1).values
    return torch.cat([lower, center, upper], dim=-1)
