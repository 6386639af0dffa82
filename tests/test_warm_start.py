"""A SAMformer started at seasonal naive forecasts exactly what seasonal naive does, and still trains."""

import numpy as np
import pytest
import torch

from samformer import SAMformer
from samformer.errors import ConfigError
from samformer.forecasting.baselines import seasonal_naive_forecasts
from samformer.nn.quantile import QuantileSAMformer
from samformer.nn.warm_start import seasonal_naive_weight, start_from_seasonal_naive


def test_the_weight_selects_the_last_season_by_hand():
    # L 5, H 4, season 2: steps 0..3 read positions 3, 4, 3, 4
    expected = torch.zeros(4, 5)
    expected[[0, 1, 2, 3], [3, 4, 3, 4]] = 1.0
    torch.testing.assert_close(seasonal_naive_weight(5, 4, 2), expected)


@pytest.mark.parametrize("options", [{}, {"value_dim": 4}, {"revin": False}, {"attention": False}])
def test_the_started_network_forecasts_seasonal_naive_in_original_units(options):
    torch.manual_seed(0)
    L, H, D, season = 12, 7, 3, 5
    model = start_from_seasonal_naive(SAMformer(D, L, H, d_model=4, **options), season).double()
    x = torch.randn(6, L, D, dtype=torch.float64) * 3 + 10  # (B, L, D), far from standardised
    expected = np.stack([seasonal_naive_forecasts(window, np.array([L]), H, season)[0] for window in x.numpy()])
    np.testing.assert_allclose(model(x).detach().numpy(), expected, rtol=1e-8)  # float64 rounding through RevIN and back


def test_every_parameter_of_the_started_network_can_still_learn():
    torch.manual_seed(0)
    model = start_from_seasonal_naive(SAMformer(3, 12, 4, d_model=4), 6)
    x, y = torch.randn(8, 12, 3), torch.randn(8, 4, 3)
    for _ in range(2):  # queries and keys get a gradient once the zeroed value map has moved
        model.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_a_season_longer_than_the_lookback_and_sigma_reparam_are_refused():
    with pytest.raises(ConfigError, match="season=13 must be between 1 and the look-back seq_len=12"):
        start_from_seasonal_naive(SAMformer(2, 12, 4), 13)
    with pytest.raises(ConfigError, match="σReparam"):
        start_from_seasonal_naive(SAMformer(2, 12, 4, sigma_reparam=True), 4)


def test_every_level_of_a_quantile_network_starts_at_seasonal_naive():
    torch.manual_seed(0)
    L, H, D, season, levels = 12, 5, 2, 4, (0.1, 0.5, 0.9)
    net = start_from_seasonal_naive(SAMformer(D, L, H * len(levels), d_model=4), season, outputs_per_step=len(levels))
    model = QuantileSAMformer(net, levels).double()
    x = torch.randn(3, L, D, dtype=torch.float64) + 5  # (B, L, D)
    expected = np.stack([seasonal_naive_forecasts(window, np.array([L]), H, season)[0] for window in x.numpy()])  # (B, H, D)
    out = model(x).detach().numpy()  # (B, H, D, Q)
    for q in range(len(levels)):
        np.testing.assert_allclose(out[..., q], expected, rtol=1e-8)
