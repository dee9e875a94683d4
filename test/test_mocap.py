"""Motion capture readers, rig tables, resampling, retargeting and contact labels."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from conftest import SHARED, require_file
from mocap_data import ASF, CMU_JOINTS, amc_text, bvh_text, skeleton_of, walking_frames

from wham_ros.errors import MocapError
from wham_ros.geometry.rotations import axis_angle_to_matrix
from wham_ros.mocap.asf_amc import INCH, read_amc, read_asf
from wham_ros.mocap.body import posed_joints, rest_joints
from wham_ros.mocap.bvh import read_bvh
from wham_ros.mocap.contact import contact_labels, ground_offset
from wham_ros.mocap.resample import resample
from wham_ros.mocap.retarget import SMPL_PARENTS, Y_UP_TO_WHAM, retarget
from wham_ros.mocap.rigs import CMU_BVH, RIGS, SMPL_JOINT_NAMES, JointSpec, Rig, rig_for
from wham_ros.mocap.skeleton import Motion, euler_matrices
from wham_ros.model import load_body_model

MOCAP = os.path.join(SHARED, "data", "mocap")
TINY = """HIERARCHY
ROOT Hips
{
  OFFSET 0 1 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT Knee
  {
    OFFSET 0 -0.5 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 -0.4 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.016667
0 0 0 0 0 0 0 0 0
1 0 2 90 0 0 0 90 0
"""


def _write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_bvh_hierarchy_channels_and_kinematics(tmp_path):
    m = read_bvh(_write(tmp_path, "tiny.bvh", TINY))
    assert m.skeleton.names == ("Hips", "Knee", "Knee_end") and m.skeleton.parents.tolist() == [-1, 0, 1]
    assert m.fps == 60.0 and m.num_frames == 2          # 0.016667 is 1/60 printed rounded
    G, P = m.global_pose()
    np.testing.assert_allclose(P[0], [[0, 1, 0], [0, 0.5, 0], [0, 0.1, 0]], atol=1e-12)
    # frame 1: root at offset + channels, turned 90 deg about z; the knee turns 90 deg about x
    np.testing.assert_allclose(P[1, 0], [1, 1, 2], atol=1e-12)
    np.testing.assert_allclose(P[1, 1], [1.5, 1, 2], atol=1e-12)      # Rz(90) (0, -0.5, 0) = (0.5, 0, 0)
    expected_end = P[1, 1] + euler_matrices(np.radians([[90.0, 0, 0]]), "zyx")[0] @ \
        euler_matrices(np.radians([[0.0, 90, 0]]), "zxy")[0] @ np.array([0, -0.4, 0])
    np.testing.assert_allclose(P[1, 2], expected_end, atol=1e-12)
    np.testing.assert_allclose(G[1, 1], euler_matrices(np.radians([[90.0, 0, 0, 0, 90, 0]])[:, :3], "zyx")[0]
                               @ euler_matrices(np.radians([[0.0, 90, 0]]), "zxy")[0], atol=1e-12)


def test_euler_order_is_the_listed_product():
    a = np.radians([[30.0, 40.0, 50.0]])
    Rz, Ry, Rx = (euler_matrices(a[:, k:k + 1], axis)[0] for k, axis in enumerate("zyx"))
    np.testing.assert_allclose(euler_matrices(a, "zyx")[0], Rz @ Ry @ Rx, atol=1e-12)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace("1 0 2 90 0 0 0 90 0\n", ""), "truncated: 'Frames: 2' declared, 1 frame lines"),
    (lambda t: t.replace("1 0 2 90", "1 0 x 90"), ":20: could not convert"),
    (lambda t: t.replace("1 0 2 90 0 0 0 90 0", "1 0 2 90 0 0 0 90"), ":20: 8 values, the hierarchy has 9"),
    (lambda t: t.replace("Zrotation Xrotation", "Zrotation Wrotation"), ":9: joint Knee: unknown channel"),
    (lambda t: t.split("MOTION")[0], "no MOTION section"),
    (lambda t: t.replace("    End Site", "    JOINT"), "tiny.bvh:12: expected '{', found 'OFFSET'"),
    (lambda t: t.replace("OFFSET 0 -0.5 0", "OFFSET 0 -0.5"), ":9: OFFSET of Knee: 'CHANNELS' is not a number"),
])
def test_bad_bvh_names_file_and_line(tmp_path, edit, message):
    path = _write(tmp_path, "tiny.bvh", edit(TINY))
    with pytest.raises(MocapError, match=r"tiny\.bvh") as err:
        read_bvh(path)
    assert message in str(err.value)


def test_asf_amc_bones_axes_and_units(tmp_path):
    asf = read_asf(_write(tmp_path, "test.asf", ASF))
    assert asf.skeleton.names == ("root", "lfemur", "ltibia", "ltibia_end")
    assert asf.metres == pytest.approx(INCH / 0.45)
    frames = [{"root": [0, 18, 0, 0, 0, 0], "lfemur": [0, 0, 0], "ltibia": [0]},
              {"root": [0, 18, 0, 0, 0, 0], "lfemur": [0, 0, 0], "ltibia": [90]}]
    m = read_amc(_write(tmp_path, "walk.amc", amc_text(frames)), asf, fps=120)
    G, P = m.global_pose()
    unit = asf.metres
    np.testing.assert_allclose(P[0, :, 1] / unit, [18, 18, 9, 0], atol=1e-9)
    # the tibia's axis frame is turned 90 deg about z, so its rx turns about the world's y (C M C^T):
    # the bone (along -y) keeps its place while its frame spins
    np.testing.assert_allclose(P[1], P[0], atol=1e-9)
    np.testing.assert_allclose(G[1, 2], euler_matrices(np.radians([[90.0]]), "y")[0], atol=1e-9)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.rsplit("ltibia 90", 1)[0], "lacks bones ['ltibia']"),
    (lambda t: t.replace("ltibia 90", "lfoot 90"), "bone 'lfoot' is not a moving bone"),
    (lambda t: t.replace("ltibia 90", "ltibia 90 3"), "bone 'ltibia' has 2 values, its dof lists 1"),
    (lambda t: t.replace("lfemur 0 0 0\nltibia 90", "lfemur 0 zero 0\nltibia 90"), "is not numeric"),
])
def test_bad_amc_names_file_and_line(tmp_path, edit, message):
    asf = read_asf(_write(tmp_path, "test.asf", ASF))
    frames = [{"root": [0, 18, 0, 0, 0, 0], "lfemur": [0, 0, 0], "ltibia": [0]},
              {"root": [0, 18, 0, 0, 0, 0], "lfemur": [0, 0, 0], "ltibia": [90]}]
    path = _write(tmp_path, "walk.amc", edit(amc_text(frames)))
    with pytest.raises(MocapError, match=r"walk\.amc:?\d*") as err:
        read_amc(path, asf)
    assert message in str(err.value)


def test_bad_asf(tmp_path):
    with pytest.raises(MocapError, match=r"test\.asf.*'lhip'.*does not define"):
        read_asf(_write(tmp_path, "test.asf", ASF.replace("root lfemur", "root lhip")))
    with pytest.raises(MocapError, match=r"test\.asf: truncated: bone block at line \d+ has no 'end'"):
        read_asf(_write(tmp_path, "test.asf", ASF.split("  begin\n     id 2")[0] + "  begin\n     id 2\n"))


def test_resample_keeps_every_kth_frame_or_interpolates():
    skel = skeleton_of(CMU_JOINTS[:3])
    T = 9
    angles = np.zeros((T, 3, 3))
    angles[:, 0, 2] = np.radians(np.arange(T) * 10.0)           # root turns 10 deg per frame about x
    rot = euler_matrices(angles, "zyx")
    m = Motion(skel, rot, np.zeros((T, 3)), 120.0, 1.0, "x")
    kept = resample(m, 30.0)
    assert kept.num_frames == 3 and kept.fps == 30.0
    np.testing.assert_allclose(kept.rotations, rot[[0, 4, 8]])
    half = resample(Motion(skel, rot, np.arange(T)[:, None] * np.ones(3), 60.0, 1.0, "x"), 40.0)
    np.testing.assert_allclose(half.rotations[1, 0], euler_matrices(np.radians([[0, 0, 15.0]]), "zyx")[0],
                               atol=1e-9)
    np.testing.assert_allclose(half.root_position[1], [1.5] * 3)


def test_rig_tables_cover_smpl_and_pick_skeletons():
    for rig in RIGS:
        assert set(rig.joints) == set(SMPL_JOINT_NAMES)
        assert {"left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"} <= set(rig.positions)
    assert rig_for(skeleton_of(CMU_JOINTS).names, "x.bvh") is CMU_BVH
    with pytest.raises(MocapError, match=r"odd\.bvh: unknown skeleton .* closest table"):
        rig_for(("Hips", "Spine"), "odd.bvh")
    assert CMU_BVH.subject("data/cmu_131/scaled_131_02.bvh") == "cmu_131"
    assert RIGS[1].subject("cmu_iclone/005/005_12.bvh") == "cmu_005"
    assert RIGS[2].subject("hdm05_cut/9/HDM_bk_sneak2StepsLStart_006_120.AMC") == "hdm05_bk"


def _identity_rig() -> Rig:
    """A rig whose source *is* SMPL's tree (names = SMPL names, tips as end sites)."""
    children = {p: j for j, p in reversed(list(enumerate(SMPL_PARENTS)))}
    leaf_axis = {"head": "+y", "left_foot": "+z", "right_foot": "+z", "left_hand": "+x", "right_hand": "-x"}
    joints = {}
    for j, name in enumerate(SMPL_JOINT_NAMES):
        if name == "pelvis":
            joints[name] = JointSpec(name, ("right_hip", "left_hip"), ("right_hip", "left_hip"), "+y")
        elif name == "spine3":
            joints[name] = JointSpec(name, ("spine3", "neck"), ("spine3", "neck"))
        elif name in leaf_axis:
            joints[name] = JointSpec(name, (name, f"{name}_end"), leaf_axis[name],
                                     "+x" if "foot" in name else "+z")
        else:
            child = SMPL_JOINT_NAMES[children[j]]
            joints[name] = JointSpec(name, (name, child), (name, child), "+x" if "ankle" in name else "+z")
    positions = {n: n for n in SMPL_JOINT_NAMES if n not in ("pelvis", "spine1", "spine2", "spine3")}
    return Rig("identity", joints, positions, "test", "test", "test", r"(\d+)", "s", metres=1.0)


def _smpl_source(rest: np.ndarray, pose: np.ndarray, trans: np.ndarray) -> Motion:
    """A source skeleton built from the body's own rest joints, moved by ``pose`` (T, 24, 3, 3)."""
    tips = {"head": (0, 0.1, 0), "left_foot": (0, 0, 0.05), "right_foot": (0, 0, 0.05),
            "left_hand": (0.05, 0, 0), "right_hand": (-0.05, 0, 0)}
    names = list(SMPL_JOINT_NAMES) + [f"{n}_end" for n in tips]
    parents = list(SMPL_PARENTS) + [SMPL_JOINT_NAMES.index(n) for n in tips]
    offsets = [rest[0]] + [rest[j] - rest[p] for j, p in enumerate(SMPL_PARENTS) if p >= 0] + list(tips.values())
    T = pose.shape[0]
    rotations = np.concatenate((pose, np.broadcast_to(np.eye(3), (T, len(tips), 3, 3))), axis=1)
    # the source lives in a y-up world: undo the y-down turn retargeting applies
    rotations = rotations.copy()
    rotations[:, 0] = Y_UP_TO_WHAM.T @ rotations[:, 0]
    skel = skeleton_of([(n, None if p < 0 else names[p], o) for n, p, o in zip(names, parents, offsets)])
    return Motion(skel, rotations, (trans + rest[0]) @ Y_UP_TO_WHAM, 30.0, 1.0, "smpl.bvh")


def test_retargeting_onto_its_own_skeleton_is_exact(synthetic_body_dir):
    bm = load_body_model(synthetic_body_dir)
    rest = rest_joints(bm, np.zeros(10))
    g = torch.Generator().manual_seed(3)
    pose = axis_angle_to_matrix((torch.rand(12, 24, 3, generator=g, dtype=torch.float64) - 0.5) * 0.8).numpy()
    trans = np.random.default_rng(0).normal(size=(12, 3)) * 0.3
    result = retarget(_smpl_source(rest, pose, trans), _identity_rig(), rest)
    assert result.scale == pytest.approx(1.0) and result.folded == 0
    np.testing.assert_allclose(result.rotations, pose, atol=1e-9)
    joints = posed_joints(bm, result.rotations, np.zeros(10)) + result.trans[:, None]
    want = posed_joints(bm, pose, np.zeros(10)) + trans[:, None]
    np.testing.assert_allclose(joints, want, atol=1e-6)


def test_twists_beyond_anatomy_are_folded_without_moving_joints(synthetic_body_dir):
    bm = load_body_model(synthetic_body_dir)
    rest = rest_joints(bm, np.zeros(10))
    pose = np.broadcast_to(np.eye(3), (4, 24, 3, 3)).copy()
    elbow, wrist = SMPL_JOINT_NAMES.index("left_elbow"), SMPL_JOINT_NAMES.index("left_wrist")
    axis = rest[wrist] - rest[elbow]
    half = axis_angle_to_matrix(torch.as_tensor(np.pi * axis / np.linalg.norm(axis))).numpy()
    pose[:, elbow] = half                 # forearm flipped about itself ...
    pose[:, wrist] = half.T               # ... and flipped back at the wrist: same joints, odd twists
    result = retarget(_smpl_source(rest, pose, np.zeros((4, 3))), _identity_rig(), rest)
    assert result.folded == 4
    np.testing.assert_allclose(result.rotations[:, elbow], np.eye(3)[None].repeat(4, 0), atol=1e-9)
    joints = posed_joints(bm, result.rotations, np.zeros(10))
    np.testing.assert_allclose(joints, posed_joints(bm, pose, np.zeros(10)), atol=1e-9)


def test_cmu_bind_pose_arms_down_are_retargeted_onto_a_t_pose_body(tmp_path, synthetic_body_dir):
    frames = walking_frames(CMU_JOINTS, 40, 120.0)
    m = read_bvh(_write(tmp_path, "cmu_131_01.bvh", bvh_text(CMU_JOINTS, frames, 1 / 120)))
    rest = rest_joints(load_body_model(synthetic_body_dir), np.zeros(10))
    result = retarget(resample(m), CMU_BVH, rest)
    assert result.rotations.shape == (10, 24, 3, 3)
    # bones point where the source's do: every child joint lies on its source bone's line
    joints = posed_joints(load_body_model(synthetic_body_dir), result.rotations, np.zeros(10)) + result.trans[:, None]
    names = result.point_names
    for parent, child in (("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("left_shoulder", "left_elbow"),
                          ("right_elbow", "right_wrist")):
        body = joints[:, SMPL_JOINT_NAMES.index(child)] - joints[:, SMPL_JOINT_NAMES.index(parent)]
        src = result.source_points[:, names.index(child)] - result.source_points[:, names.index(parent)]
        cos = (body * src).sum(1) / np.linalg.norm(body, axis=1) / np.linalg.norm(src, axis=1)
        assert cos.min() > 0.9999
    # y-down world: the head is above (smaller y than) the hips, the feet below
    assert (joints[:, 15, 1] < joints[:, 0, 1]).all() and (joints[:, 10, 1] > joints[:, 0, 1]).all()


def test_contact_labels_follow_wham():
    t = np.arange(30)[:, None, None]
    still = np.zeros((30, 4, 3))
    moving = np.concatenate((t * 0.02, np.zeros((30, 1, 1)), np.zeros((30, 1, 1))), axis=2) * np.ones((1, 4, 1))
    assert np.allclose(contact_labels(still), 1 / (1 + np.exp(-5)))
    assert np.allclose(contact_labels(moving), 1 / (1 + np.exp(5)))
    half = moving / 2
    assert np.allclose(contact_labels(half), 0.5)
    feet = still.copy()
    feet[..., 1] = -0.03                                         # soles 3 cm above the floor
    assert ground_offset(feet, contact_labels(feet)) == pytest.approx(0.03)


@pytest.mark.parametrize("relative", ["cmu_131_01_walk_scaled_m.bvh", "cmu_iclone/005/005_01.bvh",
                                      "hdm05_cut/5/HDM_bd_jogLeftCircle4StepsRstart_001_120.amc"])
def test_shared_clips_follow_their_source(relative, synthetic_body_dir):
    from wham_ros.mocap.corpus import read_motion, retarget_clip
    from wham_ros.mocap.quality import body_points, joint_distances, rebuilt_source

    path = require_file(os.path.join(MOCAP, relative), "shared mocap data")
    motion, rig = read_motion(path)
    motion = Motion(motion.skeleton, motion.rotations[:240], motion.root_position[:240], motion.fps, motion.metres,
                    motion.source)
    result = retarget_clip(resample(motion), rig, load_body_model(synthetic_body_dir), np.zeros(10))
    names = tuple(str(n) for n in result.arrays["source_point_names"])
    source = result.arrays["source_points"]
    d = joint_distances(body_points(result.arrays["joints"], names), rebuilt_source(source, names,
                                                                                  result.arrays["rest_joints"]))
    legs = [names.index(n) for n in ("left_knee", "right_knee", "left_ankle", "right_ankle")]
    assert d[:, legs].max() < 1e-3                   # legs are exact after bone-length scaling
    assert np.isfinite(result.arrays["pose"]).all() and result.arrays["contact"].shape == (len(source), 4)
