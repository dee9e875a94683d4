"""Resample a motion to a new frame rate (WHAM trains at 30 fps)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from wham_ros.geometry.rotations import matrix_to_quaternion, quaternion_to_matrix
from wham_ros.mocap.skeleton import Motion


def resample(motion: Motion, fps: float = 30.0) -> Motion:
    """Frames at t = n / fps over the clip's duration.

    A whole multiple of the new rate keeps every k-th frame; otherwise rotations are
    interpolated as normalised quaternion blends between the two nearest source frames
    (at 60-120 fps neighbours differ by a few degrees, where this equals slerp to well
    under 0.01 degree) and positions linearly.
    """
    T = motion.num_frames
    duration = (T - 1) / motion.fps
    count = int(np.floor(duration * fps + 1e-6)) + 1
    at = np.arange(count) * motion.fps / fps
    if np.allclose(at, np.round(at), atol=1e-9):
        keep = np.round(at).astype(int)
        return replace(motion, rotations=motion.rotations[keep], root_position=motion.root_position[keep],
                       fps=float(fps))
    lo = np.minimum(np.floor(at).astype(int), T - 1)
    hi = np.minimum(lo + 1, T - 1)
    w = (at - lo)[:, None]
    q = matrix_to_quaternion(torch.as_tensor(motion.rotations)).numpy()          # (T, J, 4)
    # one hemisphere along time, so neighbours blend the short way
    sign = np.sign(np.einsum("tjk,tjk->tj", q[1:], q[:-1]))
    sign[sign == 0] = 1
    q[1:] *= np.cumprod(sign, axis=0)[..., None]
    blended = (1 - w[..., None]) * q[lo] + w[..., None] * q[hi]
    rotations = quaternion_to_matrix(torch.as_tensor(blended)).numpy()
    root = (1 - w) * motion.root_position[lo] + w * motion.root_position[hi]
    return replace(motion, rotations=rotations, root_position=root, fps=float(fps))
