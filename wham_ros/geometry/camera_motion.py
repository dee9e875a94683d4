"""WHAM's ``cam_angvel``: camera rotation between frames, from orientations or raw gyro samples.

Definition (official training convention, causal): for the frame pair (a, b) =
(previous, current), with R_wc the camera-to-world rotation,

    Delta R = R_wc(a)^T R_wc(b)          (camera-b coordinates -> camera-a coordinates)
    cam_angvel = (row6D(Delta R) - I6) * 30

WHAM is trained at 30 fps. When frames are not 1/30 s apart, Delta R is rescaled
on SO(3) to the rotation over 1/30 s (same axis, angle * (1/30) / dt) before the
formula above, so the network sees the angular rate it was trained on; at exactly
30 fps this is the identity. The demo instead pairs (current, next) frames and
scales by the video fps (``convention="demo"``, one frame of look-ahead).

Gyro rates are body rates of the camera in its optical frame (x right, y down,
z forward); IMU-frame rates are rotated by the IMU->camera extrinsic.
"""
from __future__ import annotations

import bisect
import itertools
import math
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from wham_ros.geometry.rotations import (
    IDENTITY_6D,
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rot6d,
    rot6d_to_matrix,
)

TRAIN_FPS = 30.0


def angvel_from_delta(delta_R: torch.Tensor, dt: torch.Tensor | float | None = None,
                      fps: float = TRAIN_FPS) -> torch.Tensor:
    """``cam_angvel`` (..., 6) from relative rotations Delta R (..., 3, 3) over ``dt`` seconds.

    With ``dt`` given, Delta R is first rescaled to the rotation over 1/``fps`` s.
    """
    if dt is not None:
        dt = torch.as_tensor(dt, dtype=delta_R.dtype, device=delta_R.device)
        scale = (1.0 / fps) / dt
        delta_R = axis_angle_to_matrix(matrix_to_axis_angle(delta_R) * scale[..., None])
    eye6 = torch.tensor(IDENTITY_6D, dtype=delta_R.dtype, device=delta_R.device)
    return (matrix_to_rot6d(delta_R) - eye6) * fps


def rate_from_angvel(cam_angvel: torch.Tensor, fps: float = TRAIN_FPS) -> torch.Tensor:
    """The camera body rate (..., 3), rad/s in the optical frame, that ``cam_angvel`` (..., 6) stands for.

    Inverts :func:`angvel_from_delta`: Delta R over 1/``fps`` s from its 6D rows, then its axis-angle times ``fps``.
    """
    cam_angvel = torch.as_tensor(cam_angvel, dtype=torch.float64)
    eye6 = torch.tensor(IDENTITY_6D, dtype=cam_angvel.dtype)
    return matrix_to_axis_angle(rot6d_to_matrix(cam_angvel / fps + eye6)) * fps


def angvel_from_orientations(R_wc: torch.Tensor, stamps: torch.Tensor | None = None, *,
                             convention: str = "training", fps: float = TRAIN_FPS,
                             R_wc_before: torch.Tensor | None = None,
                             stamp_before: float | None = None) -> torch.Tensor:
    """``cam_angvel`` (T, 6) from camera-to-world orientations R_wc (T, 3, 3).

    ``training`` (causal): entry t pairs frames (t-1, t); entry 0 pairs ``R_wc_before``
    (the orientation at ``stamp_before``) with frame 0, or is 0 when that is not
    given. With ``stamps`` (T,) seconds the rotations are rescaled to 1/30 s;
    without, frames are taken to be 1/``fps`` apart and scaled by ``fps``.
    ``demo``: the official demo's alignment: entry t pairs (t, t+1) scaled by ``fps``
    with no rescaling, and the last entry repeats entry 0.
    """
    R_wc = torch.as_tensor(R_wc)
    T = R_wc.shape[0]
    if convention == "demo":
        delta = R_wc[:-1].transpose(-1, -2) @ R_wc[1:]
        out = angvel_from_delta(delta, None, fps)
        return torch.cat((out, out[:1]), 0) if T > 1 else torch.zeros(T, 6, dtype=R_wc.dtype)
    if convention != "training":
        raise ValueError(f"unknown cam_angvel convention {convention!r} (use 'training' or 'demo')")
    prev = torch.cat((R_wc[:1] if R_wc_before is None else torch.as_tensor(R_wc_before, dtype=R_wc.dtype)[None],
                      R_wc[:-1]), 0)
    delta = prev.transpose(-1, -2) @ R_wc
    if stamps is None:
        out = angvel_from_delta(delta, None, fps)
    else:
        stamps = torch.as_tensor(stamps, dtype=torch.float64)
        first = stamps[:1] - 1.0 / fps if stamp_before is None else torch.tensor([stamp_before], dtype=torch.float64)
        dt = torch.diff(stamps, prepend=first).to(R_wc.dtype)
        if (dt <= 0).any():
            raise ValueError("orientation stamps must increase strictly")
        out = angvel_from_delta(delta, dt, TRAIN_FPS)
    if R_wc_before is None:
        out[0] = 0.0
    return out


@dataclass
class GyroSample:
    stamp: float            # seconds
    rate: torch.Tensor      # (3,) rad/s in the camera optical frame (float64)


