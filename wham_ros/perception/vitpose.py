"""ViTPose-H: COCO-17 keypoints of people in given boxes, as the official WHAM demo computes them.

Model: the ViTPose repository's ``ViTPose_huge_coco_256x192.py`` (a ViT-H/16 backbone, then
``TopdownHeatmapSimpleHead``: two stride-2 transposed convolutions, kernel 4, padding 1, no bias,
256 filters, each followed by BatchNorm and ReLU, then a 1x1 convolution to 17 heatmaps). Weights:
``vitpose-h-multi-coco.pth``, an mmcv checkpoint ``{"state_dict": {"backbone.*", "keypoint_head.*"},
"meta": ...}`` (a bare state_dict is accepted too).

Test-time processing of mmpose 0.24's top-down API with that config (``use_udp=True``,
``flip_test=True``, ``shift_heatmap=False``, ``post_process='default'``, ``modulate_kernel=11``):

* box (x1, y1, x2, y2) -> width ``x2 - x1 + 1``, height ``y2 - y1 + 1`` (mmpose's inclusive-pixel
  convention), centre ``(x1 + w/2, y1 + h/2)``; the box is widened or heightened to the input aspect
  ratio 192/256, then enlarged by 1.25; mmpose stores that size divided by ``pixel_std`` 200;
* UDP crop: the affine map sends the enlarged box's edges onto pixel centres 0 and 191 (0 and 255),
  bilinear sampling, black outside the image; RGB, ImageNet mean/std;
* flip test: the mirrored crop is run too, its heatmaps are mirrored back with left/right joints
  swapped and averaged with the first; under UDP no one-pixel heatmap shift is applied;
* decoding: with UDP and Gaussian heatmaps mmpose ignores ``post_process='default'`` (the
  quarter-pixel shift) and refines the arg-max with DARK-UDP: blur by an 11x11 Gaussian, log, one
  Newton step on the log-heatmap; heatmap pixel ``(u, v)`` of the 48x64 map goes back to the image as
  ``centre - size/2 + (u, v) * size / (47, 63)``; confidence is the heatmap maximum before the blur.
"""
from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np
import torch
from torch import nn

from wham_ros.errors import CheckpointError, InputError
from wham_ros.perception.base import box_array, check_rgb
from wham_ros.perception.vit import IMAGENET_MEAN, IMAGENET_STD, VIT_HUGE, VisionTransformer, ViTConfig
from wham_ros.weights import check_and_load, read_file

NUM_JOINTS = 17
#: network input (width, height) and heatmap (width, height), pixels
INPUT_SIZE = (192, 256)
HEATMAP_SIZE = (48, 64)
#: left/right COCO-17 joints that trade places in a mirrored image
COCO_FLIP_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))
PIXEL_STD = 200.0
BOX_PADDING = 1.25
MODULATE_KERNEL = 11


class ViTPoseHead(nn.Module):
    """TopdownHeatmapSimpleHead: features (B, C, 16, 12) -> heatmaps (B, 17, 64, 48).

    ``deconv_layers`` holds [deconv, BN, ReLU, deconv, BN, ReLU] at indices 0..5, as in the
    checkpoint; each deconvolution doubles the resolution exactly (kernel 4, stride 2, padding 1).
    """

    def __init__(self, in_channels: int = 1280, num_joints: int = NUM_JOINTS, filters: int = 256) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for channels in (in_channels, filters):
            layers += [nn.ConvTranspose2d(channels, filters, kernel_size=4, stride=2, padding=1, output_padding=0,
                                          bias=False),
                       nn.BatchNorm2d(filters),
                       nn.ReLU(inplace=True)]
        self.deconv_layers = nn.Sequential(*layers)
        self.final_layer = nn.Conv2d(filters, num_joints, kernel_size=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.deconv_layers(features))


class ViTPose(nn.Module):
    """Person crop (B, 3, 256, 192), ImageNet-normalised RGB -> heatmaps (B, 17, 64, 48).

    cfg: backbone size; :data:`~wham_ros.perception.vit.VIT_HUGE` for the official ViTPose-H
    (smaller ones only for tests). State-dict names equal the official checkpoint's.
    """

    def __init__(self, cfg: ViTConfig = VIT_HUGE, num_joints: int = NUM_JOINTS) -> None:
        super().__init__()
        self.backbone = VisionTransformer(cfg)
        self.keypoint_head = ViTPoseHead(cfg.embed_dim, num_joints)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.keypoint_head(self.backbone(image))


