"""SAM around Adam for a `StackedSAMformer`: each model's own perturbation, Adam state and settings.

Every model j of the stack gets exactly what `samformer.sam.SAM` wrapping `torch.optim.Adam` gives a
single model: ε_j = rho_j · g_j / (‖g_j‖ + 1e-12), the norm over all of model j's parameters (ASAM:
ε_j = rho_j · w_j² g_j / (‖|w_j| ⊙ g_j‖ + 1e-12)); then Adam's update with its own learning rate and L2
weight decay, bias correction, β = (0.9, 0.999), eps 1e-8, as `torch.optim.Adam` computes it. The
parameters, gradients and Adam's moments are (k, P) tensors, so a step is a few operations whatever k is.
A model trained without SAM is a model with rho 0: its "perturbed" gradient is its gradient at w.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from samformer.stacked import StackedSAMformer
from samformer.train import TrainConfig

BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults, which `train.build_optimizer` uses
ADAM_EPS = 1e-8


class StackedSAM:
    """Adam, inside SAM, over the (k, P) parameters of `stack`, model j with the settings of `cfgs[j]`."""

    def __init__(self, stack: StackedSAMformer, cfgs: Sequence[TrainConfig]) -> None:
        flat = stack.flat
        self.stack = stack
        column = {"dtype": flat.dtype, "device": flat.device}
        self.rho = torch.tensor([[c.rho if c.sam else 0.0] for c in cfgs], **column)  # (k, 1)
        self.adaptive = torch.tensor([[c.sam and c.adaptive] for c in cfgs], device=flat.device)  # (k, 1) bool
        self.weight_decay = torch.tensor([[c.weight_decay] for c in cfgs], **column)
        self.lr = torch.tensor([[c.lr] for c in cfgs], **column)
        self.sam = any(c.sam for c in cfgs)  # without SAM anywhere, one pass per step
        self.exp_avg = torch.zeros_like(flat)
        self.exp_avg_sq = torch.zeros_like(flat)
        self.steps = 0  # every model in the stack has taken the same number of steps

    def set_lr(self, lrs: Sequence[float]) -> None:
        """This epoch's learning rate of each model."""
        self.lr = torch.tensor([[lr] for lr in lrs], dtype=self.lr.dtype, device=self.lr.device)

    @torch.no_grad()
    def perturb(self, grad: torch.Tensor) -> torch.Tensor:
        """Move every model to w + ε from its gradient `grad` (k, P); returns an exact copy of w for `restore`."""
        flat = self.stack.flat
        adaptive = bool(self.adaptive.any())
        direction = torch.where(self.adaptive, flat.abs() * grad, grad) if adaptive else grad
        norm = torch.linalg.vector_norm(direction, dim=1, keepdim=True)  # (k, 1): each model's own ‖g‖
        eps = torch.where(self.adaptive, grad * flat * flat, grad) if adaptive else grad
        backup = flat.detach().clone()
        flat.add_(eps * (self.rho / (norm + 1e-12)))
        return backup

    @torch.no_grad()
    def restore(self, backup: torch.Tensor) -> None:
        """Back to w exactly."""
        self.stack.flat.copy_(backup)

    @torch.no_grad()
    def adam_step(self, grad: torch.Tensor) -> None:
        """Adam's update of every model with its gradient `grad` (k, P) (the one taken at w + ε under SAM)."""
        flat = self.stack.flat
        beta1, beta2 = BETAS
        self.steps += 1
        if bool((self.weight_decay != 0).any()):
            grad = grad + self.weight_decay * flat  # L2 decay, as torch.optim.Adam (not AdamW)
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1**self.steps
        bias_correction2_sqrt = (1 - beta2**self.steps) ** 0.5
        denom = (self.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(ADAM_EPS)
        flat.addcdiv_(self.exp_avg * (self.lr / -bias_correction1), denom)

    def keep(self, index: torch.Tensor) -> None:
        """Keep the state of the models at `index` only (after `StackedSAMformer.keep` with the same index)."""
        for name in ("rho", "adaptive", "weight_decay", "lr", "exp_avg", "exp_avg_sq"):
            setattr(self, name, getattr(self, name).index_select(0, index))
