"""SAMformer as a Lightning module, trained with SAM under Lightning's automatic optimisation.

Optional: `pip install samformer[lightning]`. Lightning calls `optimizer.step(closure)` before any
gradient exists; `samformer.SAM.step` then runs the closure for the first pass itself, perturbs the
weights, runs it again at w + ε and takes the base step — the same update as the explicit
`first_step` / `second_step` loop of `samformer.training.fit`.

Batches are `(x, y)` in the field's layout: x `(batch, seq_len, n_channels)`, y `(batch, horizon, n_channels)`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch

try:
    import lightning as L
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("samformer.training.lightning needs Lightning: pip install 'samformer[lightning]'") from exc

from samformer.metrics import mse
from samformer.nn.model import SAMformer, SAMformerConfig
from samformer.training.sam import SAM


class SAMformerModule(L.LightningModule):
    """A LightningModule around `SAMformer`, optimised by Adam inside SAM (or plain Adam).

    Args:
        config: the model's `SAMformerConfig` (or its dict form).
        lr: Adam's learning rate.
        rho: SAM's radius; `sam=False` trains with plain Adam.
        sam: wrap Adam in SAM.
        adaptive: ASAM instead of SAM.
        weight_decay: Adam's weight decay.
    """

    def __init__(
        self,
        config: SAMformerConfig | dict[str, Any],
        lr: float = 1e-3,
        rho: float = 0.7,
        sam: bool = True,
        adaptive: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        config = asdict(config) if isinstance(config, SAMformerConfig) else dict(config)
        self.save_hyperparameters({"config": config, "lr": lr, "rho": rho, "sam": sam, "adaptive": adaptive, "weight_decay": weight_decay})
        self.model = SAMformer.from_config(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, seq_len, n_channels) -> (batch, horizon, n_channels)."""
        return self.model(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = mse(self.model(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = mse(self.model(x), y)
        self.log("val_mse", loss, prog_bar=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        if hp.sam:
            return SAM(self.parameters(), torch.optim.Adam, rho=hp.rho, adaptive=hp.adaptive, lr=hp.lr, weight_decay=hp.weight_decay)
        return torch.optim.Adam(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
