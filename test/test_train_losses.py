"""Stage-1 loss terms and the official metrics, on hand-made predictions with known answers."""
from __future__ import annotations

import math

import pytest
import torch
from test_train_samples import standing_clip

from wham_ros.geometry.rotations import axis_angle_to_matrix
from wham_ros.model import load_body_model
from wham_ros.train import metrics
from wham_ros.train.config import AugmentConfig, LossConfig
from wham_ros.train.losses import KEYPOINT_WEIGHTS, POSE_WEIGHTS, Stage1Loss, velocity_error
from wham_ros.train.samples import Window, build_batch
from wham_ros.train.validate import world_points
from wham_ros.train.windows import WindowPlan


@pytest.fixture(scope="module")
def body(synthetic_body_dir):
    return load_body_model(synthetic_body_dir)


@pytest.fixture(scope="module")
def batch(body):
    # a little vertical motion: the official velocity term needs every component non-zero
    clips = [standing_clip(200, (0.02, 0.001, 0.01), spin=0.01),
             standing_clip(200, (0.01, 0.0005, 0.0), clip_id="run")]
    windows = [Window(0, 0, 100), Window(1, 10, 70), Window(0, 50, 122)]
    return build_batch(body, clips, windows, torch.Generator().manual_seed(0), AugmentConfig())


def perfect(batch) -> dict[str, torch.Tensor]:
    """What a network that is right everywhere (and keeps its feet still) would output."""
    B, T = batch.x.shape[:2]
    coco = batch.kp3d[:, :, :17]
    return {
        "kp3d": batch.kp3d.clone(), "full_kp2d": batch.full_kp2d.clone(),
        "kp3d_nn": (coco - coco[:, :, [11, 12]].mean(2, keepdim=True)).reshape(B, T, 51),
        "pose": batch.pose.reshape(B, T, 144).clone(), "betas": batch.betas.clone(), "contact": batch.contact.clone(),
        "pose_root": torch.cat((batch.init_root, batch.pose_root), 1), "vel_root": batch.vel_root.clone(),
        "poses_root_r6d_refined": torch.cat((batch.init_root, batch.pose_root), 1),
        "vel_root_refined": batch.vel_root.clone(), "R": batch.R.clone(),
        "feet": torch.zeros(B, T, 4, 3), "feet_refined": torch.zeros(B, T, 4, 3),
    }


#: output key -> the loss terms that must see a change in it
RESPONDS = {"kp3d": {"3d"}, "full_kp2d": {"2d"}, "kp3d_nn": {"3d_nn"}, "pose": {"pose"}, "betas": {"betas"},
            "contact": {"contact"}, "pose_root": {"root"}, "vel_root": {"root"},
            "poses_root_r6d_refined": {"root_ref"}, "vel_root_refined": {"root_ref"}, "R": {"camera"},
            "feet": {"sliding"}, "feet_refined": {"sliding_ref"}}


def test_a_perfect_prediction_costs_nothing(batch):
    total, terms = Stage1Loss(LossConfig())(perfect(batch), batch, epoch=10)
    assert float(total) < 1e-5 and set(terms) == {"2d", "3d", "3d_nn", "pose", "betas", "contact", "root",
                                                 "root_ref", "camera", "sliding", "sliding_ref"}


@pytest.mark.parametrize("key", sorted(RESPONDS))
def test_each_output_feeds_its_own_terms(batch, key):
    pred = perfect(batch)
    base = Stage1Loss(LossConfig())(pred, batch, epoch=10)[1]
    g = torch.Generator().manual_seed(1)
    pred[key] = pred[key] + 0.05 * torch.randn(pred[key].shape, generator=g)
    total, terms = Stage1Loss(LossConfig())(pred, batch, epoch=10)
    moved = {k for k, v in terms.items() if v > base[k] + 1e-4}
    assert moved == RESPONDS[key] and float(total) == pytest.approx(sum(terms.values()), rel=1e-5)


def test_weights_scale_their_terms_and_the_camera_waits(batch):
    pred = perfect(batch)
    pred["kp3d"] = pred["kp3d"] + 0.01
    pred["kp3d"][..., 0, :] += 0.03
    pred["R"] = pred["R"] @ axis_angle_to_matrix(torch.tensor([0.0, 0.05, 0.0]))
    base = Stage1Loss(LossConfig())(pred, batch, 10)[1]
    doubled = Stage1Loss(LossConfig(joint3d=0.8, loss_weight=100.0))(pred, batch, 10)[1]
    assert doubled["3d"] == pytest.approx(4 * base["3d"]) and doubled["camera"] == pytest.approx(2 * base["camera"])
    assert "camera" not in Stage1Loss(LossConfig())(pred, batch, 4)[1]
    assert "camera" in Stage1Loss(LossConfig())(pred, batch, 5)[1]
    assert "camera" in Stage1Loss(LossConfig(camera_loss_skip_epoch=0))(pred, batch, 0)[1]


