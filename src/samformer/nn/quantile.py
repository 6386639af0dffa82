"""Quantile forecasts from a SAMformer: one linear head per quantile level, trained with the pinball loss.

The underlying `SAMformer` forecasts `horizon · Q` values per channel; they are read as Q quantiles of
each of the `horizon` steps. RevIN's inverse is per channel and affine, so it applies to every quantile
alike. The Q outputs of a step are sorted, so quantiles never cross (sorting keeps the pinball
gradient: each output receives the gradient of the level it is sorted into).

Calibration (`calibrate`): the central intervals are moved out (or in) on held-out windows by
conformalized quantile regression, pooled over the horizon steps with a step-dependent scale, and a
floor keeps every band open (see `calibrate` for the rule).
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np
import torch
from torch import nn

from samformer.errors import ShapeError
from samformer.nn.model import SAMformer, SAMformerConfig


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
        return sorted_quantiles(self.net.forward_channels_first(x, mask=mask), len(self.quantiles))  # (B, D, H·Q) -> (B, D, H, Q)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Quantile forecasts (B, H, D, Q) from inputs (B, L, D)."""
        self.net._check_input(x)
        return self.forward_channels_first(x.transpose(1, 2)).transpose(1, 2)  # (B, D, H, Q) -> (B, H, D, Q)


def sorted_quantiles(outputs: torch.Tensor, n_quantiles: int) -> torch.Tensor:
    """A quantile network's outputs (..., H·Q) as its quantile forecasts (..., H, Q), sorted along Q."""
    return outputs.unflatten(-1, (-1, n_quantiles)).sort(dim=-1).values


