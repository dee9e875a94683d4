"""Accuracy on the held-out subjects, static and moving virtual cameras, against two baselines.

The held-out sequences are the validation sequences of :func:`~wham_ros.train.validate.validation_set`
(every held-out clip of at least ``val.min_frames`` frames, whole, draws fixed by ``val.seed``) built twice:
once with every camera static (``augment.moving_camera`` = 0) and once with every camera moving (= 1).
The camera builder draws the same numbers either way, so sequence i of both sets has the same body yaw,
shape and init noise, camera start pose, keypoint noise, masks and box scale: the two sets differ only in
the camera's motion. Three predictors are measured by the validation code (:func:`pooled_metrics`), so
every figure is the project's metric on the same frames:

- ``model``: the trained network on its normal inputs; ``cam_angvel`` is the true virtual camera rotation
  (a perfect gyro; on a static camera it is zero up to float rounding of R_t R_{t+1}^T, < 1e-5);
- ``baseline_a`` (:class:`MeanPoseBaseline`), no learning: the training clips' mean body pose, betas 0,
  upright and facing the camera, placed by the box (depth from its size, x/y from its centre), its
  camera-frame root and path taken into the world by the camera rotation the model is given, with the
  camera assumed not to translate (the model is not told the camera's translation either);
- ``baseline_b``: the same network with ``cam_angvel`` zeroed (it must equal ``model`` on static cameras).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import torch

from wham_ros.errors import WhamError
from wham_ros.geometry.rotations import axis_angle_to_matrix, matrix_to_rot6d, project_to_so3, rot_x
from wham_ros.model.body_model import BodyModel
from wham_ros.model.forward import train_forward
from wham_ros.model.network import WhamNetwork
from wham_ros.train.boxes import SCALE_RANGE
from wham_ros.train.clips import MotionClip, split_by_subject
from wham_ros.train.config import AugmentConfig, TrainConfig
from wham_ros.train.keypoint_noise import NOISE_TABLE, load_noise_table
from wham_ros.train.samples import Stage1Batch
from wham_ros.train.trainer import load_clips
from wham_ros.train.validate import (
    METRICS,
    NAMES,
    RTE_MIN_PATH,
    Predictor,
    ValSequence,
    network_predictor,
    pooled_means,
    pooled_metrics,
    validation_set,
)

#: camera sets: the probability that a sequence's camera moves
CAMERAS = {"static": 0.0, "moving": 1.0}
METHODS = ("model", "baseline_a", "baseline_b")
LABELS = {"model": "model (true cam_angvel)", "baseline_a": "baseline a (mean pose, box)",
          "baseline_b": "baseline b (cam_angvel = 0)"}
#: the issue's targets: PA-MPJPE at most this many mm, and this fraction below baseline a's
PA_MPJPE_MAX = 60.0
PA_BELOW_A = 0.40
#: RTE with the true camera rotation this fraction below baseline b's, on moving cameras
RTE_BELOW_B = 0.20
#: the box is the tight keypoint box scaled by sigma ~ U(0.8, 1.4) (boxes.py): its expected factor
MEAN_BOX_SCALE = sum(SCALE_RANGE) / 2
#: the box side in pixels is 200 s (the official [cx, cy, s] box)
BOX_SIDE = 200.0

#: results[camera][method][metric]
Results = dict[str, dict[str, dict[str, float]]]


# ---- the held-out sets -------------------------------------------------------------------------------------
def held_out_sets(body_model: BodyModel, clips: list[MotionClip], aug: AugmentConfig, min_frames: int, seed: int,
                  noise_table: torch.Tensor = NOISE_TABLE, limit: int | None = None) -> dict[str, list[ValSequence]]:
    """The ``static`` and ``moving`` sets of the held-out ``clips`` (see the module docstring).

    ``limit``: at most this many sequences per set, spread evenly over the clips (the same clips, with the
    same draws, in both sets; a subset of the full sets, not a re-draw).
    """
    sets = {}
    for camera, moving in CAMERAS.items():
        seqs = validation_set(body_model, clips, replace(aug, moving_camera=moving), min_frames, seed, noise_table)
        if limit is not None and limit < len(seqs):
            seqs = [seqs[i * len(seqs) // limit] for i in range(limit)]
        sets[camera] = seqs
    return sets


@dataclass
class HeldOut:
    """What the accuracy report needs from a training config."""

    subjects: list[str]
    train_clips: list[MotionClip]
    sets: dict[str, list[ValSequence]]


def held_out_from_config(cfg: TrainConfig, body_model: BodyModel, body_dir: str, limit: int | None = None
                         ) -> HeldOut:
    """The config's data split by its ``data.holdout_subjects`` and the held-out sets of its ``val`` section."""
    train, held = split_by_subject(load_clips(cfg, body_dir), cfg.data.holdout_subjects)
    if not held:
        raise WhamError("the config holds out no subject: there is nothing to measure accuracy on")
    table = load_noise_table(cfg.augment.noise_table) if cfg.augment.noise_table else NOISE_TABLE
    sets = held_out_sets(body_model, held, cfg.augment, cfg.val.min_frames, cfg.val.seed, table, limit)
    return HeldOut(list(cfg.data.holdout_subjects), train, sets)


