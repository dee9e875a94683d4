"""Batch entry point: the official network call on whole sequences.

:func:`wham_forward` takes the official arguments (``x, init_kp, init_smpl, features,
mask, init_root, cam_angvel, cam_intrinsics, bbox, res``) with the official shapes
and returns the official eval-mode outputs under the official key names.
:func:`flip_eval_forward` is the demo's ``FLIP_EVAL`` path. Anyone migrating from
the official scripts can feed these the same tensors.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from wham_ros.errors import InputError
from wham_ros.geometry.rotations import rot6d_to_matrix, rot_x
from wham_ros.model import kinematics as K
from wham_ros.model.flip import average_flipped
from wham_ros.model.network import D_FEAT, WhamNetwork

#: integrator-residual policies (see README, "Missing image features")
RESIDUAL_POLICIES = ("official", "per_frame", "always", "never")


@dataclass
class MotionOutputs:
    """Motion-decoder outputs for a sequence, each (B, T, .)."""

    pose: torch.Tensor
    betas: torch.Tensor
    cam: torch.Tensor
    contact: torch.Tensor


def _check(name: str, t: torch.Tensor, shape: tuple, dtype_kind: str = "float") -> None:
    if not isinstance(t, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    ok = t.dim() == len(shape) and all(s is None or s == d for s, d in zip(shape, t.shape))
    if not ok:
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise InputError(f"{name} has shape {tuple(t.shape)}, expected {want}")
    if dtype_kind == "float":
        if not t.is_floating_point():
            raise InputError(f"{name} must be floating point, got {t.dtype}")
        if not torch.isfinite(t).all():
            raise InputError(f"{name} contains NaN or inf")


def validate_inputs(x, init_kp, init_smpl, features, mask, init_root, cam_angvel, cam_intrinsics, bbox, res) -> None:
    """Raise :class:`InputError` naming the first argument with a wrong shape, dtype or value."""
    _check("x", x, (None, None, 37))
    B, T = x.shape[:2]
    if T < 1:
        raise InputError("x has no frames (T = 0)")
    _check("init_kp", init_kp, (B, 1, 88))
    _check("init_smpl", init_smpl, (B, 1, 24, 6))
    _check("features", features, (B, T, D_FEAT))
    _check("mask", mask, (B, T, 17), "bool")
    if mask.dtype != torch.bool:
        raise InputError(f"mask must be bool, got {mask.dtype}")
    _check("init_root", init_root, (B, 1, 6))
    _check("cam_angvel", cam_angvel, (B, None, 6))
    if cam_angvel.shape[1] < T:
        raise InputError(f"cam_angvel has {cam_angvel.shape[1]} frames, x has {T}")
    _check("cam_intrinsics", cam_intrinsics, (B, None, 3, 3))
    _check("bbox", bbox, (B, T, 3))
    _check("res", res, (B, 2))
    if (bbox[..., 2] <= 0).any():
        raise InputError("bbox scale s must be > 0")
    if (cam_intrinsics[..., 0, 0] <= 0).any() or (res <= 0).any():
        raise InputError("focal length and image size must be > 0")


def integrator_residual(features: torch.Tensor, policy: str) -> torch.Tensor:
    """(B, T, 1) bool: where the integrator adds its input context back.

    ``official``: per sequence, only if every feature value of every frame is non-zero
    (non-causal: one exact zero in a later frame changes earlier frames).
    ``per_frame``: per frame, if that frame's feature has no exact zero (causal; the
    streaming engine's rule). ``always`` / ``never``: as named.
    """
    B, T = features.shape[:2]
    nonzero = (features != 0).all(-1, keepdim=True)
    if policy == "official":
        return nonzero.all(1, keepdim=True).expand(B, T, 1)
    if policy == "per_frame":
        return nonzero
    if policy == "always":
        return torch.ones(B, T, 1, dtype=torch.bool, device=features.device)
    if policy == "never":
        return torch.zeros(B, T, 1, dtype=torch.bool, device=features.device)
    raise InputError(f"unknown integrator residual policy {policy!r}; use one of {RESIDUAL_POLICIES}")


def encode(
    net: WhamNetwork, x: torch.Tensor, mask: torch.Tensor, init_kp: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Motion encoder over a sequence -> (context (B, T, 563), kp3d (B, T, 51))."""
    xm = net.mask_keypoints(x, mask)
    state, kp = net.motion_encoder.init_state(init_kp)
    ctx, kps = [], []
    # split, not per-step slicing: in training a slice's backward writes a whole-sequence gradient per step
    for x_t in xm.split(1, 1):
        c, kp, state = net.motion_encoder.step(x_t, kp, state)
        ctx.append(c)
        kps.append(kp)
    return torch.cat(ctx, 1), torch.cat(kps, 1)


