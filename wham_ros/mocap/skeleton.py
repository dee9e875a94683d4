"""A format-independent skeleton and motion, Euler angles and forward kinematics.

Convention (the BVH one, which ASF/AMC are converted to): every joint has a constant
``offset`` from its parent, expressed in the parent's frame; with all rotations at
identity every frame is aligned with the file's world axes (the *bind pose*). A joint's
rotation turns its children: ``G_j = G_parent(j) @ L_j`` and
``p_j = p_parent(j) + G_parent(j) @ offset_j``. End sites are joints without channels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Skeleton:
    """names (J,), parents (J,) with -1 for the root (parents precede children), offsets (J, 3) in file units."""

    names: tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray

    def index(self, name: str) -> int:
        return self.names.index(name)

    def subset(self, names: set[str]) -> tuple[Skeleton, np.ndarray]:
        """The skeleton of ``names`` and their ancestors, and the kept joints' old indices (K,)."""
        keep = set()
        for name in names:
            j = self.index(name)
            while j >= 0 and j not in keep:
                keep.add(j)
                j = int(self.parents[j])
        kept = np.array(sorted(keep))
        new = {int(old): k for k, old in enumerate(kept)}
        parents = np.array([new[int(self.parents[j])] if self.parents[j] >= 0 else -1 for j in kept])
        return Skeleton(tuple(self.names[j] for j in kept), parents, self.offsets[kept]), kept

    def bind_positions(self) -> np.ndarray:
        """Joint positions (J, 3) of the bind pose, root at the origin."""
        pos = np.zeros((len(self.names), 3))
        for j, p in enumerate(self.parents):
            if p >= 0:
                pos[j] = pos[p] + self.offsets[j]
        return pos


@dataclass
class Motion:
    """A clip on a skeleton.

    rotations (T, J, 3, 3) local joint rotations; root_position (T, 3) in file units;
    ``metres`` converts file units to metres (BVH files do not say: the rig table does).
    File axes are y up, as in every BVH and ASF/AMC file this reads.
    """

    skeleton: Skeleton
    rotations: np.ndarray
    root_position: np.ndarray
    fps: float
    metres: float
    source: str

    @property
    def num_frames(self) -> int:
        return int(self.rotations.shape[0])

    def restricted(self, names: set[str]) -> Motion:
        """The motion of ``names`` and their ancestors only (cheaper to resample and pose)."""
        skeleton, kept = self.skeleton.subset(names)
        return Motion(skeleton, self.rotations[:, kept], self.root_position, self.fps, self.metres, self.source)

    def global_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """World rotations (T, J, 3, 3) and positions (T, J, 3) in metres, file axes."""
        return forward_kinematics(self.skeleton, self.rotations, self.root_position * self.metres, self.metres)


def forward_kinematics(
    skeleton: Skeleton, rotations: np.ndarray, root_position: np.ndarray, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Global rotations (T, J, 3, 3) and positions (T, J, 3) from local rotations (T, J, 3, 3).

    ``root_position`` (T, 3) is already in output units; offsets are multiplied by ``scale``.
    """
    T, J = rotations.shape[:2]
    G = np.empty_like(rotations)
    P = np.empty((T, J, 3))
    offsets = skeleton.offsets * scale
    for j, p in enumerate(skeleton.parents):
        if p < 0:
            G[:, j] = rotations[:, j]
            P[:, j] = root_position
        else:
            G[:, j] = G[:, p] @ rotations[:, j]
            P[:, j] = P[:, p] + G[:, p] @ offsets[j]
    return G, P


def axis_rotations(axis: str, angles: np.ndarray) -> np.ndarray:
    """Rotations (..., 3, 3) about ``axis`` ('x', 'y' or 'z') by ``angles`` (...) in radians."""
    c, s = np.cos(angles), np.sin(angles)
    one, zero = np.ones_like(angles), np.zeros_like(angles)
    rows = {
        "x": ((one, zero, zero), (zero, c, -s), (zero, s, c)),
        "y": ((c, zero, s), (zero, one, zero), (-s, zero, c)),
        "z": ((c, -s, zero), (s, c, zero), (zero, zero, one)),
    }[axis.lower()]
    return np.stack([np.stack(r, -1) for r in rows], -2)


def euler_matrices(angles: np.ndarray, axes: str) -> np.ndarray:
    """Rotation matrices (..., 3, 3) from angles (..., k) in radians about ``axes`` (k letters).

    The result is ``R_axes[0] @ R_axes[1] @ ...``: the order in which BVH lists its
    rotation channels (a vector is turned about the last axis first).
    """
    out = np.broadcast_to(np.eye(3), (*angles.shape[:-1], 3, 3)).copy()
    for k, axis in enumerate(axes):
        out = out @ axis_rotations(axis, angles[..., k])
    return out
