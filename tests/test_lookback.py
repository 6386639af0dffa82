"""The look-back chosen on validation: candidates, the search's bookkeeping, and the Forecaster's default."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from samformer import Forecaster
from samformer.cli.main import main
from samformer.errors import DataError
from samformer.forecasting.lookback import MAX_CANDIDATES, Trial, lookback_candidates, min_train_rows, search_lookback

from .conftest import make_frame

FAST = {"epochs": 2, "batch_size": 64, "progress": False}


def test_candidates_are_multiples_of_horizon_and_season_within_bounds():
    # ETTh1-like: 8640 training rows, H = 96, daily season 24 -> from max(H, s) = 96 up to the paper's 512
    assert lookback_candidates(8640, 96, 24) == [96, 192, 384, 512]
    # quarterly, 129 training rows, H = 4: up to (129 - 4) // 2 = 62, at most MAX_CANDIDATES of them
    candidates = lookback_candidates(129, 4, 4)
    assert candidates[0] == 4 and candidates[-1] == 62 and len(candidates) == MAX_CANDIDATES
    assert all((L % 4 == 0 or L == 62) and 2 * L + 4 <= 129 for L in candidates)


def test_a_series_too_short_for_any_look_back_names_the_minimum():
    with pytest.raises(DataError, match=f"at least {min_train_rows(10)} are needed"):
        lookback_candidates(min_train_rows(10) - 1, 10, None)
    with pytest.raises(DataError, match=rf"12 rows before the validation part .* at least {min_train_rows(6)} are needed.*set seq_len"):
        Forecaster(6, **FAST).fit(make_frame(18, 1), val_size=6)


def test_search_keeps_the_best_and_trains_it_fully_unless_it_already_was():
    calls = []

    def train(seq_len: int, epochs: int) -> Trial[str]:
        calls.append((seq_len, epochs))
        score = {8: 0.5, 16: 0.2, 32: 0.3}[seq_len]
        return Trial(seq_len, score, epochs if seq_len != 32 else 3, f"run L={seq_len} e={epochs}")

    final, table = search_lookback([8, 16, 32], train, search_epochs=5, full_epochs=100)
    assert final == "run L=16 e=100" and calls == [(8, 5), (16, 5), (32, 5), (16, 100)]
    assert table["chosen"].tolist() == [False, True, False] and table.loc[16, "val_score"] == 0.2
    calls.clear()  # a full-length search run (epochs within one cycle) is kept as it is
    final, _ = search_lookback([8, 16], train, search_epochs=5, full_epochs=2)
    assert final == "run L=16 e=2" and calls == [(8, 2), (16, 2)]


def test_default_forecaster_chooses_the_look_back_with_the_lowest_validation_score(tmp_path):
    frame = make_frame(500, 2)
    model = Forecaster(6, **FAST).fit(frame)  # epochs 2 <= one cosine cycle: the winning search run is the model
    table = model.selection_
    assert model.seq_len_ == table["val_score"].idxmin() == table.index[table["chosen"]][0]
    assert list(table.index) == lookback_candidates(400, 6, 24) and (table["epochs"] <= 2).all()
    # same seed for every candidate: the chosen one is exactly a fit with that seq_len
    direct = Forecaster(6, model.seq_len_, **FAST).fit(frame)
    pd.testing.assert_frame_equal(model.predict(), direct.predict())
    assert direct.selection_ is None
    model.save(tmp_path / "m")
    loaded = Forecaster.load(tmp_path / "m")
    assert loaded.seq_len_ == model.seq_len_ and loaded.selection_.equals(table)
    pd.testing.assert_frame_equal(loaded.predict(frame), model.predict(frame))
    assert len(loaded.backtest(frame, start=-20).forecasts) > 0


def test_fit_cli_reports_the_search_and_the_validation_skill(capsys, tmp_path):
    import json

    make_frame(400, 2).to_csv(tmp_path / "s.csv")
    argv = ["fit", "--csv", tmp_path / "s.csv", "--horizon", "6", "--out", tmp_path / "m", "--epochs", "1", "--batch-size", "64", "--quiet"]
    assert main([str(a) for a in argv]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["seq_len"] in [row["seq_len"] for row in report["selection"]]
    assert set(report["validation"]) == {"c0", "c1", "overall"}
    assert {"mse", "naive_mse", "seasonal_naive_mse", "skill"} <= set(report["validation"]["overall"])
    assert Forecaster.load(tmp_path / "m").seq_len_ == report["seq_len"]
    np.testing.assert_equal(report["season"], 24)
