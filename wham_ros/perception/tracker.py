"""Online multi-person tracking: stable ids, because every id owns recurrent WHAM state.

Each frame:

1. duplicate detections of one person (pose models sometimes return two) are suppressed;
2. every track's box and keypoints are predicted with a constant-velocity model;
3. detection/track pairs are scored by IoU and object keypoint similarity (OKS) and matched
   greedily from the best pair down, *confirmed tracks first*, so a tentative track born on a
   stray detection can never take a person away from its established track;
4. detections still unmatched are compared by colour appearance with tracks lost for under
   ``reid_max_gap``, within a reach that grows with the time lost: this re-identifies a person
   after a fast move the motion model could not follow (a flip, a jump), so the person keeps its
   id and its recurrent state. The detection must look clearly more like that track than like any
   other lost one, in reach or not, so a person who jumped out of reach of its own track does
   not take the id of someone else lost nearby;
5. a track is born *tentative*, becomes *tracked* after ``birth_frames`` consecutive matches,
   is *lost* while unmatched, and dies after ``max_missed`` unmatched frames or ``max_lost_time``
   seconds unseen, whichever comes first (a slow pipeline processes few frames: counted in frames
   alone, a lost track would live long enough to be matched to someone else). A track gets its id
   when it is confirmed (tentative tracks carry ``UNCONFIRMED``), so stray detections that never
   become a person use up no ids; ids are never reused.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from wham_ros.perception.appearance import appearance, similarity
from wham_ros.perception.base import Detection
from wham_ros.stream.inputs import KEYPOINT_THRESHOLD

#: COCO per-keypoint OKS constants (sigmas)
COCO_SIGMAS = np.array([0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87,
                        0.87, 0.89, 0.89]) / 10.0
#: id of a tentative track: ids go to confirmed tracks only
UNCONFIRMED = 0
#: weight of a new appearance observation in a track's running signature
APPEARANCE_RATE = 0.1
#: how much better than any alternative a re-identification's colour similarity must be
REID_MARGIN = 0.05


class TrackState(IntEnum):
    TENTATIVE = 0
    TRACKED = 1
    LOST = 2


@dataclass
class Track:
    id: int                       # UNCONFIRMED until the track is confirmed
    state: TrackState
    detection: Detection          # the last matched detection
    hits: int = 1                 # consecutive matched frames
    missed: int = 0               # consecutive unmatched frames
    age: int = 1                  # frames since birth
    last_seen: float = 0.0        # stamp of the last match
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))   # box centre, px per frame
    appearance: np.ndarray | None = None   # running colour signature (see perception.appearance)
    key: int = 0                  # the tracker's own handle, unique from birth (tentative tracks share the id 0)

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


def oks(kp_a: np.ndarray, kp_b: np.ndarray, box: np.ndarray, threshold: float = KEYPOINT_THRESHOLD) -> float:
    """Object keypoint similarity over keypoints confident in both, scale = box area."""
    both = (kp_a[:, 2] > threshold) & (kp_b[:, 2] > threshold)
    if not both.any():
        return 0.0
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1.0)
    d2 = ((kp_a[both, :2] - kp_b[both, :2]) ** 2).sum(1)
    return float(np.exp(-d2 / (2 * area * (2 * COCO_SIGMAS[both]) ** 2)).mean())


def overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller box's area (1 when one box lies inside the other)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(ix * iy / smaller) if smaller > 0 else 0.0


def is_duplicate(a: Detection, b: Detection, overlap: float = 0.5) -> bool:
    """Two detections of one person: IoU or OKS above ``overlap``, or one box mostly inside the other."""
    return (iou(a.bbox, b.bbox) > overlap or oks(a.keypoints, b.keypoints, a.bbox) > overlap
            or overlap_of_smaller(a.bbox, b.bbox) > (1 + overlap) / 2)


def suppress_duplicates(detections: list[Detection], overlap: float = 0.5) -> list[Detection]:
    """The detections without the lower-scored copies of a person, best first."""
    kept: list[Detection] = []
    for det in sorted(detections, key=lambda d: -d.score):
        if not any(is_duplicate(det, k, overlap) for k in kept):
            kept.append(det)
    return kept


class Tracker:
    """Greedy IoU + OKS tracker with confirmed-first matching, appearance re-identification,
    births, occlusion survival and explicit deaths.

    min_similarity: least (1 - oks_weight) * IoU + oks_weight * OKS for a motion match.
    duplicate_overlap: two detections whose IoU or OKS exceeds it, or whose smaller box lies
    inside the other by more than (1 + it) / 2, are one person; the lower-scored one is dropped.
    reid_similarity: least colour similarity (Bhattacharyya coefficient) to re-identify a lost
    track; reid_reach: how far (in box heights per missed frame, plus one box height) it may have moved;
    reid_max_gap: longest time (s) a track may have been lost to be re-identified.
    max_lost_time: longest time (s) a track may be unseen before it dies; None: only ``max_missed`` counts.
    """

    def __init__(self, min_similarity: float = 0.2, oks_weight: float = 0.5, birth_frames: int = 3,
                 max_missed: int = 30, max_tracks: int = 16, velocity_gain: float = 0.5,
                 duplicate_overlap: float = 0.5, reid_similarity: float = 0.6, reid_reach: float = 0.15,
                 reid_max_gap: float = 0.8, max_lost_time: float | None = None) -> None:
        self.min_similarity, self.oks_weight = min_similarity, oks_weight
        self.birth_frames, self.max_missed, self.max_tracks = birth_frames, max_missed, max_tracks
        self.velocity_gain, self.duplicate_overlap = velocity_gain, duplicate_overlap
        self.reid_similarity, self.reid_reach, self.reid_max_gap = reid_similarity, reid_reach, reid_max_gap
        self.max_lost_time = max_lost_time
        self.tracks: list[Track] = []
        self._next_id = 1
        self._next_key = 1
        self.dead: list[int] = []         # ids of the confirmed tracks that ended in the last update
        self.reidentified: list[int] = []

    def reset(self) -> None:
        """Drop every track; ids keep increasing so none is reused."""
        self.dead.extend(t.id for t in self.tracks if t.id != UNCONFIRMED)
        self.tracks = []

    def similarity(self, track: Track, det: Detection) -> float:
        box, kp = track.predicted(track.missed + 1)
        return (1 - self.oks_weight) * iou(box, det.bbox) + self.oks_weight * oks(kp, det.keypoints, box)

    def suppress_duplicates(self, detections: list[Detection]) -> list[Detection]:
        """The detections without the lower-scored copies of a person, best first."""
        return suppress_duplicates(detections, self.duplicate_overlap)

    def _motion_match(self, tracks: list[Track], detections: list[Detection], free: set[int]) -> dict[int, int]:
        pairs = sorted(((self.similarity(t, detections[di]), ti, di) for ti, t in enumerate(tracks) for di in free),
                       reverse=True)
        matched: dict[int, int] = {}
        for sim, ti, di in pairs:
            if sim >= self.min_similarity and ti not in matched and di in free:
                matched[ti] = di
                free.discard(di)
        return matched

    def _reach(self, track: Track, det: Detection) -> bool:
        height = max(track.detection.bbox[3] - track.detection.bbox[1], det.bbox[3] - det.bbox[1], 1.0)
        box, _ = track.predicted(0)
        gap = np.linalg.norm((box[:2] + box[2:]) / 2 - (det.bbox[:2] + det.bbox[2:]) / 2)
        return gap <= height * (1.0 + self.reid_reach * (track.missed + 1))

    def _reidentify(self, lost: list[Track], detections: list[Detection], signatures: list[np.ndarray | None],
                    free: set[int], stamp: float) -> dict[int, int]:
        """Lost track index -> free detection index, where the detection clearly looks most like that track.

        Clothes colours overlap between people (on sports2d the man and the woman are 0.69 alike in the
        median, each with itself 0.83), so the detection must look clearly less like every other lost
        track, within reach or not: a person who jumped out of reach of its own track (a discontinuity)
        must not take the id of someone else lost nearby. Tracks matched in this frame are no rivals: their
        person is elsewhere in the image. And only tracks lost for at most ``reid_max_gap``: a signature is
        trustworthy over a short gap (a flip, a jump: under a second), while over longer ones light and pose
        change it as much as another person would (sports2d played in a loop, every 1st to 6th frame
        processed: all 20 candidates of the wrong person had been lost for 1.0 s or more, at similarities up
        to 0.85; those of the right person mostly for under 0.6 s).
        """
        scores = np.array([[similarity(t.appearance, sig) if t.appearance is not None and sig is not None else -1.0
                            for sig in signatures] for t in lost]).reshape(len(lost), len(detections))
        pairs = sorted(((scores[ti, di], ti, di) for ti in range(len(lost)) for di in free), reverse=True)
        matched: dict[int, int] = {}
        for score, ti, di in pairs:
            if (score < self.reid_similarity or ti in matched or di not in free
                    or stamp - lost[ti].last_seen > self.reid_max_gap or not self._reach(lost[ti], detections[di])):
                continue
            if (np.delete(scores[:, di], ti) > score - REID_MARGIN).any():
                continue
            matched[ti] = di
            free.discard(di)
        return matched

    def update(self, detections: list[Detection], stamp: float, image: np.ndarray | None = None) -> list[Track]:
        """Associate this frame's detections; returns every live track (matched ones first).

        image (H, W, 3) RGB: the frame, for appearance re-identification (skipped without it).
        """
        detections = self.suppress_duplicates(detections)
        signatures = [appearance(image, d) if image is not None else None for d in detections]
        free = set(range(len(detections)))
        confirmed = [t for t in self.tracks if t.state != TrackState.TENTATIVE]
        tentative = [t for t in self.tracks if t.state == TrackState.TENTATIVE]
        matches: list[tuple[Track, int]] = []
        for group in (confirmed, tentative):
            matches += [(group[ti], di) for ti, di in self._motion_match(group, detections, free).items()]
        matched_keys = {t.key for t, _ in matches}
        lost = [t for t in confirmed if t.key not in matched_keys]
        reid = [(lost[ti], di) for ti, di in self._reidentify(lost, detections, signatures, free, stamp).items()]
        self.reidentified = [t.id for t, _ in reid]
        for track, di in sorted(matches, key=lambda m: m[0].key):     # tracks confirmed together: ids by age
            self._match(track, detections[di], signatures[di], stamp, jumped=False)
        for track, di in reid:
            self._match(track, detections[di], signatures[di], stamp, jumped=True)
        matched_keys |= {t.key for t, _ in reid}

        self.dead = []
        survivors = []
        for track in self.tracks:
            if track.key not in matched_keys:
                track.missed += 1
                track.hits = 0
                track.age += 1
                if track.state == TrackState.TENTATIVE:
                    continue
                if track.missed > self.max_missed or (self.max_lost_time is not None
                                                      and stamp - track.last_seen > self.max_lost_time):
                    self.dead.append(track.id)
                    continue
                track.state = TrackState.LOST
            survivors.append(track)
        self.tracks = survivors
        for di in sorted(free):
            if len(self.tracks) < self.max_tracks:
                confirmed_now = self.birth_frames <= 1
                self.tracks.append(Track(self._new_id() if confirmed_now else UNCONFIRMED,
                                         TrackState.TRACKED if confirmed_now else TrackState.TENTATIVE,
                                         detections[di], last_seen=stamp, appearance=signatures[di],
                                         key=self._next_key))
                self._next_key += 1
        return sorted(self.tracks, key=lambda t: (not t.matched_now, t.key))

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def _match(self, track: Track, det: Detection, signature: np.ndarray | None, stamp: float, *,
               jumped: bool) -> None:
        old = (track.detection.bbox[:2] + track.detection.bbox[2:]) / 2
        new = (det.bbox[:2] + det.bbox[2:]) / 2
        step = (new - old) / (track.missed + 1)
        # a re-identified track jumped: restart its motion model instead of learning the jump as velocity
        track.velocity = np.zeros(2) if jumped else (
            (1 - self.velocity_gain) * track.velocity + self.velocity_gain * step)
        if signature is not None:
            track.appearance = signature if track.appearance is None else (
                (1 - APPEARANCE_RATE) * track.appearance + APPEARANCE_RATE * signature)
        track.detection = det
        track.hits += 1
        track.missed = 0
        track.age += 1
        track.last_seen = stamp
        if track.state == TrackState.TENTATIVE and track.hits >= self.birth_frames:
            track.state = TrackState.TRACKED
            track.id = self._new_id()
        elif track.state == TrackState.LOST:
            track.state = TrackState.TRACKED
