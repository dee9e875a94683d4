"""The overlay video: meshes where the people are, the input untouched elsewhere, a valid mp4 read back."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from test_pipeline import ScriptedPeople

from wham_ros.offline.overlay import OverlayError, OverlayWriter
from wham_ros.offline.render import track_colour
from wham_ros.perception.tracker import Tracker
from wham_ros.pipeline import HumanPipeline

W, H = 640, 480
FOCAL = float(np.hypot(W, H))
PRINCIPAL = (W / 2, H / 2)
FRAMES = 6


def _background() -> np.ndarray:
    """A smooth, coloured input image (a codec keeps it close; every pixel differs from the mesh colours)."""
    rgb = np.empty((H, W, 3), np.uint8)
    rgb[..., 0] = 70
    rgb[..., 1] = np.linspace(60, 120, W, dtype=np.uint8)[None]
    rgb[..., 2] = np.linspace(60, 120, H, dtype=np.uint8)[:, None]
    return rgb


@pytest.fixture(scope="module")
def clip(synthetic_net):
    """People of a short clip: two walking people, a third one tentative (grey skeleton, no mesh) at the end."""
    hidden = {(k, 2) for k in range(FRAMES - 1)}
    pipe = HumanPipeline(synthetic_net, ScriptedPeople([(150, 240), (450, 240), (300, 200)], hidden=hidden),
                         Tracker(birth_frames=2))
    return [pipe.process(_background(), k / 30, np.zeros(6), focal=FOCAL, principal=PRINCIPAL)
            for k in range(FRAMES)]


def _hip_pixel(person) -> tuple[int, int]:
    x, y, z = person.output.trans_cam.double().numpy()
    return int(FOCAL * x / z + PRINCIPAL[0]), int(FOCAL * y / z + PRINCIPAL[1])


def _hue_matches(pixel_bgr: np.ndarray, track_id: int, tolerance: float) -> bool:
    """The pixel is the person's colour up to shading (same direction in RGB)."""
    want = np.array(track_colour(track_id))
    got = np.asarray(pixel_bgr, dtype=np.float64)[::-1]
    return float(np.abs(got / np.linalg.norm(got) - want / np.linalg.norm(want)).max()) < tolerance


def test_meshes_over_the_image_and_the_video_reads_back(clip, synthetic_net, tmp_path):
    path = str(tmp_path / "overlay.mp4")
    background = _background()
    with OverlayWriter(path, (W, H), 30.0, synthetic_net.smpl.faces_tensor.numpy()) as video:
        assert video.fourcc in ("avc1", "mp4v")
        for people in clip:
            video.add(background, people, FOCAL, PRINCIPAL, synthetic_net.smpl)
            composed = video.compose(background, people, FOCAL, PRINCIPAL,
                                     video.body_vertices(video.shown(people), synthetic_net.smpl))
    assert os.listdir(tmp_path) == ["overlay.mp4"]                   # the partial file was renamed
    people = clip[-1]
    shown = OverlayWriter.shown(people)
    assert [p.track_id for p in shown] == [1, 2] and len(people) == 3   # the tentative third has no mesh
    assert composed.shape == (H, W + H, 3)
    for person in shown:
        u, v = _hip_pixel(person)
        assert _hue_matches(composed[v, u], person.track_id, 0.05)
    image = composed[:, :W]
    below_feet = slice(420, H)                                          # nobody's mesh, box or skeleton there
    np.testing.assert_array_equal(image[below_feet], background[below_feet, :, ::-1])
    changed = (image != background[..., ::-1]).any(axis=2)
    assert 0.05 < changed.mean() < 0.6
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == FRAMES and frames[-1].shape == (H, W + H, 3)
    last = frames[-1].astype(np.float64)
    for person in shown:
        u, v = _hip_pixel(person)
        assert _hue_matches(last[v - 1:v + 2, u - 1:u + 2].mean(axis=(0, 1)), person.track_id, 0.15)
    assert np.abs(last[below_feet, :W] - background[below_feet, :, ::-1]).mean() < 4


def test_nearer_person_hides_the_farther_whatever_the_order(clip, synthetic_net, tmp_path):
    people = clip[-1]
    video = OverlayWriter(str(tmp_path / "o.mp4"), (W, H), 30.0, synthetic_net.smpl.faces_tensor.numpy(),
                          side_panel=False)
    shown = video.shown(people)
    near = video.body_vertices(shown[:1], synthetic_net.smpl)[0]
    u, v = _hip_pixel(shown[0])
    for meshes, front in (((near, near * 1.3), 1), ((near * 1.3, near), 2)):   # the same body, 30 % farther away
        frame = video.compose(_background(), people, FOCAL, PRINCIPAL, np.stack(meshes))
        assert frame.shape == (H, W, 3) and _hue_matches(frame[v, u], front, 0.05)
    video.abort()
    assert os.listdir(tmp_path) == []


def test_errors_name_the_problem_and_leave_nothing(clip, synthetic_net, tmp_path):
    faces = synthetic_net.smpl.faces_tensor.numpy()
    path = tmp_path / "overlay.mp4"
    with pytest.raises(OverlayError, match="got an image of 320x240"):
        with OverlayWriter(str(path), (W, H), 30.0, faces) as video:
            video.add(np.zeros((240, 320, 3), np.uint8), clip[-1], FOCAL, PRINCIPAL, synthetic_net.smpl)
    assert os.listdir(tmp_path) == []
    with pytest.raises(OverlayError, match="must be positive"):
        OverlayWriter(str(path), (W, H), 0.0, faces)


def test_back_face_culling_changes_nothing_on_the_closed_body(synthetic_body_dir):
    """Culling (the overlay's halving of the rasterising work) is invisible with outward faces, and
    removes the visible side when the winding is reversed (so outward_faces really orients)."""
    from wham_ros.model.body_model import load_body_model
    from wham_ros.offline.render import MeshRenderer, look_at, outward_faces

    bm = load_body_model(synthetic_body_dir)
    verts, faces = bm.v_template.numpy().astype(np.float64), bm.faces_tensor.numpy()
    outward = outward_faces(verts, faces)
    np.testing.assert_array_equal(outward_faces(verts, outward[:, ::-1]), outward)
    for eye in ([0.3, 0.4, 3.0], [2.5, 1.0, -2.0], [0.0, 3.0, 0.5]):
        camera = look_at(np.array(eye), np.array([0, 0.3, 0]), np.array([0, -1.0, 0]), 300, 160, 120)
        plain = MeshRenderer(faces, 160, 120).render(verts, camera)
        culled = MeshRenderer(outward, 160, 120, cull_back=True).render(verts, camera)
        inverted = MeshRenderer(outward[:, ::-1], 160, 120, cull_back=True).render(verts, camera)
        np.testing.assert_array_equal(culled, plain)
        assert (inverted != plain).any(axis=2).mean() > 0.5 * (plain != 255).any(axis=2).mean()
