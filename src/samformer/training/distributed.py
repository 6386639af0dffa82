"""Data-parallel training with `torch.distributed`: process group set-up, rank helpers, and the
pieces `fit` uses to make several processes train exactly like one process with the global batch.

Launched by `torchrun --nproc-per-node N ...`, every process finds `WORLD_SIZE`, `RANK` and
`LOCAL_RANK` in its environment; `setup()` then joins the process group (gloo on CPU; on a CUDA machine
NCCL for CUDA tensors, with the device taken from `LOCAL_RANK`). Without those variables every helper here is a no-op
and a run is the plain single-process run, bit for bit.

How `fit` splits the work (see `docs/scaling.md`): `TrainConfig.batch_size` stays the *global* batch.
All ranks draw the same permutation and cut the same global batches; rank r trains on the r-th
contiguous shard of each. Gradients are averaged by DistributedDataParallel with a communication hook
that weights each rank by its share of the batch, so the averaged gradient is the global-batch mean
also for a ragged last batch. SAM's perturbation is then built from that averaged gradient, and both
SAM passes all-reduce.
"""

from __future__ import annotations

import datetime
import inspect
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist

from samformer.data.series import Windows
from samformer.errors import SamformerError

_ENV = ("WORLD_SIZE", "RANK", "LOCAL_RANK")


def launched_by_torchrun() -> bool:
    """True when this process was started by torchrun (or another launcher setting the same variables)."""
    return all(name in os.environ for name in _ENV) and int(os.environ["WORLD_SIZE"]) > 1


def is_distributed() -> bool:
    """True when a process group with more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's global rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def is_main() -> bool:
    """True on the process that writes files and prints (rank 0, or the only process)."""
    return rank() == 0


def device_for_rank(device: str) -> str:
    """Under torchrun with CUDA, each process uses the GPU of its `LOCAL_RANK` ('auto' and 'cuda' become 'cuda:N')."""
    if launched_by_torchrun() and device in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return device


def setup(timeout_minutes: float = 30.0) -> bool:
    """Join the torchrun process group if this process was launched by torchrun; returns whether it did.

    gloo on CPU-only machines; with CUDA, NCCL for CUDA tensors and gloo for CPU ones (so `--device cpu`
    still works there), and the CUDA device is set from LOCAL_RANK.
    A no-op (returning False) without torchrun's environment or when a group is already initialised.
    """
    if not launched_by_torchrun() or dist.is_initialized():
        return False
    if not dist.is_available():
        raise SamformerError("this build of torch has no torch.distributed; run without torchrun or install a full torch")
    backend = "gloo"
    if torch.cuda.is_available():
        backend = "cpu:gloo,cuda:nccl"
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=timeout_minutes))
    return True


def teardown() -> None:
    """Leave the process group (if one is initialised)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def session() -> Iterator[bool]:
    """`setup()` on entry, `teardown()` on exit (also on error) — but only of a group this call created.

    On a normal exit the ranks first meet at a barrier, so none closes its connections while another
    is still communicating; after an error a rank leaves at once (a barrier would wait for a dead peer).
    """
    created = setup()
    try:
        yield created
        if created:
            barrier()
    finally:
        if created:
            teardown()


def barrier() -> None:
    """Wait for every process (no-op when not distributed)."""
    if is_distributed():
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """`obj` as held by rank `src`, on every rank (picklable objects; no-op when not distributed)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum over all processes, in place and returned (no-op when not distributed)."""
    if is_distributed():
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def shard(index: torch.Tensor) -> torch.Tensor:
    """This rank's contiguous share of a global batch `index` (sizes differ by at most one; may be empty)."""
    return index.tensor_split(world_size())[rank()] if is_distributed() else index


class ShareWeight:
    """State of `weighted_allreduce_hook`: this rank's share of the current global batch.

    DDP's default hook divides the summed gradients by the world size, which is the global-batch mean
    only when every rank holds the same number of samples. With `weight = local_count / global_count`
    (counts of target values in the loss), the weighted sum is exact for ragged batches too.
    """

    def __init__(self) -> None:
        self.weight = 1.0


def weighted_allreduce_hook(state: ShareWeight, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """DDP communication hook: each rank's bucket times its share, then one all-reduce SUM."""
    buffer = bucket.buffer()
    buffer.mul_(state.weight)
    work = dist.all_reduce(buffer, op=dist.ReduceOp.SUM, async_op=True)
    return work.get_future().then(lambda fut: fut.value()[0])


# DDP checks a hook's annotations as objects; `from __future__ import annotations` made them strings.
weighted_allreduce_hook.__annotations__.update(bucket=dist.GradBucket, state=ShareWeight, **{"return": torch.futures.Future[torch.Tensor]})


class _ChannelsFirst(torch.nn.Module):
    """Routes `forward` to `forward_channels_first`, the entry point training uses (DDP only hooks `forward`)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.model.forward_channels_first(x) if mask is None else self.model.forward_channels_first(x, mask=mask)


class DataParallelModel:
    """A model as `forward_backward` sees it under data parallelism: `forward_channels_first` runs through
    DistributedDataParallel, so the backward pass all-reduces the gradients (weighted by `share`).

    Every other attribute is the wrapped model's own (its parameters, `zero_grad`, `state_dict` without
    a `module.` prefix). Buffers are not broadcast at each forward: σReparam's are a deterministic
    function of the (synchronised) weights, and RevIN keeps none.
    """

    def __init__(self, model: torch.nn.Module, device: torch.device) -> None:
        from torch.nn.parallel import DistributedDataParallel

        self.model = model
        self.share = ShareWeight()
        device_ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
        # Newer torch renamed the switch (and deprecated the old name); both leave out the per-forward broadcast.
        no_buffer_sync = (
            {"forward_sync_buffers": False}
            if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
            else {"broadcast_buffers": False}
        )
        self.ddp = DistributedDataParallel(_ChannelsFirst(model), device_ids=device_ids, **no_buffer_sync)
        self.ddp.register_comm_hook(self.share, weighted_allreduce_hook)

    def forward_channels_first(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.ddp(x, mask)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)


def shard_windows(windows: Windows) -> Windows | None:
    """This rank's contiguous block of `windows`, or None if it gets none.

    Windows [a, b) are rows [a, b + L + H − 1) of the series, so the block is a view, not a copy.
    """
    block = torch.arange(len(windows)).tensor_split(world_size())[rank()]
    if len(block) == 0:
        return None
    a, b = int(block[0]), int(block[-1]) + 1
    rows = slice(a, b + windows.seq_len + windows.horizon - 1)
    mask = None if windows.mask is None else windows.mask[rows]
    return Windows(windows.series[rows], windows.seq_len, windows.horizon, mask, windows.roles)


def target_count(windows: Windows) -> int:
    """How many target values of `windows` count in the metrics (observed ones only, under a mask).

    Computed from the series, never from gathered windows: window i's targets are rows [i+L, i+L+H).
    """
    targets = windows.roles.targets  # None: every channel is a target
    n, lookback, horizon = len(windows), windows.seq_len, windows.horizon
    if windows.mask is None:
        return n * (windows.series.shape[1] if targets is None else len(targets)) * horizon
    observed = windows.mask if targets is None else windows.mask[:, list(targets)]
    per_row = observed.sum(dim=1, dtype=torch.int64)  # (T,)
    cum = torch.cat([per_row.new_zeros(1), per_row.cumsum(0)])  # (T + 1,): cum[t] = observed targets in rows [0, t)
    return int(cum[lookback + horizon : lookback + horizon + n].sum() - cum[lookback : lookback + n].sum())
