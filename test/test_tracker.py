"""The tracker: confirmed-first matching, duplicate suppression, appearance re-identification, births
and deaths on synthetic scenes, and id stability on the real two-person sports2d clip."""
from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
from conftest import SHARED, require_file, require_module

from wham_ros.offline.tracking_eval import SPORTS2D, ClipAnnotation, score_ids, score_long_run
from wham_ros.perception.appearance import appearance, similarity
from wham_ros.perception.base import Detection
from wham_ros.perception.tracker import UNCONFIRMED, Tracker, TrackState

FPS = 30.0
SKELETON = np.array([[0, -140], [8, -148], [-8, -148], [16, -144], [-16, -144], [40, -100], [-40, -100],
                     [50, -50], [-50, -50], [55, 0], [-55, 0], [25, 0], [-25, 0], [25, 70], [-25, 70],
                     [25, 140], [-25, 140]], dtype=float)


def person(x: float, y: float, score: float = 0.9) -> Detection:
    kp = np.concatenate((SKELETON + (x, y), np.full((17, 1), 0.9)), 1)
    return Detection(kp, np.array([x - 60, y - 160, x + 60, y + 160]), score)


def scene(people: list[tuple[float, float, tuple[int, int, int]]], size=(640, 960)) -> np.ndarray:
    """A grey image with each person's body painted in a flat colour."""
    img = np.full((*size, 3), 90, np.uint8)
    for x, y, colour in people:
        img[int(y - 110):int(y + 90), int(x - 50):int(x + 50)] = colour
    return img


def test_births_deaths_and_ids_never_reused():
    tr = Tracker(birth_frames=3, max_missed=2)
    seen = [(track.state, track.id) for track in (tr.update([person(200, 300)], t)[0] for t in range(3))]
    # the id comes with confirmation
    assert seen == [(TrackState.TENTATIVE, UNCONFIRMED), (TrackState.TENTATIVE, UNCONFIRMED), (TrackState.TRACKED, 1)]
    first = tr.tracks[0].id
    for t in range(3, 5):
        assert tr.update([], t)[0].state == TrackState.LOST
    tr.update([], 5)
    assert tr.dead == [first] and not tr.tracks
    for t in range(6, 9):
        tr.update([person(200, 300)], t)
    assert tr.tracks[0].id > first
    tr.update([person(500, 300)], 9)
    tr.update([], 10)                                    # a tentative track dies at its first miss, unreported
    assert tr.dead == [] and len(tr.tracks) == 1


@pytest.mark.parametrize("rate", [30.0, 3.75])
def test_a_lost_track_dies_after_its_time_whatever_the_processing_rate(rate):
    """max_lost_time bounds how long a lost track lives when few frames are processed (a busy node)."""
    tr = Tracker(birth_frames=1, max_missed=30, max_lost_time=1.0)
    tr.update([person(200, 300)], 0.0)
    first = tr.tracks[0].id
    stamps = [k / rate for k in range(1, int(2 * rate))]
    died_at = next(t for t in stamps if (tr.update([], t), tr.dead)[1] == [first])
    assert died_at == pytest.approx(1.0 + 1.0 / rate, abs=1.01 / rate)


def test_stray_detections_use_up_no_ids():
    """A stray detection every other frame (never confirmed) must not advance the ids people get."""
    tr = Tracker(birth_frames=3)
    for t in range(41):
        tr.update([person(200, 300)] + ([person(520, 300 + 7 * t)] if t % 2 else []), t)
    assert [t.id for t in tr.tracks] == [1]
    for t in range(41, 44):                              # a second person who stays
        tracks = tr.update([person(200, 300), person(520, 300)], t)
    assert sorted(t.id for t in tracks) == [1, 2]


def test_a_stray_duplicate_cannot_take_a_person_from_its_track():
    tr = Tracker(birth_frames=2, duplicate_overlap=1.0)       # duplicates kept: only the cascade protects
    for t in range(5):
        tr.update([person(200 + 4 * t, 300)], t)
    main = tr.tracks[0].id
    tr.update([person(220, 300), person(250, 300, score=0.95)], 5)   # a second pose near the person
    tracks = tr.update([person(246, 300)], 6)          # closer to the stray one's box than to the track's
    owner = next(t for t in tracks if t.matched_now)
    assert owner.id == main


def test_duplicate_poses_of_one_person_are_suppressed():
    tr = Tracker()
    kept = tr.suppress_duplicates([person(200, 300, 0.8), person(205, 302, 0.9), person(500, 300, 0.7)])
    assert [d.score for d in kept] == [0.9, 0.7]
    upper_body = person(200, 300)
    upper_body.bbox = np.array([150.0, 140.0, 250.0, 300.0])   # inside the full-body box
    assert len(tr.suppress_duplicates([person(200, 300), upper_body])) == 1
    assert len(tr.suppress_duplicates([person(200, 300), person(330, 300)])) == 2


