"""Visual camera rotation: synthetic rotating views with known Delta R, masking, failures, and the real GoPro clip."""
from __future__ import annotations

import math
import os
import sys

import cv2
import numpy as np
import pytest
import torch
from conftest import ROOT, SHARED, require_file

from wham_ros.geometry.camera_motion import angvel_from_delta
from wham_ros.geometry.rotations import axis_angle_to_matrix
from wham_ros.geometry.visual_rotation import VisualRotationEstimator

sys.path.insert(0, os.path.join(ROOT, "bench"))
import visual_rotation_gopro as gopro

W, H, F = 640, 480, 500.0
K = np.array([[F, 0, W / 2], [0, F, H / 2], [0, 0, 1.0]])
CLIP = os.path.join(SHARED, "data", "video_imu", "gopro_max-heromode")


def rot(axis_angle) -> np.ndarray:
    return axis_angle_to_matrix(torch.tensor(axis_angle, dtype=torch.float64)).numpy()


def texture(seed: int, size: tuple[int, int]) -> np.ndarray:
    """Random multi-scale texture: corners at every scale, like foliage or gravel."""
    rng = np.random.default_rng(seed)
    img = np.zeros(size, np.float32)
    for cell in (4, 16, 64):
        small = rng.random((size[0] // cell + 1, size[1] // cell + 1)).astype(np.float32)
        img += cv2.resize(small, size[::-1], interpolation=cv2.INTER_CUBIC)
    img = cv2.GaussianBlur(img, (0, 0), 1.0)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)


PANO_K = np.array([[F, 0, 1000.0], [0, F, 750.0], [0, 0, 1.0]])
PANO = texture(0, (1500, 2000))


def view(R_wc: np.ndarray) -> np.ndarray:
    """The scene at infinity (the texture on a big reference camera's image) seen with orientation R_wc."""
    # pixel x of this camera looks along R_wc K^-1 x in the world, which the reference camera sees at PANO_K of it
    M = PANO_K @ R_wc @ np.linalg.inv(K)
    return cv2.warpPerspective(PANO, M, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)


def angle_deg(R: np.ndarray) -> float:
    return math.degrees(math.acos(np.clip((np.trace(R) - 1) / 2, -1, 1)))


def test_recovers_known_rotations_of_a_scene_at_infinity():
    est = VisualRotationEstimator(K)
    R_wc = np.eye(3)
    assert est(view(R_wc), None, 0.0) is None and est.last_status == "first frame"
    rng = np.random.default_rng(1)
    errs = []
    for k in range(1, 12):
        step = rot(rng.normal(0, 0.02, 3))          # ~2 deg between frames, any axis
        R_next = R_wc @ step
        dR = est(view(R_next), np.empty((0, 4)), k / 30)
        assert dR is not None, est.last_status
        assert est.last_dt == pytest.approx(1 / 30)
        errs.append(angle_deg(dR.T @ step))
        R_wc = R_next
    assert max(errs) < 0.03, f"per-frame rotation errors (deg) {np.round(errs, 4)}"


def test_direction_convention_matches_cam_angvel():
    """Panning right (toward +x, a turn about +y) moves the scene left and gives cam_angvel[2] = +w_y."""
    est = VisualRotationEstimator(K)
    w_y = 0.6                                          # rad/s
    a, b = view(np.eye(3)), view(rot([0.0, w_y / 30, 0.0]))
    shift, _ = cv2.phaseCorrelate(a.astype(np.float32), b.astype(np.float32))
    assert shift[0] < -5                               # the rendering really pans right
    est(a, None, 0.0)
    dR = est(b, None, 1 / 30)
    got = angvel_from_delta(torch.tensor(dR), 1 / 30).numpy()
    want = angvel_from_delta(torch.tensor(rot([0.0, w_y / 30, 0.0])), 1 / 30).numpy()
    np.testing.assert_allclose(got, want, atol=0.01)
    assert got[2] == pytest.approx(w_y, abs=0.01)
    assert abs(got[1]) < 0.01 and abs(got[5]) < 0.01


def _with_patch(img: np.ndarray, patch: np.ndarray, x: int, y: int) -> np.ndarray:
    out = img.copy()
    out[y:y + patch.shape[0], x:x + patch.shape[1]] = patch
    return out


@pytest.mark.parametrize("model", ["auto", "rotation"])
def test_masked_box_with_independent_motion_is_not_used(model):
    """A high-contrast object sliding across the view takes over an unmasked fit; masked, it is ignored."""
    patch = texture(7, (300, 360))
    step = rot([0.0, 0.01, 0.004])
    frames, boxes, R_wc = [], [], np.eye(3)
    for k in range(6):
        x = 40 + 12 * k                                # slides right while the camera turns the other way
        # a dull background leaves most strong corners, hence most tracks, on the object
        dull = (view(R_wc).astype(np.float32) * 0.25 + 96).astype(np.uint8)
        frames.append(_with_patch(dull, patch, x, 90))
        boxes.append(np.array([[x, 90, x + 360, 390]], float))
        R_wc = R_wc @ step

    def errors(mask: bool) -> list[float]:
        est = VisualRotationEstimator(K, motion_model=model)
        out = []
        for k, (img, box) in enumerate(zip(frames, boxes)):
            dR = est(img, box if mask else None, k / 30)
            if mask:
                # no tracked feature may sit inside the enlarged box
                pts = est._prev_pts.reshape(-1, 2) / est._scale
                inside = (pts[:, 0] > box[0, 0]) & (pts[:, 0] < box[0, 2]) & (pts[:, 1] > box[0, 1]) & (
                    pts[:, 1] < box[0, 3])
                assert not inside.any()
            if k:
                out.append(180.0 if dR is None else angle_deg(dR.T @ step))
        return out

    masked, unmasked = errors(True), errors(False)
    assert max(masked) < 0.05, f"masked errors (deg) {masked}"
    assert max(unmasked) > 0.3, f"the patch should have corrupted the unmasked fit, errors {unmasked}"


def test_failures_return_none_with_a_reason():
    est = VisualRotationEstimator(K)
    blank = np.full((H, W), 128, np.uint8)
    assert est(blank, None, 0.0) is None and est.last_status == "first frame"
    assert est(blank, None, 0.033) is None and "too few tracked" in est.last_status
    dots = blank.copy()
    for x, y in [(100, 100), (500, 120), (320, 400), (200, 300)]:
        cv2.circle(dots, (x, y), 6, 255, -1)
    est.reset()
    est(dots, None, 0.0)
    assert est(dots, None, 0.033) is None and "too few" in est.last_status
    est.reset()
    est(view(np.eye(3)), None, 0.0)
    assert est(view(np.eye(3)), None, 2.0) is None and "gap" in est.last_status
    assert est(view(np.eye(3)), None, 2.033) is not None and est.last_status == "ok"
    # a person box over the whole image leaves nothing to track
    est.reset()
    everything = np.array([[0, 0, W, H]], float)
    est(view(np.eye(3)), everything, 0.0)
    assert est(view(np.eye(3)), everything, 0.033) is None and "too few tracked" in est.last_status


def test_bad_inputs_raise():
    img = view(np.eye(3))
    bad_K = K.copy()
    bad_K[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        VisualRotationEstimator(bad_K)
    with pytest.raises(ValueError, match="3x3"):
        VisualRotationEstimator(np.eye(4))
    with pytest.raises(ValueError, match="coefficients"):
        VisualRotationEstimator(K, np.zeros(3))
    with pytest.raises(ValueError, match="distortion model"):
        VisualRotationEstimator(K, distortion_model="kannala")
    with pytest.raises(ValueError, match="motion_model"):
        VisualRotationEstimator(K, motion_model="homography")
    est = VisualRotationEstimator(K)
    with pytest.raises(ValueError, match="uint8"):
        est(img.astype(np.float32), None, 0.0)
    with pytest.raises(ValueError, match="shape"):
        est(np.zeros((H, W, 2), np.uint8), None, 0.0)
    with pytest.raises(ValueError, match="principal point"):
        est(img[:200, :300], None, 0.0)
    with pytest.raises(ValueError, match="mask_boxes"):
        est(img, np.zeros((2, 3)), 0.0)
    with pytest.raises(ValueError, match="NaN"):
        est(img, np.array([[0, 0, np.nan, 5]]), 0.0)
    with pytest.raises(ValueError, match="x2 >= x1"):
        est(img, np.array([[10, 0, 5, 5]]), 0.0)
    with pytest.raises(ValueError, match="NaN"):
        est(img, None, float("nan"))
    est(img, None, 1.0)
    with pytest.raises(ValueError, match="not after"):
        est(img, None, 1.0)
    with pytest.raises(ValueError, match="size changed"):
        est(cv2.resize(img, (600, 460)), None, 2.0)


def test_follows_the_stabilised_image_orientation_of_the_real_gopro_clip():
    """Measured by bench/visual_rotation_gopro.py (full clip): r = 0.996 / 0.999 / 0.994, magnitude 0.999,
    accumulated error 2.6 deg over 10.5 s; against the camera body (CORI) only ~0.5-0.7 (HyperSmooth)."""
    require_file(CLIP + ".mp4", "the GoPro clip")
    frames = gopro.read_gray_frames(CLIP + ".mp4")
    Hc, Wc = frames[0].shape
    f = gopro.zfov_focal(CLIP + ".mp4", Wc, Hc)
    assert 395 < f < 415                                    # 137.4 deg diagonal, equidistant
    Kc = np.array([[f, 0, Wc / 2], [0, f, Hc / 2], [0, 0, 1.0]])
    fps = 30000 / 1001
    d_vis, _, status = gopro.run_estimator(frames, Kc, np.zeros(4), "equidistant", fps)
    assert sum(s in ("rotation", "essential") for s in status) == len(status), set(status)
    tracks = gopro.orientation_tracks(CLIP + ".mp4")
    d_img = gopro.deltas(tracks["image"])[: len(d_vis)]     # image axes = sensor axes (identity mapping)
    r, mag = gopro.correlations(gopro.rates(d_vis, 1 / fps), gopro.rates(d_img, 1 / fps))
    assert min(r) > 0.97 and mag > 0.97, f"per-axis r {r}, magnitude r {mag}"
    final, worst = gopro.accumulated_error(d_vis, d_img)
    assert worst < 5.0, f"accumulated error final {final:.2f} deg, max {worst:.2f} deg"
    r_body, _ = gopro.correlations(gopro.rates(d_vis, 1 / fps), gopro.rates(gopro.deltas(tracks["cori"])[: len(d_vis)],
                                                                           1 / fps))
    assert max(r_body) < 0.9                                # the stabiliser really decouples image and body
