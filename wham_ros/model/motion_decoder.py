"""Motion decoder: integrated context -> SMPL pose (camera frame), shape, camera and foot contact."""
from __future__ import annotations

import torch
from torch import nn

from wham_ros.model.regressor import LSTMState, NeuralInitialization, Regressor

NUM_SMPL_JOINTS = 24
POSE_DIM = 6 * NUM_SMPL_JOINTS       # 144 = 24 x row-6D
#: SMPL joints the neural initialisation sees: all but feet (10, 11) and hands (22, 23)
MAIN_JOINTS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21)


class MotionDecoder(nn.Module):
    """Autoregressive over the pose p_t (144, row-6D; joint 0 = root in the camera frame).

    Step input concat(phi'_t (563), p_{t-1} (144)); outputs p_t (144), betas (10),
    weak-perspective camera (s, tx, ty) and 4 raw foot-contact scores (no sigmoid).
    """

    def __init__(self, d_context: int = 563, n_layers: int = 3) -> None:
        super().__init__()
        self.neural_init = NeuralInitialization(len(MAIN_JOINTS) * 6, d_context, n_layers)
        self.regressor = Regressor(d_context, d_context, [POSE_DIM, 10, 3, 4], POSE_DIM, n_layers)

    def init_state(self, init_smpl: torch.Tensor) -> tuple[LSTMState, torch.Tensor]:
        """init_smpl (B, 1, 24, 6) -> (LSTM state from the main joints, p_{-1} (B, 1, 144))."""
        B = init_smpl.shape[0]
        main = init_smpl[:, :, list(MAIN_JOINTS)].reshape(B, 1, -1)
        return self.neural_init(main), init_smpl.reshape(B, 1, POSE_DIM)

    def step(
        self, context: torch.Tensor, pose_prev: torch.Tensor, state: LSTMState
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, LSTMState]:
        """context (B, 1, 563), p_{t-1} (B, 1, 144) -> (pose, betas, cam, contact, state), each (B, 1, .)."""
        (pose, betas, cam, contact), _, state = self.regressor.step(context, (pose_prev,), state)
        return pose, betas, cam, contact, state
