"""Train k SAMformers as one stacked network: each model exactly as its own `train.fit` run would train it.

`fit_stacked(models, data, cfgs)` runs one loop in which every step does the work of k separate steps.
Model j sees the batches its own seed gives it (its own `torch.Generator`, one permutation per epoch, as
`train.fit` draws it), its own SAM perturbation, Adam state and learning-rate schedule
(`stacked_optim.StackedSAM`), and stops early on its own validation MSE. A model that stops leaves the
stack (its parameters and optimizer state are dropped from the (k, ...) tensors), so later steps compute
only the models still training; it keeps its best weights, restored into the `SAMformer` passed in.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from samformer.data import SplitData, Windows
from samformer.errors import SamformerError, ShapeError
from samformer.model import SAMformer
from samformer.stacked import StackedSAMformer
from samformer.stacked_eval import evaluate_stacked
from samformer.stacked_optim import StackedSAM
from samformer.train import TrainConfig, TrainResult, autocast, cosine_restart_lr, resolve_device, seed_everything

# Settings every model of a stack must share: its batches line up, it runs in one precision on one device.
SHARED_SETTINGS = ("batch_size", "precision", "device", "eval_batch_size")


@dataclass
class _Run:
    """The early-stopping bookkeeping of one model of the stack (as the locals of `train.fit`)."""

    cfg: TrainConfig
    generator: torch.Generator
    best_val: float = math.inf
    best_epoch: int = 0
    best_state: list[torch.Tensor] | None = None  # the weights of the best epoch, one tensor per parameter
    stale: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def lr(self, epoch: int) -> float:
        cfg = self.cfg
        return cfg.lr if cfg.lr_schedule == "constant" else cosine_restart_lr(epoch, cfg.lr, cfg.min_lr, cfg.restart_period)

    def record(self, epoch: int, val_mse: float, weights: list[torch.Tensor]) -> bool:
        """Early stopping after 0-based `epoch` with `weights` (one tensor per parameter); True when this run is over."""
        if val_mse < self.best_val:
            self.best_val, self.best_epoch, self.stale = val_mse, epoch + 1, 0
            self.best_state = [w.detach().clone() for w in weights]
        else:
            self.stale += 1
        return self.stale >= self.cfg.patience or epoch + 1 == self.cfg.epochs


def seeded_models(build: Callable[[], SAMformer], seeds: Iterable[int]) -> list[SAMformer]:
    """One model per seed, each created as its own run creates it: `seed_everything(seed)`, then `build()`."""
    models = []
    for seed in seeds:
        seed_everything(seed)
        models.append(build())
    return models


def check_stack(models: Sequence[SAMformer], data: SplitData, cfgs: Sequence[TrainConfig]) -> None:
    """One clear `SamformerError` for a stack that cannot be trained as given."""
    if len(models) < 1:
        raise SamformerError("fit_stacked needs at least one model (k >= 1)")
    if len(cfgs) != len(models):
        raise SamformerError(f"fit_stacked got {len(models)} models and {len(cfgs)} configs; pass one TrainConfig per model")
    for name in SHARED_SETTINGS:
        values = {getattr(c, name) for c in cfgs}
        if len(values) > 1:
            raise SamformerError(f"stacked models must share {name} (got {sorted(map(str, values))}); train them in separate stacks")
    if any(c.compile for c in cfgs):
        raise SamformerError("compile is not supported by the stacked trainer; set compile=False")
    config = models[0].config
    sizes = {"n_channels": data.n_channels, "seq_len": data.seq_len, "horizon": data.horizon}
    wrong = [f"{n}={getattr(config, n)} vs {v}" for n, v in sizes.items() if getattr(config, n) != v]
    if wrong:
        raise ShapeError(f"the models do not fit the data (model vs data: {', '.join(wrong)}); build them from the data's sizes")


def loss_and_gradients(stack: StackedSAMformer, x: torch.Tensor, y: torch.Tensor, masks: tuple | None, precision: str):
    """A function giving each model's loss (k,) and gradient (as the stack's blocks) at the current weights on batch (x, y).

    x (k, B, D, L), y (k, B, Dt, H); `masks` = (input, target) masks of those shapes, or None. The inputs are
    standardised once for both of SAM's passes. Fused pass where a single model takes it, else autograd.
    """
    x_mask, y_mask = (None, None) if masks is None else masks
    z, stats = stack.standardize(x, x_mask)
    if stack.uses_fused(x):
        dtype = torch.bfloat16 if precision == "bf16" else stack.flat.dtype
        return lambda: stack.mse_and_gradients(z, stats, y, y_mask, dtype)

    def autograd_pass() -> tuple[torch.Tensor, list[torch.Tensor]]:
        with autocast(x.device, precision):
            pred = stack.forward_standardized(z, stats)
        diff = pred.float() - y.float()  # as metrics.mse / masked_mse
        if y_mask is None:
            loss = diff.square().flatten(1).mean(dim=1)  # (k,)
        else:
            diff = torch.where(y_mask, diff, 0.0)
            loss = diff.square().flatten(1).sum(dim=1) / y_mask.flatten(1).sum(dim=1).clamp(min=1)
        (grad,) = torch.autograd.grad(loss.sum(), stack.flat)  # model j's loss reaches only model j's weights
        return loss.detach(), stack.blocks(grad)

    return autograd_pass


def train_epoch(stack: StackedSAMformer, optimizer: StackedSAM, windows: Windows, runs: list[_Run], precision: str) -> torch.Tensor:
    """One epoch of every model in the stack; returns each model's mean training loss (k,)."""
    k, batch_size = len(runs), runs[0].cfg.batch_size
    orders = torch.stack([torch.randperm(len(windows), generator=r.generator) for r in runs]).to(stack.flat.device)  # (k, N)
    loss_sum = torch.zeros(k, device=stack.flat.device)  # float32, as train.fit sums its losses
    for idx in orders.split(batch_size, dim=1):  # (k, B); every model's batches have the same size
        flat_idx = idx.reshape(-1)
        x, y = windows.batch(flat_idx)  # (k·B, D, L), (k·B, Dt, H)
        masks = windows.batch_mask(flat_idx)
        per_model = (k, idx.shape[1])
        x, y = x.view(*per_model, *x.shape[1:]), y.view(*per_model, *y.shape[1:])
        if masks is not None:
            masks = tuple(m.view(*per_model, *m.shape[1:]) for m in masks)
        passes = loss_and_gradients(stack, x, y, masks, precision)
        loss, grads = passes()
        if optimizer.sam:
            optimizer.perturb(grads)
            _, grads = passes()
            optimizer.restore()
        optimizer.adam_step(grads)
        loss_sum += loss * idx.shape[1]
    return loss_sum / len(windows)


