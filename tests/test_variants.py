"""One contract over every registered variant and both training precisions (timm's `test_models`,
neuralforecast's `check_model`): output shape, fused pass = plain modules, one training epoch with the
variant's own SAM setting, save/load round trip, ONNX export."""

from __future__ import annotations

import copy

import pytest
import torch

from samformer.data.series import split_frame
from samformer.forecasting.modelfile import load_model, save_model
from samformer.nn.model import VARIANTS, Variant, create_model, list_variants, variant_uses_sam
from samformer.training.config import TrainConfig, seed_everything
from samformer.training.fit import fit

from .conftest import make_frame

B, L, D, H = 6, 16, 4, 4  # B·D = 24 ≥ H: the fused pass applies under fused="auto"


def _random_weights(model: torch.nn.Module, seed: int = 0) -> None:
    """Weights away from the initialisation (RevIN's affine near 1, everything else of order 0.3)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.3 + (1.0 if p.ndim == 1 and p.shape[0] == D else 0.0))


def _onnx_agrees_with_torch(model: torch.nn.Module, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    path = tmp_path / "model.onnx"
    axes = {"x": {0: "batch"}, "y": {0: "batch"}}
    torch.onnx.export(model, (torch.randn(B, L, D),), str(path), input_names=["x"], output_names=["y"], dynamic_axes=axes, dynamo=False)
    x = torch.randn(3, L, D)
    with torch.no_grad(), model.plain_modules():  # the reference: the modules, whatever the export recorded
        expected = model(x).numpy()
    (got,) = ort.InferenceSession(str(path)).run(None, {"x": x.numpy()})
    assert got.shape == expected.shape == (3, H, D)
    assert abs(got - expected).max() < 1e-4


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("variant", list_variants())
def test_variant_contract(variant, precision, tmp_path):
    torch.manual_seed(0)
    x = torch.randn(B, L, D) * 2 + 1

    # output shape
    model = create_model(variant, D, L, H)
    assert model(x).shape == (B, H, D)

    # the fused pass (where the layers allow it) computes the plain modules' function: float64, so only the
    # order of the arithmetic differs
    fused = create_model(variant, D, L, H, fused=True).double()
    _random_weights(fused)
    assert fused.uses_fused(x.transpose(1, 2)) == fused.can_fuse()
    with torch.no_grad():
        got = fused(x.double())
        with fused.plain_modules():
            assert not fused.uses_fused(x.transpose(1, 2))
            expected = fused(x.double())
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)

    # one epoch with the variant's own optimiser (SAM or Adam) moves every weight that learns, and stays finite
    data = split_frame(make_frame(160, n_channels=D), L, H)
    seed_everything(0)
    model = create_model(variant, D, L, H)
    before = copy.deepcopy(model.state_dict())
    cfg = TrainConfig(epochs=1, batch_size=16, sam=variant_uses_sam(variant), precision=precision, device="cpu", progress=False)
    result = fit(model, data, cfg)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert torch.isfinite(torch.tensor(result.history[0]["train_loss"]))
    # the key bias shifts a whole row of scores, which softmax ignores: its gradient is 0 up to rounding
    learning = [name for name, _ in model.named_parameters() if name != "attention.key.bias"]
    assert all(not torch.equal(model.get_parameter(name), before[name]) for name in learning)

    # save/load round trip gives the same forecasts
    model.eval()
    save_model(tmp_path / "saved", model)
    loaded, _ = load_model(tmp_path / "saved")
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)

    # ONNX export agrees with torch
    _onnx_agrees_with_torch(model, tmp_path)


def test_the_registry_is_frozen_and_named_by_its_keys():
    assert all(isinstance(v, Variant) and v.name == name and v.description for name, v in VARIANTS.items())
    with pytest.raises(AttributeError):
        VARIANTS["samformer"].uses_sam = False  # type: ignore[misc]
    assert [variant_uses_sam(v) for v in ("samformer", "no-sam", "sigma-reparam")] == [True, False, False]
