"""Synthetic stand-ins for licence-restricted files, for tests and demos.

* :func:`write_body_model` writes a ``body_models/`` folder with the same file names,
  keys, shapes and dtypes as the official SMPL neutral model and WHAM regressors
  (6890 vertices, 13776 faces, 24 joints, 10 shape and 207 pose blend shapes), shaped
  like a 1.7 m tall T-posed figure. It is *not* SMPL and carries no SMPL data.
  With ``official_encoding=True`` the pickle stores its arrays as chumpy objects and
  ``J_regressor`` as a scipy CSC matrix, like the 2015 SMPL release, so the
  chumpy-free loader is exercised without chumpy or scipy installed.
* :func:`make_test_state_dict` makes deterministic WHAM weights whose outputs have
  realistic magnitudes (upright bodies, a person a few metres away, contacts
  crossing the 0.5 threshold), so every branch of the network runs in tests.
"""
from __future__ import annotations

import io
import math
import os
import pickle
import sys
import types

import numpy as np
import torch

N_RINGS, RING = 82, 84                 # 82 * 84 + 2 poles = 6890 vertices
NUM_VERTS = N_RINGS * RING + 2
NUM_FACES = 2 * RING * (N_RINGS - 1) + 2 * RING
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
#: rest joints of a T-posed figure, SMPL axes (+x = body's left, +y up, +z forward), metres
REST_JOINTS = np.array([
    (0.0, -0.21, 0.0), (0.09, -0.30, 0.0), (-0.09, -0.30, 0.0), (0.0, -0.10, 0.0),
    (0.08, -0.68, 0.0), (-0.08, -0.68, 0.0), (0.0, 0.04, 0.0), (0.07, -1.06, 0.0),
    (-0.07, -1.06, 0.0), (0.0, 0.12, 0.0), (0.07, -1.14, 0.10), (-0.07, -1.14, 0.10),
    (0.0, 0.29, 0.0), (0.08, 0.22, 0.0), (-0.08, 0.22, 0.0), (0.0, 0.38, 0.01),
    (0.19, 0.23, 0.0), (-0.19, 0.23, 0.0), (0.45, 0.23, 0.0), (-0.45, 0.23, 0.0),
    (0.71, 0.23, 0.0), (-0.71, 0.23, 0.0), (0.79, 0.23, 0.0), (-0.79, 0.23, 0.0),
])


def _mesh() -> tuple[np.ndarray, np.ndarray]:
    """A closed genus-0 ring mesh deformed into a T-posed silhouette (vertices, faces)."""
    ys = np.linspace(0.50, -1.16, N_RINGS)
    ang = np.linspace(0, 2 * np.pi, RING, endpoint=False)
    verts = []
    for y in ys:
        if y > 0.29:                       # head
            r_x = r_z = 0.10 * math.sqrt(max(1e-3, 1 - ((y - 0.40) / 0.11) ** 2))
        elif y > 0.15:                     # shoulders and arms: a wide flat band
            r_x, r_z = 0.82, 0.06
        elif y > -0.30:                    # torso
            r_x, r_z = 0.17, 0.11
        else:                              # legs share one ring, narrowing to the ankles
            r_x, r_z = 0.17 - 0.06 * (-0.30 - y), 0.08
        verts.append(np.stack((r_x * np.sin(ang), np.full(RING, y), r_z * np.cos(ang)), 1))
    verts.append(np.array([[0.0, 0.52, 0.0], [0.0, -1.18, 0.03]]))          # poles
    verts = np.concatenate(verts)
    faces = []
    for r in range(N_RINGS - 1):
        a, b = r * RING, (r + 1) * RING
        for k in range(RING):
            k1 = (k + 1) % RING
            faces += [(a + k, b + k, a + k1), (a + k1, b + k, b + k1)]
    top, bottom = N_RINGS * RING, N_RINGS * RING + 1
    last = (N_RINGS - 1) * RING
    for k in range(RING):
        k1 = (k + 1) % RING
        faces += [(top, k, k1), (bottom, last + k1, last + k)]
    return verts, np.asarray(faces, dtype=np.uint32)


def _nearest_rows(verts: np.ndarray, targets: np.ndarray, k: int = 8) -> np.ndarray:
    """Regressor rows: uniform weights over the k vertices nearest each target point."""
    rows = np.zeros((len(targets), len(verts)))
    for i, p in enumerate(targets):
        idx = np.argsort(((verts - p) ** 2).sum(1))[:k]
        rows[i, idx] = 1.0 / k
    return rows