class PointQuantiles(nn.Module):
    """Quantile forecasts from a point forecaster: every level starts at its forecast, calibration opens the bands.

    For networks that cannot be trained with the pinball loss (an ensemble's mean forecast): Q copies of
    the point forecast, which `calibrate` (on the copies' zero-width bands, that is split-conformal on the
    point forecast's residuals) and `apply_offsets` move apart.

    Args:
        net: a module whose `forward_channels_first(x, mask=None)` gives point forecasts (B, D, H).
        quantiles: increasing levels in (0, 1) containing 0.5.
    """

    def __init__(self, net: nn.Module, quantiles: tuple[float, ...]) -> None:
        super().__init__()
        check_quantiles(quantiles)
        self.net = net
        self.quantiles = tuple(float(q) for q in quantiles)

    def forward_channels_first(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Q equal quantile forecasts (B, D, H, Q) from inputs (B, D, L)."""
        y = self.net.forward_channels_first(x, mask=mask)  # (B, D, H)
        return y[..., None].expand(*y.shape, len(self.quantiles))  # (B, D, H) -> (B, D, H, Q)


def check_quantiles(quantiles: tuple[float, ...]) -> None:
    """Raise ValueError unless `quantiles` is a non-empty strictly increasing sequence in (0, 1)."""
    qs = list(quantiles)
    if not qs or any(not 0 < q < 1 for q in qs) or any(a >= b for a, b in itertools.pairwise(qs)):
        raise ValueError(f"quantiles must be strictly increasing levels in (0, 1), e.g. (0.1, 0.5, 0.9); got {quantiles!r}")


def conformal_offsets(
    forecasts: np.ndarray, actuals: np.ndarray, quantiles: tuple[float, ...], scale: np.ndarray | None = None
) -> np.ndarray:
    """Per-channel widenings of each central interval that make it cover its nominal share on held-out data.

    Conformalized quantile regression (Romano et al., 2019): for the interval [q_k, q_{Q-1-k}] of nominal
    coverage c = q_{Q-1-k} − q_k, the score of an actual y is max(q_k − y, y − q_{Q-1-k}) (negative
    inside the interval), divided by `scale` at its step; δ is its ⌈(n + 1)·c⌉-th smallest value over
    the n observed (window, step) pairs of a channel, so moving both ends out by δ·scale (in, when δ < 0)
    covers ⌈(n + 1)·c⌉ of them.

    Args:
        forecasts: quantile forecasts (N, H, D, Q) in original units, levels ascending.
        actuals: what happened (N, H, D), NaN where unobserved.
        quantiles: the Q levels, symmetric around 0.5 pairs taken from the outside in.
        scale: positive (H, D) units of the scores per step and channel; None: 1 (original units).

    Returns:
        offsets (D, Q) in units of `scale`: −δ on a lower level, +δ on its upper partner, 0 on the median
        (and on a level without a partner).
    """
    n_q = len(quantiles)
    offsets = np.zeros((forecasts.shape[2], n_q))
    unit = 1.0 if scale is None else scale  # (H, D) broadcasts over the windows
    for k in range(n_q // 2):
        lo, hi = forecasts[..., k], forecasts[..., n_q - 1 - k]  # (N, H, D)
        score = np.maximum(lo - actuals, actuals - hi) / unit  # NaN where unobserved
        for d in range(offsets.shape[0]):
            delta = _conformal_quantile(score[..., d], (quantiles[k], quantiles[n_q - 1 - k]), d)
            offsets[d, k], offsets[d, n_q - 1 - k] = -delta, delta
    return offsets


def conformal_rank(n: int, lower: float, upper: float) -> int:
    """⌈(n + 1)·(upper − lower)⌉, 1-based, computed exactly on the levels as written (at most `n`).

    In floating point 0.8 − 0.2 is 0.6000000000000001, so (n + 1)·c overshoots an integer whenever n + 1
    is a multiple of 5 and the ceiling comes out one too high; the decimal strings of the levels
    (`repr`: the shortest that round-trips) are exact fractions, so their difference is 3/5 exactly.
    """
    coverage = Fraction(repr(float(upper))) - Fraction(repr(float(lower)))
    return min(math.ceil((n + 1) * coverage), n)


def _conformal_quantile(scores: np.ndarray, levels: tuple[float, float], channel: int) -> float:
    """The ⌈(n + 1)·(upper − lower)⌉-th smallest of the observed `scores` (the largest if n is too small)."""
    s = np.sort(scores[~np.isnan(scores)])
    if len(s) == 0:
        raise ValueError(f"channel {channel} has no observed value to calibrate its intervals on")
    return float(s[conformal_rank(len(s), *levels) - 1])


FLOOR_SHARE = 0.25  # a band is never narrower than this share of the residual band of its level
MIN_WINDOWS_PER_MISS = 2  # warn below this many expected misses of the widest interval's tails in all


@dataclass(frozen=True)
class Calibration:
    """What `calibrate` fitted: `offsets` added to the quantiles, and each level's least distance from the median.

    Both (H, D, Q) in original units; the median's entries are 0.
    """

    offsets: np.ndarray
    floor: np.ndarray


def calibrate(forecasts: np.ndarray, actuals: np.ndarray, quantiles: tuple[float, ...]) -> Calibration:
    """Calibrate the central intervals of quantile forecasts (N, H, D, Q) on what happened (N, H, D).

    The scores of all steps are pooled after dividing each by its step's scale s_h = the RMSE of the
    median at step h (never below an earlier step's; `step_scale`): one δ per
    channel and interval, offsets δ·s_h, so the validation coverage is exact over all steps and the
    widening grows with the forecast's error. Floor: each level stays at least `FLOOR_SHARE` × the
    half-width of the residual band of its coverage (the conformal quantile of |y − median| / s_h,
    times s_h) away from the median, so no band has zero width. Warns in one line when there are fewer
    than 2/(1 − c) windows for the widest coverage c (too few for its tails).
    """
    median = forecasts[..., quantiles.index(0.5)]  # (N, H, D)
    scale = step_scale(median, actuals)  # (H, D)
    offsets = conformal_offsets(forecasts, actuals, quantiles, scale)[None] * scale[..., None]  # (H, D, Q)
    floor = np.zeros_like(offsets)
    point = np.repeat(median[..., None], 3, axis=-1)  # (N, H, D, 3): a zero-width band, scored by |y − median|
    n_q = len(quantiles)
    for k in range(n_q // 2):
        half = conformal_offsets(point, actuals, (quantiles[k], 0.5, quantiles[n_q - 1 - k]), scale)[:, 2]  # (D,)
        floor[..., k] = floor[..., n_q - 1 - k] = FLOOR_SHARE * np.maximum(half, 1e-3)[None] * scale  # (H, D), > 0
    _warn_if_few(forecasts.shape[0], quantiles[-1] - quantiles[0])
    return Calibration(offsets, floor)


def step_scale(median: np.ndarray, actuals: np.ndarray) -> np.ndarray:
    """The error scale (H, D) of each step: the RMSE of the median forecasts (N, H, D) at that step, never below an earlier step's.

    Per step, so that the band follows the error's growth over the horizon; the running maximum keeps a noisy
    step from narrowing the band below its predecessors'. A step with no error seen takes the channel's largest.
    """
    err2 = (median - actuals) ** 2
    seen = ~np.isnan(err2)
    total, count = np.where(seen, err2, 0.0).sum(axis=0), seen.sum(axis=0)  # (H, D)
    with np.errstate(invalid="ignore", divide="ignore"):
        rmse = np.sqrt(total / count)
    rmse = np.fmax.accumulate(np.where(rmse > 0, rmse, np.nan), axis=0)  # NaN until a step with an error
    fallback = np.nanmax(rmse, axis=0, initial=0.0)  # (D,): the channel's largest
    fallback = np.where(fallback > 0, fallback, 1.0)
    return np.where(np.isnan(rmse), fallback[None], rmse)


def _warn_if_few(n_windows: int, coverage: float) -> None:
    needed = math.ceil(round(MIN_WINDOWS_PER_MISS / (1 - coverage), 9))  # round: 2 / (1 - 0.8) is 10.000000000000002
    if n_windows < needed:
        warnings.warn(
            f"only {n_windows} validation windows to calibrate the {coverage:.0%} intervals, fewer than {needed}: their "
            f"coverage is uncertain; use a larger val_size or a longer series",
            UserWarning,
            stacklevel=5,  # the caller of Forecaster.fit (through _finish and calibrate)
        )


def apply_offsets(forecasts: torch.Tensor, offsets: torch.Tensor, median: int, floor: torch.Tensor | None = None) -> torch.Tensor:
    """Quantile forecasts (..., [H,] D, Q) moved by `offsets` ([H,] D, Q), lower levels kept ≤ the median ≤ upper ones.

    The median is unchanged; an interval narrowed past it collapses onto it — or, with a `floor` (the
    shape of `offsets`), stops at `floor` from it — and each side is re-sorted so that levels never cross.
    """
    moved = forecasts + offsets
    center = moved[..., median : median + 1]
    lower, upper = torch.minimum(moved[..., :median], center), torch.maximum(moved[..., median + 1 :], center)
    if floor is not None:
        lower = torch.minimum(lower, center - floor[..., :median])
        upper = torch.maximum(upper, center + floor[..., median + 1 :])
    lower, upper = lower.sort(dim=-1).values, upper.sort(dim=-1).values
    return torch.cat([lower, center, upper], dim=-1)
