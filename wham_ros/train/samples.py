"""Stage-1 samples: a motion window seen through a virtual camera, as official WHAM builds them from AMASS.

Per sample (training facts 2.2-2.5, 3), all drawn from one generator per batch:

1. a window of l raw frames (l ~ U{54..122}) of a 30 fps clip (``windows.py`` picks clip and start);
2. ``SMPLAugmentor``: body yaw ~ U[0, 2 pi) about world +y (root and ``transl``), beta += N(0, 0.1)
   per coefficient (the ground truth changes with it), the initial pose = pose_0 Exp(omega_j),
   omega_j ~ N(0, 0.01 rad)^3 for all 24 joints;
3. ``SequenceAugmentor``: the l frames resampled linearly (align corners) to L = 82 frames, the 6D of every
   joint (re-orthonormalised) and ``transl``: playback speed 0.66-1.49;
4. the body in the world (:class:`~wham_ros.model.body_model.BodyModel`, COCO-17 and the 14 common joints
   from its ``J_regressor_wham``, feet from ``J_regressor_feet``), frame 0 with the noisy initial pose;
5. a virtual camera (``virtual_camera.py``); camera-frame joints, roots and ``cam_angvel``;
6. inputs: COCO-17 + 3D noise (``keypoint_noise.py``), projected with the virtual K, boxes (``boxes.py``),
   normalised like the network's online input, masked;
7. frame 0 becomes the init frame (``init_kp``, ``init_smpl``, ``init_root``); frames 1..81 are the 81
   network frames and their targets.

Deviation: the ground-truth trajectory is the true hip midpoint (``transl`` + the body's hip offset),
re-zeroed at frame 0. The official code subtracts the offset instead of adding it (training facts 2.3),
which bends the target path by twice the offset's change whenever the root turns; the network's own
trajectory (and its world feet) is the hip midpoint's, so the target is too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch

from wham_ros.geometry.rotations import axis_angle_to_matrix, matrix_to_rot6d, rot6d_to_matrix
from wham_ros.mocap.contact import CONTACT_SLOPE, CONTACT_VELOCITY
from wham_ros.model.body_model import BodyModel
from wham_ros.model.kinematics import project
from wham_ros.stream.inputs import normalize_keypoints
from wham_ros.train.boxes import keypoint_boxes, smooth_boxes
from wham_ros.train.clips import MotionClip
from wham_ros.train.config import AugmentConfig
from wham_ros.train.keypoint_noise import NOISE_TABLE, keypoint_mask, keypoint_noise
from wham_ros.train.virtual_camera import IMAGE_SIZE, camera_angvel, depth_shift, draw_cameras, intrinsics

#: frames per sample: the init frame + the 81 frames the network sees (official SEQLEN 81)
SAMPLE_FRAMES = 82


@dataclass(frozen=True)
class Window:
    """Raw frames [start, start + frames) of clip number ``clip``."""

    clip: int
    start: int
    frames: int


@dataclass
class Stage1Batch:
    """Network inputs (official names and shapes, T = L - 1 frames) and targets of B samples.

    Inputs: x (B, T, 37), init_kp (B, 1, 88), init_smpl (B, 1, 24, 6), mask (B, T, 17) bool,
    init_root (B, 1, 6), cam_angvel (B, T, 6), cam_intrinsics (B, 1, 3, 3), bbox (B, T, 3), res (B, 2).
    Targets: kp3d (B, T, 31, 3) camera-frame joints (COCO-17 + 14 common); full_kp2d (B, T, 31, 2) their
    projection, px; pose (B, T, 24, 6) row-6D, root in the camera frame; betas (B, T, 10); pose_root
    (B, T, 6) world root; vel_root (B, T, 3) hip displacement in the previous frame's root axes,
    m/frame; contact (B, T, 4) soft labels, -1 where there is none; R (B, T, 3, 3) world->camera;
    trans_world (B, T, 3) hip path from the init frame, metres.
    """

    x: torch.Tensor
    init_kp: torch.Tensor
    init_smpl: torch.Tensor
    mask: torch.Tensor
    init_root: torch.Tensor
    cam_angvel: torch.Tensor
    cam_intrinsics: torch.Tensor
    bbox: torch.Tensor
    res: torch.Tensor
    kp3d: torch.Tensor
    full_kp2d: torch.Tensor
    pose: torch.Tensor
    betas: torch.Tensor
    pose_root: torch.Tensor
    vel_root: torch.Tensor
    contact: torch.Tensor
    R: torch.Tensor
    trans_world: torch.Tensor

    INPUTS = ("x", "init_kp", "init_smpl", "mask", "init_root", "cam_angvel", "cam_intrinsics", "bbox", "res")

    def inputs(self) -> dict[str, torch.Tensor]:
        """Keyword arguments of :func:`wham_ros.model.forward.train_forward`."""
        return {k: getattr(self, k) for k in self.INPUTS}

    def to(self, device: torch.device | str) -> Stage1Batch:
        return Stage1Batch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def soft_contact(feet: torch.Tensor) -> torch.Tensor:
    """WHAM's soft labels (B, T, 4) from world feet (B, T, 4, 3) at 30 fps (facts 2.5, velocity only):
    1 / (1 + exp(500 (v - 0.01))), v the central-difference speed in m/frame, ends copied."""
    v = (feet[:, 2:] - feet[:, :-2]).norm(dim=-1) / 2
    v = torch.cat((v[:, :1], v, v[:, -1:]), 1)
    return torch.sigmoid(-CONTACT_SLOPE * (v - CONTACT_VELOCITY))


def _gather_windows(clips: list[MotionClip], windows: list[Window], length: int, speed: bool
                    ) -> tuple[torch.Tensor, ...]:
    """Per sample the two raw frames around each resampled time and the blend weight.

    Returns pose_lo/pose_hi (B, L, 24, 3), trans_lo/trans_hi (B, L, 3), w (B, L, 1), betas (B, 10),
    treadmill (B,). With ``speed`` False a window must have exactly ``length`` frames (no resampling).
    """
    out = {k: [] for k in ("pose_lo", "pose_hi", "trans_lo", "trans_hi", "w")}
    betas, tread = [], []
    for win in windows:
        clip = clips[win.clip]
        if speed:
            t = np.arange(length) * (win.frames - 1) / (length - 1)
        elif win.frames == length:
            t = np.arange(length, dtype=np.float64)
        else:
            raise ValueError(f"window of {win.frames} frames without resampling to {length}")
        lo = np.minimum(np.floor(t).astype(int), win.frames - 1)
        hi = np.minimum(lo + 1, win.frames - 1)
        for key, idx in (("lo", lo), ("hi", hi)):
            out[f"pose_{key}"].append(clip.pose[win.start + idx])
            out[f"trans_{key}"].append(clip.trans[win.start + idx])
        out["w"].append((t - lo)[:, None])
        betas.append(clip.betas)
        tread.append(clip.treadmill)
    t = {k: torch.as_tensor(np.stack(v), dtype=torch.float32) for k, v in out.items()}
    return (t["pose_lo"], t["pose_hi"], t["trans_lo"], t["trans_hi"], t["w"],
            torch.as_tensor(np.stack(betas), dtype=torch.float32), torch.as_tensor(tread))


def _yaw(angle: torch.Tensor) -> torch.Tensor:
    """Rotations (B, 3, 3) about world +y."""
    aa = torch.zeros(angle.shape[0], 3)
    aa[:, 1] = angle
    return axis_angle_to_matrix(aa)


@torch.no_grad()
def build_batch(body_model: BodyModel, clips: list[MotionClip], windows: list[Window], gen: torch.Generator,
                aug: AugmentConfig, length: int = SAMPLE_FRAMES, speed: bool = True,
                noise_table: torch.Tensor = NOISE_TABLE) -> Stage1Batch:
    """B = len(windows) samples of ``length`` frames (T = length - 1 network frames).

    ``speed`` False (validation): windows of exactly ``length`` frames, played at their own speed.
    ``noise_table``: the keypoint noise statistics (``keypoint_noise.load_noise_table``).
    The body model must be the one the clips' shapes belong to; everything is float32 on the CPU.
    """
    B, L = len(windows), length
    pose_lo, pose_hi, trans_lo, trans_hi, w, betas, treadmill = _gather_windows(clips, windows, L, speed)
    randn = lambda *s: torch.randn(*s, generator=gen)

    # SMPLAugmentor: body yaw, shape noise, initial-pose noise
    yaw = _yaw(torch.rand(B, generator=gen) * 2 * math.pi)
    betas = betas + aug.shape_noise * randn(B, 10)
    omega = aug.init_noise * randn(B, 24, 3)
    rot_lo, rot_hi = axis_angle_to_matrix(pose_lo), axis_angle_to_matrix(pose_hi)
    rot_lo[:, :, 0] = yaw[:, None] @ rot_lo[:, :, 0]
    rot_hi[:, :, 0] = yaw[:, None] @ rot_hi[:, :, 0]
    trans = ((1 - w) * trans_lo + w * trans_hi) @ yaw.transpose(-1, -2)
    # SequenceAugmentor: linear blend of each joint's 6D (the identity blend when not resampling)
    rot = rot6d_to_matrix((1 - w[..., None]) * matrix_to_rot6d(rot_lo) + w[..., None] * matrix_to_rot6d(rot_hi))
    init_rot = rot[:, 0] @ axis_angle_to_matrix(omega)                        # (B, 24, 3, 3)

    # the body in the world: hip-centred joints and feet in world orientation, hip path from frame 0
    flat_betas = betas[:, None].expand(B, L, 10).reshape(-1, 10)
    body = body_model.regressed_points(rot[:, :, :1].reshape(-1, 1, 3, 3), rot[:, :, 1:].reshape(-1, 23, 3, 3),
                                 flat_betas)
    joints = body.joints.reshape(B, L, -1, 3)
    feet = body.feet.reshape(B, L, 4, 3)
    hip = body.offset.reshape(B, L, 3) + trans
    path = hip - hip[:, :1]
    init_body = body_model.regressed_points(init_rot[:, :1], init_rot[:, 1:], betas)
    joints = torch.cat((init_body.joints[:, None], joints[:, 1:]), 1)

    contact = soft_contact(feet[:, 1:] + path[:, 1:, None])
    contact = torch.where(treadmill[:, None, None], torch.full_like(contact, -1.0), contact)

    # CameraAugmentor: camera-frame hip path (pushed back into view), joints, roots and cam_angvel
    cam = draw_cameras(B, L, gen, aug.moving_camera)
    trans_cam = (cam.R @ path[..., None])[..., 0] + cam.T
    trans_cam[..., 2] += depth_shift(trans_cam)[:, None]
    kp3d = joints @ cam.R.transpose(-1, -2) + trans_cam[:, :, None]
    root_world = rot[:, :, 0]
    root_cam = cam.R @ root_world
    init_root_cam = cam.R[:, 0] @ init_rot[:, 0]
    cam_angvel = camera_angvel(cam.R)

    # 2D inputs: noisy COCO-17 projected, boxes, normalised, masked
    K = intrinsics(B)
    noisy = kp3d[:, :, :17] + keypoint_noise(B, L, gen, aug.keypoint_noise, noise_table)
    # depth floor: a noisy joint may come close to the camera plane; keep the projection finite
    noisy = torch.cat((noisy[..., :2], noisy[..., 2:].clamp_min(0.05)), -1)
    kp2d = project(noisy, K)
    bbox = smooth_boxes(keypoint_boxes(kp2d, gen), aug.box_filter, aug.box_window)
    mask = keypoint_mask(B, L, gen, aug.mask_prob)
    keypoints = torch.cat((kp2d, torch.ones_like(kp2d[..., :1])), -1)
    x, _ = normalize_keypoints(keypoints, bbox, (IMAGE_SIZE, IMAGE_SIZE))

    init_kp = torch.cat(((init_body.joints[:, :17] @ cam.R[:, 0].transpose(-1, -2)).reshape(B, 51), x[:, 0]), -1)
    init_smpl = matrix_to_rot6d(torch.cat((init_root_cam[:, None], init_rot[:, 1:]), 1))
    pose = matrix_to_rot6d(torch.cat((root_cam[:, :, None], rot[:, :, 1:]), 2))
    vel_root = (root_world[:, :-1].transpose(-1, -2) @ (path[:, 1:] - path[:, :-1])[..., None])[..., 0]
    return Stage1Batch(
        x=x[:, 1:], init_kp=init_kp[:, None], init_smpl=init_smpl[:, None], mask=mask[:, 1:],
        init_root=matrix_to_rot6d(root_world[:, :1]), cam_angvel=cam_angvel, cam_intrinsics=K,
        bbox=bbox[:, 1:].float(), res=torch.full((B, 2), IMAGE_SIZE),
        kp3d=kp3d[:, 1:], full_kp2d=project(kp3d[:, 1:], K), pose=pose[:, 1:],
        betas=betas[:, None].expand(B, L - 1, 10).contiguous(),
        pose_root=matrix_to_rot6d(root_world[:, 1:]), vel_root=vel_root, contact=contact, R=cam.R[:, 1:],
        trans_world=path[:, 1:],
    )
