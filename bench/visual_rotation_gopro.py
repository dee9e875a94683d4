#!/usr/bin/env python3
"""Visual camera rotation on the real GoPro MAX clip, against its orientation telemetry and gyro.

    .venv/bin/python bench/visual_rotation_gopro.py [--focal F] [--pinhole] [--model auto|rotation|essential]

Prints figures only (no pass/fail). The clip (../shared/data/video_imu/) is HyperSmooth-
stabilised with horizon levelling (GPMF EISE=Y, EISA="HS HLevel"), so the image does not
turn with the camera body: the image's orientation is the camera orientation CORI followed
by the stabiliser's image-in-camera rotation IORI, both read here from the mp4's GPMF
track. The visual estimate is compared with that image orientation (the reference it
should match), with CORI alone and with the raw gyro (both camera body, for contrast).
Default intrinsics: an equidistant fisheye whose focal follows from the GPMF diagonal
field of view ZFOV (137.4 deg over the 848x480 frame: f = half-diagonal / half-angle).
"""
from __future__ import annotations

import argparse
import itertools
import math
import os
import re
import struct
import sys
import time

import cv2
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from wham_ros.geometry.camera_motion import GyroIntegrator  # noqa: E402
from wham_ros.geometry.rotations import matrix_to_axis_angle, quaternion_to_matrix  # noqa: E402
from wham_ros.geometry.visual_rotation import VisualRotationEstimator  # noqa: E402

SHARED = os.environ.get("WHAM_ROS_SHARED", os.path.join(HERE, "..", "..", "shared"))
CLIP = os.path.join(SHARED, "data", "video_imu", "gopro_max-heromode")
# raw gyro axes -> CORI sensor axes, as measured in test/test_camera_motion.py
GOPRO_R_CAM_IMU = np.diag([-1.0, 1.0, -1.0])


def gpmf_values(path: str, key: bytes) -> tuple[np.ndarray, list[float]]:
    """All samples of one GPMF stream of an mp4, in file order, divided by the stream's SCAL.

    GPMF is key-length-value: a 4-byte key, a type char, a sample size byte and a big-
    endian uint16 repeat count. The stream's SCAL precedes its data in the same STRM, so
    the last SCAL seen before each occurrence applies. Only the signed 16-bit ('s') and
    float ('f') types used by GYRO/CORI/IORI/ZFOV are decoded.
    """
    with open(path, "rb") as f:
        data = f.read()
    chunks, scales = [], []
    for m in re.finditer(re.escape(key) + rb"[sf]", data):
        p = m.start()
        kind, size, count = chr(data[p + 4]), data[p + 5], struct.unpack(">H", data[p + 6:p + 8])[0]
        fmt = ">i2" if kind == "s" else ">f4"
        width = size // np.dtype(fmt).itemsize
        if width == 0 or size % np.dtype(fmt).itemsize:
            continue
        raw = np.frombuffer(data[p + 8:p + 8 + size * count], fmt).reshape(count, width).astype(np.float64)
        scal = data.rfind(b"SCAL", max(0, p - 400), p)
        scale = 1.0
        if scal >= 0 and data[scal + 4:scal + 6] == b"s\x02":
            scale = float(struct.unpack(">h", data[scal + 8:scal + 10])[0])
        chunks.append(raw / scale)
        scales.append(scale)
    if not chunks:
        raise ValueError(f"no {key!r} stream in {path}")
    return np.concatenate(chunks), scales


def orientation_tracks(path: str) -> dict[str, np.ndarray]:
    """Camera-to-world rotations R_wc (T, 3, 3) per frame: camera body (CORI) and stabilised image (CORI+IORI)."""
    cori = quaternion_to_matrix(torch.tensor(gpmf_values(path, b"CORI")[0])).numpy()   # world -> camera body
    iori = quaternion_to_matrix(torch.tensor(gpmf_values(path, b"IORI")[0])).numpy()   # camera body -> image
    T = lambda R: np.swapaxes(R, -1, -2)
    return {"cori": T(cori), "image": T(iori @ cori)}


