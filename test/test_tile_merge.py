"""One person seen by several windows of the embedded front end is one detection, whatever the orientation;
two people close together stay two. On keypoint arrays, then on real portrait frames with MediaPipe."""
from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest
from conftest import require_module

from wham_ros.perception.base import Detection
from wham_ros.perception.mediapipe_pose import tile_windows
from wham_ros.perception.tile_merge import TileMerger, keypoint_box
from wham_ros.perception.tracker import suppress_duplicates

#: a person standing with the arms down (COCO-17, x right, y down), 288 units from the eyes to the ankles
SKELETON = np.array([[0, -140], [8, -148], [-8, -148], [16, -144], [-16, -144], [36, -100], [-36, -100],
                     [42, -50], [-42, -50], [40, -5], [-40, -5], [22, 0], [-22, 0], [22, 70], [-22, 70],
                     [22, 140], [-22, 140]], dtype=float)
W, H = 640, 1138
STACKED = tile_windows(W, H, 2)                 # (0, 0, 640, 683) over (0, 455, 640, 1138)


def standing(cx: float, top: float, height: float) -> np.ndarray:
    """(17, 2) keypoints of a person whose eyes are at ``top`` and ankles ``height`` below."""
    scale = height / 288.0
    return SKELETON * scale + (cx, top + 148 * scale)


def seen_by(xy: np.ndarray, window: tuple[int, int, int, int], size: tuple[int, int] = (W, H)) -> Detection:
    """The view of one window: keypoints outside it keep their (extrapolated) place with confidence 0."""
    inside = (xy[:, 0] >= window[0]) & (xy[:, 0] < window[2]) & (xy[:, 1] >= window[1]) & (xy[:, 1] < window[3])
    kp = np.concatenate((xy, np.where(inside, 0.9, 0.0)[:, None]), 1)
    return Detection(kp, keypoint_box(kp, *size), float(kp[:, 2].mean()))


def ghost(xy: np.ndarray) -> Detection:
    """What a window holding only the lower body reports: a whole, confident skeleton fitted onto the legs,
    its face at the hips and its ankles at the ankles."""
    hips, ankles = xy[[11, 12], 1].mean(), xy[[15, 16], 1].mean()
    kp = np.concatenate((standing(xy[[11, 12], 0].mean(), hips, ankles - hips), np.full((17, 1), 0.95)), 1)
    return Detection(kp, keypoint_box(kp, W, H), 0.95)


def merge(detections: list[Detection], windows: list, size=(W, H)) -> list[Detection]:
    return TileMerger().merge(detections, windows, *size)


def test_a_tall_person_cut_by_stacked_windows_is_one_detection():
    body = standing(320, 120, 900)                          # eyes at 120, ankles at 1020: across both windows
    head_to_knees, legs = seen_by(body, STACKED[0]), ghost(body)
    assert len(suppress_duplicates([head_to_knees, legs])) == 2, "the box/OKS rule alone keeps both"
    (one,) = merge([head_to_knees, legs], STACKED)
    # the view that saw the head is kept: the other one named the hips a face
    np.testing.assert_allclose(one.keypoints[0, :2], body[0])
    # a view that extrapolates correctly instead: its confident keypoints fill in the ones the kept view missed
    (whole,) = merge([head_to_knees, seen_by(body, STACKED[1])], STACKED)
    assert (whole.keypoints[:, 2] > 0.3).all()
    np.testing.assert_allclose(whole.keypoints[:, :2], body)
    assert whole.bbox[3] > 1000 and whole.bbox[1] < 130


def test_whatever_the_orientation():
    """The same person lying across the two side-by-side windows of a landscape frame."""
    body = standing(320, 120, 900)[:, ::-1].copy()          # x and y swapped: head at the left
    side_by_side = tile_windows(H, W, 2)
    legs = ghost(body[:, ::-1].copy())
    legs.keypoints[:, :2] = legs.keypoints[:, 1::-1].copy()
    legs.bbox = keypoint_box(legs.keypoints, H, W)
    (one,) = merge([seen_by(body, side_by_side[0], (H, W)), legs], side_by_side, (H, W))
    np.testing.assert_allclose(one.keypoints[0, :2], body[0])


