"""The official-quality front end: the WHAM demo's models, from weights the user downloads.

Per image: YOLOv8 person boxes (score > 0.5) -> ViTPose-H COCO-17 keypoints on each box
(top-down, flip test) -> optionally HMR2.0 on each person's keypoint box, giving WHAM's
1024-d image feature and the body estimate a new track starts from. Without HMR2.0 the
engine runs in its no-feature mode and tracks start from the standing-pose initialisation.

Difference from the offline demo, which sees the whole video: the HMR2.0 crop is the box
of this frame's keypoints (the demo crops at the track's box after a non-causal median
filter), and the flipped feature is computed only when ``flip_features`` is set.
"""
from __future__ import annotations

import numpy as np
import torch

from wham_ros.perception.base import Detection
from wham_ros.perception.hmr2 import HMR2Estimator
from wham_ros.perception.tracker import suppress_duplicates
from wham_ros.perception.vitpose import ViTPoseEstimator
from wham_ros.perception.yolo import PersonDetector, load_yolo
from wham_ros.stream.inputs import KEYPOINT_THRESHOLD, box_from_keypoints

#: smallest HMR2.0 crop side (pixels) worth a feature: below it the crop is a blur of a few pixels
MIN_CROP_PX = 16.0


class OfficialFrontEnd:
    """YOLOv8 + ViTPose-H (+ HMR2.0): an RGB image (H, W, 3) uint8 -> detections with keypoints (and features).

    The heavy stages only see who can become a track: ViTPose runs on the ``2 * max_people`` best boxes; HMR2.0
    on the at most ``max_people`` best of those left after the official rule (>= ``min_confident_keypoints``
    keypoints above 0.3) and duplicate suppression. Only those are returned.
    """

    name = "official (YOLOv8 + ViTPose-H + HMR2.0)"

    def __init__(self, detector: PersonDetector, pose: ViTPoseEstimator, hmr2: HMR2Estimator | None = None,
                 flip_features: bool = False, max_people: int = 8, min_confident_keypoints: int = 6) -> None:
        self.detector, self.pose, self.hmr2, self.flip_features = detector, pose, hmr2, flip_features
        self.max_people, self.min_confident_keypoints = max_people, min_confident_keypoints
        if hmr2 is None:
            self.name = "official (YOLOv8 + ViTPose-H, no image features)"

    @classmethod
    def from_checkpoints(cls, yolo: str, vitpose: str, hmr2: str = "", device: str | torch.device = "cpu",
                         detector_conf: float = 0.5, flip_test: bool = True, flip_features: bool = False,
                         max_people: int = 8) -> OfficialFrontEnd:
        """Load ``yolov8x.pt``, ``vitpose-h-multi-coco.pth`` and optionally ``hmr2a.ckpt`` (empty: no features)."""
        return cls(PersonDetector(load_yolo(yolo, device), conf=detector_conf),
                   ViTPoseEstimator.from_checkpoint(vitpose, device, flip_test=flip_test),
                   HMR2Estimator.from_checkpoint(hmr2, device) if hmr2 else None, flip_features, max_people)

    def reset(self) -> None:
        """Nothing to forget: every image is processed on its own."""

    def __call__(self, rgb: np.ndarray, stamp: float) -> list[Detection]:
        boxes = self.detector(rgb)[: 2 * self.max_people]
        if len(boxes) == 0:
            return []
        keypoints = self.pose(rgb, boxes[:, :4])
        detections = [Detection(kp.astype(np.float64), box[:4].astype(np.float64), float(box[4]))
                      for kp, box in zip(keypoints, boxes)
                      if int((kp[:, 2] > KEYPOINT_THRESHOLD).sum()) >= self.min_confident_keypoints]
        detections = suppress_duplicates(detections)[: self.max_people]
        if self.hmr2 is not None:
            self._add_features(rgb, detections)
        return detections

    def _add_features(self, rgb: np.ndarray, detections: list[Detection]) -> None:
        crops = [(det, box_from_keypoints(torch.as_tensor(det.keypoints))) for det in detections]
        crops = [(det, box.numpy()) for det, box in crops if box is not None and 200 * float(box[2]) >= MIN_CROP_PX]
        if not crops:
            return
        boxes = np.stack([box for _, box in crops])
        result = self.hmr2(rgb, boxes)
        flipped = self.hmr2(rgb, boxes, flip=True) if self.flip_features else None
        for i, (det, _) in enumerate(crops):
            det.feature = result.feature[i]
            det.initial_body = result.initial_body(i)
            if flipped is not None:
                det.flipped_feature = flipped.feature[i]
                det.flipped_initial_body = flipped.initial_body(i)
