"""The online engine equals the batch entry point, frame by frame, for every track."""
from __future__ import annotations

import pytest
import torch
from helpers import assert_outputs_close, random_inputs

from wham_ros.errors import InputError
from wham_ros.model import flip_eval_forward, wham_forward
from wham_ros.stream import StreamEngine, stack_outputs
from wham_ros.stream.state import frame_input_from_official as frame_input
from wham_ros.stream.state import track_init_from_official as track_init


def _slice(i: dict, frames: list[int]) -> dict:
    """Inputs restricted to the given frames (per-frame keys only)."""
    out = dict(i)
    for k in ("x", "features", "mask", "cam_angvel", "bbox"):
        out[k] = i[k][:, frames]
    return out


def test_tracks_joining_and_leaving_at_any_frame(synthetic_net):
    """Three tracks: from frame 0, joining at 5, and joining at 8 then leaving at 14; one batch per frame."""
    spans = {1: (0, 20), 2: (5, 17), 3: (8, 14)}
    data = {tid: random_inputs(b - a, seed=tid) for tid, (a, b) in spans.items()}
    engine = StreamEngine(synthetic_net)
    streamed = {tid: [] for tid in spans}
    for t in range(20):
        for tid, (a, b) in spans.items():
            if t == a:
                engine.add_track(tid, track_init(data[tid]))
            if t == b:
                engine.remove_track(tid)
        frames = {tid: frame_input(data[tid], t - a) for tid, (a, b) in spans.items() if a <= t < b}
        result = engine.step(frames)
        assert set(result.outputs) == set(frames) and not result.skipped
        for tid, out in result.outputs.items():
            assert out.frame_index == t - spans[tid][0]
            streamed[tid].append(out)
    assert engine.track_ids == [1]
    for tid, i in data.items():
        ref = wham_forward(synthetic_net, **i)
        ref.pop("verts_cam")
        assert_outputs_close(ref, stack_outputs(streamed[tid], i["init_root"]))


def test_masked_keypoints_change_outputs_and_still_match(synthetic_net):
    i = random_inputs(10, seed=4)
    i["mask"][0, 3, :8] = True
    engine = StreamEngine(synthetic_net, with_vertices=True)
    engine.add_track(0, track_init(i))
    frames = [engine.step({0: frame_input(i, t)}).outputs[0] for t in range(10)]
    ref = wham_forward(synthetic_net, **i)
    assert_outputs_close(ref, stack_outputs(frames, i["init_root"]))
    unmasked = dict(i, mask=torch.zeros_like(i["mask"]))
    other = wham_forward(synthetic_net, **unmasked)
    assert (other["pose"] - ref["pose"]).abs().max() > 1e-3


def test_paused_track_resumes_its_own_sequence(synthetic_net):
    """A track that skips global frames (e.g. occluded) continues from its own last frame."""
    i = random_inputs(8, seed=5)
    j = random_inputs(12, seed=6)
    engine = StreamEngine(synthetic_net)
    engine.add_track(0, track_init(i))
    engine.add_track(1, track_init(j))
    got, k = [], 0
    for t in range(12):
        frames = {1: frame_input(j, t)}
        if t not in (3, 4, 7, 9):
            frames[0] = frame_input(i, k)
            k += 1
        out = engine.step(frames).outputs
        if 0 in out:
            got.append(out[0])
    assert k == 8
    ref = wham_forward(synthetic_net, **i)
    ref.pop("verts_cam")
    assert_outputs_close(ref, stack_outputs(got, i["init_root"]))


def test_single_frame_track_works(synthetic_net):
    """T = 1 (the official code crashes there)."""
    i = random_inputs(1, seed=7)
    ref = wham_forward(synthetic_net, **i)
    assert ref["pose"].shape == (1, 1, 144) and torch.isfinite(ref["trans_world"]).all()
    engine = StreamEngine(synthetic_net)
    engine.add_track(0, track_init(i))
    out = engine.step({0: frame_input(i, 0)}).outputs[0]
    ref.pop("verts_cam")
    assert_outputs_close(ref, stack_outputs([out], i["init_root"]))


