"""``--demo-conventions``: the official demo's offline preprocessing, checked against inputs built here from scratch.

A scripted estimator gives exact keypoints; the tests rebuild the demo's boxes (centred, zero-padded median),
its cam_angvel (current -> next frame, x fps, last = entry 0, not sliced by frame ids), the normalised
keypoints, the flipped inputs and the first-camera init_root with numpy, run the official batch forward on
them, and compare with what :class:`~wham_ros.offline.demo_mode.DemoRun` produced from the same stream.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from test_pipeline import SKELETON

from wham_ros.geometry.camera_motion import angvel_from_delta
from wham_ros.geometry.rotations import axis_angle_to_matrix
from wham_ros.model import flip_eval_forward, wham_forward
from wham_ros.offline.demo_mode import DemoRun, delta_from_angvel, demo_kernel, demo_results
from wham_ros.perception.base import Detection
from wham_ros.perception.hmr2 import HMR2Result
from wham_ros.perception.tracker import Tracker
from wham_ros.pipeline import HumanPipeline, default_initial_body, mirrored_body
from wham_ros.session import CameraSession, SessionConfig
from wham_ros.stream.inputs import initial_inputs

W, H = 640, 480
IMAGE = np.zeros((H, W, 3), np.uint8)
COCO_FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]


class Walkers:
    """People on scripted paths: ``paths[k](frame)`` -> (x, y) or None (not in the image); a few joints of
    each person have a low confidence in some frames (masked, and left out of the box)."""

    name = "walkers"

    def __init__(self, paths, unsure: bool = True) -> None:
        self.paths, self.unsure, self.frame = paths, unsure, 0

    def keypoints(self, k: int, frame: int) -> np.ndarray | None:
        at = self.paths[k](frame)
        if at is None:
            return None
        conf = np.full(17, 0.9)
        if self.unsure and frame % 4 == 1:
            conf[[9, 15]] = 0.2                     # a wrist and an ankle unsure: masked, box shrinks
        return np.concatenate((SKELETON + at, conf[:, None]), 1)

    def __call__(self, rgb, stamp):
        dets = []
        for k in range(len(self.paths)):
            kp = self.keypoints(k, self.frame)
            if kp is not None:
                dets.append(Detection(kp, np.array([kp[:, 0].min(), kp[:, 1].min(), kp[:, 0].max(), kp[:, 1].max()])))
        self.frame += 1
        return dets

    def reset(self) -> None:
        self.frame = 0


def turning(frame: int) -> tuple[float, float]:
    """Walks right 6 px per frame for 20 frames, then back left."""
    return (200.0 + 6.0 * min(frame, 20) - 6.0 * max(frame - 20, 0), 240.0)


def standing(frame: int) -> tuple[float, float]:
    return (320.0, 240.0)


def _run(net, paths, frames: int, fps: float, *, flip: bool, smooth: bool = False, gyro=None,
         pipeline_flip: bool | None = None, features=None, unsure: bool = True, **options):
    walkers = Walkers(paths, unsure)
    pipe = HumanPipeline(net, walkers, Tracker(birth_frames=1),
                         flip_eval=flip if pipeline_flip is None else pipeline_flip, smooth_keypoints=smooth,
                         features=features)
    session = CameraSession(pipe, SessionConfig(camera_rotation="gyro" if gyro is not None else "static"))
    if gyro is not None:
        for stamp, rate in gyro:
            session.add_imu(stamp, rate, "cam")
    frame_list = [(IMAGE, t / fps, "cam") for t in range(frames)]
    demo, results = demo_results(session, lambda: iter(frame_list), fps, flip_eval=flip, **options)
    return walkers, session, demo, results


# ---- independent reference: the demo's inputs from scratch --------------------------------------------
def ref_boxes(keypoints: np.ndarray, fps: float) -> np.ndarray:
    """Keypoint boxes (conf > 0.3, side 1.2 x extent), then scipy.signal.medfilt with kernel k per component."""
    raw = []
    for kp in keypoints:
        xy = kp[kp[:, 2] > 0.3, :2]
        lo, hi = xy.min(0), xy.max(0)
        raw.append([*(lo + hi) / 2, (hi - lo).max() * 1.2 / 200])
    raw = np.array(raw)
    k = 2 * ((int(fps) // 2) // 2) + 1
    padded = np.concatenate((np.zeros((k // 2, 3)), raw, np.zeros((k // 2, 3))))
    return np.stack([np.median(padded[t:t + k], 0) for t in range(len(raw))])


def ref_x(keypoints: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = max(W, H)
    uv = (keypoints[..., :2] - boxes[:, None, :2]) / (100 * boxes[:, None, 2:3])
    loc = np.stack(((2 * boxes[:, 0] - W) / m, (2 * boxes[:, 1] - H) / m, 200 * boxes[:, 2] / m), -1)
    return np.concatenate((uv.reshape(len(boxes), 34), loc), 1), keypoints[..., 2] < 0.3


def row6d(R: np.ndarray) -> np.ndarray:
    return R[..., :2, :].reshape(*R.shape[:-2], 6)


def ref_inputs(net, keypoints, boxes, cam_angvel, flip: bool):
    """The official network arguments, with the pipeline's standing first body (no HMR2.0: zero features)."""
    T = len(keypoints)
    f = np.hypot(W, H)
    x, mask = ref_x(keypoints, boxes)
    body = default_initial_body(keypoints[0])

    def args(x, mask, boxes, body):
        x = torch.tensor(x, dtype=torch.float32)
        init_kp, init_smpl = initial_inputs(net.smpl, torch.tensor(body.global_orient), torch.tensor(body.body_pose),
                                            torch.tensor(body.betas), x[0])
        return {"x": x[None], "mask": torch.tensor(mask)[None], "features": torch.zeros(1, T, 1024),
                "init_kp": init_kp.reshape(1, 1, 88), "init_smpl": init_smpl.reshape(1, 1, 24, 6),
                "init_root": torch.tensor(row6d(body_root), dtype=torch.float32).reshape(1, 1, 6),
                "cam_angvel": torch.tensor(cam_angvel, dtype=torch.float32)[None],
                "cam_intrinsics": torch.tensor([[[[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]]]], dtype=torch.float32),
                "bbox": torch.tensor(boxes, dtype=torch.float32)[None], "res": torch.tensor([[float(W), float(H)]])}

    body_root = np.asarray(body.global_orient)            # the demo's world: the first camera frame
    inputs = args(x, mask, boxes, body)
    if not flip:
        return inputs, None
    fkp = keypoints[:, COCO_FLIP].copy()
    fkp[..., 0] = W - fkp[..., 0]
    fboxes = boxes.copy()
    fboxes[:, 0] = W - fboxes[:, 0]
    fx, fmask = ref_x(fkp, fboxes)
    return inputs, args(fx, fmask, fboxes, mirrored_body(body))


