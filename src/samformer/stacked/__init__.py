"""k SAMformers of identical shapes trained as one stacked network, each exactly as its own run would train it.

- `network`: `StackedSAMformer`, the k models' parameters with a leading model axis, and their forward pass.
- `fused`: `samformer.fused`'s forward and backward passes with that model axis.
- `optim`: `StackedSAM`, SAM around Adam with each model's own perturbation, Adam state and settings.
- `fit`: `fit_stacked`, the stack's side of the epoch loop shared with `train.fit` (`samformer.loop`).
- `evaluation`: every model, and their mean forecast, scored on the same windows.
- `checkpoint`: the whole stack's training state, for an exact resume.
- `memory`: what a stack needs, checked before anything is allocated.
"""

from samformer.stacked.evaluation import evaluate_stacked, mean_forecast, score_stacked
from samformer.stacked.fit import fit_stacked, seeded_models
from samformer.stacked.memory import StackMemoryError, check_stack_memory
from samformer.stacked.network import StackedSAMformer

__all__ = [
    "StackMemoryError",
    "StackedSAMformer",
    "check_stack_memory",
    "evaluate_stacked",
    "fit_stacked",
    "mean_forecast",
    "score_stacked",
    "seeded_models",
]
