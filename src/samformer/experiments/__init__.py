"""Experiments: one benchmark run end to end (`run`), the grid of runs as a run-file store (`store`), a scheduler
(`scheduler`) and the tables (`tables`) composed by `grid`, sweeps and searches on Ray (`sweep`), the seeds of one
run as a stack in a resumable run directory (`seeds`), the trainability study (toy task, sharpness comparison,
diagnostics) and the paper's numbers.

May import: `samformer.forecasting` (the model file), `samformer.training`, `samformer.data`, `samformer.nn`
and the foundations. Never the CLI.
"""
