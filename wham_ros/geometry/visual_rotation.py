"""Camera rotation between consecutive frames from the images alone, for cameras with no gyro or TF.

Background corners are tracked with pyramidal Lucas-Kanade (forward-backward checked),
people's boxes are kept out, and the tracks are turned into unit bearings with the
intrinsics (pinhole, plumb_bob / rational or equidistant fisheye). Two robust fits follow:
a pure rotation (RANSAC over two-point rotation fits, then Kabsch least squares on the
inliers) and an essential matrix (OpenCV USAC), whose rotation part is used when the
pure rotation leaves many points unexplained. A walking camera translates, and near
points (bushes, walls) then carry parallax that consistently biases a rotation-only fit:
on the real GoPro clip it read 0.25 rad/s of rotation for a stretch with none.

The result follows ``cam_angvel`` (docs §2.8): Delta R = R_wc(a)^T R_wc(b) takes
camera-b (current frame) coordinates into camera-a (previous frame) coordinates, in
the optical frame (x right, y down, z forward). For a point at infinity with bearing
f_a in the previous image and f_b in the current one, f_a = Delta R f_b.
Feed it to :func:`wham_ros.geometry.camera_motion.angvel_from_delta` with ``last_dt``.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

DISTORTION_MODELS = ("plumb_bob", "rational_polynomial", "equidistant")


def _check_intrinsics(K: np.ndarray, dist: np.ndarray | None, model: str) -> tuple[np.ndarray, np.ndarray | None]:
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"K must be a 3x3 matrix, got shape {K.shape}")
    if not np.isfinite(K).all():
        raise ValueError("K contains NaN or inf")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"K focal lengths must be positive, got fx={K[0, 0]}, fy={K[1, 1]}")
    if not np.allclose(K[2], (0.0, 0.0, 1.0)) or K[1, 0] != 0:
        raise ValueError("K must be upper triangular with last row [0, 0, 1]")
    if model not in DISTORTION_MODELS:
        raise ValueError(f"unknown distortion model {model!r} (use one of {DISTORTION_MODELS})")
    if dist is None:
        return K, None
    d = np.asarray(dist, dtype=np.float64).reshape(-1)
    if not np.isfinite(d).all():
        raise ValueError("distortion coefficients contain NaN or inf")
    allowed = (4,) if model == "equidistant" else (4, 5, 8, 12, 14)
    if d.size not in allowed:
        raise ValueError(f"{model} distortion needs {' or '.join(map(str, allowed))} coefficients, got {d.size}")
    # all-zero plumb_bob/rational coefficients are the pinhole model (skipping undistortion saves its iterations);
    # all-zero equidistant coefficients still mean r = f * theta, a different projection
    return K, (d if np.any(d) or model == "equidistant" else None)


def _angle(R: np.ndarray) -> float:
    return float(np.arccos(np.clip((np.trace(R) - 1) / 2, -1.0, 1.0)))


def kabsch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation(s) R minimising sum |a_i - R b_i|^2; a, b (..., M, 3) -> (..., 3, 3)."""
    M = np.swapaxes(a, -1, -2) @ b
    U, _, Vt = np.linalg.svd(M)
    # flip the weakest direction when the best orthogonal fit is a reflection
    d = np.sign(np.linalg.det(U @ Vt))
    U[..., :, 2] *= d[..., None]
    return U @ Vt


