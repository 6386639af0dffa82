"""Forecasting on users' frames: the `Forecaster`, its fitted state (schema), inference (`Predictor`), the model
file, ONNX export, the look-back choice, the naive baselines and the options' checks.

May import: `samformer.training`, `samformer.data`, `samformer.nn` and the foundations. Never the experiments or the CLI.
"""
