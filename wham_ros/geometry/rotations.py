"""Rotation representations used by WHAM.

WHAM's 6D rotation is *row*-6D: the first two rows of a 3x3 matrix, flattened as
``[R00 R01 R02 R10 R11 R12]`` (the pytorch3d convention). All functions work on
any leading batch shape and keep the input dtype.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: row-6D of the identity rotation
IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def rot6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """Row-6D ``(..., 6)`` to rotation matrices ``(..., 3, 3)`` by Gram-Schmidt.

    The two 3-vectors become the first two rows; the third row is their cross
    product. Normalisation uses eps 1e-12 like ``F.normalize``.
    """
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = F.normalize(a1, dim=-1)
    b2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = F.normalize(b2, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-2)


def matrix_to_rot6d(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``(..., 3, 3)`` to row-6D ``(..., 6)``."""
    return R[..., :2, :].reshape(*R.shape[:-2], 6)


def skew(v: torch.Tensor) -> torch.Tensor:
    """Cross-product matrices ``(..., 3, 3)`` of vectors ``(..., 3)``."""
    z = torch.zeros_like(v[..., 0])
    x, y, w = v.unbind(-1)
    return torch.stack(
        (torch.stack((z, -w, y), -1), torch.stack((w, z, -x), -1), torch.stack((-y, x, z), -1)), -2
    )


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: axis-angle ``(..., 3)`` (radians) to ``(..., 3, 3)``.

    Uses the Taylor series near zero so the result is exact to float precision
    for tiny angles (gyro increments are ~1e-3 rad).
    """
    theta2 = (aa * aa).sum(-1, keepdim=True).unsqueeze(-1)
    theta = theta2.sqrt()
    small = theta2 < 1e-8
    safe_theta = torch.where(small, torch.ones_like(theta), theta)
    a = torch.where(small, 1 - theta2 / 6, torch.sin(safe_theta) / safe_theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(safe_theta)) / (safe_theta * safe_theta))
    K = skew(aa)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand(K.shape)
    return eye + a * K + b * (K @ K)


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """Logarithm map ``(..., 3, 3)`` to axis-angle ``(..., 3)``, angles in [0, pi].

    Goes through a unit quaternion (robust at all angles, including pi).
    """
    return quaternion_to_axis_angle(matrix_to_quaternion(R))


def matrix_to_quaternion(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``(..., 3, 3)`` to unit quaternions ``(..., 4)`` as (w, x, y, z), w >= 0."""
    m = R
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # Four candidate (unnormalised) quaternions, each well conditioned in its own region;
    # pick the one with the largest pivot.
    q_abs = torch.stack(
        (1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22), -1
    ).clamp_min(0).sqrt()
    cands = torch.stack(
        (
            torch.stack((q_abs[..., 0] ** 2, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                         m[..., 1, 0] - m[..., 0, 1]), -1),
            torch.stack((m[..., 2, 1] - m[..., 1, 2], q_abs[..., 1] ** 2, m[..., 1, 0] + m[..., 0, 1],
                         m[..., 0, 2] + m[..., 2, 0]), -1),
            torch.stack((m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1], q_abs[..., 2] ** 2,
                         m[..., 2, 1] + m[..., 1, 2]), -1),
            torch.stack((m[..., 1, 0] - m[..., 0, 1], m[..., 2, 0] + m[..., 0, 2], m[..., 2, 1] + m[..., 1, 2],
                         q_abs[..., 3] ** 2), -1),
        ),
        -2,
    ) / (2.0 * q_abs[..., None].clamp_min(0.1))
    best = q_abs.argmax(-1)
    q = torch.gather(cands, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = F.normalize(q, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Quaternions ``(..., 4)`` as (w, x, y, z) (normalised here) to ``(..., 3, 3)``."""
    w, x, y, z = F.normalize(q, dim=-1).unbind(-1)
    return torch.stack(
        (
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ),
        -1,
    ).reshape(*q.shape[:-1], 3, 3)


def quaternion_to_axis_angle(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternions ``(..., 4)`` (w, x, y, z) to axis-angle ``(..., 3)``."""
    q = torch.where(q[..., :1] < 0, -q, q)
    vec = q[..., 1:]
    s = vec.norm(dim=-1, keepdim=True)
    angle = 2 * torch.atan2(s, q[..., :1])
    small = s < 1e-7
    # sin(angle/2)/angle -> 1/2 as angle -> 0
    scale = torch.where(small, 2.0 / q[..., :1].clamp_min(1e-12), angle / torch.where(small, torch.ones_like(s), s))
    return vec * scale


def rot_x(angle: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Rotation about x by ``angle`` radians, computed from axis-angle in ``dtype``.

    WHAM's y-down -> y-up output rotation is ``rot_x(pi)`` in float32, whose
    off-diagonal entries are ~8.7e-8 rather than exactly zero.
    """
    return axis_angle_to_matrix(torch.tensor([angle, 0.0, 0.0], dtype=dtype))


def project_to_so3(M: torch.Tensor) -> torch.Tensor:
    """Nearest rotation in the Frobenius sense, ``U V^T`` of the SVD (no reflection fix).

    This matches the demo's flip-eval averaging, which projects the mean of
    two rotations; that mean never has a negative determinant in practice.
    """
    U, _, Vh = torch.linalg.svd(M)
    return U @ Vh
