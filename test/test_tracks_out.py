"""Per-person npz files in the official demo's layout, and the top-view trajectory plot."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
import torch
from test_pipeline import ScriptedPeople

from wham_ros.geometry.rotations import axis_angle_to_matrix
from wham_ros.offline.render import track_colour
from wham_ros.offline.tracks_out import OFFICIAL_KEYS, TrackRecorder, trajectories_png
from wham_ros.perception.tracker import Tracker
from wham_ros.pipeline import HumanPipeline

FRAMES = 6


@pytest.fixture(scope="module")
def clip(synthetic_net):
    """(frame index, stamp, people) of two people walking; person 2 is hidden (lost) in frames 2 and 3."""
    pipe = HumanPipeline(synthetic_net, ScriptedPeople([(150, 240), (450, 240)], hidden={(2, 1), (3, 1)}),
                         Tracker(birth_frames=1, max_missed=5))
    return [(k, 100.0 + k / 30, pipe.process(np.zeros((480, 640, 3), np.uint8), 100.0 + k / 30, np.zeros(6)))
            for k in range(FRAMES)]


def _record(clip, net, verts: bool) -> TrackRecorder:
    recorder = TrackRecorder(net.smpl, verts=verts)
    for k, stamp, people in clip:
        recorder.add(k, stamp, people)
    return recorder


def test_official_keys_shapes_and_frames(clip, synthetic_net, tmp_path):
    recorder = _record(clip, synthetic_net, verts=True)
    assert recorder.ids == [1, 2]
    paths = recorder.write_npz(str(tmp_path / "npz"))
    assert [os.path.basename(p) for p in paths] == ["wham_1.npz", "wham_2.npz"]
    assert sorted(os.listdir(tmp_path / "npz")) == ["wham_1.npz", "wham_2.npz"]       # no partial files left
    V = synthetic_net.smpl.num_vertices
    for track_id, path in zip((1, 2), paths):
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
        frames = [0, 1, 4, 5] if track_id == 2 else list(range(FRAMES))        # lost frames are not rows
        T = len(frames)
        shapes = {"pose": (T, 72), "trans": (T, 3), "pose_world": (T, 72), "trans_world": (T, 3),
                  "betas": (T, 10), "verts": (T, V, 3), "frame_ids": (T,), "stamps": (T,), "contact": (T, 4),
                  "joints_cam": (T, 31, 3), "joints_world": (T, 31, 3), "ros_trans_world": (T, 3)}
        assert set(OFFICIAL_KEYS) <= set(data)
        assert {k: data[k].shape for k in shapes} == shapes
        assert data["frame_ids"].tolist() == frames and int(data["track_id"]) == track_id
        np.testing.assert_allclose(data["stamps"], [100.0 + k / 30 for k in frames])
        assert data["pose"].dtype == np.float32 and data["stamps"].dtype == np.float64
        assert set(data["ros_world_frame"].tolist()) == {f"wham_world_{track_id}"}
        # the last row against the pipeline's own output of that frame
        person = next(p for p in clip[frames[-1]][2] if p.track_id == track_id)
        out = person.output
        y_up = np.diag([1.0, -1.0, -1.0])
        np.testing.assert_allclose(data["trans_world"][-1], y_up @ out.trans_world.double().numpy(), atol=1e-5)
        root_world = axis_angle_to_matrix(torch.as_tensor(data["pose_world"][-1, :3], dtype=torch.float64)).numpy()
        np.testing.assert_allclose(root_world, y_up @ out.poses_root_world.double().numpy(), atol=1e-5)
        root_cam = axis_angle_to_matrix(torch.as_tensor(data["pose"][-1, :3], dtype=torch.float64)).numpy()
        np.testing.assert_allclose(root_cam, out.poses_root_cam.double().numpy(), atol=1e-5)
        np.testing.assert_allclose(data["pose"][:, 3:], data["pose_world"][:, 3:])
        # WHAM's root is the hip midpoint (COCO hips 11, 12) in both frames
        hips = [11, 12]
        np.testing.assert_allclose(data["joints_cam"][:, hips].mean(1), data["trans_cam"], atol=1e-4)
        np.testing.assert_allclose(data["joints_world"][:, hips].mean(1), data["trans_world"], atol=1e-4)
        # the official verts = camera-frame mesh; its regressed hip midpoint is trans_cam ...
        regressor = synthetic_net.smpl.J_regressor_wham.double().numpy()
        mesh_hips = np.einsum("jv,tvc->tjc", regressor[hips], data["verts"].astype(np.float64)).mean(1)
        np.testing.assert_allclose(mesh_hips, data["trans_cam"], atol=1e-3)
        # ... and trans is SMPL's transl: the mesh minus it is the body posed without translation
        with torch.no_grad():
            bm = synthetic_net.smpl
            rest = bm.get_output(out.poses_root_cam[None, None], out.poses_body[None], out.betas[None])
        unshifted = rest.vertices[0].double().numpy() + rest.offset[0].double().numpy()
        np.testing.assert_allclose(data["verts"][-1] - data["trans"][-1], unshifted, atol=1e-4)


def test_without_vertices_and_repeated_frames(clip, synthetic_net, tmp_path):
    recorder = _record(clip, synthetic_net, verts=False)
    k, stamp, people = clip[-1]
    recorder.add(k + 1, stamp + 1, people)          # the same outputs again (a lost frame): no new row
    data = recorder.arrays(1)
    assert "verts" not in data and len(data["frame_ids"]) == FRAMES
    with pytest.raises(KeyError, match="no frames recorded for track 7"):
        recorder.arrays(7)


def test_trajectory_png(clip, synthetic_net, tmp_path):
    recorder = _record(clip, synthetic_net, verts=False)
    camera = np.stack([np.linspace(-1, 1, 5), np.zeros(5), np.ones(5)], axis=1)
    path = trajectories_png(recorder, str(tmp_path / "trajectories.png"), camera)
    assert os.listdir(tmp_path) == ["trajectories.png"]
    image = cv2.imread(path)
    assert image is not None and image.shape[0] > 400 and image.shape[1] > 400
    assert os.path.getsize(path) > 10_000 and len(np.unique(image.reshape(-1, 3), axis=0)) > 20
    for track_id in recorder.ids:           # each person is drawn in the shared palette's colour
        bgr = np.array(track_colour(track_id))[::-1] * 255
        assert (np.abs(image.astype(float) - bgr).max(axis=2) < 4).sum() > 30
    assert trajectories_png(TrackRecorder(synthetic_net.smpl), str(tmp_path / "empty.png"), None)
