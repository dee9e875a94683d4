"""Phone-style portrait frames made from the two-person sports2d clip (1768x994, 30 fps).

The clip's people fill under half its height, so each view crops a 9:16 window around a person
and scales it to 640x1138, where the person spans both of the embedded front end's stacked windows:
the man on his box (frames 0-140), the woman walking past (about frames 105-135), the man turned
90 degrees (a landscape frame whose side-by-side windows cut him lengthwise), and the two of them
side by side in one portrait frame (man frames 0-27 next to woman frames 108-135).
"""
from __future__ import annotations

import os

import cv2
import numpy as np
from conftest import SHARED, require_file

VIDEO = os.path.join(SHARED, "data", "videos_people", "sports2d_demo.mp4")
PORTRAIT = (640, 1138)
#: rows, columns of the 9:16 windows around each person in the clip's full-resolution frames
MAN = (slice(30, 510), slice(505, 775))
WOMAN = (slice(450, 970), slice(690, 982))
#: the frames in which each view shows its person(s) whole enough to be found
FRAMES = {"man": range(0, 141), "man_turned": range(0, 141), "woman": range(108, 136), "pair": range(0, 28)}


def clip(frames: range) -> dict[int, np.ndarray]:
    """The clip's BGR frames with the given indices."""
    cap = cv2.VideoCapture(require_file(VIDEO, "the sports2d video"))
    out = {}
    for k in range(frames.stop):
        ok, bgr = cap.read()
        assert ok, f"frame {k} of {VIDEO}"
        if k in frames:
            out[k] = bgr
    return out


def _window(bgr: np.ndarray, where: tuple[slice, slice]) -> np.ndarray:
    return cv2.resize(bgr[where], PORTRAIT, interpolation=cv2.INTER_LINEAR)


def _pair(man: np.ndarray, woman: np.ndarray) -> np.ndarray:
    # the middle 440 columns of each portrait (the person, without the empty sides) side by side, padded
    # above and below by repeating the edge rows to the portrait height
    halves = [cv2.resize(_window(bgr, where)[:, 100:540], (320, 828), interpolation=cv2.INTER_AREA)
              for bgr, where in ((man, MAN), (woman, WOMAN))]
    pad = PORTRAIT[1] - 828
    return cv2.copyMakeBorder(np.hstack(halves), pad // 2, pad - pad // 2, 0, 0, cv2.BORDER_REPLICATE)


def view(name: str, count: int | None = None) -> list[np.ndarray]:
    """RGB frames of one view ("man", "man_turned", "woman", "pair"), its first ``count`` frames by default all."""
    frames = FRAMES[name]
    frames = range(frames.start, frames.start + min(count or len(frames), len(frames)))
    if name == "pair":
        men, women = clip(frames), clip(range(108, 108 + len(frames)))
        bgr = [_pair(men[k], women[108 + k - frames.start]) for k in frames]
    else:
        source = clip(frames)
        where = WOMAN if name == "woman" else MAN
        bgr = [_window(source[k], where) for k in frames]
        if name == "man_turned":
            bgr = [cv2.rotate(b, cv2.ROTATE_90_COUNTERCLOCKWISE) for b in bgr]
    return [cv2.cvtColor(b, cv2.COLOR_BGR2RGB) for b in bgr]
