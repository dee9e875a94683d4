"""Id-stability scoring of the tracker, and the person annotation of the sports2d demo clip.

A tracker keeps a person's id when every frame in which the person is published carries
the same track id. :func:`score_ids` counts, per annotated person, the frames the person is
visible (annotation), the frames the front end published the person as a confirmed track,
and the frames that carry the person's main (most frequent) id; it also counts id changes.
:func:`score_long_run` scores a clip played in a loop: which ids each person got, whether they
changed inside a pass or only across the loop point, and whether an id ever showed two people.

The clip annotation (``SPORTS2D``) was made by looking at the frames of
``sports2d_demo.mp4`` (1768x994, 230 frames): a man stands on a box, jumps, flips (frames
164-187, in the air behind a tree crown) and lands on the right; a woman enters at the
right edge behind a tree (half her body visible from frame 39), walks left and leaves
(half visible until frame 199). Which person a box shows follows from where it is:
before frame 186 the man is on or above the box (box bottom above 75% of the height),
afterwards he is on the right half and the woman on the left.
"""
from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClipAnnotation:
    size: tuple[int, int]                       # (width, height)
    visible: dict[str, tuple[int, int]]         # person -> first and last visible frame (inclusive)
    label: Callable[[int, np.ndarray], str]     # (frame, xyxy box) -> person


def _sports2d_label(frame: int, box: np.ndarray) -> str:
    width, height = SPORTS2D.size
    if frame < 186:
        return "woman" if box[3] > 0.75 * height else "man"
    return "woman" if (box[0] + box[2]) / 2 < 0.5 * width else "man"


SPORTS2D = ClipAnnotation((1768, 994), {"man": (0, 229), "woman": (39, 199)}, _sports2d_label)


@dataclass
class PersonScore:
    person: str
    visible: int          # annotated visible frames
    published: int        # visible frames in which a confirmed track showed the person
    main_id: int | None
    with_main_id: int     # visible frames published with the main id
    ids: dict[int, int]   # track id -> frames
    id_changes: int       # consecutive published frames whose id differs
    duplicate_frames: int  # visible frames in which more than one confirmed track showed the person

    @property
    def id_consistency(self) -> float:
        """Share of the frames the person was published that carry the main id."""
        return self.with_main_id / self.published if self.published else 0.0

    @property
    def coverage(self) -> float:
        """Share of the visible frames published with the main id (detection misses count against it)."""
        return self.with_main_id / self.visible if self.visible else 0.0


def score_ids(published: Iterable[tuple[int, int, np.ndarray]], annotation: ClipAnnotation) -> list[PersonScore]:
    """published: (frame, track id, xyxy box) of every confirmed, matched track in every frame.

    A frame counts once per person (its first track); further tracks on the same person are counted in
    ``duplicate_frames``, so a tracker cannot hide a second id behind the first.
    """
    per_person: dict[str, dict[int, int]] = {p: {} for p in annotation.visible}
    duplicates: Counter = Counter()
    for frame, track_id, box in published:
        person = annotation.label(frame, box)
        first, last = annotation.visible[person]
        if first <= frame <= last:
            if frame in per_person[person]:
                duplicates[person] += 1
            per_person[person].setdefault(frame, track_id)
    scores = []
    for person, frames in per_person.items():
        first, last = annotation.visible[person]
        counts = Counter(frames.values())
        main_id, main_n = counts.most_common(1)[0] if counts else (None, 0)
        ordered = [frames[f] for f in sorted(frames)]
        changes = sum(a != b for a, b in itertools.pairwise(ordered))
        scores.append(PersonScore(person, last - first + 1, len(frames), main_id, main_n, dict(counts), changes,
                                  duplicates[person]))
    return scores


@dataclass
class LongRunScore:
    person: str
    passes: int                 # passes of the clip in which the person was published
    ids: list[int]              # in the order they first showed the person
    changes_within_pass: int    # id changes between consecutive published frames of one pass
    changes_across_loop: int    # id changes between the last frame of one pass and the first of the next
    shared_ids: list[int]       # ids that also showed another person (an identity swap)


def score_long_run(published: Iterable[tuple[int, int, np.ndarray]], annotation: ClipAnnotation,
                   clip_frames: int) -> list[LongRunScore]:
    """published: (frame count since the start, track id, xyxy box) of every confirmed, matched track in every
    processed frame of a clip of ``clip_frames`` frames played in a loop (its frame = count % clip_frames)."""
    frames: dict[str, dict[int, int]] = {p: {} for p in annotation.visible}
    shown: dict[int, set[str]] = {}
    for count, track_id, box in published:
        person = annotation.label(count % clip_frames, box)
        first, last = annotation.visible[person]
        if first <= count % clip_frames <= last:
            frames[person].setdefault(count, track_id)
            shown.setdefault(track_id, set()).add(person)
    scores = []
    for person, by_count in frames.items():
        ordered = sorted(by_count.items())
        ids = list(dict.fromkeys(i for _, i in ordered))
        pairs = [(a, b) for a, b in itertools.pairwise(ordered) if a[1] != b[1]]
        across = sum(a[0] // clip_frames != b[0] // clip_frames for a, b in pairs)
        scores.append(LongRunScore(person, len({c // clip_frames for c, _ in ordered}), ids, len(pairs) - across,
                                   across, [i for i in ids if len(shown[i]) > 1]))
    return scores
