"""The network against a written-out formula, and its structural properties."""

from __future__ import annotations

import math

import pytest
import torch

from samformer import SAMformer, ShapeError, create_model, list_variants
from samformer.nn.model import RevIN

B, L, D, H = 4, 32, 5, 8


def randomise(model: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.3 + (1.0 if p.ndim == 1 and p.shape[0] == D else 0.0))


def written_out(x: torch.Tensor, p: dict[str, torch.Tensor], d_model: int) -> torch.Tensor:
    """SAMformer as the paper writes it, channel by channel, with explicit sums (x: (B, L, D))."""
    out = torch.empty(x.shape[0], H, D, dtype=x.dtype)
    for b in range(x.shape[0]):
        xs = x[b].T  # (D, L)
        mean = xs.sum(1, keepdim=True) / L
        std = torch.sqrt(((xs - mean) ** 2).sum(1, keepdim=True) / L + 1e-5)
        xn = (xs - mean) / std * p["revin.weight"][:, None] + p["revin.bias"][:, None]
        q = torch.stack([p["attention.query.weight"] @ xn[i] + p["attention.query.bias"] for i in range(D)])
        k = torch.stack([p["attention.key.weight"] @ xn[i] + p["attention.key.bias"] for i in range(D)])
        v = torch.stack([p["attention.value.weight"] @ xn[i] + p["attention.value.bias"] for i in range(D)])
        scores = torch.tensor([[float(q[i] @ k[j]) / math.sqrt(d_model) for j in range(D)] for i in range(D)], dtype=x.dtype)
        attn = torch.exp(scores) / torch.exp(scores).sum(1, keepdim=True)
        z = xn + sum(attn[:, j : j + 1] * v[j] for j in range(D))
        y = z @ p["forecaster.weight"].T + p["forecaster.bias"]  # (D, H)
        y = (y - p["revin.bias"][:, None]) / (p["revin.weight"][:, None] + 1e-10) * std + mean
        out[b] = y.T
    return out


def test_model_equals_written_out_formula():
    torch.manual_seed(0)
    model = SAMformer(D, L, H, d_model=6).double()
    randomise(model)
    x = torch.randn(B, L, D, dtype=torch.float64) * 3 + 2
    expected = written_out(x, {k: v.detach() for k, v in model.named_parameters()}, d_model=6)
    torch.testing.assert_close(model(x), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("sigma_reparam", [False, True])
def test_bf16_autocast_forward_is_the_fp32_forward_to_bf16_accuracy(sigma_reparam):
    # bf16 keeps 8 significant bits: a relative error of a few 2^-8 on outputs of order 1 is the expected cost.
    torch.manual_seed(0)
    model = SAMformer(D, 64, H, sigma_reparam=sigma_reparam).eval()
    x = torch.randn(B, 64, D) * 3 + 2
    with torch.no_grad():
        exact = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    assert low.dtype == torch.float32, "RevIN's inverse returns fp32 under autocast"
    scale = exact.abs().max()
    assert (low - exact).abs().max() <= 0.05 * scale
    assert (low - exact).abs().max() > 0, "autocast had no effect: the test would not see a bf16 path"


def test_tf_variant_projects_values_through_value_dim():
    torch.manual_seed(0)
    model = SAMformer(D, L, H, value_dim=4, init="keras").double()
    x = torch.randn(B, D, L, dtype=torch.float64)
    xn, _ = model.revin.normalize(x)
    att = model.attention
    a = torch.softmax(att.query(xn) @ att.key(xn).transpose(1, 2) / 4.0, -1)
    expected_hidden = xn + (a @ (xn @ att.value.weight.T + att.value.bias)) @ att.output.weight.T + att.output.bias
    assert att.value.weight.shape == (4, L) and att.output.weight.shape == (L, 4)
    assert torch.all(att.value.bias == 0), "keras init has zero biases"
    y, _ = model.forward_channels_first(x, return_attention=True)
    expected = model.revin.denormalize(model.forecaster(expected_hidden), model.revin.normalize(x)[1])
    torch.testing.assert_close(y, expected)


def test_keras_init_uses_keras_glorot_fans():
    # Keras' MultiHeadAttention kernels are (L, 1, width): fan_in = L, fan_out = width * L (the leading axis
    # counts as a receptive field); the output projection (1, 16, L) and the Dense forecaster (L, H) are 2-D.
    torch.manual_seed(0)
    seq_len, horizon = 512, 96
    model = SAMformer(7, seq_len, horizon, value_dim=16, init="keras")
    att = model.attention
    expected = {
        "query": math.sqrt(6 / (seq_len + 16 * seq_len)),  # ≈ 0.0262
        "key": math.sqrt(6 / (seq_len + 16 * seq_len)),
        "value": math.sqrt(6 / (seq_len + 16 * seq_len)),
        "output": math.sqrt(6 / (16 + seq_len)),  # ≈ 0.107
    }
    layers = {"query": att.query, "key": att.key, "value": att.value, "output": att.output}
    for name, bound in [*expected.items(), ("forecaster", math.sqrt(6 / (seq_len + horizon)))]:
        weight = (layers.get(name) or model.forecaster).weight
        # uniform on [-b, b]: every draw inside, the extreme draws within 2 % of b (8192+ draws)
        assert weight.abs().max() <= bound and weight.abs().max() > 0.98 * bound, name
        assert weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05), name


