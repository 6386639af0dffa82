"""Quantile forecasts from a SAMformer: one linear head per quantile level, trained with the pinball loss.

The underlying `SAMformer` forecasts `horizon · Q` values per channel; they are read as Q quantiles of
each of the `horizon` steps. RevIN's inverse is per channel and affine, so it applies to every quantile
alike. The Q outputs of a step are sorted, so quantiles never cross (sorting keeps the pinball
gradient: each output receives the gradient of the level it is sorted into).
"""

from __future__ import annotations

import itertools
from dataclasses import replace

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
