"""Trainability diagnostics: sharpness, attention entropy and the nuclear norm of the attention.

These are the quantities of the paper's section 2 (Ilbert et al., ICML 2024), computed so that they
mean what their names say and work on any model and data set:

- **sharpness** is the largest eigenvalue λmax of the Hessian of the *mean* training loss with respect
  to the trainable parameters, found by Lanczos iteration on Hessian-vector products (double
  back-propagation; the Hessian is never formed). The original SAMformer code's "sharpness" is not
  λmax: it returns a gradient-weighted quantity on a *summed* loss, so its values (≈1e8–1e12) are not
  comparable with these.
- **attention entropy** is the Shannon entropy (natural log) of each row of the D×D channel attention,
  averaged over rows and samples: ln D for uniform attention, 0 when every channel attends to one.
- **nuclear norm** is the sum of the singular values of the D×D attention, averaged over samples.

All three are computed on a fixed subset of training windows (`fixed_subset`: evenly spaced, no
randomness), so that values from one epoch to the next are comparable. `diagnostics_callback` builds a
`samformer.training.fit.fit` callback that logs them into every epoch's record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any, Protocol

import torch
from torch import nn

from samformer.errors import SamformerError
from samformer.metrics import mse
from samformer.nn.model import SAMformer


class WindowsLike(Protocol):
    """What the diagnostics need from a split: `samformer.data.series.Windows` or `samformer.experiments.toy.PairWindows`."""

    def __len__(self) -> int: ...

    def batch(self, index: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]: ...


def fixed_subset(windows: WindowsLike, n_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (n, D, L) and targets (n, D, H) of `n_samples` evenly spaced windows (all if fewer)."""
    if n_samples < 1:
        raise SamformerError(f"n_samples must be a positive integer, got {n_samples}")
    n = len(windows)
    index = torch.linspace(0, n - 1, min(n_samples, n)).round().long()
    return windows.batch(index)


