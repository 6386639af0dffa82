"""The toy task, its oracle, the four methods and `samformer study` end to end."""

from __future__ import annotations

import json
import math

import pytest
import torch

from samformer.cli import main
from samformer.reparam import SigmaReparamLinear
from samformer.toy import METHODS, StudyConfig, ToyConfig, build_method, linear_mse, make_toy_data, oracle, run_toy_study
from samformer.train import TrainConfig, fit

SMALL = ToyConfig(seq_len=64, horizon=16, n_train=2000, n_val=400, n_test=200)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_toy_data_follow_the_written_generator():
    data = make_toy_data(SMALL)
    train = data.windows("train")
    assert train.x.shape == (2000, 7, 64) and train.y.shape == (2000, 7, 16) and data.w_toy.shape == (64, 16)
    assert [len(data.windows(s)) for s in ("train", "val", "test")] == [2000, 400, 200]
    noise = train.y - train.x @ data.w_toy
    assert noise.mean().item() == pytest.approx(0.0, abs=0.01)
    assert noise.std().item() == pytest.approx(1.0, abs=0.01)
    assert data.w_toy.std().item() == pytest.approx(1.0, abs=0.05) and train.x.std().item() == pytest.approx(1.0, abs=0.01)


def test_toy_data_repeat_with_the_seed():
    a, b, c = make_toy_data(SMALL), make_toy_data(SMALL), make_toy_data(ToyConfig(**{**SMALL.__dict__, "seed": 0}))
    assert torch.equal(a.windows("val").y, b.windows("val").y)
    assert not torch.equal(a.w_toy, c.w_toy)


@pytest.mark.parametrize("noise_std", [1.0, 0.5])
def test_oracle_reaches_the_noise_variance(noise_std):
    data = make_toy_data(ToyConfig(**{**SMALL.__dict__, "noise_std": noise_std}))
    w_hat, val_loss = oracle(data)
    # least squares on 14000 rows with 64 unknowns: expected σ²(1 + 64/13936); sampling error ≈ 1%
    assert val_loss == pytest.approx(noise_std**2, rel=0.04)
    assert linear_mse(data.w_toy, data.windows("val")) == pytest.approx(noise_std**2, rel=0.04)
    assert torch.allclose(w_hat.float(), data.w_toy, atol=0.1 * noise_std)
    assert linear_mse(torch.zeros_like(data.w_toy), data.windows("val")) > 50  # the task is not trivial: Var(Y) ≈ L


