"""Random but well-formed official network inputs, and comparisons, for tests."""
from __future__ import annotations

import torch

from wham_ros.geometry.rotations import axis_angle_to_matrix, matrix_to_rot6d
from wham_ros.model.parity import compare_key


def assert_outputs_close(ref: dict, mine: dict, keys=None) -> None:
    """Every key of ``ref`` (or ``keys``) within the parity tolerances (``wham_ros.model.parity``)."""
    for k in keys or ref:
        shapes = tuple(mine[k].shape), tuple(ref[k].shape)
        assert shapes[0] == shapes[1], f"{k}: shape {shapes[0]} != {shapes[1]}"
        ok, worst = compare_key(ref[k], mine[k], k)
        assert ok, f"{k}: max |diff| {worst:.3e} exceeds tolerance"


def random_inputs(T: int, seed: int, flipped: bool = False) -> dict[str, torch.Tensor]:
    """Official-shaped inputs for one track of T frames at 1280x720."""
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *s: torch.rand(*s, generator=g)
    rot6d = lambda n, s: matrix_to_rot6d(axis_angle_to_matrix((rnd(n, 3) * 2 - 1) * s))
    root = axis_angle_to_matrix(torch.tensor([torch.pi, 0.0, 0.0])) @ axis_angle_to_matrix((rnd(3) * 2 - 1) * 0.3)
    smpl = torch.cat((matrix_to_rot6d(root)[None], rot6d(23, 0.4)))
    x = (rnd(1, T, 37) * 2 - 1) * 0.9
    x[..., 34:] = torch.tensor([0.0, 0.0, 0.5]) + 0.05 * (rnd(1, T, 3) * 2 - 1)
    return {
        "x": x,
        "init_kp": torch.cat(((rnd(1, 1, 51) * 2 - 1) * 0.5, x[:, :1]), -1),
        "init_smpl": smpl.reshape(1, 1, 24, 6),
        "features": torch.randn(1, T, 1024, generator=g),
        "mask": rnd(1, T, 17) < 0.15,
        "init_root": matrix_to_rot6d(root).reshape(1, 1, 6),
        "cam_angvel": (rnd(1, T, 6) * 2 - 1) * 0.05,
        "cam_intrinsics": torch.tensor([[[[1468.6, 0.0, 640.0], [0.0, 1468.6, 360.0], [0.0, 0.0, 1.0]]]]),
        "bbox": torch.tensor([640.0, 360.0, 1.6]) + torch.tensor([80.0, 40.0, 0.2]) * (rnd(1, T, 3) * 2 - 1),
        "res": torch.tensor([[1280.0, 720.0]]),
    }

