"""Online multi-person tracking: stable ids, because every id owns recurrent WHAM state.

Each frame: predict every track's box and keypoints with a constant-velocity model,
score detection/track pairs by IoU and object keypoint similarity (OKS), match
greedily from the best pair down, and update. A track is born *tentative*, becomes
*tracked* after ``birth_frames`` consecutive matches, is *lost* while unmatched,
and dies after ``max_missed`` unmatched frames. Ids are never reused.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from wham_ros.perception.base import Detection

#: COCO per-keypoint OKS constants (sigmas)
COCO_SIGMAS = np.array([0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87,
                        0.87, 0.89, 0.89]) / 10.0


class TrackState(IntEnum):
    TENTATIVE = 0
    TRACKED = 1
    LOST = 2


@dataclass
class Track:
    id: int
    state: TrackState
    detection: Detection          # the last matched detection
    hits: int = 1                 # consecutive matched frames
    missed: int = 0               # consecutive unmatched frames
    age: int = 1                  # frames since birth
    last_seen: float = 0.0        # stamp of the last match
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))   # box centre, px per frame

    @property
    def matched_now(self) -> bool:
        return self.missed == 0

    def predicted(self, steps: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(box, keypoints) moved by the centre velocity over ``steps`` frames."""
        shift = self.velocity * steps
        box = self.detection.bbox + np.concatenate((shift, shift))
        kp = self.detection.keypoints.copy()
        kp[:, :2] += shift
        return box, kp


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def oks(kp_a: np.ndarray, kp_b: np.ndarray, box: np.ndarray, threshold: float = 0.3) -> float:
    """Object keypoint similarity over keypoints confident in both, scale = box area."""
    both = (kp_a[:, 2] > threshold) & (kp_b[:, 2] > threshold)
    if not both.any():
        return 0.0
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1.0)
    d2 = ((kp_a[both, :2] - kp_b[both, :2]) ** 2).sum(1)
    return float(np.exp(-d2 / (2 * area * (2 * COCO_SIGMAS[both]) ** 2)).mean())


class Tracker:
    """Greedy IoU + OKS tracker with births, occlusion survival and explicit deaths."""

    def __init__(self, min_similarity: float = 0.2, oks_weight: float = 0.5, birth_frames: int = 3,
                 max_missed: int = 15, max_tracks: int = 16, velocity_gain: float = 0.5) -> None:
        self.min_similarity, self.oks_weight = min_similarity, oks_weight
        self.birth_frames, self.max_missed, self.max_tracks = birth_frames, max_missed, max_tracks
        self.velocity_gain = velocity_gain
        self.tracks: list[Track] = []
        self._next_id = 1
        self.dead: list[int] = []

    def reset(self) -> None:
        """Drop every track; ids keep increasing so none is reused."""
        self.dead.extend(t.id for t in self.tracks)
        self.tracks = []

    def similarity(self, track: Track, det: Detection) -> float:
        box, kp = track.predicted(track.missed + 1)
        return (1 - self.oks_weight) * iou(box, det.bbox) + self.oks_weight * oks(kp, det.keypoints, box)

    def update(self, detections: list[Detection], stamp: float) -> list[Track]:
        """Associate this frame's detections; returns every live track (matched ones first)."""
        pairs = sorted(((self.similarity(t, d), ti, di) for ti, t in enumerate(self.tracks)
                        for di, d in enumerate(detections)), reverse=True)
        used_t, used_d = set(), set()
        for sim, ti, di in pairs:
            if sim < self.min_similarity or ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            self._match(self.tracks[ti], detections[di], stamp)
        self.dead = []
        survivors = []
        for ti, track in enumerate(self.tracks):
            if ti not in used_t:
                track.missed += 1
                track.hits = 0
                track.age += 1
                if track.state == TrackState.TENTATIVE or track.missed > self.max_missed:
                    self.dead.append(track.id)
                    continue
                track.state = TrackState.LOST
            survivors.append(track)
        self.tracks = survivors
        for di, det in enumerate(detections):
            if di not in used_d and len(self.tracks) < self.max_tracks:
                state = TrackState.TRACKED if self.birth_frames <= 1 else TrackState.TENTATIVE
                self.tracks.append(Track(self._next_id, state, det, last_seen=stamp))
                self._next_id += 1
        return sorted(self.tracks, key=lambda t: (not t.matched_now, t.id))

    def _match(self, track: Track, det: Detection, stamp: float) -> None:
        old = (track.detection.bbox[:2] + track.detection.bbox[2:]) / 2
        new = (det.bbox[:2] + det.bbox[2:]) / 2
        step = (new - old) / (track.missed + 1)
        track.velocity = (1 - self.velocity_gain) * track.velocity + self.velocity_gain * step
        track.detection = det
        track.hits += 1
        track.missed = 0
        track.age += 1
        track.last_seen = stamp
        if track.state == TrackState.TENTATIVE and track.hits >= self.birth_frames:
            track.state = TrackState.TRACKED
        elif track.state == TrackState.LOST:
            track.state = TrackState.TRACKED
