"""Train k SAMformers as one stacked network: each model exactly as its own `training.fit.fit` run would train it.

`fit_stacked(models, data, cfgs)` runs one loop in which every step does the work of k separate steps.
Model j sees the batches its own seed gives it (its own `torch.Generator`, one permutation per epoch, as
`training.fit.fit` draws it), its own SAM perturbation, Adam state and learning-rate schedule
(`optim.StackedSAM`), and stops early on its own validation MSE. A model that stops leaves the
stack (its parameters and optimizer state are dropped from the (k, ...) tensors), so later steps compute
only the models still training; it keeps its best weights, restored into the `SAMformer` passed in.
The epochs are `samformer.training.loop`'s, which `training.fit.fit` runs too: only the trainee (`StackTrainee`) differs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict

import torch
from tqdm.auto import tqdm

from samformer.data.series import SplitData, Windows
from samformer.errors import SamformerError, ShapeError
from samformer.metrics import QuantileLoss
from samformer.nn.model import SAMformer
from samformer.nn.quantile import sorted_quantiles
from samformer.nn.stacked import StackedSAMformer
from samformer.training.config import TrainConfig, TrainResult, resolve_device, seed_everything
from samformer.training.loop import fresh_state, progress_bar, run_epochs
from samformer.training.stacked.checkpoint import StackCheckpoints
from samformer.training.stacked.evaluation import evaluate_stacked
from samformer.training.stacked.memory import check_stack_memory
from samformer.training.stacked.optim import StackedSAM
from samformer.training.stacked.stackable import stack_blockers
from samformer.training.steps import autocast


def seeded_models(build: Callable[[], SAMformer], seeds: Iterable[int]) -> list[SAMformer]:
    """One model per seed, each created as its own run creates it: `seed_everything(seed)`, then `build()`."""
    models = []
    for seed in seeds:
        seed_everything(seed)
        models.append(build())
    return models


def check_stack(models: Sequence[SAMformer], data: SplitData, cfgs: Sequence[TrainConfig], criterion: QuantileLoss | None = None) -> None:
    """One clear `SamformerError` for a stack that cannot be trained as given: what the rule (`stackable.stack_blockers`)
    refuses, or models that do not fit the data (quantile networks, with a `criterion`, forecast `data.horizon` x its
    number of quantiles values)."""
    blockers = stack_blockers([asdict(m.config) for m in models], cfgs)
    if blockers:
        raise SamformerError(f"cannot train these models as one stack: {'; '.join(map(str, blockers))}")
    config = models[0].config
    outputs = data.horizon * (1 if criterion is None else len(criterion.quantiles))
    sizes = {"n_channels": data.n_channels, "seq_len": data.seq_len, "horizon": outputs}
    wrong = [f"{n}={getattr(config, n)} vs {v}" for n, v in sizes.items() if getattr(config, n) != v]
    if wrong:
        raise ShapeError(f"the models do not fit the data (model vs data: {', '.join(wrong)}); build them from the data's sizes")


def mse_losses(pred: torch.Tensor, y: torch.Tensor, y_mask: torch.Tensor | None) -> torch.Tensor:
    """Each model's MSE (k,) of its forecasts (k, B, Dt, H), over the observed targets, as `metrics.mse` / `masked_mse`."""
    diff = pred.float() - y.float()
    if y_mask is None:
        return diff.square().flatten(1).mean(dim=1)
    diff = torch.where(y_mask, diff, 0.0)
    return diff.square().flatten(1).sum(dim=1) / y_mask.flatten(1).sum(dim=1).clamp(min=1)


def quantile_losses(criterion: QuantileLoss, outputs: torch.Tensor, y: torch.Tensor, y_mask: torch.Tensor | None) -> torch.Tensor:
    """Each model's pinball loss (k,) from its outputs (k, B, Dt, H·Q), as `criterion` scores a `QuantileSAMformer`."""
    forecasts = sorted_quantiles(outputs, len(criterion.quantiles))  # (k, B, Dt, H, Q)
    masks = [None] * len(y) if y_mask is None else y_mask
    return torch.stack([criterion(f, t, m) for f, t, m in zip(forecasts, y, masks, strict=True)])


