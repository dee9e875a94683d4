"""Causal builders of WHAM's per-frame and per-track inputs from 2D keypoints.

Everything here uses the current and past frames only. The official demo's box
is a 15-frame *centred* median (7 frames of look-ahead at 30 fps); the online
replacement is :class:`CausalBoxFilter`, a median over the last ``window`` boxes.
"""
from __future__ import annotations

import math
from collections import deque

import torch

from wham_ros.geometry.gravity import init_root as make_init_root
from wham_ros.geometry.rotations import matrix_to_rot6d
from wham_ros.model.body_model import BodyModel
from wham_ros.model.flip import COCO_FLIP_PERM
from wham_ros.stream.state import FrameInput, TrackInit

#: keypoints with confidence below this are masked (official ``KEYPOINTS_THR``)
KEYPOINT_THRESHOLD = 0.3
#: box side = this factor x the extent of the confident keypoints
BOX_SCALE = 1.2


def box_from_keypoints(keypoints: torch.Tensor, threshold: float = KEYPOINT_THRESHOLD,
                       scale: float = BOX_SCALE) -> torch.Tensor | None:
    """Square box [cx, cy, s] (side 200*s px) around keypoints (17, 3) [x, y, conf].

    Uses keypoints with conf > ``threshold``; None when fewer than two qualify.
    """
    kp = torch.as_tensor(keypoints, dtype=torch.float64)
    good = kp[:, 2] > threshold
    if int(good.sum()) < 2:
        return None
    xy = kp[good, :2]
    lo, hi = xy.min(0).values, xy.max(0).values
    centre = (lo + hi) / 2
    side = float((hi - lo).max()) * scale
    if side <= 0:
        return None
    return torch.tensor([float(centre[0]), float(centre[1]), side / 200.0], dtype=torch.float64)


class CausalBoxFilter:
    """Per-component median over the last ``window`` boxes (window 1 = no smoothing)."""

    def __init__(self, window: int = 5) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self._boxes: deque[torch.Tensor] = deque(maxlen=window)

    def __call__(self, box: torch.Tensor) -> torch.Tensor:
        self._boxes.append(torch.as_tensor(box, dtype=torch.float64))
        return torch.stack(tuple(self._boxes)).median(0).values

    def reset(self) -> None:
        self._boxes.clear()


def normalize_keypoints(keypoints: torch.Tensor, bbox: torch.Tensor, res: tuple[float, float],
                        threshold: float = KEYPOINT_THRESHOLD) -> tuple[torch.Tensor, torch.Tensor]:
    """Network input x (..., 37) and mask (..., 17) from keypoints (..., 17, 3) px and box (..., 3).

    u = (x - cx) / (100 s), v = (y - cy) / (100 s) (the box maps to [-1, 1]); then the box
    location ((2 cx - W) / m, (2 cy - H) / m, 200 s / m) with m = max(W, H).
    mask is True where conf < ``threshold``.
    """
    kp = torch.as_tensor(keypoints, dtype=torch.float64)
    box = torch.as_tensor(bbox, dtype=torch.float64)
    W, H = float(res[0]), float(res[1])
    m = max(W, H)
    half = 100.0 * box[..., 2:3]
    uv = (kp[..., :2] - box[..., None, :2]) / half[..., None]
    loc = torch.stack(((2 * box[..., 0] - W) / m, (2 * box[..., 1] - H) / m, 200.0 * box[..., 2] / m), -1)
    x = torch.cat((uv.flatten(-2), loc), -1).to(torch.float32)
    return x, kp[..., 2] < threshold


def flip_keypoints(keypoints: torch.Tensor, width: float) -> torch.Tensor:
    """Mirror keypoints (..., 17, 3): swap left/right and x -> W - x (as the demo does, not W - 1 - x)."""
    kp = torch.as_tensor(keypoints).clone()[..., list(COCO_FLIP_PERM), :]
    kp[..., 0] = width - kp[..., 0]
    return kp


def flip_bbox(bbox: torch.Tensor, width: float) -> torch.Tensor:
    """Mirror a box (..., 3): cx -> W - cx."""
    box = torch.as_tensor(bbox).clone()
    box[..., 0] = width - box[..., 0]
    return box


def official_focal(width: float, height: float) -> float:
    """The focal length the official demo uses for every video: sqrt(W^2 + H^2)."""
    return math.sqrt(width * width + height * height)