def build_body_model() -> tuple[dict, dict[str, np.ndarray]]:
    """(smpl dict as in SMPL_NEUTRAL.pkl, {file name: regressor}) for the synthetic figure."""
    verts, faces = _mesh()
    J = REST_JOINTS
    d2 = ((verts[:, None] - J[None]) ** 2).sum(-1)
    nearest2 = np.argsort(d2, 1)[:, :2]
    w = np.zeros((NUM_VERTS, 24))
    rows = np.arange(NUM_VERTS)
    w[rows, nearest2[:, 0]] = 0.75
    w[rows, nearest2[:, 1]] += 0.25
    J_reg = _nearest_rows(verts, J, 12)
    shapedirs = np.zeros((NUM_VERTS, 3, 10))
    centred = verts - verts.mean(0)
    for c in range(10):
        axis = c % 3
        shapedirs[:, axis, c] = 0.02 * centred[:, axis] * (1 + 0.1 * c) * np.cos(c * verts[:, 1])
    phase = np.arange(NUM_VERTS * 3).reshape(NUM_VERTS, 3, 1) * 0.37 + np.arange(207).reshape(1, 1, 207) * 0.11
    posedirs = 0.002 * np.sin(phase)
    kintree = np.stack((np.array(SMPL_PARENTS, dtype=np.int64) % (2 ** 32), np.arange(24)))
    smpl = {"v_template": verts, "f": faces, "J_regressor": J_reg, "weights": w, "kintree_table": kintree,
            "shapedirs": shapedirs, "posedirs": posedirs, "J": J_reg @ verts,
            "bs_type": "lrotmin", "bs_style": "lbs"}
    head = J[15]
    nose = head + np.array([0.0, 0.02, 0.1])
    eye, ear = np.array([0.03, 0.03, -0.01]), np.array([0.08, 0.03, 0.0])
    mirror = np.array([-1.0, 1.0, 1.0])
    coco = np.array([nose, nose + eye, nose + eye * mirror, head + ear, head + ear * mirror,
                     J[16], J[17], J[18], J[19], J[20], J[21], J[1], J[2], J[4], J[5], J[7], J[8]])
    common = np.concatenate((coco[[16, 14, 12, 11, 13, 15, 10, 8, 6, 5, 7, 9]], [J[12], (0.0, 0.50, 0.0)]))
    h36m = J[[0, 2, 5, 8, 1, 4, 7, 3, 9, 15, 15, 16, 18, 20, 17, 19, 21]]
    feet = np.array([(0.07, -1.16, 0.10), (0.07, -1.16, -0.05), (-0.07, -1.16, 0.10), (-0.07, -1.16, -0.05)])
    regressors = {
        "J_regressor_wham.npy": _nearest_rows(verts, np.concatenate((coco, common))),
        "J_regressor_h36m.npy": _nearest_rows(verts, h36m),
        "J_regressor_feet.npy": _nearest_rows(verts, feet, 4),
    }
    return smpl, regressors


def _fake_class(module: str, name: str) -> type:
    cls = type(name, (), {})
    cls.__module__ = module
    return cls


def _official_style_pickle(smpl: dict) -> bytes:
    """Pickle like the 2015 release: chumpy ``Ch`` arrays and a scipy CSC ``J_regressor``.

    The classes are registered under their original module names only while
    pickling, so neither chumpy nor scipy is needed.
    """
    Ch = _fake_class("chumpy.ch", "Ch")
    Csc = _fake_class("scipy.sparse.csc", "csc_matrix")
    obj = dict(smpl)
    for key in ("v_template", "shapedirs", "posedirs", "J"):
        ch = Ch.__new__(Ch)
        ch.__dict__.update({"x": obj[key], "_dirty_vars": set()})
        obj[key] = ch
    dense = obj["J_regressor"]
    cols = [np.nonzero(dense[:, j])[0] for j in range(dense.shape[1])]
    sp = Csc.__new__(Csc)
    sp.__dict__.update({
        "_shape": dense.shape, "maxprint": 50, "format": "csc",
        "indices": np.concatenate(cols).astype(np.int32),
        "indptr": np.concatenate(([0], np.cumsum([len(c) for c in cols]))).astype(np.int32),
        "data": np.concatenate([dense[c, j] for j, c in enumerate(cols)]),
    })
    obj["J_regressor"] = sp
    fakes = {name: types.ModuleType(name) for name in ("chumpy", "chumpy.ch", "scipy.sparse.csc")}
    # parents are only faked when absent, so a real scipy stays importable
    fakes.update({name: types.ModuleType(name) for name in ("scipy", "scipy.sparse") if name not in sys.modules})
    fakes["chumpy.ch"].Ch = Ch
    fakes["scipy.sparse.csc"].csc_matrix = Csc
    saved = {k: sys.modules.get(k) for k in fakes}
    try:
        sys.modules.update(fakes)
        buf = io.BytesIO()
        pickle.dump(obj, buf, protocol=2)
        return buf.getvalue()
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def write_body_model(folder: str, official_encoding: bool = False) -> str:
    """Write ``smpl/SMPL_NEUTRAL.pkl`` and the three ``.npy`` regressors into ``folder``; returns it."""
    smpl, regressors = build_body_model()
    os.makedirs(os.path.join(folder, "smpl"), exist_ok=True)
    data = _official_style_pickle(smpl) if official_encoding else pickle.dumps(smpl, protocol=4)
    with open(os.path.join(folder, "smpl", "SMPL_NEUTRAL.pkl"), "wb") as fh:
        fh.write(data)
    for name, arr in regressors.items():
        np.save(os.path.join(folder, name), arr)
    return folder


