"""Internal: SAM over Adam on the direct pass, the whole step compiled as one function (`TrainConfig(compile=True)`).

At the paper's batch of 32 an eager step is bounded by the fixed cost of each operation (about 200
small operations per step, see benchmarks/README.md), not by its arithmetic. Compiling the direct
pass alone (`CompiledForwardBackward`) leaves SAM's norm and perturbation, the parameter switches and
Adam to run eagerly between the two compiled passes; compiling the whole step — RevIN's standardisation, loss and
gradients at w, ‖g‖, w + ε, the gradients there and Adam's update of w — lets Inductor fuse all the
elementwise work and leaves Python one call per step.

Adam keeps its state where `torch.optim.Adam` keeps it (`optimizer.base_optimizer.state[p]`: `step`,
`exp_avg`, `exp_avg_sq`), so checkpoints, resuming and the eager steps of other batch shapes (the
ragged last batch) read and continue the same state. The update is Adam's (L2 weight decay added to
the gradient), written with tensors so that a learning-rate schedule does not recompile.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch

from samformer.nn.fused import FusedSettings, FusedWeights, MSEPass, mse_loss_and_gradients, standardized_batch
from samformer.training.sam import SAM


def compiles_whole_step(optimizer: torch.optim.Optimizer) -> bool:
    """Whether `CompiledSAMStep` can run `optimizer`'s steps: SAM over plain `torch.optim.Adam`, one parameter group."""
    if not isinstance(optimizer, SAM) or type(optimizer.base_optimizer) is not torch.optim.Adam or len(optimizer.param_groups) != 1:
        return False
    group = optimizer.param_groups[0]
    return not any(group.get(option, False) for option in ("amsgrad", "maximize", "decoupled_weight_decay", "differentiable"))


def _adam_step_scalars(steps: list[torch.Tensor], lr: float | torch.Tensor, betas: tuple[float, float]) -> torch.Tensor:
    """Adam's per-parameter step size lr / (1 − β1ᵗ) and √(1 − β2ᵗ) for the coming step t = step + 1, as a
    (2, P) float64 tensor. Computed before the compiled step, in Python floats as `torch.optim.Adam` computes them
    (one read of the step counts; nine tensor operations before): inside the step Inductor would recompute both
    powers for every 16 values of every parameter, as it cannot hoist them out of the loop."""
    beta1, beta2 = float(betas[0]), float(betas[1])
    counts = [t + 1 for t in torch.stack(steps).tolist()]  # one read of the P step counts (one sync on a GPU)
    lr = float(lr)
    return torch.tensor([[lr / (1 - beta1**t) for t in counts], [math.sqrt(1 - beta2**t) for t in counts]], dtype=torch.float64)


def _adam_update(params, grads, exp_avgs, exp_avg_sqs, steps, scalars, betas, eps, weight_decay) -> None:
    """Adam's update of `params` in place (torch.optim.Adam's rule, L2 weight decay), `scalars` from `_adam_step_scalars`."""
    beta1, beta2 = betas
    step_sizes, bias_roots = scalars
    for i, (p, g, m, v, t) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs, steps, strict=True)):
        t.add_(1)
        if weight_decay:
            g = g + weight_decay * p
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        denom = (v.sqrt() / bias_roots[i]).add_(eps)
        p.sub_(step_sizes[i] * m / denom)


def _sam_adam_step(standardize, batch, weights: FusedWeights, settings: FusedSettings, state, hyper) -> torch.Tensor:
    """One SAM step over Adam on a batch of the direct pass; returns the loss at w. The function `torch.compile` sees.

    `standardize` and `batch` = (x, y, masks or None) as `fused.MSEPass` holds them; `state` = (exp_avgs,
    exp_avg_sqs, steps, scalars) for the weights that are not None, in `FusedWeights` order, `scalars` from
    `_adam_step_scalars`; `hyper` = (rho, adaptive, betas, eps, weight_decay).
    """
    rho, adaptive, betas, eps, weight_decay = hyper
    z, mean, std, y, y_mask, count = standardized_batch(standardize, *batch, settings.dtype)
    present = [i for i, w in enumerate(weights) if w is not None]
    params = [weights[i] for i in present]
    loss, grads = mse_loss_and_gradients(z, mean, std, y, y_mask, count, weights, settings)
    grads = [grads[i] for i in present]
    # ε = rho g / ‖g‖, or ASAM's rho w² g / ‖|w| g‖ (as `SAM.first_step`)
    scaled = [p.abs() * g for p, g in zip(params, grads, strict=True)] if adaptive else grads
    norm = torch.sqrt(sum((s * s).sum() for s in scaled))
    factor = rho / (norm + 1e-12)
    shifted = list(weights)
    for i, p, g in zip(present, params, grads, strict=True):
        shifted[i] = p + (p * p * g if adaptive else g) * factor
    _, grads_at_shifted = mse_loss_and_gradients(z, mean, std, y, y_mask, count, FusedWeights(*shifted), settings)
    exp_avgs, exp_avg_sqs, steps, scalars = state
    _adam_update(params, [grads_at_shifted[i] for i in present], exp_avgs, exp_avg_sqs, steps, scalars, betas, eps, weight_decay)
    return loss


