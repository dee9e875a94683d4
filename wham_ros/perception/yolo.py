"""YOLOv8 person detection, the first stage of the WHAM demo, without ultralytics.

The WHAM demo detects people with Ultralytics YOLOv8x (``checkpoints/yolov8x.pt``, the official
COCO-80 detector) through ``YOLO.predict(img, classes=0, conf=0.5)``. This module rebuilds
that network from the published architecture (``yolov8.yaml``: Conv/C2f/SPPF backbone, PAN
neck, decoupled anchor-free Detect head with DFL, strides 8/16/32) for any of the n/s/m/l/x
scales, with state_dict names identical to Ultralytics' (``model.0.conv.weight``, ...,
``model.22.dfl.conv.weight``), and reproduces the prediction pipeline:

* letterbox: scale to fit ``input_size`` (640) keeping the aspect ratio, pad with grey 114,
  RGB / 255. Like Ultralytics' ``predict`` for PyTorch models the padding only reaches the next
  multiple of 32 (a "minimal rectangle", e.g. 640x480 stays 640x480; cheaper on the CPU);
  ``rect=False`` pads to the full square instead.
* decode: per anchor (cell centre), a softmax over 16 bins per box side whose expectation is the
  distance to the left/top/right/bottom edge in stride units; class scores are sigmoids.
* NMS: a box counts as a person if class 0 is its best class and its score exceeds ``conf``
  (strictly, as Ultralytics does); greedy NMS at IoU 0.7, at most 300 boxes, mapped back to the
  image and clipped to it.

Typical use::

    detector = PersonDetector(load_yolo("checkpoints/yolov8x.pt"))
    boxes = detector(rgb)            # (N, 5): x1, y1, x2, y2, score in image pixels

The file may be the official Ultralytics ``.pt`` (read safely, see
:mod:`wham_ros.perception.yolo_checkpoint`) or a plain state_dict exported from it where
ultralytics is installed (before any ``predict``, which fuses Conv+BatchNorm in place)::

    python -c "import torch; from ultralytics import YOLO; \\
        torch.save(YOLO('yolov8x.pt').model.float().state_dict(), 'yolov8x_state_dict.pt')"
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from wham_ros.errors import CheckpointError, InputError
from wham_ros.perception.base import check_rgb
from wham_ros.perception.yolo_checkpoint import read_yolo_state_dict
from wham_ros.weights import check_and_load, listing

COCO_PERSON = 0
NUM_CLASSES = 80
REG_MAX = 16                      # DFL bins per box side
STRIDES = (8, 16, 32)             # of the P3, P4, P5 outputs
PAD_VALUE = 114                   # letterbox grey
_BN_EPS, _BN_MOMENTUM = 1e-3, 0.03  # Ultralytics overrides the torch BatchNorm defaults


@dataclass(frozen=True)
class YoloScale:
    """Compound scaling of yolov8.yaml: repeats x depth, channels x width capped at max_channels."""

    depth: float
    width: float
    max_channels: int

    def channels(self, c: int) -> int:
        """Scaled channel count, rounded up to a multiple of 8."""
        return math.ceil(min(c, self.max_channels) * self.width / 8) * 8

    def repeats(self, n: int) -> int:
        """Scaled block repeat count, at least 1."""
        return max(round(n * self.depth), 1)


SCALES: dict[str, YoloScale] = {
    "n": YoloScale(0.33, 0.25, 1024),
    "s": YoloScale(0.33, 0.50, 1024),
    "m": YoloScale(0.67, 0.75, 768),
    "l": YoloScale(1.00, 1.00, 512),
    "x": YoloScale(1.00, 1.25, 512),
}


class Conv(nn.Module):
    """Conv2d (no bias, 'same' padding) + BatchNorm + SiLU: (B, c1, H, W) -> (B, c2, H/s, W/s)."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=_BN_EPS, momentum=_BN_MOMENTUM)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    """Two 3x3 Convs, with a residual when ``shortcut`` (c -> c channels)."""

    def __init__(self, c: int, shortcut: bool) -> None:
        super().__init__()
        self.cv1 = Conv(c, c, 3)
        self.cv2 = Conv(c, c, 3)
        self.add = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    """CSP block with n Bottlenecks whose every output joins the final 1x1 fusion: (B, c1, H, W) -> (B, c2, H, W)."""

    def __init__(self, c1: int, c2: int, n: int, shortcut: bool) -> None:
        super().__init__()
        c = c2 // 2
        self.cv1 = Conv(c1, 2 * c)
        self.cv2 = Conv((2 + n) * c, c2)
        self.m = nn.ModuleList(Bottleneck(c, shortcut) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = list(self.cv1(x).chunk(2, 1))
        for block in self.m:
            parts.append(block(parts[-1]))
        return self.cv2(torch.cat(parts, 1))


class SPPF(nn.Module):
    """Spatial pyramid pooling by three chained 5x5 max-pools (fields 5, 9, 13): (B, c1, H, W) -> (B, c2, H, W)."""

    def __init__(self, c1: int, c2: int, k: int = 5) -> None:
        super().__init__()
        c = c1 // 2
        self.cv1 = Conv(c1, c)
        self.cv2 = Conv(4 * c, c2)
        self.m = nn.MaxPool2d(k, 1, k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        for _ in range(3):
            y.append(self.m(y[-1]))
        return self.cv2(torch.cat(y, 1))


class Concat(nn.Module):
    """Channel concatenation; a layer of its own so the layer indices match Ultralytics'."""

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, 1)


