"""Virtual cameras of official stage 1 (``CameraAugmentor``, training facts 2.2, 3.3).

The image is 1000 x 1000 px with f = sqrt(W^2 + H^2) = 1414.2 px and the principal point at the
centre (the intrinsics the network always assumes, wham facts 2.4). A camera is world->camera
rotations R_t and translations T_t over the L frames of a sample (x_cam = R_t x_world + T_t, with
the frame-0 hip midpoint at the world origin).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from wham_ros.geometry.camera_motion import angvel_from_delta
from wham_ros.geometry.rotations import axis_angle_to_matrix, matrix_to_rot6d, rot6d_to_matrix

IMAGE_SIZE = 1000.0
FOCAL = math.hypot(IMAGE_SIZE, IMAGE_SIZE)
#: pitch ~ N(5 deg, 22.5 deg), roll ~ N(0, 7.5 deg)
PITCH_MEAN, PITCH_SD, ROLL_SD = math.pi / 36, math.pi / 8, math.pi / 24
#: distance of the frame-0 hip from the camera, metres, U[min, max)
DEPTH_RANGE = (2.0, 12.0)
#: lateral placement: N(0, this) times the half-width of the view at that depth
LATERAL_SD = 0.25
#: moving cameras: end rotation R0 Exp(r), r ~ N(0, sd) per axis (x, y, z); end translation + N(0, 1 m)
MOTION_ROTATION_SD = (math.pi / 8, math.pi / 4, math.pi / 8)
MOTION_TRANSLATION_SD = 1.0
#: interior interpolation times are jittered by U(-j, j) / (L - 1), per component
TIME_JITTER = 0.2
#: the hip must stay this far in front (else it is moved to 1 m) and within |x/z|, |y/z| <= 1.2 sqrt(0.5)
MIN_DEPTH, RESET_DEPTH = 0.5, 1.0
MAX_SLOPE = 1.2 * math.sqrt(0.5)


def intrinsics(batch: int) -> torch.Tensor:
    """K (B, 1, 3, 3) of the virtual image."""
    c = IMAGE_SIZE / 2
    K = torch.tensor([[FOCAL, 0.0, c], [0.0, FOCAL, c], [0.0, 0.0, 1.0]])
    return K.expand(batch, 1, 3, 3).clone()


def _about(axis: int, angle: torch.Tensor) -> torch.Tensor:
    """Rotations (B, 3, 3) by ``angle`` (B,) about coordinate axis ``axis``."""
    aa = torch.zeros(*angle.shape, 3, dtype=angle.dtype)
    aa[..., axis] = angle
    return axis_angle_to_matrix(aa)


@dataclass
class VirtualCamera:
    """R (B, L, 3, 3) world->camera rotations, T (B, L, 3) translations, moving (B,) bool."""

    R: torch.Tensor
    T: torch.Tensor
    moving: torch.Tensor


def draw_cameras(batch: int, length: int, gen: torch.Generator, moving_prob: float = 0.75) -> VirtualCamera:
    """Official placement and motion: R0 = R_z(roll) R_x(pitch) R_y(yaw), yaw ~ U[0, 2 pi) independent of
    the body's yaw; depth t_z ~ U[2, 12) m, t_x, t_y ~ N(0, 0.25) W t_z / (2 f); with probability
    ``moving_prob`` the camera turns and travels to an end pose, each 6D rotation and translation
    component interpolated linearly over the sample at jittered times (no per-frame noise)."""
    B, L = batch, length
    rand = lambda *s: torch.rand(*s, generator=gen)
    randn = lambda *s: torch.randn(*s, generator=gen)
    yaw = rand(B) * 2 * math.pi
    pitch = PITCH_MEAN + PITCH_SD * randn(B)
    roll = ROLL_SD * randn(B)
    R0 = _about(2, roll) @ _about(0, pitch) @ _about(1, yaw)
    tz = DEPTH_RANGE[0] + (DEPTH_RANGE[1] - DEPTH_RANGE[0]) * rand(B)
    half_width = IMAGE_SIZE * tz / (2 * FOCAL)
    T0 = torch.stack((LATERAL_SD * randn(B) * half_width, LATERAL_SD * randn(B) * half_width, tz), -1)
    moving = rand(B) < moving_prob
    r = randn(B, 3) * torch.tensor(MOTION_ROTATION_SD)
    R1 = torch.where(moving[:, None, None], R0 @ axis_angle_to_matrix(r), R0)
    T1 = torch.where(moving[:, None], T0 + MOTION_TRANSLATION_SD * randn(B, 3), T0)
    s = torch.linspace(0.0, 1.0, L).expand(B, 9, L).clone()
    if L > 2:
        s[..., 1:-1] += (rand(B, 9, L - 2) * 2 - 1) * TIME_JITTER / (L - 1)
    s = s.transpose(1, 2)                                        # (B, L, 9): 6 rotation + 3 translation
    start = torch.cat((matrix_to_rot6d(R0), T0), -1)[:, None]
    end = torch.cat((matrix_to_rot6d(R1), T1), -1)[:, None]
    path = start + s * (end - start)           # exactly constant for a static camera
    return VirtualCamera(rot6d_to_matrix(path[..., :6]), path[..., 6:], moving)


def depth_shift(trans_cam: torch.Tensor) -> torch.Tensor:
    """The official safety fixes as a push along the optical axis (B,), metres, for hip paths (B, L, 3).

    A hip closer than 0.5 m moves the path so its nearest point is 1 m away; then a hip outside
    |x/z|, |y/z| <= 1.2 sqrt(0.5) moves it back until every frame is inside (the official code moves the
    worst frame onto the bound, the same shift). The view's half-angle is atan(0.354), so people can
    still leave the image.
    """
    z = trans_cam[..., 2]
    nearest = z.min(1).values
    shift = torch.where(nearest < MIN_DEPTH, RESET_DEPTH - nearest, torch.zeros_like(nearest))
    lateral = trans_cam[..., :2].abs().max(-1).values
    need = (lateral / MAX_SLOPE - (z + shift[:, None])).max(1).values
    return shift + need.clamp_min(0.0)


def camera_angvel(R: torch.Tensor) -> torch.Tensor:
    """``cam_angvel`` (B, L-1, 6) in the training convention from world->camera rotations R (B, L, 3, 3):
    entry t is (row6D(R_t R_{t+1}^T) - I6) * 30, the rotation from frame t+1's camera into frame t's."""
    return angvel_from_delta(R[:, :-1] @ R[:, 1:].transpose(-1, -2))
