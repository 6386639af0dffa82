"""Memory side of the roofline (`speed.py`): bytes a SAM training step moves, the machine's memory bandwidth,
and an operator profile of one epoch.

- `state_bytes_floor`: the traffic no implementation of the step avoids: each pass reads the weights and
  writes their gradients, SAM reads the gradient for its norm and reads w, g and writes w + ε once, fused
  Adam reads w, g and its moments m, v and writes w, m, v; plus the batch, read once.
- `executed_bytes_per_step`: what the eager step actually moves, counted at the dispatcher: for every
  aten operation (views excluded, fused Adam and `torch._foreach_*` included), the bytes of its tensor
  inputs and outputs from their shapes and dtypes, each read or written once. It is a lower bound for
  the unfused execution (no cache reuse across operations, none counted twice within one).
- `memory_bandwidth`: copy (`b.copy_(a)`: 2 × 4 bytes per element) and triad (`a.add_(b, alpha=s)`:
  3 × 4 bytes) on fp32 tensors of ~256 MB, best of a few repetitions, GB/s.
- `op_counts_per_step` and `profile_epoch`: operator counts per step, and the top operators of one
  epoch by self time with their call counts (`speed.py --profile`, files in results/speed/).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

CASTS = ("aten::_to_copy", "aten::copy_")
ELEMENTWISE = ("add", "add_", "sub", "mul", "mul_", "div", "div_", "addcmul", "neg_", "pow", "sqrt", "where", "square")


def parameter_count(n_channels: int, seq_len: int, horizon: int, d_model: int) -> int:
    """SAMformer's parameters: RevIN's affine, queries and keys (L → d), values (L → L), forecaster (L → H)."""
    D, L, H, d = n_channels, seq_len, horizon, d_model
    return 2 * D + 2 * (L * d + d) + (L * L + L) + (H * L + H)


def state_bytes_floor(n_channels: int, seq_len: int, horizon: int, d_model: int, batch_size: int) -> int:
    """Bytes one SAM + Adam step must move at least (fp32 state; see the module docstring)."""
    P = 4 * parameter_count(n_channels, seq_len, horizon, d_model)  # one fp32 copy of the parameters
    passes = 2 * (P + P)  # read w (or w + ε), write the gradient
    sam = P + 3 * P  # ‖g‖: read g; w + ε: read w, g, write w + ε
    adam = 4 * P + 3 * P  # read w, g, m, v; write w, m, v
    batch = 4 * batch_size * n_channels * (seq_len + horizon)
    return passes + sam + adam + batch


GATHERS = ("index", "index_select", "gather")  # read only the gathered values, not their whole source


class _ByteCounter(TorchDispatchMode):
    """Sums the bytes every non-view aten operation reads (its tensor arguments) and writes (the arguments it
    mutates, and its fresh outputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0
        self.by_op: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func.is_view:
            return out
        name = func.__name__.split(".")[0]
        schema = func._schema
        values = dict(zip((a.name for a in schema.arguments), args, strict=False)) | kwargs
        written = sum(_tensor_bytes(values.get(a.name)) for a in schema.arguments if a.alias_info is not None and a.alias_info.is_write)
        fresh = all(r.alias_info is None for r in schema.returns)
        out_bytes = _tensor_bytes(out) if fresh else 0
        if name in GATHERS:
            read = out_bytes + sum(_tensor_bytes(x) for x in (*args[1:], *kwargs.values()))
        else:
            read = sum(_tensor_bytes(x) for x in (*args, *kwargs.values()))
        self.bytes += read + written + out_bytes
        self.by_op[name] += read + written + out_bytes
        return out


def _tensor_bytes(x) -> int:
    if isinstance(x, torch.Tensor):
        return x.numel() * x.element_size()
    if isinstance(x, list | tuple):
        return sum(_tensor_bytes(t) for t in x)
    return 0


def executed_bytes_per_step(step: Callable[[], None], steps: int = 5) -> tuple[float, dict[str, float]]:
    """Mean bytes moved per call of `step` (see the module docstring), and the share of each operation."""
    with _ByteCounter() as counter:
        for _ in range(steps):
            step()
    return counter.bytes / steps, {op: moved / steps for op, moved in counter.by_op.most_common()}


def memory_bandwidth(megabytes: int = 256, repeats: int = 5) -> dict[str, float]:
    """Best GB/s of a copy and a triad on fp32 tensors of `megabytes` each."""
    n = megabytes * 2**20 // 4
    a, b = torch.rand(n), torch.rand(n)
    b.copy_(a)  # touch every page before timing
    best = {"copy": 0.0, "triad": 0.0}
    for _ in range(repeats):
        start = time.perf_counter()
        b.copy_(a)
        best["copy"] = max(best["copy"], 2 * 4 * n / (time.perf_counter() - start) / 1e9)
        start = time.perf_counter()
        a.add_(b, alpha=0.5)
        best["triad"] = max(best["triad"], 3 * 4 * n / (time.perf_counter() - start) / 1e9)
    return best


def op_counts_per_step(step: Callable[[], None], steps: int = 10) -> dict[str, float]:
    """Calls per step of casts, `aten::pow`, elementwise operations, optimizer kernels and all operators."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    counts = {e.key: e.count / steps for e in prof.key_averages()}
    optimizer = {k: v for k, v in counts.items() if "_foreach_" in k or "_fused_adam" in k}
    return {
        "casts (copy_ + _to_copy)": sum(counts.get(k, 0) for k in CASTS),
        "aten::pow": counts.get("aten::pow", 0),
        "elementwise": sum(counts.get(f"aten::{k}", 0) for k in ELEMENTWISE),
        "optimizer kernels (_foreach_*, _fused_adam_)": sum(optimizer.values()),
        "all aten operators": sum(v for k, v in counts.items() if k.startswith("aten::")),
    }


def profile_epoch(epoch: Callable[[], None], rows: int = 15) -> tuple[str, list[dict]]:
    """The top `rows` operators of one call of `epoch` by self CPU time: a printed table and its rows."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        epoch()
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    top = [
        {"op": e.key, "self_ms": e.self_cpu_time_total / 1e3, "self_share": e.self_cpu_time_total / total, "calls": e.count}
        for e in events[:rows]
    ]
    table = "\n".join(f"  {r['op']:<40}{r['self_ms']:>10.1f} ms{100 * r['self_share']:>7.1f} %{r['calls']:>9}" for r in top)
    return f"  {'operator':<40}{'self time':>13}{'share':>9}{'calls':>9}\n{table}", top
