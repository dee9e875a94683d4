"""The official-quality front end (YOLOv8 -> ViTPose-H -> HMR2.0) put together, with small random-weight
models of the same architectures, on a real frame; and the node's choice of front end."""
from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
import torch
from conftest import SHARED, require_file, require_module

from wham_ros.errors import CheckpointError, WhamError
from wham_ros.perception.hmr2 import HMR2, HMR2Estimator
from wham_ros.perception.official import OfficialFrontEnd
from wham_ros.perception.smpl_head import DecoderConfig
from wham_ros.perception.tracker import Tracker, is_duplicate
from wham_ros.perception.vit import ViTConfig
from wham_ros.perception.vitpose import ViTPose, ViTPoseEstimator
from wham_ros.perception.yolo import PersonDetector, YoloV8
from wham_ros.pipeline import HumanPipeline

cv2 = require_module("cv2", "OpenCV")
SMALL_VIT = ViTConfig(embed_dim=64, depth=2, num_heads=4)
#: WHAM reads 1024-d features: keep the decoder's width, shrink the rest
FEATURE_DEC = DecoderConfig(dim=1024, depth=1, heads=2, dim_head=16, mlp_dim=64, context_dim=64)
VIDEO = os.path.join(SHARED, "data", "videos_people", "sports2d_demo.mp4")


def real_frame() -> np.ndarray:
    cap = cv2.VideoCapture(require_file(VIDEO, "the sports2d video"))
    for _ in range(100):
        ok, bgr = cap.read()
        assert ok
    return cv2.cvtColor(cv2.resize(bgr, (884, 497), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)


def small_models(seed: int = 0):
    torch.manual_seed(seed)
    yolo = YoloV8("n").eval()
    with torch.no_grad():      # random weights, but "person" is every anchor's top class
        for level in yolo.model[22].cv3:
            level[2].bias[0] = 20.0
    vitpose = ViTPose(SMALL_VIT).eval()
    with torch.no_grad():      # and every heatmap confident, so each person gets a keypoint box to crop
        vitpose.keypoint_head.final_layer.bias.fill_(1.0)
    return yolo, vitpose, HMR2(SMALL_VIT, FEATURE_DEC).eval()


def test_every_detected_person_gets_keypoints():
    yolo, vitpose, _ = small_models()
    # random weights score everything near 0.5: take every box the detector keeps
    front = OfficialFrontEnd(PersonDetector(yolo, conf=0.0, max_det=6), ViTPoseEstimator(vitpose), max_people=3)
    rgb = real_frame()
    dets = front(rgb, 0.0)
    assert 1 <= len(dets) <= 3
    boxes = [tuple(b[:4]) for b in front.detector(rgb)]
    for det in dets:
        assert det.keypoints.shape == (17, 3) and np.isfinite(det.keypoints).all()
        assert (det.keypoints[:, 2] > 0.3).sum() >= 6
        assert min(np.abs(np.array(b) - det.bbox).max() for b in boxes) < 1e-3      # one of the detector's boxes
        assert det.feature is None and det.initial_body is None
    assert not any(is_duplicate(a, b) for a, b in itertools.combinations(dets, 2))
    again = front(rgb, 1.0)
    for a, b in zip(dets, again):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)


class FixedBoxes:
    """A detector that always reports the same person boxes (the network part is tested elsewhere)."""

    def __init__(self, boxes=((320.0, 40.0, 560.0, 460.0, 0.9),)) -> None:
        self.boxes = np.array(boxes, dtype=np.float32)

    def __call__(self, rgb):
        return self.boxes


class UprightPose:
    """Keypoints of a standing person filling the box, all confident (a box wider than tall: none confident)."""

    def __call__(self, rgb, boxes):
        from test_pipeline import SKELETON

        out = []
        for x0, y0, x1, y1 in boxes:
            scale = (y1 - y0) / 320.0
            xy = SKELETON * scale + ((x0 + x1) / 2, (y0 + y1) / 2)
            confident = 0.9 if y1 - y0 > x1 - x0 else 0.1
            out.append(np.concatenate((xy, np.full((17, 1), confident)), 1))
        return np.array(out)


