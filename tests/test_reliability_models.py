"""Saved forecasters: written as a unit, verified before use, loadable on any device (issue 20, items 2 and 3)."""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import samformer.forecasting.modelfile
from samformer import Forecaster, ModelFileError
from samformer.cli.main import main
from samformer.errors import DataError
from samformer.files import read_json
from samformer.forecasting.modelfile import MAX_DIMENSION
from samformer.nn.model import SAMformer

from .helpers import edit_config

SRC = Path(__file__).resolve().parents[1] / "src"
FIXTURES = Path(__file__).parent / "fixtures"
V1 = FIXTURES / "forecaster_v1"  # a two-channel point forecaster
HISTORY = FIXTURES / "forecaster_history.csv"


def _history() -> pd.DataFrame:
    return pd.read_csv(HISTORY, index_col=0, parse_dates=True)[["c0", "c1"]]


def _copy(tmp_path: Path, name: str = "m") -> Path:
    return Path(shutil.copytree(V1, tmp_path / name))


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


# --------------------------------------------------------- written as a unit
def test_a_failing_overwrite_leaves_the_old_model_intact_and_loadable(tmp_path, monkeypatch):
    target = _copy(tmp_path)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    expected = Forecaster.load(target).predict(_history())
    other = Forecaster(4, 16, epochs=1, batch_size=32, progress=False, seed=3, model_options={"d_model": 4}).fit(_history())
    monkeypatch.setattr(samformer.forecasting.modelfile, "write_json", _full_disk)  # the weights are written, config.json fails
    with pytest.raises(OSError, match="No space left"):
        other.save(target, overwrite=True)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    pd.testing.assert_frame_equal(Forecaster.load(target).predict(_history()), expected, check_exact=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary directory or file left behind


def test_a_failing_save_to_a_new_path_leaves_nothing(tmp_path, monkeypatch):
    model = Forecaster.load(V1)
    monkeypatch.setattr(samformer.forecasting.modelfile, "write_json", _full_disk)
    with pytest.raises(OSError):
        model.save(tmp_path / "new")
    assert list(tmp_path.iterdir()) == []


def test_a_successful_overwrite_replaces_the_whole_directory(tmp_path):
    target = _copy(tmp_path)
    Forecaster.load(FIXTURES / "forecaster_v2").save(target, overwrite=True)
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.safetensors"]
    assert Forecaster.load(target).targets_ == ["c0", "c1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_overwrite_never_deletes_files_that_are_not_the_model(tmp_path):
    target = _copy(tmp_path)
    (target / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    with pytest.raises(FileExistsError, match=r"files other than a saved model \(notes.txt\)"):
        Forecaster.load(FIXTURES / "forecaster_v2").save(target, overwrite=True)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before


def _save_in_a_fresh_process(out: Path) -> None:
    code = f"from samformer import Forecaster; Forecaster.load({str(V1)!r}).save({str(out)!r})"
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(SRC)})


def test_identical_saves_give_byte_identical_files(tmp_path):
    # the safetensors header's metadata order is random per process unless sorted
    outs = [tmp_path / f"m{i}" for i in range(4)]
    for out in outs:
        _save_in_a_fresh_process(out)
    for name in ("model.safetensors", "config.json"):
        assert len({(out / name).read_bytes() for out in outs}) == 1, name
    blob = (outs[0] / "model.safetensors").read_bytes()
    metadata = json.loads(blob[8 : 8 + int.from_bytes(blob[:8], "little")])["__metadata__"]
    assert list(metadata) == sorted(metadata)


# ------------------------------------------------------ verified before use
@pytest.fixture
def builds(monkeypatch):
    """The devices of every SAMformer built while loading ("meta" costs no memory)."""
    devices = []
    original = SAMformer.from_config

    def recording(config):
        model = original(config)
        devices.append(next(model.parameters()).device.type)
        return model

    monkeypatch.setattr(SAMformer, "from_config", staticmethod(recording))
    return devices


@pytest.mark.parametrize(
    ("change", "rechecksum", "message"),
    [
        (lambda c: c["model"].__setitem__("seq_len", 30000), False, "changed after saving"),
        (lambda c: c["model"].update(seq_len=2**21, horizon=2**21), False, "changed after saving"),
        (lambda c: c["model"].update(seq_len=2**21, horizon=2**21), True, f"at most {MAX_DIMENSION}"),
        (lambda c: c["model"].__setitem__("seq_len", 30000), True, "does not match its config"),
        (lambda c: c["model"].__setitem__("n_channels", 3), True, "does not match its config"),
    ],
)
def test_an_edited_config_is_refused_before_any_network_is_allocated(tmp_path, builds, change, rechecksum, message):
    target = _copy(tmp_path)
    edit_config(target / "config.json", change, rechecksum)
    with pytest.raises(ModelFileError, match=message):
        Forecaster.load(target)
    assert set(builds) <= {"meta"}


def test_a_deeply_nested_config_is_one_line_not_a_recursion_error(tmp_path):
    target = _copy(tmp_path)
    (target / "config.json").write_text("[" * 200000)
    with pytest.raises(ModelFileError, match="nests JSON more than") as info:
        Forecaster.load(target)
    assert "\n" not in str(info.value)
    with pytest.raises(DataError, match="more than 64 levels"):
        read_json(target / "config.json")


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"name": "[" * 1000 + '\\"{'}))
    assert read_json(path) == {"name": "[" * 1000 + '\\"{'}


def test_predict_on_a_deeply_nested_model_config_exits_2_with_one_line(tmp_path, capsys):
    target = _copy(tmp_path)
    (target / "config.json").write_text("[" * 200000)
    code = main(["predict", "--model", str(target), "--csv", str(HISTORY), "--out", str(tmp_path / "f.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "nests JSON" in err


# ------------------------------------------------------ devices at run time
def _fitted_on_cuda(tmp_path: Path) -> Path:
    target = _copy(tmp_path)
    edit_config(target / "config.json", lambda c: c["forecaster"]["train_config"].__setitem__("device", "cuda"), rechecksum=True)
    return target


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a CPU-only machine")
def test_a_model_fitted_on_cuda_loads_and_predicts_on_cpu(tmp_path):
    target = _fitted_on_cuda(tmp_path)
    expected = Forecaster.load(V1).predict(_history())
    for device in (None, "cpu", "auto"):
        model = Forecaster.load(target, device=device)
        pd.testing.assert_frame_equal(model.predict(_history()), expected, check_exact=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a CPU-only machine")
def test_predict_takes_a_device_option(tmp_path, capsys):
    target = _fitted_on_cuda(tmp_path)
    history = tmp_path / "history.csv"
    _history().to_csv(history)
    assert main(["predict", "--model", str(target), "--csv", str(history), "--out", str(tmp_path / "f.csv"), "--device", "cpu"]) == 0
    capsys.readouterr()
    code = main(["predict", "--model", str(target), "--csv", str(history), "--out", str(tmp_path / "g.csv"), "--device", "cuda"])
    err = capsys.readouterr().err
    assert code == 2 and "not available" in err and err.count("\n") == 1


@pytest.mark.parametrize("device", ["meta", "nonsense"])
def test_an_unusable_device_is_refused_in_one_line(device):
    with pytest.raises(Exception, match="device") as info:
        Forecaster.load(V1, device=device)
    assert "\n" not in str(info.value) and isinstance(info.value, ValueError)
