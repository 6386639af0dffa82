"""Several seeds of one run trained in one pass, as one stack, into a resumable run directory (`samformer train --seeds`).

Each seed's directory (`OUT/seed<S>`) gets exactly what a single run writes (model.safetensors,
config.json, result.json); OUT itself holds the stack's checkpoint while it trains and `ensemble.json`,
the test metrics of the seeds' mean forecast, once it is done. Like a single run, OUT is checked before
any work, locked for the run, and appears whole at the end; other files a user keeps in it stay.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from samformer.errors import SamformerError
from samformer.experiments.run import RunSpec, StackOutcome, execute_stacked
from samformer.files import atomic_directory, carry_over, read_json, run_output, scratch_directory, write_json
from samformer.forecasting.modelfile import save_model
from samformer.training import distributed
from samformer.training.checkpoint import CHECKPOINT_FILE, remove_partial_files

ENSEMBLE_FILE = "ensemble.json"
RESULT_FILE = "result.json"  # each seed's record, as a single run stores it


@dataclass
class SeedStack:
    """The seeds stored in a run directory: each seed's record and the metrics of their mean forecast."""

    out: Path  # the run directory (a symbolic link resolved)
    records: list[dict[str, Any]]  # one per seed, in the order asked
    ensemble: dict[str, Any]  # seeds, test_mse, test_mae
    already_finished: bool = False  # a resume found the stack finished: nothing trained, its files unchanged


def seed_directory(out: Path, seed: int) -> Path:
    """Where seed `seed` of a stack stored in `out` is written."""
    return out / f"seed{seed}"


def train_seed_stack(
    specs: list[RunSpec],
    out: str | Path,
    data_dir: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> SeedStack:
    """Train `specs` (one run, several seeds) as one stack and store every seed's directory and the ensemble in `out`.

    With `resume`, an interrupted stack continues from its checkpoint in `out` (a finished one is left as it
    is); otherwise a model or checkpoint already in `out` is refused unless `overwrite`.
    """
    if distributed.is_distributed():
        raise SamformerError("--seeds trains every seed in one process; run it without torchrun")
    with run_output(out) as out:
        return _train_into(specs, out, data_dir, resume, overwrite)


def _train_into(specs: list[RunSpec], out: Path, data_dir: str | None, resume: bool, overwrite: bool) -> SeedStack:
    """Train the stack into `out`, whose lock this process holds."""
    seeds = [spec.seed for spec in specs]
    checkpoint = out / CHECKPOINT_FILE
    resuming = resume and checkpoint.exists()
    if resume and not resuming and (out / ENSEMBLE_FILE).exists():
        records = [read_json(seed_directory(out, s) / RESULT_FILE) for s in seeds]
        return SeedStack(out, records, read_json(out / ENSEMBLE_FILE), already_finished=True)
    if not (resuming or overwrite):
        _refuse_existing(out, seeds)
    if out.is_dir():
        remove_partial_files(out)
    held = [checkpoint, out / ENSEMBLE_FILE, *(seed_directory(out, s) for s in seeds)]
    replacing = not resuming and any(path.exists() for path in held)  # overwrite: the old runs stay whole until the swap
    with scratch_directory(out) if replacing else nullcontext(out) as work:
        outcome = execute_stacked(specs, data_dir=data_dir, checkpoint=work / CHECKPOINT_FILE, resume=resume)
    ensemble = {"seeds": seeds, **outcome.ensemble}
    _write(out, specs, outcome, ensemble)
    return SeedStack(out, outcome.records, ensemble)


def _refuse_existing(out: Path, seeds: list[int]) -> None:
    held = [d for d in (seed_directory(out, s) for s in seeds) if (d / "model.safetensors").exists()]
    if held or (out / ENSEMBLE_FILE).exists():
        raise SamformerError(f"{held[0] if held else out} already holds a model; choose another --out or pass --overwrite")
    if (out / CHECKPOINT_FILE).exists():
        raise SamformerError(f"{out} holds an interrupted run's checkpoint; pass --resume to continue it, or --overwrite to start over")


def _write(out: Path, specs: list[RunSpec], outcome: StackOutcome, ensemble: dict[str, Any]) -> None:
    """Every seed's directory as a single run writes it and the ensemble file, swapped in as one directory that
    replaces the checkpoint only once complete; other files a user keeps in `out` are carried over."""
    seed_names = tuple(seed_directory(out, spec.seed).name for spec in specs)
    with atomic_directory(out, overwrite=True) as staging:
        for spec, model, record in zip(specs, outcome.models, outcome.records, strict=True):
            directory = seed_directory(staging, spec.seed)
            directory.mkdir()
            save_model(directory, model, extra={"dataset": record["dataset"], "horizon": spec.horizon}, overwrite=True)
            write_json(directory / RESULT_FILE, record)
        write_json(staging / ENSEMBLE_FILE, ensemble)
        carry_over(out, staging, skip=(CHECKPOINT_FILE, ENSEMBLE_FILE, *seed_names))
