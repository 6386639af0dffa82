"""The one rule for what may be trained as one stack (`fit_stacked`): the networks' half (`samformer.nn.stackable`)
and the training settings' half.

Every caller asks here: the stacked network, `fit_stacked`, one stacked run (`experiments.run.execute_stacked`),
the grid's grouping of runs into stacks and the Forecaster's ensemble. `stack_blockers` says why given models and
settings cannot share a stack (each reason names its setting); `stack_key` gives runs that can share one equal keys.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import fields
from typing import Any

from samformer.nn.stackable import StackBlocker, model_blockers, model_key
from samformer.training.config import TrainConfig

# Settings every model of a stack must share: its batches line up, it runs in one precision on one device.
SHARED_SETTINGS = ("batch_size", "shuffle", "precision", "device", "eval_batch_size")
# Settings the stacked trainer does not support when true, and why.
UNSUPPORTED_SETTINGS = {"compile": "the stacked trainer runs uncompiled; set compile=False"}
# Settings in which the models of one stack may differ: each model keeps its own (its seed, SAM, Adam, schedule,
# early stopping; `progress` is the first model's).
PER_MODEL_SETTINGS = frozenset(f.name for f in fields(TrainConfig)) - set(SHARED_SETTINGS) - set(UNSUPPORTED_SETTINGS)


def training_blockers(cfgs: Sequence[TrainConfig]) -> list[StackBlocker]:
    """Why models trained with `cfgs` (one per model) cannot share a stack, in a fixed order; [] if they can."""
    blockers = []
    for name in SHARED_SETTINGS:
        values = {getattr(c, name) for c in cfgs}
        if len(values) > 1:
            reason = f"{name} differs (got {sorted(map(str, values))}; stacked models must share {name}: train them in separate stacks)"
            blockers.append(StackBlocker(name, reason))
    for name, why in UNSUPPORTED_SETTINGS.items():
        if any(getattr(c, name) for c in cfgs):
            blockers.append(StackBlocker(name, f"{name}=True ({why})"))
    return blockers


def stack_blockers(model_options: Sequence[Mapping[str, Any]], cfgs: Sequence[TrainConfig]) -> list[StackBlocker]:
    """Why the models built with `model_options` and trained with `cfgs` (one of each per model) cannot be one stack.

    `model_options` are `SAMformer` keyword arguments (`asdict(model.config)`, or a variant's overrides with a run's
    model options). [] means `fit_stacked` trains them together, each as its own `fit` run would.
    """
    blockers = model_blockers(model_options)
    if len(cfgs) != len(model_options):
        reason = f"k differs (got {len(model_options)} models and {len(cfgs)} configs; pass one TrainConfig per model)"
        blockers.append(StackBlocker("k", reason))
    return blockers + training_blockers(cfgs)


def stack_key(model_options: Mapping[str, Any], cfg: TrainConfig, per_model: Collection[str] = PER_MODEL_SETTINGS) -> Hashable | None:
    """None for a run that cannot be stacked at all; else runs (on the same data) with equal keys can be one stack.

    `per_model` narrows the settings in which runs of one stack may differ (a scheduler may group fewer runs than
    the trainer could, never more): the others enter the key.
    """
    if stack_blockers([model_options], [cfg]):
        return None
    beyond = set(per_model) - PER_MODEL_SETTINGS
    if beyond:
        raise ValueError(f"stacked models cannot differ in {sorted(beyond)}; per_model must be a subset of PER_MODEL_SETTINGS")
    settings = tuple((f.name, getattr(cfg, f.name)) for f in fields(cfg) if f.name not in per_model)
    return model_key(model_options), settings
