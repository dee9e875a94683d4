"""Feature integrator: fuses the image feature into the motion context."""
from __future__ import annotations

import torch
from torch import nn


class Integrator(nn.Module):
    """MLP on concat(phi_t (563), f_t (1024)) -> 563, plus phi_t as a residual where ``residual`` is set.

    The official network adds the residual only for sequences whose features
    are non-zero everywhere; callers decide the mask (see ``model.forward``).
    ``enabled=False`` builds a network without one (no parameters): its motion
    decoder reads the motion context as it is, which is how official stage 1
    trains (it passes no features and skips the integrator), so a network trained
    that way runs at inference exactly as it was trained.
    """

    def __init__(self, in_channel: int = 563 + 1024, out_channel: int = 563, hid_channel: int = 1024,
                 enabled: bool = True) -> None:
        super().__init__()
        self.enabled = enabled
        #: layer1..3 with reduced-precision weights (``model.precision``)
        self.fast_layers: list | None = None
        if not enabled:
            return
        self.layer1 = nn.Linear(in_channel, hid_channel)
        self.relu1 = nn.ReLU()
        self.dr1 = nn.Dropout(0.1)
        self.layer2 = nn.Linear(hid_channel, hid_channel)
        self.relu2 = nn.ReLU()
        self.dr2 = nn.Dropout(0.1)
        self.layer3 = nn.Linear(hid_channel, out_channel)

    def forward(self, context: torch.Tensor, feature: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """context (B, T, 563), feature (B, T, 1024), residual (B, T, 1) bool -> (B, T, 563)."""
        if not self.enabled:
            return context
        x = torch.cat((context, feature), dim=-1)
        if self.fast_layers is not None:
            l1, l2, l3 = self.fast_layers
            y = l3(torch.relu(l2(torch.relu(l1(x.reshape(-1, x.shape[-1]))))))
            return torch.where(residual, y.view(*x.shape[:-1], -1) + context, y.view(*x.shape[:-1], -1))
        x = self.dr1(self.relu1(self.layer1(x)))
        x = self.dr2(self.relu2(self.layer2(x)))
        x = self.layer3(x)
        return torch.where(residual, x + context, x)