class VisualRotationEstimator:
    """Frame-to-frame camera rotation Delta R from a monocular image stream.

    Call once per frame with the image, the people's boxes to keep out and the stamp;
    it returns Delta R (3, 3, float64: previous-frame <- current-frame coordinates) or
    None, with the reason in ``last_status``. ``last_dt`` is the time between the two
    frames of the last result, ``last_inliers`` / ``last_tracks`` describe the fit.

    Args:
        K: 3x3 intrinsics of the images that will be passed in (full resolution).
        dist: distortion coefficients (OpenCV order) or None for a pinhole camera.
        distortion_model: ``plumb_bob`` / ``rational_polynomial`` (cv2.undistortPoints)
            or ``equidistant`` (cv2.fisheye, 4 coefficients), as in sensor_msgs/CameraInfo.
        work_width: images wider than this are downscaled for tracking (speed); points
            are mapped back to full resolution before undistortion.
        max_features: corners kept in flight; ``redetect_below`` of them triggers a new detection.
        inlier_px: RANSAC inlier threshold, in full-resolution pixels at the focal length.
        min_inliers: fewer inliers than this is a failed fit.
        box_margin: fraction of a box's width/height added on each side before masking
            (detector boxes are tight and limbs stray out of them).
        max_dt: a longer gap between frames drops the tracks and restarts.
        ransac_iters: two-point hypotheses drawn for the rotation-only fit.
        seed: RANSAC sampling seed (deterministic results).
        motion_model: ``rotation`` (pure rotation fit), ``essential`` (rotation part of an
            essential-matrix fit, which absorbs the parallax of a translating camera) or
            ``auto``: both, keeping the rotation-only fit when it explains at least
            ``auto_ratio`` of the essential fit's inliers (e.g. a static tripod or far scene,
            where the essential matrix is degenerate). ``last_model`` says which was used.
        max_rotation_deg: a larger frame-to-frame rotation from the essential fit is rejected.
    """

    def __init__(self, K: np.ndarray, dist: np.ndarray | None = None, *, distortion_model: str = "plumb_bob",
                 work_width: int = 640, max_features: int = 300, redetect_below: int = 150,
                 inlier_px: float = 0.75, min_inliers: int = 20, ransac_iters: int = 100,
                 box_margin: float = 0.1, max_dt: float = 0.5, seed: int = 0, motion_model: str = "auto",
                 auto_ratio: float = 0.95, max_rotation_deg: float = 30.0) -> None:
        self.K, self.dist = _check_intrinsics(K, dist, distortion_model)
        self.distortion_model = distortion_model
        if work_width < 64 or max_features < 8 or not 0 < redetect_below <= max_features:
            raise ValueError("need work_width >= 64, max_features >= 8 and 0 < redetect_below <= max_features")
        if not (inlier_px > 0 and min_inliers >= 3 and ransac_iters >= 1 and box_margin >= 0 and max_dt > 0):
            raise ValueError("inlier_px, max_dt must be > 0; min_inliers >= 3; ransac_iters >= 1; box_margin >= 0")
        self.work_width, self.max_features, self.redetect_below = int(work_width), int(max_features), redetect_below
        self.min_inliers, self.ransac_iters = min_inliers, ransac_iters
        self.box_margin, self.max_dt = box_margin, max_dt
        if motion_model not in ("auto", "rotation", "essential"):
            raise ValueError(f"unknown motion_model {motion_model!r} (use 'auto', 'rotation' or 'essential')")
        # angular threshold: pixels over the focal, as chord length between unit bearings
        self.inlier_rad = float(inlier_px) / float(math.sqrt(self.K[0, 0] * self.K[1, 1]))
        self._seed = seed
        self.motion_model, self.auto_ratio, self.max_rotation = motion_model, auto_ratio, math.radians(max_rotation_deg)
        self._lk = {"winSize": (21, 21), "maxLevel": 3,
                    "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)}
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame and all tracks (the next call is a first frame)."""
        self._rng = np.random.default_rng(self._seed)
        self._prev_img: np.ndarray | None = None
        self._prev_pts = np.empty((0, 1, 2), np.float32)      # working-image pixels
        self._prev_stamp: float | None = None
        self._shape: tuple[int, int] | None = None
        self.last_status = "no frame yet"
        self.last_dt: float | None = None
        self.last_inliers = 0
        self.last_tracks = 0
        self.last_model = "none"

    # --- input handling -------------------------------------------------------------

    def _gray(self, image: np.ndarray) -> np.ndarray:
        if not isinstance(image, np.ndarray):
            raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
        if image.dtype != np.uint8:
            raise ValueError(f"image must be uint8, got {image.dtype}")
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[..., 0]
        if image.ndim == 3 and image.shape[2] == 3:
            # channel order barely matters for corner tracking, so RGB and BGR are both fine
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if image.ndim != 2:
            raise ValueError(f"image must be HxW, HxWx1 or HxWx3, got shape {image.shape}")
        H, W = image.shape
        if H < 32 or W < 32:
            raise ValueError(f"image {W}x{H} is too small")
        if not (0 < self.K[0, 2] < W and 0 < self.K[1, 2] < H):
            raise ValueError(f"principal point ({self.K[0, 2]:.1f}, {self.K[1, 2]:.1f}) lies outside the "
                             f"{W}x{H} image: K does not belong to this resolution")
        if self._shape is not None and (H, W) != self._shape:
            raise ValueError(f"image size changed from {self._shape[1]}x{self._shape[0]} to {W}x{H}; "
                             "K belongs to one resolution (call reset() with a new estimator)")
        self._shape = (H, W)
        self._scale = min(1.0, self.work_width / W)
        if self._scale < 1.0:
            size = (round(W * self._scale), round(H * self._scale))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(image)

    @staticmethod
    def _boxes(mask_boxes: np.ndarray | None) -> np.ndarray:
        if mask_boxes is None:
            return np.empty((0, 4))
        b = np.asarray(mask_boxes, dtype=np.float64)
        if b.size == 0:
            return np.empty((0, 4))
        if b.ndim != 2 or b.shape[1] != 4:
            raise ValueError(f"mask_boxes must be (N, 4) xyxy, got shape {b.shape}")
        if not np.isfinite(b).all():
            raise ValueError("mask_boxes contain NaN or inf")
        if (b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any():
            raise ValueError("mask_boxes must be x1, y1, x2, y2 with x2 >= x1 and y2 >= y1")
        return b

    def _work_boxes(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes enlarged by the margin, in working-image pixels."""
        wh = boxes[:, 2:] - boxes[:, :2]
        grown = np.concatenate((boxes[:, :2] - self.box_margin * wh, boxes[:, 2:] + self.box_margin * wh), 1)
        return grown * self._scale

    @staticmethod
    def _outside(pts: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        p = pts.reshape(-1, 2)
        inside = ((p[:, None, 0] >= boxes[None, :, 0]) & (p[:, None, 0] <= boxes[None, :, 2])
                  & (p[:, None, 1] >= boxes[None, :, 1]) & (p[:, None, 1] <= boxes[None, :, 3]))
        return ~inside.any(1)

    # --- tracking -------------------------------------------------------------------

    def _detect(self, img: np.ndarray, boxes: np.ndarray, existing: np.ndarray) -> np.ndarray:
        need = self.max_features - len(existing)
        if need <= 0:
            return existing
        mask = np.full(img.shape, 255, np.uint8)
        for x1, y1, x2, y2 in boxes:
            mask[max(int(y1), 0): max(math.ceil(y2) + 1, 0), max(int(x1), 0): max(math.ceil(x2) + 1, 0)] = 0
        min_dist = max(4, round(min(img.shape) / 40))
        for x, y in existing.reshape(-1, 2):
            cv2.circle(mask, (round(float(x)), round(float(y))), min_dist, 0, -1)
        new = cv2.goodFeaturesToTrack(img, need, 0.01, min_dist, mask=mask, blockSize=7)
        if new is None:
            return existing
        return np.concatenate((existing, new.astype(np.float32)), 0)

    def _track(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(previous, current) working-image points of the tracks that survive both directions."""
        p0 = self._prev_pts
        if len(p0) == 0:
            return p0, p0
        p1, st, _ = cv2.calcOpticalFlowPyrLK(self._prev_img, img, p0, None, **self._lk)
        back, st_b, _ = cv2.calcOpticalFlowPyrLK(img, self._prev_img, p1, None, **self._lk)
        h, w = img.shape
        fb = np.linalg.norm((back - p0).reshape(-1, 2), axis=1)
        q = p1.reshape(-1, 2)
        ok = ((st.ravel() == 1) & (st_b.ravel() == 1) & (fb < 0.5)
              & (q[:, 0] >= 0) & (q[:, 0] <= w - 1) & (q[:, 1] >= 0) & (q[:, 1] <= h - 1))
        return p0[ok], p1[ok]

    def _bearings(self, pts: np.ndarray) -> np.ndarray:
        """Unit bearings (M, 3) of working-image points, through the full-resolution intrinsics."""
        full = (pts.reshape(-1, 1, 2) / self._scale).astype(np.float64)
        if self.dist is None:
            Kinv = np.linalg.inv(self.K)
            xy = full.reshape(-1, 2) @ Kinv[:2, :2].T + Kinv[:2, 2]
        elif self.distortion_model == "equidistant":
            xy = cv2.fisheye.undistortPoints(full, self.K, self.dist).reshape(-1, 2)
        else:
            xy = cv2.undistortPoints(full, self.K, self.dist).reshape(-1, 2)
        f = np.concatenate((xy, np.ones((len(xy), 1))), 1)
        return f / np.linalg.norm(f, axis=1, keepdims=True)

    # --- robust rotation fit --------------------------------------------------------

    def _fit(self, fa: np.ndarray, fb: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, str]:
        M = len(fa)
        n = self.ransac_iters
        i = self._rng.integers(0, M, n)
        j = self._rng.integers(0, M, n)
        # pairs of nearly the same bearing leave the roll about that bearing free
        good = np.linalg.norm(fb[i] - fb[j], axis=1) > 20 * self.inlier_rad
        if not good.any():
            return None, np.zeros(M, bool), "degenerate: tracked points are too close together"
        i, j = i[good], j[good]
        R = kabsch(np.stack((fa[i], fa[j]), 1), np.stack((fb[i], fb[j]), 1))       # (n, 3, 3)
        res = np.linalg.norm(fa[None] - np.einsum("nij,mj->nmi", R, fb), axis=2)   # (n, M)
        # MSAC score: inliers count by how well they fit, so ties favour the tighter model
        score = np.minimum(res, self.inlier_rad) ** 2
        best = int(np.argmin(score.sum(1)))
        inl = res[best] < self.inlier_rad
        R_best = R[best]
        for _ in range(3):
            if inl.sum() < 3:
                break
            R_best = kabsch(fa[inl], fb[inl])
            new = np.linalg.norm(fa - fb @ R_best.T, axis=1) < self.inlier_rad
            if (new == inl).all():
                break
            inl = new
        if inl.sum() < self.min_inliers:
            return None, inl, f"too few inliers ({int(inl.sum())} of {M} tracks, need {self.min_inliers})"
        spread = np.linalg.norm(fb[inl] - fb[inl].mean(0), axis=1).mean()
        if spread < 20 * self.inlier_rad:
            return None, inl, f"degenerate: inliers span only {math.degrees(spread):.2f} deg"
        return R_best, inl, "ok"

    def _fit_essential(self, fa: np.ndarray, fb: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, str]:
        """Rotation part of a robust essential-matrix fit: near points' parallax is explained by the translation."""
        front = (fa[:, 2] > 0.1) & (fb[:, 2] > 0.1)          # the plane z = 1 cannot hold bearings at 90 degrees
        inl = np.zeros(len(fa), bool)
        if front.sum() < max(self.min_inliers, 5):
            return None, inl, f"too few tracks in front of the camera for the essential fit ({int(front.sum())})"
        xa, xb = fa[front, :2] / fa[front, 2:], fb[front, :2] / fb[front, 2:]
        # USAC's local optimisation and final refinement make the rotation several times less noisy than plain RANSAC
        E, m = cv2.findEssentialMat(xa, xb, np.eye(3), method=cv2.USAC_FAST, prob=0.999,
                                    threshold=self.inlier_rad, maxIters=1000)
        if E is None or E.shape != (3, 3) or m is None:
            return None, inl, "essential fit failed"
        inl[front] = m.ravel() > 0
        if inl.sum() < self.min_inliers:
            return None, inl, f"too few essential inliers ({int(inl.sum())}, need {self.min_inliers})"
        R1, R2, _ = cv2.decomposeEssentialMat(E)
        # the two candidates differ by a half turn about the baseline; between frames the small one is the motion
        R = min((R1, R2), key=_angle)
        if _angle(R) > self.max_rotation:
            return None, inl, f"essential fit gave an implausible {math.degrees(_angle(R)):.0f} deg rotation"
        # OpenCV's E maps previous-camera points X_a to X_b = R X_a + t, so b -> a is R^T
        return R.T, inl, "ok"

    def _fit_models(self, fa: np.ndarray, fb: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, str]:
        if self.motion_model == "rotation":
            self.last_model = "rotation"
            return self._fit(fa, fb)
        if self.motion_model == "essential":
            self.last_model = "essential"
            return self._fit_essential(fa, fb)
        rot = self._fit(fa, fb)
        ess = self._fit_essential(fa, fb)
        # a pure rotation that explains (nearly) every point the essential fit does is the better-posed model:
        # without parallax the essential matrix is degenerate
        if rot[0] is not None and (ess[0] is None or rot[1].sum() >= self.auto_ratio * ess[1].sum()):
            self.last_model = "rotation"
            return rot
        self.last_model = "essential" if ess[0] is not None else "none"
        return ess if ess[0] is not None else (None, ess[1], f"{rot[2]}; {ess[2]}")

    # --- public API -----------------------------------------------------------------

    def __call__(self, gray_or_rgb: np.ndarray, mask_boxes: np.ndarray | None, stamp: float) -> np.ndarray | None:
        """Delta R (3, 3) from the previous frame to this one, or None (reason in ``last_status``).

        gray_or_rgb: uint8 HxW or HxWx3 image at the resolution of K. mask_boxes: (N, 4)
        xyxy pixel boxes of people (or anything moving) to exclude; None or empty for none.
        stamp: seconds, strictly increasing.
        """
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError("stamp is NaN or inf")
        if self._prev_stamp is not None and stamp <= self._prev_stamp:
            raise ValueError(f"stamp {stamp:.6f} is not after the previous frame's {self._prev_stamp:.6f}")
        img = self._gray(gray_or_rgb)
        boxes = self._work_boxes(self._boxes(mask_boxes))
        result, status = None, "first frame"
        self.last_dt, self.last_inliers, self.last_tracks = None, 0, 0
        if self._prev_img is not None and stamp - self._prev_stamp > self.max_dt:
            status = f"gap of {stamp - self._prev_stamp:.3f} s since the previous frame; tracks restarted"
            self._prev_pts = self._prev_pts[:0]
        elif self._prev_img is not None:
            p0, p1 = self._track(img)
            keep = self._outside(p1, boxes) if len(boxes) else np.ones(len(p1), bool)
            p0, p1 = p0[keep], p1[keep]
            f0, f1 = self._bearings(p0), self._bearings(p1)
            # an undistortion that does not converge (far outside a fisheye's model) yields no bearing
            finite = np.isfinite(f0).all(1) & np.isfinite(f1).all(1)
            f0, f1 = f0[finite], f1[finite]
            self.last_tracks, self.last_dt = len(f1), stamp - self._prev_stamp
            if len(f1) < self.min_inliers:
                status = f"too few tracked features ({len(f1)}, need {self.min_inliers})"
            else:
                result, inl, status = self._fit_models(f0, f1)
                self.last_inliers = int(inl.sum())
            self._prev_pts = p1
        if len(self._prev_pts) < self.redetect_below:
            self._prev_pts = self._detect(img, boxes, self._prev_pts)
        self._prev_img, self._prev_stamp = img, stamp
        self.last_status = status
        return result
