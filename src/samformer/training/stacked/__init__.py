"""k same-shaped SAMformers trained as one stacked network, each exactly as its own `training.fit` run would train it.

- `fit`: `fit_stacked`, the stack's side of the epoch loop shared with `training.fit` (`training.loop`).
- `optim`: `StackedSAM`, SAM around Adam with each model's own perturbation, Adam state and settings.
- `evaluation`: every model, and their mean forecast, scored on the same windows.
- `checkpoint`: the whole stack's training state, for an exact resume.
- `memory`: what a stack needs, checked before anything is allocated.
- `stackable`: the one rule for what may share a stack (with `samformer.nn.stackable`, the networks' half).

The network itself (`StackedSAMformer`) lives in `samformer.nn.stacked`.
"""
