"""Sharpness-Aware Minimization (Foret et al., ICLR 2021) as a `torch.optim.Optimizer`.

SAM looks for weights whose whole neighbourhood has low loss. Each step takes two gradients:
g at w, then g' at w + ε with ε = rho · g / ‖g‖ (ASAM, Kwon et al. 2021: ε_i = rho · w_i² g_i /
‖|w| ⊙ g‖); the weights go back to w and the base optimizer steps with g'.

Two ways to drive it:

    loss_fn(model(x), y).backward()
    sam.first_step(zero_grad=True)   # w -> w + ε
    loss_fn(model(x), y).backward()
    sam.second_step(zero_grad=True)  # w + ε -> w, then the base step with g'

or `sam.step(closure)` where `closure` zeroes the gradients, computes the loss and back-propagates.
`step` runs the closure for both passes (PyTorch Lightning's automatic optimisation calls
`optimizer.step(closure)` before any backward pass), unless `first_step` was already called: then it
runs it once, at w + ε, and completes the step. It decides by that explicit state, never by whether
gradients happen to be present (zeroed-in-place gradients are not a first pass).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from samformer.checks import check_bool, check_real
from samformer.errors import ConfigError, shown


class SAM(torch.optim.Optimizer):
    """Wrap a base optimizer with sharpness-aware steps.

    Args:
        params: parameters (or parameter groups) to optimise.
        base_optimizer: the optimizer class to wrap, e.g. `torch.optim.Adam`.
        rho: radius of the neighbourhood (per group, may be overridden in a group).
        adaptive: use ASAM's scale-invariant perturbation.
        **base_kwargs: passed to `base_optimizer` (lr, weight_decay, ...).
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        base_optimizer: type[torch.optim.Optimizer],
        rho: float = 0.05,
        adaptive: bool = False,
        **base_kwargs: Any,
    ) -> None:
        rho, adaptive = check_real("rho", rho), check_bool("adaptive", adaptive)
        if not (isinstance(base_optimizer, type) and issubclass(base_optimizer, torch.optim.Optimizer)):
            raise ConfigError(f"base_optimizer must be a torch.optim.Optimizer class such as torch.optim.Adam, got {shown(base_optimizer)}")
        try:
            super().__init__(params, dict(rho=rho, adaptive=adaptive, **base_kwargs))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"SAM cannot optimise these params ({exc}); pass model.parameters() or a list of parameter groups") from None
        try:
            self.base_optimizer = base_optimizer(self.param_groups, **base_kwargs)
        except (TypeError, ValueError) as exc:
            options = ", ".join(f"{k}={shown(v)}" for k, v in base_kwargs.items()) or "no options"
            raise ConfigError(f"{base_optimizer.__name__} refused {options} ({exc}); pass the options it accepts") from None
        # One list of groups shared with the base optimizer, so LR schedulers act on both.
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)
        self._perturbed: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []  # (parameters, their w) per group
        self._at_perturbed_point = False  # set by first_step, cleared by second_step

    def _params_with_grad(self, group: dict[str, Any]) -> list[torch.Tensor]:
        return [p for p in group["params"] if p.grad is not None]

    @torch.no_grad()
    def _grad_norm(self, groups: list[tuple[dict[str, Any], list[torch.Tensor]]]) -> torch.Tensor:
        """‖g‖ over the given (group, parameters with a gradient) pairs (‖|w| ⊙ g‖ for ASAM groups)."""
        grads, scaled = [], []
        for group, params in groups:
            if group["adaptive"]:
                scaled.extend(torch._foreach_mul([p.abs() for p in params], [p.grad for p in params]))
            else:
                grads.extend(p.grad for p in params)
        norms = [norm for tensors in (grads, scaled) if tensors for norm in torch._foreach_norm(tensors)]
        if not norms:
            return torch.zeros(())
        device = norms[0].device
        if any(n.device != device for n in norms):  # parameters spread over devices
            norms = [n.to(device) for n in norms]
        return torch.linalg.vector_norm(torch.stack(norms))

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Move to w + ε using the gradients currently stored; w itself is kept aside, untouched, for the restore.

        w + ε is built in new tensors that the parameters are switched to (`p.data`), so neither w nor ε
        needs a copy: one pass over the gradients (ε) and one over the weights (w + ε), whatever the number
        of tensors (`torch._foreach_*`).
        """
        groups = [(group, params) for group in self.param_groups if (params := self._params_with_grad(group))]
        grad_norm = self._grad_norm(groups)
        self._perturbed = []
        for group, params in groups:
            scale = group["rho"] / (grad_norm + 1e-12)  # a tensor: no host sync on accelerators
            grads = [p.grad for p in params]
            # ε is built in the gradient buffers when they are about to be dropped anyway: no allocation.
            eps = grads if zero_grad else torch._foreach_mul(grads, 1.0)
            if group["adaptive"]:
                torch._foreach_mul_(eps, params)
                torch._foreach_mul_(eps, params)
            torch._foreach_mul_(eps, scale)
            shifted = torch._foreach_add(params, eps)  # w + ε, rounded as w.add_(ε) would be
            self._perturbed.append((params, [p.data for p in params]))
            _point_to(params, shifted)
        self._at_perturbed_point = True
        if zero_grad:
            self.zero_grad(set_to_none=True)

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Switch the parameters back to w (bit for bit: the same tensors), then let the base optimizer
        step with the gradients taken at w + ε."""
        for params, originals in self._perturbed:
            _point_to(params, originals)
        self._perturbed = []
        self._at_perturbed_point = False
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad(set_to_none=True)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop (or zero) every parameter's gradient; a plain loop, as SAM calls it twice per step."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_().requires_grad_(False)
                    p.grad.zero_()

    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:  # type: ignore[override]
        """One full SAM step driven by `closure` (zero grads, forward, backward, return the loss).

        The first pass (the closure at w, then `first_step`) is skipped only when `first_step` has
        already been called for this step. Returns the loss of the first pass (at w) when this call
        computed it, else None.
        """
        if closure is None:
            raise RuntimeError(
                "SAM.step needs a closure that recomputes the loss and calls backward(); or call first_step() and second_step() yourself"
            )
        closure = torch.enable_grad()(closure)
        loss = None
        if not self._at_perturbed_point:
            loss = closure()
            self.first_step(zero_grad=True)
        closure()
        self.second_step(zero_grad=True)
        return loss

    def state_dict(self) -> dict[str, Any]:
        """The base optimizer's state and the shared groups (rho, adaptive, lr, ...).

        The weights kept aside by `first_step` are not state: they exist only until `second_step`.
        """
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups


def _point_to(params: list[torch.Tensor], values: list[torch.Tensor]) -> None:
    """Make each parameter hold the matching tensor (same shape and dtype), without copying it."""
    for p, value in zip(params, values, strict=True):
        p.data = value