def check_held_out(ckpt: Mapping, cfg: TrainConfig) -> str:
    """Refuse a trained model whose training data included one of the config's held-out subjects.

    A checkpoint written by the trainer holds its recipe; one without (an official checkpoint) cannot be
    checked, and the returned note says so.
    """
    recipe = ckpt.get("recipe") if isinstance(ckpt, Mapping) else None
    if not isinstance(recipe, Mapping):
        return "the model file holds no training recipe: that the subjects were held out is not checked"
    trained_without = set(recipe.get("data", {}).get("holdout_subjects", []))
    seen = sorted(set(cfg.data.holdout_subjects) - trained_without)
    if seen:
        raise WhamError(f"the model was trained on {seen}: they are not held out for it "
                        f"(its training held out {sorted(trained_without)})")
    return f"the model's training held out {sorted(trained_without)}"


# ---- baseline (a): no learning ----------------------------------------------------------------------------
def mean_body_pose(clips: list[MotionClip]) -> torch.Tensor:
    """Chordal mean (23, 3, 3) of each body joint's rotation (SMPL joints 1-23) over every frame of ``clips``:
    the mean rotation matrix projected onto SO(3). Pass the training clips only."""
    total = torch.zeros(23, 3, 3, dtype=torch.float64)
    frames = 0
    for clip in clips:
        total += axis_angle_to_matrix(torch.as_tensor(clip.pose[:, 1:], dtype=torch.float64)).sum(0)
        frames += clip.frames
    if not frames:
        raise WhamError("no training frames to take the mean pose of")
    return project_to_so3(total / frames).float()


