"""Embedded default pose estimator: MediaPipe BlazePose (multi-person), CPU, no downloads at run time.

The model bundle is assembled at install time from the BlazePose files shipped in the
mediapipe 0.10.21 wheel on PyPI (``tools/build_pose_task.py``) and run with the
Tasks API of mediapipe 1.2.x in VIDEO mode, which tracks poses between frames.
BlazePose's 33 landmarks are mapped to COCO-17; their visibility is the confidence.
No image features or first-frame body come from this front end (the engine runs in
its no-feature mode and the pipeline's standing-pose initialisation is used).
"""
from __future__ import annotations

import os
import sys
import weakref

import numpy as np

from wham_ros.perception.base import Detection
from wham_ros.perception.tile_merge import TileMerger, keypoint_box

#: BlazePose landmark index of each COCO-17 keypoint
BLAZEPOSE_TO_COCO = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
MODEL_NAME = "pose_landmarker_full.task"


def default_model_path() -> str:
    """``$WHAM_ROS_POSE_MODEL``, else ``<prefix>/share/wham_ros/models/pose_landmarker_full.task`` (install.sh)."""
    return os.environ.get("WHAM_ROS_POSE_MODEL") or os.path.join(sys.prefix, "share", "wham_ros", "models",
                                                                 MODEL_NAME)


def _release(graph: list) -> None:
    while graph:
        landmarker = graph.pop()
        try:
            landmarker.close()
        except RuntimeError:
            # at interpreter exit MediaPipe's executor is already shut down and the OS frees the graph;
            # forgetting the handle keeps its destructor from trying again during module teardown
            landmarker._handle = None


def tile_windows(width: int, height: int, tiles: int, overlap: float = 0.2) -> list[tuple[int, int, int, int]]:
    """``tiles`` windows (x0, y0, x1, y1) along the image's longer side, neighbours sharing ``overlap`` of it.

    BlazePose's person detector sees the whole input at 224x224, so people who are small or at an edge of
    a wide image are often missed; smaller windows show them larger.
    """
    if tiles <= 1:
        return [(0, 0, width, height)]
    length = max(width, height)
    span = min(length, round(length * (1 + (tiles - 1) * overlap) / tiles))
    starts = [round(k * (length - span) / (tiles - 1)) for k in range(tiles)]
    if width >= height:
        return [(x, 0, x + span, height) for x in starts]
    return [(0, y, width, y + span) for y in starts]


class MediaPipePose:
    """Multi-person COCO-17 keypoints from BlazePose.

    max_people: poses per window; min_detection / min_presence / min_tracking: MediaPipe's thresholds;
    tiles: 1 runs on the whole image; 2 (default) or more run one tracker per overlapping window along the longer
    side (finds small, edge and crowded people a whole-image pass misses, at up to that many times the cost), and
    the views of a person seen by two windows, whole or cut by a window edge, are merged (``tile_merge``).
    """

    name = "embedded (MediaPipe BlazePose full)"

    def __init__(self, model_path: str | None = None, max_people: int = 4, min_detection: float = 0.5,
                 min_presence: float = 0.5, min_tracking: float = 0.5, tiles: int = 2) -> None:
        self.model_path = model_path or default_model_path()
        if not os.path.isfile(self.model_path):
            raise FileNotFoundError(f"pose model {self.model_path} not found: run ./install.sh, or build it with "
                                    f"tools/build_pose_task.py and set WHAM_ROS_POSE_MODEL")
        if tiles < 1:
            raise ValueError(f"tiles must be >= 1, got {tiles}")
        self.options = dict(num_poses=max_people, min_pose_detection_confidence=min_detection,
                            min_pose_presence_confidence=min_presence, min_tracking_confidence=min_tracking)
        self.tiles = tiles
        self.merger = TileMerger()
        self._graph: list = []          # one landmarker per window; emptied by _release
        self._windows: list[tuple[int, int, int, int]] = []
        self._finalizer = None
        self._last_ms = -1

    def _create(self):
        from mediapipe.tasks.python import BaseOptions
        from mediapipe.tasks.python.vision import PoseLandmarker, PoseLandmarkerOptions, RunningMode

        options = PoseLandmarkerOptions(base_options=BaseOptions(model_asset_path=self.model_path),
                                        running_mode=RunningMode.VIDEO, **self.options)
        return PoseLandmarker.create_from_options(options)

    def warm_up(self) -> None:
        """Build the graphs and run them once on a blank frame: MediaPipe's set-up (1-3 s) then happens
        here, not on the first camera image. A blank frame leaves nothing to track, so the graphs serve
        the first real image whatever its size."""
        self(np.zeros((480, 640, 3), np.uint8), 0.0)
        self._windows = []

    def reset(self) -> None:
        """Start over (VIDEO mode needs increasing timestamps; after a time jump it needs a new graph)."""
        if self._finalizer is not None:
            self._finalizer()
        self._windows = []
        self._last_ms = -1

    def __call__(self, rgb: np.ndarray, stamp: float) -> list[Detection]:
        import mediapipe as mp

        h, w = rgb.shape[:2]
        windows = tile_windows(w, h, self.tiles)
        if windows != self._windows:
            if self._windows:           # a new image size: trackers of other windows are useless
                self.reset()
            self._windows = windows
        if not self._graph:
            self._graph.extend(self._create() for _ in windows)
            # close the graphs at the latest when the interpreter exits: MediaPipe's own destructor fails
            # if it first runs during module teardown
            self._finalizer = weakref.finalize(self, _release, self._graph)
        ms = max(round(stamp * 1000), self._last_ms + 1)
        self._last_ms = ms
        detections, seen_by = [], []
        for landmarker, window in zip(self._graph, windows):
            x0, y0, x1, y1 = window
            crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
            result = landmarker.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=crop), ms)
            detections += [self._detection(landmarks, (x0, y0), (x1 - x0, y1 - y0), (w, h))
                           for landmarks in result.pose_landmarks]
            seen_by += [window] * len(result.pose_landmarks)
        return self.merger.merge(detections, seen_by, w, h) if len(windows) > 1 else detections

    @staticmethod
    def _detection(landmarks, origin: tuple[int, int], size: tuple[int, int], image: tuple[int, int]) -> Detection:
        """BlazePose landmarks of one window -> a COCO-17 detection in full-image pixels.

        Confidence = visibility x presence (both BlazePose probabilities), and 0 for a point predicted outside
        the window BlazePose saw (so outside the image too): WHAM must not take an extrapolated guess for an
        observed keypoint, and a copy of a person cut by a window edge then loses to the other window's copy.
        """
        pts = np.array([(origin[0] + lm.x * size[0], origin[1] + lm.y * size[1],
                         (lm.visibility if lm.visibility is not None else 0.0)
                         * (lm.presence if lm.presence is not None else 1.0)) for lm in landmarks])
        (x0, y0), (x1, y1) = origin, (origin[0] + size[0] - 1, origin[1] + size[1] - 1)
        outside = (pts[:, 0] < x0) | (pts[:, 0] > x1) | (pts[:, 1] < y0) | (pts[:, 1] > y1)
        pts[outside, 2] = 0.0
        kp = pts[list(BLAZEPOSE_TO_COCO)]
        # the box from all 33 landmarks: BlazePose's heels and feet reach below the COCO ankles
        return Detection(kp, keypoint_box(pts, *image), float(np.mean(kp[:, 2])))
