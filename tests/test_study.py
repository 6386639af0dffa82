"""The toy task, its oracle, the six methods, the unshuffled order and `samformer study` end to end."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch
from torch import nn

from samformer.cli.main import main
from samformer.errors import SamformerError
from samformer.experiments.toy import (
    METHODS,
    PairWindows,
    StudyConfig,
    ToyConfig,
    build_method,
    linear_mse,
    make_toy_data,
    oracle,
    run_toy_study,
    train_method,
)
from samformer.nn.model import SAMformer
from samformer.nn.reparam import SigmaReparamLinear
from samformer.plots import plot_toy_entropy_factors, require_matplotlib
from samformer.training.config import TrainConfig
from samformer.training.fit import fit

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
        "sigma_reparam_all": False,
        "random_attention": False,
        "random_attention_all": False,
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


# The definitions under test: the TF code freezes its whole Keras MultiHeadAttention (Q, K, V and the output
# projection, kernels and biases); our other variant freezes only the maps that make the attention matrix.
FROZEN_PREFIXES = {
    "random_attention": ("attention.query.", "attention.key."),
    "random_attention_all": ("attention.",),
}


@pytest.mark.parametrize("method", sorted(FROZEN_PREFIXES))
def test_random_transformers_keep_exactly_their_frozen_weights(method):
    cfg = ToyConfig(seq_len=32, horizon=8, n_train=256, n_val=64, n_test=64)
    data = make_toy_data(cfg)
    model, _ = build_method(method, cfg, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = data.windows("val").x
    attn_before = model.attention.attention_weights(x).detach()
    fit(model, data, TrainConfig(epochs=1, sam=False, seed=0, device="cpu", progress=False))
    after = model.state_dict()
    assert any(name.startswith("attention.output.") for name in before)  # the TF model's W_O is there to freeze
    for name in before:
        moved = not torch.equal(before[name], after[name])
        assert moved == (not name.startswith(FROZEN_PREFIXES[method])), name  # frozen: bit-identical; others trained
    assert torch.equal(model.attention.attention_weights(x).detach(), attn_before)


def test_sigma_reparam_covers_the_attention_or_every_linear_map():
    cfg = ToyConfig(seq_len=32, horizon=8)
    attention_only, _ = build_method("sigma_reparam", cfg, seed=0)
    every_map, _ = build_method("sigma_reparam_all", cfg, seed=0)
    linear_maps = [n for n, m in build_method("transformer", cfg, seed=0)[0].named_modules() if isinstance(m, nn.Linear)]
    assert sorted(linear_maps) == ["attention.key", "attention.output", "attention.query", "attention.value", "forecaster"]
    modules = dict(every_map.named_modules())
    assert all(isinstance(modules[name], SigmaReparamLinear) for name in linear_maps)
    assert isinstance(attention_only.forecaster, nn.Linear) and not isinstance(attention_only.forecaster, SigmaReparamLinear)
    assert isinstance(attention_only.attention.output, SigmaReparamLinear)
    # Zhai et al.: the applied weight is γ W / σ(W), so its spectral norm is γ = 1 at initialisation
    applied = every_map.forecaster.effective_weight().detach()
    assert torch.linalg.matrix_norm(applied, ord=2).item() == pytest.approx(1.0, rel=1e-4)


def test_sigma_reparam_scope_round_trips_through_the_config_and_rejects_unknown_scopes():
    model = SAMformer(3, 16, 4, sigma_reparam=True, sigma_reparam_scope="all")
    rebuilt = SAMformer.from_config(model.config)
    assert isinstance(rebuilt.forecaster, SigmaReparamLinear) and rebuilt.config == model.config
    assert isinstance(SAMformer(3, 16, 4, sigma_reparam_scope="all").forecaster, nn.Linear)  # the scope alone reparametrises nothing
    with pytest.raises(ValueError, match="sigma_reparam_scope"):
        SAMformer(3, 16, 4, sigma_reparam=True, sigma_reparam_scope="forecaster")


def test_init_scale_multiplies_only_the_query_and_key_kernels():
    cfg = ToyConfig(seq_len=32, horizon=8)
    plain = build_method("transformer", cfg, seed=0)[0].state_dict()
    scaled = build_method("transformer", cfg, seed=0, init_scale=10.0)[0].state_dict()
    for name, value in plain.items():
        expected = value * 10 if name in ("attention.query.weight", "attention.key.weight") else value
        assert torch.equal(scaled[name], expected), name


@pytest.mark.parametrize("shuffle", [False, True])
def test_unshuffled_training_serves_batch_i_as_rows_32i_to_32i_plus_32(monkeypatch, shuffle):
    toy = ToyConfig(seq_len=16, horizon=4, n_train=100, n_val=20, n_test=20)  # batches of 32, 32, 32 and 4
    data = make_toy_data(toy)
    served = []
    original = PairWindows.batch

    def spy(self, index):
        x, y = original(self, index)
        if len(x) < 100:  # not the diagnostics' full-split reads
            served.append(x.clone())
        return x, y

    monkeypatch.setattr(PairWindows, "batch", spy)
    study = StudyConfig(toy=toy, epochs=2, batch_size=32, shuffle=shuffle, diagnostic_samples=100, sharpness_methods=())
    train_method("transformer", data, study)
    training = [x for x in served if len(x) in (32, 4)][:8]  # two epochs of four batches
    rows = data.windows("train").x
    in_order = [rows[32 * i : 32 * i + 32] for i in range(4)] * 2
    assert len(training) == 8
    assert all(torch.equal(a, b) for a, b in zip(training, in_order, strict=True)) == (not shuffle)


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
    for method in ("random_attention", "random_attention_all"):
        frozen = summary[method]["series"]
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


def test_study_toy_command_records_methods_and_order(tmp_path, capsys):
    out = tmp_path / "study"
    argv = ["study", "toy", "--quick", "--epochs", "1", "--methods", "transformer,random_attention_all", "--unshuffled"]
    assert main([*argv, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["methods"] == ["transformer", "random_attention_all"] and summary["settings"]["shuffle"] is False
    assert summary["settings"]["sharpness_methods"] == ["transformer"]
    assert "samformer" not in summary and summary["command"].endswith("--methods transformer,random_attention_all --unshuffled")


def test_study_figures_need_matplotlib_and_say_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(SamformerError, match=r"pip install 'samformer\[plot\]'"):
        require_matplotlib()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["study", "toy"], "--out"),
        (["study", "toy", "--out", "x", "--epochs", "0"], "positive integer"),
        (["study", "sharpness", "--dataset", "no-such-data", "--horizon", "96"], "unknown dataset"),
        (["study", "banana"], "invalid choice"),
        (["study", "toy", "--out", "x", "--methods", "transformer,banana"], "unknown method(s) banana"),
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


def test_entropy_factor_figure_has_one_panel_per_factor_with_both_models_per_setting():
    def run(entropy: float) -> dict:
        return {"series": {"epoch": [0, 1], "attention_entropy": [math.log(7), entropy]}}

    runs = {f"{s}/{m}": run(0.01) for s in ("default", "rho=2", "lr=0.003") for m in ("samformer", "transformer")}
    del runs["rho=2/transformer"]  # the rho settings train SAMformer only
    verdicts = {
        "default": {"factor": "default", "value": "defaults"},
        "rho=2": {"factor": "rho", "value": "2"},
        "lr=0.003": {"factor": "lr", "value": "0.003"},
    }
    fig = plot_toy_entropy_factors({"runs": runs, "verdicts": verdicts})
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["factor: rho", "factor: lr"]
    assert [len(ax.get_lines()) for ax in panels] == [3, 4]  # the default pair repeated in every panel