def decode_trajectory(
    net: WhamNetwork, context: torch.Tensor, init_root: torch.Tensor, cam_angvel: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Trajectory decoder -> (root (B, T+1, 6) with entry 0 = init_root, vel (B, T, 3))."""
    root, state = init_root, net.trajectory_decoder.regressor.zero_state(context.shape[0], context)
    roots, vels = [init_root], []
    for c_t, a_t in zip(context.split(1, 1), cam_angvel.split(1, 1)):
        vel, root, state = net.trajectory_decoder.step(c_t, root, a_t, state)
        roots.append(root)
        vels.append(vel)
    return torch.cat(roots, 1), torch.cat(vels, 1)


def decode_motion(net: WhamNetwork, context: torch.Tensor, init_smpl: torch.Tensor) -> MotionOutputs:
    """Motion decoder over a sequence of integrated contexts."""
    state, pose = net.motion_decoder.init_state(init_smpl)
    outs = []
    for c_t in context.split(1, 1):
        pose, betas, cam, contact, state = net.motion_decoder.step(c_t, pose, state)
        outs.append((pose, betas, cam, contact))
    return MotionOutputs(*(torch.cat(o, 1) for o in zip(*outs)))


def _shift(t: torch.Tensor) -> torch.Tensor:
    """t_{i-1} along dim 1 (entry 0 repeats entry 0; callers mask frame 0)."""
    return torch.cat((t[:, :1], t[:, :-1]), 1)


def finish(
    net: WhamNetwork, motion: MotionOutputs, root: torch.Tensor, vel: torch.Tensor, context: torch.Tensor,
    cam_intrinsics: torch.Tensor, bbox: torch.Tensor, res: torch.Tensor, return_y_up: bool, training: bool = False,
) -> dict[str, torch.Tensor]:
    """Body model, world rollout, contact reset and trajectory refinement (official output dict).

    ``training``: the official training forward: the body without its mesh (no loss of stage 1
    needs vertices), gradients stopped at the refiner's inputs (training facts 6.1), and the
    extra outputs the losses need (see :func:`train_forward`).
    """
    B, T = motion.pose.shape[:2]
    rot = rot6d_to_matrix(motion.pose.reshape(B * T, 24, 6))
    pose_body = net.smpl.regressed_points if training else net.smpl.get_output
    body = pose_body(rot[:, :1], rot[:, 1:], motion.betas.reshape(B * T, 10))
    trans_cam = K.full_camera_translation(
        motion.cam, bbox, cam_intrinsics[:, :1, 0, 0].expand(B, T), res[:, None].expand(B, T, 2) / 2.0)

    root_R = rot6d_to_matrix(root)                          # (B, T+1, 3, 3), entry 0 = init_root
    vel_world = (root_R[:, :-1] @ vel.unsqueeze(-1)).squeeze(-1)
    tau = vel_world.cumsum(1)
    root_cam = rot[:, 0].reshape(B, T, 3, 3)
    feet = body.feet.reshape(B, T, 4, 3)
    feet_world = K.world_feet(root_cam, root_R[:, 1:], trans_cam.reshape(B, T, 3), tau, feet)

    # training stops gradients into the refiner (its context, root, feet, contact and reset velocity), so
    # the refined root trains only the refiner; in eval this is the identity
    stop = torch.Tensor.detach if training else (lambda t: t)
    first = torch.zeros(B, T, dtype=torch.bool, device=vel.device)
    first[:, 0] = True
    root_s, contact_s, feet_world_s = stop(root), stop(motion.contact), stop(feet_world)
    feet_body = K.body_feet_in_world(root_cam, root_R[:, 1:], feet)
    vel_reset = stop(K.reset_root_velocity(root_R[:, 1:], vel, feet_body, _shift(feet_body), motion.contact, first))
    foot_vel = K.contact_foot_velocity(feet_world_s, _shift(feet_world_s), contact_s, first)
    d_root, d_vel, _ = net.trajectory_refiner(torch.cat((stop(context), foot_vel), -1), root_s[:, 1:], vel_reset,
                                              None)
    root_ref = torch.cat((root_s[:, :1], root_s[:, 1:] + d_root), 1)
    vel_ref = vel_reset + d_vel
    root_ref_R = rot6d_to_matrix(root_ref)
    trans_world = (root_ref_R[:, :-1] @ vel_ref.unsqueeze(-1)).squeeze(-1).cumsum(1)
    poses_root_world = root_ref_R[:, 1:]
    if return_y_up:
        flip = rot_x(torch.pi, dtype=trans_world.dtype).to(trans_world.device).T
        poses_root_world = flip @ poses_root_world
        trans_world = (flip @ trans_world.unsqueeze(-1)).squeeze(-1)

    extra = {}
    if training:
        joints = body.joints.reshape(B, T, -1, 3)
        extra = {
            "kp3d": joints,
            "full_kp2d": K.project(joints + trans_cam.unsqueeze(-2), cam_intrinsics),
            "R": root_cam @ root_R[:, 1:].transpose(-1, -2),
            "feet_refined": K.world_feet(root_cam, poses_root_world, trans_cam, trans_world, feet),
        }
    return extra | {
        "pose": motion.pose,
        "betas": motion.betas,
        "cam": motion.cam,
        "contact": motion.contact,
        "poses_root_cam": rot[:, :1],
        "poses_body": rot[:, 1:],
        "trans_cam": trans_cam.reshape(B * T, 3),
        "verts_cam": body.vertices,
        "feet": feet_world,
        "poses_root_r6d": root,
        "pose_root": root,
        "vel_root": vel,
        "poses_root_r6d_refined": root_ref,
        "vel_root_refined": vel_ref,
        "poses_root_world": poses_root_world,
        "trans_world": trans_world,
    }


@torch.no_grad()
def wham_forward(
    net: WhamNetwork, x: torch.Tensor, init_kp: torch.Tensor, init_smpl: torch.Tensor, features: torch.Tensor,
    mask: torch.Tensor, init_root: torch.Tensor, cam_angvel: torch.Tensor, cam_intrinsics: torch.Tensor,
    bbox: torch.Tensor, res: torch.Tensor, return_y_up: bool = False, residual: str = "official",
) -> dict[str, torch.Tensor]:
    """The official network forward in eval mode, on whole sequences (B tracks x T frames).

    Shapes: x (B,T,37), init_kp (B,1,88), init_smpl (B,1,24,6), features (B,T,1024),
    mask (B,T,17) bool, init_root (B,1,6), cam_angvel (B,>=T,6), cam_intrinsics (B,1,3,3),
    bbox (B,T,3), res (B,2). Unlike the official code, ``x`` is not modified and
    T = 1 works. Outputs: see the README's output table (official names and shapes).
    """
    validate_inputs(x, init_kp, init_smpl, features, mask, init_root, cam_angvel, cam_intrinsics, bbox, res)
    T = x.shape[1]
    context, _ = encode(net, x, mask, init_kp)
    root, vel = decode_trajectory(net, context, init_root, cam_angvel[:, :T])
    integrated = net.integrator(context, features, integrator_residual(features, residual))
    motion = decode_motion(net, integrated, init_smpl)
    return finish(net, motion, root, vel, context, cam_intrinsics, bbox, res, return_y_up)


def train_forward(
    net: WhamNetwork, x: torch.Tensor, init_kp: torch.Tensor, init_smpl: torch.Tensor, mask: torch.Tensor,
    init_root: torch.Tensor, cam_angvel: torch.Tensor, cam_intrinsics: torch.Tensor, bbox: torch.Tensor,
    res: torch.Tensor, features: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The official training forward (world y-down, refiner on, no teacher forcing), with gradients.

    The same loops as :func:`wham_forward` over the same modules; dropout acts when ``net`` is in
    training mode. ``features`` None is official stage 1: the integrator is skipped (the motion
    decoder reads the motion context); with features it runs under the official residual rule.
    Shapes as in :func:`wham_forward`. Besides the eval outputs (``trans_cam`` here (B, T, 3)) it
    returns ``kp3d`` (B, T, 31, 3) hip-centred camera-oriented joints of the posed body, ``kp3d_nn``
    (B, T, 51) the encoder's COCO-17 joints, ``full_kp2d`` (B, T, 31, 2) their full-image projection
    in pixels, ``R`` (B, T, 3, 3) the world-to-camera rotation implied by the unrefined world root
    (camera root R_t^T), ``feet_refined`` (B, T, 4, 3) the world feet of the refined rollout; no mesh.
    """
    T = x.shape[1]
    context, kp3d_nn = encode(net, x, mask, init_kp)
    root, vel = decode_trajectory(net, context, init_root, cam_angvel[:, :T])
    integrated = context if features is None else net.integrator(
        context, features, integrator_residual(features, "official"))
    motion = decode_motion(net, integrated, init_smpl)
    out = finish(net, motion, root, vel, context, cam_intrinsics, bbox, res, False, training=True)
    out["trans_cam"] = out["trans_cam"].reshape(*x.shape[:2], 3)
    out["kp3d_nn"] = kp3d_nn
    return out


@torch.no_grad()
def flip_eval_forward(
    net: WhamNetwork, inputs: dict[str, torch.Tensor], flipped_inputs: dict[str, torch.Tensor],
    return_y_up: bool = False, residual: str = "official",
) -> dict[str, torch.Tensor]:
    """The demo's ``FLIP_EVAL`` path: average the pose, betas and contact of a mirrored pass.

    ``inputs`` / ``flipped_inputs`` hold the official argument names. The root,
    velocity, camera and motion context come from the normal pass; the flipped
    pass contributes only through the averaged pose, betas and contact.
    """
    validate_inputs(**inputs)
    validate_inputs(**flipped_inputs)
    fi = flipped_inputs
    T = inputs["x"].shape[1]
    f_context, _ = encode(net, fi["x"], fi["mask"], fi["init_kp"])
    f_motion = decode_motion(
        net, net.integrator(f_context, fi["features"], integrator_residual(fi["features"], residual)), fi["init_smpl"])
    i = inputs
    context, _ = encode(net, i["x"], i["mask"], i["init_kp"])
    root, vel = decode_trajectory(net, context, i["init_root"], i["cam_angvel"][:, :T])
    motion = decode_motion(
        net, net.integrator(context, i["features"], integrator_residual(i["features"], residual)), i["init_smpl"])
    pose, betas, contact = average_flipped(motion.pose, motion.betas, motion.contact,
                                           f_motion.pose, f_motion.betas, f_motion.contact)
    averaged = MotionOutputs(pose, betas, motion.cam, contact)
    return finish(net, averaged, root, vel, context, i["cam_intrinsics"], i["bbox"], i["res"], return_y_up)