def initial_inputs(body_model: BodyModel, global_orient: torch.Tensor, body_pose: torch.Tensor,
                   betas: torch.Tensor, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(init_kp (88,), init_smpl (24, 6)) from the initial body and frame 0's *unmasked* x (37,).

    global_orient (3, 3) camera-frame root, body_pose (23, 3, 3), betas (10,).
    init_kp = hip-centred 3D COCO-17 joints of that body (51) + x0.
    """
    p = next(body_model.buffers())
    go = torch.as_tensor(global_orient, dtype=p.dtype).reshape(1, 1, 3, 3).to(p.device)
    bp = torch.as_tensor(body_pose, dtype=p.dtype).reshape(1, 23, 3, 3).to(p.device)
    b = torch.as_tensor(betas, dtype=p.dtype).reshape(1, 10).to(p.device)
    with torch.no_grad():
        joints = body_model.get_joints(go, bp, b).joints[0, :17].cpu()
    init_kp = torch.cat((joints.reshape(-1), torch.as_tensor(x0, dtype=torch.float32).reshape(37)))
    init_smpl = matrix_to_rot6d(torch.cat((go, bp), 1)[0].cpu())
    return init_kp.to(torch.float32), init_smpl.to(torch.float32)


def make_track_init(body_model: BodyModel, global_orient: torch.Tensor, body_pose: torch.Tensor,
                    betas: torch.Tensor, x0: torch.Tensor, *, R_world_cam: torch.Tensor | None = None,
                    flipped: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
                    use_features: bool = True) -> TrackInit:
    """A :class:`TrackInit` from the first frame's body estimate (e.g. HMR2.0's).

    ``R_world_cam``: gravity alignment of the first camera (see ``geometry.gravity``);
    None gives the official demo's first-camera world. ``flipped``: (global_orient,
    body_pose, betas, x0) of the mirrored first frame, for flip evaluation.
    """
    init_kp, init_smpl = initial_inputs(body_model, global_orient, body_pose, betas, x0)
    root = make_init_root(torch.as_tensor(global_orient, dtype=torch.float32).reshape(3, 3), R_world_cam)
    f_kp = f_smpl = None
    if flipped is not None:
        f_kp, f_smpl = initial_inputs(body_model, *flipped)
    return TrackInit(init_kp, init_smpl, root.to(torch.float32), f_kp, f_smpl, use_features)


class TrackInputBuilder:
    """Turns one track's per-frame keypoints into :class:`FrameInput` causally.

    res (W, H) px; focal in px (default: the official sqrt(W^2 + H^2)); principal
    point (default: image centre, as the official code); box_window: causal median.
    """

    def __init__(self, res: tuple[float, float], focal: float | None = None,
                 principal: tuple[float, float] | None = None, box_window: int = 5,
                 flip_eval: bool = False, threshold: float = KEYPOINT_THRESHOLD) -> None:
        self.res = (float(res[0]), float(res[1]))
        self.focal = official_focal(*self.res) if focal is None else float(focal)
        self.principal = None if principal is None else torch.tensor(principal, dtype=torch.float32)
        self.flip_eval, self.threshold = flip_eval, threshold
        self._filter = CausalBoxFilter(box_window)
        self.last_box: torch.Tensor | None = None

    def box(self, keypoints: torch.Tensor) -> torch.Tensor | None:
        """Smoothed box for this frame's keypoints; the previous box when too few are confident."""
        raw = box_from_keypoints(keypoints, self.threshold)
        if raw is not None:
            self.last_box = self._filter(raw)
        return self.last_box

    def frame(self, keypoints: torch.Tensor, cam_angvel: torch.Tensor, feature: torch.Tensor | None = None,
              flipped_feature: torch.Tensor | None = None) -> FrameInput | None:
        """FrameInput for keypoints (17, 3) px; None until a box can be formed."""
        box = self.box(keypoints)
        if box is None:
            return None
        x, mask = normalize_keypoints(keypoints, box, self.res, self.threshold)
        frame = FrameInput(x=x, mask=mask, cam_angvel=torch.as_tensor(cam_angvel, dtype=torch.float32),
                           bbox=box.to(torch.float32), focal=self.focal, res=torch.tensor(self.res),
                           feature=feature, principal=self.principal)
        if self.flip_eval:
            fx, fmask = normalize_keypoints(flip_keypoints(keypoints, self.res[0]), flip_bbox(box, self.res[0]),
                                            self.res, self.threshold)
            frame.flipped_x, frame.flipped_mask, frame.flipped_feature = fx, fmask, flipped_feature
        return frame


def demo_boxes(keypoints: torch.Tensor, fps: float, threshold: float = KEYPOINT_THRESHOLD) -> torch.Tensor:
    """The official demo's boxes (T, 3) for a whole track: **non-causal**, for offline parity only.

    Per-frame keypoint boxes, then a centred median over k = 2*floor(floor(fps/2)/2)+1
    frames with zero padding at both ends (``scipy.signal.medfilt`` semantics), which
    looks floor(k/2) frames ahead. Frames without a box must not occur (the demo drops
    detections with fewer than 6 confident joints).
    """
    boxes = []
    for t, kp in enumerate(torch.as_tensor(keypoints)):
        b = box_from_keypoints(kp, threshold)
        if b is None:
            raise ValueError(f"frame {t}: fewer than two keypoints above {threshold}")
        boxes.append(b)
    raw = torch.stack(boxes)
    k = 2 * ((int(fps) // 2) // 2) + 1
    pad = torch.zeros(k // 2, 3, dtype=raw.dtype)
    padded = torch.cat((pad, raw, pad))
    return padded.unfold(0, k, 1).median(-1).values