@pytest.mark.parametrize("gap", [0.3, 0.4])
def test_two_people_side_by_side_stay_two(gap):
    """Centres ``gap`` body heights apart: their hanging arms overlap, each is cut by the windows and
    each has a ghost on its legs; every ghost goes to its own person."""
    left, right = standing(320 - gap * 450, 120, 900), standing(320 + gap * 450, 120, 900)
    views = [seen_by(left, STACKED[0]), seen_by(right, STACKED[0]), ghost(left), ghost(right)]
    merged = merge(views, [STACKED[0], STACKED[0], STACKED[1], STACKED[1]])
    assert sorted(round(d.keypoints[0, 0]) for d in merged) == sorted(round(b[0, 0]) for b in (left, right))


def test_overlapping_people_in_different_windows_stay_two():
    """One person in each window, whole, their boxes overlapping in the shared band."""
    upper, lower = standing(260, 60, 560), standing(400, 520, 560)
    views = [seen_by(upper, STACKED[0]), seen_by(lower, STACKED[1])]
    assert len(merge(views, STACKED)) == 2


# ---------------------------------------------------------------- real portrait frames


def _ids_per_person(name: str, count: int | None = None) -> tuple[dict, Counter, int]:
    """Confirmed ids per person (frames each), frames with two confirmed tracks on one person, frames run."""
    from portrait_frames import view

    from wham_ros.perception.mediapipe_pose import MediaPipePose
    from wham_ros.perception.tracker import Tracker, TrackState
    from wham_ros.stream.inputs import KEYPOINT_THRESHOLD

    frames = view(name, count)
    estimator, tracker = MediaPipePose(max_people=4, tiles=2), Tracker()
    ids: dict[str, Counter] = defaultdict(Counter)
    duplicates: Counter = Counter()
    for k, rgb in enumerate(frames):
        detections = [d for d in estimator(rgb, k / 30) if (d.keypoints[:, 2] > KEYPOINT_THRESHOLD).sum() >= 6]
        shown = Counter()
        for t in tracker.update(detections, k / 30, rgb):
            if t.matched_now and t.state != TrackState.TENTATIVE:
                centre = (t.detection.bbox[0] + t.detection.bbox[2]) / 2
                person = ("man" if centre < rgb.shape[1] / 2 else "woman") if name == "pair" else name
                ids[person][t.id] += 1
                shown[person] += 1
        duplicates.update(p for p, n in shown.items() if n > 1)
    return ids, duplicates, len(frames)


@pytest.mark.parametrize("name, count, people, least_share", [
    ("man", 60, 1, 0.9),             # one person filling a phone frame, head-to-knees over hips-to-feet
    ("man_turned", 60, 1, 0.85),     # the same frames turned 90 degrees: windows side by side
    ("woman", None, 1, 0.75),        # the woman walking past (she enters in the first frames)
    ("pair", None, 2, 0.45),         # both side by side in one portrait frame, close enough to touch
])
def test_portrait_frames_give_one_id_per_person(name, count, people, least_share):
    """Measured: one id each and no frame with two tracks on one person; before the merge the man had
    2 ids in 60 frames (his legs' ghost confirmed as a second person), upright and turned, the woman 2."""
    require_module("mediapipe", "the embedded front end (mediapipe)")
    ids, duplicates, frames = _ids_per_person(name, count)
    assert len(ids) == people and all(len(c) == 1 for c in ids.values()), dict(ids)
    assert not duplicates, duplicates
    # and merging did not lose the people: each is published in most frames (births take 3)
    assert all(sum(c.values()) >= least_share * frames for c in ids.values()), (dict(ids), frames)