def loss_and_gradients(
    stack: StackedSAMformer, x: torch.Tensor, y: torch.Tensor, masks: tuple | None, precision: str, criterion: QuantileLoss | None = None
):
    """A function giving each model's loss (k,) and gradient (as the stack's blocks) at the current weights on batch (x, y).

    x (k, B, D, L), y (k, B, Dt, H); `masks` = (input, target) masks of those shapes, or None. The inputs are
    standardised once for both of SAM's passes. Fused pass where a single model takes it (MSE only), else autograd;
    with a `criterion` each model's loss is its pinball loss.
    """
    x_mask, y_mask = (None, None) if masks is None else masks
    z, stats = stack.standardize(x, x_mask)
    if stack.takes_hand_pass() and criterion is None:
        dtype = torch.bfloat16 if precision == "bf16" else stack.flat.dtype
        return stack.mse_pass(z, stats, y, y_mask, dtype)  # z cast and RevIN's mean minus y once for both of SAM's passes

    def autograd_pass() -> tuple[torch.Tensor, list[torch.Tensor]]:
        with autocast(x.device, precision):
            pred = stack.forward_standardized(z, stats)
        loss = mse_losses(pred, y, y_mask) if criterion is None else quantile_losses(criterion, pred, y, y_mask)  # (k,)
        (grad,) = torch.autograd.grad(loss.sum(), stack.flat)  # model j's loss reaches only model j's weights
        return loss.detach(), stack.blocks(grad)

    return autograd_pass


def train_epoch(
    stack: StackedSAMformer,
    optimizer: StackedSAM,
    windows: Windows,
    generators: list[torch.Generator],
    batch_size: int,
    precision: str,
    bar: tqdm,
    shuffle: bool = True,
    criterion: QuantileLoss | None = None,
) -> torch.Tensor:
    """One epoch of every model in the stack, model j in the order its `generators[j]` draws (the stored order for all
    without `shuffle`); each one's summed training loss (k,)."""
    k, n = len(generators), len(windows)
    orders = torch.stack([torch.randperm(n, generator=g) if shuffle else torch.arange(n) for g in generators])  # (k, N)
    orders = orders.to(stack.flat.device)
    loss_sum = torch.zeros(k, device=stack.flat.device)  # float32, as training.fit.fit sums its losses
    for idx in orders.split(batch_size, dim=1):  # (k, B); every model's batches have the same size
        flat_idx = idx.reshape(-1)
        x, y = windows.batch(flat_idx)  # one gather for all k batches: (k·B, D, L), (k·B, Dt, H)
        masks = windows.batch_mask(flat_idx)
        per_model = (k, idx.shape[1])
        x, y = x.view(*per_model, *x.shape[1:]), y.view(*per_model, *y.shape[1:])
        if masks is not None:
            masks = tuple(m.view(*per_model, *m.shape[1:]) for m in masks)
        passes = loss_and_gradients(stack, x, y, masks, precision, criterion)
        loss, grads = passes()
        if optimizer.sam:
            optimizer.perturb(grads)
            _, grads = passes()
            optimizer.restore()
        optimizer.adam_step(grads)
        loss_sum += loss * idx.shape[1]
        bar.update()
    return loss_sum


