"""Internal: the loss-and-gradient passes of training, chosen once per run (nanoGPT's habit), not per batch.

A *pass* is a function of no arguments: it computes the loss on one batch at the current weights, adds
its gradients to the parameters' `.grad` and returns the detached loss. SAM calls the same pass twice
(at w, then at w + ε). A *step* (`Step`, built once by `build_step`) turns the training windows and a
batch's indices into that batch's pass and its weight in the epoch's loss sum:

- `BatchPasses`: a SAMformer on this process; for the MSE on a model whose layers fuse the direct pass
  (`fused.MSEPass`, no autograd; values folded where that pays, else computed), else autograd (`forward_backward`),
  optionally `torch.compile`d;
- `_sharded_step`: under torch.distributed, this rank's shard through DistributedDataParallel.

A trainer of several models at once would be one more builder returning a `Step`.
`optimizer_update` chooses, also once, how the optimizer consumes a pass (SAM's two passes, or one);
`build_step_and_update` chooses both, and with `compile` may compile SAM's whole step instead of its passes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import nullcontext
from functools import partial

import torch

from samformer.data.series import Windows
from samformer.metrics import masked_mse, mse
from samformer.nn.fused import MSEPass, mse_loss_and_gradients, plain_mse_loss_and_gradients
from samformer.nn.model import SAMformer
from samformer.training import distributed
from samformer.training.compiled_step import CompiledSAMStep, compiles_whole_step
from samformer.training.config import Precision, TrainConfig
from samformer.training.sam import SAM

# criterion(pred, target, target_mask | None) -> scalar loss; replaces MSE in training and early stopping
Criterion = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
Masks = tuple[torch.Tensor, torch.Tensor]  # (input, target) observed-value masks
Pass = Callable[[], torch.Tensor]  # loss at the current weights; gradients added to `.grad`
# step(windows, batch indices) -> (the batch's pass, the weight of its loss in the epoch's loss sum)
Step = Callable[[Windows, torch.Tensor], tuple[Pass, float | torch.Tensor]]
Update = Callable[[Pass], torch.Tensor]  # one optimisation step from a pass; returns the loss at w


def autocast(device: torch.device, precision: Precision):
    """bf16 autocast context for `precision='bf16'`, else a no-op."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def batch_loss(
    model: SAMformer, x: torch.Tensor, y: torch.Tensor, mask: Masks | None = None, criterion: Criterion | None = None
) -> torch.Tensor:
    """Loss on one batch: MSE by default; `mask` = (input, target) observed-value masks; `criterion` replaces MSE."""
    if mask is None and criterion is None:
        return mse(model.forward_channels_first(x), y)
    x_mask, y_mask = (None, None) if mask is None else mask
    pred = model.forward_channels_first(x, mask=x_mask)
    return (criterion or masked_mse)(pred, y, y_mask)


def forward_backward(
    model: SAMformer,
    x: torch.Tensor,
    y: torch.Tensor,
    precision: Precision,
    mask: Masks | None = None,
    criterion: Criterion | None = None,
) -> torch.Tensor:
    """Loss on a batch at the current weights, back-propagated into `.grad`; returns the detached loss.

    Under bf16 the matrix products run in bf16 while the weights, their gradients and the loss stay fp32.
    """
    with autocast(x.device, precision):
        loss = batch_loss(model, x, y, mask, criterion)
    loss.backward()
    return loss.detach()


