"""One person seen by several overlapping windows of an image becomes one detection.

A window edge cuts a person taller (or wider) than the window. The window holding the head sees head to
knees and extrapolates the shins beyond its edge; the window holding the legs fits a whole skeleton onto
what it sees, often a small one with its "face" at the hips. Box IoU and keypoint similarity (OKS) link
neither. What such views share is the band where the two windows overlap and look at the same pixels:
there the limbs of one lie on the limbs of the other, whatever names the keypoints were given. Two views
whose limbs agree there are one person when, besides, one view's head lies on the other's torso (a
skeleton fitted onto someone's body), or one view is cut by its window and the other lies within the body
it predicts. Two people side by side keep their limbs apart, and each keeps its own head.

The view kept is the one that is not the fitted skeleton, or else the cut one that holds the other; the
other only fills in keypoints the kept one did not see, where it saw them close to where the kept one
predicted them.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from wham_ros.perception.base import Detection
from wham_ros.perception.tracker import COCO_SIGMAS, is_duplicate
from wham_ros.stream.inputs import KEYPOINT_THRESHOLD

Window = tuple[int, int, int, int]      # x0, y0, x1, y1 in image pixels, end exclusive

#: COCO-17 limbs (keypoint index pairs), the head as nose to each shoulder
LIMBS = np.array([(0, 5), (0, 6), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (5, 11), (6, 12), (11, 12), (11, 13),
                  (13, 15), (12, 14), (14, 16)])
#: limb samples per tolerance length (dense enough that a limb crossing the band is always sampled)
SAMPLES_PER_TOLERANCE = 2
#: COCO-17 nose, eyes, ears; and the torso as left shoulder, right shoulder, right hip, left hip
HEAD = [0, 1, 2, 3, 4]
TORSO = [5, 6, 12, 11]
EVERYWHERE: Window = (-(2 ** 31), -(2 ** 31), 2 ** 31, 2 ** 31)


def keypoint_box(keypoints: np.ndarray, width: int, height: int, pad: float = 0.1) -> np.ndarray:
    """xyxy box around the confident keypoints (all of them if fewer than two are), padded by ``pad`` of its
    size and clipped to the image."""
    confident = keypoints[:, 2] > KEYPOINT_THRESHOLD
    seen = keypoints[confident] if confident.sum() >= 2 else keypoints
    lo, hi = seen[:, :2].min(0), seen[:, :2].max(0)
    margin = pad * (hi - lo)
    return np.concatenate((np.maximum(lo - margin, 0), np.minimum(hi + margin, (width - 1, height - 1))))


def body_size(det: Detection) -> float:
    """Diagonal of the box of all 17 predicted keypoints, extrapolated ones included: the body the view
    believes in, which for a view cut by its window reaches beyond what it saw."""
    xy = det.keypoints[:, :2]
    return float(np.linalg.norm(xy.max(0) - xy.min(0)))


def _inside(points: np.ndarray, window: Window) -> np.ndarray:
    return ((points[:, 0] >= window[0]) & (points[:, 0] < window[2]) & (points[:, 1] >= window[1])
            & (points[:, 1] < window[3]))


def _band(a: Window, b: Window) -> Window | None:
    band = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    return band if band[0] < band[2] and band[1] < band[3] else None


def limb_samples(keypoints: np.ndarray, step: float, region: Window = EVERYWHERE) -> np.ndarray:
    """Points along every limb, spaced about ``step`` apart, that fall inside ``region``."""
    starts, ends = keypoints[LIMBS[:, 0], :2], keypoints[LIMBS[:, 1], :2]
    counts = np.maximum(np.ceil(np.linalg.norm(ends - starts, axis=1) / max(step, 1e-6)).astype(int), 1)
    points = np.concatenate([s + np.linspace(0.0, 1.0, n + 1)[:, None] * (e - s)
                             for s, e, n in zip(starts, ends, counts)])
    return points[_inside(points, region)]


def _distance_to_segments(points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Each point's distance to the nearest of the segments starts[k] -> ends[k]."""
    seg = ends - starts
    length2 = np.maximum((seg ** 2).sum(1), 1e-9)
    t = np.clip(((points[:, None, :] - starts[None]) * seg[None]).sum(2) / length2[None], 0.0, 1.0)
    nearest = starts[None] + t[..., None] * seg[None]
    return np.linalg.norm(points[:, None, :] - nearest, axis=2).min(1)


