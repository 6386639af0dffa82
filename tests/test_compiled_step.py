"""SAM over Adam as one function per step (`training.compiled_step`), checked uncompiled against the eager
optimizers in float64; `test_train.py` checks that it really compiles and trains like the eager step."""

from __future__ import annotations

import pytest
import torch

from samformer import SAMformer
from samformer.nn.fused import MSEPass
from samformer.training.compiled_step import CompiledSAMStep
from samformer.training.config import TrainConfig
from samformer.training.fit import build_optimizer
from samformer.training.steps import CompiledForwardBackward, build_step_and_update, optimizer_update

B, L, D, H = 6, 24, 4, 5


def _not_compiled(fn, **options):
    return fn


def _model(options: dict) -> SAMformer:
    torch.manual_seed(0)
    return SAMformer(D, L, H, d_model=4, **options).double()


def _batches(masked: bool, n_out: int) -> list[tuple]:
    g = torch.Generator().manual_seed(3)
    batches = []
    for size in (B, B, B, B - 2):  # the last one ragged: the eager step, on the same Adam state
        x = torch.randn(size, D, L, generator=g, dtype=torch.float64) * 2 + 1
        y = torch.randn(size, n_out, H, generator=g, dtype=torch.float64)
        mask = (torch.rand(size, D, L, generator=g) > 0.2, torch.rand(size, n_out, H, generator=g) > 0.2) if masked else None
        batches.append((x, y if mask is None else torch.where(mask[1], y, torch.nan), mask))
    return batches


@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize(("options", "masked"), [({}, False), ({"target_channels": (2, 0)}, True), ({"revin": False}, False)])
def test_one_function_per_step_is_sams_two_passes_then_adam(adaptive, weight_decay, options, masked):
    cfg = TrainConfig(rho=0.5, adaptive=adaptive, weight_decay=weight_decay, lr=0.01)
    trained, losses = [], []
    for whole_step in (False, True):
        model = _model(options)
        optimizer = build_optimizer(model, cfg)
        update = optimizer_update(optimizer)
        if whole_step:
            update = CompiledSAMStep(optimizer, update, compiler=_not_compiled)
        batches = _batches(masked, len(options.get("target_channels", range(D))))
        losses.append([update(MSEPass(model, x, y, torch.float64, mask)).item() for x, y, mask in batches])
        trained.append(model.state_dict())
    assert losses[1] == pytest.approx(losses[0], rel=1e-12)
    # The key bias is left out: softmax ignores it (it adds the same q·bk to a whole row of scores), so its
    # gradient is rounding noise, which Adam scales up to lr-sized steps in either order of the arithmetic.
    for name, value in trained[0].items():
        if name != "attention.key.bias":
            torch.testing.assert_close(trained[1][name], value, rtol=1e-10, atol=1e-12, msg=name)


def test_the_whole_step_compiles_only_for_sam_over_adam_on_the_direct_pass():
    model = SAMformer(D, L, H)

    def chosen(cfg: TrainConfig, criterion=None):
        step, update = build_step_and_update(model, build_optimizer(model, cfg), torch.device("cpu"), cfg, criterion)
        return type(update).__name__, isinstance(step.args[0].autograd, CompiledForwardBackward)

    assert chosen(TrainConfig(batch_size=B, compile=True)) == ("CompiledSAMStep", False)
    assert chosen(TrainConfig(batch_size=B, compile=False)) == ("partial", False)
    assert chosen(TrainConfig(batch_size=B, compile=True, sam=False)) == ("partial", True)  # plain Adam: its passes compile
    assert chosen(TrainConfig(batch_size=B, compile=True), criterion=lambda p, t, m: (p - t).abs().mean()) == ("partial", True)
    assert chosen(TrainConfig(batch_size=1, compile=True)) == ("partial", True)  # H > B·D: batches go through autograd
