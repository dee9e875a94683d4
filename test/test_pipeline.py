"""Glue unit tests of the image -> people pipeline with a scripted pose estimator (no model in the loop)."""
from __future__ import annotations

import numpy as np

from wham_ros.geometry.frames import Transform
from wham_ros.perception.base import Detection
from wham_ros.perception.tracker import UNCONFIRMED, Tracker, TrackState
from wham_ros.pipeline import HumanPipeline

# a standing person (COCO-17), pixels around (0, 0), 300 px tall
SKELETON = np.array([[0, -140], [8, -148], [-8, -148], [16, -144], [-16, -144], [40, -100], [-40, -100],
                     [50, -50], [-50, -50], [55, 0], [-55, 0], [25, 0], [-25, 0], [25, 70], [-25, 70],
                     [25, 140], [-25, 140]], dtype=float)


class ScriptedPeople:
    """People walking across a 640x480 image; each frame returns their keypoints as detections."""

    name = "scripted"

    def __init__(self, starts: list[tuple[float, float]], speed: float = 4.0, hidden: set[tuple[int, int]] = ()):
        self.starts, self.speed, self.hidden, self.frame = starts, speed, set(hidden), 0

    def __call__(self, rgb, stamp):
        dets = []
        for k, (x0, y0) in enumerate(self.starts):
            if (self.frame, k) in self.hidden:
                continue
            kp = np.concatenate((SKELETON + (x0 + self.speed * self.frame, y0), np.full((17, 1), 0.9)), 1)
            box = np.array([kp[:, 0].min(), kp[:, 1].min(), kp[:, 0].max(), kp[:, 1].max()])
            dets.append(Detection(kp, box))
        self.frame += 1
        return dets

    def reset(self):
        self.frame = 0


def test_people_get_stable_ids_and_world_outputs(synthetic_net):
    people = ScriptedPeople([(150, 240), (450, 240)], hidden={(6, 1), (7, 1)})
    pipe = HumanPipeline(synthetic_net, people, Tracker(birth_frames=3, max_missed=5))
    image = np.zeros((480, 640, 3), np.uint8)
    seen = {}
    for t in range(12):
        for p in pipe.process(image, t / 30, np.zeros(6)):
            seen.setdefault(p.track_id, []).append((t, p.state, p.output is not None))
    # tentative tracks carry no id yet (both people's first two frames); ids come with confirmation
    assert sorted(seen) == [UNCONFIRMED, 1, 2]
    assert [(t, s) for t, s, _ in seen[UNCONFIRMED]] == [(t, TrackState.TENTATIVE) for t in (0, 0, 1, 1)]
    first = seen[1]
    assert first[0][:2] == (2, TrackState.TRACKED)
    assert all(has for _, s, has in first if s == TrackState.TRACKED)
    lost = [t for t, s, _ in seen[2] if s == TrackState.LOST]
    assert lost == [6, 7]
    assert pipe.engine.frames_of(2) == 8          # stepped in frames 2..11 except the two hidden ones
    people_now = pipe.process(image, 12 / 30, np.zeros(6))
    assert all(np.isfinite(p.velocity).all() and p.world is not None for p in people_now)


def test_tf_anchoring_puts_everyone_in_one_frame(synthetic_net):
    pipe = HumanPipeline(synthetic_net, ScriptedPeople([(320, 240)]), Tracker(birth_frames=1))
    image = np.zeros((480, 640, 3), np.uint8)
    pose = Transform(np.array([[0.0, 0, 1], [-1, 0, 0], [0, -1, 0]]), np.array([1.0, 2.0, 0.5]))
    p = pipe.process(image, 0.0, np.zeros(6), focal=500.0, principal=(320.0, 240.0), world_from_camera=pose)[0]
    cam = p.output.trans_cam.double().numpy()
    np.testing.assert_allclose(p.world.position, pose.R @ cam + pose.t, atol=1e-9)
    # z-up world: the person stands upright (body z axis up)
    assert p.world.body_R[2, 2] > 0.7


def test_reset_after_a_time_jump_forgets_everyone(synthetic_net):
    pipe = HumanPipeline(synthetic_net, ScriptedPeople([(320, 240)]), Tracker(birth_frames=1))
    image = np.zeros((480, 640, 3), np.uint8)
    for t in range(3):
        pipe.process(image, t / 30, np.zeros(6))
    assert pipe.active_tracks == 1
    pipe.reset()
    assert pipe.active_tracks == 0
    again = pipe.process(image, 0.0, np.zeros(6))
    assert [p.track_id for p in again] == [2]       # ids are never reused


def test_flip_evaluation_runs_with_a_mirrored_first_body(synthetic_net):
    from wham_ros.pipeline import default_initial_body, mirrored_body

    pipe = HumanPipeline(synthetic_net, ScriptedPeople([(320, 240)]), Tracker(birth_frames=1), flip_eval=True)
    image = np.zeros((480, 640, 3), np.uint8)
    outs = [pipe.process(image, t / 30, np.zeros(6))[0].output for t in range(4)]
    assert all(o is not None for o in outs) and pipe.engine.frames_of(1) == 4
    body = default_initial_body(SKELETON)
    twice = mirrored_body(mirrored_body(body))
    np.testing.assert_allclose(twice.body_pose, body.body_pose, atol=1e-12)
    once = mirrored_body(body)
    # the left shoulder's rotation becomes the right one's, mirrored (SMPL joints 16/17 = body_pose 15/16)
    M = np.diag([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(once.body_pose[16], M @ body.body_pose[15] @ M, atol=1e-12)


class PartlySeen:
    """The same two still people every frame, each with only some keypoints confident."""

    name = "partly seen"

    def __init__(self, people: list[tuple[float, np.ndarray]]) -> None:
        self.people = people

    def __call__(self, rgb, stamp):
        dets = []
        for x, conf in self.people:
            kp = np.concatenate((SKELETON + (x, 240), conf[:, None]), 1)
            dets.append(Detection(kp, np.array([x - 60, 80, x + 60, 400])))
        return dets

    def reset(self):
        pass


def test_a_detection_needs_six_confident_keypoints(synthetic_net):
    """The official rule: a detection with fewer than 6 keypoints above the threshold (strictly) is no person."""
    from wham_ros.stream.inputs import KEYPOINT_THRESHOLD

    six = np.full(17, KEYPOINT_THRESHOLD)          # at the threshold is not above it
    six[[5, 6, 11, 12, 13, 14]] = 0.9
    five = np.full(17, KEYPOINT_THRESHOLD)
    five[[5, 6, 11, 12, 13]] = 0.9
    pipe = HumanPipeline(synthetic_net, PartlySeen([(150.0, six), (450.0, five)]), Tracker(birth_frames=1))
    image = np.zeros((480, 640, 3), np.uint8)
    for t in range(4):
        people = pipe.process(image, t / 30, np.zeros(6))
        assert [p.detection.bbox[0] for p in people] == [90.0], "only the person with six confident keypoints"
    assert [t.detection.bbox[0] for t in pipe.tracker.tracks] == [90.0]
