"""Retarget a source motion onto SMPL's 24-joint tree in WHAM's gravity-aligned y-down world.

For every SMPL joint (the table in :mod:`wham_ros.mocap.rigs`):

1. **Rest-pose alignment.** A frame built from the aim bone and the side direction on
   the source's bind pose, and the same frame on the body's rest pose, give a constant
   rotation A = F_source F_body^T that maps the body's rest bone onto the source's bind bone.
2. **Global-rotation transfer.** The body joint's world rotation is W G_source(t) A, with
   W the fixed turn from the file's y-up world into WHAM's y-down world (``Y_UP_TO_WHAM``).
3. **Direction fix.** Where an SMPL bone spans more than one source bone (spine, neck,
   HDM05's two-bone forearm), the transferred bone can lean off the source points; a
   swing (no twist) turns it onto them, so joint positions follow the source.
4. **Twist folding.** A knee or ankle twisted by more than 90 degrees, an elbow or wrist by
   more than 135 degrees (forearm rotation spans about 170 degrees in all), about its own
   bone relative to its parent is not anatomical; it appears where a source's solver
   flipped a bone frame by 180 degrees about the bone and undid it further down (HDM05's
   wrist bones in some takes). Turning that joint by 180 degrees about its own bone keeps
   every joint position and folds the twist back (:func:`fold_twists`).

Local rotations are then parent^T child. The root translation makes the body's hip
midpoint follow the source's, scaled by the ratio of leg lengths (body / source), so
the floor (y = 0 in both) stays at y = 0 and strides fit the body's legs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from wham_ros.errors import MocapError
from wham_ros.geometry.rotations import matrix_to_quaternion
from wham_ros.mocap.rigs import SMPL_JOINT_NAMES, Rig
from wham_ros.mocap.skeleton import Motion

#: source world (y up) -> WHAM world (y down, the AMASS z-up data turned by Rx(90) the same way): Rx(pi)
Y_UP_TO_WHAM = np.diag([1.0, -1.0, -1.0])
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
_AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}
#: (joint, the joint its bone points to, largest twist in degrees), parents first: knees, ankles, elbows, wrists
TWIST_LIMITED = ((4, 7, 90), (5, 8, 90), (7, 10, 90), (8, 11, 90), (18, 20, 135), (19, 21, 135), (20, 22, 135),
                 (21, 23, 135))


def axis_vector(axis: str) -> np.ndarray:
    """'+x', '-z', ... as a unit vector."""
    return (-1.0 if axis[0] == "-" else 1.0) * np.array(_AXES[axis[-1]])


def frame_from(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Orthonormal frame (3, 3), columns: primary, secondary made orthogonal to it, their cross product."""
    u = primary / np.linalg.norm(primary)
    v = secondary - (secondary @ u) * u
    n = np.linalg.norm(v)
    if n < 1e-6:
        raise ValueError("side direction is parallel to the bone")
    v = v / n
    return np.stack((u, v, np.cross(u, v)), axis=1)