def test_flip_eval_streaming_equals_batch(synthetic_net):
    i, fi = random_inputs(12, seed=8), random_inputs(12, seed=9)
    fi["cam_angvel"], fi["cam_intrinsics"], fi["res"] = i["cam_angvel"], i["cam_intrinsics"], i["res"]
    engine = StreamEngine(synthetic_net, flip_eval=True, return_y_up=True)
    engine.add_track(0, track_init(i, fi))
    frames = [engine.step({0: frame_input(i, t, fi)}).outputs[0] for t in range(12)]
    ref = flip_eval_forward(synthetic_net, i, fi, return_y_up=True)
    ref.pop("verts_cam")
    assert_outputs_close(ref, stack_outputs(frames, i["init_root"]))


def test_y_up_output_is_the_fixed_rotation_of_y_down(synthetic_net):
    i = random_inputs(4, seed=10)
    outs = {}
    for y_up in (False, True):
        engine = StreamEngine(synthetic_net, return_y_up=y_up)
        engine.add_track(0, track_init(i))
        outs[y_up] = [engine.step({0: frame_input(i, t)}).outputs[0] for t in range(4)]
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
    for a, b in zip(outs[False], outs[True]):
        torch.testing.assert_close(flip @ a.trans_world, b.trans_world, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(flip @ a.poses_root_world, b.poses_root_world, atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------------- missing image features
def test_track_without_features_equals_official_zero_feature_run(synthetic_net):
    """use_features=False reproduces the official network on an all-zero feature sequence."""
    i = random_inputs(8, seed=11)
    engine = StreamEngine(synthetic_net)
    engine.add_track(0, track_init(i, use_features=False))
    frames = [engine.step({0: frame_input(i, t)}).outputs[0] for t in range(8)]
    assert not any(f.residual for f in frames)
    ref = wham_forward(synthetic_net, **dict(i, features=torch.zeros_like(i["features"])))
    ref.pop("verts_cam")
    assert_outputs_close(ref, stack_outputs(frames, i["init_root"]))


def test_missing_feature_frames_hold_the_last_feature(synthetic_net):
    i = random_inputs(10, seed=12)
    missing = {3, 4, 8}
    engine = StreamEngine(synthetic_net)
    engine.add_track(0, track_init(i))
    frames = [engine.step({0: frame_input(i, t, feature=t not in missing)}).outputs[0] for t in range(10)]
    assert [f.feature_held for f in frames] == [t in missing for t in range(10)]
    held = i["features"].clone()
    for t in sorted(missing):
        held[:, t] = held[:, t - 1]
    ref = wham_forward(synthetic_net, **dict(i, features=held))
    ref.pop("verts_cam")
    assert_outputs_close(ref, stack_outputs(frames, i["init_root"]))


def test_features_missing_before_the_first_one_run_without_residual(synthetic_net):
    i = random_inputs(5, seed=13)
    engine = StreamEngine(synthetic_net)
    engine.add_track(0, track_init(i))
    frames = [engine.step({0: frame_input(i, t, feature=t >= 2)}).outputs[0] for t in range(5)]
    assert [f.residual for f in frames] == [False, False, True, True, True]
    zeroed = i["features"].clone()
    zeroed[:, :2] = 0
    ref = wham_forward(synthetic_net, **dict(i, features=zeroed), residual="per_frame")
    ref.pop("verts_cam")
    assert_outputs_close(ref, stack_outputs(frames, i["init_root"]))


def test_a_future_zero_feature_does_not_change_the_past(synthetic_net):
    """The official sequence-level residual rule is not causal; the engine's per-frame rule is."""
    i = random_inputs(8, seed=14)
    i["features"][0, 6, 100] = 0.0
    engine = StreamEngine(synthetic_net)
    engine.add_track(0, track_init(i))
    frames = [engine.step({0: frame_input(i, t)}).outputs[0] for t in range(8)]
    assert [f.residual for f in frames] == [t != 6 for t in range(8)]
    per_frame = wham_forward(synthetic_net, **i, residual="per_frame")
    per_frame.pop("verts_cam")
    assert_outputs_close(per_frame, stack_outputs(frames, i["init_root"]))
    official = wham_forward(synthetic_net, **i)
    assert (official["pose"][:, :6] - per_frame["pose"][:, :6]).abs().max() > 1e-3


# ---------------------------------------------------------------------- bad input
def test_bad_frame_is_skipped_and_the_track_continues(synthetic_net):
    i, j = random_inputs(8, seed=15), random_inputs(8, seed=16)
    engine = StreamEngine(synthetic_net)
    engine.add_track(0, track_init(i))
    engine.add_track(1, track_init(j))
    got0, got1 = [], []
    for t in range(8):
        bad = frame_input(j, t)
        if t == 3:
            bad.x = bad.x.clone()
            bad.x[5] = float("nan")
        if t == 5:
            bad.feature = torch.zeros(512)
        result = engine.step({0: frame_input(i, t), 1: bad})
        got0.append(result.outputs[0])
        if t in (3, 5):
            assert 1 not in result.outputs
            assert ("NaN" in result.skipped[1]) if t == 3 else ("feature" in result.skipped[1])
        else:
            got1.append(result.outputs[1])
    assert engine.frames_of(1) == 6
    ref0 = wham_forward(synthetic_net, **i)
    ref0.pop("verts_cam")
    assert_outputs_close(ref0, stack_outputs(got0, i["init_root"]))
    kept = [0, 1, 2, 4, 6, 7]
    ref1 = wham_forward(synthetic_net, **_slice(j, kept))
    ref1.pop("verts_cam")
    assert_outputs_close(ref1, stack_outputs(got1, j["init_root"]))


@pytest.mark.parametrize("field,value,message", [
    ("x", torch.zeros(36), "x has shape"),
    ("mask", torch.zeros(17), "mask must be bool"),
    ("cam_angvel", torch.tensor([0.0, 0, 0, 0, 0, float("inf")]), "cam_angvel contains NaN or inf"),
    ("bbox", torch.tensor([1.0, 1.0, 0.0]), "bbox scale"),
    ("focal", -5.0, "focal length"),
    ("x", "not a tensor", "x: not convertible"),
])
def test_each_bad_field_is_named(synthetic_net, field, value, message):
    i = random_inputs(2, seed=17)
    engine = StreamEngine(synthetic_net)
    engine.add_track(0, track_init(i))
    frame = frame_input(i, 0)
    setattr(frame, field, value)
    result = engine.step({0: frame})
    assert message in result.skipped[0]
    assert engine.frames_of(0) == 0


def test_unknown_track_and_duplicate_track(synthetic_net):
    i = random_inputs(2, seed=18)
    engine = StreamEngine(synthetic_net)
    result = engine.step({42: frame_input(i, 0)})
    assert "unknown track" in result.skipped[42] and not result.outputs
    engine.add_track(1, track_init(i))
    with pytest.raises(InputError, match="already exists"):
        engine.add_track(1, track_init(i))
    bad = track_init(i)
    bad.init_kp = torch.full((88,), float("nan"))
    with pytest.raises(InputError, match="init_kp contains NaN"):
        engine.add_track(2, bad)
    with pytest.raises(InputError, match="flip evaluation needs"):
        StreamEngine(synthetic_net, flip_eval=True).add_track(3, track_init(i))


@pytest.mark.parametrize("key,change,message", [
    ("x", lambda t: t[..., :30], "x has shape"),
    ("features", lambda t: t.clone().fill_(float("nan")), "features contains NaN"),
    ("mask", lambda t: t.float(), "mask must be bool"),
    ("init_smpl", lambda t: t[:, :, :20], "init_smpl has shape"),
    ("cam_angvel", lambda t: t[:, :1], "cam_angvel has 1 frames"),
    ("res", lambda t: -t, "image size must be > 0"),
])
def test_batch_entry_point_names_bad_arguments(synthetic_net, key, change, message):
    i = random_inputs(3, seed=19)
    i[key] = change(i[key])
    with pytest.raises(InputError, match=message):
        wham_forward(synthetic_net, **i)


def test_step_of_eight_tracks_is_one_batch(synthetic_net):
    """Eight tracks in one step give the same per-track results as eight separate engines."""
    data = [random_inputs(3, seed=100 + k) for k in range(8)]
    together = StreamEngine(synthetic_net)
    for k, i in enumerate(data):
        together.add_track(k, track_init(i))
    joint = [together.step({k: frame_input(i, t) for k, i in enumerate(data)}).outputs for t in range(3)]
    for k, i in enumerate(data):
        alone = StreamEngine(synthetic_net)
        alone.add_track(k, track_init(i))
        for t in range(3):
            a, b = alone.step({k: frame_input(i, t)}).outputs[k], joint[t][k]
            torch.testing.assert_close(a.trans_world, b.trans_world, rtol=1e-5, atol=2e-5)
            torch.testing.assert_close(a.pose, b.pose, rtol=1e-5, atol=1e-5)
