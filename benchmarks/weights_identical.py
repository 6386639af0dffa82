"""Weights after 40 SAM steps on ETTh1/96 (batch 32, fp32 and bf16, one thread), saved or compared bit for bit.

Checks that a change to the training step keeps its results: save with one checkout, compare with another.

    PYTHONPATH=../base/src SAMFORMER_DATA=../shared/data python benchmarks/weights_identical.py save /tmp/weights.pt
    SAMFORMER_DATA=../shared/data python benchmarks/weights_identical.py check /tmp/weights.pt
"""

import sys

import torch

from samformer.data.loading import load_dataset
from samformer.nn.model import SAMformer
from samformer.training.config import TrainConfig
from samformer.training.fit import build_optimizer, train_step


def trained_weights(precision: str, steps: int = 40) -> dict[str, torch.Tensor]:
    windows = load_dataset("ETTh1", 512, 96).windows("train")
    torch.manual_seed(0)
    model = SAMformer(7, 512, 96).train()
    optimizer = build_optimizer(model, TrainConfig(batch_size=32))
    order = torch.randperm(len(windows), generator=torch.Generator().manual_seed(0)).split(32)
    for index in order[:steps]:
        x, y = windows.batch(index)
        train_step(model, optimizer, x, y, precision)
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def main(mode: str, path: str) -> None:
    torch.set_num_threads(1)
    weights = {precision: trained_weights(precision) for precision in ("fp32", "bf16")}
    if mode == "save":
        torch.save(weights, path)
        return
    reference = torch.load(path, weights_only=True)
    for precision, values in weights.items():
        same = all(torch.equal(values[name], reference[precision][name]) for name in values)
        largest = max((values[name] - reference[precision][name]).abs().max().item() for name in values)
        print(f"{precision}: {'identical' if same else 'DIFFERENT'} (largest difference {largest:.3g})")


if __name__ == "__main__":
    main(*sys.argv[1:3])
