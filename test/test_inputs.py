"""Causal input builders reproduce the official inputs from raw keypoints and initial bodies."""
from __future__ import annotations

import os

import torch

from wham_ros.geometry.gravity import init_root
from wham_ros.model import load_body_model
from wham_ros.stream import StreamEngine
from wham_ros.stream.inputs import (
    CausalBoxFilter,
    TrackInputBuilder,
    box_from_keypoints,
    demo_boxes,
    flip_bbox,
    flip_keypoints,
    initial_inputs,
    make_track_init,
    normalize_keypoints,
    official_focal,
)


def _raw(parity_dir):
    d = torch.load(os.path.join(parity_dir, "inputs.pt"), weights_only=True)
    return d["raw"], d["inputs"], d["flipped_inputs"]


def test_keypoint_normalisation_matches_official(parity_dir):
    raw, i, fi = _raw(parity_dir)
    res = (raw["width"], raw["height"])
    x, mask = normalize_keypoints(raw["keypoints"], raw["bbox"], res)
    torch.testing.assert_close(x, i["x"][0], rtol=0, atol=1e-6)
    assert torch.equal(mask, i["mask"][0])
    fx, fmask = normalize_keypoints(flip_keypoints(raw["keypoints"], raw["width"]),
                                    flip_bbox(raw["bbox"], raw["width"]), res)
    torch.testing.assert_close(fx, fi["x"][0], rtol=0, atol=1e-6)
    assert torch.equal(fmask, fi["mask"][0])


def test_demo_boxes_match_official_and_are_not_causal(parity_dir):
    raw, _, _ = _raw(parity_dir)
    boxes = demo_boxes(raw["keypoints"], raw["fps"])
    torch.testing.assert_close(boxes, raw["bbox"], rtol=0, atol=1e-4)        # official boxes are float32
    changed = raw["keypoints"].clone()
    changed[20:, :, :2] += 50.0
    assert not torch.allclose(demo_boxes(changed, raw["fps"])[13:20], boxes[13:20])


def test_causal_box_never_looks_ahead(parity_dir):
    raw, _, _ = _raw(parity_dir)
    kp = raw["keypoints"]
    changed = kp.clone()
    changed[20:, :, :2] += 50.0
    for window in (1, 5, 9):
        a, b = CausalBoxFilter(window), CausalBoxFilter(window)
        out_a = torch.stack([a(box_from_keypoints(k)) for k in kp])
        out_b = torch.stack([b(box_from_keypoints(k)) for k in changed])
        assert torch.equal(out_a[:20], out_b[:20])
        assert not torch.equal(out_a[20:], out_b[20:])


def test_box_from_keypoints_rules():
    kp = torch.zeros(17, 3)
    kp[:, 2] = 0.9
    kp[:, 0] = torch.linspace(100, 200, 17)
    kp[:, 1] = torch.linspace(300, 340, 17)
    box = box_from_keypoints(kp)
    torch.testing.assert_close(box, torch.tensor([150.0, 320.0, 100 * 1.2 / 200], dtype=torch.float64))
    kp[:16, 2] = 0.2
    assert box_from_keypoints(kp) is None


def test_track_init_matches_official(parity_dir):
    raw, i, fi = _raw(parity_dir)
    bm = load_body_model(os.path.join(parity_dir, "body_models"))
    init_kp, init_smpl = initial_inputs(bm, raw["init_global_orient"], raw["init_body_pose"], raw["init_betas"],
                                        i["x"][0, 0])
    torch.testing.assert_close(init_kp, i["init_kp"].reshape(88), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(init_smpl, i["init_smpl"].reshape(24, 6), rtol=0, atol=1e-7)
    torch.testing.assert_close(init_root(raw["init_global_orient"]), i["init_root"].reshape(6))
    ti = make_track_init(bm, raw["init_global_orient"], raw["init_body_pose"], raw["init_betas"], i["x"][0, 0],
                         flipped=(raw["flipped_init_global_orient"], raw["flipped_init_body_pose"],
                                  raw["flipped_init_betas"], fi["x"][0, 0]))
    torch.testing.assert_close(ti.flipped_init_kp, fi["init_kp"].reshape(88), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ti.flipped_init_smpl, fi["init_smpl"].reshape(24, 6), rtol=0, atol=1e-7)


def test_builder_feeds_the_engine_from_raw_keypoints(parity_dir, synthetic_net):
    raw, i, _ = _raw(parity_dir)
    builder = TrackInputBuilder((raw["width"], raw["height"]), box_window=5, flip_eval=True)
    assert builder.focal == official_focal(1280, 720)
    engine = StreamEngine(synthetic_net, flip_eval=True)
    bm = synthetic_net.smpl
    for t in range(5):
        frame = builder.frame(raw["keypoints"][t], i["cam_angvel"][0, t], i["features"][0, t], i["features"][0, t])
        if t == 0:
            engine.add_track(0, make_track_init(bm, raw["init_global_orient"], raw["init_body_pose"],
                                                raw["init_betas"], frame.x,
                                                flipped=(raw["flipped_init_global_orient"],
                                                         raw["flipped_init_body_pose"],
                                                         raw["flipped_init_betas"], frame.flipped_x)))
        result = engine.step({0: frame})
        assert not result.skipped and torch.isfinite(result.outputs[0].trans_world).all()
    blind = raw["keypoints"][0].clone()
    blind[:, 2] = 0.0
    assert torch.equal(builder.box(blind), builder.last_box)            # keeps the last box
    assert TrackInputBuilder((640, 480)).frame(blind, torch.zeros(6)) is None
