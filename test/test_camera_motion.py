"""cam_angvel from camera orientations and from raw gyro samples (synthetic and real GoPro data)."""
from __future__ import annotations

import itertools
import math
import os

import numpy as np
import pytest
import torch
from conftest import SHARED, require_file

from wham_ros.geometry.camera_motion import (
    GyroIntegrator,
    angvel_from_delta,
    angvel_from_orientations,
    rate_from_angvel,
)
from wham_ros.geometry.gravity import gravity_from_accel, init_root, world_from_camera
from wham_ros.geometry.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rot6d,
    quaternion_to_matrix,
    rot6d_to_matrix,
)

GOPRO = os.path.join(SHARED, "data", "video_imu", "gopro_max-heromode_")


def omega(t: float) -> torch.Tensor:
    """A smooth, fast camera rotation (rad/s, camera frame), up to ~1.4 rad/s."""
    return torch.tensor([0.8 * math.sin(2 * math.pi * 0.5 * t), 0.9 * math.cos(2 * math.pi * 0.3 * t),
                         0.6 * math.sin(2 * math.pi * 0.7 * t + 1.0)], dtype=torch.float64)


def true_orientations(stamps: list[float], step: float = 2e-4) -> torch.Tensor:
    """R_wc at each stamp by fine exponential integration of omega from t = 0."""
    out, R, t = [], torch.eye(3, dtype=torch.float64), 0.0
    for s in stamps:
        while t < s - 1e-12:
            h = min(step, s - t)
            R = R @ axis_angle_to_matrix(omega(t + h / 2) * h)
            t += h
        out.append(R.clone())
    return torch.stack(out)


@pytest.mark.parametrize("fps", [30.0, 20.0])
def test_gyro_path_equals_orientation_path_on_a_rotating_camera(fps):
    frames = [0.05 + k / fps for k in range(int(2.0 * fps))]
    R_wc = true_orientations(frames)
    R_cam_imu = axis_angle_to_matrix(torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64))
    gyro = GyroIntegrator(R_cam_imu)
    t = 0.0017
    while t < frames[-1] + 0.01:
        gyro.add(t, R_cam_imu.T @ omega(t))          # what an IMU mounted with that extrinsic reads
        t += 1 / 200.0
    from_orient = angvel_from_orientations(R_wc, torch.tensor(frames), R_wc_before=R_wc[0], stamp_before=frames[0])
    from_gyro = torch.stack([gyro.cam_angvel(a, b, torch.float64) for a, b in itertools.pairwise(frames)])
    assert all(gyro.covers(a, b) for a, b in itertools.pairwise(frames))
    err = (from_gyro - from_orient[1:]).abs().max()
    assert err <= 1e-4, f"max |gyro - orientation| = {err:.2e}"
    assert from_orient[1:].abs().max() > 0.5


def test_rates_at_other_frame_rates_are_rescaled_to_30_fps():
    """At 15 fps the rotation between frames is halved on SO(3) before WHAM's x30 scaling."""
    w = torch.tensor([0.4, -0.7, 0.2], dtype=torch.float64)
    dR = axis_angle_to_matrix(w / 15.0)
    got = angvel_from_delta(dR, 1 / 15.0)
    want = (matrix_to_rot6d(axis_angle_to_matrix(w / 30.0)) - torch.tensor([1.0, 0, 0, 0, 1, 0])) * 30
    torch.testing.assert_close(got, want.to(got.dtype))
    small = torch.tensor([0.0, -w[2], w[1], w[2], 0.0, -w[0]], dtype=torch.float64)
    assert (got - small).abs().max() < 0.02                      # the small-angle form, roughly


def test_rate_from_angvel_gives_back_the_body_rate():
    """The node reports cam_angvel as rad/s: the rate the camera turned at, whatever the frame interval."""
    w = torch.tensor([0.4, -0.7, 0.2], dtype=torch.float64)
    for dt in (1 / 30, 1 / 12, 0.4):
        torch.testing.assert_close(rate_from_angvel(angvel_from_delta(axis_angle_to_matrix(w * dt), dt)), w)
    torch.testing.assert_close(rate_from_angvel(torch.zeros(6)), torch.zeros(3, dtype=torch.float64))


def test_training_convention_is_causal_and_first_frame_is_zero():
    R_wc = true_orientations([k / 30 for k in range(10)])
    full = angvel_from_orientations(R_wc)
    part = angvel_from_orientations(R_wc[:6])
    torch.testing.assert_close(full[:6], part)
    assert torch.all(full[0] == 0)


def test_demo_convention_reproduces_the_official_inputs(parity_dir):
    d = torch.load(os.path.join(parity_dir, "inputs.pt"), weights_only=True)
    slam = d["raw"]["slam_results"].double()                    # [x y z qx qy qz qw], camera-to-world
    R_wc = quaternion_to_matrix(torch.cat((slam[:, 6:], slam[:, 3:6]), 1))
    got = angvel_from_orientations(R_wc, convention="demo", fps=d["raw"]["fps"]).float()
    torch.testing.assert_close(got, d["inputs"]["cam_angvel"][0], rtol=1e-5, atol=2e-6)


