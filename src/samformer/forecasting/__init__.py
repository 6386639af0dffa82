"""Forecasting on users' frames: the `Forecaster` (a thin estimator: options and fitted state) and the functions it
calls — `options`/`arguments` (checks), `preparation` and `fitting` (fit pipeline), `windowing` (the one
standardise-and-window path), `inference`, `backtest`, `persistence` — with the fitted state (`schema`), the
conversion to original units (`predictor`), the model file, ONNX export, the look-back choice and the baselines.

May import: `samformer.training`, `samformer.data`, `samformer.nn` and the foundations. Never the experiments or the CLI.
"""
