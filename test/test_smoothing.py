"""Causal keypoint smoothing (one-euro) and the official detection rule in the pipeline."""
from __future__ import annotations

import numpy as np

from wham_ros.perception.smoothing import KeypointSmoother, OneEuroFilter


def test_one_euro_is_causal_and_keeps_a_constant():
    g = np.random.default_rng(0)
    signal = np.cumsum(g.normal(size=(60, 3)), 0)
    changed = signal.copy()
    changed[40:] += 100
    a, b = OneEuroFilter(), OneEuroFilter()
    out_a = np.array([a(s) for s in signal])
    out_b = np.array([b(s) for s in changed])
    np.testing.assert_array_equal(out_a[:40], out_b[:40])
    flat = OneEuroFilter()
    assert all(np.allclose(flat(np.full(3, 5.0)), 5.0) for _ in range(10))


def test_one_euro_removes_jitter_but_follows_fast_motion():
    g = np.random.default_rng(1)
    still = 100 + g.normal(scale=2.0, size=300)

    def run(f, values):
        return np.array([f(np.array([v]))[0] for v in values])

    official = run(OneEuroFilter(), still)[20:].std()
    strong = run(OneEuroFilter(min_cutoff=0.1), still)[20:].std()
    assert strong < official < still[20:].std()            # it de-jitters, more with a lower cut-off
    moving = np.arange(100) * 20.0                          # 20 px per frame
    adaptive = moving[-1] - run(OneEuroFilter(min_cutoff=0.1, beta=0.3), moving)[-1]
    fixed = moving[-1] - run(OneEuroFilter(min_cutoff=0.1, beta=0.0), moving)[-1]
    assert adaptive < 0.1 * fixed                           # speed raises the cut-off: little lag when moving


def test_keypoint_smoother_passes_confidences_and_marks_missing():
    kp = np.zeros((17, 3))
    kp[:, :2] = 200.0
    kp[:, 2] = 0.8
    kp[3, :2] = 0.0                                       # a keypoint the detector did not place
    s = KeypointSmoother()
    out = s(kp)
    assert (out[:, 2] == 0.8).all() and (out[3, :2] == -10).all()
