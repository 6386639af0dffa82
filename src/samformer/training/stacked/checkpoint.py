"""Checkpoints of a whole stack (`fit_stacked`), so that a resumed stack ends exactly as an uninterrupted one.

The file is a samformer checkpoint (`samformer.training.checkpoint`: safetensors, atomic, checksummed, no pickle)
holding the stack's weights and Adam moments (the rows of the models still training), every model's
batch-order generator, its loop state and best weights, and the last weights of the models that have
left the stack. It is resumed only by a stack of the same models, settings (each model's) and data.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any, Protocol

import torch

from samformer.data.series import SplitData
from samformer.nn.model import SAMformer
from samformer.nn.stacked import StackedSAMformer
from samformer.training import distributed
from samformer.training.checkpoint import LoopState, loop_from_json, loop_json, read_state, run_fingerprint, write_state
from samformer.training.config import TrainConfig
from samformer.training.fit import data_splits
from samformer.training.stacked.optim import StackedSAM


class StackTrainee(Protocol):
    """What a stack checkpoint holds of `stacked.fit.StackTrainee`."""

    models: list[SAMformer]  # every model of the stack; those that left hold their last weights
    stack: StackedSAMformer  # the rows of the models still training
    optimizer: StackedSAM
    generators: list[torch.Generator]  # each model's batch order
    alive: list[int]  # the index in `models` of each row of `stack`


def stack_fingerprint(trainee: StackTrainee, cfgs: list[TrainConfig], data: SplitData) -> dict[str, Any]:
    """What identifies a stack: the model config, k, each training setting (one value if shared, else one per model), the data."""
    fingerprint = run_fingerprint(trainee.models[0], cfgs[0], data_splits(data))
    settings = [{k: v for k, v in asdict(cfg).items() if k != "progress"} for cfg in cfgs]
    train: dict[str, Any] = {"k": len(cfgs)}
    for key in settings[0]:
        values = [s[key] for s in settings]
        train[key] = values[0] if all(v == values[0] for v in values) else values
    return {**fingerprint, "train": train}


class StackCheckpoints:
    """Writes the stack's state after each epoch and reads it back to resume."""

    def __init__(self, path: str | os.PathLike, trainee: StackTrainee, cfgs: list[TrainConfig], data: SplitData) -> None:
        self.path, self.trainee = path, trainee
        self.fingerprint = stack_fingerprint(trainee, list(cfgs), data)

    def save(self, loops: list[LoopState]) -> None:
        if not distributed.is_main():
            return
        trainee, optimizer = self.trainee, self.trainee.optimizer
        tensors = {"stack.flat": trainee.stack.flat, "stack.exp_avg": optimizer.exp_avg, "stack.exp_avg_sq": optimizer.exp_avg_sq}
        tensors["stack.step"] = optimizer.step
        for j, (generator, loop) in enumerate(zip(trainee.generators, loops, strict=True)):
            tensors[f"generator.{j}"] = generator.get_state()
            tensors.update({f"best.{j}.{name}": value for name, value in (loop.best_state or {}).items()})
            if j not in trainee.alive:
                tensors.update({f"member.{j}.{name}": value for name, value in trainee.models[j].state_dict().items()})
        state = {"loops": [loop_json(loop) for loop in loops], "alive": trainee.alive}
        write_state(self.path, tensors, state, self.fingerprint)

    def resume(self) -> list[LoopState] | None:
        """The loops' states, with the stack, optimizer, generators and finished models restored in place; None without a file."""
        if not os.path.exists(self.path):
            return None
        tensors, state = read_state(self.path, self.fingerprint)
        trainee, optimizer = self.trainee, self.trainee.optimizer
        device = trainee.stack.flat.device
        alive = state["alive"]
        if alive != trainee.alive:
            optimizer.keep(torch.tensor(alive, device=device))
            trainee.alive = list(alive)
        with torch.no_grad():
            trainee.stack.flat.copy_(tensors["stack.flat"])
        optimizer.exp_avg.copy_(tensors["stack.exp_avg"])
        optimizer.exp_avg_sq.copy_(tensors["stack.exp_avg_sq"])
        optimizer.step.copy_(tensors["stack.step"])
        loops = []
        for j, generator in enumerate(trainee.generators):
            generator.set_state(tensors[f"generator.{j}"])
            if j not in alive:
                trainee.models[j].load_state_dict(_prefixed(tensors, f"member.{j}.", device))
            loops.append(loop_from_json(state["loops"][j], _prefixed(tensors, f"best.{j}.", device)))
        return loops


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str, device: torch.device) -> dict[str, torch.Tensor]:
    return {name.removeprefix(prefix): value.to(device) for name, value in tensors.items() if name.startswith(prefix)}
