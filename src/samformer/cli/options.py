"""Argument types and the training flags shared by several subcommands."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from samformer.data.channels import ChannelSpec
from samformer.experiments.run import RunSpec
from samformer.nn.model import list_variants

# Accepted ranges of the numeric options (inclusive). Dimensions stop where a saved model's do
# (`samformer.forecasting.modelfile.MAX_DIMENSION`); seeds span torch's generator seeds.
MAX_DIMENSION = 2**20
MAX_COUNT = 10**6  # epochs, patience, workers, threads
MAX_SEED = 2**64 - 1
DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high], refused in one line naming the range."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            kind = "a positive integer" if low == 1 else "an integer"
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r} (accepted: {low}..{high})") from None
        if value < low:
            problem = "must be a positive integer, got" if low == 1 else f"must be at least {low}, got"
            raise argparse.ArgumentTypeError(f"{problem} {value} (accepted: {low}..{high})")
        if value > high:
            raise argparse.ArgumentTypeError(f"{value} is too large (accepted: {low}..{high})")
        return value

    return parse


positive_int = bounded_int(1, MAX_DIMENSION)  # sizes: horizon, seq_len, batch size, value_dim, samples
count = bounded_int(1, MAX_COUNT)  # epochs, patience, workers, threads
seed = bounded_int(0, MAX_SEED)


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {text}")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite non-negative number, got {text}")
    return value


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be positive, got 0")
    return value


def device(text: str) -> str:
    """An argparse type: a device this machine has ('auto', 'cpu', 'cuda', 'cuda:N'; 'mps' where available)."""
    import torch

    kind, _, index = text.partition(":")
    if text == "auto" or text == "cpu" or (text == "mps" and torch.backends.mps.is_available()):
        return text
    if kind != "cuda" or (index and not index.isdigit()):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use {DEVICE_CHOICES}")
    if not torch.cuda.is_available() or int(index or 0) >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"device {text!r} is not available on this machine; use --device cpu or auto")
    return text


def seed_list(text: str) -> list[int]:
    """An argparse type: a comma-separated list of distinct integer seeds (at least one)."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    try:
        seeds = [int(t) for t in items]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integer seeds such as 0,1,2, got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("expected at least one seed (k >= 1), such as 0,1,2")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"seed {', '.join(map(str, repeated))} is repeated; give each seed once")
    return seeds


def csv_list(kind: Callable[[str], Any]) -> Callable[[str], list]:
    """An argparse type: a comma-separated list (at least one item), each item converted by `kind`."""

    def parse(text: str) -> list:
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError("expected a comma-separated list")
        return [kind(t) for t in items]

    return parse


def variant(name: str) -> str:
    """An argparse type: the name of a model variant (`samformer.nn.model.list_variants`)."""
    if name not in list_variants():
        raise argparse.ArgumentTypeError(f"unknown variant {name!r}; choose from {', '.join(list_variants())}")
    return name


def column_list(text: str) -> tuple[str, ...]:
    """A comma-separated list of column names."""
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    if not names:
        raise argparse.ArgumentTypeError("expected one or more comma-separated column names")
    return names


def add_shuffle_option(group: argparse._ArgumentGroup) -> None:
    """`--no-shuffle`: every epoch serves the training windows in stored order (`TrainConfig.shuffle=False`)."""
    group.add_argument(
        "--no-shuffle", action="store_true", help="train on the windows in stored order every epoch (the original TF pipeline's)"
    )