def deltas(R_wc: np.ndarray) -> np.ndarray:
    """Delta R = R_wc(k)^T R_wc(k+1) for consecutive frames."""
    return np.swapaxes(R_wc[:-1], -1, -2) @ R_wc[1:]


def rates(delta: np.ndarray, dt: float) -> np.ndarray:
    """Angular velocity (rad/s, camera axes) of each Delta R."""
    return matrix_to_axis_angle(torch.tensor(delta)).numpy() / dt


def angle(R: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip((np.trace(R, axis1=-2, axis2=-1) - 1) / 2, -1, 1)))


def signed_permutations() -> list[np.ndarray]:
    """The 24 proper signed axis permutations (det +1)."""
    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            P = np.zeros((3, 3))
            P[range(3), perm] = signs
            if np.linalg.det(P) > 0:
                out.append(P)
    return out


def correlations(w_vis: np.ndarray, w_ref: np.ndarray) -> tuple[list[float], float]:
    """Per-axis Pearson r and r of the magnitudes."""
    per_axis = [float(np.corrcoef(w_vis[:, k], w_ref[:, k])[0, 1]) for k in range(3)]
    mag = float(np.corrcoef(np.linalg.norm(w_vis, axis=1), np.linalg.norm(w_ref, axis=1))[0, 1])
    return per_axis, mag


def best_mapping(d_vis: np.ndarray, d_ref: np.ndarray, dt: float) -> tuple[np.ndarray, list[float], float]:
    """Signed permutation P (image axes = P sensor axes) maximising the worst per-axis correlation."""
    w_vis = rates(d_vis, dt)
    best = None
    for P in signed_permutations():
        r, mag = correlations(w_vis, rates(P @ d_ref @ P.T, dt))
        if best is None or min(r) > min(best[1]):
            best = (P, r, mag)
    return best


def accumulated_error(d_vis: np.ndarray, d_ref: np.ndarray) -> tuple[float, float]:
    """Angle (deg) of R_vis(T)^T R_ref(T), composing each source's Delta R from frame 0; final and max over t."""
    errs, Rv, Rr = [], np.eye(3), np.eye(3)
    for a, b in zip(d_vis, d_ref):
        Rv, Rr = Rv @ a, Rr @ b
        errs.append(float(angle(Rv.T @ Rr)))
    return errs[-1], max(errs)


def read_gray_frames(path: str, step: int = 1) -> list[np.ndarray]:
    cap = cv2.VideoCapture(path)
    frames, k = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if k % step == 0:
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
        k += 1
    cap.release()
    return frames


def zfov_focal(path: str, width: int, height: int) -> float:
    """Equidistant focal (px) from the GPMF diagonal field of view: r = f * theta at the corner."""
    zfov = float(gpmf_values(path, b"ZFOV")[0][0, 0])
    return math.hypot(width, height) / 2 / math.radians(zfov / 2)


def run_estimator(frames: list[np.ndarray], K: np.ndarray, dist: np.ndarray | None, model: str, fps: float,
                  step: int = 1, **kw) -> tuple[np.ndarray, list[float], list[str]]:
    """Delta R per consecutive pair of ``frames`` (identity where the estimator gave None), ms per call, statuses."""
    est = VisualRotationEstimator(K, dist, distortion_model=model, **kw)
    out, ms, status = [], [], []
    for k, img in enumerate(frames):
        t0 = time.perf_counter()
        R = est(img, None, k * step / fps)
        ms.append((time.perf_counter() - t0) * 1e3)
        if k:
            out.append(np.eye(3) if R is None else R)
            status.append(est.last_model if R is not None else est.last_status)
    return np.stack(out), ms, status