def test_gyro_buffer_rejects_bad_samples_and_reports_gaps():
    gyro = GyroIntegrator(max_gap=0.02)
    gyro.add(0.0, [0.0, 0.0, 0.1])
    with pytest.raises(ValueError, match="NaN"):
        gyro.add(0.005, [float("nan"), 0.0, 0.0])
    with pytest.raises(ValueError, match="not after"):
        gyro.add(0.0, [0.0, 0.0, 0.0])
    gyro.add(0.005, [0.0, 0.0, 0.1])
    gyro.add(0.1, [0.0, 0.0, 0.1])
    assert gyro.covers(0.0, 0.005) and not gyro.covers(0.0, 0.1) and not gyro.covers(0.1, 0.3)
    assert len(gyro) == 3


def _gopro():
    gyro = np.loadtxt(require_file(GOPRO + "gyro.csv", "the GoPro recording"), delimiter=",", skiprows=2)
    cori = np.loadtxt(require_file(GOPRO + "cori.csv", "the GoPro recording"), delimiter=",", skiprows=2)
    return gyro, cori


# The GoPro's CORI quaternion (w, x, y, z) maps world to its sensor frame; raw gyro
# axes reach that frame by a 180-degree turn about y (measured: see the README).
GOPRO_R_CAM_IMU = torch.diag(torch.tensor([-1.0, 1.0, -1.0], dtype=torch.float64))


def gopro_angvel() -> tuple[torch.Tensor, torch.Tensor]:
    """cam_angvel per frame pair of the real clip, from CORI orientations and from the gyro."""
    gyro, cori = _gopro()
    stamps = torch.tensor(cori[:, 0] * 1e-6)
    R_wc = quaternion_to_matrix(torch.tensor(cori[:, 1:5])).transpose(-1, -2)
    from_orient = angvel_from_orientations(R_wc, stamps)[1:]
    integ = GyroIntegrator(GOPRO_R_CAM_IMU, horizon=1e9)
    for row in gyro:
        integ.add(row[0] * 1e-6, row[1:4])
    pairs = [(a, b) for a, b in zip(stamps[:-1].tolist(), stamps[1:].tolist()) if integ.covers(a, b)]
    keep = [k for k, (a, b) in enumerate(zip(stamps[:-1].tolist(), stamps[1:].tolist())) if integ.covers(a, b)]
    from_gyro = torch.stack([integ.cam_angvel(a, b, torch.float64) for a, b in pairs])
    return from_orient[keep], from_gyro


def test_gyro_path_follows_the_real_gopro_orientation_track():
    orient, gyro = gopro_angvel()
    assert len(gyro) > 250
    # angular velocity components of cam_angvel: [R01, R02, R12] ~ [-w_z, w_y, -w_x]
    idx = [1, 2, 5]
    r = [float(np.corrcoef(orient[:, k], gyro[:, k])[0, 1]) for k in idx]
    assert min(r) > 0.9, f"per-axis correlation {r}"
    mag_o = orient[:, idx].norm(dim=1)
    mag_g = gyro[:, idx].norm(dim=1)
    assert float(np.corrcoef(mag_o, mag_g)[0, 1]) > 0.9


def test_gravity_aligned_init_root():
    """A camera pitched down 20 degrees: the world's +y is gravity, and the body's world root is upright."""
    pitch = axis_angle_to_matrix(torch.tensor([-math.radians(20), 0.0, 0.0], dtype=torch.float64))
    g_cam = pitch @ torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)   # gravity seen by the pitched camera
    R_wc = world_from_camera(g_cam)
    torch.testing.assert_close(R_wc @ g_cam, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    assert abs(torch.linalg.det(R_wc) - 1) < 1e-9
    accel = -9.81 * g_cam
    torch.testing.assert_close(gravity_from_accel(accel), g_cam)
    upright_world = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))   # y-down world, facing -z
    body_cam = pitch @ upright_world                                     # how the pitched camera sees that body
    root = rot6d_to_matrix(init_root(body_cam, R_wc))
    torch.testing.assert_close(root, upright_world, atol=1e-9, rtol=0)
    torch.testing.assert_close(init_root(body_cam), matrix_to_rot6d(body_cam))
    assert matrix_to_axis_angle(root @ upright_world.T).norm() < 1e-6


def test_one_future_stamped_sample_does_not_block_the_gyro_buffer():
    """A sample stamped far ahead is an outlier: after a few refusals the stream goes on without it."""
    gyro = GyroIntegrator(max_gap=0.05, recover_after=10)
    for k in range(20):
        gyro.add(k * 0.005, (0.0, 0.3, 0.0))
    gyro.add(1e6, (0.0, 0.3, 0.0))
    refused = 0
    for k in range(20, 200):
        try:
            gyro.add(k * 0.005, (0.0, 0.3, 0.0))
        except ValueError:
            refused += 1
    assert refused == 9 and gyro.latest_stamp == pytest.approx(199 * 0.005)
    assert gyro.covers(0.2, 0.9)
    with pytest.raises(ValueError, match="not after"):       # a single late sample is still refused
        gyro.add(0.5, (0.0, 0.3, 0.0))
