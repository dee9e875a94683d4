"""A person's colour signature, for re-identifying a track after it was lost (occlusion, a flip, a miss).

Hue-saturation histogram of the torso and upper legs: the box between the shoulders and
the knees when those keypoints are confident, else the middle of the detection box.
Clothes colours change little over seconds, while the background is mostly excluded.
"""
from __future__ import annotations

import cv2
import numpy as np

from wham_ros.perception.base import Detection
from wham_ros.stream.inputs import KEYPOINT_THRESHOLD

HUE_BINS, SAT_BINS = 16, 4


def _body_region(det: Detection, width: int, height: int) -> tuple[int, int, int, int] | None:
    kp = det.keypoints
    core = kp[[5, 6, 11, 12, 13, 14]]          # shoulders, hips, knees
    seen = core[core[:, 2] > KEYPOINT_THRESHOLD]
    if len(seen) >= 3:
        (x0, y0), (x1, y1) = seen[:, :2].min(0), seen[:, :2].max(0)
        pad = 0.15 * max(x1 - x0, 1.0)
        x0, x1 = x0 - pad, x1 + pad
    else:
        bx0, by0, bx1, by1 = det.bbox
        x0, x1 = bx0 + 0.25 * (bx1 - bx0), bx1 - 0.25 * (bx1 - bx0)
        y0, y1 = by0 + 0.2 * (by1 - by0), by1 - 0.3 * (by1 - by0)
    x0, y0 = int(max(x0, 0)), int(max(y0, 0))
    x1, y1 = int(min(x1, width)), int(min(y1, height))
    return (x0, y0, x1, y1) if x1 - x0 >= 4 and y1 - y0 >= 4 else None


def appearance(rgb: np.ndarray, det: Detection) -> np.ndarray | None:
    """Normalised hue-saturation histogram (HUE_BINS*SAT_BINS,) of the person's body, None if too small."""
    h, w = rgb.shape[:2]
    region = _body_region(det, w, h)
    if region is None:
        return None
    x0, y0, x1, y1 = region
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [HUE_BINS, SAT_BINS], [0, 180, 0, 256]).ravel()
    total = hist.sum()
    return hist / total if total > 0 else None


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya coefficient of two normalised histograms: 1 identical, 0 disjoint."""
    return float(np.sqrt(a * b).sum())
