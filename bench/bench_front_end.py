#!/usr/bin/env python3
"""Per-frame cost of each front-end stage at 640x480 with 1 and 3 people (figures only).

    .venv/bin/python bench/bench_front_end.py [--no-official]

Images: people cut from the real sports2d clip (one person filling a 640x480 view; three
people side by side). Stages: the embedded MediaPipe front end, the tracker (with colour
re-identification), the rest of the pipeline (keypoint smoothing, inputs, the WHAM step
with real-size synthetic weights, world placement), the visual camera-rotation estimate
(on the GoPro clip scaled to 640x480), and the official-quality models with random
weights of the real size (YOLOv8x, ViTPose-H with flip test, HMR2.0): their cost does not
depend on the weights, and each full-size output is checked for its shape and finiteness (the suite checks
the numbers on small configurations: test/test_front_end_reference.py). 1 torch thread; medians.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import cv2
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from timing import median_ms

from wham_ros.geometry.visual_rotation import VisualRotationEstimator
from wham_ros.model import build_network
from wham_ros.model.synthetic import make_test_state_dict, write_body_model
from wham_ros.perception.base import Detection
from wham_ros.perception.hmr2 import HMR2, HMR2Estimator
from wham_ros.perception.mediapipe_pose import MediaPipePose
from wham_ros.perception.tracker import Tracker
from wham_ros.perception.vitpose import ViTPose, ViTPoseEstimator
from wham_ros.perception.yolo import PersonDetector, YoloV8
from wham_ros.pipeline import HumanPipeline
from wham_ros.stream.inputs import box_from_keypoints

SHARED = os.environ.get("WHAM_ROS_SHARED", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                         "shared"))
PEOPLE_CLIP = os.path.join(SHARED, "data", "videos_people", "sports2d_demo.mp4")
GOPRO_CLIP = os.path.join(SHARED, "data", "video_imu", "gopro_max-heromode.mp4")
#: (frame, person box x0, y0, x1, y1 in the 1768x994 clip) of the people the views are cut from
PEOPLE = ((100, (898, 517, 1154, 960)), (30, (456, 14, 813, 484)), (215, (1195, 595, 1477, 927)))


def read_frames(path: str, wanted: set[int] | None = None, size: tuple[int, int] | None = None) -> dict:
    cap, out, k = cv2.VideoCapture(path), {}, 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        if wanted is None or k in wanted:
            if size is not None:
                bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
            out[k] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        k += 1
    return out


def view(rgb: np.ndarray, box, width: int, margin: float, height: int = 480) -> np.ndarray:
    """A width x height view centred on ``box``, the person's height times ``margin`` tall."""
    x0, y0, x1, y1 = box
    scale = height / ((y1 - y0) * margin)
    M = np.array([[scale, 0, width / 2 - scale * (x0 + x1) / 2], [0, scale, height / 2 - scale * (y0 + y1) / 2]])
    return cv2.warpAffine(rgb, M, (width, height), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)


def scenes() -> dict[int, np.ndarray]:
    frames = read_frames(PEOPLE_CLIP, {f for f, _ in PEOPLE})
    one = view(frames[PEOPLE[0][0]], PEOPLE[0][1], 640, 1.6)
    three = view(frames[PEOPLE[0][0]], PEOPLE[0][1], 640, 3.0)
    x = 25
    for frame, box in (PEOPLE[1], PEOPLE[0], PEOPLE[2]):
        three[:, x:x + 180] = view(frames[frame], box, 180, 1.3 * (1.3 if frame == 215 else 1.0))
        x += 205
    return {1: one, 3: three}


def person_boxes(n: int) -> np.ndarray:
    """n standing people side by side in a 640x480 image, xyxy."""
    centres = np.linspace(640 / (2 * n), 640 - 640 / (2 * n), n)
    return np.array([[c - 70, 60, c + 70, 440] for c in centres])


class Fixed:
    """A front end that returns the same detections every frame (isolates what follows it)."""

    name = "fixed"

    def __init__(self, detections: list[Detection]) -> None:
        self.detections = detections

    def __call__(self, rgb, stamp):
        return [Detection(d.keypoints.copy(), d.bbox.copy(), d.score) for d in self.detections]

    def reset(self):
        pass


class Clock:
    """Increasing stamps at 30 Hz (VIDEO-mode front ends and the tracker need them)."""

    def __init__(self) -> None:
        self.frame = 0

    def __call__(self) -> float:
        self.frame += 1
        return self.frame / 30.0


def moved_detections(template: Detection, n: int) -> list[Detection]:
    """A real person's keypoints moved into each of ``n`` side-by-side boxes."""
    dets = []
    lo, hi = template.bbox[:2], template.bbox[2:]
    for box in person_boxes(n):
        kp = template.keypoints.copy()
        kp[:, :2] = box[:2] + (kp[:, :2] - lo) * (box[2:] - box[:2]) / (hi - lo)
        dets.append(Detection(kp, box.astype(float), 0.9))
    return dets


