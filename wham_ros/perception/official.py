"""The official-quality front end: the WHAM demo's person and keypoint models, from weights the user downloads.

Per image: YOLOv8 person boxes (score > 0.5) -> ViTPose-H COCO-17 keypoints on each box (top-down, flip
test). Image features and the first body of each track come from HMR2.0, which the pipeline runs on the
box WHAM sees (:class:`wham_ros.pipeline.HumanPipeline`, ``features=``), with either front end.
"""
from __future__ import annotations

import numpy as np
import torch

from wham_ros.perception.base import Detection
from wham_ros.perception.tracker import suppress_duplicates
from wham_ros.perception.vitpose import ViTPoseEstimator
from wham_ros.perception.yolo import PersonDetector, load_yolo
from wham_ros.stream.inputs import KEYPOINT_THRESHOLD


class OfficialFrontEnd:
    """YOLOv8 + ViTPose-H: an RGB image (H, W, 3) uint8 -> detections with COCO-17 keypoints.

    ViTPose runs on the ``2 * max_people`` best boxes; of its results, those passing the official rule
    (>= ``min_confident_keypoints`` keypoints above 0.3) are returned, duplicates removed, at most
    ``max_people``, best first.
    """

    name = "official (YOLOv8 + ViTPose-H)"

    def __init__(self, detector: PersonDetector, pose: ViTPoseEstimator, max_people: int = 8,
                 min_confident_keypoints: int = 6) -> None:
        self.detector, self.pose = detector, pose
        self.max_people, self.min_confident_keypoints = max_people, min_confident_keypoints

    @classmethod
    def from_checkpoints(cls, yolo: str, vitpose: str, device: str | torch.device = "cpu",
                         detector_conf: float = 0.5, flip_test: bool = True, max_people: int = 8
                         ) -> OfficialFrontEnd:
        """Load ``yolov8x.pt`` (or its exported state_dict) and ``vitpose-h-multi-coco.pth``."""
        return cls(PersonDetector(load_yolo(yolo, device), conf=detector_conf),
                   ViTPoseEstimator.from_checkpoint(vitpose, device, flip_test=flip_test), max_people)

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
        return suppress_duplicates(detections)[: self.max_people]
