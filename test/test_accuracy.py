"""Held-out accuracy (``wham_ros.train.accuracy``, ``bench/accuracy.py``): the static and moving camera sets,
the two baselines, the project's metrics and the target checks, on a tiny random network and real clips."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from wham_ros.errors import WhamError
from wham_ros.geometry.rotations import axis_angle_to_matrix, rot6d_to_matrix
from wham_ros.model import load_body_model
from wham_ros.model.free_body.folder import default_dir
from wham_ros.model.network import NetworkConfig, WhamNetwork
from wham_ros.train import accuracy, metrics
from wham_ros.train.accuracy import (
    LABELS,
    METHODS,
    MeanPoseBaseline,
    check_held_out,
    held_out_from_config,
    held_out_sets,
    mean_body_pose,
    measure,
    set_summary,
    table,
    target_checks,
    without_angvel,
)
from wham_ros.train.clips import MotionClip
from wham_ros.train.config import config_from_dict
from wham_ros.train.trainer import load_clips
from wham_ros.train.validate import METRICS, evaluate, network_predictor, pooled_means, pooled_metrics

HOLDOUT = ["cmu_131", "hdm05_bd"]          # the walk (249 frames) and a floor deposit (76); cmu_001 trains


@pytest.fixture(scope="module")
def cfg(free_corpus_dir):
    return config_from_dict({"data": {"path": free_corpus_dir, "holdout_subjects": HOLDOUT},
                             "optim": {"epoch_iterations": 1}})


@pytest.fixture(scope="module")
def body():
    return load_body_model(default_dir())


@pytest.fixture(scope="module")
def held(cfg, body):
    return held_out_from_config(cfg, body, default_dir())


@pytest.fixture(scope="module")
def net(body):
    torch.manual_seed(0)
    return WhamNetwork(body, NetworkConfig(d_embed=16, n_layers=1, refiner_hidden=8, refiner_layers=1,
                                           integrator=False))


@pytest.fixture(scope="module")
def baseline(body, held):
    return MeanPoseBaseline.from_training(body, held.train_clips)


@pytest.fixture(scope="module")
def results(net, baseline, held):
    return measure(net, baseline, held.sets)


# ---- the held-out sets -----------------------------------------------------------------------------------------
def test_held_out_sets_are_the_held_out_clips_through_static_and_moving_cameras(held):
    assert held.subjects == HOLDOUT and {c.subject for c in held.train_clips} == {"cmu_001"}
    static, moving = held.sets["static"], held.sets["moving"]
    assert [s.clip for s in static] == [s.clip for s in moving] == ["cmu_131_01_walk_scaled_m",
                                                                    "hdm05_cut_1_HDM_bd_depositFloorR_001_120"]
    for s, m in zip(static, moving):
        # the camera never turns: cam_angvel is zero up to the rounding of R_t R_{t+1}^T
        assert float(s.batch.cam_angvel.abs().max()) < 1e-5
        assert torch.equal(s.batch.R, s.batch.R[:, :1].expand_as(s.batch.R))
        assert float(m.batch.cam_angvel.abs().max()) > 1e-2
        assert not torch.allclose(m.batch.R[:, 0], m.batch.R[:, -1], atol=1e-3)
        # the same draws: body shape, initial root and the camera's start differ in nothing
        assert torch.equal(s.batch.betas, m.batch.betas) and torch.equal(s.batch.init_root, m.batch.init_root)
        assert torch.equal(s.batch.trans_world, m.batch.trans_world)
    summary = set_summary(static)
    assert summary["sequences"] == 2 and summary["frames"] == 248 + 75 and summary["rte_sequences"] >= 1


def test_a_limit_keeps_a_subset_with_the_same_draws(cfg, body, held):
    clips = [c for c in load_clips(cfg, default_dir()) if c.subject in HOLDOUT]
    one = held_out_sets(body, clips, cfg.augment, cfg.val.min_frames, cfg.val.seed, limit=1)
    for camera in ("static", "moving"):
        assert len(one[camera]) == 1
        assert one[camera][0].clip == held.sets[camera][0].clip
        assert torch.equal(one[camera][0].batch.x, held.sets[camera][0].batch.x)


# ---- baseline (a) -------------------------------------------------------------------------------------------------
def test_baseline_a_is_the_constant_training_mean_pose(cfg, baseline, held):
    assert torch.allclose(baseline.body_pose, mean_body_pose(held.train_clips))
    # the held-out clips' mean is another pose: a baseline taking its pose from them would show here
    held_out_clips = [c for c in load_clips(cfg, default_dir()) if c.subject in HOLDOUT]
    assert not torch.allclose(baseline.body_pose, mean_body_pose(held_out_clips), atol=1e-2)
    for seq in held.sets["moving"]:
        out = baseline(seq.batch)
        T = seq.batch.x.shape[1]
        pose = rot6d_to_matrix(out["pose"][0])
        assert pose.shape == (T, 24, 3, 3)
        assert torch.equal(pose, pose[:1].expand_as(pose))                       # constant over frames
        assert torch.allclose(pose[0, 1:], baseline.body_pose, atol=1e-5)
        assert torch.equal(out["kp3d"][0], out["kp3d"][0, :1].expand_as(out["kp3d"][0]))
        assert torch.equal(out["betas"], torch.zeros(1, T, 10))
        # upright and facing the camera: the nose is above the hips (y down) and nearer the camera
        nose = out["kp3d"][0, 0, 0]
        assert float(nose[1]) < -0.4 and float(nose[2]) < 0
        # the world root is the camera-frame root seen through the known camera rotation
        root_cam = seq.batch.R[0] @ out["poses_root_world"][0]
        assert torch.allclose(root_cam, pose[:, 0], atol=1e-5)


def test_the_mean_pose_is_the_chordal_mean_of_the_given_clips():
    frames = 6
    pose = np.zeros((frames, 24, 3), np.float32)
    pose[:, 5, 0] = [0.4, -0.4] * 3                       # symmetric swing: mean identity
    pose[:, 7, 2] = 0.7                                    # held: mean that rotation
    clip = MotionClip("c", "s", pose, np.zeros((frames, 3), np.float32), np.zeros(10, np.float32))
    mean = mean_body_pose([clip])
    assert torch.allclose(mean[4], torch.eye(3), atol=1e-6)
    assert torch.allclose(mean[6], axis_angle_to_matrix(torch.tensor([0.0, 0.0, 0.7])), atol=1e-6)
    assert torch.allclose(mean[0], torch.eye(3))


def test_baseline_a_places_the_body_by_its_box(baseline):
    K = torch.tensor([[1414.2, 0.0, 500.0], [0.0, 1414.2, 500.0], [0.0, 0.0, 1.0]])
    depth = torch.tensor([3.0, 6.0])
    # a box whose side is E[sigma] times the body's keypoint extent at that depth, centred on the image
    s = K[0, 0] * accuracy.MEAN_BOX_SCALE * baseline.extent / (200 * depth)
    t = baseline.camera_translation(torch.stack((torch.full((2,), 500.0), torch.full((2,), 500.0), s), -1), K)
    assert torch.allclose(t[:, 2], depth)
    assert torch.allclose(t[:, :2], -baseline.box_centre.expand(2, 2))
    # a box right of centre puts the body right of the optical axis, more so further away
    right = baseline.camera_translation(torch.tensor([[700.0, 500.0, float(s[1])]]), K)
    assert float(right[0, 0] + baseline.box_centre[0]) == pytest.approx(200 * 6.0 / 1414.2, rel=1e-5)


def test_baseline_a_world_path_is_the_box_track_turned_by_the_camera(baseline, held):
    for camera in ("static", "moving"):
        b = held.sets[camera][0].batch
        out = baseline(b)
        t_cam = baseline.camera_translation(b.bbox[0], b.cam_intrinsics[0, 0])
        world = out["trans_world"][0]
        assert torch.equal(world[0], torch.zeros(3))
        # mapped back by the camera rotation (camera centre still), the path is the camera-frame track
        back = (b.R[0] @ world[..., None])[..., 0] + (b.R[0] @ b.R[0, :1].transpose(-1, -2) @ t_cam[0])
        assert torch.allclose(back, t_cam, atol=1e-4)


# ---- baseline (b), the metrics, the rows --------------------------------------------------------------------------
def test_baseline_b_is_the_model_on_static_cameras_and_not_on_moving_ones(net, held, results):
    for k in METRICS:
        model, b = results["static"]["model"][k], results["static"]["baseline_b"][k]
        assert b == pytest.approx(model, rel=1e-4, abs=1e-4), k
    moving = results["moving"]
    # the gyro feeds only the trajectory: local metrics are equal, world ones differ
    assert moving["baseline_b"]["pa_mpjpe"] == moving["model"]["pa_mpjpe"]
    assert moving["baseline_b"]["w_mpjpe100"] != moving["model"]["w_mpjpe100"]
    with torch.no_grad():
        b = held.sets["moving"][0].batch
        path, still = network_predictor(net)(b)["trans_world"], without_angvel(net)(b)["trans_world"]
    assert float((path - still).abs().max()) > 1e-2
    # and baseline (a) is another predictor altogether (a swap of the two rows would fail here)
    assert results["static"]["baseline_a"]["pa_mpjpe"] != pytest.approx(results["static"]["model"]["pa_mpjpe"],
                                                                        rel=1e-2)


def test_the_rows_are_the_project_s_validation_metrics(net, baseline, held, results):
    for camera, seqs in held.sets.items():
        assert results[camera]["model"] == evaluate(net, seqs)
        assert results[camera]["baseline_a"] == pooled_means(pooled_metrics(net.smpl, baseline, seqs))


def test_the_metric_functions_are_the_project_s(net, baseline, held, monkeypatch):
    """Replacing the project's PA-MPJPE replaces every PA-MPJPE of the report."""
    monkeypatch.setattr(metrics, "pa_mpjpe", lambda pred, target: torch.full((pred.shape[0],), 7.0))
    patched = measure(net, baseline, {"static": held.sets["static"][1:]})
    assert all(patched["static"][m]["pa_mpjpe"] == 7.0 for m in METHODS)