class GyroIntegrator:
    """Buffers gyro samples and integrates them exactly on SO(3) between image stamps.

    Rates are stored in the IMU frame; ``R_cam_imu`` (3, 3), here or per call (e.g. the
    latest TF extrinsic), turns the integrated rotation into the camera optical frame:
    exp([R w]x) = R exp([w]x) R^T for a rigid mount. Between consecutive samples the
    rate is interpolated linearly and each sub-interval is integrated with its
    mid-interval rate (second-order accurate), composing the exponentials in time order by right-multiplication. Samples
    older than ``horizon`` seconds before the newest one are dropped. Thread-safe:
    one thread may add samples while another integrates.

    A sample older than the newest is refused; but once ``recover_after`` samples in a row were
    refused, the newest buffered samples are taken for outliers (one wrongly stamped sample must not
    block the stream) and dropped, and the buffer continues from the sample that came in.
    """

    def __init__(self, R_cam_imu: torch.Tensor | None = None, horizon: float = 5.0, max_gap: float = 0.1,
                 recover_after: int = 10) -> None:
        self.R_cam_imu = (torch.eye(3, dtype=torch.float64) if R_cam_imu is None
                          else torch.as_tensor(R_cam_imu, dtype=torch.float64))
        self.horizon, self.max_gap, self.recover_after = horizon, max_gap, recover_after
        self._stamps: deque[float] = deque()
        self._rates: deque[np.ndarray] = deque()        # numpy: adding a 200 Hz sample must cost microseconds
        self._refused = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._stamps)

    def clear(self) -> None:
        with self._lock:
            self._stamps.clear()
            self._rates.clear()

    @property
    def latest_stamp(self) -> float | None:
        with self._lock:
            return self._stamps[-1] if self._stamps else None

    def _snapshot(self) -> tuple[list[float], list[np.ndarray]]:
        with self._lock:
            return list(self._stamps), list(self._rates)

    def add(self, stamp: float, rate_imu) -> None:
        """Add one sample: rate in rad/s in the IMU frame. Raises ValueError for NaN/inf or out-of-order stamps."""
        rate = np.asarray(rate_imu, dtype=np.float64).reshape(3)
        if not np.isfinite(rate).all() or not math.isfinite(stamp):
            raise ValueError("gyro sample contains NaN or inf")
        with self._lock:
            if self._stamps and stamp <= self._stamps[-1]:
                self._refused += 1
                if self._refused < self.recover_after:
                    raise ValueError(f"gyro stamp {stamp:.6f} is not after the previous one {self._stamps[-1]:.6f}")
                while self._stamps and self._stamps[-1] >= stamp:
                    self._stamps.pop()
                    self._rates.pop()
            self._refused = 0
            self._stamps.append(float(stamp))
            self._rates.append(rate)
            while self._stamps and self._stamps[0] < stamp - self.horizon:
                self._stamps.popleft()
                self._rates.popleft()

    def covers(self, t_a: float, t_b: float) -> bool:
        """True when samples span [t_a, t_b] (to within ``max_gap / 2``) with no gap over ``max_gap``."""
        s, _ = self._snapshot()
        if not s:
            return False
        tol = self.max_gap / 2
        if s[0] > t_a + tol or s[-1] < t_b - tol:
            return False
        window = s[max(bisect.bisect_right(s, t_a) - 1, 0): bisect.bisect_left(s, t_b) + 1]
        # only gaps overlapping (t_a, t_b) matter
        return all(b - a <= self.max_gap for a, b in itertools.pairwise(window) if a < t_b and b > t_a)

    def coverage_report(self, t_a: float, t_b: float) -> str:
        """Why [t_a, t_b] is or is not covered, for diagnostics."""
        s, _ = self._snapshot()
        if not s:
            return "no samples"
        gaps = [b - a for a, b in itertools.pairwise(s) if a < t_b and b > t_a]
        return (f"samples {s[0]:.3f}..{s[-1]:.3f} for [{t_a:.3f}, {t_b:.3f}], "
                f"largest gap {max(gaps, default=0.0) * 1e3:.0f} ms")

    @staticmethod
    def _rate_at(stamps: list[float], rates: list[np.ndarray], t: float) -> np.ndarray:
        i = bisect.bisect_right(stamps, t)
        if i == 0:
            return rates[0]
        if i == len(stamps):
            return rates[-1]
        t0, t1 = stamps[i - 1], stamps[i]
        w = (t - t0) / (t1 - t0)
        return rates[i - 1] * (1 - w) + rates[i] * w

    def delta_rotation(self, t_a: float, t_b: float, R_cam_imu: torch.Tensor | None = None) -> torch.Tensor:
        """Delta R = R_wc(t_a)^T R_wc(t_b) of the camera (float64, 3x3) from the buffered rates.

        ``R_cam_imu`` overrides the constructor's extrinsic. Rates are held constant beyond
        the first/last sample; check :meth:`covers` first.
        """
        stamps, rates = self._snapshot()
        if not stamps:
            raise ValueError("no gyro samples")
        if t_b < t_a:
            raise ValueError("t_b must not precede t_a")
        knots = [t_a] + [s for s in stamps if t_a < s < t_b] + [t_b]
        R = torch.eye(3, dtype=torch.float64)
        for a, b in itertools.pairwise(knots):
            if b > a:
                R = R @ axis_angle_to_matrix(torch.from_numpy(self._rate_at(stamps, rates, 0.5 * (a + b)) * (b - a)))
        extrinsic = self.R_cam_imu if R_cam_imu is None else torch.as_tensor(R_cam_imu, dtype=torch.float64)
        return extrinsic @ R @ extrinsic.T

    def cam_angvel(self, t_a: float, t_b: float, dtype: torch.dtype = torch.float32,
                   R_cam_imu: torch.Tensor | None = None) -> torch.Tensor:
        """``cam_angvel`` (6,) for the frame pair (t_a, t_b), rescaled to 30 fps."""
        return angvel_from_delta(self.delta_rotation(t_a, t_b, R_cam_imu), t_b - t_a).to(dtype)