def time_embedded(images: dict[int, np.ndarray]) -> dict[int, list[Detection]]:
    found = {}
    for tiles in (1, 2):
        for n, rgb in images.items():
            mp, clock = MediaPipePose(max_people=4, tiles=tiles), Clock()
            people = mp(rgb, clock())
            ms = median_ms(lambda mp=mp, rgb=rgb, clock=clock: mp(rgb, clock()), 30)
            print(f"  embedded MediaPipe BlazePose, {tiles} tile(s), {n}-person view: {ms:.1f} ms "
                  f"({len(people)} found)")
            found.setdefault(n, people)
    return found


def time_after_front_end(net, template: Detection, rgb: np.ndarray) -> None:
    for n in (1, 3):
        dets, tracker, clock = moved_detections(template, n), Tracker(birth_frames=1), Clock()
        track_ms = median_ms(lambda t=tracker, d=dets, c=clock: t.update(Fixed(d)(None, 0), c(), rgb), 50)
        pipe, clock = HumanPipeline(net, Fixed(dets), Tracker(birth_frames=1)), Clock()
        pipe_ms = median_ms(lambda p=pipe, c=clock: p.process(rgb, c(), np.zeros(6)), 30)
        print(f"  {n} person(s): tracker {track_ms:.2f} ms; pipeline after the front end (tracker, smoothing, "
              f"inputs, WHAM step, placement) {pipe_ms:.1f} ms")


def time_visual_rotation() -> None:
    gopro = read_frames(GOPRO_CLIP, set(range(60)), (640, 480))
    f = float(np.hypot(640, 480))
    visual = VisualRotationEstimator(np.array([[f, 0, 320], [0, f, 240], [0, 0, 1.0]]))
    frames = iter(sorted(gopro))

    def one() -> None:
        k = next(frames)
        visual(gopro[k], np.zeros((0, 4)), k / 29.97)

    print(f"  visual camera rotation (GoPro clip at 640x480): {median_ms(one, 50):.1f} ms")


def time_detector(rgb: np.ndarray) -> None:
    detector = PersonDetector(YoloV8("x").eval(), conf=0.0)
    boxes = detector(rgb)
    assert boxes.ndim == 2 and boxes.shape[1] == 5 and np.isfinite(boxes).all(), boxes.shape
    print(f"  official YOLOv8x (random weights) 640x480: {median_ms(lambda: detector(rgb), 3):.0f} ms")


def time_vitpose(images: dict[int, np.ndarray]) -> None:
    model = ViTPose().eval()
    crop = torch.randn(1, 3, 256, 192)
    with torch.inference_mode():
        heatmaps = model(crop)
        assert heatmaps.shape == (1, 17, 64, 48) and torch.isfinite(heatmaps).all(), heatmaps.shape
        print(f"  official ViTPose-H forward, one 256x192 crop: {median_ms(lambda: model(crop), 2):.0f} ms")
    pose = ViTPoseEstimator(model)
    for n in (1, 3):
        keypoints = pose(images[n], person_boxes(n))
        assert keypoints.shape == (n, 17, 3) and np.isfinite(keypoints).all(), keypoints.shape
        ms = median_ms(lambda n=n: pose(images[n], person_boxes(n)), 2)
        print(f"  official ViTPose-H (flip test), {n} person(s): {ms:.0f} ms")


def time_hmr2(images: dict[int, np.ndarray], crop: np.ndarray) -> None:
    hmr2 = HMR2Estimator(HMR2().eval())
    for n in (1, 3):
        res = hmr2(images[n], np.stack([crop] * n))
        assert res.feature.shape == (n, 1024) and res.body_pose.shape == (n, 23, 3, 3), res.feature.shape
        assert all(np.isfinite(v).all() for v in (res.feature, res.global_orient, res.body_pose, res.betas,
                                                    res.pred_cam))
        ms = median_ms(lambda n=n: hmr2(images[n], np.stack([crop] * n)), 2)
        print(f"  official HMR2.0 features + body, {n} person(s): {ms:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-official", action="store_true", help="skip the official-quality models")
    args = parser.parse_args()
    torch.set_num_threads(1)
    images = scenes()
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, 1 torch thread; 640x480 images")
    found = time_embedded(images)
    template = found[1][0]
    with tempfile.TemporaryDirectory() as tmp:
        net = build_network(make_test_state_dict(0), write_body_model(tmp))
    time_after_front_end(net, template, images[1])
    time_visual_rotation()
    if not args.no_official:
        torch.manual_seed(0)
        time_detector(images[1])            # one model in memory at a time (each is 0.3-2.7 GB)
        time_vitpose(images)
        time_hmr2(images, box_from_keypoints(torch.tensor(template.keypoints)).numpy())


if __name__ == "__main__":
    main()
