"""SAM around Adam for a `StackedSAMformer`: each model's own perturbation, Adam state and settings.

Every model j of the stack gets exactly what `samformer.training.sam.SAM` wrapping `torch.optim.Adam` gives a
single model: ε_j = rho_j · g_j / (‖g_j‖ + 1e-12), the norm over all of model j's parameters (ASAM:
ε_j = rho_j · w_j² g_j / (‖|w_j| ⊙ g_j‖ + 1e-12)); then Adam's update with its own learning rate and L2
weight decay, bias correction, β = (0.9, 0.999), eps 1e-8, by the kernel `torch.optim.Adam(fused=True)`
runs (through its public functional form, `torch.optim.adam.adam`). The parameters and Adam's moments are laid
out as the stack's blocks, so a step is a few operations per parameter block whatever k is.
A model trained without SAM is a model with rho 0: its "perturbed" gradient is its gradient at w.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.optim.adam import adam

from samformer.nn.stacked import StackedSAMformer
from samformer.training.config import TrainConfig

BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults, which `train.build_optimizer` uses
ADAM_EPS = 1e-8


class StackedSAM:
    """Adam, inside SAM, over the parameter blocks of `stack`, model j with the settings of `cfgs[j]`."""

    def __init__(self, stack: StackedSAMformer, cfgs: Sequence[TrainConfig]) -> None:
        flat = stack.flat
        self.stack = stack
        self.rho = torch.tensor([c.rho if c.sam else 0.0 for c in cfgs], dtype=flat.dtype, device=flat.device)  # (k,)
        self.adaptive = torch.tensor([c.sam and c.adaptive for c in cfgs], device=flat.device)  # (k,) bool
        self.weight_decay = [c.weight_decay for c in cfgs]
        self.lr = [c.lr for c in cfgs]
        self.sam = any(c.sam for c in cfgs)  # without SAM anywhere, one pass per step
        self.exp_avg = torch.zeros_like(flat, memory_format=torch.contiguous_format)
        self.exp_avg_sq = torch.zeros_like(self.exp_avg)
        self.step = torch.zeros((), dtype=torch.float32, device=flat.device)  # as torch.optim.Adam keeps it; shared, as all step together
        self._spare: torch.Tensor | None = None  # holds w + ε between `perturb` and `restore`, else scratch

    def set_lr(self, lrs: Sequence[float]) -> None:
        """This epoch's learning rate of each model."""
        self.lr = list(lrs)

    @torch.no_grad()
    def perturb(self, grads: list[torch.Tensor]) -> None:
        """Move every model to w + ε from its gradient `grads` (the stack's blocks), until `restore`.

        w + ε is written to a second buffer that the stack's parameter then points to, so w itself is
        kept untouched (no copy of it taken, none written back: two passes over the weights fewer).
        """
        stack, k = self.stack, len(self.stack)
        params = stack.blocks()
        adaptive = bool(self.adaptive.any())
        norms = []
        for p, g in zip(params, grads, strict=True):
            direction = torch.where(_per_model(self.adaptive, p), p.abs() * g, g) if adaptive else g
            norms.append(torch.linalg.vector_norm(direction.reshape(k, -1), dim=1))  # (k,): ‖g‖ of this parameter, per model
        scale = self.rho / (torch.linalg.vector_norm(torch.stack(norms), dim=0) + 1e-12)  # (k,): each model's own ‖g‖
        if self._spare is None or self._spare.shape != stack.flat.shape:
            self._spare = torch.empty_like(stack.flat.data)
        for p, g, out in zip(params, grads, stack.blocks(self._spare), strict=True):
            eps = torch.where(_per_model(self.adaptive, p), g * p * p, g) if adaptive else g
            torch.addcmul(p, eps, _per_model(scale, p), out=out)  # w + ε, as SAM adds ε = g · scale to w
        self._spare, stack.flat.data = stack.flat.data, self._spare

    @torch.no_grad()
    def restore(self) -> None:
        """Back to w exactly (the buffer that holds it again)."""
        self._spare, self.stack.flat.data = self.stack.flat.data, self._spare

    @torch.no_grad()
    def adam_step(self, grads: list[torch.Tensor]) -> None:
        """Adam's update of every model with its gradient `grads` (the blocks' gradients, taken at w + ε under SAM).

        `torch.optim.adam.adam(fused=True)`, the public functional form of `torch.optim.Adam(fused=True)` (which
        `train.build_optimizer` chooses for fp32), once per group of models sharing a learning rate and weight decay.
        It is given each model's row of each block as its own tensor, so that the kernel splits a model's parameter
        into vector lanes and tail exactly as for the model alone: the same rounding, the same weights bit for bit
        (whole blocks would round some elements in the other path, ~1 ulp apart).
        """
        blocks = {"params": self.stack.blocks(), "grads": grads}
        blocks.update(exp_avgs=self.stack.blocks(self.exp_avg), exp_avg_sqs=self.stack.blocks(self.exp_avg_sq))
        groups: dict[tuple[float, float], list[int]] = {}
        for j, setting in enumerate(zip(self.lr, self.weight_decay, strict=True)):
            groups.setdefault(setting, []).append(j)
        for (lr, weight_decay), models in groups.items():
            rows = {name: [block[j] for block in tensors for j in models] for name, tensors in blocks.items()}
            # One step counter per tensor, as Adam keeps one per parameter: `adam` advances each by one before the update.
            steps = list(self.step.expand(len(rows["params"])).clone().unbind())
            adam(
                rows["params"], rows["grads"], rows["exp_avgs"], rows["exp_avg_sqs"], [], steps, fused=True,
                amsgrad=False, beta1=BETAS[0], beta2=BETAS[1], lr=lr, weight_decay=weight_decay, eps=ADAM_EPS, maximize=False,
            )  # fmt: skip
        self.step += 1

    def keep(self, index: torch.Tensor) -> None:
        """Keep only the models at `index` (1-d), in that order: their optimizer state and the stack's parameters."""
        self.exp_avg, self.exp_avg_sq = (self.stack.select(t, index) for t in (self.exp_avg, self.exp_avg_sq))
        self.rho, self.adaptive = self.rho.index_select(0, index), self.adaptive.index_select(0, index)
        picked = index.tolist()
        self.lr, self.weight_decay = [self.lr[j] for j in picked], [self.weight_decay[j] for j in picked]
        self.stack.keep(index)


def _per_model(values: torch.Tensor, block: torch.Tensor) -> torch.Tensor:
    """A (k,) tensor shaped to broadcast over a (k, *shape) block."""
    return values.view(-1, *[1] * (block.ndim - 1))
