"""Motion encoder: 2D keypoint sequence -> motion context and 3D COCO-17 keypoints (paper Sec. 3.1)."""
from __future__ import annotations

import torch
from torch import nn

from wham_ros.model.regressor import LSTMState, NeuralInitialization, Regressor

NUM_JOINTS = 17
IN_DIM = 2 * NUM_JOINTS + 3          # 37: normalised keypoints + box location
KP3D_DIM = 3 * NUM_JOINTS            # 51
INIT_KP_DIM = KP3D_DIM + IN_DIM      # 88


class MotionEncoder(nn.Module):
    """Embeds x_t (37) and regresses k_t (51, hip-centred 3D COCO joints) autoregressively.

    The motion context is phi_t = concat(o_t, k_t) (d_embed + 51 = 563), where
    o_t is the top LSTM layer's output.
    """

    def __init__(self, d_embed: int = 512, n_layers: int = 3, dropout: float = 0.15) -> None:
        super().__init__()
        self.embed_layer = nn.Linear(IN_DIM, d_embed)
        self.pos_drop = nn.Dropout(dropout)
        self.neural_init = NeuralInitialization(INIT_KP_DIM, d_embed, n_layers)
        self.regressor = Regressor(d_embed, d_embed, [KP3D_DIM], KP3D_DIM, n_layers)

    def init_state(self, init_kp: torch.Tensor) -> tuple[LSTMState, torch.Tensor]:
        """init_kp (B, 1, 88) -> (LSTM state, k_{-1} (B, 1, 51))."""
        return self.neural_init(init_kp), init_kp[..., :KP3D_DIM]

    def step(
        self, x: torch.Tensor, kp_prev: torch.Tensor, state: LSTMState
    ) -> tuple[torch.Tensor, torch.Tensor, LSTMState]:
        """One frame: x (B, 1, 37), k_{t-1} (B, 1, 51) -> (context (B, 1, 563), k_t (B, 1, 51), state)."""
        e = self.pos_drop(self.embed_layer(x))
        (kp,), o, state = self.regressor.step(e, (kp_prev,), state)
        return torch.cat((o, kp), dim=-1), kp, state