def test_3d_term_value_by_hand(batch):
    """All 31 joints move 1 cm except the nose, which moves 4 cm more: only the nose counts after centring."""
    pred = perfect(batch)
    pred["kp3d"] = pred["kp3d"] + 0.01
    pred["kp3d"][..., 0, 2] += 0.04
    terms = Stage1Loss(LossConfig())(pred, batch, 10)[1]
    assert terms["3d"] == pytest.approx(50 * 0.4 * 0.5 * 0.04 / 31, rel=1e-4)


def test_weight_tables_are_the_official_ones():
    assert KEYPOINT_WEIGHTS.tolist() == [0.5] * 5 + [1.5, 1.5] + [4.0] * 4 + [1.5, 1.5] + [4.0] * 4 + \
        [4, 4, 1.5, 1.5, 4, 4, 4, 4, 1.5, 1.5, 4, 4, 0.5, 0.5]
    assert float(POSE_WEIGHTS[0]) == pytest.approx(0.1 / 0.8125) and float(POSE_WEIGHTS[1]) == pytest.approx(1 / 0.8125)
    assert {j for j in range(24) if POSE_WEIGHTS[j] < 0.5} == {0, 10, 11, 22, 23}


def test_velocity_windows():
    e = torch.ones(4, 9, 3)
    root3 = math.sqrt(3)
    # tiled: 9 one-frame windows, 3 three-frame windows, 1 nine-frame window
    assert velocity_error(e, "tiled").tolist() == pytest.approx([27 * root3] * 4)
    # official at B = 4: one-frame windows m = 0..3, one three-frame window [0, 3), nothing longer
    assert velocity_error(e, "official").tolist() == pytest.approx([7 * root3] * 4)
    e2 = torch.zeros(2, 9, 3)
    e2[:, 8] = 1.0
    assert velocity_error(e2, "official").tolist() == pytest.approx([0.0, 0.0])     # frame 8 unseen at B = 2
    assert velocity_error(e2, "tiled").tolist() == pytest.approx([3 * root3] * 2)    # in windows of 1, 3, 9


def test_treadmill_samples_feed_no_contact_or_velocity(body):
    clips = [standing_clip(150, (0.02, 0.0, 0.0), clip_id="treadmill")]
    tread = build_batch(body, clips, [Window(0, 0, 100)], torch.Generator().manual_seed(0), AugmentConfig())
    pred = perfect(tread)
    pred["contact"] = pred["contact"] + 0.3
    pred["vel_root"] = pred["vel_root"] + 0.1
    pred["feet"] = torch.randn(pred["feet"].shape)
    terms = Stage1Loss(LossConfig())(pred, tread, 10)[1]
    assert terms["contact"] == 0 and terms["sliding"] == 0 and terms["root"] == 0


# ---- metrics ------------------------------------------------------------------------------------------------
def _similarity(points: torch.Tensor, s: float = 1.3) -> torch.Tensor:
    R = axis_angle_to_matrix(torch.tensor([0.3, -1.1, 0.4]))
    return s * points @ R.T + torch.tensor([0.5, -2.0, 3.0])


def test_umeyama_recovers_a_similarity_and_never_a_reflection():
    pts = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    s, R, t = metrics.umeyama(pts, _similarity(pts))
    assert float(s) == pytest.approx(1.3, rel=1e-5) and torch.allclose(metrics._apply(s, R, t, pts), _similarity(pts),
                                                                       atol=1e-5)
    mirrored = pts * torch.tensor([-1.0, 1.0, 1.0])
    _, R2, _ = metrics.umeyama(pts, mirrored)
    assert float(torch.linalg.det(R2)) == pytest.approx(1.0, abs=1e-5)


