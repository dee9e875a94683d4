"""Per-frame geometry between WHAM's network stages, shared by the batch and streaming paths.

Frames: "camera" is the image's optical frame (x right, y down, z forward);
"world" is WHAM's gravity-aligned y-down world defined by ``init_root``.
All functions take any leading batch shape ``...``.
"""
from __future__ import annotations

import torch

#: contact score above which a foot point counts as planted (the refine path's threshold)
CONTACT_THRESHOLD = 0.5
#: WHAM is trained at 30 fps; foot velocities are scaled by this hard-coded factor
TRAIN_FPS = 30.0


def full_camera_translation(
    cam: torch.Tensor, bbox: torch.Tensor, focal: torch.Tensor, principal: torch.Tensor
) -> torch.Tensor:
    """Weak-perspective (s, tx, ty) of the box crop -> camera-frame hip-midpoint translation (CLIFF).

    cam (..., 3), bbox (..., 3) = [cx, cy, s] with box side 200*s px, focal (...),
    principal (..., 2) principal point in px (the official code uses the image centre
    [W/2, H/2]) -> (..., 3) metres.
    """
    s, tx, ty = cam.unbind(-1)
    cx, cy, b = bbox[..., 0], bbox[..., 1], bbox[..., 2] * 200.0
    bs = b * s + 1e-9
    tz = 2.0 * focal / bs
    return torch.stack((tx + 2.0 * (cx - principal[..., 0]) / bs, ty + 2.0 * (cy - principal[..., 1]) / bs, tz), -1)


def world_feet(
    root_cam: torch.Tensor, root_world: torch.Tensor, trans_cam: torch.Tensor, trans_world: torch.Tensor,
    feet: torch.Tensor,
) -> torch.Tensor:
    """Feet in the world from the unrefined rollout, in the official order of operations.

    root_cam, root_world (..., 3, 3); trans_cam (..., 3); trans_world (..., 3) the
    running root position tau_t; feet (..., 4, 3) hip-centred in camera orientation.
    Mathematically R_w R_c^T F + tau; the official route goes through terms as large
    as trans_cam, and following it keeps float32 results within 1e-6 of the reference.
    """
    cam_R = root_cam @ root_world.transpose(-1, -2)
    pelvis_world = (cam_R.transpose(-1, -2) @ trans_cam.unsqueeze(-1)).squeeze(-1)
    cam_T = (cam_R @ (pelvis_world - trans_world).unsqueeze(-1)).squeeze(-1)
    shifted = feet + trans_cam.unsqueeze(-2) - cam_T.unsqueeze(-2)
    return (cam_R.transpose(-1, -2).unsqueeze(-3) @ shifted.unsqueeze(-1)).squeeze(-1)


def body_feet_in_world(root_cam: torch.Tensor, root_world: torch.Tensor, feet: torch.Tensor) -> torch.Tensor:
    """Hip-centred feet of the body posed with the *world* root orientation.

    Re-posing with another global orientation rotates the whole mesh rigidly about
    the root, so this equals a second body-model run at a fraction of its cost:
    R_w R_c^T F. root_* (..., 3, 3), feet (..., 4, 3) -> (..., 4, 3).
    """
    R = root_world @ root_cam.transpose(-1, -2)
    return (R.unsqueeze(-3) @ feet.unsqueeze(-1)).squeeze(-1)


def reset_root_velocity(
    root_world: torch.Tensor, vel: torch.Tensor, feet_body: torch.Tensor, feet_body_prev: torch.Tensor,
    contact: torch.Tensor, first: torch.Tensor, threshold: float = CONTACT_THRESHOLD,
) -> torch.Tensor:
    """Remove the root velocity that would make planted feet slide.

    root_world (..., 3, 3) current world root R_t; vel (..., 3) root-frame v_t;
    feet_body / feet_body_prev (..., 4, 3) from :func:`body_feet_in_world` at t and t-1;
    contact (..., 4) raw scores; first (...) bool, true where t = 0 (foot velocity 0).
    Returns the corrected root-frame velocity (..., 3).
    """
    u = (root_world @ vel.unsqueeze(-1)).squeeze(-1)
    foot_vel = feet_body - feet_body_prev + u.unsqueeze(-2)
    foot_vel = torch.where(first[..., None, None], torch.zeros_like(foot_vel), foot_vel)
    planted = (contact > threshold).to(foot_vel.dtype).unsqueeze(-1) * foot_vel
    correction = planted.sum(-2) / ((planted != 0).sum(-2).to(foot_vel.dtype) + 1e-4)
    return (root_world.transpose(-1, -2) @ (u - correction).unsqueeze(-1)).squeeze(-1)


def contact_foot_velocity(
    feet_world: torch.Tensor, feet_world_prev: torch.Tensor, contact: torch.Tensor, first: torch.Tensor
) -> torch.Tensor:
    """Refiner input: 30 * (feet_t - feet_{t-1}) * contact_t, flattened to 12; zero at t = 0.

    feet_world(_prev) (..., 4, 3), contact (..., 4), first (...) bool -> (..., 12).
    """
    v = (feet_world - feet_world_prev) * TRAIN_FPS * contact.unsqueeze(-1)
    v = torch.where(first[..., None, None], torch.zeros_like(v), v)
    return v.flatten(-2)


def project(points: torch.Tensor, cam_intrinsics: torch.Tensor) -> torch.Tensor:
    """Pinhole projection of camera-frame points (B, T, N, 3) with K (B, 1, 3, 3) -> pixels (B, T, N, 2)."""
    uvw = points @ cam_intrinsics.transpose(-1, -2)
    return uvw[..., :2] / uvw[..., 2:]
