"""Boxes of training samples (official ``compute_bbox_from_keypoints``, training facts 3.6).

Per frame the tight box of the 17 noisy 2D keypoints, side m = max(w, h); per sample a scale
sigma ~ U(0.8, 1.4) and a shift a ~ U(-0.05, 0.05)^2; box = [c + a sigma m, sigma m / 200]
([cx, cy, s], side 200 s px); then each component is smoothed over time:

- ``centred`` (official): 15-frame median centred on the frame, zero-padded at both ends
  (``scipy.signal.medfilt``), i.e. 7 frames of look-ahead, and the first and last 7 frames lean
  towards their smallest values;
- ``causal`` (the default here): the median of the last ``window`` boxes (fewer at the start), what
  :class:`wham_ros.stream.inputs.CausalBoxFilter` gives the network online, so training sees the boxes
  the deployed network sees.
"""
from __future__ import annotations

import torch

SCALE_RANGE = (0.8, 1.4)
SHIFT = 0.05
CENTRED_KERNEL = 15


def keypoint_boxes(kp2d: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Unsmoothed boxes (B, L, 3) from 2D keypoints (B, L, 17, 2) px, with the per-sample scale and shift."""
    B = kp2d.shape[0]
    lo, hi = kp2d.min(-2).values, kp2d.max(-2).values
    side = (hi - lo).max(-1).values
    sigma = SCALE_RANGE[0] + (SCALE_RANGE[1] - SCALE_RANGE[0]) * torch.rand(B, 1, generator=gen)
    shift = (torch.rand(B, 1, 2, generator=gen) * 2 - 1) * SHIFT
    centre = (lo + hi) / 2 + shift * (sigma * side)[..., None]
    return torch.cat((centre, (sigma * side / 200)[..., None]), -1)


def centred_median(boxes: torch.Tensor, kernel: int = CENTRED_KERNEL) -> torch.Tensor:
    """Zero-padded centred median over time of boxes (B, L, 3), odd ``kernel`` (official)."""
    half = kernel // 2
    padded = torch.nn.functional.pad(boxes.transpose(1, 2), (half, half))
    return padded.unfold(-1, kernel, 1).median(-1).values.transpose(1, 2)


def causal_median(boxes: torch.Tensor, window: int) -> torch.Tensor:
    """Median over the last ``window`` boxes (B, L, 3) (the lower middle for an even count, as torch does)."""
    padded = torch.nn.functional.pad(boxes.transpose(1, 2), (window - 1, 0), value=float("nan"))
    return padded.unfold(-1, window, 1).nanmedian(-1).values.transpose(1, 2)


def smooth_boxes(boxes: torch.Tensor, mode: str, window: int) -> torch.Tensor:
    """``centred`` (official, kernel 15) or ``causal`` (median of the last ``window``) smoothing."""
    if mode == "centred":
        return centred_median(boxes)
    if mode == "causal":
        return causal_median(boxes, window)
    raise ValueError(f"unknown box filter {mode!r} (use 'causal' or 'centred')")