def fit_stacked(models: Sequence[SAMformer], data: SplitData, cfgs: Sequence[TrainConfig]) -> list[TrainResult]:
    """Train k models of one configuration on `data` together; model j as `train.fit(models[j], data, cfgs[j])`.

    Each model should be built as a separate run builds it (`train.seed_everything(seed)`, then the
    constructor). The configs may differ in seed, lr, rho, adaptive, sam, weight decay, schedule, epochs and
    patience; they share `SHARED_SETTINGS`. The models are trained in place: each ends with its best weights,
    like `fit`. Returns one `TrainResult` per model; `train_seconds` is the wall time until it left the stack.
    Quantile criteria, callbacks and checkpoints are not supported yet.
    """
    check_stack(models, data, cfgs)
    started = time.perf_counter()
    device, precision = resolve_device(cfgs[0].device), cfgs[0].precision
    train_w, val_w, test_w = (data.windows(s).to(device) for s in ("train", "val", "test"))
    stack = StackedSAMformer([m.to(device) for m in models]).train()
    optimizer = StackedSAM(stack, cfgs)
    runs = [_Run(cfg, torch.Generator().manual_seed(cfg.seed)) for cfg in cfgs]
    alive = list(range(len(models)))  # models[alive[i]] is row i of the stack
    for epoch in range(max(c.epochs for c in cfgs)):
        epoch_start = time.perf_counter()
        live = [runs[j] for j in alive]
        lrs = [r.lr(epoch) for r in live]
        optimizer.set_lr(lrs)
        train_loss = train_epoch(stack, optimizer, train_w, live, precision).tolist()
        _check_finite(train_loss, epoch, [cfgs[j] for j in alive])
        val = evaluate_stacked(stack, val_w, cfgs[0].eval_batch_size, precision)
        seconds = time.perf_counter() - epoch_start
        leaving = []
        params = stack.blocks()
        for i, run in enumerate(live):
            record = {"epoch": epoch + 1, "lr": lrs[i], "train_loss": train_loss[i], "val_mse": val["mse"][i], "val_mae": val["mae"][i]}
            run.history.append({**record, "seconds": seconds})
            if run.record(epoch, val["mse"][i], [p[i] for p in params]):
                run.seconds = time.perf_counter() - started
                leaving.append(i)
        if leaving:
            keep = [i for i in range(len(alive)) if i not in leaving]
            alive = [alive[i] for i in keep]
            if not alive:
                break
            optimizer.keep(torch.tensor(keep, device=device))  # the models left leave the stack
    return _finish(models, runs, test_w, cfgs[0])


def _check_finite(train_loss: list[float], epoch: int, cfgs: list[TrainConfig]) -> None:
    for loss, cfg in zip(train_loss, cfgs, strict=True):
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"training loss of the model with seed {cfg.seed} (lr {cfg.lr}, rho {cfg.rho}) became {loss} in epoch {epoch + 1}; "
                "lower its lr or rho, or check the data for extreme values"
            )


def _finish(models: Sequence[SAMformer], runs: list[_Run], test_w: Windows, cfg: TrainConfig) -> list[TrainResult]:
    """Restore each model's best weights, score all of them on the test split together, build the results."""
    final = StackedSAMformer(models)
    with torch.no_grad():
        params = final.blocks()
        for j, run in enumerate(runs):
            if run.best_state is not None:
                for p, best in zip(params, run.best_state, strict=True):
                    p[j].copy_(best)
    for j, model in enumerate(models):
        model.load_state_dict(final.state_dict_of(j))
    test = evaluate_stacked(final, test_w, cfg.eval_batch_size, cfg.precision)
    return [
        TrainResult(
            val_mse=run.best_val,
            test_mse=test["mse"][j],
            test_mae=test["mae"][j],
            best_epoch=run.best_epoch,
            epochs_run=len(run.history),
            train_seconds=run.seconds,
            history=run.history,
        )
        for j, run in enumerate(runs)
    ]
