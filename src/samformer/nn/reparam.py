"""σReparam: linear layers with spectrally normalised, learnably rescaled weights.

Zhai et al., "Stabilizing Transformer Training by Preventing Attention Entropy Collapse" (ICML 2023):
every weight matrix W is used as Ŵ = (γ / σ(W)) · W, where σ(W) is the spectral norm of W estimated
by one step of power iteration per training forward pass (the singular vectors are kept between
steps) and γ is a learnable scalar. This reparametrises the *weights*, as the paper defines it; the
original SAMformer code's "spectrans" variant instead divides the *input* by its top singular value.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class SigmaReparamLinear(nn.Module):
    """A drop-in `nn.Linear` whose weight is used as (γ / σ(W)) · W.

    γ starts at 1, as in Zhai et al., so the layer starts with unit spectral norm.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: whether to learn an additive bias.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.gamma = nn.Parameter(torch.ones(()))
        # Left/right singular vector estimates, refined by one power iteration per training step.
        self.register_buffer("u", torch.zeros(out_features))
        self.register_buffer("v", torch.zeros(in_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.Linear's initialisation, then a converged estimate of the top singular vectors."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias, -bound, bound)
        if not self.weight.is_meta:  # a model built on the meta device (shapes only) has no values to iterate on
            self.refresh_singular_vectors(iterations=50)

    @torch.no_grad()
    def refresh_singular_vectors(self, iterations: int = 1) -> None:
        """Run power iteration on W to refine the stored singular vectors (in place)."""
        if not torch.any(self.v):  # first call: start from a fixed, data-independent direction
            self.v.copy_(F.normalize(torch.ones_like(self.v), dim=0))
        w = self.weight.detach().float()
        v = self.v.float()
        for _ in range(iterations):
            u = F.normalize(w @ v, dim=0)
            v = F.normalize(w.T @ u, dim=0)
        self.u.copy_(u)
        self.v.copy_(v)

    def spectral_norm(self) -> torch.Tensor:
        """σ(W) ≈ uᵀ W v, differentiable in W (u and v are treated as constants).

        Written as an elementwise product and a sum, so it stays fp32 under autocast (a matrix-vector
        product would be cast to bf16 there).
        """
        return (self.u[:, None] * self.weight * self.v[None, :]).sum()

    def effective_weight(self) -> torch.Tensor:
        """The weight actually applied: (γ / σ(W)) · W."""
        return self.weight * (self.gamma / self.spectral_norm())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and torch.is_grad_enabled():
            self.refresh_singular_vectors(iterations=1)
        return F.linear(x, self.effective_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