def test_attention_rows_sum_to_one_and_shape():
    model = SAMformer(D, L, H)
    y, attn = model(torch.randn(B, L, D), return_attention=True)
    assert y.shape == (B, H, D) and attn.shape == (B, D, D)
    torch.testing.assert_close(attn.sum(-1), torch.ones(B, D))
    assert torch.all(attn >= 0)


def test_revin_normalize_then_denormalize_is_identity():
    revin = RevIN(D).double()
    with torch.no_grad():
        revin.weight.uniform_(0.5, 2.0)
        revin.bias.normal_()
    x = torch.randn(B, D, L, dtype=torch.float64) * 10 + 5
    xn, stats = revin.normalize(x)
    # the normalised series has the affine's mean and scale
    torch.testing.assert_close(xn.mean(-1), revin.bias.expand(B, D))
    torch.testing.assert_close(revin.denormalize(xn, stats), x, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("layout", ["window view", "gathered batch"])
def test_revin_standardizes_any_layout_to_row_major_zero_mean_unit_variance(layout):
    series = torch.randn(L + 40, D, dtype=torch.float64) * 3 + 1  # (T, D), like a split's series
    windows = series.unfold(0, L + 4, 1)  # (N, D, L + 4) views, time axis strided by D
    x = windows[:B] if layout == "window view" else windows[torch.arange(B)]  # the second is a gathered copy
    x = x[..., :L]  # inputs: the time axis is strided (window view) or rows have gaps (gathered batch)
    assert not x.is_contiguous()
    z, (mean, std) = RevIN(D).standardize(x)
    assert z.is_contiguous(), "row-major for the products that follow"
    torch.testing.assert_close(mean.squeeze(-1), x.mean(-1))
    torch.testing.assert_close(std.squeeze(-1), torch.sqrt(x.var(-1, correction=0) + RevIN(D).eps))
    torch.testing.assert_close(z * std + mean, x)


def test_permuting_channels_permutes_outputs():
    torch.manual_seed(1)
    model = SAMformer(D, L, H)
    x = torch.randn(B, L, D)
    perm = torch.randperm(D)
    torch.testing.assert_close(model(x[..., perm]), model(x)[..., perm], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", list_variants())
def test_every_variant_forward_backward_and_fits_a_batch(variant):
    torch.manual_seed(0)
    model = create_model(variant, D, L, H)
    x, y = torch.randn(16, L, D), torch.randn(16, H, D)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        loss = torch.mean((model(x) - y) ** 2)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert loss.item() < 0.7 * first


def test_linear_and_no_revin_variants_have_the_right_parts():
    assert create_model("linear", D, L, H).attention is None
    assert create_model("no-revin", D, L, H).revin is None
    from samformer.nn.reparam import SigmaReparamLinear

    assert isinstance(create_model("sigma-reparam", D, L, H).attention.query, SigmaReparamLinear)


@pytest.mark.parametrize("shape", [(B, L), (B, D, L), (B, L + 1, D), (B, L, D + 1)])
def test_wrong_shapes_are_refused_with_a_hint(shape):
    model = SAMformer(D, L, H)
    with pytest.raises(ShapeError, match=r"\(batch, seq_len=32, n_channels=5\)"):
        model(torch.randn(*shape))


def test_integer_input_is_refused():
    with pytest.raises(TypeError, match="floating-point"):
        SAMformer(D, L, H)(torch.ones(B, L, D, dtype=torch.int64))


@pytest.mark.parametrize("bad", [{"seq_len": 0}, {"horizon": -1}, {"d_model": 0}])
def test_bad_sizes_are_refused(bad):
    kwargs = {"n_channels": D, "seq_len": L, "horizon": H, **bad}
    with pytest.raises(ValueError, match=next(iter(bad))):
        SAMformer(**kwargs)


def test_unknown_variant_lists_the_known_ones():
    with pytest.raises(ValueError, match="samformer, no-sam"):
        create_model("transformerz", D, L, H)


def original_forward(x: torch.Tensor, sd: dict[str, torch.Tensor]) -> torch.Tensor:
    """The original code's forward, layout (B, D, L) -> (B, D·H), written out from its description."""
    xt = x.transpose(1, 2)  # its RevIN works on (B, L, D)
    mean = xt.mean(1, keepdim=True)
    std = torch.sqrt(xt.var(1, keepdim=True, unbiased=False) + 1e-5)
    xn = ((xt - mean) / std * sd["revin.affine_weight"] + sd["revin.affine_bias"]).transpose(1, 2)
    q = xn @ sd["compute_queries.weight"].T + sd["compute_queries.bias"]
    k = xn @ sd["compute_keys.weight"].T + sd["compute_keys.bias"]
    v = xn @ sd["compute_values.weight"].T + sd["compute_values.bias"]
    att = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    out = (xn + att) @ sd["linear_forecaster.weight"].T + sd["linear_forecaster.bias"]  # (B, D, H)
    out = out.transpose(1, 2)
    out = (out - sd["revin.affine_bias"]) / (sd["revin.affine_weight"] + 1e-10) * std + mean
    return out.transpose(1, 2).reshape(x.shape[0], -1)


def test_from_original_state_dict_gives_the_same_forecasts():
    g = torch.Generator().manual_seed(3)
    shapes = {
        "revin.affine_weight": (D,),
        "revin.affine_bias": (D,),
        "compute_queries.weight": (16, L),
        "compute_queries.bias": (16,),
        "compute_keys.weight": (16, L),
        "compute_keys.bias": (16,),
        "compute_values.weight": (L, L),
        "compute_values.bias": (L,),
        "linear_forecaster.weight": (H, L),
        "linear_forecaster.bias": (H,),
    }
    sd = {k: torch.randn(s, generator=g) * 0.2 for k, s in shapes.items()}
    sd["revin.affine_weight"] += 1
    x = torch.randn(B, D, L, generator=g)
    model = SAMformer.from_original_state_dict(sd)
    ours = model(x.transpose(1, 2)).transpose(1, 2).reshape(B, -1)
    torch.testing.assert_close(ours, original_forward(x, sd), rtol=1e-5, atol=1e-5)
    with pytest.raises(KeyError, match="compute_keys"):
        SAMformer.from_original_state_dict({k: v for k, v in sd.items() if not k.startswith("compute_keys")})


@pytest.mark.parametrize(
    "options, masked",
    [({}, False), ({}, True), ({"target_channels": (3, 0)}, False), ({"revin": False}, False), ({"revin": False}, True)],
)
def test_fused_forward_gives_the_plain_forward_and_gradients(options, masked):
    # float64, so that only the order of the arithmetic differs between the fused node and the modules.
    torch.manual_seed(0)
    fused = SAMformer(D, L, H, d_model=6, **options).double()
    randomise(fused)
    plain = SAMformer(D, L, H, d_model=6, **options).double()
    plain.load_state_dict(fused.state_dict())
    plain.fused = False
    assert fused.uses_fused(torch.zeros(B, D, L))
    x = (torch.randn(B, L + 3, D, dtype=torch.float64) * 3 + 2).transpose(1, 2)[..., :L]  # strided, like a window view
    mask = torch.rand(B, D, L) > 0.3 if masked else None
    n_out = len(options.get("target_channels", range(D)))
    target = torch.randn(B, n_out, H, dtype=torch.float64)
    losses, attentions = [], []
    for model in (fused, plain):
        y, attn = model.forward_channels_first(x, return_attention=True, mask=mask)
        loss = ((y - target) ** 2).mean()
        loss.backward()
        losses.append(loss)
        attentions.append(attn)
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(attentions[0], attentions[1], rtol=1e-12, atol=1e-12)
    for (name, p), q in zip(fused.named_parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-10, atol=1e-10, msg=name)


@pytest.mark.parametrize("revin", [True, False])
def test_bf16_gradients_are_the_fp32_gradients_to_bf16_accuracy(revin):
    torch.manual_seed(0)
    model = SAMformer(D, 64, H, revin=revin)
    assert model.uses_fused(torch.zeros(16, D, 64)), "the fused pass is the one under test"
    x, target = torch.randn(16, D, 64) * 3 + 2, torch.randn(16, D, H)
    grads = []
    for precision in (None, torch.bfloat16):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision is not None):
            loss = ((model.forward_channels_first(x) - target) ** 2).mean()
        assert loss.dtype == torch.float32
        loss.backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    assert all(g.dtype == torch.float32 for g in grads[1]), "fp32 gradients for the fp32 master weights"
    exact, low = (torch.cat([g.flatten() for g in gs]) for gs in grads)  # the key bias's gradient is 0 exactly
    assert 0 < (low - exact).norm() <= 0.02 * exact.norm()
