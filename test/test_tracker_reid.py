"""The tracker's decision boundaries: the motion-match threshold on both sides of it, and appearance
re-identification refused when two lost tracks compete for one detection (in reach or not)."""
from __future__ import annotations

import numpy as np
import pytest

from wham_ros.perception.appearance import appearance, similarity
from wham_ros.perception.base import Detection
from wham_ros.perception.tracker import REID_MARGIN, Tracker, TrackState

# a standing person (COCO-17) around (0, 0), 290 px tall; shoulders, hips and knees span y -100..70
SKELETON = np.array([[0, -140], [8, -148], [-8, -148], [16, -144], [-16, -144], [40, -100], [-40, -100],
                     [50, -50], [-50, -50], [55, 0], [-55, 0], [25, 0], [-25, 0], [25, 70], [-25, 70],
                     [25, 140], [-25, 140]], dtype=float)
RED, GREEN = (200, 30, 30), (30, 200, 30)
SIZE = (640, 1800)
FPS = 30.0


def person(x: float, y: float) -> Detection:
    kp = np.concatenate((SKELETON + (x, y), np.full((17, 1), 0.9)), 1)
    return Detection(kp, np.array([x - 60, y - 160, x + 60, y + 160]), 0.9)


def paint(img: np.ndarray, x: float, y: float, green_share: float = 0.0) -> np.ndarray:
    """A red body at (x, y) whose top ``green_share`` of the shoulder-to-knee region is green."""
    img[int(y - 150):int(y + 150), int(x - 60):int(x + 60)] = RED
    img[int(y - 100):int(y - 100 + round(170 * green_share)), int(x - 60):int(x + 60)] = GREEN
    return img


def blank() -> np.ndarray:
    return np.full((*SIZE, 3), 90, np.uint8)


@pytest.mark.parametrize("dx,matched", [(60, True), (70, False)])
def test_motion_match_threshold_is_the_default_0_2(dx, matched):
    """A detection beside a still person scores just above / just below 0.2: the same track, or a new one."""
    tr = Tracker()
    for t in range(5):
        tr.update([person(200, 320)], t / FPS)
    track = tr.tracks[0]
    assert track.state == TrackState.TRACKED and track.id == 1
    det = person(200 + dx, 320)
    score = tr.similarity(track, det)
    # the premise: each case sits within 0.05 of the threshold, on its own side
    assert (0.2 < score < 0.25) if matched else (0.15 < score < 0.2), score
    tracks = tr.update([det], 5 / FPS)
    owner = next(t for t in tracks if t.matched_now)
    if matched:
        assert owner is track and len(tracks) == 1
    else:
        assert owner is not track and owner.state == TrackState.TENTATIVE
        assert track.state == TrackState.LOST and not track.matched_now


@pytest.mark.parametrize("rival_x,rival_green,taken", [
    (700, 0.0, False),      # the rival looks the same and is in reach
    (1500, 0.0, False),     # the rival looks the same, out of reach: it still makes the match ambiguous
    (700, 0.05, False),     # the rival looks almost the same: within the margin
    (700, 0.15, True),      # the rival looks less alike by more than the margin
    (700, 1.0, True),       # a clearly different rival
])
def test_reidentification_needs_a_margin_over_every_other_lost_track(rival_x, rival_green, taken):
    """Two people vanish; one red person comes back between them. Their id goes to the track it clearly
    looks most like, or to nobody when another lost track looks nearly as much like it."""
    tr = Tracker(birth_frames=1, max_missed=30)
    seen = paint(paint(blank(), 200, 320), rival_x, 320, rival_green)
    for t in range(5):
        tr.update([person(200, 320), person(rival_x, 320)], t / FPS, seen)
    own, rival = sorted(tr.tracks, key=lambda t: t.detection.bbox[0])
    for t in range(5, 11):                    # lost for 0.2 s: a signature is trusted over such a gap
        tr.update([], t / FPS, blank())
    assert own.state == rival.state == TrackState.LOST

    back = person(320, 330)                   # too far from the own track's box for a motion match
    image = paint(blank(), 320, 330)
    signature = appearance(image, back)
    # the premise: the colour gap to the rival is on the expected side of the margin
    gap = similarity(own.appearance, signature) - similarity(rival.appearance, signature)
    assert similarity(own.appearance, signature) > 0.99 and tr.similarity(own, back) < 0.01
    assert (gap > REID_MARGIN) if taken else (0 <= gap < REID_MARGIN), gap

    tracks = tr.update([back], 11 / FPS, image)
    owner = next(t for t in tracks if t.matched_now)
    if taken:
        assert tr.reidentified == [own.id] and owner is own
    else:
        assert tr.reidentified == [] and owner.id not in (own.id, rival.id)
        assert own.state == rival.state == TrackState.LOST
