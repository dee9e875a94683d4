"""Which clip frames each training sample uses, epoch by epoch, reproducibly from (seed, epoch).

``official`` (training facts 1.4, 3.2): windows of 122 raw frames every 30 frames of every clip at least
that long; each epoch keeps every 4th window starting at (epoch mod 4), shuffled; a sample uses the first
l ~ U{54..122} frames of its window. ``random``: a sample draws l first, then a start uniformly over
every (clip, frame) with l frames left, so every frame of every clip of at least l frames can be drawn.

An epoch plan depends only on (seed, epoch), so a resumed run draws exactly what an uninterrupted one does.
"""
from __future__ import annotations

import numpy as np

from wham_ros.train.clips import MotionClip
from wham_ros.train.samples import Window

OFFICIAL_WINDOW = 122
OFFICIAL_STRIDE = OFFICIAL_WINDOW // 4
EPOCH_GROUPS = 4


def official_windows(lengths: list[int]) -> list[tuple[int, int]]:
    """(clip, start) of every 122-frame window, stride 30 (clips shorter than 122 frames give none)."""
    return [(c, s) for c, n in enumerate(lengths) for s in range(0, n - OFFICIAL_WINDOW + 1, OFFICIAL_STRIDE)]


class WindowPlan:
    """Per-epoch lists of :class:`Window` for ``clips``, in batches of ``batch_size``."""

    def __init__(self, clips: list[MotionClip], mode: str, batch_size: int, epoch_iterations: int,
                 speed_range: tuple[int, int], seed: int) -> None:
        self.lengths = np.array([c.frames for c in clips])
        self.mode, self.batch_size, self.seed = mode, batch_size, seed
        self.speed_range = speed_range
        self.epoch_iterations = epoch_iterations
        if mode == "official":
            if speed_range[1] > OFFICIAL_WINDOW:
                raise ValueError(f"official windows hold {OFFICIAL_WINDOW} frames; speed_max is {speed_range[1]}")
            self.windows = official_windows(self.lengths.tolist())
            if len(self.windows) < EPOCH_GROUPS:
                raise ValueError(f"only {len(self.windows)} official {OFFICIAL_WINDOW}-frame windows in the "
                                 f"training clips (use data.windows: random)")
        elif mode == "random":
            if self.lengths.max(initial=0) < speed_range[1]:
                raise ValueError(f"no training clip has {speed_range[1]} frames (augment.speed_max)")
        else:
            raise ValueError(f"unknown window mode {mode!r}")
        if mode == "random" and epoch_iterations < 1:
            raise ValueError("random windows need epoch_iterations >= 1")

    def iterations(self) -> int:
        """Iterations per epoch."""
        if self.epoch_iterations:
            return self.epoch_iterations
        count = len(self._epoch_windows(0))
        return -(-count // self.batch_size)

    def _epoch_windows(self, epoch: int) -> list[tuple[int, int]]:
        return self.windows[epoch % EPOCH_GROUPS::EPOCH_GROUPS]

    def _draw_frames(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(self.speed_range[0], self.speed_range[1] + 1, size=n)

    def epoch(self, epoch: int) -> list[list[Window]]:
        """The batches of ``epoch``: the official epoch's last batch may be smaller."""
        rng = np.random.default_rng([self.seed, epoch])
        if self.mode == "official":
            pool = self._epoch_windows(epoch)
            need = self.epoch_iterations * self.batch_size if self.epoch_iterations else len(pool)
            order = np.concatenate([rng.permutation(len(pool)) for _ in range(-(-need // len(pool)))])[:need]
            frames = self._draw_frames(rng, need)
            chosen = [Window(pool[i][0], pool[i][1], int(f)) for i, f in zip(order, frames)]
        else:
            need = self.epoch_iterations * self.batch_size
            chosen = []
            for f in self._draw_frames(rng, need):
                starts = np.maximum(self.lengths - f + 1, 0)
                pick = int(rng.integers(starts.sum()))
                clip = int(np.searchsorted(np.cumsum(starts), pick, side="right"))
                chosen.append(Window(clip, pick - int(starts[:clip].sum()), int(f)))
        return [chosen[i:i + self.batch_size] for i in range(0, len(chosen), self.batch_size)]
