"""SAM under Lightning's automatic optimisation equals our explicit two-step loop."""

from __future__ import annotations

import pytest
import torch

L = pytest.importorskip("lightning")

from samformer import SAMformer, SAMformerConfig  # noqa: E402
from samformer.training.fit import train_step  # noqa: E402
from samformer.training.lightning import SAMformerModule  # noqa: E402
from samformer.training.sam import SAM  # noqa: E402

CFG = SAMformerConfig(n_channels=3, seq_len=16, horizon=4)


def fixed_problem():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 16, 3, generator=g)
    y = x[:, -4:, :] * 0.5 + 0.1 * torch.randn(64, 4, 3, generator=g)
    return x, y


@pytest.mark.parametrize("sam", [True, False])
def test_lightning_trainer_reaches_the_same_weights_as_our_loop(sam):
    x, y = fixed_problem()
    torch.manual_seed(0)
    module = SAMformerModule(CFG, lr=1e-2, rho=0.5, sam=sam)
    ours = SAMformer.from_config(CFG)
    ours.load_state_dict(module.model.state_dict())
    start = {k: v.clone() for k, v in ours.state_dict().items()}

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16, shuffle=False)
    trainer = L.Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.fit(module, loader)

    opt = SAM(ours.parameters(), torch.optim.Adam, rho=0.5, lr=1e-2) if sam else torch.optim.Adam(ours.parameters(), lr=1e-2)
    for _ in range(2):
        for xb, yb in loader:
            train_step(ours, opt, xb.transpose(1, 2), yb.transpose(1, 2), "fp32")  # our loop is channels-first

    moved = max((v - start[k]).abs().max().item() for k, v in ours.state_dict().items())
    assert moved > 1e-3, "training must have changed the weights"
    # The key bias adds the same q·b to every score of a row, which softmax ignores: its true gradient is 0,
    # so Adam turns float rounding noise into steps of size lr. It cannot change a forecast, so it is
    # compared through the forecasts rather than weight by weight.
    for name, value in module.model.state_dict().items():
        if name != "attention.key.bias":
            torch.testing.assert_close(value, ours.state_dict()[name], rtol=0, atol=1e-5, msg=name)
    with torch.no_grad():
        torch.testing.assert_close(module.model(x), ours(x), rtol=0, atol=1e-5)
