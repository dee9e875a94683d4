"""AMASS-format motions (SMPL-H ``.npz``) as training clips, preprocessed as official WHAM does (facts 2.1).

Each file holds ``poses`` (T, 156) SMPL-H axis-angle, ``trans`` (T, 3), ``betas`` (16 or 10) and
``mocap_framerate`` (``mocap_frame_rate`` in some releases), z up. Preprocessing:

- every k-th frame with k = int(fps / 30 + 0.5) (only multiples of 30 give exactly 30 fps, as in the
  official code); clips with fewer than 25 kept frames are dropped;
- SMPL's 24 joints = SMPL-H joints 0-22 and SMPL-H joint 37 (the first right-hand joint) in slot 23;
- the file's first 10 betas (fitted to the gendered model; training uses them on the neutral body, like
  the official code);
- z up -> WHAM's y-down world with M = [[1,0,0],[0,0,-1],[0,1,0]], left-multiplying the root orientation
  and applied to ``trans``.

Files named ``*shape.npz`` / ``*stagei.npz`` (shape-only) are skipped. A clip's id is its path below the
folder with ``_`` for ``/`` (official ``vid``: subset_subject_file), its subject the first two folders
(``CMU/01/...`` -> ``CMU_01``), so ``data.holdout_subjects`` names AMASS subjects that way.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from wham_ros.errors import MocapError
from wham_ros.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from wham_ros.train.clips import MotionClip

#: z-up -> y-down (training facts 2.1)
Z_UP_TO_Y_DOWN = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
MIN_FRAMES = 25
TARGET_FPS = 30.0


def amass_files(folder: str) -> list[str]:
    """Every motion ``.npz`` below ``folder``, sorted (shape-only files excluded)."""
    out = []
    for root, _, files in os.walk(folder):
        out += [os.path.join(root, f) for f in files
                if f.endswith(".npz") and not f.endswith(("shape.npz", "stagei.npz"))]
    return sorted(out)


def amass_to_smpl(poses: np.ndarray, trans: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """SMPL-H poses (T, 156) and trans (T, 3) at ``fps`` -> (pose (T', 24, 3), trans (T', 3)) at ~30 fps, y down."""
    step = max(1, int(fps / TARGET_FPS + 0.5))
    poses, trans = poses[::step], trans[::step]
    pose = np.concatenate((poses[:, :69], poses[:, 111:114]), axis=1).reshape(-1, 24, 3)
    M = torch.as_tensor(Z_UP_TO_Y_DOWN)
    root = M @ axis_angle_to_matrix(torch.as_tensor(pose[:, 0], dtype=torch.float64))
    pose = pose.copy()
    pose[:, 0] = matrix_to_axis_angle(root).numpy()
    return pose, trans @ Z_UP_TO_Y_DOWN.T


def load_amass_file(path: str, folder: str) -> MotionClip | None:
    """One AMASS file as a clip (None when shorter than 25 frames after subsampling)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            fields = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise MocapError(f"{path}: unreadable AMASS file: {exc}") from exc
    fps_key = next((k for k in ("mocap_framerate", "mocap_frame_rate") if k in fields), None)
    missing = [k for k in ("poses", "trans", "betas") if k not in fields] + ([] if fps_key else ["mocap_framerate"])
    if missing:
        raise MocapError(f"{path}: not an AMASS motion file, missing {missing} (has {sorted(fields)})")
    poses, trans, betas = (np.asarray(fields[k], dtype=np.float64) for k in ("poses", "trans", "betas"))
    fps = float(fields[fps_key])
    if poses.ndim != 2 or poses.shape[1] < 114 or trans.shape != (poses.shape[0], 3) or betas.size < 10:
        raise MocapError(f"{path}: poses {poses.shape}, trans {trans.shape}, betas {betas.shape}: expected "
                         f"(T, 156), (T, 3) and at least 10 betas")
    if not (np.isfinite(poses).all() and np.isfinite(trans).all() and np.isfinite(betas).all()) or fps <= 0:
        raise MocapError(f"{path}: NaN/inf values or a frame rate <= 0 ({fps})")
    pose, trans = amass_to_smpl(poses, trans, fps)
    if pose.shape[0] < MIN_FRAMES:
        return None
    rel = os.path.splitext(os.path.relpath(path, folder))[0].split(os.sep)
    subject = "_".join(rel[:2]) if len(rel) > 2 else rel[0]
    clip_id = "_".join(rel)
    return MotionClip(clip_id, subject, pose.astype(np.float32), trans.astype(np.float32),
                      betas.reshape(-1)[:10].astype(np.float32), "tread" in clip_id.lower())


def load_amass(folder: str) -> list[MotionClip]:
    """Every usable AMASS clip below ``folder``."""
    files = amass_files(folder)
    if not files:
        raise MocapError(f"{folder}: no AMASS .npz files")
    clips = [load_amass_file(f, folder) for f in files]
    return [c for c in clips if c is not None]
