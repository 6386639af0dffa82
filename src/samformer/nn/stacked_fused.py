"""`samformer.nn.fused`'s forward and backward passes with a leading model axis: k models, each on its own batch.

The same computation as `fused._forward` / `fused._backward` (see that module for the algebra: values folded
into the forecaster, RevIN's affine map applied after the first product, only the three large products in
the low precision), written with batched products over the model axis instead of mapped by `torch.func.vmap`,
which laid some results out transposed and made casting them 8-25x slower.

Shapes: z (k, B, D, L) standardised inputs; a, b RevIN's affine (k, D); wq, wk (k, d, L); wv (k, L, L); wf (k, H, L);
biases (k, out); forecasts and their gradients (k, B, Dt, H). The RevIN statistics come as `forecast_terms` or
`error_terms` make them, of the target channels: `offset` (k, B, Dt, 1) RevIN's mean, or (k, B, Dt, H) the mean minus
the targets, so that `forward` gives each forecast's error (one operation fewer per pass, and the offset computed once
for both of SAM's passes); std (k, B, Dt, 1). Both None without RevIN (then an error's offset is −y).
"""

from __future__ import annotations

import torch


def _stacked_weight(wq, wk, wv, wf, dtype):
    """Every model's W = [Wq; Wk; Wf; Wf Wv] (k, 2d + 2H, L) in `dtype`, and its Wf and Wv in `dtype` (as
    `fused._stacked_weight`: blocks written in place, concatenated where autograd or a trace must follow them)."""
    d, H = wq.shape[1], wf.shape[1]
    wv_low = wv.to(dtype)
    if torch.is_grad_enabled() or torch.jit.is_tracing():
        top = torch.cat([wq, wk, wf], dim=1).to(dtype)
        return torch.cat([top, torch.bmm(top[:, 2 * d :], wv_low)], dim=1), top[:, 2 * d :], wv_low
    weight = torch.empty(wq.shape[0], 2 * d + 2 * H, wq.shape[2], dtype=dtype, device=wq.device)
    top, folded = weight.split([2 * d + H, H], dim=1)
    torch.cat([wq, wk, wf], dim=1, out=top)  # (k, 2d + H, L), cast on the way in
    torch.bmm(top[:, 2 * d :], wv_low, out=folded)  # (k, H, L) @ (k, L, L)
    return weight, top[:, 2 * d :], wv_low


def forward(z, offset, std, a, b, eps, wq, bq, wk, bk, wv, bv, wf, bf, scale, targets, dtype):
    """Every model's forecast (k, B, Dt, H) plus `offset` (its error with `error_terms`), d forecast / d y (k, B, Dt, 1)
    or None without RevIN, and what `backward` needs (as `fused._forward`)."""
    d, H, master = wq.shape[1], wf.shape[1], wf.dtype
    k, B, D, L = z.shape
    weight, wf_low, wv_low = _stacked_weight(wq, wk, wv, wf, dtype)  # W = [Wq; Wk; Wf; Wf Wv]: (k, 2d + 2H, L), low precision
    bias = torch.cat([bq, bk, bf, torch.bmm(wf, bv[:, :, None])[:, :, 0]], dim=1)  # (k, 2d + 2H)
    projected = torch.bmm(z.reshape(k, B * D, L), weight.transpose(1, 2)).view(k, B, D, -1)  # (k, B, D, 2d + 2H)
    if a is not None:
        row_sums = weight.sum(dim=2, dtype=master)  # (k, 2d + 2H): W 1, of the weights the product used
        affine = torch.addcmul(bias[:, None, None], b[:, None, :, None], row_sums[:, None, None])  # b (W 1)ᵀ + bias: (k, 1, D, ·)
        out = torch.addcmul(affine, a[:, None, :, None], projected)
    else:
        row_sums, out = None, projected + bias[:, None, None]
    queries, keys, direct, values = (t.reshape(k * B, D, -1) for t in out.split([d, d, H, H], dim=-1))  # (k·B, D, ·)
    attn = torch.softmax(torch.bmm(queries, keys.transpose(1, 2)) * scale, dim=-1)  # (k·B, D, D)
    rows, direct_t = (attn, direct) if targets is None else (attn[:, targets], direct[:, targets])
    y = torch.baddbmm(direct_t, rows, values).view(k, B, -1, H)  # (k·B, Dt, H) + (k·B, Dt, D) @ (k·B, D, H)
    centred = factor = denom = None
    if std is not None:  # RevIN's inverse: forecast = (y − b) factor + mean, factor = std / (a + eps²)
        a_t, b_t = (a, b) if targets is None else (a[:, targets], b[:, targets])
        denom = a_t + eps**2  # (k, Dt)
        factor = std / denom[:, None, :, None]  # (k, B, Dt, 1)
        centred = y - b_t[:, None, :, None]
        forecast = torch.addcmul(offset, centred, factor)
    else:
        forecast = y if offset is None else y + offset
    return forecast, factor, (z, projected, queries, keys, values, attn, centred, denom, a, b, row_sums, wf, wf_low, wv_low, bv)


