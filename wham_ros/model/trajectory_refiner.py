"""Trajectory refiner: corrects root orientation and velocity using foot contact (paper Sec. 3.3)."""
from __future__ import annotations

import torch
from torch import nn

from wham_ros.model.regressor import LSTMState, Regressor


class TrajectoryRefiner(nn.Module):
    """Two-layer LSTM over concat(phi_t (563), contact-weighted world foot velocity (12), r_t (6), v~_t (3)).

    Outputs the updates Delta r_t (6) and Delta v_t (3); the LSTM starts from zeros.
    """

    def __init__(self, d_context: int = 563, d_hidden: int = 512, n_layers: int = 2) -> None:
        super().__init__()
        self.refiner = Regressor(d_context + 12, d_hidden, [6, 3], 9, n_layers)

    def forward(
        self, context: torch.Tensor, root: torch.Tensor, vel: torch.Tensor, state: LSTMState | None
    ) -> tuple[torch.Tensor, torch.Tensor, LSTMState]:
        """context (B, T, 575), root (B, T, 6), vel (B, T, 3) -> (Delta r, Delta v, state)."""
        (d_root, d_vel), _, state = self.refiner(context, (root, vel), state)
        return d_root, d_vel, state

    def step(
        self, context: torch.Tensor, root: torch.Tensor, vel: torch.Tensor, state: LSTMState
    ) -> tuple[torch.Tensor, torch.Tensor, LSTMState]:
        """One frame of :meth:`forward`: inputs (B, 1, .)."""
        (d_root, d_vel), _, state = self.refiner.step(context, (root, vel), state)
        return d_root, d_vel, state
