"""What retargeting needs from a body model: rest joints for a shape, posed joints, feet and meshes.

Coordinates are SMPL's un-centred ones (the pelvis joint at its rest place, as in
AMASS), so world positions are these plus the clip's ``trans``.
"""
from __future__ import annotations

import numpy as np
import torch
from smplx.lbs import batch_rigid_transform

from wham_ros.model.body_model import BodyModel


def num_betas(body_model: BodyModel) -> int:
    return int(body_model.shapedirs.shape[-1])


def rest_joint_basis(body_model: BodyModel) -> tuple[np.ndarray, np.ndarray]:
    """Rest joints are linear in the shape: J(betas) = template (24, 3) + dirs (24, 3, B) @ betas."""
    with torch.no_grad():
        template = body_model.J_regressor @ body_model.v_template
        dirs = torch.einsum("jv,vcb->jcb", body_model.J_regressor, body_model.shapedirs)
    return template.double().numpy(), dirs.double().numpy()


def rest_joints(body_model: BodyModel, betas: np.ndarray) -> np.ndarray:
    """Rest-pose joints (24, 3) of the shape ``betas`` (B,)."""
    template, dirs = rest_joint_basis(body_model)
    return template + dirs @ np.asarray(betas, dtype=np.float64)


def _split(rotations: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    rot = torch.as_tensor(rotations, dtype=torch.float32)
    return rot[:, :1], rot[:, 1:]


def posed_joints(body_model: BodyModel, rotations: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """SMPL's 24 joints (T, 24, 3) for local rotations (T, 24, 3, 3), without the translation."""
    T = rotations.shape[0]
    J = torch.as_tensor(rest_joints(body_model, betas), dtype=torch.float64).expand(T, 24, 3)
    with torch.no_grad():
        posed, _ = batch_rigid_transform(torch.as_tensor(rotations, dtype=torch.float64), J.contiguous(),
                                         body_model.parents, dtype=torch.float64)
    return posed.numpy()


def posed_feet(body_model: BodyModel, rotations: np.ndarray, betas: np.ndarray, batch: int = 512) -> np.ndarray:
    """The four ``J_regressor_feet`` points (T, 4, 3) (left toe, left heel, right toe, right heel)."""
    out = []
    b = torch.as_tensor(np.asarray(betas), dtype=torch.float32)
    with torch.no_grad():
        for start in range(0, rotations.shape[0], batch):
            go, bp = _split(rotations[start:start + batch])
            res = body_model.get_joints(go, bp, b.expand(go.shape[0], -1))
            out.append((res.feet + res.offset[:, None]).double().numpy())
    return np.concatenate(out)


def posed_vertices(body_model: BodyModel, rotations: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """Mesh vertices (T, V, 3) for local rotations (T, 24, 3, 3)."""
    go, bp = _split(rotations)
    b = torch.as_tensor(np.asarray(betas), dtype=torch.float32).expand(go.shape[0], -1)
    with torch.no_grad():
        res = body_model.get_output(go, bp, b)
    return (res.vertices + res.offset[:, None]).double().numpy()
