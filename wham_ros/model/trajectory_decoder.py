"""Trajectory decoder: motion context + camera angular velocity -> world root orientation and velocity."""
from __future__ import annotations

import torch
from torch import nn

from wham_ros.model.regressor import LSTMState, Regressor


class TrajectoryDecoder(nn.Module):
    """Autoregressive over r_t (row-6D world root orientation, y-down gravity-aligned world).

    Step input concat(phi_t (563), r_{t-1} (6), a_t (6)); outputs v_t (3), the
    root velocity in the root's own frame (m/frame at 30 fps), and r_t (6).
    The LSTM starts from zeros; r_{-1} is the track's init_root.
    """

    def __init__(self, d_context: int = 563, n_layers: int = 3) -> None:
        super().__init__()
        self.regressor = Regressor(d_context, d_context, [3, 6], 12, n_layers)

    def step(
        self, context: torch.Tensor, root_prev: torch.Tensor, cam_angvel: torch.Tensor, state: LSTMState
    ) -> tuple[torch.Tensor, torch.Tensor, LSTMState]:
        """context (B, 1, 563), r_{t-1} (B, 1, 6), a_t (B, 1, 6) -> (v_t (B, 1, 3), r_t (B, 1, 6), state)."""
        (vel, root), _, state = self.regressor.step(context, (root_prev, cam_angvel), state)
        return vel, root, state