def backward(saved, grad, scale, targets, dtype, sizes):
    """Gradients (k, ...) with respect to (a, b, wq, bq, wk, bk, wv, bv, wf, bf) given `grad`, the gradient (k, B, Dt, H)
    of y, the forecast before RevIN's inverse (as `fused._backward`)."""
    z, projected, queries, keys, values, attn, centred, denom, a, b, row_sums, wf, wf_low, wv_low, bv = saved
    d, H = sizes
    master = wf.dtype
    k, B, D, L = z.shape
    grad_a, grad_b = through_revin_inverse(grad, centred, denom, a, b, targets) if centred is not None else (None, None)
    grad_y = grad.reshape(k * B, -1, H)
    rows, q_t = (attn, queries) if targets is None else (attn[:, targets], queries[:, targets])
    grad_rows = torch.bmm(grad_y, values.transpose(1, 2))  # (k·B, Dt, H) @ (k·B, H, D)
    grad_values = torch.bmm(rows.transpose(1, 2), grad_y)  # (k·B, D, Dt) @ (k·B, Dt, H)
    grad_scores = (grad_rows - (grad_rows * rows).sum(dim=-1, keepdim=True)).mul_(rows).mul_(scale)  # softmax⁻¹, (k·B, Dt, D)
    grad_q_t = torch.bmm(grad_scores, keys)  # (k·B, Dt, d)
    grad_keys = torch.bmm(grad_scores.transpose(1, 2), q_t)  # (k·B, D, d)
    if targets is None:
        grad_out = torch.cat([grad_q_t, grad_keys, grad_y, grad_values], dim=-1)  # (k·B, D, 2d + 2H)
    else:
        grad_out = torch.cat([torch.zeros(k * B, D, 2 * d + H, dtype=grad.dtype, device=grad.device), grad_values], dim=-1)
        grad_out[:, targets, :d] = grad_q_t
        grad_out[:, :, d : 2 * d] = grad_keys
        grad_out[:, targets, 2 * d : 2 * d + H] = grad_y
    grad_out = grad_out.view(k, B, D, -1)
    per_channel = grad_out.sum(dim=1)  # (k, D, 2d + 2H)
    grad_bias = per_channel.sum(dim=1)  # (k, 2d + 2H)
    if a is not None:
        grad_a = (grad_out * projected).sum(dim=(1, 3)) + (0 if grad_a is None else grad_a)
        grad_b = torch.bmm(per_channel, row_sums[:, :, None])[:, :, 0] + (0 if grad_b is None else grad_b)
        grad_projected = grad_out * a[:, None, :, None]
    else:
        grad_projected = grad_out
    # (k, 2d + 2H, B·D) @ (k, B·D, L): the weight gradient of z Wᵀ, in the low precision
    grad_weight = torch.bmm(grad_projected.to(dtype).reshape(k, B * D, -1).transpose(1, 2), z.reshape(k, B * D, L))
    # in the weights' precision; with RevIN plus the gradient through b (W 1)ᵀ, on every column
    grad_weight = grad_weight.to(master)  # widened once; a mixed-precision add would widen it element by element, slowly
    if a is not None:
        grad_weight.add_(torch.bmm(b[:, None, :], per_channel).transpose(1, 2))
    grad_wq, grad_wk, grad_wf, grad_folded = grad_weight.split([d, d, H, H], dim=1)
    grad_bq, grad_bk, grad_bf, grad_bfolded = grad_bias.split([d, d, H, H], dim=1)
    grad_folded_low = grad_folded.to(dtype)
    grad_wv = torch.bmm(wf_low.transpose(1, 2), grad_folded_low).to(master)  # (k, L, H) @ (k, H, L)
    grad_wf = torch.baddbmm(grad_wf, grad_bfolded[:, :, None], bv[:, None, :]).add_(torch.bmm(grad_folded_low, wv_low.transpose(1, 2)))
    grad_bv = torch.bmm(grad_bfolded[:, None, :], wf)[:, 0]  # (k, 1, H) @ (k, H, L)
    return grad_a, grad_b, grad_wq, grad_bq, grad_wk, grad_bk, grad_wv, grad_bv, grad_wf, grad_bf


