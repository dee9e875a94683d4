"""Frame conventions and the package's own transform buffer."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from wham_ros.geometry.frames import (
    R_ROS_FROM_WHAM,
    R_SMPL_FROM_BODY,
    Transform,
    place_in_wham_world,
    quaternion_xyzw_to_rotation,
    rotation_to_quaternion_xyzw,
)
from wham_ros.geometry.rotations import axis_angle_to_matrix
from wham_ros.geometry.tf_buffer import TransformBuffer, TransformLookupError


def _rot(aa) -> np.ndarray:
    return axis_angle_to_matrix(torch.tensor(aa, dtype=torch.float64)).numpy()


def test_fixed_rotations_are_proper():
    for R in (R_ROS_FROM_WHAM, R_SMPL_FROM_BODY):
        np.testing.assert_allclose(R @ R.T, np.eye(3))
        assert np.isclose(np.linalg.det(R), 1.0)
    # an upright SMPL body in WHAM's y-down world (root = diag(1, -1, -1)) stands z-up, REP-155 z up
    world = place_in_wham_world(np.diag([1.0, -1.0, -1.0]), np.zeros(3))
    np.testing.assert_allclose(world.body_R[:, 2], [0, 0, 1], atol=1e-12)


@pytest.mark.parametrize("aa", [[0.1, -0.2, 0.3], [np.pi, 0, 0], [0, 3.1, 0.05], [2.0, -1.0, 0.5]])
def test_quaternion_round_trip(aa):
    R = _rot(aa)
    q = rotation_to_quaternion_xyzw(R)
    assert q[3] >= 0 and np.isclose(np.linalg.norm(q), 1)
    np.testing.assert_allclose(quaternion_xyzw_to_rotation(q), R, atol=1e-12)


def _q(aa):
    return rotation_to_quaternion_xyzw(_rot(aa))


def test_chain_lookup_with_interpolation_and_statics():
    buf = TransformBuffer(tolerance=0.05)
    buf.set_transform("odom", "base_link", 0.0, [0, 0, 0], _q([0, 0, 0]))
    buf.set_transform("odom", "base_link", 1.0, [2, 0, 0], _q([0, 0, np.pi / 2]))
    buf.set_transform("base_link", "camera_optical", 0.0, [0.1, 0, 1.0], _q([-np.pi / 2, 0, -np.pi / 2]), static=True)
    buf.set_transform("base_link", "imu", 0.0, [0, 0, 0.5], _q([0, 0, 0]), static=True)
    mid = buf.lookup("odom", "camera_optical", 0.5)
    base = Transform(_rot([0, 0, np.pi / 4]), np.array([1.0, 0, 0]))
    cam = Transform(_rot([-np.pi / 2, 0, -np.pi / 2]), np.array([0.1, 0, 1.0]))
    want = base.compose(cam)
    np.testing.assert_allclose(mid.R, want.R, atol=1e-9)
    np.testing.assert_allclose(mid.t, want.t, atol=1e-9)
    imu_in_cam = buf.lookup("camera_optical", "imu", 0.5)        # through the common parent
    np.testing.assert_allclose(imu_in_cam.R, cam.R.T, atol=1e-9)
    np.testing.assert_allclose(buf.lookup("odom", "odom", 3.0).R, np.eye(3))


def test_lookup_errors_are_explicit():
    buf = TransformBuffer(tolerance=0.05)
    buf.set_transform("odom", "cam", 1.0, [0, 0, 0], [0, 0, 0, 1])
    buf.set_transform("odom", "cam", 2.0, [1, 0, 0], [0, 0, 0, 1])
    assert buf.can_lookup("odom", "cam", 2.04)                   # within the extrapolation tolerance
    with pytest.raises(TransformLookupError, match="outside the buffered"):
        buf.lookup("odom", "cam", 2.5)
    with pytest.raises(TransformLookupError, match="not connected"):
        buf.lookup("map", "cam", 1.5)
    with pytest.raises(ValueError, match="not finite"):
        buf.set_transform("odom", "cam", 3.0, [np.nan, 0, 0], [0, 0, 0, 1])
    buf.clear()
    assert not buf.can_lookup("odom", "cam", 1.5)
