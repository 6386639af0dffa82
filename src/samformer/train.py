"""The training loop: Adam (optionally inside SAM), early stopping on validation MSE, best-weight restore.

The series of each split lives on the training device once; batches are gathered by index from it,
so an epoch does no per-sample Python work. Evaluation runs under `torch.inference_mode`.
"""

from __future__ import annotations

import math
import os
import random
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from samformer import distributed
from samformer.checkpoint import LoopState, load_checkpoint, run_fingerprint, save_checkpoint
from samformer.data import SplitData, Windows
from samformer.errors import SamformerError, ShapeError
from samformer.fused import MSEPass, mse_loss_and_gradients
from samformer.metrics import masked_mse, mse
from samformer.model import SAMformer
from samformer.sam import SAM

Precision = Literal["fp32", "bf16"]
EVAL_ROWS = 1 << 16  # at most this many (window, channel) rows per evaluation batch
EpochCallback = Callable[[SAMformer, dict[str, Any]], None]
# criterion(pred, target, target_mask | None) -> scalar loss; replaces MSE in training and early stopping
Criterion = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


@dataclass
class TrainConfig:
    """Optimisation settings. Defaults are the paper's protocol (see `default_train_config`)."""

    lr: float = 1e-3  # Adam's (peak) learning rate
    batch_size: int = 32
    epochs: int = 100  # upper bound; early stopping usually ends sooner
    patience: int = 5  # epochs without a better validation MSE before stopping
    sam: bool = True  # wrap Adam in SAM
    rho: float = 0.7  # SAM's neighbourhood radius
    adaptive: bool = False  # ASAM instead of SAM
    weight_decay: float = 0.0
    lr_schedule: Literal["cosine-restarts", "constant"] = "cosine-restarts"
    restart_period: int = 5  # epochs per cosine cycle (the paper's TF code: 5)
    min_lr: float = 1e-6  # floor of each cosine cycle
    seed: int = 0
    device: str = "auto"  # "auto" picks CUDA when available
    precision: Precision = "fp32"  # "bf16": bf16 autocast, fp32 master weights and loss
    eval_batch_size: int = 1024
    progress: bool = True  # tqdm bar on stderr
    compile: bool = False  # torch.compile the loss (forward + backward); falls back to eager if unavailable

    def __post_init__(self) -> None:
        checks = {
            "lr": self.lr > 0,
            "batch_size": self.batch_size >= 1,
            "epochs": self.epochs >= 1,
            "patience": self.patience >= 1,
            "rho": self.rho >= 0,
            "weight_decay": self.weight_decay >= 0,
            "restart_period": self.restart_period >= 1,
            "eval_batch_size": self.eval_batch_size >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(", ".join(f"{n}={getattr(self, n)!r}" for n in bad) + " out of range: must be positive")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {self.precision!r}")
        if self.lr_schedule not in ("cosine-restarts", "constant"):
            raise ValueError(f"lr_schedule must be 'cosine-restarts' or 'constant', got {self.lr_schedule!r}")


@dataclass
class TrainResult:
    """What a training run produced (metrics on the standardised scale)."""

    val_mse: float
    test_mse: float
    test_mae: float
    best_epoch: int  # 1-based epoch whose weights were restored
    epochs_run: int
    train_seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so that model initialisation and shuffling repeat."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' → CUDA if available, else CPU; anything else as given, if this machine has it."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise SamformerError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and (not torch.cuda.is_available() or (resolved.index or 0) >= torch.cuda.device_count()):
        raise SamformerError(f"device {device!r} is not available on this machine; use --device cpu or auto")
    return resolved


def cosine_restart_lr(epoch: int, base_lr: float, min_lr: float, period: int) -> float:
    """Learning rate of 0-based `epoch` under cosine annealing with warm restarts every `period` epochs."""
    t = epoch % period
    return min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * t / period)) / 2


