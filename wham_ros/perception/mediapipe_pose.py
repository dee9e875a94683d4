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


class MediaPipePose:
    """Multi-person COCO-17 keypoints from BlazePose.

    max_people: poses per image; min_detection / min_presence / min_tracking: MediaPipe's thresholds.
    """

    name = "embedded (MediaPipe BlazePose full)"

    def __init__(self, model_path: str | None = None, max_people: int = 4, min_detection: float = 0.5,
                 min_presence: float = 0.5, min_tracking: float = 0.5) -> None:
        self.model_path = model_path or default_model_path()
        if not os.path.isfile(self.model_path):
            raise FileNotFoundError(f"pose model {self.model_path} not found: run ./install.sh, or build it with "
                                    f"tools/build_pose_task.py and set WHAM_ROS_POSE_MODEL")
        self.options = dict(num_poses=max_people, min_pose_detection_confidence=min_detection,
                            min_pose_presence_confidence=min_presence, min_tracking_confidence=min_tracking)
        self._graph: list = []          # holds the landmarker; emptied by _release
        self._finalizer = None
        self._last_ms = -1

    def _create(self):
        from mediapipe.tasks.python import BaseOptions
        from mediapipe.tasks.python.vision import PoseLandmarker, PoseLandmarkerOptions, RunningMode

        options = PoseLandmarkerOptions(base_options=BaseOptions(model_asset_path=self.model_path),
                                        running_mode=RunningMode.VIDEO, **self.options)
        return PoseLandmarker.create_from_options(options)

    def reset(self) -> None:
        """Start over (VIDEO mode needs increasing timestamps; after a time jump it needs a new graph)."""
        if self._finalizer is not None:
            self._finalizer()
        self._last_ms = -1

    def __call__(self, rgb: np.ndarray, stamp: float) -> list[Detection]:
        import mediapipe as mp

        if not self._graph:
            self._graph.append(self._create())
            # close the graph at the latest when the interpreter exits: MediaPipe's own destructor fails
            # if it first runs during module teardown
            self._finalizer = weakref.finalize(self, _release, self._graph)
        ms = max(round(stamp * 1000), self._last_ms + 1)
        self._last_ms = ms
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        result = self._graph[0].detect_for_video(image, ms)
        h, w = rgb.shape[:2]
        detections = []
        for landmarks in result.pose_landmarks:
            pts = np.array([(lm.x * w, lm.y * h, lm.visibility if lm.visibility is not None else 0.0)
                            for lm in landmarks])
            kp = pts[list(BLAZEPOSE_TO_COCO)]
            seen = pts[pts[:, 2] > 0.3] if (pts[:, 2] > 0.3).sum() >= 2 else pts
            lo, hi = seen[:, :2].min(0), seen[:, :2].max(0)
            pad = 0.1 * (hi - lo)
            box = np.concatenate((np.maximum(lo - pad, 0), np.minimum(hi + pad, (w - 1, h - 1))))
            detections.append(Detection(kp, box, float(np.mean(kp[:, 2]))))
        return detections
