"""Stage-1 samples: virtual cameras, keypoint noise and masks, boxes, windows, and the geometry of a batch."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from conftest import require_file

from wham_ros.errors import CheckpointError
from wham_ros.geometry.camera_motion import angvel_from_orientations
from wham_ros.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle, rot6d_to_matrix
from wham_ros.model import load_body_model
from wham_ros.model.free_body.folder import default_dir
from wham_ros.stream.inputs import CausalBoxFilter, normalize_keypoints
from wham_ros.train import boxes, keypoint_noise, virtual_camera
from wham_ros.train.clips import MotionClip, load_corpus_clips
from wham_ros.train.config import AugmentConfig
from wham_ros.train.samples import Window, build_batch
from wham_ros.train.windows import WindowPlan, official_windows

QUIET = AugmentConfig(shape_noise=0.0, init_noise=0.0, moving_camera=0.0, keypoint_noise=0.0, mask_prob=0.0)


@pytest.fixture(scope="module")
def body(synthetic_body_dir):
    return load_body_model(synthetic_body_dir)


def standing_clip(frames: int, step=(0.0, 0.0, 0.0), spin: float = 0.0, clip_id: str = "walk") -> MotionClip:
    """A fixed pose whose root turns ``spin`` rad/frame about world y (y down) while ``transl`` moves ``step``."""
    pose = np.zeros((frames, 24, 3), np.float32)
    pose[:, 0] = [math.pi, 0.0, 0.0]                         # upright in the y-down world
    pose[:, 1, 0], pose[:, 4, 0], pose[:, 16, 2] = 0.3, -0.4, 0.5
    if spin:
        turn = axis_angle_to_matrix(torch.tensor([[0.0, spin * t, 0.0] for t in range(frames)]))
        upright = axis_angle_to_matrix(torch.tensor([math.pi, 0.0, 0.0]))
        pose[:, 0] = matrix_to_axis_angle(turn @ upright).numpy()
    trans = (np.arange(frames)[:, None] * np.asarray(step)).astype(np.float32)
    return MotionClip(clip_id, "s1", pose, trans, np.zeros(10, np.float32), "tread" in clip_id)


# ---- virtual cameras ---------------------------------------------------------------------------------------
def test_intrinsics_are_the_published_ones():
    K = virtual_camera.intrinsics(2)
    assert K.shape == (2, 1, 3, 3)
    assert K[0, 0, 0, 0] == pytest.approx(math.sqrt(2) * 1000) and K[0, 0, 0, 2] == 500 and K[0, 0, 1, 2] == 500


def test_camera_placement_and_motion_statistics():
    gen = torch.Generator().manual_seed(0)
    cam = virtual_camera.draw_cameras(6000, 82, gen, 0.75)
    R0, R1 = cam.R[:, 0], cam.R[:, -1]
    # camera-to-world optical axis: its world-y (down) part is sin(pitch)
    pitch = torch.asin(R0[:, 2, 1])
    assert float(pitch.mean()) == pytest.approx(math.pi / 36, abs=0.02)
    assert float(pitch.std()) == pytest.approx(math.pi / 8, rel=0.06)
    depth = cam.T[:, 0, 2]
    assert 2.0 <= float(depth.min()) and float(depth.max()) < 12.0
    assert float((cam.T[:, 0, 0] / (0.354 * depth)).std()) == pytest.approx(0.25, rel=0.06)
    assert float(cam.moving.float().mean()) == pytest.approx(0.75, abs=0.02)
    static = ~cam.moving
    assert torch.allclose(cam.R[static], R0[static, None].expand(-1, 82, 3, 3), atol=1e-6)
    assert torch.equal(cam.T[static], cam.T[static, :1].expand(-1, 82, 3))
    r = matrix_to_axis_angle(R0[cam.moving].transpose(-1, -2) @ R1[cam.moving])
    assert r.std(0).tolist() == pytest.approx([math.pi / 8, math.pi / 4, math.pi / 8], rel=0.1)
    assert float((cam.T[cam.moving, -1] - cam.T[cam.moving, 0]).std()) == pytest.approx(1.0, rel=0.06)


def test_interpolation_times_are_jittered_per_component_but_keep_the_ends():
    gen = torch.Generator().manual_seed(1)
    cam = virtual_camera.draw_cameras(200, 82, gen, 1.0)
    steps = cam.T[:, 1:] - cam.T[:, :-1]
    total = cam.T[:, -1:] - cam.T[:, :1]
    frac = (steps / total)[(total.abs() > 0.3).expand_as(steps)]
    assert float(frac.std()) > 0.1 / 81                          # not uniform steps
    assert float((frac - 1 / 81).abs().max()) <= 0.4 / 81 + 1e-4  # each time within +-0.2/81 of i/81


def test_depth_shift_applies_the_safety_fixes():
    near = torch.tensor([[[0.0, 0.0, 0.3], [0.0, 0.0, 2.0]]])
    assert float(virtual_camera.depth_shift(near)) == pytest.approx(0.7)
    wide = torch.tensor([[[2.0, 0.0, 1.0], [0.1, 0.0, 3.0]]])
    shift = float(virtual_camera.depth_shift(wide))
    assert 2.0 / (1.0 + shift) == pytest.approx(1.2 * math.sqrt(0.5))
    assert float(virtual_camera.depth_shift(torch.tensor([[[0.1, -0.2, 5.0]]]))) == 0.0


def test_cam_angvel_is_the_engine_s_gyro_convention():
    """Training sees exactly what the online engine computes from camera orientations."""
    gen = torch.Generator().manual_seed(2)
    cam = virtual_camera.draw_cameras(3, 20, gen, 1.0)
    for b in range(3):
        R_wc = cam.R[b].transpose(-1, -2)
        online = angvel_from_orientations(R_wc.double(), convention="training")
        assert torch.allclose(virtual_camera.camera_angvel(cam.R[b:b + 1])[0].double(), online[1:], atol=1e-4)
        assert float(online[1:].abs().max()) > 1e-3


# ---- keypoint noise, masks, boxes ----------------------------------------------------------------------------
def _only(column: int) -> torch.Tensor:
    """The noise table with every part but ``column`` (0 bias, 1 jitter, 2 peak) switched off."""
    table = keypoint_noise.NOISE_TABLE.clone()
    table[:, [c for c in range(3) if c != column]] = 0.0
    return table


def test_keypoint_noise_bias_and_jitter():
    table = keypoint_noise.NOISE_TABLE
    bias = keypoint_noise.keypoint_noise(3000, 20, torch.Generator().manual_seed(3), table=_only(0))
    assert torch.equal(bias, bias[:, :1].expand_as(bias))                 # constant over the sample
    assert bias.std((0, 1, 3)).tolist() == pytest.approx((0.1 * table[:, 0]).tolist(), rel=0.05)
    jitter = keypoint_noise.keypoint_noise(300, 82, torch.Generator().manual_seed(3), table=_only(1))
    assert jitter.std((0, 1, 3)).tolist() == pytest.approx((0.05 * table[:, 1]).tolist(), rel=0.05)
    assert float(jitter[:, 1:].sub(jitter[:, :-1]).abs().mean()) > 0
    both = keypoint_noise.keypoint_noise(4, 5, torch.Generator().manual_seed(9), scale=2.0)
    assert torch.equal(both, 2 * keypoint_noise.keypoint_noise(4, 5, torch.Generator().manual_seed(9)))


def test_peaks_have_the_tabulated_rate_and_share_one_vector():
    table = keypoint_noise.NOISE_TABLE
    n = keypoint_noise.keypoint_noise(3000, 82, torch.Generator().manual_seed(4), table=_only(2))
    hit = n.norm(dim=-1) > 0
    assert hit.float().mean((0, 1)).tolist() == pytest.approx((0.005 / table[:, 3]).tolist(), rel=0.08)
    for b in range(5):
        t, j = torch.nonzero(hit[b])[0].tolist()
        unit = n[b] / (0.3 * table[:, 2])[None, :, None]                 # every peak = 0.3 sigma_p g, one g
        assert torch.allclose(unit[hit[b]], unit[t, j].expand(int(hit[b].sum()), 3), atol=1e-5)


def test_noise_table_file(tmp_path):
    path = str(tmp_path / "coco_aug_dict.pth")
    torch.save({k: keypoint_noise.NOISE_TABLE[:, i].reshape(1, 1, 17) * 2
                for i, k in enumerate(keypoint_noise.TABLE_KEYS)}, path)
    assert torch.equal(keypoint_noise.load_noise_table(path), keypoint_noise.NOISE_TABLE * 2)
    torch.save({"bias": torch.zeros(17)}, path)
    with pytest.raises(CheckpointError, match="not a keypoint noise table"):
        keypoint_noise.load_noise_table(path)


def test_mask_rate_and_tree_propagation():
    gen = torch.Generator().manual_seed(5)
    m = keypoint_noise.keypoint_mask(500, 82, gen, 0.03)
    for child, parents in keypoint_noise.COCO_PARENTS.items():
        for parent in parents:
            assert bool(m[..., child][m[..., parent]].all()), (child, parent)
    roots = m[..., [5, 6, 11, 12]].float().mean()
    assert float(roots) == pytest.approx(0.03, rel=0.1)
    assert float(m[..., 9].float().mean()) == pytest.approx(1 - 0.97 ** 3, rel=0.1)   # wrist <- elbow <- shoulder
    assert float(m[..., 0].float().mean()) == pytest.approx(1 - 0.97 ** 3, rel=0.1)   # nose: itself or a shoulder


def test_box_scale_and_shift_ranges():
    gen = torch.Generator().manual_seed(6)
    kp = torch.rand(400, 1, 17, 2) * torch.tensor([100.0, 300.0]) + 200
    box = boxes.keypoint_boxes(kp, gen)
    side = (kp.max(-2).values - kp.min(-2).values).max(-1).values
    ratio = 200 * box[..., 2] / side
    assert 0.8 <= float(ratio.min()) and float(ratio.max()) <= 1.4 and float(ratio.std()) > 0.1
    centre = (kp.max(-2).values + kp.min(-2).values) / 2
    assert float(((box[..., :2] - centre) / (200 * box[..., 2:3])).abs().max()) <= 0.05 + 1e-6


def test_causal_boxes_equal_the_engine_s_filter():
    gen = torch.Generator().manual_seed(7)
    raw = torch.rand(2, 30, 3, generator=gen) * 100
    smooth = boxes.causal_median(raw, 5)
    for b in range(2):
        f = CausalBoxFilter(5)
        online = torch.stack([f(raw[b, t]) for t in range(30)])
        assert torch.allclose(smooth[b].double(), online, atol=1e-5)


def test_centred_boxes_are_the_zero_padded_median():
    raw = torch.rand(1, 40, 3) * 100 + 50
    got = boxes.centred_median(raw)
    padded = np.concatenate((np.zeros((7, 3)), raw[0].numpy(), np.zeros((7, 3))))
    want = np.stack([np.median(padded[t:t + 15], 0) for t in range(40)])
    np.testing.assert_allclose(got[0].numpy(), want, rtol=1e-6)
    assert float(got[0, 0, 0]) < float(raw[0, :8, 0].median())         # edges lean to small values
    with pytest.raises(ValueError, match="unknown box filter"):
        boxes.smooth_boxes(raw, "mean", 5)


# ---- windows ----------------------------------------------------------------------------------------------
def test_official_windows_and_epochs():
    assert official_windows([121, 122, 200]) == [(1, 0), (2, 0), (2, 30), (2, 60)]
    clips = [standing_clip(300, clip_id=f"c{i}") for i in range(3)]
    plan = WindowPlan(clips, "official", 4, 0, (54, 122), 0)
    all_windows = official_windows([300] * 3)
    assert len(all_windows) == 18
    seen = []
    for epoch in range(4):
        batches = plan.epoch(epoch)
        flat = [w for b in batches for w in b]
        assert sorted((w.clip, w.start) for w in flat) == sorted(all_windows[epoch % 4::4])
        assert all(54 <= w.frames <= 122 for w in flat)
        seen += [(w.clip, w.start) for w in flat]
    assert sorted(seen) == sorted(all_windows)
    assert [len(b) for b in plan.epoch(0)] == [4, 1] and plan.iterations() == 2


def test_random_windows_fit_their_clips_and_repeat_per_seed():
    clips = [standing_clip(n, clip_id=f"c{n}") for n in (60, 130, 400)]
    plan = WindowPlan(clips, "random", 8, 50, (54, 122), 3)
    flat = [w for b in plan.epoch(2) for w in b]
    assert len(flat) == 400
    assert all(w.start >= 0 and w.start + w.frames <= clips[w.clip].frames for w in flat)
    assert {w.clip for w in flat} == {0, 1, 2}
    assert all(w.frames <= 60 for w in flat if w.clip == 0)
    assert plan.epoch(2) == plan.epoch(2) and plan.epoch(2) != plan.epoch(3)
    with pytest.raises(ValueError, match="no training clip has 122 frames"):
        WindowPlan([standing_clip(100)], "random", 8, 5, (54, 122), 0)


# ---- a batch ------------------------------------------------------------------------------------------------
def test_batch_shapes_and_determinism(body):
    clips = [standing_clip(150, (0.02, 0.0, 0.01))]
    wins = [Window(0, 0, 122), Window(0, 20, 60)]
    a = build_batch(body, clips, wins, torch.Generator().manual_seed(0), AugmentConfig())
    b = build_batch(body, clips, wins, torch.Generator().manual_seed(0), AugmentConfig())
    c = build_batch(body, clips, wins, torch.Generator().manual_seed(1), AugmentConfig())
    shapes = {"x": (2, 81, 37), "init_kp": (2, 1, 88), "init_smpl": (2, 1, 24, 6), "mask": (2, 81, 17),
              "init_root": (2, 1, 6), "cam_angvel": (2, 81, 6), "cam_intrinsics": (2, 1, 3, 3), "bbox": (2, 81, 3),
              "res": (2, 2), "kp3d": (2, 81, 31, 3), "full_kp2d": (2, 81, 31, 2), "pose": (2, 81, 24, 6),
              "betas": (2, 81, 10), "pose_root": (2, 81, 6), "vel_root": (2, 81, 3), "contact": (2, 81, 4),
              "R": (2, 81, 3, 3), "trans_world": (2, 81, 3)}
    for key, shape in shapes.items():
        assert tuple(getattr(a, key).shape) == shape, key
        assert torch.equal(getattr(a, key), getattr(b, key)), key
    assert not torch.equal(a.x, c.x)
    assert a.mask.dtype == torch.bool and torch.isfinite(a.x).all()


def test_playback_speed_scales_the_velocity(body):
    clips = [standing_clip(200, (0.03, 0.0, 0.0))]
    for frames in (54, 82, 122):
        batch = build_batch(body, clips, [Window(0, 10, frames)], torch.Generator().manual_seed(0), QUIET)
        speed = batch.vel_root.norm(dim=-1)
        assert torch.allclose(speed, torch.full_like(speed, 0.03 * (frames - 1) / 81), rtol=1e-4)
        assert float(batch.trans_world[..., 1].abs().max()) < 1e-5     # level walk stays level after the yaw


def test_targets_are_consistent_with_the_network_s_conventions(body):
    clips = [standing_clip(120, (0.02, 0.0, 0.015), spin=0.03)]
    batch = build_batch(body, clips, [Window(0, 0, 82)], torch.Generator().manual_seed(3),
                        AugmentConfig(moving_camera=1.0), speed=False)
    R_world = rot6d_to_matrix(torch.cat((batch.init_root, batch.pose_root), 1))
    # the rollout of the true roots and velocities (wham facts 3.1 step 6) is the true hip path
    rollout = (R_world[:, :-1] @ batch.vel_root[..., None])[..., 0].cumsum(1)
    assert torch.allclose(rollout, batch.trans_world, atol=1e-5)
    # camera-frame root = world->camera R times the world root: what the camera loss's R_hat estimates
    root_cam = rot6d_to_matrix(batch.pose[:, :, 0])
    assert torch.allclose(root_cam @ R_world[:, 1:].transpose(-1, -2), batch.R, atol=1e-5)
    # cam_angvel entry t pairs frames (t-1, t)
    assert torch.allclose(batch.cam_angvel[:, 1:], virtual_camera.camera_angvel(batch.R), atol=1e-5)


@pytest.fixture(scope="module")
def free_body():
    require_file(os.path.join(default_dir(), "smpl", "SMPL_NEUTRAL.pkl"), "free body model",
                 "run ./install.sh or tools/build_body_model.py")
    return load_body_model(default_dir())


def test_the_path_is_the_true_hip_midpoint(free_body):
    """A root spinning in place swings the hip midpoint around the pelvis joint (3.5 cm apart on the free
    body): the target follows the hip midpoint (transl + offset); the official target (transl - offset)
    swings the other way (facts 2.3)."""
    body = free_body
    clip = standing_clip(90, (0.01, 0.0, 0.0), spin=0.05)
    batch = build_batch(body, [clip], [Window(0, 0, 90)], torch.Generator().manual_seed(4), QUIET, 90, speed=False)
    rot = axis_angle_to_matrix(torch.as_tensor(clip.pose))
    offset = body.get_joints(rot[:, :1], rot[:, 1:], torch.zeros(90, 10)).offset
    trans = torch.as_tensor(clip.trans)
    yaw = rot6d_to_matrix(batch.init_root[0, 0]) @ rot[0, 0].T          # the sample's random body yaw
    hip = (offset + trans) @ yaw.T
    assert torch.allclose(batch.trans_world[0], hip[1:] - hip[0], atol=1e-5)
    official = (trans - offset) @ yaw.T
    assert float((batch.trans_world[0] - (official[1:] - official[0])).norm(dim=-1).max()) > 0.01


def test_init_inputs_and_normalised_keypoints(body):
    clips = [standing_clip(100)]
    batch = build_batch(body, clips, [Window(0, 0, 82)], torch.Generator().manual_seed(5), QUIET, speed=False)
    # a still body and camera: the init frame equals every other frame
    assert torch.allclose(batch.init_smpl[:, 0], batch.pose[:, 0], atol=1e-6)
    assert torch.allclose(batch.init_root[:, 0], batch.pose_root[:, 0], atol=1e-6)
    coco = batch.kp3d[0, 0, :17]
    assert torch.allclose(batch.init_kp[0, 0, :51], (coco - coco[[11, 12]].mean(0)).reshape(51), atol=1e-5)
    assert torch.allclose(batch.init_kp[0, 0, 51:], batch.x[0, 0], atol=1e-5)
    # noise-free inputs are the true 2D joints normalised by the box, as the online builder normalises them
    kp = torch.cat((batch.full_kp2d[..., :17, :], torch.ones(1, 81, 17, 1)), -1)
    x, _ = normalize_keypoints(kp, batch.bbox, (1000, 1000))
    assert torch.allclose(x, batch.x, atol=1e-4)
    assert not batch.mask.any() and float(batch.cam_angvel.abs().max()) < 1e-5


def test_contact_labels(body):
    still = build_batch(body, [standing_clip(100)], [Window(0, 0, 82)], torch.Generator().manual_seed(6), QUIET,
                        speed=False)
    assert float(still.contact.min()) == pytest.approx(1 / (1 + math.exp(-5)), abs=1e-4)
    fast = build_batch(body, [standing_clip(100, (0.05, 0.0, 0.0))], [Window(0, 0, 82)],
                       torch.Generator().manual_seed(6), QUIET, speed=False)
    assert float(fast.contact.max()) < 0.01
    tread = build_batch(body, [standing_clip(100, clip_id="treadmill_walk")], [Window(0, 0, 82)],
                        torch.Generator().manual_seed(6), QUIET, speed=False)
    assert bool((tread.contact == -1).all())


def test_samples_from_the_corpus_look_like_people_in_view(free_body, free_corpus_dir):
    clips = load_corpus_clips(free_corpus_dir, default_dir())
    wins = [w for b in WindowPlan(clips, "random", 32, 1, (54, 122), 0).epoch(0) for w in b]
    batch = build_batch(free_body, clips, wins, torch.Generator().manual_seed(0), AugmentConfig())
    inside = ((batch.full_kp2d > 0) & (batch.full_kp2d < 1000)).all(-1).float().mean()
    assert 0.6 < float(inside) < 1.0
    hip_depth = batch.kp3d[..., [11, 12], 2].mean(-1)
    assert float(hip_depth.min()) >= 0.5 - 1e-4 and 4 < float(hip_depth.mean()) < 10
    assert 0.2 < float((batch.contact > 0.5).float().mean()) < 0.9