def gyro_samples(seconds: float, rate_hz: float = 200.0):
    """A camera panning and tilting with a rate that changes over time (rad/s, optical frame)."""
    ts = np.arange(-0.1, seconds + 0.1, 1.0 / rate_hz)
    return [(t, np.array([0.3 * np.sin(3 * t), 0.8 + 0.6 * np.cos(2 * t), 0.2 * t])) for t in ts]


# ---- tests ------------------------------------------------------------------------------------------------
def test_demo_boxes_are_the_centred_median(synthetic_net):
    walkers, _, demo, _ = _run(synthetic_net, [turning], 45, 30.0, flip=False)
    (track,) = demo.tracks.values()
    rec = track.record
    assert rec.frames == list(range(45)) and demo_kernel(30.0) == 15
    kp = np.stack([walkers.keypoints(0, t) for t in range(45)])
    np.testing.assert_allclose(np.stack(rec.keypoints), kp)                 # smoothing off: the raw keypoints
    want = ref_boxes(kp, 30.0)
    np.testing.assert_allclose(track.boxes.numpy(), want, rtol=0, atol=1e-9)
    causal = np.stack([f.bbox.double().numpy() for f in rec.causal])       # the live node's 5-frame causal median
    # at the turn the centred median follows it, the causal one lags behind it
    assert np.abs(want[17:26, 0] - causal[17:26, 0]).max() > 10.0
    # walking straight: the centred median is the box itself, the causal one lags two frames (12 px) behind
    assert want[10, 0] == pytest.approx(260.0) and causal[10, 0] < want[10, 0] - 8.0
    # the ends: 8 of the 15 values are real, so the zero padding picks the smallest of them
    assert want[0, 0] == pytest.approx(200.0) and want[-1, 0] == pytest.approx(turning(44)[0])


