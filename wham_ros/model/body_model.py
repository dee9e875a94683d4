"""SMPL neutral body model with WHAM's extra regressors (through smplx).

Files are read from a user-given folder laid out like the official
``dataset/body_models/`` (without one, from the free body folder built at install
time, :mod:`wham_ros.model.free_body`)::

    <dir>/smpl/SMPL_NEUTRAL.pkl   (or a direct path to the .pkl)
    <dir>/J_regressor_wham.npy    (31, V)  COCO-17 + 14 common joints
    <dir>/J_regressor_h36m.npy    (17, V)
    <dir>/J_regressor_feet.npy    (4, V)   left toe, left heel, right toe, right heel

Official SMPL pickles contain chumpy arrays and a scipy sparse ``J_regressor``;
both are decoded here without importing chumpy or scipy.

All WHAM coordinates are centred on the hip midpoint (the mean of COCO joints
11 and 12 of ``J_regressor_wham``), not on SMPL's pelvis joint.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np
import smplx
import torch
from smplx.lbs import batch_rigid_transform, blend_shapes, lbs
from smplx.utils import Struct

from wham_ros.errors import BodyModelError
from wham_ros.model.free_body.folder import ENV_VAR, default_dir

log = logging.getLogger(__name__)

NUM_SMPL_JOINTS = 24
NUM_POSE_BLEND = 207          # 23 joints x 9 entries of (R - I)
REGRESSOR_FILES = {
    "J_regressor_wham": ("J_regressor_wham.npy", 31),
    "J_regressor_eval": ("J_regressor_h36m.npy", 17),
    "J_regressor_feet": ("J_regressor_feet.npy", 4),
}
#: COCO-17 indices of the left and right hip; their midpoint is WHAM's origin.
HIP_JOINTS = (11, 12)


class _PickledArrayStub:
    """Stands in for chumpy arrays and scipy sparse matrices while unpickling."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = args

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = state[1]
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self._state = state


#: the only globals an SMPL pickle may name besides chumpy and scipy.sparse classes (which become inert
#: stubs): numpy's array and dtype rebuilders and the builtins a Python 2 pickle uses for them
_SAFE_GLOBALS = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"), ("builtins", "bytearray"),
    ("_codecs", "encode"), ("__builtin__", "set"), ("builtins", "set"), ("__builtin__", "frozenset"),
    ("builtins", "frozenset"), ("__builtin__", "object"), ("builtins", "object"),
    ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
})


class _ChumpyFreeUnpickler(pickle.Unpickler):
    """Reads SMPL pickles without chumpy or scipy, and refuses by name every global it does not know,
    so a hostile file cannot run code (``__reduce__`` payloads name ``os.system``, ``eval``, ...)."""

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] == "chumpy" or module.startswith("scipy.sparse"):
            return type(name, (_PickledArrayStub,), {"_origin": f"{module}.{name}"})
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused global {module}.{name}: an SMPL file holds only numpy, chumpy and "
                                     f"scipy.sparse objects")


def _to_dense(value: Any, key: str) -> Any:
    """numpy array from a plain array, a chumpy stub or a scipy sparse stub."""
    if not isinstance(value, _PickledArrayStub):
        return value
    d = value.__dict__
    origin = getattr(value, "_origin", "")
    if "scipy.sparse" in origin:
        shape = tuple(d.get("_shape") or d.get("shape"))
        data, indices, indptr = (np.asarray(d[k]) for k in ("data", "indices", "indptr"))
        dense = np.zeros(shape, dtype=np.float64)
        if origin.endswith("csc_matrix"):
            for j in range(shape[1]):
                dense[indices[indptr[j]:indptr[j + 1]], j] = data[indptr[j]:indptr[j + 1]]
        elif origin.endswith("csr_matrix"):
            for i in range(shape[0]):
                dense[i, indices[indptr[i]:indptr[i + 1]]] = data[indptr[i]:indptr[i + 1]]
        else:
            raise BodyModelError(f"{key}: unsupported sparse format {origin}")
        return dense
    if "x" in d:  # chumpy.ch.Ch keeps its value in .x
        return np.asarray(d["x"])
    if "a" in d and "idxs" in d:  # chumpy Select: a[idxs] reshaped
        base = _to_dense(d["a"], key)
        out = np.asarray(base).ravel()[np.asarray(d["idxs"])]
        return out.reshape(d["preferred_shape"]) if "preferred_shape" in d else out
    raise BodyModelError(f"{key}: cannot decode pickled object {origin} (fields {sorted(d)})")


