"""Checks of a retargeted clip against its source: joint distances, foot penetration and skating.

* **Placement**: body joints against the source joints scaled by the leg-length ratio
  (what the world sees; includes every difference of proportions the shape fit leaves).
* **After bone-length scaling**: body joints against the source skeleton rebuilt with the
  body's bone lengths (from the hip midpoint, each source bone scaled by the body's rest
  length over the source's median length; the torso and shoulder "bones" span several
  source bones and bend, and scale like the others): how well the pose follows, whatever
  the proportions.
* **Feet**: for the ankle and toe joints of the source and of the body, depth below their
  own resting height (the median height where the joint stands still) and horizontal
  speed while the source joint is planted (within 2 cm of its resting height); for the
  body's mesh soles (the feet regressor points), depth below the floor and height above it
  while in contact.
Heights are -y of WHAM's y-down world.
"""
from __future__ import annotations

import numpy as np

from wham_ros.mocap.contact import foot_speed
from wham_ros.mocap.rigs import SMPL_JOINT_NAMES

#: (parent, child) edges, by SMPL name, rebuilding the checked joints from the hip midpoint
CHAIN = (
    ("hips", "left_hip"), ("hips", "right_hip"), ("left_hip", "left_knee"), ("right_hip", "right_knee"),
    ("left_knee", "left_ankle"), ("right_knee", "right_ankle"), ("left_ankle", "left_foot"),
    ("right_ankle", "right_foot"), ("hips", "neck"), ("neck", "head"), ("neck", "left_shoulder"),
    ("neck", "right_shoulder"), ("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow"),
    ("left_elbow", "left_wrist"), ("right_elbow", "right_wrist"),
)
FOOT_JOINTS = ("left_ankle", "left_foot", "right_ankle", "right_foot")
PLANTED_BAND = 0.02   # m above the resting height
STILL_SPEED = 0.005   # m/frame: a joint this slow stands still


def _named(points: np.ndarray, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    out = {n: points[:, k] for k, n in enumerate(names)}
    out["hips"] = 0.5 * (out["left_hip"] + out["right_hip"])
    return out


def body_points(joints: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """The body's joints (T, P, 3) matching ``names`` from its 24 joints (T, 24, 3)."""
    return joints[:, [SMPL_JOINT_NAMES.index(n) for n in names]]


def rebuilt_source(source: np.ndarray, names: tuple[str, ...], body_rest: np.ndarray, lift: float = 0.0
                   ) -> np.ndarray:
    """The source joints (T, P, 3) rebuilt along :data:`CHAIN` with the body's rest bone lengths,
    from the source's hip midpoint raised by ``lift`` (m, the ground offset: the body's foot height
    is one more of its lengths)."""
    src = _named(source, names)
    rest = _named(body_points(body_rest[None], names), names)
    out = {"hips": src["hips"] + np.array([0.0, lift, 0.0])}
    for parent, child in CHAIN:
        if child in src:
            bone = src[child] - src[parent]
            ratio = np.linalg.norm(rest[child] - rest[parent]) / np.median(np.linalg.norm(bone, axis=-1))
            out[child] = out[parent] + ratio * bone
    return np.stack([out[n] for n in names], axis=1)


def joint_distances(body: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Distances (T, P) between matching points (T, P, 3)."""
    return np.linalg.norm(body - source, axis=-1)


def resting_height(points: np.ndarray) -> np.ndarray:
    """Per point (K,) the median height where it stands still (the lowest 5 % if it never does)."""
    h = -points[..., 1]
    still = foot_speed(points) < STILL_SPEED
    return np.array([np.median(h[still[:, k], k]) if still[:, k].any() else np.percentile(h[:, k], 5)
                     for k in range(h.shape[1])])


def foot_figures(source_feet: np.ndarray, body_feet: np.ndarray, fps: float) -> dict[str, np.ndarray]:
    """Per-frame foot figures for the source's and the body's foot joints (T, 4, 3).

    Returns ``depth_source`` / ``depth_body`` (T,) the deepest joint below its resting height (m),
    and ``skate_source`` / ``skate_body`` (N,) horizontal speeds (m/s) of the joints at the
    (frame, joint) pairs where the source joint is planted.
    """
    out = {}
    planted = (-source_feet[..., 1]) < resting_height(source_feet) + PLANTED_BAND
    for name, feet in (("source", source_feet), ("body", body_feet)):
        out[f"depth_{name}"] = np.clip(resting_height(feet) - (-feet[..., 1]), 0, None).max(axis=1)
        step = np.zeros(feet.shape[:2])
        step[1:] = np.linalg.norm((feet[1:] - feet[:-1])[..., [0, 2]], axis=-1)
        out[f"skate_{name}"] = step[planted] * fps
    return out


def sole_figures(soles: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Mesh soles (T, 4, 3) against the floor: ``penetration`` (T,) depth of the lowest sole point
    below y = 0 (m), ``float`` (N,) height of the lowest point in frames with contact (m)."""
    lowest = (-soles[..., 1]).min(axis=1)
    return {"penetration": np.clip(-lowest, 0, None), "float": lowest[(labels > 0.5).any(axis=1)]}
