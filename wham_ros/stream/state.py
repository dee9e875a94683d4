"""Per-track inputs, recurrent state and outputs of the online engine.

Every tensor of a :class:`TrackState` has a leading batch dimension of 1 (LSTM
states: (layers, 1, hidden)), so the engine can concatenate the states of all
tracks stepping in a frame and run them as one batch.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch

LSTMState = tuple[torch.Tensor, torch.Tensor]


@dataclass
class TrackInit:
    """What a track needs before its first frame (official ``init_kp``, ``init_smpl``, ``init_root``).

    init_kp (88,): hip-centred 3D COCO joints of the initial body (51) + frame-0 x (37).
    init_smpl (24, 6): row-6D [global_orient, body_pose] of the initial body, camera frame.
    init_root (6,): row-6D root orientation in the world frame before frame 0 (camera-frame root
    for a first-camera world, gravity-aligned with an IMU; see ``stream.inputs``).
    flipped_*: the mirrored initial inputs, required when the engine runs flip evaluation.
    use_features: whether this track is fed image features (see the README's feature policy).
    """

    init_kp: torch.Tensor
    init_smpl: torch.Tensor
    init_root: torch.Tensor
    flipped_init_kp: torch.Tensor | None = None
    flipped_init_smpl: torch.Tensor | None = None
    use_features: bool = True


@dataclass
class FrameInput:
    """One track's inputs for one frame.

    x (37,): normalised keypoints + box location (before masking); mask (17,) bool, True
    where the keypoint confidence is below threshold; cam_angvel (6,): camera rotation
    from the previous to this frame; bbox (3,) [cx, cy, s]; focal: f in pixels of the
    network's intrinsics; res (2,) [W, H]; feature (1024,) or None when no image feature
    exists for this frame. flipped_*: the mirrored inputs for flip evaluation.
    principal (2,): principal point in px for the camera translation; None = image
    centre, as the official code (which ignores calibration) does.
    """

    x: torch.Tensor
    mask: torch.Tensor
    cam_angvel: torch.Tensor
    bbox: torch.Tensor
    focal: float | torch.Tensor
    res: torch.Tensor
    feature: torch.Tensor | None = None
    flipped_x: torch.Tensor | None = None
    flipped_mask: torch.Tensor | None = None
    flipped_feature: torch.Tensor | None = None
    principal: torch.Tensor | None = None


@dataclass
class TrackState:
    """Everything a track carries between frames (batch dimension 1)."""

    frames: int
    enc: LSTMState
    kp_prev: torch.Tensor            # (1, 1, 51) motion encoder's previous 3D keypoints
    traj: LSTMState
    root_prev: torch.Tensor          # (1, 1, 6) trajectory decoder's previous world root (init_root at t=0)
    dec: LSTMState
    pose_prev: torch.Tensor          # (1, 1, 144) motion decoder's previous pose
    refiner: LSTMState
    root_ref_prev: torch.Tensor      # (1, 6) previous refined world root (init_root at t=0)
    trans_world: torch.Tensor        # (1, 3) running unrefined root position tau_t
    trans_world_ref: torch.Tensor    # (1, 3) running refined root position tau*_t
    feet_world_prev: torch.Tensor    # (1, 4, 3) previous world feet (unrefined rollout)
    feet_body_prev: torch.Tensor     # (1, 4, 3) previous hip-centred feet in world orientation
    feature_prev: torch.Tensor | None  # (1, 1, 1024) last feature seen, held over missing frames
    f_enc: LSTMState | None = None   # flipped pass (flip evaluation only)
    f_kp_prev: torch.Tensor | None = None
    f_dec: LSTMState | None = None
    f_pose_prev: torch.Tensor | None = None
    f_feature_prev: torch.Tensor | None = None
    use_features: bool = True


@dataclass
class FrameOutput:
    """One track's outputs for one frame (CPU tensors).

    Camera frame = the image's optical frame; world = WHAM's y-down gravity-aligned
    world of this track (y-up when the engine's ``return_y_up`` is set).
    """

    frame_index: int                 # 0 for the track's first frame
    pose: torch.Tensor               # (144,) 24 x row-6D, joint 0 = root in the camera frame
    betas: torch.Tensor              # (10,)
    cam: torch.Tensor                # (3,) weak-perspective (s, tx, ty)
    contact: torch.Tensor            # (4,) raw scores: left toe, left heel, right toe, right heel
    poses_root_cam: torch.Tensor     # (3, 3)
    poses_body: torch.Tensor         # (23, 3, 3)
    trans_cam: torch.Tensor          # (3,) hip midpoint in the camera frame (m)
    joints: torch.Tensor             # (31, 3) hip-centred, camera orientation (COCO-17 + 14)
    verts_cam: torch.Tensor | None   # (V, 3) hip-centred, camera orientation; None unless requested
    feet: torch.Tensor               # (4, 3) world feet, unrefined rollout, y-down
    pose_root: torch.Tensor          # (6,) decoder world root r_t, y-down
    vel_root: torch.Tensor           # (3,) decoder root velocity, root frame, m/frame at 30 fps
    pose_root_refined: torch.Tensor  # (6,) refined world root, y-down
    vel_root_refined: torch.Tensor   # (3,)
    poses_root_world: torch.Tensor   # (3, 3) refined world root (y-up if return_y_up)
    trans_world: torch.Tensor        # (3,) refined world hip midpoint (y-up if return_y_up)
    feature_held: bool               # this frame reused the previous frame's image feature
    residual: bool                   # the integrator added its residual this frame


def stack_states(states: list[TrackState], name: str) -> torch.Tensor | LSTMState:
    """Concatenate one field of several track states along the batch dimension."""
    first = getattr(states[0], name)
    if isinstance(first, tuple):
        return tuple(torch.cat([getattr(s, name)[i] for s in states], dim=1) for i in range(2))
    return torch.cat([getattr(s, name) for s in states], dim=0)


def split_state(value: torch.Tensor | LSTMState, index: int) -> torch.Tensor | LSTMState:
    """Track ``index``'s slice of a batched field (keeps the batch dimension)."""
    if isinstance(value, tuple):
        return tuple(v[:, index : index + 1] for v in value)
    return value[index : index + 1]


STATE_FIELDS = tuple(f.name for f in fields(TrackState))


def stack_outputs(frames: list[FrameOutput], init_root: torch.Tensor) -> dict[str, torch.Tensor]:
    """A track's streamed frames as the official batch output dict (batch 1, official key names and shapes).

    ``init_root`` (6,) supplies entry 0 of ``poses_root_r6d*``. ``verts_cam`` is included
    when the frames carry vertices.
    """
    def st(name: str) -> torch.Tensor:
        return torch.stack([getattr(f, name) for f in frames])

    root0 = torch.as_tensor(init_root, dtype=torch.float32).reshape(1, 6)
    roots = torch.cat((root0, st("pose_root")))[None]
    out = {
        "pose": st("pose")[None], "betas": st("betas")[None], "cam": st("cam")[None], "contact": st("contact")[None],
        "poses_root_cam": st("poses_root_cam")[:, None], "poses_body": st("poses_body"), "trans_cam": st("trans_cam"),
        "feet": st("feet")[None], "poses_root_r6d": roots, "pose_root": roots, "vel_root": st("vel_root")[None],
        "poses_root_r6d_refined": torch.cat((root0, st("pose_root_refined")))[None],
        "vel_root_refined": st("vel_root_refined")[None], "poses_root_world": st("poses_root_world")[None],
        "trans_world": st("trans_world")[None],
    }
    if frames and frames[0].verts_cam is not None:
        out["verts_cam"] = st("verts_cam")
    return out


def track_init_from_official(inputs: dict, flipped: dict | None = None, use_features: bool = True,
                             index: int = 0) -> TrackInit:
    """TrackInit of batch element ``index`` of the official network arguments (``init_kp``, ``init_smpl``,
    ``init_root``; ``flipped``: the flipped arguments, for flip evaluation)."""
    return TrackInit(inputs["init_kp"][index], inputs["init_smpl"][index], inputs["init_root"][index],
                     None if flipped is None else flipped["init_kp"][index],
                     None if flipped is None else flipped["init_smpl"][index], use_features)


def frame_input_from_official(inputs: dict, t: int, flipped: dict | None = None, feature: bool = True,
                              index: int = 0) -> FrameInput:
    """FrameInput of frame ``t`` of batch element ``index`` of the official network arguments.

    ``feature=False`` leaves the image feature out (a frame without a crop).
    """
    frame = FrameInput(inputs["x"][index, t], inputs["mask"][index, t], inputs["cam_angvel"][index, t],
                       inputs["bbox"][index, t], inputs["cam_intrinsics"][index, 0, 0, 0], inputs["res"][index],
                       inputs["features"][index, t] if feature else None)
    if flipped is not None:
        frame.flipped_x, frame.flipped_mask = flipped["x"][index, t], flipped["mask"][index, t]
        frame.flipped_feature = flipped["features"][index, t] if feature else None
    return frame
