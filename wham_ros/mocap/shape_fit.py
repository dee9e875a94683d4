"""Fit a body model's shape coefficients to a source skeleton's bone lengths.

The body's rest joints are linear in the shape (``body.rest_joint_basis``), so each
segment length is a smooth function of the betas; Gauss-Newton on the length errors
(metres) with a small ridge prior (betas have unit variance) and bounds of +-3 gives
the shape. Segment ends may be joints or midpoints of joints (the hip midpoint).
"""
from __future__ import annotations

import numpy as np

from wham_ros.mocap.rigs import SMPL_JOINT_NAMES

#: segments whose lengths are matched, by SMPL joint names; "hips" is the hip midpoint
SEGMENTS = (
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("left_ankle", "left_foot"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"), ("right_ankle", "right_foot"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("left_hip", "right_hip"), ("left_shoulder", "right_shoulder"), ("hips", "neck"), ("neck", "head"),
)
BETA_BOUND = 3.0


def _point_weights(name: str) -> np.ndarray:
    w = np.zeros(len(SMPL_JOINT_NAMES))
    if name == "hips":
        w[[SMPL_JOINT_NAMES.index("left_hip"), SMPL_JOINT_NAMES.index("right_hip")]] = 0.5
    else:
        w[SMPL_JOINT_NAMES.index(name)] = 1.0
    return w


def segment_lengths(points: dict[str, np.ndarray]) -> dict[tuple[str, str], float]:
    """Lengths of the :data:`SEGMENTS` whose ends are in ``points``: SMPL name -> (3,) position
    or (T, 3) track (then the median over frames)."""
    pts = dict(points)
    if "left_hip" in pts and "right_hip" in pts:
        pts["hips"] = 0.5 * (pts["left_hip"] + pts["right_hip"])
    return {(a, b): float(np.median(np.linalg.norm(pts[b] - pts[a], axis=-1)))
            for a, b in SEGMENTS if a in pts and b in pts}


def fit_betas(template: np.ndarray, dirs: np.ndarray, lengths: dict[tuple[str, str], float],
              prior: float = 1e-4, iterations: int = 30) -> np.ndarray:
    """Betas (B,) whose rest skeleton has the given segment lengths (metres).

    template (24, 3), dirs (24, 3, B): rest joints = template + dirs @ betas.
    """
    segs = list(lengths)
    W = np.stack([_point_weights(b) - _point_weights(a) for a, b in segs])      # (S, 24)
    base = W @ template                                                         # (S, 3)
    basis = np.einsum("sj,jcb->scb", W, dirs)                                   # (S, 3, B)
    target = np.array([lengths[s] for s in segs])
    B = dirs.shape[-1]
    betas = np.zeros(B)
    for _ in range(iterations):
        vec = base + basis @ betas
        norm = np.linalg.norm(vec, axis=1).clip(1e-9)
        residual = norm - target
        jac = np.einsum("sc,scb->sb", vec / norm[:, None], basis)
        step = np.linalg.solve(jac.T @ jac + prior * np.eye(B), -(jac.T @ residual + prior * betas))
        betas = np.clip(betas + step, -BETA_BOUND, BETA_BOUND)
        if np.abs(step).max() < 1e-6:
            break
    return betas
