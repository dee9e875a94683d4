"""Motion clips for training: what the sample builder reads, from a mocap corpus or AMASS files.

A clip is a 30 fps SMPL motion in WHAM's gravity-aligned training world (y down): per-frame
axis-angle pose (SMPL joint order, joint 0 = global orientation), SMPL ``transl`` and one shape.
Clips are split by *subject*, so held-out people are never seen in training.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np

from wham_ros.errors import MocapError
from wham_ros.mocap.corpus import file_digest, load_corpus


@dataclass(frozen=True)
class MotionClip:
    """pose (T, 24, 3) axis-angle; trans (T, 3) SMPL ``transl`` (world = un-centred body + trans), metres;
    betas (10,); ``treadmill`` clips get no contact labels (their feet move while planted)."""

    id: str
    subject: str
    pose: np.ndarray
    trans: np.ndarray
    betas: np.ndarray
    treadmill: bool = False

    @property
    def frames(self) -> int:
        return int(self.pose.shape[0])


def default_corpus_dir() -> str:
    """Where ``wham-ros build-corpus`` writes by default."""
    return os.path.join(sys.prefix, "share", "wham_ros", "mocap_corpus")


def load_corpus_clips(folder: str, body_model_dir: str) -> list[MotionClip]:
    """Every clip of a corpus folder; refuses a corpus built on another body model than ``body_model_dir``.

    The corpus's ``trans`` and ``betas`` only mean something on the body they were retargeted to.
    """
    corpus = load_corpus(folder)
    pkl = os.path.join(body_model_dir, "smpl", "SMPL_NEUTRAL.pkl")
    digest, built_on = file_digest(pkl), corpus.index["body_model"]["sha256_16"]
    if digest != built_on:
        raise MocapError(f"{folder} was built on the body model {built_on}, not on {body_model_dir} ({digest}): "
                         f"rebuild it (wham-ros build-corpus ... --body-model {body_model_dir}) or set data.body_model")
    clips = []
    for entry in corpus.clips:
        arrays = corpus.load(entry["id"])
        clips.append(MotionClip(entry["id"], entry["subject"], arrays["pose"].astype(np.float32),
                                arrays["trans"].astype(np.float32), arrays["betas"][:10].astype(np.float32),
                                "tread" in entry["id"].lower()))
    return clips


def split_by_subject(clips: list[MotionClip], holdout: list[str]) -> tuple[list[MotionClip], list[MotionClip]]:
    """(training clips, held-out clips); every held-out subject must exist."""
    subjects = {c.subject for c in clips}
    missing = sorted(set(holdout) - subjects)
    if missing:
        raise MocapError(f"held-out subjects {missing} are not in the data (subjects: {sorted(subjects)})")
    keep = set(holdout)
    return [c for c in clips if c.subject not in keep], [c for c in clips if c.subject in keep]
