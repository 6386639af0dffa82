"""The Forecaster's fitted state as a `FrameSchema`: old files still load, the JSON round trip, the module layering."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from samformer import Forecaster, ModelFileError
from samformer.data.series import StandardScaler
from samformer.forecasting.schema import Channels, FrameSchema
from samformer.nn.model import SAMformerConfig

from .conftest import make_frame

SRC = Path(__file__).resolve().parents[1] / "src"
FIXTURES = Path(__file__).parent / "fixtures"  # written by tests/fixtures/make_fixtures.py with the pre-schema code


# The stored forecasts were computed on another CPU. float32 kernels differ between CPUs (AVX2 against AVX-512/AMX sum
# in other orders): 1.3e-6 relative was seen between an AMD EPYC and an Intel Xeon. What must be exact is pinned bit for
# bit (the weights, the schema); the forecasts are held to 1e-5, ten times what float32 needs and far below what a wrong
# weight, scaler or channel order would change.
FORECAST_RTOL, FORECAST_ATOL = 1e-5, 1e-6


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(FIXTURES / name, index_col=0, parse_dates=True)


def _assert_weights_are_the_files(model: Forecaster, directory: Path) -> None:
    """The loaded network holds exactly the tensors of the directory's safetensors file, read by safetensors itself."""
    stored = load_file(directory / "model.safetensors")
    loaded = {name.removeprefix("net."): tensor for name, tensor in model.net_.state_dict().items()}
    assert sorted(loaded) == sorted(stored)
    for name, tensor in stored.items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor), name


def test_a_format_2_model_saved_by_the_previous_code_loads_and_forecasts_as_it_did():
    model = Forecaster.load(FIXTURES / "forecaster_v2")
    assert model.targets_ == ["c0", "c1"] and model.future_columns_ == ["price"] and len(model.calendar_columns_) > 0
    _assert_weights_are_the_files(model, FIXTURES / "forecaster_v2")
    forecast = model.predict(_read("forecaster_history.csv"), future_df=_read("forecaster_future.csv"))
    expected = _read("forecaster_v2_forecast.csv")
    assert forecast.index.equals(expected.index)
    np.testing.assert_allclose(forecast.to_numpy(), expected.to_numpy(), rtol=FORECAST_RTOL, atol=FORECAST_ATOL)
    assert list(forecast.columns) == list(expected.columns)


def test_a_format_1_model_every_channel_a_target_still_loads():
    model = Forecaster.load(FIXTURES / "forecaster_v1")
    assert model.targets_ == model.columns_ == ["c0", "c1"] and model.future_columns_ == []
    _assert_weights_are_the_files(model, FIXTURES / "forecaster_v1")
    forecast = model.predict(_read("forecaster_history.csv")[["c0", "c1"]])
    expected = _read("forecaster_v1_forecast.csv")
    assert forecast.index.equals(expected.index) and list(forecast.columns) == list(expected.columns)
    np.testing.assert_allclose(forecast.to_numpy(), expected.to_numpy(), rtol=FORECAST_RTOL, atol=FORECAST_ATOL)


def test_the_saved_section_keeps_the_keys_of_format_2(tmp_path):
    old = json.loads((FIXTURES / "forecaster_v2" / "config.json").read_text())["forecaster"]
    Forecaster.load(FIXTURES / "forecaster_v2").save(tmp_path / "m")
    new = json.loads((tmp_path / "m" / "config.json").read_text())["forecaster"]
    assert list(new) == list(old)
    assert {k: v for k, v in new.items() if k != "train_config"} == {k: v for k, v in old.items() if k != "train_config"}


def _schema() -> FrameSchema:
    channels = Channels(("a", "b", "sin"), ("a",), future=("b",), calendar=("sin",), ignored=("x",))
    scaler = StandardScaler(np.array([1.0, 2.0, 0.0]), np.array([0.5, 1.0, 1.0]))
    offsets = np.array([[-0.1, 0.0, 0.1]])
    return FrameSchema(4, 8, channels, scaler, "h", "wide", (0.1, 0.5, 0.9), offsets, {"d_model": 4}, {"lr": 0.01}, [{"epoch": 1}])


def _network(schema: FrameSchema, **changes) -> SAMformerConfig:
    config = {"n_channels": 3, "seq_len": schema.seq_len, "horizon": schema.horizon * 3, "target_channels": (0,), **changes}
    return SAMformerConfig(**config)


def test_schema_round_trips_through_json():
    schema = _schema()
    loaded = FrameSchema.from_dict(json.loads(json.dumps(schema.to_dict())), _network(schema), "config.json")
    assert loaded.channels == schema.channels and loaded.quantiles == schema.quantiles
    np.testing.assert_array_equal(loaded.interval_offsets, schema.interval_offsets)
    np.testing.assert_array_equal(loaded.scaler.std, schema.scaler.std)
    assert (loaded.freq, loaded.layout, loaded.history, loaded.model_options) == ("h", "wide", [{"epoch": 1}], {"d_model": 4})


def test_the_device_is_never_saved():
    schema = _schema().replace(train_config={"lr": 0.01, "device": "cuda"})
    assert "device" not in schema.to_dict()["train_config"]


@pytest.mark.parametrize(
    ("change", "network", "message"),
    [
        (lambda m: m.__setitem__("format", 3), {}, "forecaster format 3"),
        (lambda m: m.pop("scaler"), {}, "invalid forecaster section"),
        (lambda m: m.__setitem__("targets", ["b"]), {}, "does not match"),  # a target cannot be a future covariate
        (lambda m: m.__setitem__("interval_offsets", [[0.0, float("nan"), 0.0]]), {}, "does not match"),
        (lambda m: m["scaler"].__setitem__("std", [0.5, 0.0, 1.0]), {}, "does not match"),
        (lambda m: m.__setitem__("layout", "diagonal"), {}, "does not match"),
        (lambda m: None, {"seq_len": 9}, "does not match"),
        (lambda m: None, {"target_channels": None}, "does not match"),
    ],
)
def test_schema_refuses_a_malformed_or_mismatched_section(change, network, message):
    schema = _schema()
    meta = schema.to_dict()
    change(meta)
    with pytest.raises(ModelFileError, match=message):
        FrameSchema.from_dict(meta, _network(schema, **network), "config.json")


def test_channels_from_a_spec_and_their_roles():
    from samformer.data.channels import ChannelSpec

    frame = make_frame(10, 4)
    channels = Channels.from_spec(frame, ChannelSpec("S", ("c1",), ("c0",), ("c3",), False))
    assert channels.targets == ("c1",) and channels.future == ("c3",) and channels.ignored == ("c2",)
    roles = channels.roles()
    assert roles.targets == (channels.columns.index("c1"),) and roles.future == (channels.columns.index("c3"),)


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("samformer.forecasting.export", "samformer.forecasting.forecaster"),
        ("samformer.files", "torch"),
        ("samformer.forecasting.predictor", "samformer.forecasting.forecaster"),
    ],
)
def test_module_layering(module, forbidden):
    code = f"import sys, {module}; print({forbidden!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONPATH": str(SRC)})
    assert out.stdout.strip() == "False"