def test_a_lost_person_who_reappears_far_away_keeps_its_id_by_appearance():
    red, blue = (200, 30, 30), (30, 60, 200)
    tr = Tracker(birth_frames=1, max_missed=30)
    for t in range(5):
        tr.update([person(200, 320), person(700, 320)], t / FPS, scene([(200, 320, red), (700, 320, blue)]))
    ids = {int(tr.tracks[0].detection.bbox[0] + 60): tr.tracks[0].id,
           int(tr.tracks[1].detection.bbox[0] + 60): tr.tracks[1].id}
    for t in range(5, 15):                             # the red person vanishes (e.g. a flip behind a tree)
        tr.update([person(700, 320)], t / FPS, scene([(700, 320, blue)]))
    tracks = tr.update([person(450, 330), person(700, 320)], 15 / FPS,
                       scene([(450, 330, red), (700, 320, blue)]))
    red_track = next(t for t in tracks if t.matched_now and t.detection.bbox[0] + 60 == 450)
    assert red_track.id == ids[200] and tr.reidentified == [ids[200]]
    # without the image (no appearance) the jump cannot be bridged: a new id
    plain = Tracker(birth_frames=1, max_missed=30)
    for t in range(5):
        plain.update([person(200, 320)], t / FPS)
    for t in range(5, 15):
        plain.update([], t / FPS)
    assert plain.update([person(450, 330)], 15 / FPS)[0].id != 1


@pytest.mark.parametrize("gap, kept", [(0.5, True), (1.0, False)])
def test_reidentification_only_over_short_gaps(gap, kept):
    """Colour signatures bridge a flip (under a second), not a longer absence: over that much time light and
    pose change a signature as much as another person would (measured on sports2d played in a loop)."""
    red = (200, 30, 30)
    tr = Tracker(birth_frames=1, max_missed=60)
    for t in range(5):
        tr.update([person(200, 320)], t / FPS, scene([(200, 320, red)]))
    missing = round(gap * FPS)
    for t in range(5, 4 + missing):
        tr.update([], t / FPS, scene([]))
    tracks = tr.update([person(450, 330)], (4 + missing) / FPS, scene([(450, 330, red)]))
    assert (tr.reidentified == [1]) == kept and (tracks[0].id == 1) == kept


def test_reidentification_needs_similar_colours_and_reach():
    red, green = (200, 30, 30), (30, 200, 30)
    tr = Tracker(birth_frames=1)
    for t in range(3):
        tr.update([person(200, 320)], t / FPS, scene([(200, 320, red)]))
    for t in range(3, 6):
        tr.update([], t / FPS, scene([]))
    tracks = tr.update([person(450, 330)], 6 / FPS, scene([(450, 330, green)]))     # someone else
    assert tr.reidentified == [] and next(t for t in tracks if t.matched_now).id != 1
    far = Tracker(birth_frames=1)
    for t in range(3):
        far.update([person(100, 320)], t / FPS, scene([(100, 320, red)]))
    far.update([], 3 / FPS, scene([]))
    far.update([person(850, 320)], 4 / FPS, scene([(850, 320, red)]))               # too far for one missed frame
    assert far.reidentified == []


def test_appearance_signature():
    img = scene([(200, 320, (200, 30, 30)), (600, 320, (30, 60, 200))])
    a, b = appearance(img, person(200, 320)), appearance(img, person(600, 320))
    assert a.shape == (64,) and abs(a.sum() - 1) < 1e-6
    assert similarity(a, a) == pytest.approx(1.0) and similarity(a, b) < 0.5
    assert appearance(img, Detection(np.zeros((17, 3)), np.array([10.0, 10.0, 12.0, 12.0]))) is None


def test_score_ids_counts_consistency_and_coverage():
    ann = ClipAnnotation((100, 100), {"a": (0, 9), "b": (0, 4)}, lambda f, box: "a" if box[0] < 50 else "b")
    left, right = np.array([10, 0, 20, 10]), np.array([60, 0, 70, 10])
    published = [(f, 1 if f < 8 else 3, left) for f in range(10) if f != 2] + [(f, 2, right) for f in range(4)]
    published.append((5, 9, left))              # a second track on "a" in frame 5
    a, b = score_ids(published, ann)
    assert a.duplicate_frames == 1 and b.duplicate_frames == 0 and 9 not in a.ids
    assert (a.visible, a.published, a.main_id, a.with_main_id, a.id_changes) == (10, 9, 1, 7, 1)
    assert a.id_consistency == pytest.approx(7 / 9) and a.coverage == pytest.approx(0.7)
    assert (b.published, b.with_main_id, b.coverage) == (4, 4, 0.8)


def test_score_long_run_tells_loop_point_changes_from_swaps():
    ann = ClipAnnotation((100, 100), {"a": (0, 9), "b": (5, 9)}, lambda f, box: "a" if box[0] < 50 else "b")
    left, right = np.array([10, 0, 20, 10]), np.array([60, 0, 70, 10])
    # pass 1: a=1, b=2; pass 2: a=3 from its start, b takes 1 (a swap), then 4 within the pass
    published = ([(f, 1, left) for f in range(10)] + [(f, 2, right) for f in range(5, 10)]
                 + [(f, 3, left) for f in range(10, 20)] + [(f, 1, right) for f in range(15, 17)]
                 + [(f, 4, right) for f in range(17, 20)])
    a, b = score_long_run(published, ann, 10)
    assert (a.passes, a.ids, a.changes_within_pass, a.changes_across_loop, a.shared_ids) == (2, [1, 3], 0, 1, [1])
    assert (b.ids, b.changes_within_pass, b.changes_across_loop, b.shared_ids) == ([2, 1, 4], 1, 1, [1])