def _predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Forecast (B, D, H) from channels-first input (B, D, L) with a SAMformer or any such module."""
    forward = getattr(model, "forward_channels_first", None)
    return forward(x) if forward is not None else model(x)


def lanczos_top_eigenvalue(
    matvec: Callable[[torch.Tensor], torch.Tensor], dim: int, max_iter: int = 30, tol: float = 1e-4, seed: int = 0
) -> tuple[float, int]:
    """Largest eigenvalue of a symmetric operator given only its products with vectors.

    Lanczos with full re-orthogonalisation, in float64. Stops when the Ritz residual bound
    |β_k · s_k| falls below `tol` · |θ| (θ the top Ritz value), or after `max_iter` products.

    Args:
        matvec: v (dim,) -> A v (dim,), A symmetric.
        dim: size of the vectors.
        max_iter: maximum number of products.
        tol: relative tolerance on the residual bound.
        seed: seeds the random start vector.

    Returns:
        The top Ritz value and the number of products used.
    """
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(dim, generator=gen, dtype=torch.float64)
    q /= q.norm()
    basis: list[torch.Tensor] = [q]
    alphas: list[torch.Tensor] = []
    betas: list[torch.Tensor] = []
    theta = torch.zeros((), dtype=torch.float64)
    for k in range(min(max_iter, dim)):
        w = matvec(basis[-1]).to(torch.float64)
        alphas.append(w @ basis[-1])
        Q = torch.stack(basis)  # (k+1, dim)
        for _ in range(2):  # twice is enough to keep the basis orthogonal in floating point
            w = w - Q.T @ (Q @ w)
        beta = w.norm()
        T = torch.diag(torch.stack(alphas))
        if betas:
            off = torch.stack(betas)
            T = T + torch.diag(off, 1) + torch.diag(off, -1)
        evals, evecs = torch.linalg.eigh(T)  # ascending
        theta = evals[-1]
        if beta * evecs[-1, -1].abs() <= tol * theta.abs() or beta <= 1e-12 * max(theta.abs().item(), 1.0):
            return theta.item(), k + 1
        betas.append(beta)
        basis.append(w / beta)
    return theta.item(), min(max_iter, dim)


def hessian_vector_product(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    params: Sequence[torch.Tensor],
    batch_size: int = 256,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = mse,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """v ↦ H v for H the Hessian of the mean loss over (x, y) w.r.t. `params` (v flat, in float64).

    The loss is evaluated in chunks of `batch_size` samples, each weighted by its share of the samples,
    so the product is that of the whole subset's mean loss whatever the chunking.
    """
    n = x.shape[0]
    sizes = [p.numel() for p in params]

    def matvec(v: torch.Tensor) -> torch.Tensor:
        vs = [part.view_as(p).to(p.dtype) for part, p in zip(torch.split(v.to(params[0].device), sizes), params, strict=True)]
        total = torch.zeros(sum(sizes), dtype=torch.float64, device=params[0].device)
        for start in range(0, n, batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            with model.plain_modules() if isinstance(model, SAMformer) else nullcontext():  # second derivatives
                loss = loss_fn(_predict(model, xb), yb) * (xb.shape[0] / n)
                grads = torch.autograd.grad(loss, params, create_graph=True)
            dot = sum((g * u).sum() for g, u in zip(grads, vs, strict=True))
            hv = torch.autograd.grad(dot, params)
            total += torch.cat([h.reshape(-1) for h in hv]).to(torch.float64)
        return total.cpu()

    return matvec


def sharpness(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    max_iter: int = 30,
    tol: float = 1e-4,
    batch_size: int = 256,
    seed: int = 0,
) -> float:
    """λmax of the Hessian of the mean MSE of `model` on (x (N, D, L), y (N, D, H)).

    With respect to the parameters that require grad; the model is put in eval mode meanwhile (so
    σReparam's power iteration does not move) and restored afterwards. See the module docstring for why
    this differs from the original code's "sharpness".
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise SamformerError("the model has no trainable parameters, so its loss has no Hessian")
    device = params[0].device
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            matvec = hessian_vector_product(model, x.to(device), y.to(device), params, batch_size)
            value, _ = lanczos_top_eigenvalue(matvec, sum(p.numel() for p in params), max_iter, tol, seed)
    finally:
        model.train(was_training)
    return value


def attention_entropy(attn: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of each attention matrix, averaged over its rows: (..., D, D) -> (...).

    Rows are probability vectors; 0 · log 0 counts as 0.
    """
    return -torch.special.xlogy(attn, attn).sum(dim=-1).mean(dim=-1)


def nuclear_norm(attn: torch.Tensor) -> torch.Tensor:
    """Sum of the singular values of each attention matrix: (..., D, D) -> (...)."""
    return torch.linalg.matrix_norm(attn, ord="nuc")


@torch.no_grad()
def attention_statistics(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> dict[str, float]:
    """Mean attention entropy and mean nuclear norm of the model's (B, D, D) attention on x (N, D, L).

    The model must accept `forward_channels_first(x, return_attention=True)` and return an attention
    matrix (SAMformer does, unless built without attention).
    """
    forward = getattr(model, "forward_channels_first", None)
    if forward is None:
        raise SamformerError(f"{type(model).__name__} has no forward_channels_first(x, return_attention=True); use a SAMformer")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    entropies, norms = [], []
    try:
        for start in range(0, x.shape[0], batch_size):
            _, attn = forward(x[start : start + batch_size].to(device), return_attention=True)
            if attn is None:
                raise SamformerError("the model has no attention block (attention=False), so it has no attention statistics")
            entropies.append(attention_entropy(attn.double()))
            norms.append(nuclear_norm(attn.double()))
    finally:
        model.train(was_training)
    return {"attention_entropy": torch.cat(entropies).mean().item(), "nuclear_norm": torch.cat(norms).mean().item()}


def diagnostics_callback(
    windows: WindowsLike,
    n_samples: int = 512,
    with_sharpness: bool = True,
    max_iter: int = 20,
    tol: float = 1e-3,
    batch_size: int = 256,
    seed: int = 0,
    sharpness_every: int = 1,
    last_epoch: int | None = None,
) -> Callable[[nn.Module, dict[str, Any]], None]:
    """A `fit` callback that adds the diagnostics to each epoch's record.

    Adds `sharpness` (when `with_sharpness`), `attention_entropy`, `nuclear_norm` (for models with
    attention) and `diagnostics_seconds`, all on the same `fixed_subset(windows, n_samples)`, typically
    the training windows. `max_iter` and `tol` bound the Lanczos iteration. λmax costs far more than the
    attention statistics, so it can be measured only on epochs that are multiples of `sharpness_every`
    (epoch 0, a record made before training, counts as one) and on `last_epoch`; the attention
    statistics are logged every epoch.
    """
    if not isinstance(sharpness_every, int) or sharpness_every < 1:
        raise SamformerError(f"sharpness_every must be a positive integer, got {sharpness_every!r}")
    x, y = fixed_subset(windows, n_samples)

    def callback(model: nn.Module, record: dict[str, Any]) -> None:
        started = time.perf_counter()
        epoch = record.get("epoch", 0)
        if with_sharpness and (epoch % sharpness_every == 0 or epoch == last_epoch):
            record["sharpness"] = sharpness(model, x, y, max_iter=max_iter, tol=tol, batch_size=batch_size, seed=seed)
        if getattr(model, "attention", None) is not None:
            record.update(attention_statistics(model, x))
        record["diagnostics_seconds"] = time.perf_counter() - started

    return callback
