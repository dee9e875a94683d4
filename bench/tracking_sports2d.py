#!/usr/bin/env python3
"""Id stability of the embedded front end + tracker on the two-person sports2d clip.

    .venv/bin/python bench/tracking_sports2d.py [--scale 1.0] [--no-appearance] [--tiles 2]

Runs MediaPipe BlazePose (VIDEO mode) and the tracker over every frame, with the
pipeline's detection rule (>= 6 joints above 0.3), and scores the confirmed tracks
against the clip annotation in ``wham_ros.offline.tracking_eval``. Prints figures only.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import cv2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from wham_ros.offline.tracking_eval import SPORTS2D, score_ids
from wham_ros.perception.mediapipe_pose import MediaPipePose
from wham_ros.perception.tracker import Tracker, TrackState
from wham_ros.stream.inputs import KEYPOINT_THRESHOLD

SHARED = os.environ.get("WHAM_ROS_SHARED", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                         "shared"))
CLIP = os.path.join(SHARED, "data", "videos_people", "sports2d_demo.mp4")


def run(scale: float = 1.0, use_appearance: bool = True, min_joints: int = 6, tiles: int = 2):
    """Published (frame, id, box in full-resolution pixels) and per-frame tracker milliseconds."""
    estimator, tracker = MediaPipePose(max_people=4, tiles=tiles), Tracker()
    cap = cv2.VideoCapture(CLIP)
    published, track_ms, frame = [], [], 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        if scale != 1.0:
            bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        detections = [d for d in estimator(rgb, frame / 30.0)
                      if int((d.keypoints[:, 2] > KEYPOINT_THRESHOLD).sum()) >= min_joints]
        start = time.perf_counter()
        tracks = tracker.update(detections, frame / 30.0, rgb if use_appearance else None)
        track_ms.append((time.perf_counter() - start) * 1e3)
        published += [(frame, t.id, t.detection.bbox / scale) for t in tracks
                      if t.matched_now and t.state != TrackState.TENTATIVE]
        frame += 1
    return published, track_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="image scale given to the front end")
    parser.add_argument("--no-appearance", action="store_true", help="disable appearance re-identification")
    parser.add_argument("--tiles", type=int, default=2, help="MediaPipe windows along the image width")
    args = parser.parse_args()
    if not os.path.isfile(CLIP):
        sys.exit(f"clip not found: {CLIP}")
    published, track_ms = run(args.scale, not args.no_appearance, tiles=args.tiles)
    print(f"sports2d, front-end scale {args.scale}, {args.tiles} tile(s), "
          f"appearance re-id {'off' if args.no_appearance else 'on'}; "
          f"tracker {sum(track_ms) / len(track_ms):.2f} ms/frame")
    for s in score_ids(published, SPORTS2D):
        print(f"  {s.person:6s} visible {s.visible:3d}  published {s.published:3d}  ids {s.ids}  id changes "
              f"{s.id_changes}  duplicate frames {s.duplicate_frames}  main id {s.main_id}: {s.with_main_id} "
              f"frames = {s.id_consistency:.1%} of published, {s.coverage:.1%} of visible")


if __name__ == "__main__":
    main()
