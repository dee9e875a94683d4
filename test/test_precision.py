"""The fp16 step option stays close to float32 and fp32 is exact again after switching back."""
from __future__ import annotations

import pytest
import torch
from helpers import random_inputs

from wham_ros.model.precision import set_precision
from wham_ros.stream import StreamEngine, stack_outputs
from wham_ros.stream.state import frame_input_from_official as frame_input
from wham_ros.stream.state import track_init_from_official as track_init


def _run(net, i):
    engine = StreamEngine(net)
    engine.add_track(0, track_init(i))
    return stack_outputs([engine.step({0: frame_input(i, t)}).outputs[0] for t in range(10)], i["init_root"])


def test_fp16_steps_stay_within_one_percent(synthetic_net):
    i = random_inputs(10, seed=21)
    exact = _run(synthetic_net, i)
    try:
        set_precision(synthetic_net, "fp16")
        half = _run(synthetic_net, i)
    finally:
        set_precision(synthetic_net, "fp32")
    again = _run(synthetic_net, i)
    for k in ("pose", "betas", "contact", "trans_cam", "trans_world", "poses_root_world"):
        rel = float((half[k] - exact[k]).norm() / exact[k].norm())
        assert 0 < rel < 0.01, (k, rel)
        assert torch.equal(again[k], exact[k]), k


def test_unknown_precision_is_refused(synthetic_net):
    with pytest.raises(ValueError, match="unknown precision 'int4'"):
        set_precision(synthetic_net, "int4")
