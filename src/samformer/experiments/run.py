"""One training run end to end: data, model variant, protocol defaults, result record.

Shared by `samformer train` and `samformer benchmark`, so both produce the same result files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from samformer.data.benchmarks import BENCHMARKS, get_benchmark
from samformer.data.channels import ChannelSpec
from samformer.data.loading import load_dataset
from samformer.data.series import SplitData
from samformer.errors import SamformerError
from samformer.nn.model import SAMformer, create_model, get_variant, variant_uses_sam
from samformer.training.config import TrainConfig, TrainResult, seed_everything
from samformer.training.fit import fit, score_test
from samformer.training.loop import EpochCallback
from samformer.training.stacked.evaluation import score_stacked
from samformer.training.stacked.fit import fit_stacked
from samformer.training.stacked.stackable import stack_blockers

PAPER_PROTOCOL = "paper"
# Options that do not change what is trained or how (so a run with them is still the paper's protocol).
_NEUTRAL_OPTIONS = {"progress", "device", "eval_batch_size", "compile"}


def default_train_config(dataset: str, **overrides: Any) -> TrainConfig:
    """The paper's protocol for `dataset`: its learning rate, batch 32, ≤100 epochs, patience 5, rho 0.7.

    Datasets that are not benchmarks (user CSVs) get the ETT settings (lr 1e-3).
    """
    lr = get_benchmark(dataset).lr if dataset.lower() in {n.lower() for n in BENCHMARKS} else 1e-3
    return replace(TrainConfig(lr=lr), **overrides)


@dataclass
class RunSpec:
    """Everything that identifies one training run."""

    dataset: str  # benchmark name or CSV path
    horizon: int
    variant: str = "samformer"
    seq_len: int = 512
    seed: int = 0
    model_options: dict[str, Any] = field(default_factory=dict)  # extra SAMformer keyword arguments
    train_options: dict[str, Any] = field(default_factory=dict)  # TrainConfig overrides
    channels: ChannelSpec = field(default_factory=ChannelSpec)  # mode, targets, covariates

    def protocol(self) -> str:
        """'paper' when only the seed differs from the paper's settings, else 'custom(<overrides>)'."""
        paper = default_train_config(self.dataset)
        changed = {k: v for k, v in self.train_options.items() if k not in _NEUTRAL_OPTIONS and getattr(paper, k, None) != v}
        changed.update(self.model_options)
        changed.update({k: v for k, v in asdict(self.channels).items() if v != getattr(ChannelSpec(), k)})
        if self.seq_len != 512:
            changed["seq_len"] = self.seq_len
        if not changed:
            return PAPER_PROTOCOL
        return "custom(" + ",".join(f"{k}={v}" for k, v in sorted(changed.items())) + ")"

    def network_options(self) -> dict[str, Any]:
        """The `SAMformer` keyword options of this run's network: its variant's, then `model_options` (sizes from the data)."""
        return {**get_variant(self.variant).overrides, **self.model_options}

    def train_config(self) -> TrainConfig:
        options = {"seed": self.seed, **self.train_options}
        if not variant_uses_sam(self.variant):
            options["sam"] = False
        return default_train_config(self.dataset, **options)


def _load(spec: RunSpec, data_dir: str | os.PathLike | None) -> SplitData:
    channels = None if spec.channels.is_default else spec.channels
    return load_dataset(spec.dataset, spec.seq_len, spec.horizon, data_dir=data_dir, channels=channels)


def _build_model(spec: RunSpec, data: SplitData) -> SAMformer:
    """The model of `spec` for `data`, created as a run creates it: every RNG seeded with the run's seed first."""
    seed_everything(spec.seed)
    model_options = dict(spec.model_options)
    if data.roles.targets is not None:
        model_options["target_channels"] = data.roles.targets
    return create_model(spec.variant, data.n_channels, spec.seq_len, spec.horizon, **model_options)


def execute(
    spec: RunSpec,
    data_dir: str | os.PathLike | None = None,
    data: SplitData | None = None,
    callbacks: tuple[EpochCallback, ...] = (),
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
) -> tuple[SAMformer, TrainResult, dict[str, Any]]:
    """Train one run and score it on the test split; returns the model (best weights), the result and a
    JSON-ready record.

    `checkpoint` and `resume` are passed to `fit`: checkpoint every epoch, continue from one.
    """
    cfg = spec.train_config()
    data = _load(spec, data_dir) if data is None else data
    model = _build_model(spec, data)
    result = score_test(model, data, cfg, fit(model, data, cfg, callbacks, checkpoint=checkpoint, resume=resume))
    return model, result, run_record(spec, data, model, cfg, result)


@dataclass
class StackOutcome:
    """What `execute_stacked` produced: per run (in the order of the specs) its model, result and record, and the
    ensemble's (mean forecast of every model) test metrics."""

    models: list[SAMformer]
    results: list[TrainResult]
    records: list[dict[str, Any]]
    ensemble: dict[str, float]  # {"test_mse", "test_mae"} of the mean forecast, on the standardised scale


def execute_stacked(
    specs: Sequence[RunSpec],
    data_dir: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
) -> StackOutcome:
    """Train runs on one dataset as one stack (`stacked.fit.fit_stacked`), if the rule allows it (`stackable.stack_blockers`:
    one network, the shared training settings).

    Run j ends as `execute(specs[j])` would (same record, up to rounding); the test split is scored for all
    of them at once, with their ensemble. `checkpoint`/`resume` checkpoint and continue the whole stack.
    """
    cfgs = [spec.train_config() for spec in specs]
    blockers = stack_blockers([spec.network_options() for spec in specs], cfgs)
    if blockers:
        raise SamformerError(f"these runs cannot train as one stack: {'; '.join(map(str, blockers))}")
    if len({(s.dataset, s.horizon, s.seq_len, repr(s.channels)) for s in specs}) != 1:
        raise SamformerError("runs stacked together must share dataset, horizon, look-back and channels; stack each dataset's runs apart")
    data = _load(specs[0], data_dir)
    models = [_build_model(spec, data) for spec in specs]
    results, ensemble = score_stacked(models, data, cfgs[0], fit_stacked(models, data, cfgs, checkpoint=checkpoint, resume=resume))
    records = [
        run_record(*run, data, model, cfg, result) for run, model, cfg, result in zip(zip(specs), models, cfgs, results, strict=True)
    ]
    return StackOutcome(models, results, records, ensemble)


def run_record(spec: RunSpec, data: SplitData, model: SAMformer, cfg: TrainConfig, result: TrainResult) -> dict[str, Any]:
    """The JSON-ready record of a finished, scored run (what `samformer train` and the grid store)."""
    return {
        "dataset": data.name,
        "horizon": spec.horizon,
        "seq_len": spec.seq_len,
        "seed": spec.seed,
        "variant": spec.variant,
        "test_mse": result.test_mse,
        "test_mae": result.test_mae,
        "val_mse": result.val_mse,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "train_seconds": result.train_seconds,
        "protocol": spec.protocol(),
        "model_config": asdict(model.config),
        "train_config": asdict(cfg),
        "data_protocol": data.protocol(),
        "channels": {"columns": data.columns, **asdict(spec.channels)},
        "torch_version": torch.__version__,
        "history": result.history,
    }