def test_constant_boxes_are_the_same_in_both_modes(synthetic_net):
    """Standing still: every demo box (zero-padded ends included: 8 of 15 values are the box) is the causal box."""
    _, _, demo, _ = _run(synthetic_net, [standing], 32, 30.0, flip=False, unsure=False)
    (track,) = demo.tracks.values()
    causal = np.stack([f.bbox.double().numpy() for f in track.record.causal])
    assert np.ptp(causal, 0).max() == 0
    np.testing.assert_allclose(track.boxes.numpy(), causal, rtol=0, atol=1e-6)


def test_cam_angvel_follows_the_demo_convention(synthetic_net):
    fps, frames = 25.0, 40
    # person 1 from frame 0, person 2 from frame 10 (the demo does not slice cam_angvel by frame ids)
    paths = [turning, lambda t: None if t < 10 else (450.0, 250.0)]
    _, session, demo, results = _run(synthetic_net, paths, frames, fps, flip=False, gyro=gyro_samples(frames / fps),
                                     min_track_frames=20)
    stamps = [t / fps for t in range(frames)]
    deltas = [session.gyro.delta_rotation(a, b).numpy() for a, b in itertools.pairwise(stamps)]   # R(t -> t+1)
    want = np.stack([(row6d(D) - [1, 0, 0, 0, 1, 0]) * fps for D in deltas])
    want = np.concatenate((want, want[:1]))                                   # last frame: copy of entry 0
    assert {r.rotation_source for r in results[1:]} == {"gyro"}
    video = np.stack([r.cam_angvel for r in results])
    np.testing.assert_allclose(video, want, rtol=0, atol=1e-9)
    # the training convention (the causal run): previous -> current, rescaled to 1/30 s, x 30
    training = np.stack([session_result.cam_angvel for session_result in demo._results])
    np.testing.assert_allclose(training[0], 0)
    for t in (1, 17, 39):
        D = torch.tensor(deltas[t - 1])
        np.testing.assert_allclose(training[t], angvel_from_delta(D, 1 / fps).numpy(), atol=1e-9)
    # one frame of look-ahead: demo entry t is about the training entry t + 1 (same rate, other scaling)
    np.testing.assert_allclose(video[:-1], training[1:], atol=0.05)
    assert np.abs(video[:-1] - training[:-1]).max() > 0.05
    one, two = demo.tracks[1], demo.tracks[2]
    assert two.record.frames[0] == 10
    np.testing.assert_allclose(one.cam_angvel.numpy(), want)
    np.testing.assert_allclose(two.cam_angvel.numpy(), want[:30])          # the demo bug: frames 0..29, not 10..39
    _, _, fixed, _ = _run(synthetic_net, paths, frames, fps, flip=False, gyro=gyro_samples(frames / fps),
                          min_track_frames=20, slice_cam_angvel=True)
    np.testing.assert_allclose(fixed.tracks[2].cam_angvel.numpy(), want[10:])


def test_delta_rotation_is_recovered_from_the_sessions_cam_angvel():
    g = torch.Generator().manual_seed(3)
    D = axis_angle_to_matrix(torch.randn(20, 3, generator=g, dtype=torch.float64) * 0.2)
    dt = torch.rand(20, generator=g, dtype=torch.float64) * 0.1 + 0.01
    torch.testing.assert_close(delta_from_angvel(angvel_from_delta(D, dt), dt), D, rtol=0, atol=1e-12)