def add_training_options(parser: argparse.ArgumentParser, seq_len_default: int | None = 512) -> None:
    """Model and optimisation flags shared by `train`, `benchmark` and `fit` (`fit` chooses the look-back: None)."""
    channels = parser.add_argument_group("targets and covariates (default: mode M, every channel forecast)")
    channels.add_argument("--mode", choices=["M", "S", "MS"], default="M", help="M: all→all, S: target→itself, MS: all→target")
    channels.add_argument("--target", type=column_list, default=(), help="column(s) to forecast (default: the last column for S/MS)")
    channels.add_argument("--past-covariates", type=column_list, default=(), help="columns observed only up to the forecast origin")
    channels.add_argument("--future-covariates", type=column_list, default=(), help="columns known over the horizon too")
    channels.add_argument("--calendar", action="store_true", help="add calendar features (hour, weekday, yearday) as known-future inputs")
    model = parser.add_argument_group("model")
    seq_len_help = "look-back window L (default 512)" if seq_len_default else "look-back window L (default: chosen on the validation rows)"
    model.add_argument("--seq-len", type=positive_int, default=seq_len_default, help=seq_len_help)
    model.add_argument("--no-attention", action="store_true", help="linear ablation: no attention block")
    model.add_argument("--no-revin", action="store_true", help="ablation: no RevIN")
    model.add_argument("--sigma-reparam", action="store_true", help="σReparam on the attention maps")
    model.add_argument("--value-dim", type=positive_int, default=None, help="values L→N→L as the paper's TF code (e.g. 16)")
    opt = parser.add_argument_group("optimisation (defaults: the paper's protocol for the dataset)")
    opt.add_argument("--rho", type=non_negative_float, default=None, help="SAM radius (default 0.7)")
    opt.add_argument("--no-sam", action="store_true", help="train with plain Adam (the paper's 'Transformer')")
    opt.add_argument("--epochs", type=count, default=None, help="maximum epochs (default 100)")
    opt.add_argument("--batch-size", type=positive_int, default=None, help="default 32")
    opt.add_argument("--lr", type=positive_float, default=None, help="learning rate (default per dataset)")
    opt.add_argument("--weight-decay", type=non_negative_float, default=None)
    opt.add_argument("--patience", type=count, default=None, help="early-stopping patience (default 5)")
    opt.add_argument("--precision", choices=["fp32", "bf16"], default=None, help="bf16 autocast (fp32 master weights)")
    opt.add_argument("--device", type=device, default=None, help="auto (default), cpu, cuda, cuda:1, ...")
    opt.add_argument(
        "--compile",
        action="store_true",
        help=(
            "torch.compile the training step (SAM over Adam: the whole step; the first step pays the compilation,"
            " ~40 s on a 2-core CPU with an empty Inductor cache; falls back to eager)"
        ),
    )
    add_shuffle_option(opt)
    opt.add_argument("--quiet", action="store_true", help="no progress bar")


# On/off flags -> (the option they set, its value), for the model and for training.
MODEL_SWITCHES = {"no_attention": ("attention", False), "no_revin": ("revin", False), "sigma_reparam": ("sigma_reparam", True)}
TRAIN_SWITCHES = {"no_sam": ("sam", False), "no_shuffle": ("shuffle", False), "quiet": ("progress", False), "compile": ("compile", True)}
TRAIN_VALUES = ("rho", "epochs", "batch_size", "lr", "weight_decay", "patience", "precision", "device")


def _switched(args: argparse.Namespace, switches: dict[str, tuple[str, bool]]) -> dict[str, bool]:
    return {option: value for flag, (option, value) in switches.items() if getattr(args, flag)}


def run_spec_from_args(args: argparse.Namespace, dataset: str, horizon: int, seed: int) -> RunSpec:
    """Translate the shared training flags into a `RunSpec`."""
    model_options: dict = _switched(args, MODEL_SWITCHES)
    if args.value_dim:
        model_options["value_dim"] = args.value_dim
    values = {name: getattr(args, name) for name in TRAIN_VALUES}
    train_options = {k: v for k, v in values.items() if v is not None} | _switched(args, TRAIN_SWITCHES)
    channels = ChannelSpec(args.mode, args.target, args.past_covariates, args.future_covariates, args.calendar)
    return RunSpec(dataset, horizon, "samformer", args.seq_len, seed, model_options, train_options, channels)
