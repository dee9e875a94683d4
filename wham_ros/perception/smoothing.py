"""Causal keypoint smoothing: the one-euro filter the official demo's tracker applies to keypoints.

One-euro (Casiez et al., CHI 2012): an exponential low-pass whose cut-off rises with
the signal's speed, so slow motion is de-jittered and fast motion keeps little lag.
The official pipeline runs it on each matched track's (x, y) with min_cutoff 1.7,
beta 0.3, a derivative cut-off equal to the frame rate and a time step of one frame
(so it smooths only lightly); keypoints whose value is <= 0 are set to -10.
Past samples only.
"""
from __future__ import annotations

import math

import numpy as np


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Element-wise one-euro filter over arrays of any fixed shape; ``dt`` in frames by default."""

    def __init__(self, min_cutoff: float = 1.7, beta: float = 0.3, d_cutoff: float = 1.0) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    def reset(self) -> None:
        self._x = self._dx = None

    def __call__(self, x: np.ndarray, dt: float = 1.0) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None:
            self._x, self._dx = x.copy(), np.zeros_like(x)
            return x.copy()
        dx = (x - self._x) / dt
        a_d = _alpha(self.d_cutoff, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        a = _alpha(cutoff, dt)
        self._x = a * x + (1 - a) * self._x
        return self._x.copy()


class KeypointSmoother:
    """One-euro on a track's COCO-17 (x, y); confidences pass through. Official constants by default."""

    def __init__(self, min_cutoff: float = 1.7, beta: float = 0.3, fps: float = 30.0) -> None:
        self._filter = OneEuroFilter(min_cutoff, beta, d_cutoff=fps)

    def __call__(self, keypoints: np.ndarray, frames_since_last: int = 1) -> np.ndarray:
        kp = np.array(keypoints, dtype=np.float64)
        xy = kp[:, :2].copy()
        xy[xy <= 0] = -10.0
        kp[:, :2] = self._filter(xy, dt=float(max(frames_since_last, 1)))
        return kp
