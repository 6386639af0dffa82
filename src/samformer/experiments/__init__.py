"""Experiments: one benchmark run end to end, the grid of runs (store, scheduler, tables), sweeps on Ray,
the trainability study (toy task, sharpness, entropy) and the paper's numbers.

May import: `samformer.forecasting` (the model file), `samformer.training`, `samformer.data`, `samformer.nn`
and the foundations. Never the CLI.
"""
