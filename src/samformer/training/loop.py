"""Internal: the epoch loop shared by `training.fit.fit` (one model) and `stacked.fit.fit_stacked` (k models at once).

The loop knows nothing of how a model is trained: a `Trainee` (one model, or a stack of them) trains
every model still running for one epoch and scores it on the validation split. The loop does the rest,
once for both: each model's learning-rate schedule, the non-finite-loss check, the epoch records and
callbacks, early stopping and best-weight tracking (one `checkpoint.LoopState` per model), the
checkpoint after every epoch and the progress bar. A model whose run is over leaves the trainee.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm

from samformer.nn.model import SAMformer
from samformer.training import distributed
from samformer.training.checkpoint import LoopState

EpochCallback = Callable[[SAMformer, dict[str, Any]], None]
Snapshot = dict[str, torch.Tensor]  # a model's weights, as a `SAMformer` state dict


class Settings(Protocol):
    """The parts of a `train.TrainConfig` the loop reads."""

    lr: float
    lr_schedule: str
    min_lr: float
    restart_period: int
    epochs: int
    patience: int
    seed: int
    rho: float


class Trainee(Protocol):
    """The models the loop trains; "live" index i is the i-th model still training, in the order given."""

    def set_learning_rates(self, lrs: list[float]) -> None:
        """This epoch's learning rate of each live model."""

    def train_epoch(self, bar: tqdm) -> list[float]:
        """One epoch of every live model (one `bar` update per step); each one's mean training loss."""

    def validate(self) -> list[dict[str, float]]:
        """Each live model's validation metrics: "mse", "mae" and, with a criterion, "loss" (its early-stopping score)."""

    def snapshot(self, i: int) -> Snapshot:
        """Live model i's current weights (copies)."""

    def member(self, i: int) -> SAMformer:
        """Live model i as a `SAMformer` (what epoch callbacks receive)."""

    def leave(self, keep: list[int]) -> None:
        """Only the live models at `keep` go on training; the others keep their current weights."""


def fresh_state() -> LoopState:
    """The loop state of a model that has not trained yet."""
    return LoopState(epoch=0, best_val=math.inf, best_epoch=0, stale=0, finished=False)


def cosine_restart_lr(epoch: int, base_lr: float, min_lr: float, period: int) -> float:
    """Learning rate of 0-based `epoch` under cosine annealing with warm restarts every `period` epochs."""
    t = epoch % period
    return min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * t / period)) / 2


def learning_rate(cfg: Settings, epoch: int) -> float:
    """The learning rate of 0-based `epoch` under `cfg`'s schedule."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    return cosine_restart_lr(epoch, cfg.lr, cfg.min_lr, cfg.restart_period)


def check_finite(losses: list[float], epoch: int, cfgs: Sequence[Settings]) -> None:
    """A `FloatingPointError` naming the model (in a stack) whose training loss is not finite."""
    for loss, cfg in zip(losses, cfgs, strict=True):
        if not math.isfinite(loss):
            which = "" if len(cfgs) == 1 else f" of the model with seed {cfg.seed} (lr {cfg.lr}, rho {cfg.rho})"
            raise FloatingPointError(
                f"training loss{which} became {loss} in epoch {epoch + 1}; lower --lr or --rho, or check the data for extreme values"
            )


def epoch_record(epoch: int, lr: float, train_loss: float, val: dict[str, float]) -> tuple[dict[str, Any], float]:
    """The epoch's record (before callbacks) and its early-stopping score (the criterion's loss, else the MSE)."""
    record = {"epoch": epoch + 1, "lr": lr, "train_loss": train_loss, "val_mse": val["mse"], "val_mae": val["mae"]}
    if "loss" in val:
        record["val_loss"] = val["loss"]
    return record, val.get("loss", val["mse"])


def track_best(loop: LoopState, snapshot: Callable[[], Snapshot], score: float, record: dict[str, Any], patience: int) -> bool:
    """Add the epoch's `record` to `loop`, keep the weights if `score` is the best so far; True to stop early."""
    loop.history.append(record)
    loop.epoch = record["epoch"]
    score, improved = distributed.broadcast_object((score, score < loop.best_val))  # decided once, by rank 0
    if improved:
        loop.best_val, loop.best_epoch, loop.stale = score, loop.epoch, 0
        loop.best_state = snapshot()
    else:
        loop.stale += 1
    return loop.stale >= patience


def run_epochs(
    trainee: Trainee,
    cfgs: Sequence[Settings],
    loops: list[LoopState],
    bar: tqdm,
    callbacks: tuple[EpochCallback, ...] = (),
    save: Callable[[list[LoopState]], None] | None = None,
) -> None:
    """Train until every model's run is over; `loops[j]` (model j's state, perhaps resumed) is updated in place.

    The trainee holds the models whose loop is not finished, in order. `save(loops)` is called after every epoch.
    """
    started = time.perf_counter()
    seconds_before = [loop.train_seconds for loop in loops]
    live = [j for j, loop in enumerate(loops) if not loop.finished]
    first_epoch = min((loops[j].epoch for j in live), default=0)
    last_epoch = max((cfgs[j].epochs for j in live), default=0)
    for epoch in range(first_epoch, last_epoch):
        epoch_start = time.perf_counter()
        lrs = [learning_rate(cfgs[j], epoch) for j in live]
        trainee.set_learning_rates(lrs)
        losses = trainee.train_epoch(bar)
        check_finite(losses, epoch, [cfgs[j] for j in live])
        scores = trainee.validate()
        staying = []
        for i, j in enumerate(live):
            record, score = epoch_record(epoch, lrs[i], losses[i], scores[i])
            for callback in callbacks:
                callback(trainee.member(i), record)
            record["seconds"] = time.perf_counter() - epoch_start
            stop = track_best(loops[j], partial(trainee.snapshot, i), score, record, cfgs[j].patience)
            loops[j].finished = stop or epoch + 1 == cfgs[j].epochs
            loops[j].train_seconds = seconds_before[j] + time.perf_counter() - started
            if not loops[j].finished:
                staying.append(i)
        bar.set_postfix(epoch=epoch + 1, train=f"{min(losses):.4f}", val=f"{min(s['mse'] for s in scores):.4f}")
        if len(staying) < len(live):
            trainee.leave(staying)
            live = [live[i] for i in staying]
        if save is not None:
            save(loops)
        if not live:
            break
    bar.close()


def progress_bar(cfgs: Sequence[Settings], loops: list[LoopState], steps_per_epoch: int, desc: str, enabled: bool) -> tqdm:
    """One bar over the longest run's steps, starting where the loop stands (on rank 0 only)."""
    live = [loop.epoch for loop, cfg in zip(loops, cfgs, strict=True) if not loop.finished]
    last = max(cfg.epochs for cfg in cfgs)
    bar = tqdm(total=last * steps_per_epoch, desc=desc, unit="step", disable=not enabled or not distributed.is_main(), leave=False)
    bar.update(min(live, default=last) * steps_per_epoch)
    return bar
