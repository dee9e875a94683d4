"""Flip evaluation: mirror a second pass back and average it with the normal pass (demo ``FLIP_EVAL``)."""
from __future__ import annotations

import torch

from wham_ros.geometry.rotations import matrix_to_rot6d, project_to_so3, rot6d_to_matrix

#: SMPL joint order after a left/right mirror
SMPL_FLIP_PERM = (0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20, 23, 22)
#: COCO-17 keypoint order after a left/right mirror
COCO_FLIP_PERM = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
#: foot-contact order after a mirror: (left toe, left heel) <-> (right toe, right heel)
CONTACT_FLIP_PERM = (2, 3, 0, 1)
_MIRROR = torch.tensor([-1.0, 1.0, 1.0])


def unmirror_rotations(R: torch.Tensor) -> torch.Tensor:
    """Rotations of a mirrored body (..., 24, 3, 3) -> the unmirrored body's.

    Mirroring x negates the y and z axis-angle components, i.e. R -> M R M with
    M = diag(-1, 1, 1); left and right joints swap.
    """
    M = torch.diag(_MIRROR.to(R.dtype)).to(R.device)
    return (M @ R @ M)[..., list(SMPL_FLIP_PERM), :, :]


def average_flipped(
    pose: torch.Tensor, betas: torch.Tensor, contact: torch.Tensor,
    f_pose: torch.Tensor, f_betas: torch.Tensor, f_contact: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Average a normal and a flipped pass (..., 144), (..., 10), (..., 4) each.

    Poses: mean of the two rotation matrices per joint, projected back to SO(3).
    Betas: arithmetic mean. Contacts: mean after swapping the feet of the flipped pass.
    """
    lead = pose.shape[:-1]
    R = rot6d_to_matrix(pose.reshape(*lead, 24, 6))
    Rf = unmirror_rotations(rot6d_to_matrix(f_pose.reshape(*lead, 24, 6)))
    mean = project_to_so3((R + Rf) / 2)
    avg_pose = matrix_to_rot6d(mean).reshape(*lead, 144)
    return avg_pose, (betas + f_betas) / 2, (f_contact[..., list(CONTACT_FLIP_PERM)] + contact) / 2
