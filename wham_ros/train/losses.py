"""The stage-1 loss of official WHAM (``lib/core/loss.py``, training facts 5), on :class:`Stage1Batch` targets.

total = loss_weight * sum of lambda * term over:

==============  =====================================================================  ==================
term            formula (every stage-1 label has confidence 1)                          lambda (config)
==============  =====================================================================  ==================
``2d``          mean_j w_j |u - u*| / (200 s_box): 31 full-image joints, px            ``joint2d``
``3d``          mean_j w_j |J - J*|: 31 joints, both centred on the COCO hips          ``joint3d``
``3d_nn``       the same on the encoder's COCO-17 joints                                ``joint3d``
``casc``        encoder COCO-17 vs the body's, weights w_j / 2, no detach               ``cascaded``
``pose``        mean_j omega_j mean_6 (p - p*)^2, 24 x row-6D, camera-frame root        ``pose``
``betas``       MSE of the per-frame shape                                              ``shape``
``contact``     MSE of the raw contact outputs where a label exists                     ``contact``
``root``        lambda_v L_v + lambda_r MSE(r_t, r*_t), decoder root and velocity       ``root_vel``, ``root_pose``
``root_ref``    the same for the refined root and velocity                              ``root_vel``, ``root_pose``
``camera``      MSE(6D R_hat, 6D R) + MSE(angvel(R_hat), cam_angvel[1:]) from epoch     ``camera``
                ``camera_loss_skip_epoch``; R_hat = camera root R_t^T (unrefined)
``sliding``     mean of |p_t - p_{t-1}| 1[c*_t > 0.5] over frames 1.. and the 4 feet     ``sliding``
``sliding_ref`` the same on the refined world feet                                      ``sliding``
==============  =====================================================================  ==================

The official config has no weight of its own for ``3d_nn``; it takes ``joint3d`` (not verified in the
facts sheet). w_j: COCO face 0.5, shoulders and hips 1.5, elbows, wrists, knees, ankles 4; the common 14 likewise
(neck and head top 0.5). omega_j: 0.1 for the pelvis, feet and hands, 1 elsewhere, over their mean.

Not here because stage 1 has no such labels (the official terms are exactly 0): the weak-perspective
crop 2D term (its labels are zeros with zero confidence) and the vertex term (``has_verts`` false).
The 3D term centres all 31 joints on the COCO hips: the official branch meant to re-centre the common
14 on their own hips never runs (facts 5.4), and the released weights were trained without it.

L_v (facts 5.4): with e_t the velocity error (m/frame), the sum over w in {1, 3, 9, 27} of the norms of
e summed over windows of w frames. ``tiled`` windows tile the T frames ([0, w), [w, 2w), ...). The
official code's windows start at m (not m w), overlap, and their number comes from the *batch size*
(at B = 64 the 1-frame windows cover frames 0-63 only; at B = 8 the 27-frame windows vanish), so
``official`` reproduces it, and ``tiled`` (the default) is what it was meant to be, independent of B.
L_v counts only samples with a contact label and a velocity label non-zero in every component (the
official test for a velocity label); L_r needs no such test, every stage-1 sample has its root.
"""
from __future__ import annotations

import torch

from wham_ros.geometry.rotations import matrix_to_rot6d
from wham_ros.train.config import LossConfig
from wham_ros.train.samples import Stage1Batch
from wham_ros.train.virtual_camera import camera_angvel

#: w_j for COCO-17 then the common 14 (R ankle, R knee, R hip, L hip, L knee, L ankle, R wrist, R elbow,
#: R shoulder, L shoulder, L elbow, L wrist, neck, head top)
KEYPOINT_WEIGHTS = torch.tensor([0.5] * 5 + [1.5, 1.5, 4, 4, 4, 4, 1.5, 1.5, 4, 4, 4, 4]
                                + [4, 4, 1.5, 1.5, 4, 4, 4, 4, 1.5, 1.5, 4, 4, 0.5, 0.5])
_OMEGA = torch.tensor([0.1 if j in (0, 10, 11, 22, 23) else 1.0 for j in range(24)])
POSE_WEIGHTS = _OMEGA / _OMEGA.mean()
HIPS = (11, 12)
VELOCITY_WINDOWS = (1, 3, 9, 27)
CONTACT_THRESHOLD = 0.5


