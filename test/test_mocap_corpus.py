"""The corpus (build, read, conventions), the headless renderer and the two commands."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch
from mocap_data import CMU_JOINTS, bvh_text, walking_frames

from wham_ros.cli import main
from wham_ros.errors import MocapError
from wham_ros.geometry.rotations import axis_angle_to_matrix
from wham_ros.mocap.body import posed_joints
from wham_ros.mocap.corpus import build_corpus, load_corpus
from wham_ros.mocap.rigs import CMU_LICENCE
from wham_ros.model import load_body_model
from wham_ros.offline.render import MeshRenderer, look_at


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory, synthetic_body_dir):
    src = tmp_path_factory.mktemp("mocap")
    for trial, seed in (("01", 0), ("02", 1)):
        (src / f"scaled_131_{trial}.bvh").write_text(bvh_text(CMU_JOINTS, walking_frames(CMU_JOINTS, 120, 120.0, seed),
                                                              1 / 120))
    out = tmp_path_factory.mktemp("corpus")
    build_corpus(str(src), str(out), synthetic_body_dir, log=lambda _: None)
    return str(out)


def test_corpus_index_and_arrays(corpus_dir, synthetic_body_dir):
    corpus = load_corpus(corpus_dir)
    assert [c["id"] for c in corpus.clips] == ["scaled_131_01", "scaled_131_02"]
    entry = corpus.entry("scaled_131_02")
    assert entry["subject"] == "cmu_131" and entry["licence"] == CMU_LICENCE and entry["fps"] == 30.0
    assert entry["source_fps"] == 120.0 and entry["frames"] == 30 and entry["rig"] == "cmu_bvh"
    clip = corpus.load("scaled_131_02")
    T = entry["frames"]
    assert clip["pose"].shape == (T, 24, 3) and clip["trans"].shape == (T, 3) and clip["betas"].shape == (10,)
    assert clip["contact"].shape == (T, 4) and ((clip["contact"] > 0) & (clip["contact"] < 1)).all()
    # one shape per subject
    np.testing.assert_array_equal(clip["betas"], corpus.load("scaled_131_01")["betas"])
    # the stored joints are the body model posed by pose + trans
    bm = load_body_model(synthetic_body_dir)
    R = axis_angle_to_matrix(torch.as_tensor(clip["pose"].astype(np.float64))).numpy()
    joints = posed_joints(bm, R, clip["betas"]) + clip["trans"][:, None]
    np.testing.assert_allclose(joints, clip["joints"], atol=2e-4)
    # y-down world: head above the pelvis; soles rest on the floor (y = 0) where they stand
    assert (clip["joints"][:, 15, 1] < clip["joints"][:, 0, 1]).all()
    assert abs(np.percentile((-clip["feet"][..., 1]).min(axis=1), 5)) < 0.03


def test_corpus_errors(tmp_path, corpus_dir, synthetic_body_dir):
    with pytest.raises(MocapError, match=r"index\.json"):
        load_corpus(str(tmp_path))
    with pytest.raises(MocapError, match="no clip 'nope'"):
        load_corpus(corpus_dir).entry("nope")
    (tmp_path / "odd.bvh").write_text("HIERARCHY\nROOT a\n{\n OFFSET 0 0 0\n")
    with pytest.raises(MocapError, match=r"odd\.bvh"):
        build_corpus(str(tmp_path), str(tmp_path / "out"), synthetic_body_dir)


def test_renderer_depth_test_and_coverage():
    # a small red square 5 m in front of the camera, a larger blue one behind it at 7 m
    square = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], float)
    verts = np.concatenate((square * 0.5, square + [0, 0, 2.0]))
    faces = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    colors = np.array([[1, 0, 0]] * 2 + [[0, 0, 1]] * 2, float)
    camera = look_at(np.array([0, 0, -5.0]), np.zeros(3), np.array([0, 1.0, 0]), 100, 64, 48)
    for order in ([0, 1, 2, 3], [2, 3, 0, 1]):                     # whichever is drawn first, the near one wins
        image = MeshRenderer(faces[order], 64, 48).render(verts, camera, face_colors=colors[order],
                                                          background=(0, 0, 0))
        assert image[24, 32, 0] > 0 and image[24, 32, 2] == 0      # centre: red (spans +-10 px)
        assert image[24, 32 + 12, 2] > 0 and image[24, 32 + 12, 0] == 0   # blue beyond it (+-14 px)
        assert (image[2, 2] == 0).all()                            # corner: background
    face, bary, depth = MeshRenderer(faces[:2], 64, 48).rasterize(verts, camera)
    assert abs((face >= 0).sum() - 20 * 20) <= 2 * 20              # a 20 x 20 px square, edges aside
    np.testing.assert_allclose(bary[face >= 0].sum(-1), 1.0)
    np.testing.assert_allclose(depth[face >= 0], 5.0)


def test_renderer_cost_on_the_body(synthetic_body_dir):
    bm = load_body_model(synthetic_body_dir)
    verts = bm.v_template.numpy().astype(np.float64) * [1, -1, 1]
    camera = look_at(np.array([0, -0.3, 3.0]), np.array([0, -0.3, 0]), np.array([0, 1.0, 0]), 400, 640, 360)
    renderer = MeshRenderer(bm.faces_tensor.numpy(), 640, 360)
    image = renderer.render(verts, camera)
    start = time.perf_counter()
    for _ in range(3):
        renderer.render(verts, camera)
    ms = (time.perf_counter() - start) / 3 * 1e3
    print(f"renderer: {ms:.1f} ms per 640x360 frame, {len(bm.faces_tensor)} triangles")
    assert image.shape == (360, 640, 3) and (image != 255).any(axis=2).sum() > 5000


def test_render_motion_and_build_corpus_commands(corpus_dir, synthetic_body_dir, tmp_path, capsys):
    out = tmp_path / "strip.png"
    assert main(["render-motion", "scaled_131_01", "--corpus", corpus_dir, "--out", str(out), "--panels", "3",
                 "--size", "96x128"]) == 0
    import cv2

    assert cv2.imread(str(out)).shape == (128, 3 * 96, 3)
    assert "ms/frame" in capsys.readouterr().out
    src = tmp_path / "src"
    src.mkdir()
    (src / "scaled_131_07.bvh").write_text(bvh_text(CMU_JOINTS, walking_frames(CMU_JOINTS, 40, 120.0), 1 / 120))
    assert main(["build-corpus", str(src), str(tmp_path / "c"), "--body-model", synthetic_body_dir]) == 0
    assert "build-corpus: 1 clips, 10 frames" in capsys.readouterr().out
    assert os.path.isfile(tmp_path / "c" / "clips" / "scaled_131_07.npz")
