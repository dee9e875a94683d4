"""HMR2.0 (4DHumans): WHAM's 1024-d image feature and first-frame SMPL body, per person crop.

The model is the ViT-H/16 backbone (:mod:`wham_ros.perception.vit`) followed by the SMPL
transformer-decoder head (:mod:`wham_ros.perception.smpl_head`). WHAM's feature is the decoder's
output token before the read-outs; the same run also gives the first-frame body of a track.

Checkpoint: ``checkpoints/hmr2a.ckpt`` (the HMR2.0a weights WHAM ships), a PyTorch-Lightning file whose
``state_dict`` holds ``backbone.*`` and ``smpl_head.*`` (loaded strictly, names and shapes checked)
and training-only entries that are skipped: ``discriminator.*`` (adversarial pose prior), ``smpl.*``
(the SMPL layer's buffers and default-pose parameters) and ``initialized``. A bare state_dict with
the same keys is accepted too.

Lightning also pickles the training config (a ``yacs`` ``CfgNode``) into ``hyper_parameters``. The file is
still read with ``weights_only=True``: that one class is mapped to a plain ``OrderedDict`` holding its
values, so no code from the file runs. Should a file hold other non-tensor globals, the error says so;
then, with 4DHumans installed and a file from a trusted source, keep only the weights once::

    c = torch.load("hmr2a.ckpt", map_location="cpu", weights_only=False)
    torch.save({"state_dict": c["state_dict"]}, "hmr2a_weights.ckpt")

Crop (WHAM's ``process_image``): a square of side 200*s around (cx, cy) with integer-rounded corners and zero
padding, resized bilinearly to 256x256, /255, ImageNet mean/std, CHW; the backbone sees the central 192 columns.
Flip evaluation runs the same model on the horizontally flipped 256x256 crop.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np
import torch
from torch import nn

from wham_ros.errors import CheckpointError, InputError
from wham_ros.perception.base import InitialBody, box_array, check_rgb
from wham_ros.perception.smpl_head import HMR2_DECODER, DecoderConfig, SMPLTransformerDecoderHead
from wham_ros.perception.vit import IMAGENET_MEAN, IMAGENET_STD, VIT_HUGE, VisionTransformer, ViTConfig
from wham_ros.weights import check_and_load, read_file

#: state_dict prefixes of hmr2a.ckpt that inference does not use
IGNORED_PREFIXES = ("discriminator.", "smpl.", "initialized")

CROP_SIZE = 256
#: smallest crop side (pixels) worth a feature: below it the 256x256 crop is a blur of a few pixels
MIN_CROP_PX = 16.0
#: the ViT input is 256x192: the 256x256 crop without 32 columns on each side
CROP_MARGIN = 32
_MEAN = np.array(IMAGENET_MEAN, dtype=np.float32)
_STD = np.array(IMAGENET_STD, dtype=np.float32)


class HMR2Output(NamedTuple):
    feature: torch.Tensor           # (B, 1024)
    global_orient: torch.Tensor     # (B, 3, 3), camera frame
    body_pose: torch.Tensor         # (B, 23, 3, 3)
    betas: torch.Tensor             # (B, 10)
    pred_cam: torch.Tensor          # (B, 3) weak-perspective (s, tx, ty) of the crop


class HMR2(nn.Module):
    """ImageNet-normalised crops (B, 3, 256, 192) -> :class:`HMR2Output`."""

    def __init__(self, vit: ViTConfig = VIT_HUGE, decoder: DecoderConfig = HMR2_DECODER) -> None:
        super().__init__()
        if decoder.context_dim != vit.embed_dim:
            raise ValueError(f"the decoder reads {decoder.context_dim}-d tokens but the ViT makes {vit.embed_dim}-d")
        self.backbone = VisionTransformer(vit)
        self.smpl_head = SMPLTransformerDecoderHead(decoder)

    def forward(self, crop: torch.Tensor) -> HMR2Output:
        return HMR2Output(*self.smpl_head(self.backbone.tokens(crop)))


def _read_checkpoint(path: str) -> object:
    # the alias only names which data-only class rebuilds a pickled CfgNode; weights_only stays on
    with torch.serialization.safe_globals([(OrderedDict, "yacs.config.CfgNode")]):
        try:
            return read_file(path)
        except CheckpointError as exc:
            if "Weights only load failed" not in str(exc):
                raise
            raise CheckpointError(
                f"{exc}; if this is a trusted hmr2a.ckpt holding other Python objects, keep only its weights "
                "with: python -c \"import torch; c = torch.load('hmr2a.ckpt', map_location='cpu', "
                "weights_only=False); torch.save({'state_dict': c['state_dict']}, 'hmr2a_weights.ckpt')\""
            ) from exc


def load_hmr2(path: str, device: str | torch.device = "cpu", *, vit: ViTConfig = VIT_HUGE,
              decoder: DecoderConfig = HMR2_DECODER) -> HMR2:
    """HMR2.0 with the weights of ``path`` (e.g. ``hmr2a.ckpt``), in eval mode on ``device``.

    The model is built on the meta device and takes the checkpoint's tensors, so no random
    initialisation of the 670M parameters is paid. Raises :class:`CheckpointError` naming the file and
    every missing, unknown, mis-shaped or non-finite entry.
    """
    content = _read_checkpoint(path)
    state_dict = content.get("state_dict", content) if isinstance(content, dict) else None
    if not isinstance(state_dict, dict):
        found = type(state_dict if isinstance(content, dict) else content).__name__
        raise CheckpointError(f"{path}: expected a Lightning checkpoint (dict with 'state_dict') or a state_dict, "
                              f"got {found}")
    with torch.device("meta"):
        model = HMR2(vit, decoder)
    check_and_load(model, state_dict, path, ignore=IGNORED_PREFIXES, what="HMR2.0")
    return model.to(device).eval().requires_grad_(False)


def crop_box(rgb: np.ndarray, box: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """The official square crop of ``rgb`` (H, W, 3) at ``box`` [cx, cy, s] as float32 (size, size, 3), 0..255.

    The corners are the crop's pixel map inverted in float64 and rounded half-to-even, as WHAM's
    ``crop`` does, so boxes on .5 boundaries pick the same pixels; outside the image is zero.
    """
    cx, cy, s = (float(v) for v in box)
    side = 200.0 * s
    to_crop = np.array([[size / side, 0.0, size * (0.5 - cx / side)],
                        [0.0, size / side, size * (0.5 - cy / side)],
                        [0.0, 0.0, 1.0]])
    to_image = np.linalg.inv(to_crop)
    x0, y0 = np.rint(to_image @ [0.0, 0.0, 1.0])[:2].astype(np.int64)
    x1, y1 = np.rint(to_image @ [size, size, 1.0])[:2].astype(np.int64)
    if x1 <= x0 or y1 <= y0:
        raise InputError(f"box {list(box)} covers no pixel (side 200*s = {side:g} px)")
    patch = np.zeros((y1 - y0, x1 - x0, 3), dtype=np.float32)
    height, width = rgb.shape[:2]
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if ix1 > ix0 and iy1 > iy0:
        patch[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = rgb[iy0:iy1, ix0:ix1]
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_LINEAR)


def normalise_crop(crop: np.ndarray) -> np.ndarray:
    """Float crop (H, W, 3) in 0..255 -> ImageNet-normalised float32 (3, H, W)."""
    return ((crop / np.float32(255.0) - _MEAN) / _STD).transpose(2, 0, 1)


def preprocess(rgb: np.ndarray, boxes: np.ndarray, flip: bool = False) -> torch.Tensor:
    """Network input (N, 3, 256, 192) for every box of ``boxes`` (N, 3) [cx, cy, s] in ``rgb`` (H, W, 3) uint8.

    flip: mirror each normalised 256x256 crop left-right before taking its central columns
    (WHAM's flip-evaluation input).
    """
    crops = [normalise_crop(crop_box(rgb, box)) for box in boxes]
    batch = torch.from_numpy(np.stack(crops)) if crops else torch.zeros(0, 3, CROP_SIZE, CROP_SIZE)
    if flip:
        batch = batch.flip(-1)
    return batch[..., CROP_MARGIN:CROP_SIZE - CROP_MARGIN]


@dataclass
class HMR2Result:
    """HMR2.0 outputs for N boxes of one image, float32 numpy."""

    feature: np.ndarray         # (N, 1024)
    global_orient: np.ndarray   # (N, 3, 3)
    body_pose: np.ndarray       # (N, 23, 3, 3)
    betas: np.ndarray           # (N, 10)
    pred_cam: np.ndarray        # (N, 3)

    def initial_body(self, i: int) -> InitialBody:
        """Box ``i``'s estimate as a track's first-frame body."""
        return InitialBody(global_orient=self.global_orient[i].copy(), body_pose=self.body_pose[i].copy(),
                           betas=self.betas[i].copy())


def _check_inputs(rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    check_rgb(rgb, "HMR2.0")
    boxes = box_array(boxes, 3, "HMR2.0", "[cx, cy, s]")
    if not np.isfinite(boxes).all() or (boxes[:, 2] <= 0).any():
        raise InputError(f"boxes must be finite with s > 0, got {boxes.tolist()}")
    return boxes


class HMR2Estimator:
    """Runs HMR2.0 on all person boxes of an RGB image in one batch."""

    def __init__(self, model: HMR2) -> None:
        self.model = model.eval()
        self.device = next(model.parameters()).device

    @classmethod
    def from_checkpoint(cls, path: str, device: str | torch.device = "cpu") -> HMR2Estimator:
        """An estimator with the weights of ``path`` (``hmr2a.ckpt``)."""
        return cls(load_hmr2(path, device))

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray, boxes: np.ndarray, flip: bool = False) -> HMR2Result:
        """Features and SMPL estimates for ``boxes`` (N, 3) [cx, cy, s] (square side 200*s px) in ``rgb`` (H, W, 3).

        flip: run on the mirrored crops (WHAM's flipped features / flipped init).
        """
        boxes = _check_inputs(rgb, boxes)
        if len(boxes) == 0:
            dim = self.model.smpl_head.cfg.dim
            empty = (np.zeros(shape, dtype=np.float32) for shape in ((0, dim), (0, 3, 3), (0, 23, 3, 3), (0, 10),
                                                                     (0, 3)))
            return HMR2Result(*empty)
        out = self.model(preprocess(rgb, boxes, flip).to(self.device))
        return HMR2Result(*(t.float().cpu().numpy() for t in out))