def keypoint_3d_error(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """mean_(b, t, j) w_j |pred - target| of joints (B, T, J, 3), both centred on the COCO hips."""
    centre = lambda j: j - j[..., list(HIPS), :].mean(-2, keepdim=True)
    return (weights * (centre(pred) - centre(target)).norm(dim=-1)).mean()


def velocity_error(err: torch.Tensor, mode: str) -> torch.Tensor:
    """Per-sample L_v (B,) of velocity errors (B, T, 3): ``tiled`` or ``official`` windows (module docstring)."""
    B, T = err.shape[:2]
    total = err.new_zeros(B)
    if mode == "tiled":
        for w in VELOCITY_WINDOWS:
            n = T // w
            if n:
                total = total + err[:, : n * w].reshape(B, n, w, 3).sum(2).norm(dim=-1).sum(1)
        return total
    if mode != "official":
        raise ValueError(f"unknown velocity windows {mode!r}")
    cum = torch.cat((err.new_zeros(B, 1, 3), err.cumsum(1)), 1)
    for w in VELOCITY_WINDOWS:
        m = torch.arange(B // w)
        start, end = m.clamp_max(T), ((m + 1) * w).clamp_max(T)
        start = torch.minimum(start, end)
        total = total + (cum[:, end] - cum[:, start]).norm(dim=-1).sum(1)
    return total


def root_loss(root: torch.Tensor, vel: torch.Tensor, batch: Stage1Batch, cfg: LossConfig) -> torch.Tensor:
    """lambda_v L_v + lambda_r L_r for world roots (B, T, 6) (frames 1..) and root-frame velocities (B, T, 3)."""
    has_vel = (batch.contact != -1).flatten(1).any(1) & (batch.vel_root != 0).flatten(1).all(1)
    l_v = velocity_error(vel - batch.vel_root, cfg.velocity_windows)[has_vel].mean() if has_vel.any() \
        else vel.new_zeros(())
    l_r = ((root - batch.pose_root) ** 2).mean()
    return cfg.root_vel * l_v + cfg.root_pose * l_r


def sliding_loss(feet: torch.Tensor, contact: torch.Tensor) -> torch.Tensor:
    """Mean over (b, t >= 1, foot) of the foot's step |p_t - p_{t-1}| where the label says planted (> 0.5)."""
    step = (feet[:, 1:] - feet[:, :-1]).norm(dim=-1)
    return (step * (contact[:, 1:] > CONTACT_THRESHOLD)).mean()


class Stage1Loss:
    """Weighted stage-1 loss; call with the :func:`~wham_ros.model.forward.train_forward` outputs."""

    def __init__(self, cfg: LossConfig) -> None:
        self.cfg = cfg

    def __call__(self, pred: dict[str, torch.Tensor], batch: Stage1Batch, epoch: int
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        """(total loss, each weighted term as a float, summing to the total)."""
        cfg = self.cfg
        B, T = batch.x.shape[:2]
        w = KEYPOINT_WEIGHTS.to(batch.x)
        terms: dict[str, tuple[float, torch.Tensor]] = {}
        d2 = (pred["full_kp2d"] - batch.full_kp2d).norm(dim=-1) / (200 * batch.bbox[..., 2:3])
        terms["2d"] = cfg.joint2d, (w * d2).mean()
        terms["3d"] = cfg.joint3d, keypoint_3d_error(pred["kp3d"], batch.kp3d, w)
        kp_nn = pred["kp3d_nn"].reshape(B, T, 17, 3)
        terms["3d_nn"] = cfg.joint3d, keypoint_3d_error(kp_nn, batch.kp3d[:, :, :17], w[:17])
        if cfg.cascaded:
            terms["casc"] = cfg.cascaded, keypoint_3d_error(kp_nn, pred["kp3d"][:, :, :17], 0.5 * w[:17])
        pose_err = ((pred["pose"].reshape(B, T, 24, 6) - batch.pose) ** 2).mean(-1)
        terms["pose"] = cfg.pose, (POSE_WEIGHTS.to(pose_err) * pose_err).mean()
        terms["betas"] = cfg.shape, ((pred["betas"] - batch.betas) ** 2).mean()
        labelled = batch.contact != -1
        terms["contact"] = cfg.contact, ((pred["contact"] - batch.contact)[labelled] ** 2).mean() \
            if labelled.any() else pred["contact"].new_zeros(())
        terms["root"] = 1.0, root_loss(pred["pose_root"][:, 1:], pred["vel_root"], batch, cfg)
        terms["root_ref"] = 1.0, root_loss(pred["poses_root_r6d_refined"][:, 1:], pred["vel_root_refined"],
                                           batch, cfg)
        if epoch >= cfg.camera_loss_skip_epoch:
            R_hat = pred["R"]
            terms["camera"] = cfg.camera, ((matrix_to_rot6d(R_hat) - matrix_to_rot6d(batch.R)) ** 2).mean() + \
                ((camera_angvel(R_hat) - batch.cam_angvel[:, 1:]) ** 2).mean()
        terms["sliding"] = cfg.sliding, sliding_loss(pred["feet"], batch.contact)
        terms["sliding_ref"] = cfg.sliding, sliding_loss(pred["feet_refined"], batch.contact)
        weighted = {k: cfg.loss_weight * lam * t for k, (lam, t) in terms.items()}
        total = torch.stack(list(weighted.values())).sum()
        return total, {k: float(v.detach()) for k, v in weighted.items()}
