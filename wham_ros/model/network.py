"""The WHAM network: its five stages, the mask embedding and the body model.

With the default :class:`NetworkConfig` parameter names and shapes equal the official
``lib/models/wham.py:Network`` state_dict (demo configuration: ViT features, d_embed 512,
3-layer LSTMs), so an official checkpoint's ``model`` dict loads strictly on every
non-``smpl.*`` key. Other widths and depths (networks trained by ``wham_ros.train``)
keep the same structure and names; their checkpoints carry the config.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from wham_ros.errors import CheckpointError
from wham_ros.model.body_model import BodyModel
from wham_ros.model.integrator import Integrator
from wham_ros.model.motion_decoder import MotionDecoder
from wham_ros.model.motion_encoder import NUM_JOINTS, MotionEncoder
from wham_ros.model.trajectory_decoder import TrajectoryDecoder
from wham_ros.model.trajectory_refiner import TrajectoryRefiner

D_EMBED = 512
D_CONTEXT = D_EMBED + 3 * NUM_JOINTS     # 563
D_FEAT = 1024                            # HMR2.0 ViT-H token


@dataclass(frozen=True)
class NetworkConfig:
    """Width and depth of a WHAM network; the defaults are the official demo configuration.

    d_embed: encoder width (the motion context and both decoders are d_embed + 51 wide);
    n_layers: LSTM layers of the encoder and decoders; refiner_hidden / refiner_layers:
    the trajectory refiner's LSTM; integrator_hidden: the integrator MLP's hidden width;
    integrator: False for a network trained without image features (official stage 1
    never runs the integrator), whose motion decoder then reads the motion context
    directly; pose_dr: dropout after the keypoint embedding (training only).
    """

    d_embed: int = D_EMBED
    n_layers: int = 3
    refiner_hidden: int = D_EMBED
    refiner_layers: int = 2
    integrator_hidden: int = 1024
    integrator: bool = True
    pose_dr: float = 0.15

    def __post_init__(self) -> None:
        for name in ("d_embed", "n_layers", "refiner_hidden", "refiner_layers", "integrator_hidden"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"network config: {name} must be a positive integer, got {value!r}")
        if not isinstance(self.integrator, bool):
            raise ValueError(f"network config: integrator must be true or false, got {self.integrator!r}")
        if not 0.0 <= float(self.pose_dr) < 1.0:
            raise ValueError(f"network config: pose_dr must be in [0, 1), got {self.pose_dr!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping, source: str = "network config") -> NetworkConfig:
        """Config from a mapping (a checkpoint's ``network`` entry); unknown keys are refused."""
        if not isinstance(d, Mapping):
            raise CheckpointError(f"{source}: 'network' must be a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise CheckpointError(f"{source}: unknown network config keys {unknown} (known: {sorted(known)})")
        try:
            return cls(**d)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{source}: {exc}") from exc


class WhamNetwork(nn.Module):
    """Motion encoder, trajectory decoder, feature integrator, motion decoder, trajectory refiner.

    ``smpl`` is the body model (its buffers are the official ``smpl.*`` entries).
    The step-level methods here are used unchanged by the batch entry point
    (``wham_ros.model.forward``), the online engine (``wham_ros.stream``) and training
    (``wham_ros.train``).
    """

    def __init__(self, body_model: BodyModel, config: NetworkConfig | None = None):
        super().__init__()
        self.config = config = config or NetworkConfig()
        d_context = config.d_embed + 3 * NUM_JOINTS
        self.mask_embedding = nn.Parameter(torch.zeros(1, 1, NUM_JOINTS, 2))
        self.smpl = body_model
        self.motion_encoder = MotionEncoder(config.d_embed, config.n_layers, config.pose_dr)
        self.trajectory_decoder = TrajectoryDecoder(d_context, config.n_layers)
        self.integrator = Integrator(d_context + D_FEAT, d_context, config.integrator_hidden, config.integrator)
        self.motion_decoder = MotionDecoder(d_context, config.n_layers)
        self.trajectory_refiner = TrajectoryRefiner(d_context, config.refiner_hidden, config.refiner_layers)
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