def gyro_deltas(stamps: np.ndarray) -> np.ndarray:
    """Camera-body Delta R per frame pair from the raw gyro, via the project's GyroIntegrator."""
    gyro = np.loadtxt(CLIP + "_gyro.csv", delimiter=",", skiprows=2)
    integ = GyroIntegrator(torch.tensor(GOPRO_R_CAM_IMU), horizon=1e9)
    for row in gyro:
        integ.add(row[0] * 1e-6, row[1:4])
    return np.stack([integ.delta_rotation(a, b).numpy() for a, b in itertools.pairwise(stamps.tolist())])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--focal", type=float, default=None, help="focal in px (default: from GPMF ZFOV)")
    ap.add_argument("--pinhole", action="store_true", help="pinhole model instead of equidistant fisheye")
    ap.add_argument("--model", default="auto", choices=("auto", "rotation", "essential"))
    ap.add_argument("--step", type=int, default=1, help="use every step-th frame")
    args = ap.parse_args()
    if not os.path.isfile(CLIP + ".mp4"):
        sys.exit(f"GoPro clip not found at {CLIP}.mp4 (set WHAM_ROS_SHARED)")

    frames = read_gray_frames(CLIP + ".mp4", args.step)
    H, W = frames[0].shape
    fps = cv2.VideoCapture(CLIP + ".mp4").get(cv2.CAP_PROP_FPS)
    f = args.focal or zfov_focal(CLIP + ".mp4", W, H)
    K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]])
    dist_model, dist = ("plumb_bob", None) if args.pinhole else ("equidistant", np.zeros(4))
    print(f"clip {W}x{H}, {len(frames)} frames used (step {args.step}), {fps:.3f} fps; "
          f"{dist_model} f = {f:.1f} px (WHAM fallback sqrt(W^2+H^2) = {math.hypot(W, H):.1f})")

    d_vis, ms, status = run_estimator(frames, K, dist, dist_model, fps, args.step, motion_model=args.model)
    used = {s: status.count(s) for s in sorted(set(status))}
    print(f"estimator: {np.median(ms):.2f} ms/frame median, {np.mean(ms):.2f} mean, {np.percentile(ms, 95):.2f} p95 "
          f"({cv2.getNumThreads()} cv2 threads); results: {used}")

    tracks = orientation_tracks(CLIP + ".mp4")
    stamps = np.loadtxt(CLIP + "_cori.csv", delimiter=",", skiprows=2)[:, 0] * 1e-6
    n = len(d_vis)
    idx = np.arange(0, n * args.step + 1, args.step)           # telemetry rows of the frames used
    dt = args.step / fps
    refs = {name: deltas(R[idx]) for name, R in tracks.items()}
    refs["gyro"] = gyro_deltas(stamps[idx])
    for name, d_ref in refs.items():
        P, r, mag = best_mapping(d_vis, d_ref, dt)
        d_map = P @ d_ref @ P.T
        w_vis, w_ref = rates(d_vis, dt), rates(d_map, dt)
        fin, worst = accumulated_error(d_vis, d_map)
        rms = float(np.sqrt(((w_vis - w_ref) ** 2).sum(1).mean()))
        slope = [float(w_vis[:, k] @ w_ref[:, k] / (w_ref[:, k] @ w_ref[:, k])) for k in range(3)]
        print(f"\nvs {name}: axis mapping image = P * sensor, P = {P.astype(int).tolist()}")
        print(f"  angular velocity r per axis (x, y, z) = {', '.join(f'{v:.3f}' for v in r)}; magnitude r = {mag:.3f}")
        print(f"  RMS |w_vis - w_ref| = {rms:.4f} rad/s (reference RMS {np.sqrt((w_ref ** 2).sum(1).mean()):.4f}); "
              f"gain vis/ref per axis = {', '.join(f'{v:.3f}' for v in slope)}")
        print(f"  accumulated rotation error over {n * dt:.1f} s: final {fin:.2f} deg, max {worst:.2f} deg "
              f"(reference turns {float(angle(np.linalg.multi_dot(list(d_map)))):.1f} deg in total)")


if __name__ == "__main__":
    main()
