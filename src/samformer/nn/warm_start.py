"""Start a SAMformer at the seasonal-naive forecast, so that training learns the correction to it.

Seasonal naive repeats the last season: step h (0-based) of the horizon is input position L − s + (h mod s).
That is a linear map L → H whose rows each hold a single 1, so the shared linear forecaster can *be* it. With the
attention's last map (values, or the output projection) at zero the attended residual is zero, and RevIN's
normalisation commutes with a map whose rows sum to 1: the network's first forecast is exactly seasonal naive
in original units. Gradients still reach every parameter (the zero map first, the queries and keys once it
has moved), so training starts from the baseline instead of from noise — a lever for short seasonal series.
"""

from __future__ import annotations

import torch
from torch import nn

from samformer.errors import ConfigError
from samformer.nn.model import SAMformer


def seasonal_naive_weight(seq_len: int, horizon: int, season: int) -> torch.Tensor:
    """The (H, L) matrix mapping a look-back to its seasonal-naive forecast: row h selects L − season + (h mod season)."""
    if not 1 <= season <= seq_len:
        raise ConfigError(f"season={season} must be between 1 and the look-back seq_len={seq_len}")
    weight = torch.zeros(horizon, seq_len)
    steps = torch.arange(horizon)
    weight[steps, seq_len - season + steps % season] = 1.0
    return weight


@torch.no_grad()
def start_from_seasonal_naive(model: SAMformer, season: int, outputs_per_step: int = 1) -> SAMformer:
    """Set `model`'s forecaster to seasonal naive and its attended residual to zero (in place); returns `model`.

    `outputs_per_step`: Q for a quantile network, whose horizon is H·Q outputs laid out step-major (every level of a
    step starts at that step's seasonal-naive value). Needs plain linear maps (no σReparam on the forecaster or the
    attention's last map): a σReparam map has no zero or selector form.
    """
    cfg = model.config
    last = None if model.attention is None else (model.attention.output or model.attention.value)
    for name, layer in (("forecaster", model.forecaster), ("attention", last)):
        if layer is not None and type(layer) is not nn.Linear:
            raise ConfigError(f"start_from_seasonal_naive needs a plain linear {name}; σReparam maps cannot start there")
    weight = seasonal_naive_weight(cfg.seq_len, cfg.horizon // outputs_per_step, season)  # (H, L)
    model.forecaster.weight.copy_(weight.repeat_interleave(outputs_per_step, dim=0))  # (H·Q, L), step-major
    model.forecaster.bias.zero_()
    if last is not None:
        last.weight.zero_()
        last.bias.zero_()
    return model