def _compile_with_cpp_wrapper(function: Callable, dynamic: bool) -> Callable:
    return torch.compile(function, dynamic=dynamic, options={"cpp_wrapper": True})


class CompiledSAMStep:
    """An `Update` (see `samformer.training.steps`) running SAM over Adam as one compiled function per step.

    Passes that are not the direct pass (`fused.MSEPass`), and batches shaped unlike the first one (the
    ragged last batch: no second compilation), take the eager step, `eager_update`. If the first
    compilation fails (no C++ compiler, unsupported platform) a warning is issued and every step runs eagerly.
    The step is compiled with Inductor's C++ wrapper: at batch 32 the Python code that would call the step's 50
    kernels and products one by one (and allocate and view ~100 buffers) costs about a tenth of the step.
    `compiler` replaces that call (any function taking the step function and `dynamic`).
    """

    def __init__(self, optimizer: SAM, eager_update: Callable[[Callable[[], torch.Tensor]], torch.Tensor], compiler=None) -> None:
        self.optimizer, self.eager_update = optimizer, eager_update
        self.shape: torch.Size | None = None
        self.failed = False
        try:
            self._compiled = (compiler or _compile_with_cpp_wrapper)(_sam_adam_step, dynamic=False)
        except Exception as exc:  # torch.compile itself refuses (e.g. an unsupported Python)
            self._fall_back(exc)

    def _fall_back(self, exc: Exception) -> None:
        self.failed = True
        warnings.warn(f"torch.compile is unavailable here ({type(exc).__name__}: {exc}); training runs eagerly", stacklevel=3)

    def _state(self, params: list[torch.Tensor]) -> tuple[list[torch.Tensor], ...]:
        """Adam's state of `params`, created as `torch.optim.Adam` creates it when a parameter has none yet."""
        state = self.optimizer.base_optimizer.state
        for p in params:
            if not state[p]:
                state[p] = {
                    "step": torch.zeros((), dtype=torch.float32, device=p.device),
                    "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                }
        return tuple([state[p][key] for p in params] for key in ("exp_avg", "exp_avg_sq", "step"))

    def _applies(self, loss_and_grad) -> bool:
        if self.failed or not isinstance(loss_and_grad, MSEPass):
            return False
        if self.shape is not None:
            return loss_and_grad.batch[0].shape == self.shape
        params = [w for w in loss_and_grad.weights if w is not None]
        owned = {id(p) for p in self.optimizer.param_groups[0]["params"]}
        return all(p.requires_grad for p in params) and {id(p) for p in params} == owned

    def __call__(self, loss_and_grad) -> torch.Tensor:
        if not self._applies(loss_and_grad):
            return self.eager_update(loss_and_grad)
        group = self.optimizer.param_groups[0]
        weights = loss_and_grad.weights
        exp_avgs, exp_avg_sqs, steps = self._state([w for w in weights if w is not None])
        hyper = (group["rho"], group["adaptive"], group["betas"], group["eps"], group["weight_decay"])
        try:
            with torch.no_grad():
                scalars = _adam_step_scalars(steps, group["lr"], group["betas"]).to(weights.wf.device)  # a schedule does not recompile
                state = (exp_avgs, exp_avg_sqs, steps, scalars)
                loss = self._compiled(loss_and_grad.standardize, loss_and_grad.batch, weights, loss_and_grad.settings, state, hyper)
        except Exception as exc:  # only the first call compiles; it fails before changing any state
            if self.shape is not None:
                raise
            self._fall_back(exc)
            return self.eager_update(loss_and_grad)
        self.shape = loss_and_grad.batch[0].shape
        return loss