@pytest.mark.parametrize("flip", [False, True])
def test_track_equals_the_official_batch_forward_on_independent_inputs(synthetic_net, flip):
    fps, frames = 25.0, 36
    walkers, session, demo, results = _run(synthetic_net, [turning], frames, fps, flip=flip,
                                           gyro=gyro_samples(frames / fps))
    (track,) = demo.tracks.values()
    kp = np.stack([walkers.keypoints(0, t) for t in range(frames)])
    stamps = [t / fps for t in range(frames)]
    deltas = [session.gyro.delta_rotation(a, b).numpy() for a, b in itertools.pairwise(stamps)]
    angvel = np.stack([(row6d(D) - [1, 0, 0, 0, 1, 0]) * fps for D in deltas])
    angvel = np.concatenate((angvel, angvel[:1]))
    inputs, flipped = ref_inputs(synthetic_net, kp, ref_boxes(kp, fps), angvel, flip)
    for name, value in inputs.items():
        torch.testing.assert_close(track.inputs[name].cpu(), value, rtol=0, atol=2e-5, msg=name)
    ref = flip_eval_forward(synthetic_net, inputs, flipped) if flip else wham_forward(synthetic_net, **inputs)
    got = {name: torch.stack([getattr(o, attr) for o in track.outputs]) for name, attr in (
        ("pose", "pose"), ("betas", "betas"), ("trans_cam", "trans_cam"), ("feet", "feet"),
        ("poses_root_world", "poses_root_world"), ("trans_world", "trans_world"), ("contact", "contact"))}
    for name, value in got.items():
        want = ref[name].reshape(value.shape)
        torch.testing.assert_close(value, want, rtol=1e-4, atol=1e-4, msg=name)
    # what the writers get: every frame's person carries the entry of that frame, frame_index = entry
    for t, result in enumerate(results):
        (person,) = result.people
        assert person.output is track.outputs[t] and person.output.frame_index == t
        assert person.world is not None and np.isfinite(person.velocity).all()
    assert results[0].focal == pytest.approx(np.hypot(W, H)) and results[0].principal == (W / 2, H / 2)


@pytest.mark.parametrize("flip", [False, True])
def test_static_camera_and_constant_boxes_equal_the_causal_run(synthetic_net, flip):
    """Nothing non-causal left to differ: the demo mode's batch forward equals the causal engine frame by frame."""
    _, _, demo, results = _run(synthetic_net, [standing], 32, 30.0, flip=flip, unsure=False)
    causal = demo._results                                  # pass 1: the causal pipeline's own results
    for t in range(32):
        (c,), (d,) = causal[t].people, results[t].people
        for name in ("pose", "betas", "trans_cam", "joints", "poses_root_world", "trans_world", "feet"):
            torch.testing.assert_close(getattr(d.output, name), getattr(c.output, name), rtol=1e-4, atol=1e-4,
                                       msg=f"frame {t} {name}")
        np.testing.assert_allclose(d.world.position, c.world.position, atol=1e-4)
        np.testing.assert_allclose(d.velocity, c.velocity, atol=1e-2)
        np.testing.assert_allclose(d.velocity_cov, c.velocity_cov, rtol=1e-3, atol=1e-6)


def test_short_tracks_are_dropped_and_lost_people_keep_their_last_output(synthetic_net):
    paths = [lambda t: None if 12 <= t < 14 else (200.0, 240.0),     # hidden twice: lost, then found again
             lambda t: (480.0, 240.0) if t < 10 else None]          # 10 entries: shorter than 30
    _, _, demo, results = _run(synthetic_net, paths, 36, 30.0, flip=False)
    assert demo.dropped == {2: 10} and list(demo.tracks) == [1]
    assert len(demo.tracks[1].record.frames) == 34
    for t in range(10):
        two = next(p for p in results[t].people if p.track_id == 2)
        assert two.output is None and two.world is None
    lost = next(p for p in results[13].people if p.track_id == 1)
    assert lost.time_since_seen > 0 and lost.output is demo.tracks[1].outputs[11]


class FakeHMR2:
    """Features and bodies that depend on the box HMR2.0 is given (its crop), so the test sees which box it got."""

    def __init__(self) -> None:
        self.calls = []

    def __call__(self, rgb, boxes, flip=False):
        boxes = np.asarray(boxes, dtype=np.float64)
        self.calls.append((boxes.copy(), flip))
        n = len(boxes)
        feature = np.tile(np.linspace(0.5, 1.5, 1024, dtype=np.float32), (n, 1)) * (
            boxes[:, :1] / 100.0 + (2.0 if flip else 1.0)).astype(np.float32)
        body = default_initial_body(SKELETON)
        orient = np.repeat(np.asarray(body.global_orient, np.float32)[None], n, 0)
        pose = np.repeat(np.asarray(body.body_pose, np.float32)[None], n, 0)
        betas = np.tile(boxes[:, 2:3], (1, 10)).astype(np.float32) * (-1.0 if flip else 1.0)
        return HMR2Result(feature, orient, pose, betas, np.zeros((n, 3), np.float32))


