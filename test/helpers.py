"""Random but well-formed official network inputs, and comparisons, for tests."""
from __future__ import annotations

import torch

from wham_ros.geometry.rotations import axis_angle_to_matrix, matrix_to_rot6d
from wham_ros.stream import FrameInput, TrackInit

RTOL = 1e-5
#: per-key absolute tolerances recommended by the parity README (float32 noise of the official code)
ATOL = {"feet": 5e-5, "trans_cam": 2e-5, "trans_world": 2e-5, "vel_root": 5e-6, "vel_root_refined": 5e-6}
ATOL_DEFAULT = 1e-5


def assert_outputs_close(ref: dict, mine: dict, keys=None, rtol: float = RTOL, scale: float = 1.0) -> None:
    """Element-wise |mine - ref| <= atol + rtol |ref| for every key of ``ref`` (or ``keys``)."""
    for k in keys or ref:
        r, m = ref[k].double(), mine[k].double()
        assert tuple(m.shape) == tuple(r.shape), f"{k}: shape {tuple(m.shape)} != {tuple(r.shape)}"
        tol = scale * ATOL.get(k, ATOL_DEFAULT) + rtol * r.abs()
        diff = (m - r).abs()
        assert bool((diff <= tol).all()), f"{k}: max |diff| {float(diff.max()):.3e} exceeds tolerance"


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


def track_init(i: dict, fi: dict | None = None, use_features: bool = True) -> TrackInit:
    return TrackInit(i["init_kp"], i["init_smpl"], i["init_root"],
                     None if fi is None else fi["init_kp"], None if fi is None else fi["init_smpl"], use_features)


def frame_input(i: dict, t: int, fi: dict | None = None, feature: bool = True) -> FrameInput:
    f = FrameInput(i["x"][0, t], i["mask"][0, t], i["cam_angvel"][0, t], i["bbox"][0, t],
                   i["cam_intrinsics"][0, 0, 0, 0], i["res"][0], i["features"][0, t] if feature else None)
    if fi is not None:
        f.flipped_x, f.flipped_mask = fi["x"][0, t], fi["mask"][0, t]
        f.flipped_feature = fi["features"][0, t] if feature else None
    return f