def load_vitpose(path: str, device: str | torch.device = "cpu", cfg: ViTConfig = VIT_HUGE) -> ViTPose:
    """The official ViTPose-H (``vitpose-h-multi-coco.pth``) in eval mode on ``device``.

    Every backbone and head entry must be present, finite and of the right shape, and nothing else
    may be in the state_dict; otherwise :class:`CheckpointError` names the file and the keys.
    """
    content = read_file(path)
    state_dict = content.get("state_dict", content) if isinstance(content, Mapping) else content
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(f"{path}: expected a state_dict (a dict of tensors, or a dict with 'state_dict'), "
                              f"found {type(state_dict).__name__}")
    # checkpoints saved from a DataParallel wrapper carry this prefix; mmcv strips it the same way
    if state_dict and all(isinstance(k, str) and k.startswith("module.") for k in state_dict):
        state_dict = {k[len("module."):]: v for k, v in state_dict.items()}
    with torch.device("meta"):
        model = ViTPose(cfg)
    check_and_load(model, state_dict, path, what="ViTPose-H")
    return model.to(device).eval()


def box_to_center_scale(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Person boxes (N, 4) x1, y1, x2, y2 -> centre (N, 2) and enlarged size (N, 2) in pixels, float32.

    The size is mmpose's ``scale * pixel_std``: the box at the 192:256 aspect ratio, times 1.25.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    size = boxes[:, 2:] - boxes[:, :2] + 1.0
    center = boxes[:, :2] + 0.5 * size
    aspect = INPUT_SIZE[0] / INPUT_SIZE[1]
    w, h = size[:, 0], size[:, 1]
    w, h = np.where(w > aspect * h, w, h * aspect), np.where(w > aspect * h, w / aspect, h)
    # mmpose divides by pixel_std in float32 and multiplies back; keep its rounding
    scale = np.stack((w / PIXEL_STD, h / PIXEL_STD), axis=1).astype(np.float32) * np.float32(BOX_PADDING)
    return center.astype(np.float32), scale * np.float32(PIXEL_STD)


def warp_matrix(center: np.ndarray, size: np.ndarray) -> np.ndarray:
    """UDP affine maps (N, 2, 3) from image pixels to crop pixels (float32, as mmpose's get_warp_matrix).

    The enlarged box's left/right (top/bottom) edges land on crop pixel centres 0 and 191 (0 and 255).
    """
    center, size = np.asarray(center, np.float32).reshape(-1, 2), np.asarray(size, np.float32).reshape(-1, 2)
    gain = (np.array(INPUT_SIZE, np.float32) - 1.0) / size
    matrix = np.zeros((len(center), 2, 3), np.float32)
    matrix[:, 0, 0], matrix[:, 1, 1] = gain[:, 0], gain[:, 1]
    matrix[:, :, 2] = gain * (0.5 * size - center)
    return matrix


def crop_people(rgb: np.ndarray, center: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Crops (N, 256, 192, 3) uint8 of ``rgb`` (H, W, 3) by :func:`warp_matrix`, black outside the image."""
    crops = np.zeros((len(center), INPUT_SIZE[1], INPUT_SIZE[0], 3), np.uint8)
    for crop, matrix in zip(crops, warp_matrix(center, size)):
        cv2.warpAffine(rgb, matrix, INPUT_SIZE, dst=crop, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                       borderValue=0)
    return crops


def normalise(crops: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """Crops (N, 256, 192, 3) uint8 RGB -> network input (N, 3, 256, 192) float32, ImageNet mean/std."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).to(device).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    return (x - mean) / std


def flip_heatmaps(heatmaps: torch.Tensor) -> torch.Tensor:
    """Heatmaps of a mirrored crop (B, 17, H, W) -> heatmaps of the crop: mirror x, swap left/right joints."""
    order = list(range(heatmaps.shape[1]))
    for left, right in COCO_FLIP_PAIRS:
        order[left], order[right] = right, left
    return heatmaps.flip(-1)[:, order]


def decode_heatmaps(heatmaps: np.ndarray, kernel: int = MODULATE_KERNEL) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps (N, K, H, W) -> sub-pixel peaks (N, K, 2) [u, v] in heatmap pixels and maxima (N, K).

    Arg-max, then DARK-UDP: one Newton step on the log of the Gaussian-blurred heatmap, from finite
    differences at the arg-max (edge-replicated at the border). A map whose maximum is not positive has
    no peak: it is reported at (-1, -1) without refinement (mmpose's arg-max gives (-1, -1) too, which its
    refinement then moves; the confidence is <= 0 either way, so the keypoint is masked).
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    n, k, h, w = heatmaps.shape
    if n * k == 0:
        return np.zeros((n, k, 2)), np.zeros((n, k), np.float32)
    flat = heatmaps.reshape(n, k, -1)
    index, maxvals = flat.argmax(-1), flat.max(-1)
    peaks = np.stack((index % w, index // w), axis=-1).astype(np.float64)

    blurred = np.stack([cv2.GaussianBlur(m, (kernel, kernel), 0) for m in heatmaps.reshape(-1, h, w)])
    # the log turns a Gaussian into a quadratic, whose peak one Newton step finds exactly
    log = np.log(np.clip(blurred, 0.001, 50.0)).astype(np.float64)
    log = np.pad(log, ((0, 0), (1, 1), (1, 1)), mode="edge")
    rows = np.arange(n * k)
    # arg-max in the padded maps
    u, v = index.reshape(-1) % w + 1, index.reshape(-1) // w + 1
    at = lambda du, dv: log[rows, v + dv, u + du]
    grad = np.stack((0.5 * (at(1, 0) - at(-1, 0)), 0.5 * (at(0, 1) - at(0, -1))), axis=-1)
    dxx = at(1, 0) - 2 * at(0, 0) + at(-1, 0)
    dyy = at(0, 1) - 2 * at(0, 0) + at(0, -1)
    dxy = 0.5 * (at(1, 1) - at(1, 0) - at(0, 1) + 2 * at(0, 0) - at(-1, 0) - at(0, -1) + at(-1, -1))
    hessian = np.stack((np.stack((dxx, dxy), -1), np.stack((dxy, dyy), -1)), -2)
    # mmpose regularises the Hessian by float32 epsilon so that a flat neighbourhood stays invertible
    hessian = hessian + np.finfo(np.float32).eps * np.eye(2)
    step = np.linalg.solve(hessian, grad[..., None])[..., 0].reshape(n, k, 2)
    peaks = np.where(maxvals[..., None] > 0, peaks - step, -1.0)
    return peaks, maxvals


def heatmap_to_image(peaks: np.ndarray, center: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Heatmap pixels (N, K, 2) -> image pixels (N, K, 2) for boxes of ``center``/``size`` (N, 2), UDP.

    Heatmap pixel centres 0 and 47 (0 and 63) are the enlarged box's edges.
    """
    center, size = np.asarray(center).reshape(-1, 1, 2), np.asarray(size).reshape(-1, 1, 2)
    gain = size / (np.array(HEATMAP_SIZE, np.float64) - 1.0)
    return np.asarray(peaks) * gain + center - 0.5 * size


class ViTPoseEstimator:
    """COCO-17 keypoints of people in given boxes with ViTPose, as the official WHAM demo.

    model: a loaded :class:`ViTPose` (see :func:`load_vitpose` / :meth:`from_checkpoint`); it runs in
    float32 on its own device. flip_test: also run the mirrored crops and average (official: on).
    """

    def __init__(self, model: ViTPose, flip_test: bool = True) -> None:
        self.model = model.eval()
        self.flip_test = flip_test
        self.device = next(model.parameters()).device

    @classmethod
    def from_checkpoint(cls, path: str, device: str | torch.device = "cpu", flip_test: bool = True
                        ) -> ViTPoseEstimator:
        """Loads ``vitpose-h-multi-coco.pth`` (:func:`load_vitpose`)."""
        return cls(load_vitpose(path, device), flip_test=flip_test)

    @torch.inference_mode()
    def heatmaps(self, crops: np.ndarray) -> torch.Tensor:
        """Crops (N, 256, 192, 3) uint8 RGB -> heatmaps (N, 17, 64, 48), flip-averaged when enabled."""
        x = normalise(crops, self.device)
        if not self.flip_test:
            return self.model(x).float()
        # one batch for both views: the crops and their mirror images
        out = self.model(torch.cat((x, x.flip(-1)))).float()
        return 0.5 * (out[:len(x)] + flip_heatmaps(out[len(x):]))

    def __call__(self, rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Keypoints (N, 17, 3) float32 [x, y, confidence] in ``rgb`` pixels, COCO-17 order.

        rgb: (H, W, 3) uint8 RGB. boxes: (N, 4) x1, y1, x2, y2 pixels, all people of this image (one
        forward pass); parts outside the image are seen as black. Raises :class:`InputError` (a
        ValueError) for a wrong image, or a box that is not finite or has no width or no height.
        """
        check_rgb(rgb, "ViTPose")
        boxes = box_array(boxes, 4, "ViTPose", "x1, y1, x2, y2")
        bad = ~np.isfinite(boxes).all(1) | (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"box {i} {boxes[i].tolist()} is not finite or has no width or height "
                             f"({int(bad.sum())} bad boxes)")
        if len(boxes) == 0:
            return np.zeros((0, NUM_JOINTS, 3), np.float32)
        center, size = box_to_center_scale(boxes)
        heatmaps = self.heatmaps(crop_people(np.ascontiguousarray(rgb), center, size)).cpu().numpy()
        peaks, maxvals = decode_heatmaps(heatmaps)
        xy = heatmap_to_image(peaks, center, size)
        return np.concatenate((xy, maxvals[..., None]), axis=-1).astype(np.float32)