def test_local_metrics():
    gt = torch.randn(10, 14, 3, generator=torch.Generator().manual_seed(1))
    assert float(metrics.mpjpe(gt + 5.0, gt, (2, 3)).max()) < 1e-3                # translation does not count
    assert float(metrics.pa_mpjpe(_similarity(gt), gt).max()) < 1e-3
    assert float(metrics.mpjpe(_similarity(gt), gt, (2, 3)).mean()) > 100
    off = gt.clone()
    off[:, 0] += torch.tensor([0.0, 0.014, 0.0])
    assert float(metrics.mpjpe(off, gt, (2, 3)).mean()) == pytest.approx(1.0, rel=1e-4)   # 14 mm on 1 of 14


def test_world_metrics():
    T = 250
    t = torch.arange(T, dtype=torch.float32)[:, None, None]
    gt = torch.randn(1, 24, 3, generator=torch.Generator().manual_seed(2)) * 0.3 + t * torch.tensor([0.02, 0, 0.01])
    assert float(metrics.world_mpjpe(_similarity(gt), gt, 2).max()) < 1e-2
    assert float(metrics.world_mpjpe(_similarity(gt), gt, None).max()) < 1e-2
    drift = gt + t * torch.tensor([0.0, 0.0, 0.004])                               # 4 mm/frame off
    w, wa = metrics.world_mpjpe(drift, gt, 2), metrics.world_mpjpe(drift, gt, None)
    assert w.shape == (T,) and float(w[99]) > float(w[1]) + 300 and float(wa.mean()) < float(w.mean())
    path = gt[:, 0]
    assert float(metrics.rte(_similarity(path, 1.0), path).max()) < 1e-3
    doubled = metrics.rte(2 * path, path)
    assert 0.5 < float(doubled.mean()) < 100


def test_jitter_and_foot_sliding():
    t = torch.arange(20, dtype=torch.float32)[:, None, None]
    assert float(metrics.jitter(t * torch.ones(1, 24, 3)).max()) < 1e-2
    cubic = (t / 30) ** 3 * torch.tensor([1.0, 0.0, 0.0])
    assert metrics.jitter(cubic.expand(20, 24, 3)).tolist() == pytest.approx([0.6] * 17, rel=1e-3)  # 6 m/s^3
    still = torch.zeros(5, 4, 3)
    gt = still.clone()
    gt[3:, 2] += 0.5                                                              # foot 2 lifts between 2 and 3
    pred = still.clone()
    pred[1:, 0] += torch.tensor([0.002, 0.0, 0.0])                                # slides 2 mm once
    pred[3:, 2] += 0.3
    slide = metrics.foot_sliding(pred, gt)
    assert slide.numel() == 15 and float(slide.sum()) == pytest.approx(2.0, rel=1e-4)


def test_foot_vertices(body):
    ids = metrics.foot_vertices(body.J_regressor_feet)
    assert ids == list(metrics.SMPL_FOOT_VERTICES)                               # the synthetic body has SMPL's size
    reg = torch.zeros(4, 100)
    reg[torch.arange(4), torch.tensor([7, 30, 55, 90])] = 0.7
    reg[:, 0] = 0.3
    assert metrics.foot_vertices(reg) == [7, 30, 55, 90]


def test_world_points_put_the_hip_midpoint_at_trans(body):
    rot = axis_angle_to_matrix(torch.randn(3, 24, 3, generator=torch.Generator().manual_seed(3)) * 0.3)
    trans = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]])
    joints, feet = world_points(body, rot[:, 0], rot[:, 1:], torch.zeros(3, 10), trans, [1, 2, 3, 4])
    out = body.get_output(rot[:, :1], rot[:, 1:], torch.zeros(3, 10))         # hip-centred
    assert torch.allclose(feet, out.vertices[:, [1, 2, 3, 4]] + trans[:, None], atol=1e-5)
    same = rot[:1].expand(3, 24, 3, 3)
    joints, _ = world_points(body, same[:, 0], same[:, 1:], torch.zeros(3, 10), trans, [1, 2, 3, 4])
    assert joints.shape == (3, 24, 3) and torch.allclose(joints - trans[:, None], (joints - trans[:, None])[:1],
                                                         atol=1e-5)


def test_window_plan_feeds_build_batch(body):
    clips = [standing_clip(190, (0.01, 0.0, 0.0), clip_id=f"c{i}") for i in range(2)]
    plan = WindowPlan(clips, "official", 2, 0, (54, 122), 0)
    assert plan.iterations() == 1
    for windows in plan.epoch(0):
        b = build_batch(body, clips, windows, torch.Generator().manual_seed(0), AugmentConfig())
        assert b.x.shape[0] == len(windows) and torch.isfinite(b.kp3d).all()
