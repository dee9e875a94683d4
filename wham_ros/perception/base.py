"""The front-end interface the pipeline and the node use, whatever model runs behind it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from wham_ros.errors import InputError

#: COCO-17 keypoint names, WHAM's 2D input order
COCO_NAMES = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
              "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
              "right_knee", "left_ankle", "right_ankle")


@dataclass
class InitialBody:
    """A first-frame SMPL estimate for a new track (e.g. HMR2.0's), camera frame."""

    global_orient: np.ndarray     # (3, 3)
    body_pose: np.ndarray         # (23, 3, 3)
    betas: np.ndarray             # (10,)


@dataclass
class Detection:
    """One person in one image.

    keypoints (17, 3): COCO-17 [x, y, confidence] in pixels of the full image.
    bbox (4,): x_min, y_min, x_max, y_max in pixels.
    feature (1024,): HMR2.0 image feature, when the front end computes one.
    flipped_feature: the same for the mirrored crop (flip evaluation).
    initial_body: first-frame body estimate, when the front end computes one.
    flipped_initial_body: the estimate on the mirrored crop (flip evaluation).
    """

    keypoints: np.ndarray
    bbox: np.ndarray
    score: float = 1.0
    feature: np.ndarray | None = None
    flipped_feature: np.ndarray | None = None
    initial_body: InitialBody | None = None
    flipped_initial_body: InitialBody | None = None
    extras: dict = field(default_factory=dict)


def check_rgb(rgb: object, who: str) -> None:
    """Raise :class:`InputError` naming ``who`` unless ``rgb`` is an (H, W, 3) uint8 array."""
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3):
        raise InputError(f"{who} expects an RGB image (H, W, 3) uint8, got "
                         f"{getattr(rgb, 'shape', type(rgb).__name__)} {getattr(rgb, 'dtype', '')}")


def box_array(boxes: object, columns: int, who: str, layout: str) -> np.ndarray:
    """``boxes`` as a float64 (N, columns) array (an empty input gives N = 0); :class:`InputError` otherwise."""
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, columns)
    if boxes.ndim != 2 or boxes.shape[1] != columns:
        raise InputError(f"{who} expects boxes (N, {columns}) {layout}, got shape {boxes.shape}")
    return boxes


class PoseEstimator(Protocol):
    """Detects people and their 2D keypoints in an RGB image (H, W, 3) uint8."""

    name: str

    def __call__(self, rgb: np.ndarray, stamp: float) -> list[Detection]: ...

    def reset(self) -> None: ...
