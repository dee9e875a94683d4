"""Fixed frame conventions and the placement of WHAM's estimates in a robot's world frame.

* WHAM camera frame = the image's optical frame (REP-103 ``*_optical_frame``: x right, y down, z forward).
* WHAM world = gravity-aligned, **y down** (see ``geometry.gravity``).
* SMPL body axes: +x = the body's left, +y up, +z forward.
* REP-155 body frame ``body_<id>``: x forward, y left, z up, at WHAM's root (the hip midpoint).
* ROS fallback world (no TF): WHAM's world turned z-up, x = its +z, y = its -x, z = its -y
  (the same fixed turn that maps an optical frame to its camera body frame).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from wham_ros.geometry.rotations import matrix_to_quaternion, quaternion_to_matrix

#: rows = z-up ROS axes expressed in WHAM's y-down world axes
R_ROS_FROM_WHAM = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
#: rows = REP-155 body axes (x forward, y left, z up) expressed in SMPL body axes
R_SMPL_FROM_BODY = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])


@dataclass(frozen=True)
class Transform:
    """A rigid transform target<-source: x_target = R x_source + t."""

    R: np.ndarray
    t: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points) @ self.R.T + self.t

    def compose(self, other: Transform) -> Transform:
        """self ∘ other (apply ``other`` first)."""
        return Transform(self.R @ other.R, self.R @ other.t + self.t)

    @staticmethod
    def identity() -> Transform:
        return Transform(np.eye(3), np.zeros(3))


@dataclass(frozen=True)
class WorldPose:
    """A person's root placed in the output world: REP-155 body orientation, hip-midpoint position,
    and the rotation output_world <- WHAM world used for velocities."""

    body_R: np.ndarray            # (3, 3) world <- REP-155 body frame
    smpl_R: np.ndarray            # (3, 3) world <- SMPL root (SMPL's global orientation in the world)
    position: np.ndarray          # (3,) hip midpoint
    R_world_wham: np.ndarray      # (3, 3) output world <- WHAM world (y-down)


def place_with_camera_pose(root_cam: np.ndarray, trans_cam: np.ndarray, root_wham: np.ndarray,
                           world_from_camera: Transform) -> WorldPose:
    """Root in a shared world frame from the camera's pose in it (TF world <- optical frame at the image stamp).

    root_cam (3, 3) SMPL root in the optical frame; trans_cam (3,) hip midpoint in the optical frame;
    root_wham (3, 3) WHAM's world root (y-down) of the same frame, used only to map WHAM's
    world velocities into this world: R_world_wham = R_world_cam R_root_cam R_root_wham^T.
    """
    smpl_R = world_from_camera.R @ root_cam
    position = world_from_camera.apply(trans_cam)
    R_world_wham = smpl_R @ root_wham.T
    return WorldPose(smpl_R @ R_SMPL_FROM_BODY, smpl_R, position, R_world_wham)


def place_in_wham_world(root_wham: np.ndarray, trans_wham: np.ndarray) -> WorldPose:
    """Fallback without TF: the person's own gravity-aligned WHAM world, turned z-up (``R_ROS_FROM_WHAM``)."""
    smpl_R = R_ROS_FROM_WHAM @ root_wham
    return WorldPose(smpl_R @ R_SMPL_FROM_BODY, smpl_R, R_ROS_FROM_WHAM @ trans_wham, R_ROS_FROM_WHAM)


def rotation_to_quaternion_xyzw(R: np.ndarray) -> np.ndarray:
    """(3, 3) rotation -> unit quaternion (x, y, z, w) with w >= 0 (ROS order)."""
    q = matrix_to_quaternion(torch.as_tensor(R, dtype=torch.float64)).numpy()
    return q[[1, 2, 3, 0]]


def quaternion_xyzw_to_rotation(q: np.ndarray) -> np.ndarray:
    """Quaternion (x, y, z, w), normalised here -> (3, 3) rotation."""
    q = np.asarray(q, dtype=np.float64)
    return quaternion_to_matrix(torch.from_numpy(q[[3, 0, 1, 2]].copy())).numpy()
