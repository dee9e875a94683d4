"""The official evaluation metrics (training facts 6.2, 7), body-model agnostic. Lengths in metres in, mm out.

- MPJPE / PA-MPJPE: camera-frame joints aligned on their hip midpoint / per-frame similarity Procrustes.
- W-MPJPE100 / WA-MPJPE100: world joints in 100-frame chunks, each aligned by a similarity (with scale,
  Umeyama) fitted on the chunk's first two frames / on the whole chunk.
- RTE (%): the root path rigidly aligned (no scale) over the whole sequence, mean error over the true
  path's length.
- Jitter: |J_{t+3} - 3 J_{t+2} + 3 J_{t+1} - J_t| 30^3 of the predicted world joints, in 10 m/s^3.
- Foot sliding (mm): on foot vertices where the true vertex moves < 1 cm between frames, the predicted
  vertex's displacement over the same frame pair.
"""
from __future__ import annotations

import torch

FPS = 30.0
#: EMDB's SMPL foot vertices; other bodies use their own (see :func:`foot_vertices`)
SMPL_FOOT_VERTICES = (3216, 3387, 6617, 6787)
SMPL_VERTICES = 6890
CHUNK = 100
CONTACT_STEP = 0.01


def umeyama(src: torch.Tensor, dst: torch.Tensor, scale: bool = True) -> tuple[torch.Tensor, ...]:
    """Similarity (s, R, t) minimising |s R src + t - dst| over points (..., N, 3) (reflection fixed)."""
    mu_s, mu_d = src.mean(-2, keepdim=True), dst.mean(-2, keepdim=True)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.transpose(-1, -2) @ xs / src.shape[-2]
    U, S, Vh = torch.linalg.svd(cov)
    d = torch.ones_like(S)
    d[..., -1] = torch.sign(torch.linalg.det(U @ Vh))
    R = U @ torch.diag_embed(d) @ Vh
    var = (xs ** 2).sum((-1, -2)) / src.shape[-2]
    s = (S * d).sum(-1) / var if scale else torch.ones_like(var)
    t = mu_d[..., 0, :] - s[..., None] * (R @ mu_s[..., 0, :, None])[..., 0]
    return s, R, t


def _apply(s: torch.Tensor, R: torch.Tensor, t: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    return s[..., None, None] * points @ R.transpose(-1, -2) + t[..., None, :]


def mpjpe(pred: torch.Tensor, target: torch.Tensor, hips: tuple[int, int]) -> torch.Tensor:
    """Per-frame mean joint error (N,) mm of joints (N, J, 3), each set centred on its ``hips`` midpoint."""
    centre = lambda j: j - j[:, list(hips)].mean(1, keepdim=True)
    return (centre(pred) - centre(target)).norm(dim=-1).mean(-1) * 1000


def pa_mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-frame joint error (N,) mm after a similarity Procrustes alignment of each frame."""
    s, R, t = umeyama(pred.double(), target.double())
    return (_apply(s, R, t, pred.double()) - target.double()).norm(dim=-1).mean(-1).float() * 1000


def world_mpjpe(pred: torch.Tensor, target: torch.Tensor, first_frames: int | None) -> torch.Tensor:
    """W-MPJPE100 (``first_frames`` = 2) or WA-MPJPE100 (None: the whole chunk) per frame (T,), mm,
    for world joints (T, J, 3) of one sequence."""
    errors = []
    for a in range(0, pred.shape[0], CHUNK):
        p, g = pred[a:a + CHUNK].double(), target[a:a + CHUNK].double()
        n = p.shape[0] if first_frames is None else min(first_frames, p.shape[0])
        s, R, t = umeyama(p[:n].reshape(-1, 3), g[:n].reshape(-1, 3))
        errors.append((_apply(s, R, t, p.reshape(-1, 3)).reshape(p.shape) - g).norm(dim=-1).mean(-1))
    return torch.cat(errors).float() * 1000


def rte(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Root translation error (T,) in % of root paths (T, 3): after a rigid alignment over the whole path,
    each frame's error over the true path's length."""
    s, R, t = umeyama(pred.double(), target.double(), scale=False)
    err = (_apply(s, R, t, pred.double()) - target.double()).norm(dim=-1)
    length = (target[1:] - target[:-1]).double().norm(dim=-1).sum()
    return (100 * err / length.clamp_min(1e-9)).float()


def jitter(joints: torch.Tensor) -> torch.Tensor:
    """Per-window jerk (T-3,) of world joints (T, J, 3), mean over joints, in 10 m/s^3."""
    jerk = joints[3:] - 3 * joints[2:-1] + 3 * joints[1:-2] - joints[:-3]
    return jerk.norm(dim=-1).mean(-1) * FPS ** 3 / 10


def foot_sliding(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Predicted displacements (K,) mm of foot vertices (T, 4, 3) over the frame pairs where the true one
    moves less than 1 cm."""
    still = (target[1:] - target[:-1]).norm(dim=-1) < CONTACT_STEP
    return (pred[1:] - pred[:-1]).norm(dim=-1)[still] * 1000


def foot_vertices(J_regressor_feet: torch.Tensor) -> list[int]:
    """Four foot vertices (left toe, left heel, right toe, right heel) of a body model.

    SMPL (6890 vertices): EMDB's 3216, 3387, 6617, 6787. Any other body: the vertex each
    ``J_regressor_feet`` row weighs most, i.e. the mesh point its foot point is made of.
    """
    if J_regressor_feet.shape[1] == SMPL_VERTICES:
        return list(SMPL_FOOT_VERTICES)
    return [int(i) for i in J_regressor_feet.argmax(1)]
