#!/usr/bin/env python3
"""Id stability of the embedded front end + tracker on the two-person sports2d clip.

    .venv/bin/python bench/tracking_sports2d.py [--scale 1.0] [--no-appearance] [--tiles 2]
    .venv/bin/python bench/tracking_sports2d.py --loops 10 [--step 4]

Runs MediaPipe BlazePose (VIDEO mode) and the tracker over every frame, with the
pipeline's detection rule (>= 6 joints above 0.3), and scores the confirmed tracks
against the clip annotation in ``wham_ros.offline.tracking_eval``. With ``--loops`` the clip
plays that many times in a row as one stream (a long run; the loop point is a real
discontinuity), ``--step k`` processing every k-th frame as a node that drops busy frames
does. Prints figures only.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import cv2

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from wham_ros.offline.tracking_eval import SPORTS2D, score_ids, score_long_run
from wham_ros.perception.mediapipe_pose import MediaPipePose
from wham_ros.perception.tracker import Tracker, TrackState
from wham_ros.stream.inputs import KEYPOINT_THRESHOLD

SHARED = os.environ.get("WHAM_ROS_SHARED", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                         "shared"))
CLIP = os.path.join(SHARED, "data", "videos_people", "sports2d_demo.mp4")
CLIP_FRAMES = 230


def clip_frames(scale: float = 1.0) -> list:
    """The clip's frames as RGB, scaled by ``scale``."""
    cap = cv2.VideoCapture(CLIP)
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            return frames
        if scale != 1.0:
            bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def run(scale: float = 1.0, use_appearance: bool = True, min_joints: int = 6, tiles: int = 2, loops: int = 1,
        step: int = 1, events: list | None = None):
    """Published (frame count, id, box in full-resolution pixels) and per-frame tracker milliseconds.

    loops: plays the clip that many times as one stream at 30 fps; step: processes every step-th frame.
    events: if given, receives (frame count, "death" or "reid", id) of the tracker's deaths and
    re-identifications.
    """
    # lost tracks die after max_missed frames or that many 30 Hz frames of time, as in the node
    tracker = Tracker(max_lost_time=Tracker().max_missed / 30.0)
    estimator = MediaPipePose(max_people=4, tiles=tiles)
    clip = clip_frames(scale)
    published, track_ms = [], []
    for count in range(0, loops * len(clip), step):
        rgb, stamp = clip[count % len(clip)], count / 30.0
        detections = [d for d in estimator(rgb, stamp)
                      if int((d.keypoints[:, 2] > KEYPOINT_THRESHOLD).sum()) >= min_joints]
        start = time.perf_counter()
        tracks = tracker.update(detections, stamp, rgb if use_appearance else None)
        track_ms.append((time.perf_counter() - start) * 1e3)
        published += [(count, t.id, t.detection.bbox / scale) for t in tracks
                      if t.matched_now and t.state != TrackState.TENTATIVE]
        if events is not None:
            events += [(count, "death", i) for i in tracker.dead] + [(count, "reid", i) for i in tracker.reidentified]
    return published, track_ms


def report_long_run(published, events, loops: int, step: int) -> None:
    minutes = loops * CLIP_FRAMES / 30.0 / 60.0
    ids = {i for _, i, _ in published}
    print(f"sports2d x {loops} loops ({minutes:.1f} min at 30 fps), every {step} frame(s): {len(ids)} ids published "
          f"({len(ids) / minutes:.1f} per minute); {sum(e[1] == 'reid' for e in events)} re-identifications, "
          f"{sum(e[1] == 'death' for e in events)} deaths")
    for s in score_long_run(published, SPORTS2D, CLIP_FRAMES):
        print(f"  {s.person:6s} passes {s.passes}  ids {len(s.ids)} ({s.ids})  changes within a pass "
              f"{s.changes_within_pass}  across the loop point {s.changes_across_loop}  ids shared with the other "
              f"person {s.shared_ids}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="image scale given to the front end")
    parser.add_argument("--no-appearance", action="store_true", help="disable appearance re-identification")
    parser.add_argument("--tiles", type=int, default=2, help="MediaPipe windows along the image width")
    parser.add_argument("--loops", type=int, default=1, help="play the clip this many times as one stream")
    parser.add_argument("--step", type=int, default=1, help="process every step-th frame (a node dropping frames)")
    args = parser.parse_args()
    if not os.path.isfile(CLIP):
        sys.exit(f"clip not found: {CLIP}")
    if args.loops > 1 or args.step > 1:
        events: list = []
        published, _ = run(args.scale, not args.no_appearance, tiles=args.tiles, loops=args.loops, step=args.step,
                           events=events)
        report_long_run(published, events, args.loops, args.step)
        return
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