class CompiledForwardBackward:
    """Training passes compiled by `torch.compile` (Inductor fuses the elementwise work around the
    matrix products): for the MSE on a fused SAMformer, `fused.mse_loss_and_gradients` (the direct pass);
    otherwise the loss, differentiated by autograd (`__call__`, like `forward_backward`).

    Only batches shaped like the first one use the compiled code: the ragged last batch of an epoch
    runs eagerly rather than paying for a second compilation. If the first compilation fails (no C++
    compiler, unsupported platform or Python), a warning is issued and every call runs eagerly.
    """

    def __init__(self) -> None:
        self.shape: torch.Size | None = None
        self.failed = False
        try:
            self._loss = torch.compile(batch_loss, dynamic=False)
            self._direct = torch.compile(mse_loss_and_gradients, dynamic=False)
        except Exception as exc:  # torch.compile itself refuses (e.g. an unsupported Python)
            self._fall_back(exc)

    def _fall_back(self, exc: Exception) -> None:
        self.failed = True
        warnings.warn(f"torch.compile is unavailable here ({type(exc).__name__}: {exc}); training runs eagerly", stacklevel=3)

    def _compiles(self, x: torch.Tensor) -> bool:
        return not self.failed and (self.shape is None or x.shape == self.shape)

    def direct_pass(self, model, x, y, dtype, mask=None) -> Pass:
        """`fused.MSEPass` on this batch, with its computation compiled."""
        if not self._compiles(x):
            return MSEPass(model, x, y, dtype, mask)
        step = MSEPass(model, x, y, dtype, mask, core=self._direct)

        def run() -> torch.Tensor:
            try:
                loss = step()
            except Exception as exc:  # gradients are only added after the computation: nothing to undo
                if self.shape is not None:
                    raise
                self._fall_back(exc)
                step.core = mse_loss_and_gradients
                return step()
            self.shape = x.shape
            return loss

        return run

    def __call__(self, model, x, y, precision, mask=None, criterion=None) -> torch.Tensor:
        if not self._compiles(x):
            return forward_backward(model, x, y, precision, mask, criterion)
        first = self.shape is None
        try:
            with autocast(x.device, precision):
                loss = self._loss(model, x, y, mask, criterion)
            loss.backward()  # the backward graph is compiled on its first use
        except Exception as exc:
            if not first:
                raise
            model.zero_grad(set_to_none=True)  # gradients are empty between passes, so nothing is lost
            self._fall_back(exc)
            return forward_backward(model, x, y, precision, mask, criterion)
        self.shape = x.shape
        return loss.detach()


class BatchPasses:
    """The pass of each batch `(x, y, mask)` for one model and loss, with the kind of pass chosen once.

    `forward_backward_fn` is `forward_backward` (always autograd), a `CompiledForwardBackward`, or None
    for the fastest eager passes: for the MSE on a SAMformer, batches whose forward pass is fused
    (`SAMformer.uses_fused`, a rule on the batch's shape) take the direct pass (`fused.MSEPass`: the same
    loss and gradients, less overhead per operation, which is what small batches pay for); with `fused="auto"`
    the others take the direct pass in the modules' algebra (`fused.plain_mse_loss_and_gradients`: no fold,
    which costs more there; no autograd). Every other loss, and `fused=False`, run `forward_backward`. A
    `CompiledForwardBackward` compiles the folded direct pass or autograd's.
    """

    def __init__(
        self,
        model: SAMformer,
        precision: Precision,
        criterion: Criterion | None = None,
        forward_backward_fn: Callable[..., torch.Tensor] | None = None,
    ) -> None:
        self.model, self.precision, self.criterion = model, precision, criterion
        self.autograd = forward_backward_fn or forward_backward
        direct_ok = criterion is None and isinstance(model, SAMformer) and model.can_fuse()
        self.direct: Callable[..., Pass] | None = None
        self.plain_direct = direct_ok and forward_backward_fn is None  # eager: the modules' algebra by hand too
        if direct_ok and forward_backward_fn is None:
            self.direct = MSEPass
        elif direct_ok and isinstance(forward_backward_fn, CompiledForwardBackward):
            self.direct = forward_backward_fn.direct_pass

    def __call__(self, x: torch.Tensor, y: torch.Tensor, mask: Masks | None = None) -> Pass:
        dtype = torch.bfloat16 if self.precision == "bf16" else x.dtype
        if self.direct is not None and self.model.uses_fused(x):
            return self.direct(self.model, x, y, dtype, mask)
        if self.plain_direct and self.model.fused == "auto":
            return MSEPass(self.model, x, y, dtype, mask, core=plain_mse_loss_and_gradients)
        return partial(self.autograd, self.model, x, y, self.precision, mask, self.criterion)