def test_methods_differ_only_as_described():
    cfg = ToyConfig(seq_len=16, horizon=4)
    models = {m: build_method(m, cfg, seed=0) for m in METHODS}
    assert {m: sam for m, (_, sam) in models.items()} == {
        "transformer": False,
        "samformer": True,
        "sigma_reparam": False,
        "random_attention": False,
    }
    assert all(model.revin is None for model, _ in models.values())
    assert isinstance(models["sigma_reparam"][0].attention.query, SigmaReparamLinear)
    # the paper's section-2 model: values L→16 and an output projection 16→L, Keras initialisation (zero biases)
    plain = models["transformer"][0].attention
    assert plain.value.weight.shape == (16, 16) and plain.output is not None and plain.output.weight.shape == (16, 16)
    assert all(torch.count_nonzero(layer.bias) == 0 for layer in (plain.query, plain.key, plain.value, plain.output))
    # "Random Transformer": the attention matrix is frozen (W_Q, W_K), everything else trains
    frozen = models["random_attention"][0]
    frozen_ids = {id(p) for layer in (frozen.attention.query, frozen.attention.key) for p in layer.parameters()}
    assert len(frozen_ids) == 4
    assert all(p.requires_grad == (id(p) not in frozen_ids) for p in frozen.parameters())
    # the same draw for the same seed: the Transformer and SAMformer start from identical weights
    a, b = models["transformer"][0].state_dict(), models["samformer"][0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_pytorch_value_map_is_still_available():
    model, _ = build_method("transformer", ToyConfig(seq_len=16, horizon=4), seed=0, value_dim=None, init="torch")
    assert model.attention.output is None and model.attention.value.weight.shape == (16, 16)
    assert torch.count_nonzero(model.attention.value.bias) > 0  # nn.Linear's uniform bias, not Keras' zeros


def test_random_attention_trains_the_values_but_not_the_attention_matrix():
    cfg = ToyConfig(seq_len=32, horizon=8, n_train=256, n_val=64, n_test=64)
    data = make_toy_data(cfg)
    model, _ = build_method("random_attention", cfg, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = data.windows("val").x
    attn_before = model.attention.attention_weights(x).detach()
    fit(model, data, TrainConfig(epochs=1, sam=False, seed=0, device="cpu", progress=False))
    after = model.state_dict()
    for name in before:
        moved = not torch.equal(before[name], after[name])
        assert moved == (not name.startswith(("attention.query.", "attention.key."))), name
    assert torch.equal(model.attention.attention_weights(x).detach(), attn_before)


def tiny_study(**overrides) -> dict:
    toy = ToyConfig(seq_len=32, horizon=8, n_train=256, n_val=64, n_test=64)
    return run_toy_study(StudyConfig(toy=toy, epochs=2, diagnostic_samples=32, sharpness_iterations=8, **overrides))


def test_study_summary_has_every_series_and_the_frozen_attention_does_not_move():
    summary = tiny_study()
    assert summary["oracle_val_loss"] > 0
    for method in METHODS:
        entry = summary[method]
        series = entry["series"]
        assert series["epoch"] == [0, 1, 2]
        assert entry["final_val_loss"] == series["val_loss"][-1] and entry["final_entropy"] == series["attention_entropy"][-1]
        assert all(0 <= e <= math.log(7) + 1e-6 for e in series["attention_entropy"])
    assert summary["transformer"]["final_sharpness"] > 0 and summary["samformer"]["final_sharpness_full_train"] > 0
    assert summary["sigma_reparam"]["final_sharpness"] is None  # only the two compared methods pay for λmax
    # frozen attention: the same attention matrices at every epoch
    frozen = summary["random_attention"]["series"]
    assert frozen["attention_entropy"] == pytest.approx([frozen["attention_entropy"][0]] * 3, rel=1e-6)
    assert frozen["val_loss"][-1] < frozen["val_loss"][0]  # yet the forecaster learns


def test_study_toy_command_writes_figures_and_summary(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["study", "toy", "--quick", "--epochs", "1", "--out", str(out)]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    summary = json.loads((out / "summary.json").read_text())  # strict JSON: no NaN
    assert set(METHODS) <= set(last) and last["oracle_val_loss"] == summary["oracle_val_loss"]
    for method in METHODS:
        for key in ("final_val_loss", "final_sharpness", "final_entropy"):
            assert key in summary[method]
        assert len(summary[method]["series"]["val_loss"]) == 2
    for name in ("val_loss", "sharpness", "entropy", "nuclear_norm"):
        assert (out / f"{name}.png").read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.parametrize(
    "argv, message",
    [
        (["study", "toy"], "--out"),
        (["study", "toy", "--out", "x", "--epochs", "0"], "positive integer"),
        (["study", "sharpness", "--dataset", "no-such-data", "--horizon", "96"], "unknown dataset"),
        (["study", "banana"], "invalid choice"),
    ],
)
def test_bad_study_input_is_a_one_line_error(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_study_sharpness_on_etth1_prints_both_models(data_dir, capsys, tmp_path):
    argv = ["study", "sharpness", "--dataset", "ETTh1", "--horizon", "24", "--epochs", "1", "--samples", "64"]
    assert main([*argv, "--data-dir", str(data_dir), "--out", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for model in ("transformer", "samformer"):
        assert result[model]["sharpness"] > 0 and 0 <= result[model]["attention_entropy"] <= math.log(7) + 1e-6
        assert 1 - 1e-6 <= result[model]["nuclear_norm"] <= 7 + 1e-6
    assert json.loads((tmp_path / "summary.json").read_text()) == result