#: output heads: (bias centre, weight gain) giving realistic magnitudes
_UPRIGHT_Y_DOWN = [1.0, 0.0, 0.0, 0.0, -1.0, 0.0]
_IDENTITY = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
_HEADS = {
    "motion_encoder.regressor.declayer0": (0.0, 1.0),
    "trajectory_decoder.regressor.declayer0": ([0.0, 0.0, 0.03], 0.05),
    "trajectory_decoder.regressor.declayer1": (_UPRIGHT_Y_DOWN, 0.3),
    "motion_decoder.regressor.declayer0": (_UPRIGHT_Y_DOWN + _IDENTITY * 23, 1.0),
    "motion_decoder.regressor.declayer1": (0.0, 1.0),
    "motion_decoder.regressor.declayer2": ([1.1, 0.0, 0.0], 0.3),
    "motion_decoder.regressor.declayer3": (0.55, 1.5),
    "trajectory_refiner.refiner.declayer0": (0.0, 0.1),
    "trajectory_refiner.refiner.declayer1": (0.0, 0.02),
}


def make_test_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic non-``smpl.*`` WHAM weights with realistic output magnitudes.

    torch's default init from a seeded generator, with the LSTM input weights
    scaled by 4 (so the stacked LSTMs carry signal) and each output head centred on a
    plausible value (upright y-down root, identity joints, s = 1.1, contact ~0.55).
    """
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for name, shape in parameter_shapes().items():
        fan_in = shape[1] if len(shape) == 2 else (shape[0] // 4 if ".rnn.bias" in name else 1)
        bound = 1.0 / math.sqrt(max(fan_in, 1))
        if ".rnn.weight_ih" in name:
            bound *= 4.0
        if name == "mask_embedding":
            bound = 1.0
        t = (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound
        module, _, kind = name.rpartition(".")
        if module in _HEADS:
            centre, gain = _HEADS[module]
            if kind == "weight":
                t = t * gain
            else:
                t = torch.as_tensor(centre, dtype=torch.float64).expand(shape) + t * 0.05
        sd[name] = t.to(torch.float32)
    return sd


def parameter_shapes() -> dict[str, tuple[int, ...]]:
    """Names and shapes of every non-``smpl.*`` WHAM parameter, from the module definitions."""
    from wham_ros.model.integrator import Integrator
    from wham_ros.model.motion_decoder import MotionDecoder
    from wham_ros.model.motion_encoder import MotionEncoder
    from wham_ros.model.trajectory_decoder import TrajectoryDecoder
    from wham_ros.model.trajectory_refiner import TrajectoryRefiner

    shapes = {"mask_embedding": (1, 1, 17, 2)}
    for prefix, module in (("motion_encoder", MotionEncoder()), ("trajectory_decoder", TrajectoryDecoder()),
                           ("integrator", Integrator()), ("motion_decoder", MotionDecoder()),
                           ("trajectory_refiner", TrajectoryRefiner())):
        shapes.update({f"{prefix}.{k}": tuple(v.shape) for k, v in module.state_dict().items()})
    return shapes


def make_track_inputs(T: int, seed: int, box_x: float = 0.0) -> dict[str, torch.Tensor]:
    """Official network arguments (batch 1, T frames, 1280x720, static camera) for a synthetic upright person.

    Random normalised keypoints (10 % masked) and features; ``box_x`` places the box location.
    """
    from wham_ros.geometry.rotations import axis_angle_to_matrix, matrix_to_rot6d

    g = torch.Generator().manual_seed(seed)
    root = axis_angle_to_matrix(torch.tensor([torch.pi, 0.0, 0.0]))
    x = (torch.rand(1, T, 37, generator=g) * 2 - 1) * 0.8
    x[..., 34:] = torch.tensor([box_x, 0.0, 0.5])
    return {
        "x": x, "mask": torch.rand(1, T, 17, generator=g) < 0.1, "features": torch.randn(1, T, 1024, generator=g),
        "init_kp": torch.cat((torch.randn(1, 1, 51, generator=g) * 0.3, x[:, :1]), -1),
        "init_smpl": matrix_to_rot6d(torch.cat((root[None], torch.eye(3).expand(23, 3, 3)))).reshape(1, 1, 24, 6),
        "init_root": matrix_to_rot6d(root).reshape(1, 1, 6), "cam_angvel": torch.zeros(1, T, 6),
        "cam_intrinsics": torch.tensor([[[[1468.6, 0, 640], [0, 1468.6, 360], [0, 0, 1.0]]]]),
        "bbox": torch.tensor([640.0, 360.0, 1.6]).expand(1, T, 3).clone(), "res": torch.tensor([[1280.0, 720.0]]),
    }
