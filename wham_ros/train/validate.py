"""Validation on held-out subjects: whole clips seen through fixed virtual cameras, official metrics.

Each held-out clip of at least ``val.min_frames`` frames is one sequence, built once by the training
sample builder at the clip's own speed (frame 0 is the init frame), with draws (body yaw, shape and init
noise, camera, keypoint noise, masks, boxes) fixed by ``val.seed`` and the clip's position; as in
training, 75 % of the cameras move, spread over the clip. The network runs in eval mode on the
training forward without features (stage 1), with the true ``init_root`` (gravity-aligned world, as the
EMDB evaluation) and the true ``cam_angvel`` (a perfect gyro).

Local metrics use the 14 common joints (``J_regressor_wham`` rows 17-30, the LSP/J14 set of the 3DPW
protocol) on their hip midpoint; world metrics use SMPL's 24 kinematic joints and the body's foot vertices
(:func:`~wham_ros.train.metrics.foot_vertices`), the prediction placed by its refined root and
trajectory. RTE counts sequences whose true path is at least 1 m: on a squat's few centimetres the ratio
says nothing. Every metric is a mean over frames pooled across sequences.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from smplx.lbs import lbs

from wham_ros.geometry.rotations import rot6d_to_matrix
from wham_ros.model.body_model import BodyModel
from wham_ros.model.forward import train_forward
from wham_ros.model.network import WhamNetwork
from wham_ros.train import metrics
from wham_ros.train.clips import MotionClip
from wham_ros.train.config import AugmentConfig
from wham_ros.train.keypoint_noise import NOISE_TABLE
from wham_ros.train.samples import Stage1Batch, Window, build_batch

COMMON = slice(17, 31)
COMMON_HIPS = (2, 3)
RTE_MIN_PATH = 1.0
METRICS = ("mpjpe", "pa_mpjpe", "w_mpjpe100", "wa_mpjpe100", "rte", "jitter", "foot_sliding")


@dataclass
class ValSequence:
    clip: str
    batch: Stage1Batch


def validation_set(body_model: BodyModel, clips: list[MotionClip], aug: AugmentConfig, min_frames: int,
                   seed: int, noise_table: torch.Tensor = NOISE_TABLE) -> list[ValSequence]:
    """One sequence per held-out clip of at least ``min_frames`` frames, deterministic in ``seed``."""
    out = []
    for i, clip in enumerate(clips):
        if clip.frames < max(min_frames, 3):
            continue
        gen = torch.Generator().manual_seed(seed * 1_000_003 + i)
        batch = build_batch(body_model, clips, [Window(i, 0, clip.frames)], gen, aug, clip.frames, speed=False,
                            noise_table=noise_table)
        out.append(ValSequence(clip.id, batch))
    return out


def world_points(body_model: BodyModel, root: torch.Tensor, body_pose: torch.Tensor, betas: torch.Tensor,
                 trans: torch.Tensor, feet_ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """SMPL's 24 joints (N, 24, 3) and the foot vertices (N, 4, 3) of bodies placed with their hip midpoint
    at ``trans`` (N, 3); root (N, 3, 3) world orientation, body_pose (N, 23, 3, 3), betas (N, 10)."""
    m = body_model
    verts, joints = lbs(betas, torch.cat((root[:, None], body_pose), 1), m.v_template, m.shapedirs, m.posedirs,
                        m.J_regressor, m.parents, m.lbs_weights, pose2rot=False)
    hip = torch.einsum("jv,nvc->njc", m.J_regressor_wham[[11, 12]], verts).mean(1, keepdim=True)
    place = trans[:, None] - hip
    return joints + place, verts[:, feet_ids] + place


#: what a predictor returns for one sequence (batch of 1, T frames): kp3d (1, T, 31, 3) hip-centred camera-oriented
#: joints, pose (1, T, 24, 6) 6D with the camera-frame root, poses_root_world (1, T, 3, 3), betas (1, T, 10),
#: trans_world (1, T, 3) the hip path in the world; :func:`train_forward` returns them among its outputs
Predictor = Callable[[Stage1Batch], dict[str, torch.Tensor]]


def network_predictor(net: WhamNetwork) -> Predictor:
    """The network's own predictions: the stage-1 training forward (no features) on the sequence's inputs."""
    return lambda b: train_forward(net, **b.inputs())


def pooled_metrics(body_model: BodyModel, predict: Predictor, sequences: list[ValSequence]
                   ) -> dict[str, list[torch.Tensor]]:
    """Each metric's per-frame values over ``sequences`` for the predictions of ``predict``.

    The predictions and the ground truth are posed on ``body_model`` (the network's ``smpl``), so any
    predictor, learnt or not, is measured by the same code.
    """
    feet_ids = metrics.foot_vertices(body_model.J_regressor_feet)
    pooled: dict[str, list[torch.Tensor]] = {k: [] for k in METRICS}
    for seq in sequences:
        b = seq.batch
        out = predict(b)
        T = b.x.shape[1]
        pred_local, true_local = out["kp3d"][0, :, COMMON], b.kp3d[0, :, COMMON]
        pooled["mpjpe"].append(metrics.mpjpe(pred_local, true_local, COMMON_HIPS))
        pooled["pa_mpjpe"].append(metrics.pa_mpjpe(pred_local, true_local))
        pose = rot6d_to_matrix(out["pose"][0].reshape(T, 24, 6))
        pred_j, pred_f = world_points(body_model, out["poses_root_world"][0], pose[:, 1:], out["betas"][0],
                                      out["trans_world"][0], feet_ids)
        true_pose = rot6d_to_matrix(b.pose[0])
        true_j, true_f = world_points(body_model, rot6d_to_matrix(b.pose_root[0]), true_pose[:, 1:], b.betas[0],
                                      b.trans_world[0], feet_ids)
        pooled["w_mpjpe100"].append(metrics.world_mpjpe(pred_j, true_j, 2))
        pooled["wa_mpjpe100"].append(metrics.world_mpjpe(pred_j, true_j, None))
        path = b.trans_world[0]
        if (path[1:] - path[:-1]).norm(dim=-1).sum() >= RTE_MIN_PATH:
            pooled["rte"].append(metrics.rte(out["trans_world"][0], path))
        if T > 3:
            pooled["jitter"].append(metrics.jitter(pred_j))
        pooled["foot_sliding"].append(metrics.foot_sliding(pred_f, true_f))
    return pooled


def pooled_means(pooled: dict[str, list[torch.Tensor]]) -> dict[str, float]:
    """Each metric's mean over its frames pooled across sequences (NaN where it has none)."""
    return {k: float(torch.cat(v).mean()) if v and sum(x.numel() for x in v) else float("nan")
            for k, v in pooled.items()}


@torch.no_grad()
def evaluate(net: WhamNetwork, sequences: list[ValSequence]) -> dict[str, float]:
    """The metrics of :data:`METRICS` (mm; RTE in %; jitter in 10 m/s^3) over ``sequences``."""
    was_training = net.training
    net.eval()
    try:
        pooled = pooled_metrics(net.smpl, network_predictor(net), sequences)
    finally:
        net.train(was_training)
    return pooled_means(pooled)


#: display name and unit of each metric of :data:`METRICS`
NAMES = {"mpjpe": ("MPJPE", "mm"), "pa_mpjpe": ("PA-MPJPE", "mm"), "w_mpjpe100": ("W-MPJPE100", "mm"),
         "wa_mpjpe100": ("WA-MPJPE100", "mm"), "rte": ("RTE", "%"), "jitter": ("jitter", "10 m/s^3"),
         "foot_sliding": ("foot sliding", "mm")}


def summary(values: dict[str, float]) -> str:
    """One line: 'PA-MPJPE 61.2 mm, ...'."""
    return ", ".join(f"{NAMES[k][0]} {v:.1f} {NAMES[k][1]}" if np.isfinite(v) else f"{NAMES[k][0]} -"
                     for k, v in values.items())