def autocast(device: torch.device, precision: Precision):
    """bf16 autocast context for `precision='bf16'`, else a no-op."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


@torch.inference_mode()
def evaluate(
    model: SAMformer, windows: Windows, batch_size: int = 1024, precision: Precision = "fp32", criterion: Criterion | None = None
) -> dict[str, float]:
    """MSE and MAE over every window (no window dropped), accumulated in float64.

    If `windows` has a mask, only observed targets count and missing inputs are masked in RevIN. With a
    `criterion` (e.g. `metrics.QuantileLoss`), its mean is added as "loss", and MSE/MAE are those of
    `criterion.point(pred)`.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sq_err = abs_err = loss_sum = 0.0
    count = 0
    # Wide panels: cap the channel rows per batch, so evaluating traffic (862 channels) at the default
    # batch of 1024 windows does not hold gigabytes of activations. Sums are the same for any batch size.
    n_channels = windows.batch(slice(0, 1))[0].shape[1]  # x is (1, D, L)
    batch_size = max(1, min(batch_size, EVAL_ROWS // n_channels))
    for start in range(0, len(windows), batch_size):
        index = slice(start, start + batch_size)
        x, y = windows.batch(index)
        mask = windows.batch_mask(index)
        with autocast(device, precision):
            pred = model.forward_channels_first(x) if mask is None else model.forward_channels_first(x, mask=mask[0])
        if criterion is not None:
            y_mask = None if mask is None else mask[1]
            weight = y.numel() if y_mask is None else y_mask.sum().item()
            loss_sum += criterion(pred, y, y_mask).item() * weight
            pred = criterion.point(pred)
        diff = pred.float() - y
        if mask is not None:
            diff = torch.where(mask[1], diff, 0.0)
        sq_err += diff.square().sum(dtype=torch.float64).item()
        abs_err += diff.abs().sum(dtype=torch.float64).item()
        count += diff.numel() if mask is None else int(mask[1].sum())
    model.train(was_training)
    count = max(count, 1)
    metrics = {"mse": sq_err / count, "mae": abs_err / count}
    if criterion is not None:
        metrics["loss"] = loss_sum / count
    return metrics


def build_optimizer(model: SAMformer, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam, wrapped in SAM when `cfg.sam`.

    On CPU and CUDA Adam is the fused implementation (one kernel for all parameters instead of a dozen
    small ops per parameter; same update rule), which matters at the paper's batch of 32.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    fused = bool(params) and all(p.device.type in ("cpu", "cuda") and p.dtype == torch.float32 for p in params)
    kwargs = {"lr": cfg.lr, "weight_decay": cfg.weight_decay, **({"fused": True} if fused else {})}
    if cfg.sam:
        return SAM(params, torch.optim.Adam, rho=cfg.rho, adaptive=cfg.adaptive, **kwargs)
    return torch.optim.Adam(params, **kwargs)


def batch_loss(
    model: SAMformer,
    x: torch.Tensor,
    y: torch.Tensor,
    mask: tuple[torch.Tensor, torch.Tensor] | None = None,
    criterion: Criterion | None = None,
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
    mask: tuple[torch.Tensor, torch.Tensor] | None = None,
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

    def direct_pass(self, model, x, y, dtype, mask=None) -> Callable[[], torch.Tensor]:
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


def train_step(
    model: SAMformer,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    precision: Precision,
    mask: tuple[torch.Tensor, torch.Tensor] | None = None,
    criterion: Criterion | None = None,
    forward_backward_fn: Callable[..., torch.Tensor] | None = None,
) -> torch.Tensor:
    """One optimisation step on a batch (two forward/backward passes under SAM); returns the loss at w.

    `mask` and `criterion` are as in `batch_loss` (masks from `Windows.batch_mask`). The loss comes back
    as a 0-d tensor, so a loop can sum it without a host synchronisation per step.
    `forward_backward_fn` is `forward_backward`, a `CompiledForwardBackward`, or None for the fastest
    eager passes: for the MSE on a SAMformer whose forward pass is fused, passes that skip autograd
    (`fused.MSEPass`: the same loss and gradients, less overhead per operation, which is what small
    batches pay for), else `forward_backward`. A `CompiledForwardBackward` compiles whichever applies.
    """
    loss_and_grad: Callable[[], torch.Tensor]
    direct = criterion is None and isinstance(model, SAMformer) and model._fused(x)
    dtype = torch.bfloat16 if precision == "bf16" else x.dtype
    if direct and forward_backward_fn is None:
        loss_and_grad = MSEPass(model, x, y, dtype, mask)
    elif direct and isinstance(forward_backward_fn, CompiledForwardBackward):
        loss_and_grad = forward_backward_fn.direct_pass(model, x, y, dtype, mask)
    else:
        loss_and_grad = partial(forward_backward_fn or forward_backward, model, x, y, precision, mask, criterion)
    loss = loss_and_grad()
    if isinstance(optimizer, SAM):
        optimizer.first_step(zero_grad=True)
        loss_and_grad()
        optimizer.second_step(zero_grad=True)
    else:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return loss


def _parallel_train_step(
    parallel: distributed.DataParallelModel,
    optimizer: torch.optim.Optimizer,
    windows: Windows,
    index: torch.Tensor,
    precision: Precision,
    criterion: Criterion | None,
) -> torch.Tensor:
    """`train_step` on this rank's shard of the global batch `index`; returns this rank's part of the
    batch's summed loss (the parts add up, over ranks, to the batch's mean loss times its size).

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
    loss = train_step(parallel, optimizer, x, y, precision, windows.batch_mask(local), criterion, forward_backward)  # type: ignore[arg-type]
    return loss * (share * len(index))


def _evaluate_split(model: SAMformer, windows: Windows, cfg: TrainConfig, criterion: Criterion | None) -> dict[str, float]:
    """`evaluate`; under torch.distributed each rank scores a contiguous block and the sums are all-reduced."""
    if not distributed.is_distributed():
        return evaluate(model, windows, cfg.eval_batch_size, cfg.precision, criterion)
    block = distributed.shard_windows(windows)
    names = ("mse", "mae", "loss")
    sums = torch.zeros(len(names) + 1, dtype=torch.float64, device=windows.series.device)
    if block is not None:
        count = distributed.target_count(block)
        metrics = evaluate(model, block, cfg.eval_batch_size, cfg.precision, criterion)
        sums = torch.tensor([metrics.get(n, 0.0) * count for n in names] + [count], dtype=torch.float64, device=sums.device)
    distributed.all_reduce_sum(sums)
    total = max(sums[-1].item(), 1.0)
    metrics = {n: sums[i].item() / total for i, n in enumerate(names)}
    if criterion is None:
        del metrics["loss"]
    return metrics


def fit(
    model: SAMformer,
    data: SplitData,
    cfg: TrainConfig,
    callbacks: tuple[EpochCallback, ...] = (),
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    criterion: Criterion | None = None,
) -> TrainResult:
    """Train `model` on `data` with early stopping, restore the best weights, and score the test split.

    Each callback is called after every epoch with the model and that epoch's record (a dict it may
    add entries to, e.g. diagnostics); the records form `TrainResult.history`. If `data` has masks,
    missing values are left out of the loss and of RevIN's statistics. A `criterion` (e.g.
    `metrics.QuantileLoss`) replaces MSE as the training loss and as the early-stopping score.

    With a `checkpoint` path, the full training state is written there (atomically) after every epoch;
    with `resume` too and a checkpoint present, training continues from it and ends exactly as an
    uninterrupted run would (see `samformer.checkpoint`).
    """
    started = time.perf_counter()
    sizes = {name: getattr(data, name, None) for name in ("n_channels", "seq_len", "horizon")}
    wrong = [f"{n}={getattr(model.config, n)} vs {v}" for n, v in sizes.items() if v not in (None, getattr(model.config, n))]
    if wrong:
        raise ShapeError(f"the model does not fit the data (model vs data: {', '.join(wrong)}); build it from the data's sizes")
    device = resolve_device(cfg.device)
    model.to(device).train()
    train_w, val_w, test_w = (data.windows(s).to(device) for s in ("train", "val", "test"))
    optimizer = build_optimizer(model, cfg)
    parallel = distributed.DataParallelModel(model, device) if distributed.is_distributed() else None
    if parallel is not None and cfg.compile:
        warnings.warn("compile is not used under torch.distributed; training runs eagerly", stacklevel=2)
    step_fn = CompiledForwardBackward() if cfg.compile and parallel is None else None
    generator = torch.Generator().manual_seed(cfg.seed)  # the same on every rank: all draw the same permutation

    best_val, best_epoch, best_state, stale = math.inf, 0, None, 0
    history: list[dict[str, Any]] = []
    start_epoch, seconds_before = 0, 0.0
    if checkpoint is not None:
        fingerprint = run_fingerprint(model, cfg, (train_w, val_w, test_w))
        if resume and os.path.exists(checkpoint):
            loop = load_checkpoint(checkpoint, model, optimizer, generator, fingerprint)
            best_val, best_epoch, best_state, stale, history = loop.best_val, loop.best_epoch, loop.best_state, loop.stale, loop.history
            start_epoch, seconds_before = (cfg.epochs if loop.finished else loop.epoch), loop.train_seconds
    steps_per_epoch = math.ceil(len(train_w) / cfg.batch_size)
    quiet = not cfg.progress or not distributed.is_main()  # one bar, on rank 0
    bar = tqdm(total=cfg.epochs * steps_per_epoch, desc=f"train {data.name}", unit="step", disable=quiet, leave=False)
    bar.update(start_epoch * steps_per_epoch)
    for epoch in range(start_epoch, cfg.epochs):
        epoch_start = time.perf_counter()
        lr = cfg.lr if cfg.lr_schedule == "constant" else cosine_restart_lr(epoch, cfg.lr, cfg.min_lr, cfg.restart_period)
        for group in optimizer.param_groups:
            group["lr"] = lr
        order = torch.randperm(len(train_w), generator=generator).to(device)
        loss_sum = torch.zeros((), device=device)
        for idx in order.split(cfg.batch_size):  # global batches; under torch.distributed each rank trains on its shard
            if parallel is None:
                x, y = train_w.batch(idx)
                loss_sum += train_step(model, optimizer, x, y, cfg.precision, train_w.batch_mask(idx), criterion, step_fn) * len(idx)
            else:
                loss_sum += _parallel_train_step(parallel, optimizer, train_w, idx, cfg.precision, criterion)
            bar.update()
        train_loss = distributed.all_reduce_sum(loss_sum).item() / len(train_w)
        if not math.isfinite(train_loss):
            raise FloatingPointError(
                f"training loss became {train_loss} in epoch {epoch + 1}; lower --lr or --rho, or check the data for extreme values"
            )
        val = _evaluate_split(model, val_w, cfg, criterion)
        record = {"epoch": epoch + 1, "lr": lr, "train_loss": train_loss, "val_mse": val["mse"], "val_mae": val["mae"]}
        if criterion is not None:
            record["val_loss"] = val["loss"]
        for callback in callbacks:
            callback(model, record)
        record["seconds"] = time.perf_counter() - epoch_start
        history.append(record)
        bar.set_postfix(epoch=epoch + 1, train=f"{train_loss:.4f}", val=f"{val['mse']:.4f}")
        score = val["mse"] if criterion is None else val["loss"]
        score, improved = distributed.broadcast_object((score, score < best_val))  # decided once, by rank 0
        if improved:
            best_val, best_epoch, stale = score, epoch + 1, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        stop = stale >= cfg.patience
        if checkpoint is not None and distributed.is_main():
            elapsed = seconds_before + time.perf_counter() - started
            loop = LoopState(epoch + 1, best_val, best_epoch, stale, stop or epoch + 1 == cfg.epochs, history, elapsed, best_state)
            save_checkpoint(checkpoint, model, optimizer, generator, loop, fingerprint)
        if stop:
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    test = _evaluate_split(model, test_w, cfg, criterion)
    return TrainResult(
        val_mse=best_val,
        test_mse=test["mse"],
        test_mae=test["mae"],
        best_epoch=best_epoch,
        epochs_run=len(history),
        train_seconds=seconds_before + time.perf_counter() - started,
        history=history,
    )