class MeanPoseBaseline:
    """Baseline (a): one constant body, placed in each frame by that frame's box; no learning.

    - body pose: ``body_pose`` (23, 3, 3), the training clips' mean (:func:`mean_body_pose`); betas 0;
    - camera-frame root: upright and facing the camera, R_x(pi) (body up = image up, body front = -z).
      Not the training samples' mean camera-frame root: body and camera yaw are independent and uniform,
      so their relative yaw is uniform and the mean rotation matrix is rank-deficient (its projection
      onto SO(3) is arbitrary); facing the camera is the one choice that needs no data;
    - camera-frame hip: depth Z = f * MEAN_BOX_SCALE * e / (200 s), e the metric side of the body's
      keypoint box (the larger of its width and height), s the box scale (the box is 200 s px, the tight
      keypoint box times sigma, E[sigma] = 1.1); x, y: the box centre back-projected to depth Z, less the
      keypoint box centre's offset from the hip;
    - world: root R_t^T root_cam and hip path R_t^T t_t - R_0^T t_0 with R_t the true world->camera
      rotation (what the model's gyro input integrates from its initial root) and the camera's centre
      kept still, since the model is not given the camera's translation either. On a static camera this
      is the box track; a moving camera's own travel becomes its error.
    """

    def __init__(self, body_model: BodyModel, body_pose: torch.Tensor) -> None:
        self.body_pose = body_pose
        self.root_cam = rot_x(math.pi)
        body = body_model.regressed_points(self.root_cam[None, None], body_pose[None], torch.zeros(1, 10))
        self.joints = body.joints[0]                                     # (31, 3) hip-centred, camera axes
        coco = self.joints[:17]
        lo, hi = coco.min(0).values, coco.max(0).values
        self.extent = float((hi - lo)[:2].max())
        #: the keypoint box centre relative to the hip, in the image plane (x, y)
        self.box_centre = ((lo + hi) / 2)[:2]

    @classmethod
    def from_training(cls, body_model: BodyModel, train_clips: list[MotionClip]) -> MeanPoseBaseline:
        """The baseline with the mean pose of ``train_clips`` (the training split, never the held-out one)."""
        return cls(body_model, mean_body_pose(train_clips))

    def camera_translation(self, bbox: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        """Camera-frame hip (T, 3) from boxes (T, 3) [cx, cy, s] px and intrinsics K (3, 3)."""
        f, px, py = K[0, 0], K[0, 2], K[1, 2]
        z = f * MEAN_BOX_SCALE * self.extent / (BOX_SIDE * bbox[:, 2])
        x = (bbox[:, 0] - px) * z / f - self.box_centre[0]
        y = (bbox[:, 1] - py) * z / f - self.box_centre[1]
        return torch.stack((x, y, z), -1)

    def __call__(self, b: Stage1Batch) -> dict[str, torch.Tensor]:
        """The predictor outputs (:data:`~wham_ros.train.validate.Predictor`) for one sequence (batch of 1)."""
        T = b.x.shape[1]
        t_cam = self.camera_translation(b.bbox[0], b.cam_intrinsics[0, 0])
        R_cw = b.R[0].transpose(-1, -2)                                  # camera -> world, (T, 3, 3)
        centre = (R_cw @ t_cam[..., None])[..., 0]
        pose = matrix_to_rot6d(torch.cat((self.root_cam[None], self.body_pose), 0))
        return {
            "kp3d": self.joints.expand(1, T, -1, 3),
            "pose": pose.expand(1, T, 24, 6),
            "poses_root_world": (R_cw @ self.root_cam)[None],
            "betas": torch.zeros(1, T, 10),
            "trans_world": (centre - centre[:1])[None],
        }


# ---- baseline (b) and the measurement ------------------------------------------------------------------------
def without_angvel(net: WhamNetwork) -> Predictor:
    """Baseline (b): the network's predictions with ``cam_angvel`` zeroed (it believes the camera is still)."""
    return lambda b: train_forward(net, **{**b.inputs(), "cam_angvel": torch.zeros_like(b.cam_angvel)})


@torch.no_grad()
def measure(net: WhamNetwork, baseline: MeanPoseBaseline, sets: dict[str, list[ValSequence]]) -> Results:
    """The metrics of :data:`~wham_ros.train.validate.METRICS` per camera set and method (network in eval mode)."""
    predictors = {"model": network_predictor(net), "baseline_a": baseline, "baseline_b": without_angvel(net)}
    was_training = net.training
    net.eval()
    try:
        return {camera: {m: pooled_means(pooled_metrics(net.smpl, predictors[m], seqs)) for m in METHODS}
                for camera, seqs in sets.items()}
    finally:
        net.train(was_training)


def set_summary(seqs: list[ValSequence]) -> dict[str, float]:
    """Sequences, network frames, sequences RTE counts (true path >= 1 m) and the largest |cam_angvel|."""
    paths = [float((s.batch.trans_world[0, 1:] - s.batch.trans_world[0, :-1]).norm(dim=-1).sum()) for s in seqs]
    return {"sequences": len(seqs), "frames": sum(int(s.batch.x.shape[1]) for s in seqs),
            "rte_sequences": sum(p >= RTE_MIN_PATH for p in paths),
            "max_angvel": max((float(s.batch.cam_angvel.abs().max()) for s in seqs), default=0.0)}


# ---- the report ------------------------------------------------------------------------------------------------
def table(results: Results) -> str:
    """Markdown: one row per (camera set, method), one column per metric."""
    head = ["cameras", "method"] + [f"{NAMES[k][0]} ({NAMES[k][1]})" for k in METRICS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for camera, methods in results.items():
        for m in METHODS:
            cells = [f"{methods[m][k]:.1f}" if np.isfinite(methods[m][k]) else "-" for k in METRICS]
            lines.append("| " + " | ".join([camera, LABELS[m], *cells]) + " |")
    return "\n".join(lines)


@dataclass
class TargetCheck:
    """One target: ``value`` against ``target`` (both mm, or both % below a baseline), met or not."""

    name: str
    value: float
    target: float
    at_most: bool            # the target is an upper bound (mm) rather than a lower one (% below)

    @property
    def met(self) -> bool:
        return bool(np.isfinite(self.value)) and (self.value <= self.target if self.at_most
                                                  else self.value >= self.target)

    @property
    def margin(self) -> float:
        """How far inside (> 0) or outside (< 0) the target the value is."""
        return self.target - self.value if self.at_most else self.value - self.target

    def line(self) -> str:
        if not np.isfinite(self.value):
            return f"{self.name}: not measured (no sequence qualifies)"
        unit = "mm" if self.at_most else "%"
        by = "points" if unit == "%" else "mm"
        word = "met" if self.met else "missed"
        bound = "<=" if self.at_most else ">="
        return (f"{self.name}: {self.value:.1f} {unit} (target {bound} {self.target:.0f} {unit}): "
                f"{word} by {abs(self.margin):.1f} {by}")


def _below(value: float, reference: float) -> float:
    """How much lower ``value`` is than ``reference``, in % of the reference."""
    return 100 * (reference - value) / reference if reference > 0 else float("nan")


def target_checks(results: Results) -> list[TargetCheck]:
    """The issue's targets: PA-MPJPE <= 60 mm and >= 40 % below baseline (a), static and moving cameras;
    RTE with the true camera rotation >= 20 % below baseline (b), moving cameras."""
    checks = []
    for camera, r in results.items():
        pa = r["model"]["pa_mpjpe"]
        checks.append(TargetCheck(f"PA-MPJPE, {camera} cameras", pa, PA_MPJPE_MAX, True))
        checks.append(TargetCheck(f"PA-MPJPE below baseline a, {camera} cameras",
                                  _below(pa, r["baseline_a"]["pa_mpjpe"]), 100 * PA_BELOW_A, False))
    if "moving" in results:
        r = results["moving"]
        checks.append(TargetCheck("RTE below baseline b, moving cameras",
                                  _below(r["model"]["rte"], r["baseline_b"]["rte"]), 100 * RTE_BELOW_B, False))
    return checks
