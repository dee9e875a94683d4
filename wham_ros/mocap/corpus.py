"""The mocap corpus: built from a folder of BVH and ASF/AMC files, read by the trainer.

Layout of a corpus folder::

    index.json          format, conventions, body model, licences, one entry per clip
    clips/<id>.npz      the clip's arrays (float32)

Arrays per clip (T frames at 30 fps, WHAM's gravity-aligned world: y down, floor y = 0,
heading as captured; training draws its own yaw):

    pose (T, 24, 3)      SMPL joint rotations as axis-angle (radians), SMPL/AMASS order:
                         joint 0 = global orientation in the world, 1..23 relative to the parent
    trans (T, 3)         SMPL ``transl`` in metres: world = body model (un-centred) + trans
    betas (B,)           shape fitted to the source's bone lengths (one per subject)
    contact (T, 4)       soft foot contact labels (left toe, left heel, right toe, right heel)
    joints (T, 24, 3)    the body's SMPL joints in the world
    feet (T, 4, 3)       the body's J_regressor_feet points in the world
    rest_joints (24, 3)  the body's rest joints for ``betas``
    source_points (T, P, 3)  the source's matching joints, scaled into the world
    source_point_names (P,)  their SMPL names

The index entry holds id, file, source file, dataset, subject, rig, licence, attribution,
frames, source fps, leg-length scale, ground offset and folded joint-frames.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from wham_ros.errors import MocapError
from wham_ros.geometry.rotations import matrix_to_axis_angle
from wham_ros.mocap.asf_amc import read_amc, read_asf
from wham_ros.mocap.body import num_betas, posed_feet, posed_joints, rest_joint_basis, rest_joints
from wham_ros.mocap.bvh import read_bvh
from wham_ros.mocap.contact import contact_labels, ground_offset
from wham_ros.mocap.resample import resample
from wham_ros.mocap.retarget import retarget, source_positions
from wham_ros.mocap.rigs import RIGS, Rig, rig_for
from wham_ros.mocap.shape_fit import fit_betas, segment_lengths
from wham_ros.mocap.skeleton import Motion
from wham_ros.model.body_model import BodyModel, load_body_model

FORMAT = "wham_ros mocap corpus"
VERSION = 1
FPS = 30.0
CONVENTIONS = {
    "fps": FPS,
    "pose": "axis-angle radians (T, 24, 3), SMPL joint order; joint 0 = global orientation in the world",
    "trans": "SMPL transl (T, 3) metres: world = un-centred body model output + trans",
    "world": "WHAM's gravity-aligned training world: y down (up = -y), floor at y = 0",
    "contact": "WHAM's soft labels 1/(1+exp(500(v-0.01))), v in m/frame at 30 fps, "
               "feet order left toe, left heel, right toe, right heel",
}


def find_asf(amc: str) -> str:
    """The skeleton of an AMC file: the one .asf beside it, or the .asf whose name starts the AMC's."""
    folder = os.path.dirname(amc) or "."
    candidates = sorted(f for f in os.listdir(folder) if f.lower().endswith(".asf"))
    stem = os.path.basename(amc)
    matching = [f for f in candidates if stem.startswith(os.path.splitext(f)[0] + "_")]
    if len(matching) == 1 or len(candidates) == 1:
        return os.path.join(folder, (matching or candidates)[0])
    raise MocapError(f"{amc}: no unique ASF skeleton beside it (found {candidates})")


def read_motion(path: str) -> tuple[Motion, Rig]:
    """Read a BVH or AMC file and pick its rig; BVH units and AMC frame rates come from the rig.

    The motion keeps only the joints the rig uses and their ancestors.
    """
    if path.lower().endswith(".bvh"):
        motion = read_bvh(path)
        rig = rig_for(motion.skeleton.names, path)
        if rig.metres is None:
            raise MocapError(f"{path}: rig {rig.name} has no BVH unit length")
        motion = replace(motion, metres=rig.metres)
    elif path.lower().endswith(".amc"):
        asf = read_asf(find_asf(path))
        rig = rig_for(asf.skeleton.names, path)
        motion = read_amc(path, asf, rig.fps or 120.0)
    else:
        raise MocapError(f"{path}: not a .bvh or .amc file")
    return motion.restricted(rig.source_joints()), rig


def motion_files(folder: str) -> list[str]:
    """Every .bvh and .amc file under ``folder``, sorted."""
    out = []
    for root, _, files in os.walk(folder):
        out += [os.path.join(root, f) for f in files if f.lower().endswith((".bvh", ".amc"))]
    return sorted(out)


def clip_id(relative: str) -> str:
    return os.path.splitext(relative)[0].replace(os.sep, "_").replace("/", "_")


