"""Gravity-aligned world frames for ``init_root``.

WHAM's world is gravity-aligned with +Y pointing *down* (training convention).
With a known gravity direction in the first camera frame (e.g. from an IMU's
accelerometer at rest, or from TF), ``init_root = row6D(R_{w<-c0} R_root,cam)``
as in the official EMDB evaluation; without it, the world is the first camera
frame itself (``init_root = row6D(R_root,cam)``), as in the official demo, which
assumes that camera has no pitch or roll.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from wham_ros.geometry.rotations import matrix_to_rot6d


def gravity_from_accel(accel_cam: torch.Tensor) -> torch.Tensor:
    """Unit gravity direction (pointing down) from an accelerometer reading at rest.

    An accelerometer measures specific force, which points *up* at rest, so gravity
    is its negation. accel_cam (3,) in the camera optical frame.
    """
    a = torch.as_tensor(accel_cam, dtype=torch.float64)
    if not torch.isfinite(a).all() or a.norm() < 1e-6:
        raise ValueError("accelerometer reading is zero or not finite")
    return -a / a.norm()


def world_from_camera(gravity_cam: torch.Tensor) -> torch.Tensor:
    """R_{w<-c} (3, 3) mapping camera-frame vectors into a y-down gravity-aligned world.

    gravity_cam (3,): gravity direction in camera coordinates (any length). The yaw
    is chosen so the camera's viewing direction (+z) projects onto world +z; when
    the camera looks straight up or down, its +y axis is used instead.
    """
    g = F.normalize(torch.as_tensor(gravity_cam, dtype=torch.float64), dim=0)
    fwd = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    if abs(float(g @ fwd)) > 0.99:
        fwd = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    z = F.normalize(fwd - (fwd @ g) * g, dim=0)
    x = torch.linalg.cross(g, z)
    return torch.stack((x, g, z))


def init_root(global_orient_cam: torch.Tensor, R_world_cam: torch.Tensor | None = None) -> torch.Tensor:
    """``init_root`` (6,) from the initial camera-frame root orientation (3, 3).

    With ``R_world_cam`` (see :func:`world_from_camera`) the track's world is
    gravity-aligned; without it, the world is the first camera frame.
    """
    R = torch.as_tensor(global_orient_cam).reshape(3, 3)
    if R_world_cam is not None:
        R = torch.as_tensor(R_world_cam, dtype=R.dtype) @ R
    return matrix_to_rot6d(R)