def test_the_table_has_every_row(results):
    text = table(results)
    lines = text.splitlines()
    assert len(lines) == 2 + 6
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert [(r[0], r[1]) for r in rows] == [(cam, LABELS[m]) for cam in ("static", "moving") for m in METHODS]
    assert all(len(r) == 2 + len(METRICS) for r in rows)
    assert "PA-MPJPE (mm)" in lines[0] and "RTE (%)" in lines[0]


# ---- targets ------------------------------------------------------------------------------------------------------
def _results(**values) -> dict:
    """Camera sets whose rows have every metric at 100 but for ``values`` {method: {metric: v}}."""
    rows = {m: dict.fromkeys(METRICS, 100.0) | values.get(m, {}) for m in METHODS}
    return {"static": {m: dict(r) for m, r in rows.items()}, "moving": {m: dict(r) for m, r in rows.items()}}


def test_targets_read_the_right_baseline():
    # the model: 50 mm PA (50 % below a, whose PA is 100; b's is 50), RTE 8 % (20 % below b's 10; a's is 4)
    good = _results(model={"pa_mpjpe": 50.0, "rte": 8.0}, baseline_a={"rte": 4.0},
                    baseline_b={"pa_mpjpe": 50.0, "rte": 10.0})
    checks = target_checks(good)
    assert [c.met for c in checks] == [True] * 5
    assert [c.name for c in checks][-1] == "RTE below baseline b, moving cameras"
    assert checks[1].value == pytest.approx(50.0) and checks[-1].value == pytest.approx(20.0)
    # the same figures with the baselines swapped: the relative targets are missed
    swapped = {cam: {"model": r["model"], "baseline_a": r["baseline_b"], "baseline_b": r["baseline_a"]}
               for cam, r in good.items()}
    assert [c.met for c in target_checks(swapped)] == [True, False, True, False, False]


def test_target_lines_say_met_or_missed_and_by_how_much():
    checks = target_checks(_results(model={"pa_mpjpe": 75.0, "rte": float("nan")}))
    assert checks[0].line() == "PA-MPJPE, static cameras: 75.0 mm (target <= 60 mm): missed by 15.0 mm"
    assert checks[1].line() == ("PA-MPJPE below baseline a, static cameras: 25.0 % (target >= 40 %): "
                                "missed by 15.0 points")
    assert not checks[-1].met and "not measured" in checks[-1].line()
    assert target_checks(_results(model={"pa_mpjpe": 40.0}))[0].line().endswith("met by 20.0 mm")


def test_a_model_trained_on_a_held_out_subject_is_refused(cfg):
    assert "held out ['cmu_131', 'hdm05_bd']" in check_held_out({"recipe": {"data": {"holdout_subjects": HOLDOUT}}},
                                                                cfg)
    with pytest.raises(WhamError, match=r"trained on \['hdm05_bd'\]"):
        check_held_out({"recipe": {"data": {"holdout_subjects": ["cmu_131"]}}}, cfg)
    assert "not checked" in check_held_out({"model": {}}, cfg)