CLIP = os.path.join(SHARED, "data", "videos_people", "sports2d_demo.mp4")


def test_two_people_keep_their_ids_on_the_real_clip():
    require_module("mediapipe", "the embedded front end (mediapipe)")
    require_file(CLIP, "the sports2d clip")
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
    from tracking_sports2d import run

    published, _ = run(scale=1.0, tiles=2)
    scores = {s.person: s for s in score_ids(published, SPORTS2D)}
    for s in scores.values():
        # measured: one id each for all published frames (the man across his flip by re-identification)
        assert s.id_consistency >= 0.95 and s.id_changes == 0 and s.duplicate_frames == 0, s
    # measured 93.0 % and 98.1 % with two tiles: the rest are the man upside down in mid-air, and births
    assert scores["man"].coverage >= 0.9 and scores["woman"].coverage >= 0.93, scores


@pytest.mark.slow
def test_a_looped_clip_never_gives_one_id_to_both_people():
    """sports2d played three times in a row as one stream, every 2nd frame processed (15 Hz, as a node that
    drops busy frames). At the loop point the man jumps from his landing spot back onto the box and the
    woman, gone 70 frames, walks in again: new ids are honest there, an id moving from one person to the
    other is not (it hands one person's WHAM state to the other). Before the fix the man took the woman's
    lost id at every loop point."""
    require_module("mediapipe", "the embedded front end (mediapipe)")
    require_file(CLIP, "the sports2d clip")
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
    from tracking_sports2d import CLIP_FRAMES, run

    published, _ = run(scale=0.5, loops=3, step=2)
    for s in score_long_run(published, SPORTS2D, CLIP_FRAMES):
        assert not s.shared_ids and s.changes_within_pass == 0, s
        assert s.passes == 3 and len(s.ids) <= 3, s


def test_tile_windows_cover_the_image_with_overlap():
    from wham_ros.perception.mediapipe_pose import tile_windows

    assert tile_windows(640, 480, 1) == [(0, 0, 640, 480)]
    left, right = tile_windows(1768, 994, 2)
    assert left[0] == 0 and right[2] == 1768 and left[2] - right[0] == pytest.approx(0.2 * 1768, abs=2)
    tall = tile_windows(480, 640, 3)
    assert tall[0][1] == 0 and tall[-1][3] == 640 and all(w[0] == 0 and w[2] == 480 for w in tall)
    assert all(b[1] < a[3] for a, b in itertools.pairwise(tall))


def test_tiles_find_a_person_the_whole_image_pass_misses():
    """Frame 45 of sports2d: the woman half behind a tree at the right edge."""
    require_module("mediapipe", "the embedded front end (mediapipe)")
    require_file(CLIP, "the sports2d clip")
    import cv2

    from wham_ros.perception.mediapipe_pose import MediaPipePose

    cap = cv2.VideoCapture(CLIP)
    frames = []
    for _ in range(48):
        ok, bgr = cap.read()
        assert ok
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    whole, tiled = MediaPipePose(tiles=1), MediaPipePose(tiles=2)
    for k, rgb in enumerate(frames[40:48]):
        found_whole, found_tiled = whole(rgb, k / 30), tiled(rgb, k / 30)
    women = [d for d in found_tiled if SPORTS2D.label(47, d.bbox) == "woman"]
    assert len(women) == 1 and not [d for d in found_whole if SPORTS2D.label(47, d.bbox) == "woman"]
    assert len(found_tiled) == 2            # the man, seen by both windows, is reported once


def test_blazepose_landmarks_become_coco_keypoints_in_image_pixels():
    from types import SimpleNamespace

    from wham_ros.perception.mediapipe_pose import BLAZEPOSE_TO_COCO, MediaPipePose

    rng = np.random.default_rng(0)
    xy = rng.uniform(0.1, 0.9, (33, 2))
    xy[BLAZEPOSE_TO_COCO[16]] = (0.5, 1.2)               # right ankle predicted below the image
    xy[BLAZEPOSE_TO_COCO[0]] = (-0.1, 0.5)               # nose left of the window (inside the image)
    marks = [SimpleNamespace(x=x, y=y, visibility=0.9, presence=0.5) for x, y in xy]
    det = MediaPipePose._detection(marks, origin=(700, 0), size=(1000, 400), image=(1768, 400))
    coco = xy[list(BLAZEPOSE_TO_COCO)]
    np.testing.assert_allclose(det.keypoints[:, :2], coco * (1000, 400) + (700, 0))
    np.testing.assert_allclose(det.keypoints[1:16, 2], 0.45)
    assert det.keypoints[16, 2] == 0.0 and det.keypoints[0, 2] == 0.0     # outside what BlazePose saw
    assert (det.bbox[:2] >= 0).all() and det.bbox[2] <= 1767 and det.bbox[3] <= 399
