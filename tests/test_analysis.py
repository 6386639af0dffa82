"""Diagnostics against independent truths: dense Hessians, closed forms, hand-computed entropies."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import functional_call

from samformer import SAMformer
from samformer.errors import SamformerError
from samformer.experiments.analysis import (
    attention_entropy,
    attention_statistics,
    diagnostics_callback,
    fixed_subset,
    lanczos_top_eigenvalue,
    nuclear_norm,
    sharpness,
)
from samformer.experiments.toy import PairWindows

D, L, H = 3, 8, 4


def small_problem(n: int = 16, seed: int = 0, **model_kwargs) -> tuple[SAMformer, torch.Tensor, torch.Tensor]:
    """A small float64 SAMformer with perturbed weights (attention far from uniform) and random data (N, D, L) / (N, D, H)."""
    torch.manual_seed(seed)
    model = SAMformer(D, L, H, d_model=4, **model_kwargs).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return model, torch.randn(n, D, L, dtype=torch.float64), torch.randn(n, D, H, dtype=torch.float64)


def dense_hessian_top_eigenvalue(model: SAMformer, x: torch.Tensor, y: torch.Tensor) -> float:
    """λmax of the explicitly formed Hessian of the mean MSE w.r.t. the trainable parameters."""
    named = [(n, p.detach()) for n, p in model.named_parameters() if p.requires_grad]
    sizes = [p.numel() for _, p in named]
    model.eval()

    def loss(flat: torch.Tensor) -> torch.Tensor:
        tensors = {n: t.view_as(p) for (n, p), t in zip(named, torch.split(flat, sizes), strict=True)}
        pred = functional_call(model, tensors, (x.transpose(1, 2),), strict=False)  # public layout (B, L, D) -> (B, H, D)
        return torch.mean((pred - y.transpose(1, 2)) ** 2)

    with model.plain_modules():  # autograd through every operation: the fused pass is differentiable once
        hess = torch.autograd.functional.hessian(loss, torch.cat([p.reshape(-1) for _, p in named]), vectorize=True)
    return torch.linalg.eigvalsh(hess)[-1].item()


@pytest.mark.parametrize("kwargs", [{}, {"sigma_reparam": True}, {"value_dim": 2}])
def test_sharpness_is_the_top_eigenvalue_of_the_dense_hessian(kwargs):
    model, x, y = small_problem(**kwargs)
    n_params = sum(p.numel() for p in model.parameters())
    # fewer Lanczos steps than parameters, and chunks (5) that do not divide the 16 samples
    estimate = sharpness(model, x, y, max_iter=n_params // 2, tol=1e-8, batch_size=5)
    assert estimate == pytest.approx(dense_hessian_top_eigenvalue(model, x, y), rel=1e-3)


def test_sharpness_only_differentiates_trainable_parameters():
    model, x, y = small_problem()
    for p in model.attention_parameters():
        p.requires_grad_(False)
    estimate = sharpness(model, x, y, max_iter=60, tol=1e-8)
    assert estimate == pytest.approx(dense_hessian_top_eigenvalue(model, x, y), rel=1e-3)


def test_sharpness_of_a_linear_model_has_a_closed_form():
    # Without attention and RevIN the model is y = x Wᵀ + b on every channel row, so the Hessian of the
    # mean squared error is H identical blocks 2/(N·D·H) · RᵀR, R the rows (x, 1).
    torch.manual_seed(1)
    model = SAMformer(D, L, H, attention=False, revin=False).double()
    x, y = torch.randn(40, D, L, dtype=torch.float64), torch.randn(40, D, H, dtype=torch.float64)
    rows = torch.cat([x.reshape(-1, L), torch.ones(40 * D, 1, dtype=torch.float64)], dim=1)
    expected = 2 / (40 * D * H) * torch.linalg.eigvalsh(rows.T @ rows)[-1].item()
    assert sharpness(model, x, y, max_iter=36, tol=1e-10) == pytest.approx(expected, rel=1e-6)


def test_lanczos_finds_the_largest_not_the_largest_magnitude_eigenvalue():
    # Power iteration would return -10 here; the top eigenvalue is 3.
    eigenvalues = torch.cat([torch.tensor([-10.0, 3.0]), torch.linspace(-2.0, 2.5, 98)]).double()
    q, _ = torch.linalg.qr(torch.randn(100, 100, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    matrix = q @ torch.diag(eigenvalues) @ q.T
    value, steps = lanczos_top_eigenvalue(lambda v: matrix @ v, 100, max_iter=100, tol=1e-9)
    assert value == pytest.approx(3.0, rel=1e-6)
    assert steps < 100


def test_sharpness_leaves_the_model_as_it_was():
    model, x, y = small_problem(sigma_reparam=True)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sharpness(model, x, y, max_iter=5)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # weights and σReparam vectors
    assert all(p.grad is None for p in model.parameters())


def test_entropy_of_uniform_attention_is_log_d_and_of_one_hot_attention_zero():
    d = 7
    uniform = torch.full((2, d, d), 1 / d)
    assert attention_entropy(uniform) == pytest.approx([math.log(d)] * 2)
    permutation = torch.eye(d)[torch.randperm(d)]
    assert attention_entropy(torch.stack([torch.eye(d), permutation])).tolist() == [0.0, 0.0]


def test_entropy_averages_the_rows():
    attn = torch.tensor([[0.5, 0.5], [1.0, 0.0]])  # rows: ln 2 and 0
    assert attention_entropy(attn).item() == pytest.approx(math.log(2) / 2)


def test_nuclear_norm_is_the_sum_of_singular_values():
    attn = torch.softmax(torch.randn(5, 7, 7, dtype=torch.float64), dim=-1)
    assert torch.allclose(nuclear_norm(attn), torch.linalg.svdvals(attn).sum(-1))
    assert nuclear_norm(torch.eye(7)).item() == pytest.approx(7.0)  # a permutation: D singular values of 1
    assert nuclear_norm(torch.full((7, 7), 1 / 7)).item() == pytest.approx(1.0)  # uniform: rank one, σ = 1


def test_attention_statistics_of_a_model_with_constant_scores_are_those_of_uniform_attention():
    model, x, _ = small_problem()
    with torch.no_grad():  # zero queries: every score is 0, so every row of the softmax is uniform
        model.attention.query.weight.zero_()
        model.attention.query.bias.zero_()
    stats = attention_statistics(model, x, batch_size=5)
    assert stats["attention_entropy"] == pytest.approx(math.log(D))
    assert stats["nuclear_norm"] == pytest.approx(1.0)


def test_attention_statistics_of_a_model_without_attention_is_an_error():
    model = SAMformer(D, L, H, attention=False)
    with pytest.raises(ValueError, match="no attention"):
        attention_statistics(model, torch.randn(4, D, L))


def test_fixed_subset_is_evenly_spaced_and_deterministic():
    x = torch.arange(10.0).view(10, 1, 1).expand(10, 1, 3)
    windows = PairWindows(x, x[..., :1])
    first, _ = fixed_subset(windows, 4)
    assert first[:, 0, 0].tolist() == [0.0, 3.0, 6.0, 9.0]
    assert len(fixed_subset(windows, 50)[0]) == 10


def test_callback_logs_the_diagnostics_into_the_record():
    model, x, y = small_problem()
    model.float()
    record = {"epoch": 1}
    diagnostics_callback(PairWindows(x.float(), y.float()), n_samples=8, max_iter=10)(model, record)
    assert {"sharpness", "attention_entropy", "nuclear_norm", "diagnostics_seconds"} <= set(record)
    assert 0.0 <= record["attention_entropy"] <= math.log(D) + 1e-6
    assert 1.0 - 1e-6 <= record["nuclear_norm"] <= D + 1e-6  # row-stochastic: between uniform and a permutation
    without = {"epoch": 1}
    diagnostics_callback(PairWindows(x.float(), y.float()), n_samples=8, with_sharpness=False)(model, without)
    assert "sharpness" not in without and "attention_entropy" in without


def test_callback_measures_sharpness_only_on_the_requested_epochs():
    model, x, y = small_problem()
    model.float()
    callback = diagnostics_callback(PairWindows(x.float(), y.float()), n_samples=8, max_iter=5, sharpness_every=3, last_epoch=5)
    records = [{"epoch": e} for e in range(7)]
    for record in records:
        callback(model, record)
    assert [r["epoch"] for r in records if "sharpness" in r] == [0, 3, 5, 6]  # multiples of 3, and the last epoch
    assert all("attention_entropy" in r for r in records)  # the cheap statistics: every epoch
    with pytest.raises(SamformerError, match="sharpness_every"):
        diagnostics_callback(PairWindows(x.float(), y.float()), sharpness_every=0)
