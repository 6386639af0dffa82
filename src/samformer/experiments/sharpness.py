"""The paper's sharpness comparison on real data (`samformer study sharpness`): the Transformer (no SAM) and
SAMformer trained on one benchmark, then their sharpness, attention entropy and nuclear norm side by side.

Both models train as a benchmark run trains (`samformer.experiments.run.execute`, the paper's protocol for
the dataset); the diagnostics (`samformer.experiments.analysis`) are computed on one fixed subset of
training windows, the same for both.
"""

from __future__ import annotations

from typing import Any

from samformer.data.loading import load_dataset
from samformer.experiments.analysis import attention_statistics, fixed_subset, sharpness
from samformer.experiments.run import RunSpec, execute

COMPARED = (("transformer", "no-sam"), ("samformer", "samformer"))  # (label in the result, model variant)


def compare_sharpness(
    dataset: str,
    horizon: int,
    data_dir: str | None = None,
    epochs: int | None = None,
    seed: int = 0,
    samples: int = 1024,
) -> dict[str, Any]:
    """Train each of `COMPARED` on `dataset` at `horizon` and measure it on `samples` training windows.

    Returns the dataset's name, the horizon, the seed, the number of windows measured and, per label,
    sharpness (λmax), attention entropy, nuclear norm, test/val MSE, best epoch, epochs run and training time.
    `epochs` caps the epochs (default: the protocol's, with early stopping).
    """
    data = load_dataset(dataset, RunSpec.seq_len, horizon, data_dir=data_dir)
    x, y = fixed_subset(data.windows("train"), samples)
    result: dict[str, Any] = {"dataset": data.name, "horizon": horizon, "seed": seed, "diagnostic_samples": len(x)}
    options = {"progress": False, **({"epochs": epochs} if epochs else {})}
    for label, variant in COMPARED:
        spec = RunSpec(dataset, horizon, variant, seed=seed, train_options=options)
        model, train_result, _ = execute(spec, data=data)
        result[label] = {
            "sharpness": sharpness(model, x, y, max_iter=30, tol=1e-3, seed=seed),
            **attention_statistics(model, x),
            "test_mse": train_result.test_mse,
            "val_mse": train_result.val_mse,
            "best_epoch": train_result.best_epoch,
            "epochs_run": train_result.epochs_run,
            "train_seconds": train_result.train_seconds,
        }
    return result