def test_hmr2_runs_on_the_demo_boxes_in_a_second_read(synthetic_net):
    hmr2 = FakeHMR2()
    _, _, demo, _ = _run(synthetic_net, [turning], 32, 30.0, flip=True, features=hmr2)
    assert demo.pipeline.features is None                       # off in the tracking pass
    (track,) = demo.tracks.values()
    assert len(hmr2.calls) == 64 and all(len(b) == 1 for b, _ in hmr2.calls)   # one read: normal + mirrored crop
    boxes = np.stack([b[0] for b, flip in hmr2.calls if not flip])
    np.testing.assert_allclose(boxes, track.boxes.numpy())
    want = hmr2(IMAGE, track.boxes.numpy())
    torch.testing.assert_close(track.inputs["features"][0].cpu(), torch.from_numpy(want.feature))
    wantf = hmr2(IMAGE, track.boxes.numpy(), flip=True)
    torch.testing.assert_close(track.flipped_inputs["features"][0].cpu(), torch.from_numpy(wantf.feature))
    np.testing.assert_allclose(track.body.betas, want.betas[0])          # the first entry's body, demo box
    np.testing.assert_allclose(track.flipped_body.betas, wantf.betas[0])
    assert all(o.residual for o in track.outputs)                         # non-zero features: residual on
    ref = flip_eval_forward(synthetic_net, track.inputs, track.flipped_inputs)
    torch.testing.assert_close(torch.stack([o.pose for o in track.outputs]), ref["pose"][0])


def test_replay_finds_the_processed_frames_again(synthetic_net):
    walkers = Walkers([standing])
    demo = DemoRun(HumanPipeline(synthetic_net, walkers, Tracker(birth_frames=1)), 30.0, min_track_frames=1)
    session = CameraSession(demo.pipeline)
    # a repeated stamp, an undecodable image
    stamps = [0.0, 1 / 30, 2 / 30, 2 / 30, 3 / 30, None] + [t / 30 for t in range(4, 12)]
    index = 0
    for s in stamps:
        if s is None:
            continue
        result = session.process(IMAGE, s, "cam")
        if result is not None:
            demo.record(index, result)
            index += 1
    assert demo.frames == 12
    demo.solve()
    assert list(demo.tracks) == [1]          # 12 entries: enough for the 15-frame median (8), min_track_frames 1
    events = [("image", s) for s in stamps]
    got = [(i, ev) for i, ev, _ in demo.replay(events, lambda ev: None if ev[1] is None else (IMAGE, ev[1]))]
    assert [i for i, _ in got] == list(range(12))
    assert [ev[1] for _, ev in got] == [t / 30 for t in range(12)]
    with pytest.raises(RuntimeError, match="changed between reads"):
        list(demo.replay(events[:3], lambda ev: (IMAGE, ev[1])))


def test_keypoints_are_the_smoothed_ones_the_causal_builder_got(synthetic_net):
    from wham_ros.perception.smoothing import KeypointSmoother

    walkers, _, demo, _ = _run(synthetic_net, [turning], 30, 30.0, flip=False, smooth=True)
    smoother = KeypointSmoother()
    want = np.stack([smoother(walkers.keypoints(0, t)) for t in range(30)])
    np.testing.assert_allclose(np.stack(demo.tracks[1].record.keypoints), want)
    np.testing.assert_allclose(demo.tracks[1].boxes.numpy(), ref_boxes(want, 30.0), atol=1e-9)


def test_a_track_too_short_for_the_zero_padded_median_is_dropped(synthetic_net):
    _, _, demo, results = _run(synthetic_net, [lambda t: (300.0, 240.0) if t < 7 else None], 9, 30.0, flip=False,
                               min_track_frames=1)
    assert demo.dropped == {1: 7} and not demo.tracks
    assert all(p.output is None for r in results for p in r.people)
