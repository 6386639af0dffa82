"""Which networks may be held as one stack (`samformer.nn.stacked.StackedSAMformer`): the model half of the rule.

A stack holds k networks of one configuration as one set of parameters with a leading model axis, so its
members must be built with the same `SAMformer` options, and every option must be one the stacked network
computes. The training half (`samformer.training.stacked.stackable`) adds the training settings.

Options are `SAMformer` keyword arguments: `asdict(model.config)`, or a variant's overrides with a run's
`model_options` (the sizes then come from the data every member shares).
"""

from __future__ import annotations

import inspect
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, NamedTuple

from samformer.nn.model import SAMformer


class StackBlocker(NamedTuple):
    """One reason models cannot be trained as one stack: the option or setting at fault, and why."""

    setting: str  # the SAMformer option or TrainConfig field (or "k", "config") that stands in the way
    reason: str  # one line that starts with the setting: what is wrong, why, and what to do

    def __str__(self) -> str:
        return self.reason


# SAMformer options a stack cannot hold when true, and why.
UNSTACKABLE_OPTIONS = {
    "sigma_reparam": "σReparam networks cannot be stacked: their power-iteration state is per model; train them one at a time",
}

_DEFAULTS = {name: p.default for name, p in inspect.signature(SAMformer.__init__).parameters.items() if p.default is not p.empty}


def model_key(options: Mapping[str, Any]) -> tuple[tuple[str, Hashable], ...]:
    """What identifies the network `options` build: the options that differ from `SAMformer`'s defaults, sorted.

    Two option sets with the same key build the same network (a default given explicitly changes nothing).
    """
    given = {name: tuple(value) if isinstance(value, list) else value for name, value in options.items()}
    return tuple(sorted((name, value) for name, value in given.items() if name not in _DEFAULTS or _DEFAULTS[name] != value))


def model_blockers(options: Sequence[Mapping[str, Any]]) -> list[StackBlocker]:
    """Why networks built with `options` (one mapping per model) cannot be one stack, in a fixed order; [] if they can."""
    blockers = []
    if not options:
        blockers.append(StackBlocker("k", "k=0 (a stack needs at least one model, k >= 1)"))
    if len({model_key(o) for o in options}) > 1:
        reason = "config differs (stacked models must share one configuration: sizes, variant, targets; build them from one config)"
        blockers.append(StackBlocker("config", reason))
    for name, why in UNSTACKABLE_OPTIONS.items():
        if any(o.get(name) for o in options):
            blockers.append(StackBlocker(name, f"{name}=True ({why})"))
    return blockers
