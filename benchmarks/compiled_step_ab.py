"""The compiled SAM step (`--compile`) of another checkout against this one, in one process, epochs interleaved.

    SAMFORMER_DATA=../shared/data python benchmarks/compiled_step_ab.py ../base/src/samformer/training/compiled_step.py

Loads the other checkout's `training/compiled_step.py` as a module of its own (it must import the same names from
`samformer` as this checkout's does) and times one ETTh1/96 epoch at batch 32 of each, alternating (`speed.py`'s
`time_interleaved`: a warm-up epoch each, which includes compiling, then `--epochs` rounds), so that this machine's
drifts hit both alike (one Inductor cache, empty at the start: the second to compile may reuse kernels of the
first, so their first epochs are not comparable). With `--weights STEPS` it first trains a model from the same seed for STEPS compiled steps
with each and prints whether the weights are identical (fp32 and bf16). One JSON line per figure.
"""

import argparse
import importlib.util
import json
import os
import tempfile
import warnings
from types import ModuleType

import torch
from speed import HORIZON, SEQ_LEN, samformer_epoch, time_interleaved

import samformer.training.steps as steps
from samformer.cli.allocator import keep_freed_memory
from samformer.data.loading import load_dataset
from samformer.data.series import Windows
from samformer.nn.model import SAMformer
from samformer.training.config import TrainConfig
from samformer.training.fit import build_optimizer


def load_other(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("other_compiled_step", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def with_step_class(step_class, make):
    """`make()` with `steps.build_step_and_update` building `step_class` as the compiled step."""
    own = steps.CompiledSAMStep
    steps.CompiledSAMStep = step_class
    try:
        return make()
    finally:
        steps.CompiledSAMStep = own


def trained_weights(windows: Windows, precision: str, n_steps: int) -> dict[str, torch.Tensor]:
    """The weights after `n_steps` compiled SAM steps at batch 32 from seed 0 (the compiled step class as patched)."""
    torch.manual_seed(0)
    model = SAMformer(windows.series.shape[1], SEQ_LEN, HORIZON).train()
    cfg = TrainConfig(batch_size=32, precision=precision, compile=True)
    step, update = steps.build_step_and_update(model, build_optimizer(model, cfg), torch.device("cpu"), cfg, None)
    for idx in torch.randperm(len(windows), generator=torch.Generator().manual_seed(0)).split(32)[:n_steps]:
        update(step(windows, idx)[0])
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", help="path of the other checkout's src/samformer/training/compiled_step.py")
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    parser.add_argument("--epochs", type=int, default=4, help="timed rounds after the warm-up (default 4)")
    parser.add_argument("--weights", type=int, default=0, metavar="STEPS", help="first compare the weights after STEPS steps")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*torch.compile.*")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="compiled-step-ab-")
    keep_freed_memory()  # as the CLI and speed.py do
    other = load_other(args.other).CompiledSAMStep
    windows = load_dataset("ETTh1", SEQ_LEN, HORIZON).windows("train")
    for precision in ("fp32", "bf16") if args.weights else ():
        theirs = with_step_class(other, lambda p=precision: trained_weights(windows, p, args.weights))
        ours = trained_weights(windows, precision, args.weights)
        largest = max((theirs[name] - ours[name]).abs().max().item() for name in ours)
        identical = all(torch.equal(theirs[name], ours[name]) for name in ours)
        print(json.dumps({"precision": precision, "steps": args.weights, "identical": identical, "max_abs_diff": largest}), flush=True)
    runs = {
        "other": with_step_class(other, lambda: samformer_epoch(windows, 32, args.precision, "compile")),
        "this": samformer_epoch(windows, 32, args.precision, "compile"),
    }
    median, first = time_interleaved(runs, args.epochs)
    print(
        json.dumps(
            {
                "precision": args.precision,
                "threads": torch.get_num_threads(),
                "s_per_epoch": {label: round(s, 4) for label, s in median.items()},
                "this_over_other": round(median["this"] / median["other"], 3),
                "first_epoch_s": {label: round(s, 1) for label, s in first.items()},
                "load": os.getloadavg()[0],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
