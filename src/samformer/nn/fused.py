"""SAMformer's forward pass as one autograd node with a hand-written backward pass.

At the paper's batch of 32 a training step is dominated by the fixed cost of each tensor operation,
not by arithmetic: autograd records ~30 nodes per forward pass and runs ~60 operations backward,
most on tensors of a few thousand values. `attend_and_forecast` computes the same function and the
same gradients with about a third of the operations, and spends the FLOPs where they are unavoidable:

- the value map is folded into the forecaster, Wf (X Wvᵀ + bv) = X (Wf Wv)ᵀ + Wf bv, so the product
  with the (L, L) value weight happens once per batch (H × L × L) instead of once per channel row
  (B·D × L × L); `SAMformer` takes this path only when that is cheaper, H ≤ B·D;
- queries, keys, the forecast of the inputs and the forecast of the values come from one product
  of the inputs with the stacked weights, W = [Wq; Wk; Wf; Wf Wv] of shape (2d + 2H, L);
- RevIN's affine map x = a z + b is applied after that product, (a z + b) Wᵀ = a (z Wᵀ) + b (W 1)ᵀ,
  so the backward pass needs no gradient with respect to the (B, D, L) input;
- only the three large products (Wf Wv, z Wᵀ and their gradients) run in the low precision under
  autocast; W is built in it directly (its row sums W 1 are those of the rounded weights, so both
  terms use the weights the product used), and the (B, D, D) attention and everything elementwise
  stay in fp32. On CPU an elementwise operation widens a low-precision operand into a temporary copy, so
  each low-precision product is widened once, explicitly, and the copy reused.

Notation (shapes): z standardised inputs (B, D, L); a, b RevIN's affine weight and bias (D,);
Q, K (B, D, d); A = softmax(Q Kᵀ / √d) (B, D, D); forecast Y = (X Wfᵀ + bf) + A (X W̃ᵀ + b̃) with
X = a z + b, W̃ = Wf Wv, b̃ = Wf bv; then RevIN's inverse. `test_model.py` checks the result and
every gradient against the plain modules in float64. The backward pass is differentiable once: for
second derivatives (Hessian-vector products) run the plain modules (`SAMformer.plain_modules`).

Training does not need autograd at all: `MSEPass` runs the same forward and backward functions
directly for the MSE loss, with the inputs standardised once per batch for both of SAM's passes
(`tests/test_fused.py` checks it against autograd through the plain modules).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch.autograd.function import once_differentiable

from samformer.nn import stacked_fused, stacked_plain


class FusedWeights(NamedTuple):
    """SAMformer's parameters as the fused pass reads them (built by `SAMformer.fused_weights`).

    The gradients `_backward` returns come in the same structure (None where a weight is None).
    """

    a: torch.Tensor | None  # RevIN's affine weight (D,), None without RevIN
    b: torch.Tensor | None  # RevIN's affine bias (D,), None without RevIN
    wq: torch.Tensor  # query weight (d, L)
    bq: torch.Tensor  # (d,)
    wk: torch.Tensor  # key weight (d, L)
    bk: torch.Tensor  # (d,)
    wv: torch.Tensor  # value weight (L, L)
    bv: torch.Tensor  # (L,)
    wf: torch.Tensor  # forecaster weight (H, L)
    bf: torch.Tensor  # (H,)


class FusedSettings(NamedTuple):
    """The constants of one fused pass."""

    eps: float  # RevIN's eps (0.0 without RevIN)
    scale: float  # 1 / √d, the attention's score scale
    targets: torch.Tensor | None  # indices of the forecast channels, or None for all
    dtype: torch.dtype  # precision of the large matrix products


def _stacked_weight(w: FusedWeights, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """W = [Wq; Wk; Wf; Wf Wv] (2d + 2H, L) in `dtype`, and the Wf (H, L) and Wv (L, L) it was built from in `dtype`.

    Each block is written into W in place (no concatenation of W), except where autograd or a trace (ONNX
    export) must follow the operations: neither follows writes through `out=`.
    """
    d, H = w.wq.shape[0], w.wf.shape[0]
    wv_low = w.wv.to(dtype)
    if torch.is_grad_enabled() or torch.jit.is_tracing():
        top = torch.cat([w.wq, w.wk, w.wf]).to(dtype)
        return torch.cat([top, top[2 * d :] @ wv_low]), top[2 * d :], wv_low
    weight = torch.empty(2 * d + 2 * H, w.wq.shape[1], dtype=dtype, device=w.wq.device)
    top, folded = weight.split([2 * d + H, H])
    torch.cat([w.wq, w.wk, w.wf], out=top)  # (2d + H, L), cast on the way in
    torch.mm(top[2 * d :], wv_low, out=folded)  # (H, L) @ (L, L) -> (H, L)
    return weight, top[2 * d :], wv_low


def _forward(z, mean, std, w: FusedWeights, s: FusedSettings):
    """The forecast, the attention and the tensors the backward pass needs (see the module docstring)."""
    a, b, eps, targets, dtype = w.a, w.b, s.eps, s.targets, s.dtype
    d, H, master = w.wq.shape[0], w.wf.shape[0], w.wf.dtype
    B, D, L = z.shape
    weight, wf_low, wv_low = _stacked_weight(w, dtype)  # W = [Wq; Wk; Wf; Wf Wv]: (2d + 2H, L), in the low precision
    bias = torch.cat([w.bq, w.bk, w.bf, w.wf @ w.bv])  # (2d + 2H,)
    projected = torch.mm(z.reshape(B * D, L), weight.T).view(B, D, -1)  # (B·D, L) @ (L, 2d + 2H), low precision
    if a is not None:
        # W 1 of the weights the product used, summed in their precision (fp32 accumulation, rounded like the product's
        # outputs) and widened as 2d + 2H values: widening W itself would cost a (2d + 2H, L) copy
        row_sums = weight.sum(dim=1).to(master)  # (2d + 2H,)
        projected = projected.to(master)  # widened once, for the affine map here and for a's gradient in `_backward`
        out = torch.addcmul(torch.addcmul(bias, b[:, None], row_sums), a[:, None], projected)  # a (z Wᵀ) + b (W 1)ᵀ + bias
    else:
        row_sums, out = None, projected + bias  # (B, D, 2d + 2H), in the weights' precision
    queries, keys, direct, values = out.split([d, d, H, H], dim=-1)
    attn = torch.softmax(torch.bmm(queries, keys.transpose(1, 2)) * s.scale, dim=-1)  # (B, D, D)
    rows, direct_t = (attn, direct) if targets is None else (attn[:, targets], direct[:, targets])
    y = torch.baddbmm(direct_t, rows, values)  # (B, Dt, H) + (B, Dt, D) @ (B, D, H)
    centred = k = denom = None
    if mean is not None:  # RevIN's inverse: forecast = (y − b) k + mean, k = std / (a + eps²)
        mean_t, std_t, a_t, b_t = (mean, std, a, b) if targets is None else (mean[:, targets], std[:, targets], a[targets], b[targets])
        denom = a_t + eps**2  # (Dt,)
        k = std_t / denom[:, None]  # (B, Dt, 1)
        centred = y - b_t[:, None]
        forecast = torch.addcmul(mean_t, centred, k)
    else:
        forecast = y
    return forecast, attn, (z, projected, queries, keys, values, attn, centred, k, denom, a, b, row_sums, w.wf, wf_low, wv_low, w.bv)


def _backward(saved, grad, s: FusedSettings) -> FusedWeights:
    """Gradients of the loss with respect to every weight (RevIN's affine: None without RevIN), given `grad`,
    the loss's gradient with respect to the forecast (B, Dt, H), and what `_forward` saved."""
    z, projected, queries, keys, values, attn, centred, k, denom, a, b, row_sums, wf, wf_low, wv_low, bv = saved
    scale, targets, dtype = s.scale, s.targets, s.dtype
    d, H = queries.shape[-1], wf.shape[0]
    master = wf.dtype
    B, D, L = z.shape
    grad_a = grad_b = None
    if k is not None:  # through RevIN's inverse; dk/da = −k / (a + eps²)
        grad = grad * k  # (B, Dt, H): the gradient of y
        grad_a_t = (grad * centred).sum(dim=(0, 2)).div_(denom).neg_()  # Σ ∂/∂k · (−k / (a + eps²)), as Σ grad_y (y − b) / −(a + eps²)
        grad_b_t = grad.sum(dim=(0, 2)).neg_()
        if targets is None:
            grad_a, grad_b = grad_a_t, grad_b_t
        else:
            grad_a = torch.zeros_like(a).index_add_(0, targets, grad_a_t)
            grad_b = torch.zeros_like(b).index_add_(0, targets, grad_b_t)
    rows, q_t = (attn, queries) if targets is None else (attn[:, targets], queries[:, targets])
    grad_rows = torch.bmm(grad, values.transpose(1, 2))  # (B, Dt, H) @ (B, H, D) -> (B, Dt, D)
    grad_values = torch.bmm(rows.transpose(1, 2), grad)  # (B, D, Dt) @ (B, Dt, H) -> (B, D, H)
    grad_scores = (grad_rows - (grad_rows * rows).sum(dim=-1, keepdim=True)).mul_(rows).mul_(scale)  # softmax⁻¹, (B, Dt, D)
    grad_q_t = torch.bmm(grad_scores, keys)  # (B, Dt, D) @ (B, D, d) -> (B, Dt, d)
    grad_keys = torch.bmm(grad_scores.transpose(1, 2), q_t)  # (B, D, Dt) @ (B, Dt, d) -> (B, D, d)
    if targets is None:
        grad_out = torch.cat([grad_q_t, grad_keys, grad, grad_values], dim=-1)  # (B, D, 2d + 2H)
    else:
        grad_out = torch.cat([torch.zeros(B, D, 2 * d + H, dtype=grad.dtype, device=grad.device), grad_values], dim=-1)
        grad_out[:, targets, :d] = grad_q_t
        grad_out[:, :, d : 2 * d] = grad_keys
        grad_out[:, targets, 2 * d : 2 * d + H] = grad
    per_channel = grad_out.sum(dim=0)  # (D, 2d + 2H)
    grad_bias = per_channel.sum(dim=0)  # (2d + 2H,)
    if a is not None:
        grad_a = (grad_out * projected).sum(dim=(0, 2)) + (0 if grad_a is None else grad_a)
        grad_b = per_channel @ row_sums + (0 if grad_b is None else grad_b)
        grad_projected = grad_out * a[:, None]
    else:
        grad_projected = grad_out
    # (2d + 2H, B·D) @ (B·D, L): the weight gradient of z Wᵀ, in the low precision
    grad_weight = grad_projected.to(dtype).reshape(B * D, -1).T @ z.reshape(B * D, L)
    # in the weights' precision; with RevIN plus the gradient through b (W 1)ᵀ (the row sums'), on every column
    grad_weight = grad_weight.to(master)  # widened once; a mixed-precision add would widen it element by element, slowly
    if a is not None:
        grad_weight.add_((b @ per_channel)[:, None])
    grad_wq, grad_wk, grad_wf, grad_folded = grad_weight.split([d, d, H, H])
    grad_bq, grad_bk, grad_bf, grad_bfolded = grad_bias.split([d, d, H, H])
    grad_folded_low = grad_folded.to(dtype)
    grad_wv = (wf_low.T @ grad_folded_low).to(master)  # (L, H) @ (H, L) -> (L, L)
    grad_wf = torch.addr(grad_wf, grad_bfolded, bv).add_(grad_folded_low @ wv_low.T)  # + (H, L) @ (L, L)
    grad_bv = grad_bfolded @ wf  # (H,) @ (H, L) -> (L,)
    return FusedWeights(grad_a, grad_b, grad_wq, grad_bq, grad_wk, grad_bk, grad_wv, grad_bv, grad_wf, grad_bf)


class _AttendAndForecast(torch.autograd.Function):
    """Inputs: z (no gradient), the RevIN statistics (or None), the settings, then the `FusedWeights` one by one
    (autograd tracks only tensors passed directly)."""

    @staticmethod
    def forward(ctx: Any, z, mean, std, settings: FusedSettings, *weights):
        forecast, attn, saved = _forward(z, mean, std, FusedWeights(*weights), settings)
        ctx.mark_non_differentiable(attn)
        ctx.save_for_backward(*saved)
        ctx.settings = settings
        return forecast, attn

    @staticmethod
    @once_differentiable  # the backward's intermediates carry no graph: second derivatives need the plain modules
    def backward(ctx: Any, grad, _grad_attn):  # grad: (B, Dt, H)
        grads = _backward(ctx.saved_tensors, grad, ctx.settings)
        return None, None, None, None, *grads  # z, mean, std and the settings get none


def attend_and_forecast(
    z: torch.Tensor,
    stats: tuple[torch.Tensor, torch.Tensor] | None,
    weights: FusedWeights,
    eps: float,
    scale: float,
    targets: list[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SAMformer from standardised inputs to the forecast, as one autograd node.

    Args:
        z: inputs (B, D, L): RevIN-standardised ((x − mean) / std, no affine map) or, without RevIN,
            the inputs themselves. Carries no gradient.
        stats: RevIN's (mean, std), each (B, D, 1), or None without RevIN (no inverse applied).
        weights: the model's weights (`SAMformer.fused_weights`): RevIN's affine (or None), plain linear
            query, key and value maps (values L → L) and the shared linear forecaster L → H.
        eps: RevIN's eps (0.0 without RevIN). scale: the attention's score scale 1 / √d.
        targets: indices of the channels to forecast, or None for all.

    Returns the forecast (B, D_targets, H) and the attention matrix (B, D, D). Under autocast the
    large products run in its dtype; the weights, their gradients and the result stay fp32.
    """
    device_type = z.device.type
    dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else z.dtype
    mean, std = stats if stats is not None else (None, None)
    index = None if targets is None else torch.tensor(targets, device=z.device)
    settings = FusedSettings(eps, scale, index, dtype)
    with torch.autocast(device_type, enabled=False):
        if torch.is_grad_enabled() and not torch.jit.is_tracing():
            return _AttendAndForecast.apply(z.to(dtype), mean, std, settings, *weights)
        with torch.no_grad():  # no graph to record (evaluation, inference, ONNX export, which traces the operations)
            forecast, attn, _ = _forward(z.to(dtype), mean, std, weights, settings)
        return forecast, attn


def mse_loss_and_gradients(z, mean, std, y, y_mask, count, weights: FusedWeights, settings: FusedSettings):
    """The MSE of the forecast from standardised inputs `z` against `y` (observed entries only, with a
    `y_mask`; `count` of them), and its gradients with respect to `weights` (a `FusedWeights`).

    A function of tensors and constants only, so that `torch.compile` can fuse it whole (`MSEPass`'s `core`).
    """
    forecast, _, saved = _forward(z, mean, std, weights, settings)
    diff = forecast - y  # (B, D_targets, H)
    if y_mask is not None:
        diff = torch.where(y_mask, diff, 0.0)
    flat = diff.reshape(-1)
    loss = torch.dot(flat, flat) / count
    return loss, _backward(saved, diff * (2 / count), settings)


def plain_mse_loss_and_gradients(z, mean, std, y, y_mask, count, weights: FusedWeights, settings: FusedSettings):
    """`mse_loss_and_gradients` in the modules' own algebra, values L → L then the forecaster (`stacked_plain` with
    one model): the hand-written pass where folding the values would cost more, H > B·D."""

    def one(t: torch.Tensor | None) -> torch.Tensor | None:  # (...) -> (1, ...): a stack of one model
        return None if t is None else t[None]

    a, b, *maps = weights
    offset, std_t = stacked_fused.error_terms(one(mean), one(std), one(y), settings.targets)
    batch = (one(z), offset, std_t, one(y_mask), count, one(a), one(b), settings.eps)
    loss, grads = stacked_plain.mse_loss_and_gradients(*batch, *map(one, maps), settings.scale, settings.targets, settings.dtype)
    return loss[0], FusedWeights(*(None if g is None else g[0] for g in grads))


def standardized_batch(standardize: Callable, x: torch.Tensor, y: torch.Tensor, mask, dtype: torch.dtype) -> tuple:
    """A batch as `mse_loss_and_gradients` reads it: (z in `dtype`, RevIN's mean and std or None, y, the target
    mask or None, the number of observed targets), `standardize` being the model's `standardize_inputs`."""
    x_mask, y_mask = (None, None) if mask is None else mask
    z, stats = standardize(x, x_mask)
    mean, std = (None, None) if stats is None else stats
    count = y.numel() if y_mask is None else y_mask.sum(dtype=y.dtype).clamp(min=1)
    return z.to(dtype), mean, std, y, y_mask, count


class MSEPass:
    """SAMformer's MSE on one batch, back-propagated into the parameters' `.grad`, without autograd.

    `MSEPass(model, x, y, dtype)()` adds the same gradients to `.grad` and returns the same loss as
    ``mse(model.forward_channels_first(x), y).backward()`` (with `mask`: the masked MSE, missing inputs
    kept out of RevIN), but runs `_forward` and `_backward` directly, recording no graph. The inputs are
    standardised once, when the pass is built, as RevIN's statistics do not depend on the weights: a
    training step that takes the loss at several weights on one batch (SAM: at w, then at w + ε) calls
    the same pass again after moving the weights.

    Args:
        model: a `SAMformer` whose layers allow the fused pass (`model.can_fuse()`).
        x: inputs (B, D, L). y: targets (B, D_targets, H).
        dtype: the precision of the large matrix products (e.g. torch.bfloat16; the weights' dtype for full precision).
        mask: (input, target) observed-value masks, shaped like x and y, or None.
        core: `mse_loss_and_gradients` or a compiled version of it; `plain_mse_loss_and_gradients` for the
            modules' algebra on a batch the fused forward pass would not take.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        dtype: torch.dtype,
        mask: tuple[torch.Tensor, torch.Tensor] | None = None,
        core: Callable[..., tuple[torch.Tensor, FusedWeights]] = mse_loss_and_gradients,
    ) -> None:
        targets = model.config.target_channels
        self.core = core
        self.standardize = model.standardize_inputs
        self.batch = (x.detach(), y, mask)
        self.weights = model.fused_weights()
        eps = 0.0 if model.revin is None else model.revin.eps
        self.settings = FusedSettings(
            eps, model.attention.scale, None if targets is None else torch.tensor(targets, device=x.device), dtype
        )
        self._data: tuple | None = None

    @property
    def data(self) -> tuple:
        """The batch as `mse_loss_and_gradients` reads it, (z, mean, std, y, y_mask, count), standardised on first use."""
        if self._data is None:
            self._data = standardized_batch(self.standardize, *self.batch, self.settings.dtype)
        return self._data

    @torch.no_grad()
    def __call__(self) -> torch.Tensor:
        """The loss at the current weights (a 0-d tensor); its gradients are added to the parameters' `.grad`."""
        loss, grads = self.core(*self.data, self.weights, self.settings)
        for param, grad in zip(self.weights, grads, strict=True):
            if param is not None and param.requires_grad:
                if param.grad is None:
                    param.grad = grad
                else:
                    param.grad += grad
        return loss
