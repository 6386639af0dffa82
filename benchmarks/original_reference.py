"""A re-creation of the original SAMformer PyTorch training step, the reference `speed.py` measures against.

Written from the description of the official code (romilbert/samformer, `samformer_pytorch`), not
copied from it. What makes it the original's:
- the data: every training window materialised as its own tensor pair, `x` (D, L) and `y` flattened to
  (D·H,), served by a `torch.utils.data.DataLoader(shuffle=True)` that collates per-sample tensors;
- the model: a RevIN module that works on (B, L, D) (so the input is transposed in and out), three
  `nn.Linear` maps for queries / keys / values, `scaled_dot_product_attention`, the residual, the shared
  linear forecaster, and an output flattened to (B, D·H);
- SAM as in the widely used implementation it imports: per-parameter loops, the gradient norm from a
  stack of per-parameter norms, `old_p = p.data.clone()` at every step, `p.data = old_p` to restore;
- the loop: forward, `MSELoss`, backward, `first_step`, forward, backward, `second_step`, and
  `loss.item()` at every step.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class OriginalRevIN(nn.Module):
    """RevIN on (B, L, D): statistics over the time axis, affine per channel."""

    def __init__(self, n_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.affine_weight = nn.Parameter(torch.ones(n_channels))
        self.affine_bias = nn.Parameter(torch.zeros(n_channels))

    def forward(self, x: torch.Tensor, mode: str) -> torch.Tensor:
        if mode == "norm":
            self.mean = x.mean(dim=1, keepdim=True).detach()  # (B, 1, D)
            self.stdev = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps).detach()
            return (x - self.mean) / self.stdev * self.affine_weight + self.affine_bias
        x = (x - self.affine_bias) / (self.affine_weight + self.eps * self.eps)
        return x * self.stdev + self.mean


class OriginalSAMformer(nn.Module):
    """The original network: input (B, D, L), output flattened to (B, D·H)."""

    def __init__(self, n_channels: int, seq_len: int, horizon: int, d_model: int = 16) -> None:
        super().__init__()
        self.revin = OriginalRevIN(n_channels)
        self.compute_keys = nn.Linear(seq_len, d_model)
        self.compute_queries = nn.Linear(seq_len, d_model)
        self.compute_values = nn.Linear(seq_len, seq_len)
        self.linear_forecaster = nn.Linear(seq_len, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_norm = self.revin(x.transpose(1, 2), mode="norm").transpose(1, 2)  # (B, D, L)
        queries = self.compute_queries(x_norm)  # (B, D, d)
        keys = self.compute_keys(x_norm)  # (B, D, d)
        values = self.compute_values(x_norm)  # (B, D, L)
        out = x_norm + nn.functional.scaled_dot_product_attention(queries, keys, values)  # (B, D, L)
        out = self.linear_forecaster(out)  # (B, D, H)
        out = self.revin(out.transpose(1, 2), mode="denorm").transpose(1, 2)  # (B, D, H)
        return out.reshape(out.shape[0], -1)  # (B, D·H)


class OriginalSAM(torch.optim.Optimizer):
    """SAM written the way the original code's dependency does it (per-parameter Python loops)."""

    def __init__(self, params, base_optimizer: type[torch.optim.Optimizer], rho: float = 0.05, **kwargs) -> None:
        super().__init__(params, {"rho": rho, **kwargs})
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        norm = torch.norm(torch.stack([p.grad.norm(p=2) for g in self.param_groups for p in g["params"] if p.grad is not None]), p=2)
        for group in self.param_groups:
            scale = group["rho"] / (norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                self.state[p]["old_p"] = p.data.clone()
                p.add_(p.grad * scale.to(p))
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.data = self.state[p]["old_p"]
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()


class WindowDataset(Dataset):
    """Per-window arrays, converted to tensors one sample at a time (as the original's dataset class)."""

    def __init__(self, x, y) -> None:
        self.x, self.y = x, y  # numpy (N, D, L) and (N, D·H)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(self.x[i]).float(), torch.from_numpy(self.y[i]).float()


def make_loader(series: torch.Tensor, seq_len: int, horizon: int, batch_size: int, seed: int = 0) -> DataLoader:
    """Materialise every window of a (T, D) series as the original does and wrap it in a shuffling DataLoader."""
    blocks = series.unfold(0, seq_len + horizon, 1).numpy()  # (N, D, L+H)
    x = blocks[..., :seq_len].copy()  # (N, D, L), materialised
    y = blocks[..., seq_len:].reshape(len(blocks), -1).copy()  # (N, D·H), materialised
    return DataLoader(WindowDataset(x, y), batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))


def train_epoch(model: OriginalSAMformer, optimizer: OriginalSAM, loader: DataLoader) -> float:
    """One epoch of the original loop; returns the mean of the per-batch losses."""
    criterion = nn.MSELoss()
    losses = []
    for x, y in loader:
        loss = criterion(y, model(x))
        loss.backward()
        optimizer.first_step(zero_grad=True)
        criterion(y, model(x)).backward()
        optimizer.second_step(zero_grad=True)
        losses.append(loss.item())
    return sum(losses) / len(losses)
