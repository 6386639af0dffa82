"""Training: the configuration, SAM, the loss-and-gradient steps, the one epoch loop, evaluation, checkpoints,
data-parallel plumbing, Lightning, and the stacked trainer (`training.stacked`: k models as one network).

May import: `samformer.nn`, `samformer.data`, `samformer.errors`, `samformer.files`, `samformer.metrics`.
Never the forecasting layer, the experiments or the CLI.
"""
