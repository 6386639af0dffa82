"""SAM on quadratics whose gradients are known in closed form."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch

from samformer import SAM

A = torch.tensor([[3.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 1.0]], dtype=torch.float64)
b = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)


def grad_at(w: torch.Tensor) -> torch.Tensor:
    """∇ of f(w) = ½ wᵀAw − bᵀw."""
    return A @ w - b


def loss_of(w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    w = torch.cat([w1, w2])
    return 0.5 * w @ A @ w - b @ w


def counting_closure(opt: SAM, w1: torch.Tensor, w2: torch.Tensor) -> tuple[Callable[[], torch.Tensor], list[int]]:
    """A Lightning-style closure (zero the gradients, compute the loss, back-propagate) and the list of its calls."""
    calls: list[int] = []

    def closure() -> torch.Tensor:
        calls.append(1)
        opt.zero_grad()
        loss = loss_of(w1, w2)
        loss.backward()
        return loss

    return closure, calls


def make(rho=0.3, adaptive=False, base=torch.optim.SGD, **kw):
    w1 = torch.nn.Parameter(torch.tensor([0.4, -1.2], dtype=torch.float64))
    w2 = torch.nn.Parameter(torch.tensor([2.0], dtype=torch.float64))
    # two groups: the perturbation must use the norm over both
    opt = SAM([{"params": [w1]}, {"params": [w2]}], base, rho=rho, adaptive=adaptive, lr=0.1, **kw)
    return w1, w2, opt


def test_first_step_moves_by_rho_g_over_norm_and_second_step_applies_base_update_at_perturbed_point():
    w1, w2, opt = make(rho=0.3)
    w0 = torch.cat([w1, w2]).detach().clone()
    loss_of(w1, w2).backward()
    opt.first_step(zero_grad=True)
    g = grad_at(w0)
    expected_perturbed = w0 + 0.3 * g / g.norm()
    torch.testing.assert_close(torch.cat([w1, w2]).detach(), expected_perturbed, rtol=0, atol=1e-12)
    assert w1.grad is None and w2.grad is None
    loss_of(w1, w2).backward()
    opt.second_step()
    expected = w0 - 0.1 * grad_at(expected_perturbed)  # SGD with the gradient taken at w + ε
    torch.testing.assert_close(torch.cat([w1, w2]).detach(), expected, rtol=0, atol=1e-12)


def test_weights_are_restored_bit_exactly_before_the_base_step():
    w1, w2, opt = make(rho=0.7)
    before = [w1.detach().clone(), w2.detach().clone()]
    view = w1.detach()  # shares w1's memory, like anything else holding a view of the weights
    loss_of(w1, w2).backward()
    opt.first_step(zero_grad=True)
    assert not torch.equal(w1.detach(), before[0]), "first_step moved the weights"
    loss_of(w1, w2).backward()
    for group in opt.param_groups:  # a zero learning rate isolates the restore
        group["lr"] = 0.0
    opt.second_step()
    assert torch.equal(w1.detach(), before[0]) and torch.equal(w2.detach(), before[1])
    assert w1.data_ptr() == view.data_ptr(), "the parameter is restored in its own memory, where views of it look"


def test_adaptive_perturbation_is_scaled_by_squared_weights():
    w1, w2, opt = make(rho=0.2, adaptive=True)
    w0 = torch.cat([w1, w2]).detach().clone()
    loss_of(w1, w2).backward()
    opt.first_step()
    g = grad_at(w0)
    expected = w0 + 0.2 * w0**2 * g / torch.linalg.norm(w0.abs() * g)
    torch.testing.assert_close(torch.cat([w1, w2]).detach(), expected, rtol=0, atol=1e-12)


def test_parameters_without_gradient_are_left_alone():
    w1, w2, opt = make()
    frozen = w2.detach().clone()
    w0 = w1.detach().clone()
    (0.5 * w1 @ A[:2, :2] @ w1 - b[:2] @ w1).backward()  # w2 gets no gradient
    opt.first_step(zero_grad=True)
    g = A[:2, :2] @ w0 - b[:2]
    torch.testing.assert_close(w1.detach(), w0 + 0.3 * g / g.norm(), rtol=0, atol=1e-12)
    (0.5 * w1 @ A[:2, :2] @ w1 - b[:2] @ w1).backward()
    opt.second_step()
    assert torch.equal(w2.detach(), frozen)


def test_closure_step_equals_explicit_two_step_and_runs_first_pass_when_no_grad():
    w1, w2, opt = make(base=torch.optim.Adam)
    v1, v2, ref = make(base=torch.optim.Adam)
    closure, calls = counting_closure(opt, w1, w2)
    for _ in range(3):
        loss = opt.step(closure)  # no gradient present: SAM runs the first pass itself
        assert loss is not None
        loss_of(v1, v2).backward()
        ref.first_step(zero_grad=True)
        loss_of(v1, v2).backward()
        ref.second_step(zero_grad=True)
    assert len(calls) == 6
    torch.testing.assert_close(torch.cat([w1, w2]), torch.cat([v1, v2]), rtol=0, atol=0)


def test_step_without_closure_explains_itself():
    _, _, opt = make()
    with pytest.raises(RuntimeError, match="closure"):
        opt.step()


def test_state_dict_round_trip_continues_identically():
    w1, w2, opt = make(base=torch.optim.Adam)

    def sam_step(o, p1, p2):
        loss_of(p1, p2).backward()
        o.first_step(zero_grad=True)
        loss_of(p1, p2).backward()
        o.second_step(zero_grad=True)

    for _ in range(3):
        sam_step(opt, w1, w2)
    v1, v2, other = make(base=torch.optim.Adam, rho=0.9)
    with torch.no_grad():
        v1.copy_(w1)
        v2.copy_(w2)
    other.load_state_dict(copy.deepcopy(opt.state_dict()))  # state_dict() shares tensors
    assert other.param_groups[0]["rho"] == 0.3 and other.base_optimizer.param_groups is other.param_groups
    for _ in range(3):
        sam_step(opt, w1, w2)
        sam_step(other, v1, v2)
    torch.testing.assert_close(torch.cat([w1, w2]), torch.cat([v1, v2]), rtol=0, atol=0)


def test_scheduler_changes_reach_the_base_optimizer():
    w1, w2, opt = make()
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    opt.step(lambda: loss_of(w1, w2).backward())
    sched.step()
    assert opt.base_optimizer.param_groups[0]["lr"] == pytest.approx(0.05)


def test_zero_grad_drops_or_zeroes_in_place_and_second_step_restores_only_after_a_first_step():
    w1, w2, opt = make(rho=0.3)
    loss_of(w1, w2).backward()
    grad = w1.grad
    opt.zero_grad(set_to_none=False)
    assert w1.grad is grad and torch.equal(grad, torch.zeros(2, dtype=torch.float64)) and not grad.requires_grad
    opt.zero_grad()
    assert w1.grad is None and w2.grad is None
    # a second step without a first one is the base step alone (SGD with the current gradient)
    w0 = torch.cat([w1, w2]).detach().clone()
    loss_of(w1, w2).backward()
    opt.second_step(zero_grad=True)
    torch.testing.assert_close(torch.cat([w1, w2]).detach(), w0 - 0.1 * grad_at(w0), rtol=0, atol=1e-12)


def _two_step_reference(rho=0.3):
    """The same SAM step driven explicitly: the truth `step(closure)` must match."""
    v1, v2, ref = make(rho=rho, base=torch.optim.Adam)
    loss_of(v1, v2).backward()
    ref.first_step(zero_grad=True)
    loss_of(v1, v2).backward()
    ref.second_step(zero_grad=True)
    return torch.cat([v1, v2]).detach()


def test_closure_step_after_zeroing_gradients_in_place_still_perturbs():
    # zero-valued gradients (zero_grad(set_to_none=False)) are not a finished first pass: ε must not be 0
    w1, w2, opt = make(base=torch.optim.Adam)
    loss_of(w1, w2).backward()
    opt.zero_grad(set_to_none=False)
    assert w1.grad is not None and not torch.any(w1.grad)

    def closure():
        opt.zero_grad(set_to_none=False)
        loss = loss_of(w1, w2)
        loss.backward()
        return loss

    assert opt.step(closure) is not None  # the first pass at w was run by this call
    torch.testing.assert_close(torch.cat([w1, w2]).detach(), _two_step_reference(), rtol=0, atol=0)


def test_closure_step_after_an_explicit_first_step_only_completes_it():
    w1, w2, opt = make(base=torch.optim.Adam)
    loss_of(w1, w2).backward()
    opt.first_step(zero_grad=True)  # now at w + ε, gradients dropped
    closure, calls = counting_closure(opt, w1, w2)
    assert opt.step(closure) is None  # the loss at w was not computed by this call
    assert len(calls) == 1
    torch.testing.assert_close(torch.cat([w1, w2]).detach(), _two_step_reference(), rtol=0, atol=0)


@pytest.mark.parametrize("adaptive", [False, True])
def test_steps_match_a_textbook_sam_with_copies_bit_for_bit_in_fp32(adaptive):
    """w + ε is built in new tensors that the parameters switch to and back from; the weights must come out
    exactly as from the textbook step that copies w aside, perturbs it in place and copies it back."""
    torch.manual_seed(0)
    shapes = [(5, 3), (3,), (4, 5)]
    start = [torch.randn(s) for s in shapes]
    batches = [[torch.randn(s) for s in shapes] for _ in range(4)]

    def loss(params, batch):  # a smooth, non-quadratic loss: gradients at w and w + ε differ
        return sum(((p * x).sin() * p).sum() for p, x in zip(params, batch, strict=True))

    ours = [torch.nn.Parameter(t.clone()) for t in start]
    sam = SAM(ours, torch.optim.Adam, rho=0.5, adaptive=adaptive, lr=0.01, fused=True)
    theirs = [torch.nn.Parameter(t.clone()) for t in start]
    adam = torch.optim.Adam(theirs, lr=0.01, fused=True)
    for batch in batches:
        loss(ours, batch).backward()
        sam.first_step(zero_grad=True)
        loss(ours, batch).backward()
        sam.second_step(zero_grad=True)

        loss(theirs, batch).backward()
        with torch.no_grad():
            scaled = [p.abs() * p.grad if adaptive else p.grad for p in theirs]  # ASAM: ‖|w| ⊙ g‖, ε ∝ w² g
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in scaled]))
            backups = [p.detach().clone() for p in theirs]
            for p in theirs:
                p.add_((p.grad * p * p if adaptive else p.grad) * (0.5 / (norm + 1e-12)))
        adam.zero_grad()
        loss(theirs, batch).backward()
        with torch.no_grad():
            for p, backup in zip(theirs, backups, strict=True):
                p.copy_(backup)
        adam.step()
        adam.zero_grad()
    for p, q in zip(ours, theirs, strict=True):
        assert torch.equal(p.detach(), q.detach())