def file_digest(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()[:16]


@dataclass
class ClipResult:
    """One retargeted clip: the arrays of the module docstring plus its index entry."""

    arrays: dict[str, np.ndarray]
    entry: dict


def retarget_clip(motion: Motion, rig: Rig, body_model: BodyModel, betas: np.ndarray) -> ClipResult:
    """Resampled ``motion`` (30 fps) on the body of shape ``betas``, with contact labels (not ground-aligned)."""
    rest = rest_joints(body_model, betas)
    result = retarget(motion, rig, rest)
    joints = posed_joints(body_model, result.rotations, betas) + result.trans[:, None]
    feet = posed_feet(body_model, result.rotations, betas) + result.trans[:, None]
    pose = matrix_to_axis_angle(torch.as_tensor(result.rotations)).numpy()
    arrays = {
        "pose": pose, "trans": result.trans, "betas": np.asarray(betas), "contact": contact_labels(feet),
        "joints": joints, "feet": feet, "rest_joints": rest,
        "source_points": result.source_points, "source_point_names": np.array(result.point_names),
    }
    entry = {"frames": int(pose.shape[0]), "scale": round(result.scale, 5), "folded": result.folded}
    return ClipResult(arrays, entry)


def lift_to_floor(results: list[ClipResult]) -> float:
    """Rest one subject's soles on the floor: the body's feet need not sit where the source's joints
    imply. The lift (m) is :func:`~wham_ros.mocap.contact.ground_offset` over all the subject's
    frames, so clips spent on a climbing frame do not set the floor; applied in place, returned."""
    feet = np.concatenate([r.arrays["feet"] for r in results])
    contact = np.concatenate([r.arrays["contact"] for r in results])
    offset = ground_offset(feet, contact)
    for r in results:
        for key in ("trans", "joints", "feet"):
            r.arrays[key][..., 1] += offset
        r.entry["ground_offset"] = round(offset, 5)
    return offset


def build_corpus(source: str, out: str, body_dir: str, log: Callable[[str], None] = print) -> dict:
    """Retarget every clip under ``source`` onto the body in ``body_dir``; write the corpus to ``out``.

    Shapes are fitted per subject, to the median segment lengths over the subject's clips;
    each subject's soles are rested on the floor (:func:`lift_to_floor`). Returns the index.
    """
    files = motion_files(source)
    if not files:
        raise MocapError(f"{source}: no .bvh or .amc files")
    body_model = load_body_model(body_dir)
    template, dirs = rest_joint_basis(body_model)
    started = time.perf_counter()
    lengths: dict[tuple[str, str], list[dict]] = defaultdict(list)
    by_subject: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in files:
        motion, rig = read_motion(path)
        key = (rig.name, rig.subject(path))
        lengths[key].append(segment_lengths(source_positions(resample(motion, FPS), rig)))
        by_subject[key].append(path)
    betas = {}
    for key, per_clip in lengths.items():
        pooled = {seg: float(np.median([c[seg] for c in per_clip])) for seg in per_clip[0]}
        betas[key] = fit_betas(template, dirs, pooled)
    os.makedirs(os.path.join(out, "clips"), exist_ok=True)
    clips, done = [], 0
    for key, paths in by_subject.items():
        results = []
        for path in paths:
            motion, rig = read_motion(path)
            result = retarget_clip(resample(motion, FPS), rig, body_model, betas[key])
            relative = os.path.relpath(path, source)
            result.entry = {"id": clip_id(relative), "file": f"clips/{clip_id(relative)}.npz",
                            "source_file": relative, "dataset": rig.dataset, "subject": key[1], "rig": rig.name,
                            "licence": rig.licence, "attribution": rig.attribution, "fps": FPS,
                            "source_fps": round(motion.fps, 4), **result.entry}
            results.append(result)
        lift_to_floor(results)
        for result in results:
            arrays = {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in result.arrays.items()}
            np.savez_compressed(os.path.join(out, result.entry["file"]), **arrays)
            clips.append(result.entry)
        done += len(paths)
        log(f"  {done}/{len(files)} clips ({time.perf_counter() - started:.0f} s)")
    clips.sort(key=lambda e: e["source_file"])
    pkl = os.path.join(body_dir, "smpl", "SMPL_NEUTRAL.pkl")
    index = {
        "format": FORMAT, "version": VERSION, "conventions": CONVENTIONS,
        "body_model": {"folder": os.path.abspath(body_dir), "sha256_16": file_digest(pkl),
                       "betas": num_betas(body_model), "vertices": body_model.num_vertices},
        "licences": {rig.dataset: {"licence": rig.licence, "attribution": rig.attribution} for rig in RIGS},
        "clips": clips,
    }
    with open(os.path.join(out, "index.json"), "w") as fh:
        json.dump(index, fh, indent=1, ensure_ascii=False)
    return index


@dataclass(frozen=True)
class Corpus:
    """A corpus folder: ``index`` as written by :func:`build_corpus`."""

    folder: str
    index: dict

    @property
    def clips(self) -> list[dict]:
        return self.index["clips"]

    def entry(self, clip: str) -> dict:
        for e in self.clips:
            if e["id"] == clip:
                return e
        raise MocapError(f"{self.folder}: no clip {clip!r} (ids look like {self.clips[0]['id']!r})")

    def load(self, clip: str) -> dict[str, np.ndarray]:
        """The arrays of one clip (module docstring)."""
        path = os.path.join(self.folder, self.entry(clip)["file"])
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise MocapError(f"{path}: unreadable corpus clip: {exc}") from exc


def load_corpus(folder: str) -> Corpus:
    """Open a corpus folder (reads index.json only)."""
    path = os.path.join(folder, "index.json")
    try:
        with open(path) as fh:
            index = json.load(fh)
    except (OSError, ValueError) as exc:
        raise MocapError(f"{path}: not a readable corpus index: {exc}") from exc
    if index.get("format") != FORMAT or index.get("version") != VERSION:
        raise MocapError(f"{path}: not a {FORMAT} version {VERSION}")
    return Corpus(folder, index)
