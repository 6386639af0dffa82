"""Hostile arguments at the library's boundaries: `SAMformer`, `SAM`, `load_dataset`, the Forecaster's argument checks
(`samformer.forecasting.arguments`), long and wide frames, memory beyond the machine, and the exact conformal rank.

Each refusal is an exception of samformer's own (a `SamformerError`, or a `ValueError` raised by samformer's
code) with a one-line message naming the argument; nothing raised from inside pandas, torch or pathlib.
"""

from __future__ import annotations

import math
import traceback
import warnings
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import torch

from samformer import SAM, SAMformer, load_dataset
from samformer.data.frames import to_wide
from samformer.errors import ConfigError
from samformer.forecasting.arguments import check_backtest_start, check_column_list, check_model_options, check_model_path
from samformer.nn.memory import ModelMemoryError, check_memory, training_bytes, weight_floats
from samformer.nn.model import SAMformerConfig
from samformer.nn.quantile import conformal_offsets, conformal_rank


def raised_by_samformer(exc: BaseException) -> bool:
    """Whether the innermost frame that raised `exc` is samformer's own code (not pandas', torch's or pathlib's)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and "/samformer/" in frames[-1].filename


def weights() -> list[torch.nn.Parameter]:
    return list(torch.nn.Linear(2, 2).parameters())


BOUNDARY: dict[str, tuple[Callable[[], object], str]] = {
    "SAMformer value_dim=True": (lambda: SAMformer(3, 8, 2, value_dim=True), "value_dim"),
    "SAMformer attention='no'": (lambda: SAMformer(3, 8, 2, attention="no"), "attention"),
    "SAMformer revin=None": (lambda: SAMformer(3, 8, 2, revin=None), "revin"),
    "SAMformer sigma_reparam=1": (lambda: SAMformer(3, 8, 2, sigma_reparam=1), "sigma_reparam"),
    "SAMformer target_channels='ab'": (lambda: SAMformer(3, 8, 2, target_channels="ab"), "target_channels"),
    "SAMformer target_channels=[1.5]": (lambda: SAMformer(3, 8, 2, target_channels=[1.5]), "target_channels"),
    "SAMformer target_channels=5": (lambda: SAMformer(3, 8, 2, target_channels=5), "target_channels"),
    "SAMformer n_channels='3'": (lambda: SAMformer("3", 8, 2, target_channels=[0]), "n_channels"),
    "SAMformer seq_len=0": (lambda: SAMformer(3, 0, 2), "seq_len"),
    "SAM rho='a'": (lambda: SAM(weights(), torch.optim.Adam, rho="a"), "rho"),
    "SAM rho=nan": (lambda: SAM(weights(), torch.optim.Adam, rho=float("nan")), "rho"),
    "SAM rho=-1": (lambda: SAM(weights(), torch.optim.Adam, rho=-1.0), "rho"),
    "SAM adaptive='yes'": (lambda: SAM(weights(), torch.optim.Adam, adaptive="yes"), "adaptive"),
    "SAM base_optimizer='adam'": (lambda: SAM(weights(), "adam"), "base_optimizer"),
    "SAM base_optimizer=an instance": (lambda: SAM(weights(), torch.optim.Adam(weights())), "base_optimizer"),
    "SAM params=[]": (lambda: SAM([], torch.optim.Adam), "params"),
    "SAM params=a module": (lambda: SAM(torch.nn.Linear(2, 2), torch.optim.Adam), "params"),
    "SAM lr=-1": (lambda: SAM(weights(), torch.optim.Adam, lr=-1), "lr=-1"),
    "SAM an unknown option": (lambda: SAM(weights(), torch.optim.Adam, momentum_typo=1), "momentum_typo"),
    "load_dataset(None)": (lambda: load_dataset(None), "source"),
    "load_dataset(3)": (lambda: load_dataset(3), "source"),
    "load_dataset seq_len='a'": (lambda: load_dataset("ETTh1", seq_len="a"), "seq_len"),
    "load_dataset horizon=1.5": (lambda: load_dataset("ETTh1", horizon=1.5), "horizon"),
    "load_dataset horizon=True": (lambda: load_dataset("ETTh1", horizon=True), "horizon"),
    "load_dataset data_dir=5": (lambda: load_dataset("ETTh1", data_dir=5), "data_dir"),
    "load_dataset download='no'": (lambda: load_dataset("ETTh1", download="no"), "download"),
    "load_dataset channels='OT'": (lambda: load_dataset("ETTh1", channels="OT"), "channels"),
    "load_dataset a NUL in the path": (lambda: load_dataset("a\0b.csv"), "source"),
    "Forecaster.load(None)": (lambda: check_model_path(None), "path"),
    "Forecaster.load(3)": (lambda: check_model_path(3), "path"),
    "Forecaster.save('')": (lambda: check_model_path(""), "path"),
    "backtest start='soon'": (lambda: check_backtest_start("soon"), "start"),
    "backtest start=True": (lambda: check_backtest_start(True), "start"),
    "backtest start=[1]": (lambda: check_backtest_start([1]), "start"),
    "backtest start=nan": (lambda: check_backtest_start(float("nan")), "start"),
    "backtest start=1.5": (lambda: check_backtest_start(1.5), "start"),
    "backtest start='NaT'": (lambda: check_backtest_start("NaT"), "start"),
    "model_options=[1]": (lambda: check_model_options([1]), "model_options"),
    "model_options={1: 2}": (lambda: check_model_options({1: 2}), "model_options"),
    "past_covariates=5": (lambda: check_column_list("past_covariates", 5), "past_covariates"),
    "future_covariates='price'": (lambda: check_column_list("future_covariates", "price"), "future_covariates"),
}


@pytest.mark.parametrize("case", list(BOUNDARY))
def test_a_bad_argument_is_refused_by_samformer_naming_it(case):
    call, name = BOUNDARY[case]
    with pytest.raises((ConfigError, ValueError)) as refused:
        call()
    assert raised_by_samformer(refused.value), traceback.format_exception(refused.value)[-3:]
    message = str(refused.value)
    assert name in message and "\n" not in message, message


@pytest.mark.parametrize(
    ("start", "expected"),
    [(None, None), (5, 5), (np.int64(5), 5), (-3, -3), (0.25, 0.25), ("2020-01-02", pd.Timestamp("2020-01-02"))],
)
def test_backtest_start_keeps_every_accepted_form(start, expected):
    checked = check_backtest_start(start)
    assert checked == expected and type(checked) is type(expected)  # a NumPy integer is a row number, not nanoseconds


# --- frames: unhashable keys, complex and text columns, each named ---------------------------------------------

TIMES = pd.date_range("2020-01-01", periods=6, freq="h")
FRAMES = {
    "unique_id lists": (pd.DataFrame({"unique_id": [[1]] * 6, "ds": TIMES, "y": 1.0}), r"'unique_id' holds list \[1\] at row 0"),
    "unique_id dicts": (pd.DataFrame({"unique_id": [{"a": 1}] * 6, "ds": TIMES, "y": 1.0}), r"'unique_id' holds dict"),
    "unique_id mixed, one list": (
        pd.DataFrame({"unique_id": ["a", "a", "a", "b", "b", ["b"]], "ds": list(TIMES[:3]) * 2, "y": 1.0}),
        r"holds list \['b'\] at row 5",
    ),
    "ds lists": (pd.DataFrame({"unique_id": "a", "ds": [[t] for t in TIMES], "y": 1.0}), r"'ds' holds list"),
    "y complex (long)": (pd.DataFrame({"unique_id": "a", "ds": TIMES, "y": np.arange(6) + 1j}), r"column\(s\) a hold complex numbers"),
    "a complex column (wide)": (pd.DataFrame({"x": np.arange(6) * 1j, "z": 1.0}, index=TIMES), r"column\(s\) x hold complex numbers"),
    "complex64 column": (pd.DataFrame({"w": np.ones(6, np.complex64)}, index=TIMES), r"column\(s\) w hold complex"),
    "a text column": (pd.DataFrame({"x": list("abcdef"), "z": 1.0}, index=TIMES), r"column\(s\) x are not numeric"),
    "a column of complex Python objects": (
        pd.DataFrame({"x": pd.Series([1 + 1j] * 6, dtype=object), "z": 1.0}, index=TIMES),
        r"column\(s\) x (are not numeric|hold complex)",
    ),
}


@pytest.mark.parametrize("case", list(FRAMES))
def test_frames_refuse_unhashable_keys_and_non_real_columns_by_name(case):
    frame, pattern = FRAMES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)  # the imaginary part is never dropped silently
        with pytest.raises(ValueError, match=pattern) as refused:
            to_wide(frame)
    assert raised_by_samformer(refused.value)


# --- memory: estimated from the configuration, refused before allocating ---------------------------------------

VARIANTS = [
    {},
    {"value_dim": 5},
    {"attention": False},
    {"revin": False},
    {"sigma_reparam": True},
    {"sigma_reparam": True, "sigma_reparam_scope": "all", "value_dim": 4},
]


@pytest.mark.parametrize("options", VARIANTS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_the_weight_estimate_is_the_number_of_values_the_network_holds(options):
    model = SAMformer(4, 12, 3, d_model=6, **options)
    held = sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())
    assert weight_floats(model.config) == held


def test_the_training_estimate_counts_the_attention_and_the_optimizer_copies():
    config = SAMformerConfig(10, 8, 2, d_model=4)
    # per window: 3 D×D attention copies + 2 × D × (3L + 2H + 2d + L + L) activations; per weight: w, g, 2 Adam moments,
    # the best weights, and SAM's copy (by hand: L=8, H=2, d=4, D=10)
    per_window = 3 * 10 * 10 + 2 * 10 * (24 + 4 + 8 + 8 + 8)
    assert training_bytes(config, 7, sam=True) == 4 * (6 * weight_floats(config) + 7 * per_window)
    assert training_bytes(config, 7, sam=False) == training_bytes(config, 7, sam=True) - 4 * weight_floats(config)


def test_a_model_larger_than_memory_is_refused_with_its_estimate_before_allocating():
    config = SAMformerConfig(7, 24, 4, value_dim=10**12)
    expected_tb = 4 * weight_floats(config) / 2**40  # ~2·L·value_dim floats: about 175 TiB
    with pytest.raises(ModelMemoryError, match=r"needs about (\d+\.\d) TB for its weights.*use a smaller value_dim") as refused:
        SAMformer(7, 24, 4, value_dim=10**12)
    assert math.isclose(float(refused.value.args[0].split("about ")[1].split(" TB")[0]), expected_tb, rel_tol=1e-3)
    assert raised_by_samformer(refused.value)


@pytest.mark.parametrize(("batch_size", "available", "refused"), [(32, 10**9, False), (32, 10**4, True), (2**20, 10**9, True)])
def test_a_training_step_is_compared_with_what_the_machine_has(batch_size, available, refused):
    config = SAMformerConfig(20, 48, 12)
    if not refused:
        check_memory(config, batch_size, available=available)
        return
    with pytest.raises(ModelMemoryError, match=rf"training at batch_size={batch_size}.*a smaller batch_size"):
        check_memory(config, batch_size, available=available)


def test_unknown_available_memory_refuses_nothing():
    check_memory(SAMformerConfig(7, 24, 4, value_dim=10**12), 32, device="meta")  # no figure for a meta device


# --- the conformal rank, exact -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "lower", "upper"),
    [(9, 0.2, 0.8), (4, 0.2, 0.8), (19, 0.1, 0.9), (99, 0.05, 0.95), (14, 0.3, 0.7), (9, 0.1, 0.9), (7, 0.25, 0.75)],
)
def test_the_conformal_rank_is_the_exact_ceiling(n, lower, upper):
    exact = math.ceil((n + 1) * (Fraction(str(upper)) - Fraction(str(lower))))  # decimal levels as exact fractions
    assert conformal_rank(n, lower, upper) == min(exact, n)


def test_scores_one_to_nine_at_levels_point_two_and_point_eight_widen_by_the_sixth():
    # Hand-computed: zero-width bands, actuals 1..9, so the scores are 1..9; c = 0.6 exactly, ⌈(9 + 1)·0.6⌉ = 6.
    # In floating point 0.8 - 0.2 = 0.6000000000000001 and the ceiling came out 7.
    actuals = np.arange(1.0, 10.0).reshape(9, 1, 1)
    forecasts = np.zeros((9, 1, 1, 3))
    offsets = conformal_offsets(forecasts, actuals, (0.2, 0.5, 0.8))
    assert offsets.tolist() == [[-6.0, 0.0, 6.0]]
