"""SAMformer: RevIN → channel-wise single-head attention → residual → shared linear forecaster → RevIN⁻¹.

Ilbert et al., "SAMformer: Unlocking the Potential of Transformers in Time Series Forecasting with
Sharpness-Aware Minimization and Channel-Wise Attention", ICML 2024 (arXiv 2402.10198); reference code
at github.com/romilbert/samformer.

Layout: the public `forward` takes `(batch, seq_len, n_channels)` and returns
`(batch, horizon, n_channels)`, the field's convention. Internally every channel is a token whose
features are its `seq_len` past values, i.e. `(batch, n_channels, seq_len)`; `forward_channels_first`
works in that layout directly and is what the training loop uses.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from samformer.errors import ConfigError, ShapeError
from samformer.nn.fused import FusedWeights, attend_and_forecast
from samformer.nn.memory import check_memory
from samformer.nn.reparam import SigmaReparamLinear

Init = Literal["torch", "keras"]
Fused = Literal["auto"] | bool
SigmaReparamScope = Literal["attention", "all"]


@dataclass(frozen=True)
class SAMformerConfig:
    """Everything needed to rebuild a SAMformer; stored beside its weights."""

    n_channels: int  # D, number of input channels (tokens of the attention)
    seq_len: int  # L, look-back window
    horizon: int  # H, forecast length
    d_model: int = 16  # width of queries and keys
    value_dim: int | None = None  # None: values map L→L (PyTorch code); e.g. 16: L→16→L (TF code)
    attention: bool = True  # False: the linear ablation (no attention, no residual branch)
    revin: bool = True  # RevIN normalisation and its inverse
    sigma_reparam: bool = False  # σReparam on the query/key/value (and output) maps
    init: Init = "torch"  # "torch": nn.Linear defaults; "keras": Glorot-uniform kernels (Keras' fans), zero biases
    target_channels: tuple[int, ...] | None = None  # channels forecast (modes S/MS); None: all (mode M)
    sigma_reparam_scope: SigmaReparamScope = "attention"  # with sigma_reparam: "all" adds the forecaster (Zhai et al.)

    def __post_init__(self) -> None:
        for name in ("n_channels", "seq_len", "horizon", "d_model"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.value_dim is not None and (not isinstance(self.value_dim, int) or isinstance(self.value_dim, bool) or self.value_dim < 1):
            raise ValueError(f"value_dim must be None or a positive integer, got {self.value_dim!r}")
        for name in ("attention", "revin", "sigma_reparam"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.target_channels is not None:
            if isinstance(self.target_channels, str | bytes) or not isinstance(self.target_channels, Iterable):
                raise ValueError(f"target_channels must be None or a sequence of channel indices, got {self.target_channels!r}")
            targets = tuple(self.target_channels)
            if not all(isinstance(t, numbers.Integral) and not isinstance(t, bool) for t in targets):
                raise ValueError(f"target_channels must be integer channel indices, got {self.target_channels!r}")
            targets = tuple(int(t) for t in targets)
            if not targets or len(set(targets)) != len(targets) or not all(0 <= t < self.n_channels for t in targets):
                raise ValueError(f"target_channels must be distinct indices in [0, {self.n_channels}), got {self.target_channels!r}")
            object.__setattr__(self, "target_channels", targets)  # JSON gives a list
        if self.init not in ("torch", "keras"):
            raise ValueError(f"init must be 'torch' or 'keras', got {self.init!r}")
        if self.sigma_reparam_scope not in ("attention", "all"):
            raise ValueError(f"sigma_reparam_scope must be 'attention' or 'all', got {self.sigma_reparam_scope!r}")


class RevIN(nn.Module):
    """Reversible instance normalisation (Kim et al., ICLR 2022) with a learnable per-channel affine.

    Statistics are per sample and channel over the input window, detached from the graph, with the
    biased variance and `eps` inside the square root, as in the reference implementation.
    """

    def __init__(self, n_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_channels))
        self.bias = nn.Parameter(torch.zeros(n_channels))

    def normalize(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Normalise `x` of shape (B, D, L); returns the result and the (mean, std) to undo it.

        With a boolean `mask` of the same shape (True = observed), the statistics use only the observed
        values and each missing value becomes the window's mean (0 before the affine map), whatever `x`
        holds there (NaN included).
        """
        z, stats = self.standardize(x, mask)
        return revin_affine(z, self.weight, self.bias), stats

    def standardize(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """`normalize` without the learnable affine map: (x − mean) / std, which carries no gradient.

        ``normalize(x)[0] == standardize(x)[0] * weight[:, None] + bias[:, None]``; the fused forward
        pass (`samformer.nn.fused`) applies the affine map itself, after its first product.
        """
        x = x.detach()
        if mask is not None:
            return self._standardize_masked(x, mask)
        # Windows cut from a (T, D) series by the caller (x.unfold(0, L, 1)) are (B, D, L) tensors whose time axis is
        # strided; reducing along it is slow and elementwise results would inherit the layout, so every matrix product
        # would copy (or fall back to a slow batched product). Such inputs are copied once; `Windows` serves its
        # batches with a contiguous time axis.
        if x.stride(-1) != 1:
            x = x.contiguous()
        mean = x.mean(dim=-1, keepdim=True)  # (B, D, 1)
        centred = x - mean
        # Two-pass variance: at these shapes torch.var's CPU kernel is ~20x slower than a mean.
        std = torch.sqrt((centred * centred).mean(dim=-1, keepdim=True) + self.eps)  # x·x: what square() computes, without pow's dispatch
        return centred / std, (mean, std)

    def _standardize_masked(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        count = mask.sum(dim=-1, keepdim=True).clamp(min=1)  # (B, D, 1); an all-missing row gets mean 0, std √eps
        x = torch.where(mask, x, 0.0)
        mean = x.sum(dim=-1, keepdim=True) / count  # (B, D, 1)
        var = torch.where(mask, x - mean, 0.0).square().sum(dim=-1, keepdim=True) / count
        std = torch.sqrt(var + self.eps)
        return torch.where(mask, (x - mean) / std, 0.0), (mean, std)

    def denormalize(self, y: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor], channels: list[int] | None = None) -> torch.Tensor:
        """Exact inverse of `normalize` applied to `y` of shape (B, D, H), or (B, len(channels), H)."""
        return revin_inverse(y, stats, self.weight, self.bias, self.eps, channels)


def revin_affine(z: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """RevIN's learnable affine map of standardised inputs z (..., B, D, L), weight and bias (..., D).

    The leading axes (none for one model; the model axis k of a stack) are the weights' as well as the inputs'.
    """
    return torch.addcmul(_per_channel(bias), z, _per_channel(weight))


def revin_inverse(
    y: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor], weight: torch.Tensor, bias: torch.Tensor, eps: float, channels=None
) -> torch.Tensor:
    """RevIN's inverse of forecasts y (..., B, Dt, H), given the inputs' (mean, std), each (..., B, D, 1), and the affine
    weight and bias (..., D); `channels` (a list of Dt indices, or None for all) picks the forecast channels."""
    mean, std = stats
    if channels is not None:
        mean, std, weight, bias = mean[..., channels, :], std[..., channels, :], weight[..., channels], bias[..., channels]
    scale = std / (_per_channel(weight) + eps**2)  # (..., B, Dt, 1): one multiply-add over (..., B, Dt, H)
    return torch.addcmul(mean - _per_channel(bias) * scale, y, scale)


def _per_channel(values: torch.Tensor) -> torch.Tensor:
    """Per-channel values (..., D) shaped to broadcast over (..., B, D, ·): (..., 1, D, 1)."""
    return values.unsqueeze(-2).unsqueeze(-1)


def takes_fused_pass(fused: Fused, horizon: int, rows: int) -> bool:
    """Whether a network whose layers allow the fused pass takes it on a batch of `rows` (window, channel) rows:
    never with `fused=False`, always with True, and with "auto" when it pays, H ≤ B·D (see `SAMformer.uses_fused`)."""
    return fused is not False and (fused is True or horizon <= rows)


def missing_as_zero(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Inputs without RevIN: missing values (mask False) set to 0, the mean of standardised data; row-major."""
    return torch.where(mask, x, 0.0) if mask is not None else x.contiguous()  # see RevIN.standardize


def to_autocast_dtype(x: torch.Tensor) -> torch.Tensor:
    """`x` in the dtype autocast computes matrix products in, or unchanged when autocast is off.

    One cast for the attention, the residual and the forecaster: autocast would cast the input of each
    matrix product separately, and add the residual in fp32.
    """
    device_type = x.device.type
    return x.to(torch.get_autocast_dtype(device_type)) if torch.is_autocast_enabled(device_type) else x


def _linear(in_features: int, out_features: int, cfg: SAMformerConfig, reparam: bool, head_kernel: bool = False) -> nn.Module:
    """A linear map, initialised as PyTorch (`init="torch"`) or as the paper's Keras code (`"keras"`).

    Keras draws kernels Glorot-uniform, U(±√(6 / (fan_in + fan_out))), with zero biases. A query, key or
    value kernel of Keras' MultiHeadAttention (`head_kernel`) has shape (L, heads = 1, width), and Keras
    counts the leading axis as a receptive field: fan_in = L, fan_out = width · L, so its bound is
    √(6 / (L + width · L)), not the 2-D √(6 / (L + width)).
    """
    layer = SigmaReparamLinear(in_features, out_features) if reparam else nn.Linear(in_features, out_features)
    if cfg.init == "keras":
        fan_in, fan_out = in_features, out_features * (in_features if head_kernel else 1)
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        nn.init.uniform_(layer.weight, -bound, bound)
        nn.init.zeros_(layer.bias)
        if reparam:
            layer.refresh_singular_vectors(iterations=50)
    return layer


class ChannelAttention(nn.Module):
    """Single-head attention in which the D channels attend to each other.

    Q = X Wq + bq and K = X Wk + bk map each channel's L values to `d_model`; V maps them to L
    (or to `value_dim`, followed by an output projection back to L, as in the paper's TF code).
    A = softmax(Q Kᵀ / √d_model) is D×D, so no positional encoding is needed.
    """

    def __init__(self, cfg: SAMformerConfig) -> None:
        super().__init__()
        L, reparam = cfg.seq_len, cfg.sigma_reparam
        self.scale = 1.0 / math.sqrt(cfg.d_model)
        self.query = _linear(L, cfg.d_model, cfg, reparam, head_kernel=True)
        self.key = _linear(L, cfg.d_model, cfg, reparam, head_kernel=True)
        self.value = _linear(L, cfg.value_dim or L, cfg, reparam, head_kernel=True)
        self.output = _linear(cfg.value_dim, L, cfg, reparam) if cfg.value_dim else None

    def _project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries (B, D, d), keys (B, D, d) and values (B, D, dv) of inputs (B, D, L).

        Plain linear maps are applied as one matrix product with the three weights stacked: queries
        and keys alone are too narrow (d = 16 columns) to use the CPU's matrix units well, and the input
        is read (and, under autocast, cast) once instead of three times. Same maps, same parameters.
        """
        maps = (self.query, self.key, self.value)
        if not all(type(m) is nn.Linear for m in maps):
            return self.query(x), self.key(x), self.value(x)
        weight = torch.cat([m.weight for m in maps])  # (2d + dv, L)
        bias = torch.cat([m.bias for m in maps])
        qkv = nn.functional.linear(x, weight, bias)  # (B, D, L) -> (B, D, 2d + dv)
        return qkv.split([m.out_features for m in maps], dim=-1)

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """The (B, D, D) attention matrix for inputs of shape (B, D, L); each row sums to 1."""
        return self._attention(*self._project(x)[:2])

    def _attention(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return attention_matrix(queries, keys, self.scale)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map (B, D, L) to the attended values (B, D, L) and the attention matrix (B, D, D)."""
        queries, keys, values = self._project(x)
        attn = self._attention(queries, keys)
        out = attn @ values  # (B, D, D) @ (B, D, dv) -> (B, D, dv)
        if self.output is not None:
            out = self.output(out)  # (B, D, dv) -> (B, D, L)
        return out, attn


def attention_matrix(queries: torch.Tensor, keys: torch.Tensor, scale: float) -> torch.Tensor:
    """softmax(Q Kᵀ · scale) of queries and keys (N, D, d): the (N, D, D) channel attention, each row summing to 1."""
    scores = queries @ keys.transpose(-2, -1)  # (N, D, d) @ (N, d, D) -> (N, D, D)
    return torch.softmax(scores * scale, dim=-1)


# Attention layer names in the original PyTorch code -> here.
_ORIGINAL_ATTENTION_NAMES = {"queries": "query", "keys": "key", "values": "value"}


class SAMformer(nn.Module):
    """The SAMformer network.

    Args:
        n_channels: number of channels D of the multivariate series.
        seq_len: look-back window L.
        horizon: forecast length H.
        d_model: width of queries and keys (16 in the paper).
        value_dim: None for values mapping L→L (reference PyTorch code); an int for values mapping
            L→value_dim followed by an output projection back to L (the paper's TF code uses 16).
        attention: False gives the linear ablation (RevIN + shared linear forecaster only).
        revin: False removes RevIN and its inverse.
        sigma_reparam: use σReparam on the attention's linear maps.
        sigma_reparam_scope: "attention" (default) or "all": with `sigma_reparam`, also on the linear
            forecaster, so that every linear map is reparametrised as in Zhai et al.
        init: "torch" (nn.Linear defaults) or "keras" (Glorot-uniform kernels, zero biases, as TF).
        target_channels: indices of the channels to forecast (modes S/MS and covariates); the other
            channels are inputs the targets attend to. None forecasts every channel (mode M).
        fused: whether the forward pass runs `samformer.nn.fused.attend_and_forecast` (same function,
            fewer operations): "auto" when it pays (H ≤ B·D), True whenever the layers allow it, False
            never. A runtime choice like timm's `fused_attn`: not part of `config`, not saved; the
            attribute `fused` may be changed at any time (see `uses_fused`, `plain_modules`). Training with
            the MSE skips autograd on every batch unless `fused=False`: a batch the fused pass does not take
            under "auto" trains by a hand-written pass in the modules' own algebra (`fused.plain_mse_loss_and_gradients`).

    Input `(batch, seq_len, n_channels)`; output `(batch, horizon, n_channels)`, or
    `(batch, horizon, len(target_channels))`.
    """

    def __init__(
        self,
        n_channels: int,
        seq_len: int,
        horizon: int,
        d_model: int = 16,
        value_dim: int | None = None,
        attention: bool = True,
        revin: bool = True,
        sigma_reparam: bool = False,
        init: Init = "torch",
        target_channels: tuple[int, ...] | list[int] | None = None,
        sigma_reparam_scope: SigmaReparamScope = "attention",
        fused: Fused = "auto",
    ) -> None:
        super().__init__()
        if not (fused == "auto" or isinstance(fused, bool)):
            raise ConfigError(f"fused must be 'auto', True or False, got {fused!r}")
        cfg = SAMformerConfig(
            n_channels, seq_len, horizon, d_model, value_dim, attention, revin, sigma_reparam, init, target_channels, sigma_reparam_scope
        )
        check_memory(cfg)  # before a single weight is allocated
        self.config = cfg
        self.revin = RevIN(n_channels) if revin else None
        self.attention = ChannelAttention(cfg) if attention else None
        self.forecaster = _linear(seq_len, horizon, cfg, reparam=sigma_reparam and cfg.sigma_reparam_scope == "all")
        self._targets = None if cfg.target_channels is None else list(cfg.target_channels)
        self.fused: Fused = fused

    @classmethod
    def from_config(cls, cfg: SAMformerConfig | dict) -> SAMformer:
        """Build a model from a `SAMformerConfig` or its dict form."""
        return cls(**(asdict(cfg) if isinstance(cfg, SAMformerConfig) else cfg))

    def forward_channels_first(
        self, x: torch.Tensor, return_attention: bool = False, mask: torch.Tensor | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        """Forecast from `x` of shape (B, D, L); returns (B, D, H) [and the (B, D, D) attention].

        With `target_channels`, only those channels are forecast: (B, D_targets, H).
        `mask` (bool, shape of `x`, True = observed) keeps missing inputs out of RevIN's statistics; without
        RevIN they are set to 0, the mean of standardised data.
        """
        targets = self._targets
        if self.uses_fused(x):
            z, stats = self.standardize_inputs(x, mask)
            eps = 0.0 if self.revin is None else self.revin.eps
            y, attn = attend_and_forecast(z, stats, self.fused_weights(), eps, self.attention.scale, targets)
            return (y, attn) if return_attention else y
        attn = None
        if self.revin is not None:
            x, stats = self.revin.normalize(x, mask)
        else:
            x, stats = self.standardize_inputs(x, mask)
        x = to_autocast_dtype(x)
        if self.attention is not None:
            attended, attn = self.attention(x)
            x = x + attended  # residual, (B, D, L)
        if targets is not None:
            x = x[:, targets]  # (B, D, L) -> (B, D_targets, L)
        y = self.forecaster(x)  # (B, ·, L) -> (B, ·, H)
        if stats is not None:
            y = self.revin.denormalize(y, stats, targets)
        return (y, attn) if return_attention else y

    def standardize_inputs(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """The fused pass's inputs z (B, D, L): RevIN-standardised without the affine map, and RevIN's
        (mean, std); without RevIN, `x` with missing values set to 0 (the mean of standardised data), row-major,
        and None."""
        if self.revin is not None:
            return self.revin.standardize(x, mask)
        return missing_as_zero(x, mask), None

    def fused_weights(self) -> FusedWeights:
        """The parameters as `samformer.nn.fused` reads them (views of the parameters themselves, not copies)."""
        att, revin = self.attention, self.revin
        affine = (None, None) if revin is None else (revin.weight, revin.bias)
        q, k, v, f = att.query, att.key, att.value, self.forecaster
        return FusedWeights(*affine, q.weight, q.bias, k.weight, k.bias, v.weight, v.bias, f.weight, f.bias)

    def can_fuse(self) -> bool:
        """Whether the layers allow the fused pass: attention with plain linear maps and values L→L."""
        att = self.attention
        if att is None or att.output is not None:
            return False
        return all(type(m) is nn.Linear for m in (att.query, att.key, att.value, self.forecaster))

    def uses_fused(self, x: torch.Tensor) -> bool:
        """Whether the forward pass on `x` (B, D, L) runs `samformer.nn.fused.attend_and_forecast`.

        It needs layers that allow it (`can_fuse`) and `fused` not False; with `fused="auto"` it is taken
        when it pays, H ≤ B·D: the fused pass folds the (L, L) value weight into the forecaster once per
        batch (H × L × L), the modules map each of the B·D channel rows through it (B·D × L × L). Both
        compute the same function (measured crossover: `benchmarks/fold_crossover.py`).
        """
        return takes_fused_pass(self.fused, self.config.horizon, x.shape[0] * x.shape[1]) and self.can_fuse()

    @contextmanager
    def plain_modules(self) -> Iterator[SAMformer]:
        """Within the block, the forward pass runs through the modules, never the fused pass.

        Same function; but autograd then records every operation, so second derivatives (the Hessian-vector
        products of `analysis.sharpness`) exist: the fused pass's hand-written backward is differentiable once.
        """
        previous, self.fused = self.fused, False
        try:
            yield self
        finally:
            self.fused = previous

    def forward(self, x: torch.Tensor, return_attention: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        """Forecast from `x` of shape (B, L, D); returns (B, H, D) [and the (B, D, D) attention]."""
        self._check_input(x)
        out = self.forward_channels_first(x.transpose(1, 2), return_attention)  # (B, L, D) -> (B, D, L)
        if return_attention:
            y, attn = out
            return y.transpose(1, 2), attn  # (B, D, H) -> (B, H, D)
        return out.transpose(1, 2)

    def _check_input(self, x: torch.Tensor) -> None:
        cfg = self.config
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"SAMformer expects a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 3 or x.shape[1] != cfg.seq_len or x.shape[2] != cfg.n_channels:
            raise ShapeError(
                f"SAMformer expects input of shape (batch, seq_len={cfg.seq_len}, n_channels={cfg.n_channels}), "
                f"got {tuple(x.shape)}; if your tensor is (batch, n_channels, seq_len), transpose it with x.transpose(1, 2)"
            )
        if not x.is_floating_point():
            raise TypeError(f"SAMformer expects a floating-point tensor, got dtype {x.dtype}; use x.float()")

    def attention_parameters(self) -> list[nn.Parameter]:
        """Parameters of the attention block (empty for the linear ablation)."""
        return [] if self.attention is None else list(self.attention.parameters())

    @classmethod
    def from_original_state_dict(cls, state_dict: dict[str, torch.Tensor]) -> SAMformer:
        """Load a state_dict saved by the original PyTorch SAMformer code.

        The original model takes `(batch, D, L)` and returns `(batch, D·H)`; the returned model keeps
        this library's layout (`(batch, L, D)` in, `(batch, H, D)` out) and gives the same numbers:
        ``original(x).reshape(B, D, H) == ours(x.transpose(1, 2)).transpose(1, 2)``.
        """
        expected = {
            "revin.affine_weight",
            "revin.affine_bias",
            *(f"compute_{m}.{p}" for m in _ORIGINAL_ATTENTION_NAMES for p in ("weight", "bias")),
            "linear_forecaster.weight",
            "linear_forecaster.bias",
        }
        missing = expected - set(state_dict)
        if missing:
            raise KeyError(f"not an original SAMformer state_dict: missing keys {sorted(missing)}")
        d_model, seq_len = state_dict["compute_queries.weight"].shape
        horizon = state_dict["linear_forecaster.weight"].shape[0]
        n_channels = state_dict["revin.affine_weight"].shape[0]
        model = cls(n_channels, seq_len, horizon, d_model=d_model)
        mapping = {
            "revin.affine_weight": "revin.weight",
            "revin.affine_bias": "revin.bias",
            **{
                f"compute_{orig}.{p}": f"attention.{ours}.{p}"
                for orig, ours in _ORIGINAL_ATTENTION_NAMES.items()
                for p in ("weight", "bias")
            },
            **{f"linear_forecaster.{p}": f"forecaster.{p}" for p in ("weight", "bias")},
        }
        model.load_state_dict({new: state_dict[old] for old, new in mapping.items()})
        return model


@dataclass(frozen=True)
class Variant:
    """A named model of the paper's ablations: `SAMformer` keyword overrides and how it is trained."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)  # SAMformer keyword arguments
    uses_sam: bool = True  # trained with SAM (else plain Adam)
    description: str = ""


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("samformer", {}, True, "the paper's model, trained with SAM"),
        Variant("no-sam", {}, False, 'the paper\'s "Transformer": the same network trained without SAM'),
        Variant("sigma-reparam", {"sigma_reparam": True}, False, "σReparam on the attention's maps instead of SAM"),
        Variant("linear", {"attention": False}, True, "no attention: RevIN and the linear forecaster, with SAM"),
        Variant("no-revin", {"revin": False}, True, "without RevIN, with SAM"),
    )
}


def list_variants() -> list[str]:
    """Names accepted by `create_model`."""
    return list(VARIANTS)


def get_variant(name: str) -> Variant:
    """The registered variant called `name`; a clear error naming the choices otherwise."""
    if name not in VARIANTS:
        raise ConfigError(f"unknown variant {name!r}; choose one of {', '.join(VARIANTS)}")
    return VARIANTS[name]


def create_model(variant: str, n_channels: int, seq_len: int, horizon: int, **overrides) -> SAMformer:
    """Build a named variant (see `list_variants`); keyword overrides go to `SAMformer`."""
    return SAMformer(n_channels, seq_len, horizon, **{**get_variant(variant).overrides, **overrides})


def variant_uses_sam(variant: str) -> bool:
    """Whether the named variant is trained with SAM."""
    return get_variant(variant).uses_sam