class StackTrainee:
    """`loop.Trainee` of k models as one stack: the models still training are the rows of `stack`, in order.

    `alive[i]` is the index in `models` of row i. A model that leaves has its weights written back to its
    `SAMformer` first, so every model ends holding its last weights (then `fit_stacked` restores its best).
    """

    def __init__(
        self,
        models: Sequence[SAMformer],
        data: SplitData,
        cfgs: Sequence[TrainConfig],
        device: torch.device,
        criterion: QuantileLoss | None = None,
    ) -> None:
        self.models, self.cfg, self.criterion = list(models), cfgs[0], criterion
        self.train_w, self.val_w = data.windows("train").to(device), data.windows("val").to(device)
        self.stack = StackedSAMformer([m.to(device) for m in models]).train()
        self.optimizer = StackedSAM(self.stack, cfgs)
        self.generators = [torch.Generator().manual_seed(cfg.seed) for cfg in cfgs]
        self.alive = list(range(len(models)))

    def set_learning_rates(self, lrs: list[float]) -> None:
        self.optimizer.set_lr(lrs)

    def train_epoch(self, bar: tqdm) -> list[float]:
        generators = [self.generators[j] for j in self.alive]
        cfg = self.cfg
        loss_sums = train_epoch(
            self.stack, self.optimizer, self.train_w, generators, cfg.batch_size, cfg.precision, bar, cfg.shuffle, self.criterion
        )
        return [loss_sum / len(self.train_w) for loss_sum in loss_sums.tolist()]  # the mean, divided as `training.fit.fit` divides it

    def validate(self) -> list[dict[str, float]]:
        val = evaluate_stacked(self.stack, self.val_w, self.cfg.eval_batch_size, self.cfg.precision, self.criterion)
        scores = [{"mse": mse, "mae": mae} for mse, mae in zip(val["mse"], val["mae"], strict=True)]
        for score, loss in zip(scores, val.get("loss", []), strict=False):
            score["loss"] = loss  # the early-stopping score of a quantile model
        return scores

    def snapshot(self, i: int) -> dict[str, torch.Tensor]:
        return self.stack.state_dict_of(i)

    def member(self, i: int) -> SAMformer:
        return self.stack.model(i)

    def leave(self, keep: list[int]) -> None:
        for i in sorted(set(range(len(self.alive))) - set(keep)):
            self.models[self.alive[i]].load_state_dict(self.stack.state_dict_of(i))
        self.alive = [self.alive[i] for i in keep]
        if keep:
            self.optimizer.keep(torch.tensor(keep, device=self.stack.flat.device))  # the models left leave the stack

    def write_back(self) -> None:
        """Every model still in the stack gets its current weights."""
        for i, j in enumerate(self.alive):
            self.models[j].load_state_dict(self.stack.state_dict_of(i))


def fit_stacked(
    models: Sequence[SAMformer],
    data: SplitData,
    cfgs: Sequence[TrainConfig],
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    criterion: QuantileLoss | None = None,
) -> list[TrainResult]:
    """Train k models of one configuration on `data` together; model j as `training.fit.fit(models[j], data, cfgs[j])`.

    Each model should be built as a separate run builds it (`seeded_models`). The configs may differ in
    seed, lr, rho, adaptive, sam, weight decay, schedule, epochs and patience (`stackable.PER_MODEL_SETTINGS`); they
    share `stackable.SHARED_SETTINGS`.
    The models are trained in place: each ends with its best weights, like `fit`. Returns one `TrainResult`
    per model, without test scores (`score_stacked` adds them); `train_seconds` is the training time until
    it left the stack. With a `checkpoint` path the whole stack's state is written there after every
    epoch, and `resume` continues from it exactly (`stacked.checkpoint`). With a `QuantileLoss` criterion the
    models are quantile networks (horizon x number of quantiles outputs, as a `QuantileSAMformer` wraps), each
    trained and stopped early on its pinball loss as `training.fit.fit(QuantileSAMformer(model, ...), ..., criterion=...)`
    trains it. Callbacks and compiled passes are not supported.
    """
    check_stack(models, data, cfgs, criterion)
    device = resolve_device(cfgs[0].device)
    check_stack_memory(models[0], len(models), cfgs[0].batch_size, device)
    trainee = StackTrainee(models, data, cfgs, device, criterion)
    saver = StackCheckpoints(checkpoint, trainee, cfgs, data) if checkpoint is not None else None
    loops = (saver.resume() if saver is not None and resume else None) or [fresh_state() for _ in cfgs]
    steps_per_epoch = math.ceil(len(trainee.train_w) / cfgs[0].batch_size)
    bar = progress_bar(cfgs, loops, steps_per_epoch, f"train {len(models)} models on {data.name}", cfgs[0].progress)
    run_epochs(trainee, cfgs, loops, bar, save=saver.save if saver is not None else None)
    trainee.write_back()
    results = []
    for model, loop in zip(models, loops, strict=True):
        if loop.best_state is not None:
            model.load_state_dict(loop.best_state)
        results.append(TrainResult(loop.best_val, loop.best_epoch, len(loop.history), loop.train_seconds, loop.history))
    return results
