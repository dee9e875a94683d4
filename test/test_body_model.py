"""Body model: chumpy-free loading, WHAM regressors, hip-midpoint centring and clear errors."""
from __future__ import annotations

import os
import pickle
import shutil

import numpy as np
import pytest
import torch

from wham_ros.errors import BodyModelError
from wham_ros.geometry.rotations import axis_angle_to_matrix
from wham_ros.model import load_body_model
from wham_ros.model.body_model import read_smpl_pickle
from wham_ros.model.synthetic import NUM_FACES, NUM_VERTS, write_body_model


@pytest.fixture(scope="module")
def plain_dir(tmp_path_factory):
    return write_body_model(str(tmp_path_factory.mktemp("plain")))


def _pose(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    R = axis_angle_to_matrix((torch.rand(n, 24, 3, generator=g) * 2 - 1) * 0.6)
    return R[:, :1], R[:, 1:], torch.randn(n, 10, generator=g)


def test_official_encoding_loads_without_chumpy_or_scipy(synthetic_body_dir, plain_dir):
    import sys

    assert "chumpy" not in sys.modules
    with open(os.path.join(synthetic_body_dir, "smpl", "SMPL_NEUTRAL.pkl"), "rb") as fh:
        raw = fh.read()
    assert b"chumpy.ch" in raw and b"scipy.sparse.csc" in raw and b"csc_matrix" in raw
    a = read_smpl_pickle(os.path.join(plain_dir, "smpl", "SMPL_NEUTRAL.pkl"))
    b = read_smpl_pickle(os.path.join(synthetic_body_dir, "smpl", "SMPL_NEUTRAL.pkl"))
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "f", "kintree_table"):
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)
    assert "chumpy" not in sys.modules


def test_structure_matches_smpl(synthetic_body_dir):
    bm = load_body_model(synthetic_body_dir)
    assert bm.v_template.shape == (NUM_VERTS, 3) == (6890, 3)
    assert bm.faces_tensor.shape == (NUM_FACES, 3) == (13776, 3)
    assert bm.J_regressor_wham.shape == (31, 6890) and bm.J_regressor_feet.shape == (4, 6890)
    assert bm.J_regressor_eval.shape == (17, 6890) and bm.posedirs.shape == (207, 20670)
    assert bm.shapedirs.shape == (6890, 3, 10) and bm.parents.tolist()[:4] == [-1, 0, 0, 0]


def test_outputs_are_hip_midpoint_centred(synthetic_body_dir):
    bm = load_body_model(synthetic_body_dir)
    go, bp, betas = _pose(3)
    out = bm.get_output(go, bp, betas)
    hips = out.joints[:, [11, 12]].mean(1)
    torch.testing.assert_close(hips, torch.zeros_like(hips), atol=1e-6, rtol=0)
    assert out.vertices.shape == (3, 6890, 3) and out.feet.shape == (3, 4, 3) and out.offset.shape == (3, 3)
    fast = bm.get_joints(go, bp, betas)
    assert fast.vertices is None
    for name in ("joints", "feet", "offset"):
        torch.testing.assert_close(getattr(fast, name), getattr(out, name), atol=1e-5, rtol=1e-5)


def test_parity_body_model_loads(parity_dir):
    bm = load_body_model(os.path.join(parity_dir, "body_models"))
    assert bm.num_vertices == 6890


def _broken_copy(src: str, dst: str, key: str, value) -> str:
    shutil.copytree(src, dst)
    pkl = os.path.join(dst, "smpl", "SMPL_NEUTRAL.pkl")
    d = read_smpl_pickle(pkl)
    if value is None:
        del d[key]
    else:
        d[key] = value
    with open(pkl, "wb") as fh:
        pickle.dump(d, fh)
    return dst


@pytest.mark.parametrize("key,value,message", [
    ("posedirs", np.zeros((6890, 3, 200)), "'posedirs' has shape (6890, 3, 200), expected (6890, 3, 207)"),
    ("J_regressor", np.zeros((23, 6890)), "'J_regressor' has shape (23, 6890)"),
    ("weights", None, "missing SMPL keys ['weights']"),
    ("shapedirs", np.zeros((6890, 3, 8)), "8 shape components"),
    ("v_template", np.full((6890, 3), np.nan), "'v_template' contains NaN"),
    ("f", np.full((13776, 3), 7000, dtype=np.uint32), "face indices"),
])
def test_wrong_smpl_arrays_are_named(plain_dir, tmp_path, key, value, message):
    folder = _broken_copy(plain_dir, str(tmp_path / "bm"), key, value)
    with pytest.raises(BodyModelError) as err:
        load_body_model(folder)
    assert message in str(err.value) and "SMPL_NEUTRAL.pkl" in str(err.value)


def test_wrong_regressor_and_missing_files(plain_dir, tmp_path):
    folder = str(tmp_path / "bm")
    shutil.copytree(plain_dir, folder)
    np.save(os.path.join(folder, "J_regressor_feet.npy"), np.zeros((5, 6890)))
    with pytest.raises(BodyModelError, match=r"J_regressor_feet.npy.*\(5, 6890\), expected \(4, 6890\)"):
        load_body_model(folder)
    os.remove(os.path.join(folder, "J_regressor_feet.npy"))
    with pytest.raises(BodyModelError, match=r"J_regressor_feet\.npy not found"):
        load_body_model(folder)
    with pytest.raises(BodyModelError, match="does not exist"):
        load_body_model(str(tmp_path / "nowhere"))
    os.remove(os.path.join(folder, "smpl", "SMPL_NEUTRAL.pkl"))
    with pytest.raises(BodyModelError, match=r"SMPL_NEUTRAL\.pkl not found"):
        load_body_model(folder)


def test_corrupt_smpl_pickle(plain_dir, tmp_path):
    folder = str(tmp_path / "bm")
    shutil.copytree(plain_dir, folder)
    pkl = os.path.join(folder, "smpl", "SMPL_NEUTRAL.pkl")
    data = open(pkl, "rb").read()
    open(pkl, "wb").write(data[: len(data) // 3])
    with pytest.raises(BodyModelError, match="not a readable SMPL pickle"):
        load_body_model(folder)
    with open(pkl, "wb") as fh:
        pickle.dump([1, 2, 3], fh)
    with pytest.raises(BodyModelError, match="holds a list"):
        load_body_model(folder)
