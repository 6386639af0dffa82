"""The paper's toy regression task (Ilbert et al., ICML 2024, section 2) and its least-squares oracle.

Each sample is an independent pair: X ∈ R^{D×L} with i.i.d. N(0, 1) entries and Y = X W_toy + E ∈ R^{D×H},
where W_toy ∈ R^{L×H} is one fixed matrix with N(0, 1) entries shared by every sample and channel, and E
is i.i.d. N(0, noise_std²). A linear model can therefore reach the noise floor; the paper shows that the
same network as SAMformer trained without SAM does not.

The samples are not windows of one series, so `ToyData` is a duck-typed stand-in for `SplitData`: it has
a `name` and `windows(split)` returning a `PairWindows`, which offers the `Windows` interface that
`samformer.training.fit.fit` uses (`len`, `batch(index)`, `batch_mask(index)`, `to(device)`).

Scale: each target entry is a sum of L products of unit Gaussians, so Var(Y) ≈ L + noise_std² ≈ 513
while the best achievable MSE is noise_std² = 1. The paper's figure draws its oracle below 1, so its
generator must scale differently; this module follows the written description. At this scale the
effective linear map has entries of order 1, far from any initialisation (Glorot: ≈ 0.06), so Adam at
lr 1e-3 needs tens of epochs just to reach the oracle's level (the paper's SAM run reaches it after
≈ 75–80 epochs); and since the signal is ≈ 500 times the noise, an attention that leaks even 0.1 % of
another channel costs an MSE of order 1.

The study's network is the paper's section-2 model, f(X) = [X + A(X) X W_V W_O] W (the TF code's
single-head attention: values L→16, an output projection 16→L, Glorot-uniform kernels, zero biases),
with RevIN off as in the original toy runs. It has two "Random Transformers": the original TF code's
(`trainable = args.model not in ['transformer_random']` on Keras' MultiHeadAttention: W_Q, W_K, W_V, W_O
and their biases all frozen), and one that freezes only W_Q, W_K, which keeps the attention matrix
A(X) = softmax(X W_Q W_Kᵀ Xᵀ / √d) at initialisation and trains everything else, so it differs from the
Transformer only in whether A is learnt. σReparam, likewise, comes on the attention's maps only or on every
linear map (the forecaster too, as Zhai et al.). The original TF pipeline feeds the training samples in
their stored order (`from_tensor_slices(...).batch(32)`, no shuffle); `StudyConfig(shuffle=False)` does so.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from typing import Any

import torch

from samformer.errors import SamformerError
from samformer.experiments.analysis import diagnostics_callback, sharpness
from samformer.nn.model import Init, SAMformer
from samformer.training.config import TrainConfig, seed_everything
from samformer.training.evaluation import evaluate
from samformer.training.fit import fit


@dataclass(frozen=True)
class ToyConfig:
    """The toy task's sizes; defaults are the paper's."""

    n_channels: int = 7  # D
    seq_len: int = 512  # L
    horizon: int = 96  # H
    n_train: int = 10_000
    n_val: int = 5_000
    n_test: int = 2_000
    noise_std: float = 1.0  # standard deviation of the additive Gaussian noise
    seed: int = 42  # seeds W_toy, the inputs and the noise

    def __post_init__(self) -> None:
        for name in ("n_channels", "seq_len", "horizon", "n_train", "n_val", "n_test"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SamformerError(f"toy task: {name} must be a positive integer, got {value!r}")
        if not self.noise_std >= 0:
            raise SamformerError(f"toy task: noise_std must be non-negative, got {self.noise_std!r}")


class PairWindows:
    """Independent (input, target) samples with the `samformer.data.series.Windows` interface.

    Args:
        x: inputs of shape (N, D, L), channels first.
        y: targets of shape (N, D, H).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if x.ndim != 3 or y.ndim != 3 or x.shape[:2] != y.shape[:2]:
            raise SamformerError(f"PairWindows needs x (N, D, L), y (N, D, H) with equal N, D; got {tuple(x.shape)} and {tuple(y.shape)}")
        self.x, self.y = x, y

    def __len__(self) -> int:
        return self.x.shape[0]

    def batch(self, index: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs (B, D, L) and targets (B, D, H) of the samples at `index`."""
        return self.x[index], self.y[index]

    def batch_mask(self, index: torch.Tensor | slice) -> None:
        """No missing values: always None (the `Windows` interface)."""
        return None

    def to(self, device: torch.device | str) -> PairWindows:
        return PairWindows(self.x.to(device), self.y.to(device))


@dataclass
class ToyData:
    """The generated toy task: W_toy and the three splits (float32, channels first)."""

    config: ToyConfig
    w_toy: torch.Tensor  # (L, H)
    splits: dict[str, PairWindows]
    name: str = "toy"

    @property
    def n_channels(self) -> int:
        return self.config.n_channels

    def windows(self, split: str) -> PairWindows:
        """The samples of one split: 'train', 'val' or 'test'."""
        if split not in self.splits:
            raise SamformerError(f"toy task has no split {split!r}; use 'train', 'val' or 'test'")
        return self.splits[split]

    def protocol(self) -> dict:
        """How the data were generated, for result files."""
        return {"dataset": self.name, **asdict(self.config), "samples": {s: len(w) for s, w in self.splits.items()}}


def make_toy_data(config: ToyConfig | None = None) -> ToyData:
    """Draw W_toy and the train/val/test samples from one seeded generator (same seed, same data)."""
    cfg = config or ToyConfig()
    gen = torch.Generator().manual_seed(cfg.seed)
    w_toy = torch.randn(cfg.seq_len, cfg.horizon, generator=gen)  # (L, H)
    splits = {}
    for split, n in (("train", cfg.n_train), ("val", cfg.n_val), ("test", cfg.n_test)):
        x = torch.randn(n, cfg.n_channels, cfg.seq_len, generator=gen)  # (N, D, L)
        noise = cfg.noise_std * torch.randn(n, cfg.n_channels, cfg.horizon, generator=gen)
        splits[split] = PairWindows(x, x @ w_toy + noise)  # (N, D, L) @ (L, H) -> (N, D, H)
    return ToyData(cfg, w_toy, splits)


def _rows(windows: PairWindows) -> tuple[torch.Tensor, torch.Tensor]:
    """Every channel of every sample as one regression row, in float64: (N·D, L) and (N·D, H)."""
    return windows.x.reshape(-1, windows.x.shape[-1]).double(), windows.y.reshape(-1, windows.y.shape[-1]).double()


def linear_mse(w: torch.Tensor, windows: PairWindows) -> float:
    """MSE of the linear forecast X W (W of shape (L, H)) on `windows`, in float64."""
    x, y = _rows(windows)
    return torch.mean((x @ w.double() - y) ** 2).item()


def oracle(data: ToyData) -> tuple[torch.Tensor, float]:
    """The least-squares map fitted on the training split and its validation MSE.

    Returns W_hat of shape (L, H) (float64) and its MSE on the validation split. With N·D training rows
    and L unknowns per output, its expected validation MSE is about noise_std² · (1 + L / (N·D − L)).
    """
    x, y = _rows(data.windows("train"))
    w_hat = torch.linalg.lstsq(x, y).solution  # (L, H)
    return w_hat, linear_mse(w_hat, data.windows("val"))


# ---------------------------------------------------------------------------------------------------
# The trainability study: the same network trained six ways on the toy task.

METHODS = ("transformer", "samformer", "sigma_reparam", "sigma_reparam_all", "random_attention", "random_attention_all")
METHOD_LABELS = {
    "transformer": "Transformer (Adam)",
    "samformer": "SAMformer (SAM)",
    "sigma_reparam": "Transformer + σReparam (attention)",
    "sigma_reparam_all": "Transformer + σReparam (every linear map)",
    "random_attention": "Random Transformer (W_Q, W_K frozen)",
    "random_attention_all": "Random Transformer (all attention frozen)",
}
# The parameters each method keeps at their initial values (attribute paths in `SAMformer.attention`).
FROZEN_ATTENTION_MAPS = {"random_attention": ("query", "key"), "random_attention_all": ("query", "key", "value", "output")}


@dataclass(frozen=True)
class StudyConfig:
    """Settings of `run_toy_study`; the toy task's own settings are in `toy`."""

    toy: ToyConfig = ToyConfig()
    epochs: int = 100  # the paper's maximum; every method runs all of them (no early stopping: equal-length curves)
    lr: float = 1e-3  # Adam, with the paper's cosine warm restarts every 5 epochs
    batch_size: int = 32
    rho: float = 0.7  # SAM radius for the "samformer" method
    seed: int = 42  # model initialisation and batch order (every method starts from the same draw)
    shuffle: bool = True  # False: every epoch in the stored order, as the TF pipeline (`TrainConfig.shuffle`)
    init_scale: float = 1.0  # multiplies the initial W_Q and W_K (the initial attention logits scale with its square)
    methods: tuple[str, ...] = METHODS
    value_dim: int | None = 16  # 16: the paper's W_V W_O (TF code); None: the PyTorch code's L×L W_V
    init: Init = "keras"  # "keras": Glorot-uniform kernels, zero biases (TF code); "torch": nn.Linear's
    sharpness_methods: tuple[str, ...] = ("transformer", "samformer")  # λmax is logged for these
    sharpness_every: int = 5  # λmax at epoch 0, every this many epochs and at the last (attention stats: every epoch)
    diagnostic_samples: int = 1024  # fixed subset of training samples for sharpness and attention statistics
    sharpness_iterations: int = 20  # Lanczos products per estimate (at most)
    sharpness_tol: float = 1e-2  # relative Ritz-residual tolerance (the eigenvalue itself is far more accurate)
    full_sharpness: bool = True  # also λmax on the whole training split after the last epoch

    def __post_init__(self) -> None:
        unknown = [m for m in (*self.methods, *self.sharpness_methods) if m not in METHODS]
        if unknown:
            raise SamformerError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
        if self.init not in ("keras", "torch"):
            raise SamformerError(f"study: init must be 'keras' or 'torch', got {self.init!r}")
        if not self.init_scale > 0:
            raise SamformerError(f"study: init_scale must be positive, got {self.init_scale!r}")
        if self.value_dim is not None and (not isinstance(self.value_dim, int) or self.value_dim < 1):
            raise SamformerError(f"study: value_dim must be None or a positive integer, got {self.value_dim!r}")
        for name in ("epochs", "batch_size", "diagnostic_samples", "sharpness_iterations", "sharpness_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise SamformerError(f"study: {name} must be a positive integer, got {value!r}")


# `study toy --quick`: the same dimensions (D=7, L=512, H=96) on a fifth of the samples and 10 epochs, for tests and
# a first look; far too short to converge (the full run needs ≈ 75 epochs for SAM to reach the oracle).
QUICK_STUDY = StudyConfig(
    toy=ToyConfig(n_train=2000, n_val=1000, n_test=500),
    epochs=10,
    diagnostic_samples=256,
    sharpness_iterations=10,
    full_sharpness=False,
)


def build_method(
    method: str, config: ToyConfig, seed: int, value_dim: int | None = 16, init: Init = "keras", init_scale: float = 1.0
) -> tuple[SAMformer, bool]:
    """The network for `method` and whether SAM trains it.

    RevIN is off, as in the original toy runs; `value_dim` and `init` choose the value map and the
    initialisation (defaults: the paper's TF model, see the module docstring), and `init_scale`
    multiplies the initial W_Q and W_K (without effect under σReparam, which divides by their norm).
    The random Transformers' frozen maps (`FROZEN_ATTENTION_MAPS`) keep their initial weights and biases.
    """
    if method not in METHODS:
        raise SamformerError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    seed_everything(seed)
    model = SAMformer(
        config.n_channels,
        config.seq_len,
        config.horizon,
        value_dim=value_dim,
        revin=False,
        sigma_reparam=method.startswith("sigma_reparam"),
        sigma_reparam_scope="all" if method == "sigma_reparam_all" else "attention",
        init=init,
    )
    with torch.no_grad():
        for layer in (model.attention.query, model.attention.key):
            layer.weight.mul_(init_scale)
    frozen = [getattr(model.attention, name) for name in FROZEN_ATTENTION_MAPS.get(method, ())]
    for layer in filter(None, frozen):  # no output projection with value_dim=None
        layer.requires_grad_(False)  # fit only optimises parameters that require grad
    return model, method == "samformer"


def _final_sharpness_callback(windows: PairWindows, study: StudyConfig) -> Callable[[SAMformer, dict[str, Any]], None]:
    """Adds `sharpness_full_train` (λmax over every training sample) to the last epoch's record."""

    def callback(model: SAMformer, record: dict[str, Any]) -> None:
        if record["epoch"] == study.epochs:
            x, y = windows.batch(slice(None))
            record["sharpness_full_train"] = sharpness(model, x, y, study.sharpness_iterations, study.sharpness_tol, seed=study.seed)

    return callback


def train_method(method: str, data: ToyData, study: StudyConfig, progress: bool = False) -> dict[str, Any]:
    """Train one method on the toy task; returns its per-epoch history (epoch 0 = initialisation)."""
    model, uses_sam = build_method(method, data.config, study.seed, study.value_dim, study.init, study.init_scale)
    cfg = TrainConfig(
        lr=study.lr,
        batch_size=study.batch_size,
        epochs=study.epochs,
        patience=study.epochs,
        sam=uses_sam,
        rho=study.rho,
        seed=study.seed,
        shuffle=study.shuffle,
        device="cpu",
        progress=progress,
    )
    with_sharpness = method in study.sharpness_methods
    train = data.windows("train")
    diagnostics = diagnostics_callback(
        train,
        study.diagnostic_samples,
        with_sharpness,
        study.sharpness_iterations,
        study.sharpness_tol,
        seed=study.seed,
        sharpness_every=study.sharpness_every,
        last_epoch=study.epochs,
    )
    callbacks = [diagnostics]
    if with_sharpness and study.full_sharpness:
        callbacks.append(_final_sharpness_callback(train, study))
    start = {"epoch": 0, "val_mse": evaluate(model, data.windows("val"))["mse"]}
    diagnostics(model, start)
    result = fit(model, data, cfg, tuple(callbacks))
    test_mse = evaluate(model, data.windows("test"), cfg.eval_batch_size, cfg.precision)["mse"]  # device="cpu"
    return {"history": [start, *result.history], "test_mse_at_best": test_mse, "best_epoch": result.best_epoch}


def _series(history: list[dict[str, Any]], key: str) -> list[float | None]:
    return [h.get(key) for h in history]


def summarize_method(run: dict[str, Any]) -> dict[str, Any]:
    """Final numbers and every per-epoch series of one method's run (None where not measured)."""
    history = run["history"]
    last = history[-1]
    series = {
        "epoch": _series(history, "epoch"),
        "train_loss": _series(history, "train_loss"),
        "val_loss": _series(history, "val_mse"),
        "sharpness": _series(history, "sharpness"),
        "attention_entropy": _series(history, "attention_entropy"),
        "nuclear_norm": _series(history, "nuclear_norm"),
    }
    return {
        "final_val_loss": last["val_mse"],
        "final_train_loss": last.get("train_loss"),
        "best_val_loss": min(h["val_mse"] for h in history[1:]),
        "best_epoch": run["best_epoch"],
        "test_loss_at_best": run["test_mse_at_best"],
        "final_sharpness": last.get("sharpness"),
        "final_sharpness_full_train": last.get("sharpness_full_train"),
        "final_entropy": last.get("attention_entropy"),
        "final_nuclear_norm": last.get("nuclear_norm"),
        "seconds": sum(h.get("seconds", 0.0) for h in history),
        "series": series,
    }


def _train_in_worker(method: str, study: StudyConfig) -> dict[str, Any]:
    """`train_method` in a fresh process: one thread, the data regenerated from the seed (same data)."""
    torch.set_num_threads(1)
    started, cpu_started = time.perf_counter(), time.process_time()
    run = train_method(method, make_toy_data(study.toy), study)
    return {**run, "wall_seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu_started}


def run_toy_study(
    study: StudyConfig | None = None, workers: int = 1, progress: bool = False, log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Generate the toy task, fit its oracle, train every method; returns the JSON-ready summary.

    With `workers` > 1 the methods train in that many processes (one torch thread each); every method
    seeds itself, so the numbers do not depend on `workers`. The summary holds `oracle_val_loss`,
    `true_map_val_loss` (W_toy itself: the noise floor), the settings, and one entry per method
    (see `summarize_method`).
    """
    study = study or StudyConfig()
    started = time.perf_counter()
    data = make_toy_data(study.toy)
    w_hat, oracle_val = oracle(data)
    summary: dict[str, Any] = {
        "oracle_val_loss": oracle_val,
        "oracle_test_loss": linear_mse(w_hat, data.windows("test")),
        "true_map_val_loss": linear_mse(data.w_toy, data.windows("val")),
        "settings": {
            **asdict(study),
            "workers": workers,
            "torch_threads": 1 if workers > 1 else torch.get_num_threads(),
            "torch_version": torch.__version__,
        },
    }

    def record(method: str, run: dict[str, Any]) -> None:
        summary[method] = {**summarize_method(run), "wall_seconds": run["wall_seconds"], "cpu_seconds": run["cpu_seconds"]}
        if log is not None:
            log(f"{method}: final val {summary[method]['final_val_loss']:.4f} (oracle {oracle_val:.4f}) in {run['wall_seconds']:.0f} s")

    if workers > 1:
        del data  # each worker regenerates it
        # SAM's two passes per step make it the longest run: start it first so it overlaps the others
        order = sorted(study.methods, key=lambda m: m != "samformer")
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_train_in_worker, m, study): m for m in order}
            for future in as_completed(futures):
                record(futures[future], future.result())
    else:
        for method in study.methods:
            method_start, cpu_start = time.perf_counter(), time.process_time()
            run = train_method(method, data, study, progress)
            record(method, {**run, "wall_seconds": time.perf_counter() - method_start, "cpu_seconds": time.process_time() - cpu_start})
    for method in study.methods:  # keep the configured order in the JSON
        summary[method] = summary.pop(method)
    summary["wall_seconds"] = time.perf_counter() - started
    return summary
