"""The stacked forward and backward passes by hand in the modules' own algebra: values L → L, then the forecaster L → H.

`samformer.nn.stacked_fused` folds the value map into the forecaster (Wf Wv, an (H, L) weight per model). That saves
the (L, L) value product on every row, but its products are 2H wide instead of L + H and the fold itself costs
3 H L² per step: for long horizons on few rows (weather at H = 720 with B·D = 672 rows, or any ETT set at H ≥ 192)
it is the dearer algebra (`StackedSAMformer.folds_values` compares the two). This pass computes what
`StackedSAMformer.forward_standardized` computes, without autograd's graph and its extra product through the inputs:
RevIN's affine map is applied after the first product (as in `stacked_fused`), so the weight and affine gradients
need no product back to the inputs, and only the four large products run in the low precision.

Shapes: z (k, B, D, L) standardised inputs, already in the low precision; offset, std RevIN's statistics as
`stacked_fused.forecast_terms` or `error_terms` make them; a, b RevIN's affine (k, D); wq, wk (k, d, L); wv (k, L, L);
wf (k, H, L); biases (k, out); forecasts and their gradients (k, B, Dt, H).
"""

from __future__ import annotations

import torch

from samformer.nn.stacked_fused import mse_and_gradient, through_revin_inverse


def forward(z, offset, std, a, b, eps, wq, bq, wk, bk, wv, bv, wf, bf, scale, targets, dtype):
    """Every model's forecast (k, B, Dt, H) plus `offset` (its error with `error_terms`), d forecast / d y (k, B, Dt, 1)
    or None without RevIN, and what `backward` needs.

    As under autocast, the residual x + A V and every product run in `dtype`; the softmax, the affine maps and RevIN's
    inverse in the weights' precision."""
    d, master = wq.shape[1], wf.dtype
    k, B, D, L = z.shape
    weight = torch.cat([wq, wk, wv], dim=1).to(dtype)  # [Wq; Wk; Wv]: (k, 2d + L, L)
    bias = torch.cat([bq, bk, bv], dim=1)  # (k, 2d + L)
    projected = torch.bmm(z.reshape(k, B * D, L), weight.transpose(1, 2)).view(k, B, D, -1)  # z Wᵀ: (k, B, D, 2d + L)
    if a is not None:  # x = a z + b, so x Wᵀ = a (z Wᵀ) + b (W 1)ᵀ
        row_sums = weight.sum(dim=2, dtype=master)  # (k, 2d + L)
        affine = torch.addcmul(bias[:, None, None], b[:, None, :, None], row_sums[:, None, None])  # (k, 1, D, 2d + L)
        qk = torch.addcmul(affine[..., : 2 * d], a[:, None, :, None], projected[..., : 2 * d])  # (k, B, D, 2d)
        a_low = a.to(dtype)[:, None, :, None]  # (k, 1, D, 1); a multiply then an add: addcmul has no fast bf16 kernel on CPU
        values = (projected[..., 2 * d :] * a_low).add_(affine[..., 2 * d :].to(dtype))  # (k, B, D, L)
        x = (z * a_low).add_(b.to(dtype)[:, None, :, None])  # the residual: (k, B, D, L)
    else:
        row_sums, x = None, z
        qk = projected[..., : 2 * d] + bias[:, None, None, : 2 * d]
        values = projected[..., 2 * d :] + bias[:, None, None, 2 * d :].to(dtype)
    queries, keys = (t.reshape(k * B, D, d) for t in qk.split(d, dim=-1))  # (k·B, D, d) each
    values, x = values.reshape(k * B, D, L), x.reshape(k * B, D, L)
    attn = torch.softmax(torch.bmm(queries, keys.transpose(1, 2)) * scale, dim=-1)  # (k·B, D, D)
    rows, x_t = (attn, x) if targets is None else (attn[:, targets], x[:, targets])
    rows_low = rows.to(dtype)
    out = torch.baddbmm(x_t, rows_low, values)  # residual + attention: (k·B, Dt, L) + (k·B, Dt, D) @ (k·B, D, L)
    Dt = out.shape[1]
    out = out.view(k, B * Dt, L)
    wf_low = wf.to(dtype)
    y = torch.bmm(out, wf_low.transpose(1, 2)).view(k, B, Dt, -1)  # the forecaster without its bias: (k, B, Dt, H)
    centred = factor = denom = None
    if std is not None:  # RevIN's inverse: forecast = (y + bf − b) factor + mean, factor = std / (a + eps²)
        a_t, b_t = (a, b) if targets is None else (a[:, targets], b[:, targets])
        denom = a_t + eps**2  # (k, Dt)
        factor = std / denom[:, None, :, None]  # (k, B, Dt, 1)
        centred = y + (bf[:, None, None, :] - b_t[:, None, :, None])
        forecast = torch.addcmul(offset, centred, factor)
    else:
        forecast = y + bf[:, None, None, :]
        forecast = forecast if offset is None else forecast.add_(offset)
    return forecast, factor, (z, projected, queries, keys, values, attn, rows_low, out, centred, denom, a, b, row_sums, wf_low)