def test_only_people_who_can_become_tracks_are_returned():
    boxes = [(20.0, 40.0, 140.0, 400.0, 0.95), (24.0, 42.0, 142.0, 402.0, 0.9),       # one person twice
             (200.0, 100.0, 500.0, 160.0, 0.85),                                       # no confident keypoints
             (300.0, 40.0, 420.0, 400.0, 0.8), (450.0, 40.0, 570.0, 400.0, 0.7)]
    front = OfficialFrontEnd(FixedBoxes(boxes), UprightPose(), max_people=4)
    rgb = np.zeros((480, 640, 3), np.uint8)
    assert [d.score for d in front(rgb, 0.0)] == pytest.approx([0.95, 0.8, 0.7])
    front.max_people = 2
    assert [d.score for d in front(rgb, 0.0)] == pytest.approx([0.95, 0.8])


class RecordingHMR2(HMR2Estimator):
    """HMR2.0 that remembers the boxes it was asked to crop."""

    def __init__(self, model) -> None:
        super().__init__(model)
        self.calls: list[tuple[np.ndarray, bool]] = []

    def __call__(self, rgb, boxes, flip=False):
        self.calls.append((np.array(boxes), flip))
        return super().__call__(rgb, boxes, flip)


def test_hmr2_runs_on_the_box_wham_sees_and_drives_the_engine(synthetic_net):
    _, _, hmr2_model = small_models()
    rgb = (np.random.default_rng(0).random((480, 640, 3)) * 255).astype(np.uint8)

    def run(features, flip_eval=False):
        pipe = HumanPipeline(synthetic_net, OfficialFrontEnd(FixedBoxes(), UprightPose()), Tracker(birth_frames=1),
                             features=features, flip_eval=flip_eval)
        outs = []
        for t in range(4):
            outs.append(pipe.process(rgb, t / 30, np.zeros(6))[0].output)
            if features is not None:
                np.testing.assert_allclose(features.calls[-1][0][0], pipe._contexts[1].builder.last_box.numpy())
        return pipe, outs

    hmr2 = RecordingHMR2(hmr2_model)
    with_features, outs = run(hmr2)
    without, plain = run(None)
    assert with_features.engine._tracks[1].use_features and not without.engine._tracks[1].use_features
    assert not torch.allclose(outs[-1].pose, plain[-1].pose)
    assert [flip for _, flip in hmr2.calls] == [False] * 4
    flipping = RecordingHMR2(hmr2_model)
    _, flip_outs = run(flipping, flip_eval=True)
    assert all(o is not None for o in flip_outs) and [f for _, f in flipping.calls] == [False, True] * 4


def test_people_too_small_to_crop_get_no_feature(synthetic_net):
    _, _, hmr2_model = small_models()
    hmr2 = RecordingHMR2(hmr2_model)
    speck = FixedBoxes([(600.0, 200.0, 603.0, 208.0, 0.9)])           # keypoint box a few pixels tall
    pipe = HumanPipeline(synthetic_net, OfficialFrontEnd(speck, UprightPose()), Tracker(birth_frames=1),
                         features=hmr2)
    for t in range(3):
        pipe.process(np.zeros((480, 640, 3), np.uint8), t / 30, np.zeros(6))
    assert hmr2.calls == [] and pipe.engine.frames_of(1) == 3


def test_the_node_front_end_choice_fails_clearly_without_usable_weights(tmp_path):
    require_module("rclpy", "ROS 2 (rclpy)")
    from wham_ros.factory import make_estimator, make_feature_extractor
    from wham_ros.ros.params import BY_NAME

    params = {p: BY_NAME[p].default for p in BY_NAME} | {"front_end": "official"}
    with pytest.raises(WhamError, match="yolo_checkpoint"):
        make_estimator(params.get)
    small = tmp_path / "yolov8n_state_dict.pt"
    torch.save(YoloV8("n").state_dict(), small)
    missing = str(tmp_path / "vitpose-h-multi-coco.pth")
    with pytest.raises(CheckpointError, match="does not exist"):
        make_estimator((params | {"yolo_checkpoint": str(small), "vitpose_checkpoint": missing}).get)
    with pytest.raises(WhamError, match="unknown"):
        make_estimator((params | {"front_end": "openpose"}).get)
    assert make_feature_extractor(params.get) is None
    with pytest.raises(CheckpointError, match="does not exist"):
        make_feature_extractor((params | {"hmr2_checkpoint": str(tmp_path / "hmr2a.ckpt")}).get)
    embedded = make_estimator((params | {"front_end": "embedded", "pose_tiles": 2}).get)
    assert embedded.tiles == 2 and embedded.name.startswith("embedded")
