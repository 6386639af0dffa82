"""The one `stackable` rule against what the stacked trainer does: every case it accepts trains stacked exactly as
alone, every case it refuses is refused by the trainer with the blocker named."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, fields

import pytest
import torch

from samformer.errors import SamformerError
from samformer.experiments.run import RunSpec, execute_stacked
from samformer.nn.stackable import model_blockers, model_key
from samformer.nn.stacked import StackedSAMformer
from samformer.training.config import TrainConfig
from samformer.training.stacked.fit import fit_stacked
from samformer.training.stacked.stackable import PER_MODEL_SETTINGS, SHARED_SETTINGS, stack_blockers, stack_key

from .test_stacked import build, max_weight_diff, separate_and_stacked, small_data

# One value per TrainConfig field other than the default (and other than each other's), for the settings a test
# may set on a tiny problem; a new field must be added here, so that the rule decides about it.
OTHER_VALUE = {
    "lr": 3e-3,
    "batch_size": 8,
    "epochs": 3,
    "patience": 1,
    "sam": False,
    "rho": 0.3,
    "adaptive": True,
    "weight_decay": 1e-3,
    "lr_schedule": "constant",
    "restart_period": 2,
    "min_lr": 1e-4,
    "seed": 5,
    "device": "cpu",
    "precision": "bf16",
    "eval_batch_size": 7,
    "progress": True,
    "compile": True,
    "shuffle": False,
}
BASE = TrainConfig(epochs=2, batch_size=16, progress=False)


def test_every_training_setting_is_decided_by_the_rule() -> None:
    assert set(OTHER_VALUE) == {f.name for f in fields(TrainConfig)}
    assert PER_MODEL_SETTINGS | set(SHARED_SETTINGS) | {"compile"} == set(OTHER_VALUE)
    assert not PER_MODEL_SETTINGS & set(SHARED_SETTINGS)


@pytest.mark.parametrize("name", sorted(OTHER_VALUE))
def test_the_rule_accepts_a_setting_exactly_when_the_trainer_trains_it_as_alone(name: str) -> None:
    """Two models whose settings differ in `name` only: accepted -> stacked training is each model's own; refused ->
    `fit_stacked` refuses it with the blocker named (by its setting)."""
    cfgs = [BASE, dataclasses.replace(BASE, **{name: OTHER_VALUE[name]})]
    if name == "epochs":
        cfgs = [dataclasses.replace(BASE, epochs=1), cfgs[1]]
    options = {}
    blockers = stack_blockers([options, options], cfgs)
    if blockers:
        assert [b.setting for b in blockers] == [name]
        with pytest.raises(SamformerError, match=f"one stack: {name}"):
            fit_stacked([build(0, options, None), build(1, options, None)], small_data(options), cfgs)
        return
    assert name in PER_MODEL_SETTINGS
    cfgs = [dataclasses.replace(c, seed=s) if name != "seed" else c for c, s in zip(cfgs, (0, 1), strict=True)]
    # fused=True: one algebra alone and stacked ("auto" computes the values on a ragged last batch; see test_stacked)
    singles, single_results, stacked, results = separate_and_stacked(small_data(options), cfgs, options, True)
    for single, result, model, stacked_result in zip(singles, single_results, stacked, results, strict=True):
        assert max_weight_diff(single, model) < 1e-10
        assert (stacked_result.best_epoch, stacked_result.epochs_run) == (result.best_epoch, result.epochs_run)


# SAMformer options other than the default; sigma_reparam_scope and init with and without σReparam.
MODEL_OPTIONS = [
    {"value_dim": 4},
    {"attention": False},
    {"revin": False},
    {"init": "keras"},
    {"target_channels": (2, 0)},
    {"sigma_reparam": True},
    {"sigma_reparam": True, "sigma_reparam_scope": "all"},
]


@pytest.mark.parametrize("options", MODEL_OPTIONS, ids=lambda o: ",".join(o))
def test_the_rule_accepts_a_network_exactly_when_the_stack_computes_each_models_function(options: dict) -> None:
    models = [build(seed, options, None) for seed in range(2)]
    blockers = model_blockers([asdict(m.config) for m in models])
    if blockers:
        assert [b.setting for b in blockers] == ["sigma_reparam"]
        with pytest.raises(SamformerError, match="sigma_reparam=True"):
            StackedSAMformer(models)
        return
    x = torch.randn(2, 4, 3, 48, generator=torch.Generator().manual_seed(0), dtype=torch.float64)  # (k, B, D, L)
    expected = torch.stack([m.forward_channels_first(x[j]) for j, m in enumerate(models)])
    torch.testing.assert_close(StackedSAMformer(models).forward(x), expected, rtol=0, atol=1e-12)


def test_networks_of_two_configurations_are_one_blocker_named_config() -> None:
    a, b = build(0, {}, None), build(1, {"value_dim": 4}, None)
    assert [x.setting for x in model_blockers([asdict(a.config), asdict(b.config)])] == ["config"]
    assert model_key({"d_model": 16, "value_dim": None}) == model_key({})  # defaults given explicitly change nothing
    assert model_key({"target_channels": [2, 0]}) == model_key({"target_channels": (2, 0)})  # JSON gives lists


def test_the_key_groups_runs_exactly_when_the_rule_lets_them_share_a_stack() -> None:
    """A property over every pair of one-setting changes: equal keys <=> no blocker (for stackable runs)."""
    cases = [({}, BASE)] + [({}, dataclasses.replace(BASE, **{n: v})) for n, v in OTHER_VALUE.items()]
    cases += [(o, BASE) for o in MODEL_OPTIONS]
    for options_a, cfg_a in cases:
        for options_b, cfg_b in cases:
            key_a, key_b = stack_key(options_a, cfg_a), stack_key(options_b, cfg_b)
            if key_a is None or key_b is None:
                assert stack_blockers([options_a], [cfg_a]) or stack_blockers([options_b], [cfg_b])
                continue
            assert (key_a == key_b) == (not stack_blockers([options_a, options_b], [cfg_a, cfg_b]))


def test_a_narrower_key_groups_fewer_runs_and_never_more() -> None:
    per_model = {"seed", "rho", "progress"}  # the grid's choice: a cell's seeds and its rho values
    assert stack_key({}, BASE, per_model) == stack_key({}, dataclasses.replace(BASE, seed=3, rho=0.2), per_model)
    assert stack_key({}, BASE, per_model) != stack_key({}, dataclasses.replace(BASE, lr=3e-3), per_model)
    with pytest.raises(ValueError, match="batch_size"):
        stack_key({}, BASE, {"seed", "batch_size"})


def test_stacked_runs_are_refused_by_the_rule_with_every_blocker_named() -> None:
    specs = [
        RunSpec("ETTh1", 12, variant="sigma-reparam", seq_len=48),
        RunSpec("ETTh1", 12, variant="sigma-reparam", seq_len=48, seed=1, train_options={"compile": True}),
    ]
    with pytest.raises(SamformerError, match=r"one stack: sigma_reparam=True .*; compile=True"):
        execute_stacked(specs)  # refused before any data is read
