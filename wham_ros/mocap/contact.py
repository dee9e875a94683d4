"""Foot contact labels as WHAM computes them for AMASS (training facts 2.5), and the floor.

Heights are -y in WHAM's y-down world; the floor is y = 0.
"""
from __future__ import annotations

import numpy as np

#: velocity (m/frame at 30 fps) where the label is 0.5, and the sigmoid's slope
CONTACT_VELOCITY = 0.01
CONTACT_SLOPE = 500.0


def foot_speed(points: np.ndarray) -> np.ndarray:
    """Central-difference speed (T, K) in m/frame of points (T, K, 3); the ends copy their neighbours."""
    if points.shape[0] < 3:
        raise ValueError(f"need at least 3 frames for foot speeds, got {points.shape[0]}")
    v = np.linalg.norm(points[2:] - points[:-2], axis=-1) / 2
    return np.concatenate((v[:1], v, v[-1:]))


def contact_labels(feet: np.ndarray) -> np.ndarray:
    """Soft labels (T, 4) in (0, 1) from world feet (T, 4, 3) at 30 fps: 1 / (1 + exp(500 (v - 0.01)))."""
    v = foot_speed(feet)
    return 1.0 / (1.0 + np.exp(np.clip(CONTACT_SLOPE * (v - CONTACT_VELOCITY), -50, 50)))


#: support levels within this band (m) above the lowest one count as the floor
FLOOR_BAND = 0.03


def ground_offset(feet: np.ndarray, labels: np.ndarray) -> float:
    """Height (m) of the soles above the floor where they rest on it.

    Over frames with a foot point in contact (label > 0.5), the lowest foot point's height
    h; the floor is the lowest support level: the median of h within ``FLOOR_BAND`` of h's
    5th percentile (a subject standing on a box or a climbing frame sets no floor). Without
    contact, the 5th percentile of h over all frames.
    """
    lowest = (-feet[..., 1]).min(axis=1)
    planted = (labels > 0.5).any(axis=1)
    h = lowest[planted] if planted.any() else lowest
    low = np.percentile(h, 5)
    return float(np.median(h[h <= low + FLOOR_BAND]) if planted.any() else low)
