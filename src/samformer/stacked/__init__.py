"""k SAMformers of identical shapes trained as one stacked network, each exactly as its own run would train it.

- `network`: `StackedSAMformer`, the k models' parameters with a leading model axis, and their forward pass.
- `fused`: `samformer.fused`'s forward and backward passes with that model axis.
- `optim`: `StackedSAM`, SAM around Adam with each model's own perturbation, Adam state and settings.
- `fit`: `fit_stacked`, the stack's side of the epoch loop shared with `train.fit` (`samformer.loop`).
- `evaluation`: every model, and their mean forecast, scored on the same windows.
- `checkpoint`: the whole stack's training state, for an exact resume.
- `memory`: what a stack needs, checked before anything is allocated.
"""

from importlib import import_module
from typing import Any

# Exported names and their modules, imported on first use: the model format (`samformer.modelfile`) reads
# `network` while `fit` sits above it (checkpoints write through the model format).
_EXPORTS = {
    "StackMemoryError": "memory",
    "StackedSAMformer": "network",
    "check_stack_memory": "memory",
    "evaluate_stacked": "evaluation",
    "fit_stacked": "fit",
    "mean_forecast": "evaluation",
    "score_stacked": "evaluation",
    "seeded_models": "fit",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'samformer.stacked' has no attribute {name!r}")
    return getattr(import_module(f"samformer.stacked.{_EXPORTS[name]}"), name)