def distance_to_limbs(points: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """Each point's distance to the nearest limb segment of ``keypoints``."""
    return _distance_to_segments(points, keypoints[LIMBS[:, 0], :2], keypoints[LIMBS[:, 1], :2])


def limb_agreement(a: Detection, b: Detection, band: Window, tolerance: float) -> float:
    """The smaller of the two views' shares of limb samples inside ``band`` that pass within ``tolerance``
    of the other view's limbs; 0 when either view hardly reaches into the band."""
    step = tolerance / SAMPLES_PER_TOLERANCE
    shares = []
    for one, other in ((a, b), (b, a)):
        points = limb_samples(one.keypoints, step, band)
        if len(points) < 2 * SAMPLES_PER_TOLERANCE:
            return 0.0
        shares.append(float((distance_to_limbs(points, other.keypoints) <= tolerance).mean()))
    return min(shares)


def cut_into(det: Detection, window: Window, other: Window) -> int:
    """How many of the view's predicted keypoints lie beyond its own window, in the other one."""
    xy = det.keypoints[:, :2]
    return int((~_inside(xy, window) & _inside(xy, other)).sum())


def _in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule: which points lie inside the closed polygon (V, 2)."""
    inside = np.zeros(len(points), bool)
    for (x0, y0), (x1, y1) in zip(polygon, np.roll(polygon, -1, axis=0)):
        crosses = (y0 > points[:, 1]) != (y1 > points[:, 1])
        # a horizontal edge crosses no point's ray; the guard only keeps the division finite
        x_at = x0 + (points[:, 1] - y0) * (x1 - x0) / ((y1 - y0) if y1 != y0 else 1e-12)
        inside ^= crosses & (points[:, 0] < x_at)
    return inside


def head_on_torso(part: Detection, whole: Detection, margin: float) -> bool:
    """Whether most of ``part``'s confident head keypoints lie on ``whole``'s confident torso (the shoulders-hips
    quadrilateral, grown by ``margin``): a view that fitted a whole skeleton onto someone's body."""
    head = part.keypoints[HEAD]
    head = head[head[:, 2] > KEYPOINT_THRESHOLD, :2]
    torso = whole.keypoints[TORSO]
    if len(head) < 2 or (torso[:, 2] <= KEYPOINT_THRESHOLD).any():
        return False
    corners = torso[:, :2]
    near = _distance_to_segments(head, corners, np.roll(corners, -1, axis=0)) <= margin
    return bool((near | _in_polygon(head, corners)).mean() > 0.5)


def share_within(part: Detection, whole: Detection) -> float:
    """Share of ``part``'s limbs inside the box of ``whole``'s predicted keypoints."""
    points = limb_samples(part.keypoints, 0.02 * max(body_size(part), 1.0))
    xy = whole.keypoints[:, :2]
    lo, hi = xy.min(0), xy.max(0)
    return float(((points >= lo) & (points <= hi)).all(1).mean())


class TileMerger:
    """Merges the detections of overlapping windows into one detection per person (``merge``).

    limb_tolerance: how close (share of the larger predicted body's diagonal) two views' limbs must pass in
    the windows' shared band; min_agreement: the share of each view's limbs in the band that must pass that
    close; min_within: the share of the partial view's limbs inside the cut view's predicted body;
    fill_similarity: least per-keypoint OKS between the kept view's prediction of a keypoint it did not see
    and another view's confident one, for that keypoint to be taken; duplicate_overlap: the IoU / OKS /
    containment rule that merges two copies of a person within one window (``tracker.is_duplicate``).
    """

    def __init__(self, limb_tolerance: float = 0.1, min_agreement: float = 0.5, min_within: float = 0.6,
                 fill_similarity: float = 0.5, duplicate_overlap: float = 0.5) -> None:
        self.limb_tolerance, self.min_agreement, self.min_within = limb_tolerance, min_agreement, min_within
        self.fill_similarity, self.duplicate_overlap = fill_similarity, duplicate_overlap

    def relation(self, a: Detection, window_a: Window, b: Detection, window_b: Window) -> tuple[float, int] | None:
        """None for two people; for one, (strength, keeper) with keeper 0 for ``a``, 1 for ``b``.

        Strength ranks the candidate partners of a view: 1 for a duplicate by box or keypoints, else the
        limb agreement in the band. The keeper is the view the other is a part of: not the one whose head
        lies on the other's torso, and the one cut by its window whose predicted body holds the other;
        else the better-scored one.
        """
        duplicate = is_duplicate(a, b, self.duplicate_overlap)
        band = _band(window_a, window_b) if window_a != window_b else None
        if band is None:
            return (1.0, 0 if a.score >= b.score else 1) if duplicate else None
        tolerance = self.limb_tolerance * max(body_size(a), body_size(b), 1.0)
        pairs = ((a, b, window_a, window_b), (b, a, window_b, window_a))
        ghost = [head_on_torso(part, whole, tolerance / 2) for whole, part, _, _ in pairs]
        holds = [cut_into(whole, own, other) > 0 and share_within(part, whole) >= self.min_within
                 for whole, part, own, other in pairs]
        if duplicate:
            strength = 1.0
        else:
            strength = limb_agreement(a, b, band, tolerance)
            if strength < self.min_agreement or not (any(ghost) or any(holds)):
                return None
        for evidence in (ghost, holds):
            if any(evidence) and not all(evidence):
                return strength, evidence.index(True)
        return strength, 0 if a.score >= b.score else 1

    def fill(self, kept: Detection, other: Detection, width: int, height: int) -> Detection:
        """``kept`` with the keypoints it did not see taken from ``other``, where ``other`` saw them close to
        where ``kept`` predicted them."""
        kp = kept.keypoints.copy()
        xy = kp[:, :2]
        area = max(float(np.prod(xy.max(0) - xy.min(0))), 1.0)
        d2 = ((other.keypoints[:, :2] - xy) ** 2).sum(1)
        agree = np.exp(-d2 / (2 * area * (2 * COCO_SIGMAS) ** 2)) >= self.fill_similarity
        take = (kp[:, 2] <= KEYPOINT_THRESHOLD) & (other.keypoints[:, 2] > KEYPOINT_THRESHOLD) & agree
        if not take.any():
            return kept
        kp[take] = other.keypoints[take]
        box = keypoint_box(kp, width, height)
        box = np.concatenate((np.minimum(box[:2], kept.bbox[:2]), np.maximum(box[2:], kept.bbox[2:])))
        return replace(kept, keypoints=kp, bbox=box, score=float(kp[:, 2].mean()))

    def merge(self, detections: list[Detection], windows: list[Window], width: int,
              height: int) -> list[Detection]:
        """One detection per person, best-scored first; ``windows[i]`` is the window detection ``i`` came from.

        Views join, best-scored first, the group they relate to most strongly, so a partial view between two
        people goes to the one whose limbs it lies on.
        """
        groups: list[list[int]] = []
        for i in sorted(range(len(detections)), key=lambda k: -detections[k].score):
            best: tuple[float, int, int] | None = None        # strength, group, keeper
            for g, group in enumerate(groups):
                for j in group:
                    rel = self.relation(detections[j], windows[j], detections[i], windows[i])
                    if rel is not None and (best is None or rel[0] > best[0]):
                        best = (rel[0], g, rel[1] if j == group[0] else 0)
            if best is None:
                groups.append([i])
            elif best[2] == 1:                                 # the newcomer is the fuller view of the person
                groups[best[1]].insert(0, i)
            else:
                groups[best[1]].append(i)
        merged = []
        for group in groups:
            det = detections[group[0]]
            for j in group[1:]:
                det = self.fill(det, detections[j], width, height)
            merged.append(det)
        return sorted(merged, key=lambda d: -d.score)