def read_smpl_pickle(path: str) -> dict[str, Any]:
    """Read an SMPL ``.pkl`` (official chumpy-pickled or plain numpy) into numpy arrays."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise BodyModelError(f"cannot read SMPL model file {path}: {exc}") from exc
    try:
        data = _ChumpyFreeUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except Exception as exc:  # any unpickling failure means a corrupt or foreign file
        raise BodyModelError(f"{path} is not a readable SMPL pickle: {type(exc).__name__}: {exc}") from exc
    if not isinstance(data, dict):
        raise BodyModelError(f"{path} holds a {type(data).__name__}, expected the SMPL dict")
    return {k: _to_dense(v, k) for k, v in data.items()}


def _expect(name: str, arr: Any, shape: tuple, source: str) -> np.ndarray:
    try:
        a = np.asarray(arr)
    except Exception as exc:
        raise BodyModelError(f"{source}: '{name}' is not an array ({exc})") from exc
    ok = a.ndim == len(shape) and all(s is None or s == d for s, d in zip(shape, a.shape))
    if not ok:
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise BodyModelError(f"{source}: '{name}' has shape {a.shape}, expected {want}")
    if a.dtype.kind in "fiu" and not np.isfinite(a.astype(np.float64)).all():
        raise BodyModelError(f"{source}: '{name}' contains NaN or inf")
    return a


def validate_smpl_dict(d: dict[str, Any], source: str) -> dict[str, np.ndarray]:
    """Check the keys and shapes smplx needs; return a clean dict of numpy arrays."""
    required = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
    missing = [k for k in required if k not in d]
    if missing:
        raise BodyModelError(f"{source}: missing SMPL keys {missing} (has {sorted(d)})")
    v = _expect("v_template", d["v_template"], (None, 3), source)
    V = v.shape[0]
    out = {
        "v_template": v,
        "shapedirs": _expect("shapedirs", d["shapedirs"], (V, 3, None), source),
        "posedirs": _expect("posedirs", d["posedirs"], (V, 3, NUM_POSE_BLEND), source),
        "J_regressor": _expect("J_regressor", d["J_regressor"], (NUM_SMPL_JOINTS, V), source),
        "weights": _expect("weights", d["weights"], (V, NUM_SMPL_JOINTS), source),
        "kintree_table": _expect("kintree_table", d["kintree_table"], (2, NUM_SMPL_JOINTS), source),
        "f": _expect("f", d["f"], (None, 3), source),
    }
    if out["shapedirs"].shape[2] < 10:
        raise BodyModelError(f"{source}: 'shapedirs' has {out['shapedirs'].shape[2]} shape components, need 10")
    faces = out["f"].astype(np.int64)
    if faces.size and (faces.min() < 0 or faces.max() >= V):
        raise BodyModelError(f"{source}: face indices outside [0, {V})")
    return out


@dataclass
class BodyOutput:
    """Hip-midpoint-centred body model output for N bodies.

    vertices (N, V, 3), joints (N, 31, 3) from J_regressor_wham, feet (N, 4, 3),
    offset (N, 3): the hip midpoint that was subtracted.
    """

    vertices: torch.Tensor | None
    joints: torch.Tensor
    feet: torch.Tensor
    offset: torch.Tensor


class BodyModel(smplx.SMPL):
    """smplx SMPL plus ``J_regressor_wham`` (31), ``J_regressor_eval`` (h36m 17), ``J_regressor_feet`` (4).

    Buffer names equal the official ``smpl.*`` state_dict entries, so tensors
    stored in an official checkpoint can override them by name.
    """

    def __init__(self, smpl: dict[str, np.ndarray], regressors: dict[str, np.ndarray]) -> None:
        # smplx prints a warning about the 10 shape components on every construction.
        with contextlib.redirect_stdout(io.StringIO()):
            super().__init__(
                "",
                data_struct=Struct(**smpl),
                create_betas=False,
                create_global_orient=False,
                create_body_pose=False,
                create_transl=False,
            )
        for name, arr in regressors.items():
            self.register_buffer(name, torch.as_tensor(np.asarray(arr, dtype=np.float32)))
        self.refresh_joint_subset()

    @torch.no_grad()
    def refresh_joint_subset(self) -> None:
        """Precompute what :meth:`get_joints` needs: the vertices the WHAM and feet regressors read.

        Call again after changing any body-model buffer (checkpoint loading does).
        """
        support = torch.nonzero((self.J_regressor_wham != 0).any(0) | (self.J_regressor_feet != 0).any(0))[:, 0]
        V = self.num_vertices
        derived = {
            "_sub_index": support,
            "_sub_v_template": self.v_template[support],
            "_sub_shapedirs": self.shapedirs[support],
            "_sub_posedirs": self.posedirs.view(-1, V, 3)[:, support].reshape(self.posedirs.shape[0], -1),
            "_sub_weights": self.lbs_weights[support],
            "_sub_J_wham": self.J_regressor_wham[:, support],
            "_sub_J_feet": self.J_regressor_feet[:, support],
            "_J_template": self.J_regressor @ self.v_template,
            "_J_shapedirs": torch.einsum("jv,vcb->jcb", self.J_regressor, self.shapedirs),
        }
        for name, value in derived.items():
            self.register_buffer(name, value.contiguous(), persistent=False)
        self._skinned_regressors: dict[str, torch.Tensor] | None = None

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    def get_output(self, global_orient: torch.Tensor, body_pose: torch.Tensor, betas: torch.Tensor) -> BodyOutput:
        """Pose the body from rotation matrices and centre it on the hip midpoint.

        global_orient (N, 1, 3, 3), body_pose (N, 23, 3, 3), betas (N, 10).
        """
        full_pose = torch.cat((global_orient, body_pose), dim=1)
        verts, _ = lbs(betas, full_pose, self.v_template, self.shapedirs, self.posedirs,
                       self.J_regressor, self.parents, self.lbs_weights, pose2rot=False)
        joints = torch.einsum("jv,nvc->njc", self.J_regressor_wham, verts)
        feet = torch.einsum("jv,nvc->njc", self.J_regressor_feet, verts)
        offset = joints[:, list(HIP_JOINTS)].mean(dim=1, keepdim=True)
        return BodyOutput(verts - offset, joints - offset, feet - offset, offset[:, 0])

    def get_joints(self, global_orient: torch.Tensor, body_pose: torch.Tensor, betas: torch.Tensor) -> BodyOutput:
        """:meth:`get_output` without the mesh (``vertices`` is None), skinning only the regressed vertices.

        Same values as :meth:`get_output` up to float rounding; several times cheaper
        per body because the pose blend shapes of the whole mesh are skipped.
        """
        N = betas.shape[0]
        rot = torch.cat((global_orient, body_pose), dim=1)
        v_shaped = self._sub_v_template + blend_shapes(betas, self._sub_shapedirs)
        J = self._J_template + blend_shapes(betas, self._J_shapedirs)
        eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
        pose_feature = (rot[:, 1:] - eye).reshape(N, -1)
        v_posed = v_shaped + (pose_feature @ self._sub_posedirs).view(N, -1, 3)
        _, A = batch_rigid_transform(rot, J, self.parents)
        T = (self._sub_weights @ A.view(N, NUM_SMPL_JOINTS, 16)).view(N, -1, 4, 4)
        verts = (T[..., :3, :3] @ v_posed.unsqueeze(-1)).squeeze(-1) + T[..., :3, 3]
        joints = torch.einsum("jv,nvc->njc", self._sub_J_wham, verts)
        feet = torch.einsum("jv,nvc->njc", self._sub_J_feet, verts)
        offset = joints[:, list(HIP_JOINTS)].mean(dim=1, keepdim=True)
        return BodyOutput(None, joints - offset, feet - offset, offset[:, 0])

    @torch.no_grad()
    def _skinned(self) -> dict[str, torch.Tensor] | None:
        """The regressors pushed through the skinning weights (computed on first use, in float64), or None
        for a model with pose blend shapes.

        Without them, point k = sum_v R_kv v_v of the posed mesh is, for joint transforms A_j,
        sum_j A_j[:3, :3] M_kj + A_j[:3, 3] Q_kj with Q_kj = sum_v R_kv W_vj and
        M_kj = sum_v R_kv W_vj (t_v + S_v beta). With them M_kj gains a 207-wide pose term per
        point and joint, dearer than skinning a sparse regressor's vertices (SMPL's), so those
        models keep :meth:`get_joints`.
        """
        cached = self._skinned_regressors
        if cached is None or (cached and cached["Q"].device != self.v_template.device):
            if bool(self._sub_posedirs.any()):
                self._skinned_regressors = {}
            else:
                R = torch.cat((self._sub_J_wham, self._sub_J_feet)).double()
                RW = R[:, :, None] * self._sub_weights.double()[None]                   # (K, S, 24)
                dt = self.v_template.dtype
                self._skinned_regressors = {
                    "Q": RW.sum(1).to(dt),
                    "template": torch.einsum("ksj,sc->kjc", RW, self._sub_v_template.double()).to(dt),
                    "shape": torch.einsum("ksj,scb->kjcb", RW, self._sub_shapedirs.double()).to(dt),
                }
        return self._skinned_regressors or None

    def regressed_points(self, global_orient: torch.Tensor, body_pose: torch.Tensor, betas: torch.Tensor
                         ) -> BodyOutput:
        """:meth:`get_joints` for training's batches of thousands of bodies, in closed form when the model has
        no pose blend shapes (the free body): regressor rows are fixed linear maps of the skinned mesh, so
        they are pushed through the skinning once (:meth:`_skinned`) and the cost per body no longer grows
        with the regressors' vertices. Same values up to float rounding; differentiable.
        global_orient (N, 1, 3, 3), body_pose (N, 23, 3, 3), betas (N, 10).
        """
        reg = self._skinned()
        if reg is None:
            return self.get_joints(global_orient, body_pose, betas)
        rot = torch.cat((global_orient, body_pose), dim=1)
        J = self._J_template + blend_shapes(betas, self._J_shapedirs)
        _, A = batch_rigid_transform(rot, J, self.parents)
        M = reg["template"] + torch.einsum("kjcb,nb->nkjc", reg["shape"], betas)
        points = torch.einsum("njab,nkjb->nka", A[:, :, :3, :3], M) + torch.einsum("nja,kj->nka", A[:, :, :3, 3],
                                                                                      reg["Q"])
        n_wham = self._sub_J_wham.shape[0]
        joints, feet = points[:, :n_wham], points[:, n_wham:]
        offset = joints[:, list(HIP_JOINTS)].mean(dim=1, keepdim=True)
        return BodyOutput(None, joints - offset, feet - offset, offset[:, 0])


def _load_regressor(path: str, rows: int, num_vertices: int) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise BodyModelError(f"cannot read regressor {path}: {exc}") from exc
    if hasattr(arr, "toarray"):
        arr = arr.toarray()
    return _expect(os.path.basename(path), arr, (rows, num_vertices), path).astype(np.float32)


def resolve_body_model_dir(path: str) -> str:
    """``path`` when given (the user's SMPL files take precedence); else the free body folder."""
    if path:
        return path
    folder = default_dir()
    if not os.path.isfile(os.path.join(folder, "smpl", "SMPL_NEUTRAL.pkl")):
        raise BodyModelError(f"no body model folder given and the free body model is not built at {folder}: "
                             f"run ./install.sh or tools/build_body_model.py {folder}, or set {ENV_VAR}")
    return folder


def load_body_model(path: str) -> BodyModel:
    """Load SMPL neutral and the WHAM regressors from a ``body_models`` folder.

    ``path`` is the folder holding ``smpl/`` and the ``.npy`` regressors; empty
    means the free body model (:func:`resolve_body_model_dir`). Raises
    :class:`BodyModelError` naming the file and array for anything missing,
    corrupt or of the wrong shape.
    """
    path = resolve_body_model_dir(path)
    if not os.path.isdir(path):
        raise BodyModelError(f"body model folder {path!r} does not exist")
    pkl = os.path.join(path, "smpl", "SMPL_NEUTRAL.pkl")
    if not os.path.isfile(pkl):
        raise BodyModelError(f"{pkl} not found: put the SMPL neutral model there (SMPL_NEUTRAL.pkl)")
    smpl = validate_smpl_dict(read_smpl_pickle(pkl), pkl)
    V = smpl["v_template"].shape[0]
    regressors = {}
    for name, (fname, rows) in REGRESSOR_FILES.items():
        fpath = os.path.join(path, fname)
        if not os.path.isfile(fpath):
            raise BodyModelError(f"{fpath} not found (WHAM's {name}, shape ({rows}, {V}))")
        regressors[name] = _load_regressor(fpath, rows, V)
    return BodyModel(smpl, regressors)