def through_revin_inverse(grad_y, centred, denom, a, b, targets):
    """The gradients of RevIN's affine (a, b) through its inverse, given the gradient of y (the forecast's times
    `factor`); dfactor/da = −factor / (a + eps²)."""
    grad_a_t = (grad_y * centred).sum(dim=(1, 3)).div_(denom).neg_()  # (k, Dt)
    grad_b_t = grad_y.sum(dim=(1, 3)).neg_()
    if targets is None:
        return grad_a_t, grad_b_t
    return torch.zeros_like(a).index_add_(1, targets, grad_a_t), torch.zeros_like(b).index_add_(1, targets, grad_b_t)


def forecast_terms(mean, std, targets):
    """`forward`'s (offset, std) for forecasts: RevIN's mean and std (k, B, D, 1) of the target channels (None, None
    without RevIN)."""
    if mean is None or targets is None:
        return mean, std
    return mean[:, :, targets], std[:, :, targets]


def error_terms(mean, std, y, targets):
    """`forward`'s (offset, std) for errors against y (k, B, Dt, H): the target channels' mean − y, contiguous, and
    their std; −y and None without RevIN. Once per batch: SAM's two passes share them."""
    mean_t, std_t = forecast_terms(mean, std, targets)
    return (-y if mean_t is None else mean_t - y), std_t


def mse_and_gradient(error, factor, y_mask, count):
    """Each model's MSE (k,) from its forecast errors (k, B, Dt, H) (observed entries only with a `y_mask`; `count` of
    them, a number or a (k,) tensor) and the MSE's gradient with respect to y, the forecast before RevIN's inverse
    (`factor` = d forecast / d y, (k, B, Dt, 1), or None without RevIN): error · 2 factor / count, one product."""
    if y_mask is not None:
        error = torch.where(y_mask, error, 0.0)
    loss = torch.linalg.vector_norm(error.flatten(1), dim=1).square_() / count  # (k,): one reduction, no squared copy
    per_model = count.view(-1, 1, 1, 1) if isinstance(count, torch.Tensor) else count
    return loss, error * (2 / per_model if factor is None else factor * (2 / per_model))


def mse_loss_and_gradients(z, offset, std, y_mask, count, a, b, eps, wq, bq, wk, bk, wv, bv, wf, bf, scale, targets, dtype):
    """Each model's MSE (k,) given `error_terms` (offset, std) (see `mse_and_gradient`) and its gradients with respect
    to (a, b, wq, bq, wk, bk, wv, bv, wf, bf)."""
    error, factor, saved = forward(z, offset, std, a, b, eps, wq, bq, wk, bk, wv, bv, wf, bf, scale, targets, dtype)
    loss, grad = mse_and_gradient(error, factor, y_mask, count)
    return loss, backward(saved, grad, scale, targets, dtype, (wq.shape[1], wf.shape[1]))