def swing(current: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Smallest rotations (T, 3, 3) turning unit vectors ``current`` (T, 3) onto ``wanted`` (T, 3)."""
    axis = np.cross(current, wanted)
    s = np.linalg.norm(axis, axis=1)
    c = np.einsum("tk,tk->t", current, wanted)
    # Rodrigues with K = [axis]_x / s: R = I + K s + K^2 (1 - c); K^2 (1 - c) / s^2 is well defined
    K = np.zeros((len(c), 3, 3))
    K[:, 0, 1], K[:, 0, 2], K[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    K = K - K.transpose(0, 2, 1)
    factor = np.where(s > 1e-9, (1 - c) / np.maximum(s, 1e-9) ** 2, 0.5)
    return np.eye(3) + K + (K @ K) * factor[:, None, None]


def half_turns(axes: np.ndarray) -> np.ndarray:
    """Rotations (N, 3, 3) by 180 degrees about unit ``axes`` (N, 3): 2 a a^T - I."""
    return 2 * axes[:, :, None] * axes[:, None, :] - np.eye(3)


def twist_angle(rotations: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Twist (T,) in (-pi, pi] of rotations (T, 3, 3) about the unit ``axis`` (3,) (swing-twist split)."""
    q = matrix_to_quaternion(torch.as_tensor(rotations)).numpy()
    return 2 * np.arctan2(q[:, 1:] @ axis, q[:, 0])


def fold_twists(glob: np.ndarray, body_rest: np.ndarray) -> int:
    """Fold twists beyond 90 degrees in place (see the module docstring); returns the joint-frames changed.

    glob (T, 24, 3, 3) world rotations of the SMPL joints; body_rest (24, 3) rest joints.
    """
    changed = 0
    for joint, tip, limit in TWIST_LIMITED:
        bone = body_rest[tip] - body_rest[joint]
        bone = bone / np.linalg.norm(bone)
        local = glob[:, SMPL_PARENTS[joint]].transpose(0, 2, 1) @ glob[:, joint]
        flip = np.abs(twist_angle(local, bone)) > np.radians(limit)
        if flip.any():
            glob[flip, joint] = glob[flip, joint] @ half_turns(np.broadcast_to(bone, (int(flip.sum()), 3)))
            changed += int(flip.sum())
    return changed


@dataclass
class Retargeted:
    """A clip on the body: rotations (T, 24, 3, 3) local (root in WHAM's world), trans (T, 3) SMPL transl
    (metres), ``scale`` = body leg length / source leg length, ``source_points`` (T, P, 3) the source's
    ``rig.positions`` joints scaled into WHAM's world (in the order of ``point_names``),
    ``folded`` the number of joint-frames :func:`fold_twists` turned."""

    rotations: np.ndarray
    trans: np.ndarray
    scale: float
    source_points: np.ndarray
    point_names: tuple[str, ...]
    folded: int


def _index(motion: Motion, name: str) -> int:
    try:
        return motion.skeleton.index(name)
    except ValueError:
        raise MocapError(f"{motion.source}: joint {name!r} (rig table) is not in the skeleton") from None


def leg_length(points: dict[str, np.ndarray]) -> float:
    """Mean of the two hip-knee-ankle chain lengths from SMPL-named points (3,) or tracks (T, 3) (median)."""
    total = 0.0
    for side in ("left", "right"):
        hip, knee, ankle = (points[f"{side}_{j}"] for j in ("hip", "knee", "ankle"))
        total += np.median(np.linalg.norm(knee - hip, axis=-1)) + np.median(np.linalg.norm(ankle - knee, axis=-1))
    return float(total / 2)


def source_positions(motion: Motion, rig: Rig) -> dict[str, np.ndarray]:
    """Tracks (T, 3) of the ``rig.positions`` joints, metres, file axes, by SMPL name.

    Lengths between joints that are not neighbours (shoulder width, hips to neck) are
    only meaningful on real frames, not on a bind pose like the CC rig's.
    """
    P = motion.global_pose()[1]
    return {smpl: P[:, _index(motion, src)] for smpl, src in rig.positions.items()}


def alignment(motion: Motion, rig: Rig, body_rest: np.ndarray) -> np.ndarray:
    """Per SMPL joint the constant A (24, 3, 3) with body rest bone -> source bind bone."""
    bind = motion.skeleton.bind_positions()
    out = np.empty((24, 3, 3))
    for j, name in enumerate(SMPL_JOINT_NAMES):
        spec = rig.joints[name]
        a, b = (_index(motion, n) for n in spec.aim)
        if isinstance(spec.side_source, tuple):
            c, d = (_index(motion, n) for n in spec.side_source)
            side_src = bind[d] - bind[c]
        else:
            side_src = axis_vector(spec.side_source or spec.side)
        if isinstance(spec.target, tuple):
            ta, tb = (SMPL_JOINT_NAMES.index(n) for n in spec.target)
            aim_body = body_rest[tb] - body_rest[ta]
        else:
            aim_body = axis_vector(spec.target)
        try:
            F_src = frame_from(bind[b] - bind[a], side_src)
            F_body = frame_from(aim_body, axis_vector(spec.side))
        except ValueError:
            raise MocapError(f"{motion.source}: rig {rig.name}, {name}: the side direction is parallel to the "
                             f"bone {spec.aim} on the bind pose or the body's rest pose") from None
        out[j] = F_src @ F_body.T
    return out


def retarget(motion: Motion, rig: Rig, body_rest: np.ndarray) -> Retargeted:
    """Move ``motion`` onto the body whose rest joints (24, 3) are ``body_rest``."""
    G, P = motion.global_pose()
    G = Y_UP_TO_WHAM @ G
    P = P @ Y_UP_TO_WHAM.T
    A = alignment(motion, rig, body_rest)
    glob = np.empty((motion.num_frames, 24, 3, 3))
    for j, name in enumerate(SMPL_JOINT_NAMES):
        spec = rig.joints[name]
        glob[:, j] = G[:, _index(motion, spec.frame)] @ A[j]
        if isinstance(spec.target, tuple):
            ta, tb = (SMPL_JOINT_NAMES.index(n) for n in spec.target)
            rest = body_rest[tb] - body_rest[ta]
            current = glob[:, j] @ (rest / np.linalg.norm(rest))
            a, b = (_index(motion, n) for n in spec.aim)
            wanted = P[:, b] - P[:, a]
            wanted /= np.linalg.norm(wanted, axis=1, keepdims=True).clip(1e-9)
            glob[:, j] = swing(current, wanted) @ glob[:, j]
    folded = fold_twists(glob, body_rest)
    local = glob.copy()
    for j, p in enumerate(SMPL_PARENTS):
        if p >= 0:
            local[:, j] = glob[:, p].transpose(0, 2, 1) @ glob[:, j]

    body_points = {n: body_rest[SMPL_JOINT_NAMES.index(n)] for n in rig.positions}
    names = tuple(rig.positions)
    points = np.stack([P[:, _index(motion, rig.positions[n])] for n in names], axis=1)
    scale = leg_length(body_points) / leg_length({n: points[:, k] for k, n in enumerate(names)})
    points = scale * points
    hips = [names.index("left_hip"), names.index("right_hip")]
    source_hips = points[:, hips].mean(1)
    rest_hips = body_rest[[1, 2]].mean(0)
    body_hips = body_rest[0] + glob[:, 0] @ (rest_hips - body_rest[0])
    return Retargeted(local, source_hips - body_hips, float(scale), points, names, folded)