def optimizer_update(optimizer: torch.optim.Optimizer) -> Update:
    """How `optimizer` takes a step from a pass: SAM's two passes (at w, then at w + ε), or one."""
    return partial(_sam_update if isinstance(optimizer, SAM) else _plain_update, optimizer)


def build_step_and_update(
    model: SAMformer, optimizer: torch.optim.Optimizer, device: torch.device, cfg: TrainConfig, criterion: Criterion | None
) -> tuple[Step, Update]:
    """The run's step and update, chosen once (`build_step`, `optimizer_update`).

    With `cfg.compile`, SAM over Adam on the direct pass compiles as one function per step
    (`compiled_step.CompiledSAMStep`: both passes, the perturbation and Adam) when the run's batches take
    the direct pass; any other run compiles its passes (`CompiledForwardBackward`).
    """
    update = optimizer_update(optimizer)
    whole_step = (
        cfg.compile
        and criterion is None
        and not distributed.is_distributed()
        and compiles_whole_step(optimizer)
        and isinstance(model, SAMformer)
        and model.uses_fused(torch.empty(cfg.batch_size, model.config.n_channels, 0, device="meta"))  # reads only B and D
    )
    if whole_step:
        return build_step(model, device, cfg.precision, criterion, compile=False), CompiledSAMStep(optimizer, update)
    return build_step(model, device, cfg.precision, criterion, cfg.compile), update


def _sam_update(optimizer: SAM, loss_and_grad: Pass) -> torch.Tensor:
    loss = loss_and_grad()
    optimizer.first_step(zero_grad=True)
    loss_and_grad()
    optimizer.second_step(zero_grad=True)
    return loss


def _plain_update(optimizer: torch.optim.Optimizer, loss_and_grad: Pass) -> torch.Tensor:
    loss = loss_and_grad()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss


def _local_step(passes: BatchPasses, windows: Windows, index: torch.Tensor) -> tuple[Pass, int]:
    x, y = windows.batch(index)
    return passes(x, y, windows.batch_mask(index)), len(index)


def _sharded_step(
    parallel: distributed.DataParallelModel, precision: Precision, criterion: Criterion | None, windows: Windows, index: torch.Tensor
) -> tuple[Pass, float | torch.Tensor]:
    """The pass of this rank's shard of the global batch `index`, and the weight that makes its loss this
    rank's part of the batch's summed loss (the parts add up, over ranks, to the batch's mean loss times its size).

    Each rank's gradient is weighted by its share of the batch's loss terms before the all-reduce, so the
    averaged gradient is the global-batch mean even when the shards differ in size (ragged last batch)
    or in observed values (masks). A rank left without a window runs one window with weight 0, as
    every rank must take part in each all-reduce.
    """
    local = distributed.shard(index)
    masks = windows.batch_mask(index)
    if masks is None:
        share: float | torch.Tensor = len(local) / len(index)
    else:
        counts = masks[1].flatten(1).sum(1)  # (B,) observed targets per window
        total = counts.sum()
        share = torch.where(total > 0, counts.tensor_split(distributed.world_size())[distributed.rank()].sum() / total.clamp(min=1), 0.0)
    if len(local) == 0:
        local, share = index[:1], 0.0
    parallel.share.weight = share
    x, y = windows.batch(local)
    return partial(forward_backward, parallel, x, y, precision, windows.batch_mask(local), criterion), share * len(index)


def build_step(model: SAMformer, device: torch.device, precision: Precision, criterion: Criterion | None, compile: bool) -> Step:
    """The run's step, chosen once: DDP-sharded under torch.distributed, else `BatchPasses` (compiled with `compile`)."""
    if distributed.is_distributed():
        if compile:
            warnings.warn("compile is not used under torch.distributed; training runs eagerly", stacklevel=3)
        return partial(_sharded_step, distributed.DataParallelModel(model, device), precision, criterion)
    passes = BatchPasses(model, precision, criterion, CompiledForwardBackward() if compile else None)
    return partial(_local_step, passes)