class DFL(nn.Module):
    """Expectation of a softmax over ``bins`` logits per box side: (B, 4*bins, A) -> (B, 4, A).

    The expectation is a fixed 1x1 convolution with weights 0..bins-1, stored in the checkpoint.
    """

    def __init__(self, bins: int = REG_MAX) -> None:
        super().__init__()
        self.conv = nn.Conv2d(bins, 1, 1, bias=False).requires_grad_(False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.arange(bins, dtype=torch.float32).view(1, bins, 1, 1))
        self.bins = bins

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, a = x.shape
        prob = x.view(b, 4, self.bins, a).transpose(2, 1).softmax(1)  # (B, bins, 4, A)
        return self.conv(prob).view(b, 4, a)


class Detect(nn.Module):
    """Decoupled anchor-free head: per level a box branch (``cv2``, 4*16 DFL logits) and a class branch (``cv3``)."""

    def __init__(self, nc: int, ch: tuple[int, ...]) -> None:
        super().__init__()
        self.nc = nc
        c2 = max(16, ch[0] // 4, 4 * REG_MAX)
        c3 = max(ch[0], min(nc, 100))
        self.cv2 = nn.ModuleList(nn.Sequential(Conv(c, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * REG_MAX, 1))
                                 for c in ch)
        self.cv3 = nn.ModuleList(nn.Sequential(Conv(c, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, nc, 1)) for c in ch)
        self.dfl = DFL(REG_MAX)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """Per level (B, C_i, H_i, W_i) -> raw logits (B, 4*16 + nc, H_i, W_i)."""
        return [torch.cat((box(x), cls(x)), 1) for x, box, cls in zip(feats, self.cv2, self.cv3)]

    def decode(self, levels: list[torch.Tensor]) -> torch.Tensor:
        """Raw logits of the levels (strides 8, 16, 32) -> (B, 4 + nc, A).

        Rows 0-3 are boxes (cx, cy, w, h) in input pixels, the rest class probabilities; anchors run
        level by level, row-major over each grid.
        """
        b = levels[0].shape[0]
        flat = torch.cat([x.view(b, x.shape[1], -1) for x in levels], 2)
        box, cls = flat.split((4 * REG_MAX, self.nc), 1)
        centres, strides = [], []
        for x, stride in zip(levels, STRIDES):
            h, w = x.shape[2:]
            ys, xs = torch.meshgrid(torch.arange(h, device=x.device, dtype=x.dtype) + 0.5,
                                    torch.arange(w, device=x.device, dtype=x.dtype) + 0.5, indexing="ij")
            centres.append(torch.stack((xs, ys)).view(2, -1))
            strides.append(torch.full((1, h * w), float(stride), device=x.device, dtype=x.dtype))
        centre, stride = torch.cat(centres, 1), torch.cat(strides, 1)  # (2, A), (1, A)
        dist = self.dfl(box)  # (B, 4, A): left, top, right, bottom in stride units
        top_left, bottom_right = centre - dist[:, :2], centre + dist[:, 2:]
        xywh = torch.cat(((top_left + bottom_right) / 2, bottom_right - top_left), 1) * stride
        return torch.cat((xywh, cls.sigmoid()), 1)


class YoloV8(nn.Module):
    """YOLOv8 detector: image (B, 3, H, W) RGB in [0, 1], H and W multiples of 32 -> (B, 4 + nc, A).

    The output is Ultralytics': boxes (cx, cy, w, h) in input pixels and class probabilities for
    A = H*W/64 + H*W/256 + H*W/1024 anchors. ``model`` holds the 23 layers of yolov8.yaml under
    their indices (the parameter-free Upsample/Concat layers included), so state_dict keys equal
    the official ones.
    """

    def __init__(self, scale: YoloScale | str = "x", nc: int = NUM_CLASSES) -> None:
        super().__init__()
        s = SCALES[scale] if isinstance(scale, str) else scale
        c64, c128, c256, c512, c1024 = (s.channels(c) for c in (64, 128, 256, 512, 1024))
        self.model = nn.ModuleList([
            Conv(3, c64, 3, 2),                                   # 0  P1/2
            Conv(c64, c128, 3, 2),                                # 1  P2/4
            C2f(c128, c128, s.repeats(3), True),                  # 2
            Conv(c128, c256, 3, 2),                               # 3  P3/8
            C2f(c256, c256, s.repeats(6), True),                  # 4
            Conv(c256, c512, 3, 2),                               # 5  P4/16
            C2f(c512, c512, s.repeats(6), True),                  # 6
            Conv(c512, c1024, 3, 2),                              # 7  P5/32
            C2f(c1024, c1024, s.repeats(3), True),                # 8
            SPPF(c1024, c1024),                                   # 9
            nn.Upsample(scale_factor=2.0, mode="nearest"),        # 10
            Concat(),                                             # 11 with 6
            C2f(c1024 + c512, c512, s.repeats(3), False),         # 12
            nn.Upsample(scale_factor=2.0, mode="nearest"),        # 13
            Concat(),                                             # 14 with 4
            C2f(c512 + c256, c256, s.repeats(3), False),          # 15 P3 out
            Conv(c256, c256, 3, 2),                               # 16
            Concat(),                                             # 17 with 12
            C2f(c256 + c512, c512, s.repeats(3), False),          # 18 P4 out
            Conv(c512, c512, 3, 2),                               # 19
            Concat(),                                             # 20 with 9
            C2f(c512 + c1024, c1024, s.repeats(3), False),        # 21 P5 out
            Detect(nc, (c256, c512, c1024)),                      # 22
        ])

    def raw(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Image (B, 3, H, W) -> undecoded head logits per level, (B, 64 + nc, H/s, W/s) for s = 8, 16, 32."""
        m = self.model
        x = image
        saved = {}
        for i in range(10):
            x = m[i](x)
            saved[i] = x
        x = m[12](m[11]([m[10](x), saved[6]]))
        saved[12] = x
        p3 = m[15](m[14]([m[13](x), saved[4]]))
        p4 = m[18](m[17]([m[16](p3), saved[12]]))
        p5 = m[21](m[20]([m[19](p4), saved[9]]))
        return m[22]([p3, p4, p5])

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model[22].decode(self.raw(image))


def infer_scale(state_dict: dict[str, torch.Tensor], source: str) -> tuple[str, int]:
    """(scale name, number of classes) of a YOLOv8 state_dict, from its tensor shapes.

    The first conv's width, SPPF's output width and the bottleneck count of layer 2 tell the five
    official scales apart; anything else raises :class:`CheckpointError`.
    """
    probes = ("model.0.conv.weight", "model.9.cv2.conv.weight", "model.22.cv3.0.2.weight")
    absent = [k for k in probes if not isinstance(state_dict.get(k), torch.Tensor)]
    if absent:
        raise CheckpointError(f"{source}: not a YOLOv8 detection checkpoint (no {listing(absent)})")
    first, sppf = state_dict[probes[0]].shape[0], state_dict[probes[1]].shape[0]
    nc = state_dict[probes[2]].shape[0]
    blocks = len({k.split(".")[3] for k in state_dict if k.startswith("model.2.m.")})
    for name, s in SCALES.items():
        if (first, sppf, blocks) == (s.channels(64), s.channels(1024), s.repeats(3)):
            return name, nc
    raise CheckpointError(
        f"{source}: first conv width {first}, SPPF width {sppf} and {blocks} bottlenecks in layer 2 match no "
        f"YOLOv8 scale ({', '.join(SCALES)}); only the yolov8.yaml detection models can be loaded")


def load_yolo(path: str, device: str | torch.device = "cpu") -> YoloV8:
    """The YOLOv8 of an Ultralytics ``.pt`` or a plain state_dict file, scale inferred, in eval mode.

    Raises :class:`CheckpointError` for unreadable, foreign, incomplete, mis-shaped or non-finite files.
    """
    state_dict = read_yolo_state_dict(path)
    scale, nc = infer_scale(state_dict, path)
    with torch.device("meta"):
        model = YoloV8(scale, nc)
    check_and_load(model, state_dict, path, what="YOLOv8")
    return model.to(device).eval()


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the network input: input = image * gain + (pad_x, pad_y)."""

    gain: float
    pad_x: int
    pad_y: int
    image_hw: tuple[int, int]

    def to_image(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes (N, 4) x1, y1, x2, y2 in input pixels -> image pixels, clipped to the image.

        Uses the integer padding actually applied; Ultralytics recomputes it from floats when mapping back,
        which differs by up to one input pixel on the padded axis (its boxes are that much off, ours are not).
        """
        out = (boxes - np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], dtype=np.float32)) / self.gain
        h, w = self.image_hw
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, w)
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, h)
        return out


def letterbox(rgb: np.ndarray, size: int = 640, rect: bool = True) -> tuple[torch.Tensor, Letterbox]:
    """Image (H, W, 3) uint8 -> network input (1, 3, h, w) float32 in [0, 1] and the transform used.

    The image is scaled by min(size/H, size/W) (up or down), centred and padded with grey 114 to
    ``size`` x ``size``, or with ``rect`` only to the next multiples of 32.
    """
    if size % 32:
        raise InputError(f"input size {size} is not a multiple of 32 (the coarsest stride)")
    h, w = rgb.shape[:2]
    gain = min(size / h, size / w)
    new_w, new_h = round(w * gain), round(h * gain)
    pad_w, pad_h = size - new_w, size - new_h
    if rect:
        pad_w, pad_h = pad_w % 32, pad_h % 32
    if (new_w, new_h) != (w, h):
        rgb = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    # odd padding puts the extra pixel at the bottom/right, as Ultralytics does
    left, top = pad_w // 2, pad_h // 2
    padded = cv2.copyMakeBorder(rgb, top, pad_h - top, left, pad_w - left, cv2.BORDER_CONSTANT,
                                value=(PAD_VALUE,) * 3)
    image = torch.from_numpy(np.ascontiguousarray(padded)).permute(2, 0, 1).float().div_(255).unsqueeze(0)
    return image, Letterbox(gain, left, top, (h, w))


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept boxes, best score first.

    boxes (N, 4) x1, y1, x2, y2; scores (N,); a box is dropped when its IoU with a kept,
    higher-scoring box exceeds ``iou``.
    """
    order = np.argsort(-scores, kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        lt = np.maximum(boxes[i, :2], boxes[rest, :2])
        rb = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = (rb - lt).clip(0).prod(1)
        union = areas[i] + areas[rest] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


class PersonDetector:
    """RGB frame (H, W, 3) uint8 -> person boxes (N, 5) float32: x1, y1, x2, y2, score in image pixels.

    model: a :class:`YoloV8` (or any module with its input/output contract), e.g. from :func:`load_yolo`.
    conf: score a person box must exceed (WHAM uses 0.5); iou: NMS threshold (Ultralytics' 0.7);
    input_size: longest network input side; rect: pad only to multiples of 32 (see :func:`letterbox`);
    max_det: most boxes returned. Boxes are sorted by descending score; boxes that clipping to the image leaves
    narrower or lower than one pixel (predicted in the letterbox padding) are dropped.
    """

    def __init__(self, model: nn.Module, conf: float = 0.5, iou: float = 0.7, input_size: int = 640,
                 rect: bool = True, max_det: int = 300) -> None:
        if input_size % 32:
            raise InputError(f"input_size {input_size} is not a multiple of 32 (the coarsest stride)")
        self.model = model.eval()
        self.conf, self.iou, self.input_size, self.rect, self.max_det = conf, iou, input_size, rect, max_det

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """Person boxes (N, 5) of one RGB image (H, W, 3) uint8; raises :class:`InputError` for other input."""
        check_rgb(rgb, "the YOLOv8 detector")
        image, fit = letterbox(rgb, self.input_size, self.rect)
        device = next(self.model.parameters(), image).device
        pred = self.model(image.to(device))[0].float().cpu().numpy()  # (4 + nc, A)
        probs = pred[4:]
        person = (probs.argmax(0) == COCO_PERSON) & (probs[COCO_PERSON] > self.conf)
        xywh, scores = pred[:4, person].T, probs[COCO_PERSON, person]
        boxes = np.concatenate((xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2), 1)
        keep = nms(boxes, scores, self.iou)
        found = np.concatenate((fit.to_image(boxes[keep]), scores[keep, None]), 1).astype(np.float32)
        visible = (found[:, 2] - found[:, 0] >= 1) & (found[:, 3] - found[:, 1] >= 1)
        return found[visible][: self.max_det]
