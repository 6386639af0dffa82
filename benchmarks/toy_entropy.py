"""Does SAM keep the toy task's attention entropy up? One factor at a time around the study's defaults.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/toy_entropy.py --out results/study/entropy_experiment.json

The paper (section 2, figure 4) shows SAMformer's attention entropy clearly above the Transformer's on the
toy task; our 100-epoch study has both collapse (0.0040 against 0.0014 nats). This script varies, one at a
time around the defaults of `samformer.experiments.toy.StudyConfig` (rho 0.7, Adam lr 1e-3, Keras initialisation,
shuffled batches): SAM's rho (0.1, 0.3, 1, 2), the learning rate (3e-4, 3e-3), the scale of the initial
W_Q, W_K (× 0.1, × 10) and the TF pipeline's unshuffled order. Each setting trains SAMformer and the
Transformer (rho settings: SAMformer only, the Transformer does not depend on rho) for `--epochs` (30 by
default, to stay affordable on two shared cores: the collapse happens in the first epoch) and logs the
attention entropy every epoch on the study's fixed 1024 training samples; λmax is not measured.

A setting keeps SAMformer's entropy "clearly above" the Transformer's when, averaged over the last 10
epochs, it is at least 0.1 nats (5 % of ln 7) and at least twice the Transformer's under the same
setting. Runs are written to `--out` as they finish; a rerun with the same `--out` and settings reuses them.
The figure of `samformer.plots.plot_toy_entropy_factors` goes beside it (`--out` with .png). The last stdout
line is one JSON object (the verdict per setting).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, replace
from typing import Any

import torch

from samformer.experiments.toy import StudyConfig, make_toy_data, summarize_method, train_method
from samformer.files import read_json, write_json
from samformer.plots import plot_toy_entropy_factors, write_figure

BOTH = ("transformer", "samformer")
# name -> (factor, value, StudyConfig overrides, methods)
SETTINGS: dict[str, tuple[str, str, dict[str, Any], tuple[str, ...]]] = {
    "default": ("default", "rho 0.7, lr 1e-3, init × 1, shuffled", {}, BOTH),
    **{f"rho={rho:g}": ("rho", f"{rho:g}", {"rho": rho}, ("samformer",)) for rho in (0.1, 0.3, 1.0, 2.0)},
    **{f"lr={lr:g}": ("lr", f"{lr:g}", {"lr": lr}, BOTH) for lr in (3e-4, 3e-3)},
    **{f"init_scale={s:g}": ("init_scale", f"{s:g}", {"init_scale": s}, BOTH) for s in (0.1, 10.0)},
    "unshuffled": ("order", "unshuffled", {"shuffle": False}, BOTH),
}
TAIL = 10  # epochs averaged for the verdict
CLEARLY_ABOVE_NATS, CLEARLY_ABOVE_RATIO = 0.1, 2.0


def study_for(setting: str, epochs: int) -> StudyConfig:
    """The study's defaults with one factor changed, no λmax, `epochs` epochs."""
    overrides = SETTINGS[setting][2]
    return replace(StudyConfig(), epochs=epochs, sharpness_methods=(), full_sharpness=False, **overrides)


def run_one(setting: str, method: str, epochs: int) -> dict[str, Any]:
    """Train `method` under `setting` in this (worker) process, one torch thread."""
    torch.set_num_threads(1)
    study = study_for(setting, epochs)
    started = time.perf_counter()
    summary = summarize_method(train_method(method, make_toy_data(study.toy), study))
    return {"study": json.loads(json.dumps(asdict(study))), **summary, "wall_seconds": time.perf_counter() - started}


def tail_entropy(run: dict[str, Any]) -> float:
    """Mean attention entropy over the last `TAIL` epochs."""
    return statistics.fmean(run["series"]["attention_entropy"][-TAIL:])


def verdicts(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per setting: both tail entropies, their ratio, final validation losses, and whether SAM's is clearly above."""
    out = {}
    for setting, (factor, value, _, methods) in SETTINGS.items():
        transformer_key = f"{setting}/transformer" if "transformer" in methods else "default/transformer"
        sam, plain = runs.get(f"{setting}/samformer"), runs.get(transformer_key)
        if sam is None or plain is None:
            continue
        s, t = tail_entropy(sam), tail_entropy(plain)
        out[setting] = {
            "factor": factor,
            "value": value,
            "samformer_entropy": s,
            "transformer_entropy": t,
            "ratio": s / t if t > 0 else None,
            "samformer_final_val": sam["final_val_loss"],
            "transformer_final_val": plain["final_val_loss"],
            "clearly_above": s >= CLEARLY_ABOVE_NATS and s >= CLEARLY_ABOVE_RATIO * t,
        }
    return out


def _same_study(key: str, run: dict[str, Any], epochs: int) -> bool:
    """Whether a stored run was made with the settings this invocation would use for it."""
    setting = key.split("/")[0]
    return setting in SETTINGS and run["study"] == json.loads(json.dumps(asdict(study_for(setting, epochs))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="JSON file for every run's series and the verdicts")
    parser.add_argument("--epochs", type=int, default=30, help="epochs per run (default 30)")
    parser.add_argument("--workers", type=int, default=2, help="training processes, one torch thread each (default 2)")
    args = parser.parse_args()
    stored = read_json(args.out) if os.path.exists(args.out) else {}
    runs = {k: v for k, v in stored.get("runs", {}).items() if _same_study(k, v, args.epochs)}
    jobs = [(s, m) for s, spec in SETTINGS.items() for m in spec[3] if f"{s}/{m}" not in runs]
    result = {"command": f"benchmarks/toy_entropy.py --out {args.out} --epochs {args.epochs}", "tail_epochs": TAIL, "runs": runs}
    with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        # SAM runs are the longest: start them first
        futures = {pool.submit(run_one, s, m, args.epochs): f"{s}/{m}" for s, m in sorted(jobs, key=lambda j: j[1] != "samformer")}
        for future in as_completed(futures):
            key = futures[future]
            runs[key] = future.result()
            result["verdicts"] = verdicts(runs)
            write_json(args.out, result, make_dirs=True)
            print(f"{key}: tail entropy {tail_entropy(runs[key]):.4f}, final val {runs[key]['final_val_loss']:.3f}", flush=True)
    result["verdicts"] = verdicts(runs)
    write_json(args.out, result, make_dirs=True)
    write_figure(plot_toy_entropy_factors(result), os.path.splitext(args.out)[0] + ".png")
    print(json.dumps(result["verdicts"]))


if __name__ == "__main__":
    main()
