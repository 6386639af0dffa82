"""The training loop: Adam (optionally inside SAM), early stopping on validation MSE, best-weight restore.

The series of each split lives on the training device once; batches are gathered by index from it,
so an epoch does no per-sample Python work. The loss-and-gradient pass of the run is chosen once,
before the loop (`samformer.training.steps.build_step`); evaluation lives in `samformer.training.evaluation`. `fit` does
not score the test split: the experiment runner does (`score_test`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import replace

import torch
from tqdm.auto import tqdm

from samformer.data.series import SplitData, Windows
from samformer.errors import ShapeError
from samformer.nn.memory import check_memory
from samformer.nn.model import SAMformer
from samformer.training import distributed
from samformer.training.checkpoint import LoopState, load_checkpoint, run_fingerprint, save_checkpoint
from samformer.training.config import TrainConfig, TrainResult, resolve_device
from samformer.training.evaluation import evaluate_split
from samformer.training.loop import EpochCallback, fresh_state, progress_bar, run_epochs
from samformer.training.sam import SAM
from samformer.training.steps import (
    BatchPasses,
    Criterion,
    Precision,
    build_step_and_update,
    optimizer_update,
)


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

    `mask` and `criterion` are as in `batch_loss`; `forward_backward_fn` as in `steps.BatchPasses` (None:
    the fastest eager passes). The loss comes back as a 0-d tensor, so a loop can sum it without a host
    synchronisation per step. `fit` builds its passes and update once instead (`steps.build_step`).
    """
    loss_and_grad = BatchPasses(model, precision, criterion, forward_backward_fn)(x, y, mask)
    return optimizer_update(optimizer)(loss_and_grad)


def _check_sizes(model: SAMformer, data: SplitData) -> None:
    sizes = {name: getattr(data, name, None) for name in ("n_channels", "seq_len", "horizon")}
    wrong = [f"{n}={getattr(model.config, n)} vs {v}" for n, v in sizes.items() if v not in (None, getattr(model.config, n))]
    if wrong:
        raise ShapeError(f"the model does not fit the data (model vs data: {', '.join(wrong)}); build it from the data's sizes")


class _SingleModel:
    """`loop.Trainee` of one model: its step and update (chosen once), its own batch order, its validation split."""

    def __init__(self, model: SAMformer, data: SplitData, cfg: TrainConfig, criterion: Criterion | None, device: torch.device) -> None:
        self.model, self.cfg, self.criterion, self.device = model, cfg, criterion, device
        self.train_w, self.val_w = data.windows("train").to(device), data.windows("val").to(device)
        self.optimizer = build_optimizer(model, cfg)
        self.step, self.update = build_step_and_update(model, self.optimizer, device, cfg, criterion)
        self.generator = torch.Generator().manual_seed(cfg.seed)  # the same on every rank: all draw the same permutation

    def set_learning_rates(self, lrs: list[float]) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lrs[0]

    def train_epoch(self, bar: tqdm) -> list[float]:
        """One pass over the training windows (in a fresh random order if `cfg.shuffle`); the mean training loss."""
        windows, device = self.train_w, self.device
        stored = torch.arange(len(windows))  # the original TF pipeline's order (`TrainConfig(shuffle=False)`)
        order = (torch.randperm(len(windows), generator=self.generator) if self.cfg.shuffle else stored).to(device)
        loss_sum = torch.zeros((), device=device)
        for index in order.split(self.cfg.batch_size):  # global batches; under torch.distributed each rank trains on its shard
            loss_and_grad, weight = self.step(windows, index)
            loss_sum += self.update(loss_and_grad) * weight
            bar.update()
        return [distributed.all_reduce_sum(loss_sum).item() / len(windows)]

    def validate(self) -> list[dict[str, float]]:
        return [evaluate_split(self.model, self.val_w, self.cfg.eval_batch_size, self.cfg.precision, self.criterion)]

    def snapshot(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def member(self, i: int) -> SAMformer:
        return self.model

    def leave(self, keep: list[int]) -> None:
        """Nothing to drop: the loop ends with the one model's run."""


class _Checkpoints:
    """Writes the loop's state after each epoch (on rank 0) and reads it back to resume (`samformer.training.checkpoint`)."""

    def __init__(self, path: str | os.PathLike, trainee: _SingleModel, cfg: TrainConfig, data: SplitData) -> None:
        self.path, self.model, self.optimizer, self.generator = path, trainee.model, trainee.optimizer, trainee.generator
        self.fingerprint = run_fingerprint(self.model, cfg, data_splits(data))

    def resume(self) -> LoopState | None:
        if not os.path.exists(self.path):
            return None
        return load_checkpoint(self.path, self.model, self.optimizer, self.generator, self.fingerprint)

    def save(self, loops: list[LoopState]) -> None:
        if distributed.is_main():
            save_checkpoint(self.path, self.model, self.optimizer, self.generator, loops[0], self.fingerprint)


def data_splits(data: SplitData) -> tuple[Windows, ...]:
    """Every split `data` holds, which identify a run in its checkpoint (a SplitData may come without a test split)."""
    names = ("train", "val") if getattr(data, "test", "") is None else ("train", "val", "test")
    return tuple(data.windows(name) for name in names)


def fit(
    model: SAMformer,
    data: SplitData,
    cfg: TrainConfig,
    callbacks: tuple[EpochCallback, ...] = (),
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    criterion: Criterion | None = None,
) -> TrainResult:
    """Train `model` on the train split of `data` with early stopping on its val split, and restore the best weights.

    Each callback is called after every epoch with the model and that epoch's record (a dict it may
    add entries to, e.g. diagnostics); the records form `TrainResult.history`. If `data` has masks,
    missing values are left out of the loss and of RevIN's statistics. A `criterion` (e.g.
    `metrics.QuantileLoss`) replaces MSE as the training loss and as the early-stopping score. The test
    split, if any, is not used (see `score_test`).

    With a `checkpoint` path, the full training state is written there (atomically) after every epoch;
    with `resume` too and a checkpoint present, training continues from it and ends exactly as an
    uninterrupted run would (see `samformer.training.checkpoint`).
    """
    _check_sizes(model, data)
    device = resolve_device(cfg.device)
    check_memory(model.config, cfg.batch_size, cfg.sam, device)  # before the optimizer state and batches exist
    model.to(device).train()
    trainee = _SingleModel(model, data, cfg, criterion, device)
    saver = _Checkpoints(checkpoint, trainee, cfg, data) if checkpoint is not None else None
    loop = (saver.resume() if saver is not None and resume else None) or fresh_state()
    steps_per_epoch = math.ceil(len(trainee.train_w) / cfg.batch_size)
    bar = progress_bar([cfg], [loop], steps_per_epoch, f"train {data.name}", cfg.progress)
    run_epochs(trainee, [cfg], [loop], bar, callbacks, saver.save if saver is not None else None)
    if loop.best_state is not None:
        model.load_state_dict(loop.best_state)
    return TrainResult(loop.best_val, loop.best_epoch, len(loop.history), loop.train_seconds, loop.history)


def score_test(model: SAMformer, data: SplitData, cfg: TrainConfig, result: TrainResult) -> TrainResult:
    """`result` with the MSE and MAE of `model` on the test split of `data` (under torch.distributed, shared by the ranks)."""
    device = next(model.parameters()).device
    test = evaluate_split(model, data.windows("test").to(device), cfg.eval_batch_size, cfg.precision)
    return replace(result, test_mse=test["mse"], test_mae=test["mae"])
