"""A few named SMPL poses (axis-angle per joint, degrees) to show and test a body model with.

Axes are SMPL's (x to the body's left, y up, z forward); from the T-pose, a rotation about +z lowers the
right arm and raises the left one, one about +y swings the right arm forward and the left one back, a
negative one about +x swings a leg forward and a positive one bends a knee back.
"""
from __future__ import annotations

import math

import torch

from wham_ros.geometry.rotations import axis_angle_to_matrix

#: pose name -> {SMPL joint index: (x, y, z) axis-angle in degrees}
POSES: dict[str, dict[int, tuple[float, float, float]]] = {
    "arms down": {16: (0, 0, -75), 17: (0, 0, 75)},
    "walking": {1: (-30, 0, 0), 2: (20, 0, 0), 4: (10, 0, 0), 5: (45, 0, 0), 16: (0, 20, -75),
                17: (0, 20, 75), 18: (0, -20, 0), 19: (0, 35, 0), 3: (0, -8, 0)},
    "sitting": {1: (-90, 0, -5), 2: (-90, 0, 5), 4: (90, 0, 0), 5: (90, 0, 0), 16: (0, -40, -60),
                17: (0, 40, 60), 18: (0, -60, 0), 19: (0, 60, 0), 12: (10, 0, 0)},
    "reaching": {16: (0, 0, 60), 17: (0, 80, 10), 19: (0, 30, 0), 3: (10, 0, -8), 6: (5, 0, -5),
                 15: (-10, 25, 0), 1: (0, 0, 8), 2: (0, 0, -8)},
    "squat": {1: (-110, 0, -15), 2: (-110, 0, 15), 4: (120, 0, 0), 5: (120, 0, 0), 7: (-20, 0, 0),
              8: (-20, 0, 0), 0: (20, 0, 0), 16: (0, -70, 0), 17: (0, 70, 0), 3: (20, 0, 0)},
}


def pose_matrices(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(global_orient (1, 1, 3, 3), body_pose (1, 23, 3, 3)) rotation matrices of a named pose."""
    aa = torch.zeros(24, 3, dtype=torch.float64)
    for joint, angles in POSES[name].items():
        aa[joint] = torch.tensor(angles, dtype=torch.float64) * (math.pi / 180)
    R = axis_angle_to_matrix(aa).to(torch.float32)
    return R[None, :1], R[None, 1:]
