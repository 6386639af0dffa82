"""k SAMformers of identical shapes held as one set of parameters with a leading model axis.

`StackedSAMformer` keeps every parameter of the k models in one flat tensor, each named parameter a
contiguous (k, *shape) block of it (contiguous, so that casts and products read it at full speed; a
(k, P) layout made each weight a strided view, 4x slower to cast). The optimizer's work (SAM's per-model
gradient norm, Adam) is a few operations over all blocks, and the forward pass computes all k models with
batched products over the model axis, each model on its own batch: inputs (k, B, D, L) -> forecasts
(k, B, D_targets, H).

Two passes compute the same function as `SAMformer.forward_channels_first`:
- `forward`: the plain modules' computation (RevIN, attention, residual, forecaster, RevIN⁻¹) with a
  model axis, differentiated by autograd; every variant (value_dim, attention=False, revin=False,
  target_channels);
- `mse_pass`: an autograd-free pass with hand-written gradients, taken wherever the layers allow it and
  `fused` is not False (`takes_hand_pass`), in whichever of two algebras costs fewer multiply-adds (`folds_values`):
  `samformer.nn.stacked_fused` (`samformer.nn.fused`'s pass with a model axis: values folded into the forecaster)
  or `samformer.nn.stacked_plain` (the modules' own algebra, for long horizons on few rows).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict

import torch
from torch import nn

from samformer.errors import SamformerError
from samformer.nn import stacked_fused, stacked_plain
from samformer.nn.model import (
    RevIN,
    SAMformer,
    SAMformerConfig,
    attention_matrix,
    missing_as_zero,
    revin_affine,
    revin_inverse,
    to_autocast_dtype,
)
from samformer.nn.stackable import model_blockers

RevinStats = tuple[torch.Tensor, torch.Tensor]
# RevIN's statistics have no parameters: one instance standardises the inputs of every model (its affine is unused).
_REVIN = RevIN(1)
_REVIN_EPS = _REVIN.eps


def standardize_inputs(x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, RevinStats]:
    """`RevIN.standardize` of inputs (N, D, L): (x − mean) / std and the (mean, std), each (N, D, 1)."""
    return _REVIN.standardize(x, mask)


class StackedSAMformer(nn.Module):
    """k SAMformers with one configuration, as one flat parameter tensor `flat`.

    `flat` holds each named parameter of all k models as one contiguous (k, *shape) block, the blocks in
    the order of `SAMformer.named_parameters()`; `params()` gives them as views. Built from k `SAMformer`s
    (their current weights are copied); `model(j)` gives model j back as an ordinary `SAMformer`.
    Which models can be stacked is `samformer.nn.stackable`'s rule (not σReparam ones).
    """

    def __init__(self, models: Sequence[SAMformer]) -> None:
        super().__init__()
        blockers = model_blockers([asdict(m.config) for m in models])
        if blockers:
            raise SamformerError(f"cannot stack these models: {'; '.join(map(str, blockers))}")
        config = models[0].config
        self.config: SAMformerConfig = config
        template = models[0]
        self.names = [name for name, _ in template.named_parameters()]
        self.shapes = [p.shape for _, p in template.named_parameters()]
        self.sizes = [math.prod(shape) for shape in self.shapes]
        self.k = len(models)
        blocks = [torch.stack([p.detach() for p in same]).reshape(-1) for same in zip(*(m.parameters() for m in models), strict=True)]
        self.flat = nn.Parameter(torch.cat(blocks))  # (k·P,): one (k, *shape) block per named parameter
        self.scale = 1.0 / math.sqrt(config.d_model)
        self._targets = None if config.target_channels is None else list(config.target_channels)
        self.fused: bool | str = template.fused  # as `SAMformer.fused`: "auto", True or False

    def __len__(self) -> int:
        return self.k

    def blocks(self, flat: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Each named parameter as a (k, *shape) view of `flat` (default: the stack's own), in `names` order.

        Any tensor laid out like `flat` (its gradient, Adam's moments) is viewed the same way.
        """
        flat = self.flat if flat is None else flat
        pieces = flat.split([self.k * size for size in self.sizes])
        return [piece.view(self.k, *shape) for piece, shape in zip(pieces, self.shapes, strict=True)]

    def params(self, flat: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """`blocks` by parameter name."""
        return dict(zip(self.names, self.blocks(flat), strict=True))

    def state_dict_of(self, j: int) -> dict[str, torch.Tensor]:
        """Model j's weights as a `SAMformer` state dict (copies)."""
        return {name: p[j].detach().clone() for name, p in self.params().items()}

    def model(self, j: int) -> SAMformer:
        """Model j as an ordinary `SAMformer` (its own copy of the weights)."""
        model = SAMformer.from_config(self.config).to(device=self.flat.device, dtype=self.flat.dtype)
        model.load_state_dict(self.state_dict_of(j))
        return model

    def select(self, flat: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """A tensor laid out like `flat` with only the models at `index` (1-d), in that order."""
        return torch.cat([block.index_select(0, index).reshape(-1) for block in self.blocks(flat)])

    @torch.no_grad()
    def keep(self, index: torch.Tensor) -> None:
        """Keep only the models at `index` (a 1-d index tensor), in that order."""
        flat = self.select(self.flat, index)
        self.k = len(index)
        self.flat = nn.Parameter(flat)

    @contextmanager
    def plain_modules(self) -> Iterator[StackedSAMformer]:
        """Within the block, training takes the autograd pass (`forward`), never the fused one."""
        previous, self.fused = self.fused, False
        try:
            yield self
        finally:
            self.fused = previous

    def takes_hand_pass(self) -> bool:
        """Whether training and evaluation take a hand-written pass (`mse_pass`, `fused_forecast`) rather
        than autograd's: when the layers allow it (as `SAMformer.can_fuse`) and `fused` is not False. Unlike a single
        model's fused pass it needs no H ≤ B·D: where folding does not pay, the stack computes the values
        (`folds_values`)."""
        cfg = self.config
        layers_allow = cfg.attention and cfg.value_dim is None  # σReparam is never stacked
        return layers_allow and self.fused is not False

    def folds_values(self, rows: int, gradients: bool = True) -> bool:
        """Whether the hand-written pass over a batch of `rows` (window, channel) rows folds the values into the
        forecaster (`stacked_fused`) rather than computing them (`stacked_plain`): always with `fused=True`, else when
        that costs fewer multiply-adds, for the forward pass and (`gradients`) the gradients.

        Folded: rows L (2d + 2H) for the product with [Wq; Wk; Wf; Wf Wv] plus H L² for the fold, each twice with
        gradients (the weight gradient; Wf's and Wv's through the fold), plus H L² more. Plain: rows L (2d + L + H) for
        the products with [Wq; Wk; Wv] and Wf, with gradients plus their weight gradients and rows L H for the
        forecaster's input. The attention's (D, D) products are alike and small.
        """
        if self.fused is True:
            return True
        d, L, H = self.config.d_model, self.config.seq_len, self.config.horizon
        folded = rows * L * (2 * d + 2 * H) + H * L * L
        plain = rows * L * (2 * d + L + H)
        if gradients:
            folded, plain = 2 * folded + H * L * L, 2 * plain + rows * L * H
        return folded <= plain

    def standardize(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, RevinStats | None]:
        """The inputs as the first layer sees them before RevIN's affine map: (x − mean) / std with RevIN,
        else with missing values set to 0; shapes (k, B, D, L) and, with RevIN, stats (k, B, D, 1) each."""
        k, B, D, L = x.shape
        if not self.config.revin:
            return missing_as_zero(x, mask), None
        flat_mask = None if mask is None else mask.reshape(k * B, D, L)
        z, (mean, std) = standardize_inputs(x.reshape(k * B, D, L), flat_mask)
        return z.view(k, B, D, L), (mean.view(k, B, D, 1), std.view(k, B, D, 1))

    def standardize_shared(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, dtype: torch.dtype | None = None
    ) -> tuple[torch.Tensor, RevinStats | None]:
        """`standardize` of the same inputs x (B, D, L) given to every model: computed once, expanded to (k, B, D, L)
        and, with RevIN, stats (k, B, D, 1) each, without copies (the statistics do not depend on the model).
        With a `dtype`, z is cast to it before it is expanded (a cast of the expanded z would copy it k times)."""
        k = self.k
        if not self.config.revin:
            z, stats = missing_as_zero(x, mask), None
        else:
            z, (mean, std) = standardize_inputs(x, mask)
            stats = (mean.expand(k, *mean.shape), std.expand(k, *std.shape))
        z = z if dtype is None else z.to(dtype)
        return z.expand(k, *z.shape), stats

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Forecasts (k, B, D_targets, H) of inputs (k, B, D, L), model j on x[j], through the plain modules' computation."""
        z, stats = self.standardize(x, mask)
        return self.forward_standardized(z, stats)

    def forward_standardized(self, z: torch.Tensor, stats: RevinStats | None) -> torch.Tensor:
        """`forward` from the output of `standardize`."""
        p, cfg, targets = self.params(), self.config, self._targets
        k, B, _, L = z.shape
        x = z if stats is None else revin_affine(z, p["revin.weight"], p["revin.bias"])
        x = to_autocast_dtype(x)
        if cfg.attention:
            x = x + self._attend(x, p)  # residual, (k, B, D, L)
        if targets is not None:
            x = x[:, :, targets]  # (k, B, D, L) -> (k, B, Dt, L)
        n_out = x.shape[2]
        y = _linear(x.reshape(k, B * n_out, L), p["forecaster.weight"], p["forecaster.bias"]).view(k, B, n_out, -1)  # (k, B, Dt, H)
        return y if stats is None else revin_inverse(y, stats, p["revin.weight"], p["revin.bias"], _REVIN_EPS, targets)

    def _attend(self, x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        """The attended values (k, B, D, L) of inputs (k, B, D, L)."""
        k, B, D, L = x.shape
        d = self.config.d_model
        weight = torch.cat([p["attention.query.weight"], p["attention.key.weight"], p["attention.value.weight"]], dim=1)  # (k, 2d + dv, L)
        bias = torch.cat([p["attention.query.bias"], p["attention.key.bias"], p["attention.value.bias"]], dim=1)
        qkv = _linear(x.reshape(k, B * D, L), weight, bias).view(k * B, D, -1)  # (k·B, D, 2d + dv)
        queries, keys, values = qkv.split([d, d, qkv.shape[-1] - 2 * d], dim=-1)
        attn = attention_matrix(queries, keys, self.scale)  # (k·B, D, D)
        out = attn @ values  # (k·B, D, dv)
        if self.config.value_dim is not None:
            out = _linear(out.view(k, B * D, -1), p["attention.output.weight"], p["attention.output.bias"])  # (k, B·D, L)
        return out.view(k, B, D, L)

    def _fused_params(self, flat: torch.Tensor | None = None) -> tuple[torch.Tensor | None, ...]:
        """(a, b, wq, bq, wk, bk, wv, bv, wf, bf) with a model axis, in `fused`'s order (a, b None without RevIN)."""
        p = self.params(flat)
        affine = (p["revin.weight"], p["revin.bias"]) if self.config.revin else (None, None)
        names = [f"attention.{m}.{t}" for m in ("query", "key", "value") for t in ("weight", "bias")]
        return (*affine, *(p[n] for n in names), p["forecaster.weight"], p["forecaster.bias"])

    def fused_forecast(self, z: torch.Tensor, stats: RevinStats | None, dtype: torch.dtype) -> torch.Tensor:
        """`forward_standardized` by a hand-written pass (no graph) in the cheaper algebra (`folds_values`); products in `dtype`."""
        a, b, *weights = self._fused_params()
        targets = self._target_index(z)
        mean, std = stacked_fused.forecast_terms(*(stats if stats is not None else (None, None)), targets)
        eps = _REVIN_EPS if a is not None else 0.0
        algebra = stacked_fused if self.folds_values(z.shape[1] * z.shape[2], gradients=False) else stacked_plain
        return algebra.forward(z.to(dtype), mean, std, a, b, eps, *weights, self.scale, targets, dtype)[0]

    def mse_pass(
        self, z: torch.Tensor, stats: RevinStats | None, y: torch.Tensor, y_mask: torch.Tensor | None, dtype: torch.dtype
    ) -> Callable[[], tuple[torch.Tensor, list[torch.Tensor]]]:
        """A function giving each model's MSE (k,) at the current weights and its gradient as `blocks` (k, *shape), by
        the hand-written pass in the cheaper algebra (`folds_values`).

        z, stats: from `standardize`; y (k, B, Dt, H) targets; y_mask their observed-value mask or None. What depends
        only on the batch (z in `dtype`, the count of targets, RevIN's mean minus the targets) is computed here, once
        for both of SAM's passes.
        """
        targets = self._target_index(z)
        z_low = z.to(dtype)
        offset, std = stacked_fused.error_terms(*(stats if stats is not None else (None, None)), y, targets)
        count = y[0].numel() if y_mask is None else y_mask.flatten(1).sum(1, dtype=y.dtype).clamp(min=1)  # per model
        algebra = stacked_fused if self.folds_values(z.shape[1] * z.shape[2]) else stacked_plain

        @torch.no_grad()  # the gradients are computed by hand: recording a graph would keep every step's tensors alive
        def loss_and_gradients() -> tuple[torch.Tensor, list[torch.Tensor]]:
            a, b, *weights = self._fused_params()
            eps = _REVIN_EPS if a is not None else 0.0
            data = (z_low, offset, std, y_mask, count, a, b, eps)
            loss, grads = algebra.mse_loss_and_gradients(*data, *weights, self.scale, targets, dtype)
            return loss, [g for g in grads if g is not None]  # in `fused`'s order, which is `names` order

        return loss_and_gradients

    def _target_index(self, z: torch.Tensor) -> torch.Tensor | None:
        return None if self._targets is None else torch.tensor(self._targets, device=z.device)


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x Wᵀ + b per model: (k, N, in) @ (k, in, out) + (k, 1, out) -> (k, N, out)."""
    return torch.baddbmm(bias[:, None, :], x, weight.transpose(1, 2))


class MeanForecast(nn.Module):
    """The ensemble of a stack's k models as one network: the mean of their forecasts of the same inputs.

    `forward_channels_first` takes inputs (B, D, L) like `SAMformer.forward_channels_first` and gives the
    mean forecast (B, D_targets, H) by the plain modules' computation (traceable, so it exports to ONNX).
    """

    def __init__(self, stack: StackedSAMformer) -> None:
        super().__init__()
        self.stack = stack

    @property
    def config(self) -> SAMformerConfig:
        """The configuration every member shares."""
        return self.stack.config

    def members(self) -> list[SAMformer]:
        """Each model of the ensemble as an ordinary `SAMformer` (copies)."""
        return [self.stack.model(j) for j in range(len(self.stack))]

    def forward_channels_first(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The mean forecast (B, D_targets, H) of the k models, each given inputs x (B, D, L)."""
        forecasts = self.stack.forward_standardized(*self.stack.standardize_shared(x, mask))  # (B, D, L) -> (k, B, Dt, H)
        return forecasts.mean(dim=0)
