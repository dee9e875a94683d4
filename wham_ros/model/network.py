"""The WHAM network: its five stages, the mask embedding and the body model.

Parameter names and shapes equal the official ``lib/models/wham.py:Network``
state_dict (demo configuration: ViT features, d_embed 512, 3-layer LSTMs), so an
official checkpoint's ``model`` dict loads strictly on every non-``smpl.*`` key.
"""
from __future__ import annotations

import torch
from torch import nn

from wham_ros.model.body_model import BodyModel
from wham_ros.model.integrator import Integrator
from wham_ros.model.motion_decoder import MotionDecoder
from wham_ros.model.motion_encoder import NUM_JOINTS, MotionEncoder
from wham_ros.model.trajectory_decoder import TrajectoryDecoder
from wham_ros.model.trajectory_refiner import TrajectoryRefiner

D_EMBED = 512
D_CONTEXT = D_EMBED + 3 * NUM_JOINTS     # 563
D_FEAT = 1024                            # HMR2.0 ViT-H token


class WhamNetwork(nn.Module):
    """Motion encoder, trajectory decoder, feature integrator, motion decoder, trajectory refiner.

    ``smpl`` is the body model (its buffers are the official ``smpl.*`` entries).
    The step-level methods here are used unchanged by the batch entry point
    (``wham_ros.model.forward``) and the online engine (``wham_ros.stream``).
    """

    def __init__(self, body_model: BodyModel, d_embed: int = D_EMBED, n_layers: int = 3, pose_dr: float = 0.15):
        super().__init__()
        d_context = d_embed + 3 * NUM_JOINTS
        self.mask_embedding = nn.Parameter(torch.zeros(1, 1, NUM_JOINTS, 2))
        self.smpl = body_model
        self.motion_encoder = MotionEncoder(d_embed, n_layers, pose_dr)
        self.trajectory_decoder = TrajectoryDecoder(d_context, n_layers)
        self.integrator = Integrator(d_context + D_FEAT, d_context)
        self.motion_decoder = MotionDecoder(d_context, n_layers)
        self.trajectory_refiner = TrajectoryRefiner(d_context, d_embed, 2)
        self.eval()

    def mask_keypoints(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Write ``mask_embedding`` into the (u, v) slots of masked keypoints; returns a new tensor.

        x (B, T, 37), mask (B, T, 17) bool (True = confidence below threshold).
        The box location (last 3 values) is never masked.
        """
        B, T = x.shape[:2]
        kp = x[..., : 2 * NUM_JOINTS].reshape(B, T, NUM_JOINTS, 2)
        kp = torch.where(mask.unsqueeze(-1), self.mask_embedding.to(kp.dtype).expand(B, T, -1, -1), kp)
        return torch.cat((kp.reshape(B, T, -1), x[..., 2 * NUM_JOINTS:]), dim=-1)

    def non_network_keys(self) -> set[str]:
        return {k for k in self.state_dict() if k.startswith("smpl.")}