def backward(saved, grad, scale, targets, dtype):
    """Gradients (k, ...) with respect to (a, b, wq, bq, wk, bk, wv, bv, wf, bf) given `grad`, the gradient (k, B, Dt, H)
    of y, the forecaster's output before RevIN's inverse."""
    z, projected, queries, keys, values, attn, rows_low, out, centred, denom, a, b, row_sums, wf_low = saved
    master = grad.dtype
    k, B, D, L = z.shape
    d = queries.shape[-1]
    grad_a, grad_b = through_revin_inverse(grad, centred, denom, a, b, targets) if centred is not None else (None, None)
    Dt, H = grad.shape[2], grad.shape[3]
    grad_bf = grad.sum(dim=(1, 2))  # (k, H)
    grad_y = grad.to(dtype).view(k, B * Dt, H)
    grad_wf = torch.bmm(grad_y.transpose(1, 2), out).to(master)  # (k, H, B·Dt) @ (k, B·Dt, L)
    grad_out = torch.bmm(grad_y, wf_low).view(k * B, Dt, L)  # (k, B·Dt, H) @ (k, H, L): also the residual's gradient
    q_t = queries if targets is None else queries[:, targets]
    grad_rows = torch.bmm(grad_out, values.transpose(1, 2)).to(master)  # (k·B, Dt, L) @ (k·B, L, D)
    grad_values = torch.bmm(rows_low.transpose(1, 2), grad_out)  # (k·B, D, Dt) @ (k·B, Dt, L)
    rows = attn if targets is None else attn[:, targets]
    grad_scores = (grad_rows - (grad_rows * rows).sum(dim=-1, keepdim=True)).mul_(rows).mul_(scale)  # softmax⁻¹, (k·B, Dt, D)
    grad_q_t = torch.bmm(grad_scores, keys)  # (k·B, Dt, d)
    grad_keys = torch.bmm(grad_scores.transpose(1, 2), q_t)  # (k·B, D, d)
    grad_queries = grad_q_t if targets is None else torch.zeros_like(grad_keys).index_copy_(1, targets, grad_q_t)
    grad_qk = torch.cat([grad_queries, grad_keys], dim=-1).view(k, B, D, 2 * d)
    grad_values = grad_values.view(k, B, D, L)
    # the gradients of z Wᵀ's three blocks (the affine's a applied), and of the biases
    per_channel = torch.cat([grad_qk.sum(dim=1), grad_values.sum(dim=1, dtype=master)], dim=-1)  # (k, D, 2d + L)
    grad_bias = per_channel.sum(dim=1)  # (k, 2d + L)
    grad_projected = torch.empty(k, B, D, 2 * d + L, dtype=dtype, device=z.device)  # filled block by block: no cat
    if a is not None:
        grad_out = grad_out.view(k, B, Dt, L)
        z_t = z if targets is None else z[:, :, targets]
        residual_a = (grad_out * z_t).sum(dim=(1, 3), dtype=master)  # the residual x = a z + b: (k, Dt)
        residual_b = grad_out.sum(dim=(1, 3), dtype=master)
        if targets is not None:
            residual_a, residual_b = (torch.zeros_like(a).index_add_(1, targets, r) for r in (residual_a, residual_b))
        through_qk = (grad_qk * projected[..., : 2 * d]).sum(dim=(1, 3))
        through_values = (grad_values * projected[..., 2 * d :]).sum(dim=(1, 3), dtype=master)
        grad_a = through_qk + through_values + residual_a + grad_a
        grad_b = torch.bmm(per_channel, row_sums[:, :, None])[:, :, 0] + residual_b + grad_b
        torch.mul(grad_qk, a[:, None, :, None], out=grad_projected[..., : 2 * d])
        torch.mul(grad_values, a.to(dtype)[:, None, :, None], out=grad_projected[..., 2 * d :])
    else:
        grad_projected[..., : 2 * d] = grad_qk
        grad_projected[..., 2 * d :] = grad_values
    # (k, 2d + L, B·D) @ (k, B·D, L): the weight gradient of z Wᵀ, widened once; with RevIN plus that through b (W 1)ᵀ
    grad_weight = torch.bmm(grad_projected.reshape(k, B * D, -1).transpose(1, 2), z.reshape(k, B * D, L)).to(master)
    if a is not None:
        grad_weight.add_(torch.bmm(b[:, None, :], per_channel).transpose(1, 2))
    grad_wq, grad_wk, grad_wv = grad_weight.split([d, d, L], dim=1)
    grad_bq, grad_bk, grad_bv = grad_bias.split([d, d, L], dim=1)
    return grad_a, grad_b, grad_wq, grad_bq, grad_wk, grad_bk, grad_wv, grad_bv, grad_wf, grad_bf


def mse_loss_and_gradients(z, offset, std, y_mask, count, a, b, eps, wq, bq, wk, bk, wv, bv, wf, bf, scale, targets, dtype):
    """Each model's MSE (k,) given `error_terms` (offset, std) and its gradients, as `stacked_fused.mse_loss_and_gradients`."""
    error, factor, saved = forward(z, offset, std, a, b, eps, wq, bq, wk, bk, wv, bv, wf, bf, scale, targets, dtype)
    loss, grad = mse_and_gradient(error, factor, y_mask, count)
    return loss, backward(saved, grad, scale, targets, dtype)
