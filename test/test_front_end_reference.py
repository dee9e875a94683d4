"""Reference numerics for the official-quality front end, on random weights of small configurations:

* ViTPose (ViT backbone + heatmap head, flip test, UDP warp) against the maintained implementation in
  ``transformers`` (``VitPoseForPoseEstimation`` with the classic deconvolution head, built from a config,
  the weights exchanged by state_dict); the backbone is the ViT that HMR2.0 shares;
* YOLOv8 against a reference written from the layer table of Ultralytics' ``yolov8.yaml`` with plain
  functional operations. ``ultralytics`` itself cannot run here: it imports torchvision, and PyPI's
  torchvision is built against CUDA torch (its ``_C.so`` needs ``libtorch_cuda.so``; with the CPU torch
  ``import torchvision`` fails with "operator torchvision::nms does not exist").

HMR2.0's SMPL head has no registry implementation; test_hmr2.py checks it against an explicit computation.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import require_module
from test_vitpose import SMALL, random_state_dict

from wham_ros.perception.vit import IMAGENET_MEAN, IMAGENET_STD
from wham_ros.perception.vitpose import COCO_FLIP_PAIRS, ViTPose, ViTPoseEstimator, warp_matrix
from wham_ros.perception.yolo import STRIDES, YoloV8

# --------------------------------------------------------------------------------------------- ViTPose


def transformers_state_dict(sd: dict[str, torch.Tensor], depth: int) -> dict[str, torch.Tensor]:
    """Our (the official checkpoint's) ViTPose names -> transformers' VitPoseForPoseEstimation names."""
    out = {"backbone.embeddings.position_embeddings": sd["backbone.pos_embed"],
           "backbone.layernorm.weight": sd["backbone.last_norm.weight"],
           "backbone.layernorm.bias": sd["backbone.last_norm.bias"]}
    for kind in ("weight", "bias"):
        out[f"backbone.embeddings.patch_embeddings.projection.{kind}"] = sd[f"backbone.patch_embed.proj.{kind}"]
        for i in range(depth):
            ours, theirs = f"backbone.blocks.{i}.", f"backbone.encoder.layer.{i}."
            # one fused qkv projection: rows are the query, then the key, then the value
            for name, part in zip(("query", "key", "value"), sd[ours + f"attn.qkv.{kind}"].chunk(3)):
                out[theirs + f"attention.attention.{name}.{kind}"] = part
            out[theirs + f"attention.output.dense.{kind}"] = sd[ours + f"attn.proj.{kind}"]
            out[theirs + f"layernorm_before.{kind}"] = sd[ours + f"norm1.{kind}"]
            out[theirs + f"layernorm_after.{kind}"] = sd[ours + f"norm2.{kind}"]
            out[theirs + f"mlp.fc1.{kind}"] = sd[ours + f"mlp.fc1.{kind}"]
            out[theirs + f"mlp.fc2.{kind}"] = sd[ours + f"mlp.fc2.{kind}"]
    out["head.deconv1.weight"] = sd["keypoint_head.deconv_layers.0.weight"]
    out["head.deconv2.weight"] = sd["keypoint_head.deconv_layers.3.weight"]
    for ours, theirs in ((1, "batchnorm1"), (4, "batchnorm2")):
        for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            out[f"head.{theirs}.{name}"] = sd[f"keypoint_head.deconv_layers.{ours}.{name}"]
    out["head.conv.weight"] = sd["keypoint_head.final_layer.weight"]
    out["head.conv.bias"] = sd["keypoint_head.final_layer.bias"]
    return out


@pytest.fixture(scope="module")
def vitpose_pair():
    """(ours, transformers') small ViTPose with the same random weights, in eval mode."""
    transformers = require_module("transformers", "transformers (the reference ViTPose)")
    sd = random_state_dict(SMALL, seed=4)
    ours = ViTPose(SMALL).eval()
    ours.load_state_dict(sd, strict=True)
    backbone = transformers.VitPoseBackboneConfig(
        image_size=list(SMALL.image_size), patch_size=[SMALL.patch_size] * 2, hidden_size=SMALL.embed_dim,
        num_hidden_layers=SMALL.depth, num_attention_heads=SMALL.num_heads, mlp_ratio=int(SMALL.mlp_ratio),
        layer_norm_eps=1e-6, qkv_bias=True, hidden_act="gelu", out_indices=[SMALL.depth])
    # the classic decoder is ViTPose-H's TopdownHeatmapSimpleHead; eager attention is transformers' own maths
    config = transformers.VitPoseConfig(backbone_config=backbone, use_simple_decoder=False, num_labels=17,
                                        attn_implementation="eager")
    theirs = transformers.VitPoseForPoseEstimation(config).eval()
    theirs.load_state_dict(transformers_state_dict(sd, SMALL.depth), strict=True)
    return ours, theirs


def crops(n: int = 2, seed: int = 0) -> torch.Tensor:
    """Normalised-looking person crops (n, 3, 256, 192)."""
    return torch.randn(n, 3, *SMALL.image_size, generator=torch.Generator().manual_seed(seed))


def test_vitpose_heatmaps_and_backbone_equal_transformers(vitpose_pair):
    ours, theirs = vitpose_pair
    x = crops()
    with torch.inference_mode():
        mine, ref = ours(x), theirs(pixel_values=x).heatmaps
        tokens = ours.backbone.tokens(x)
        ref_tokens = theirs.backbone(x).feature_maps[-1]
    assert mine.shape == ref.shape == (2, 17, 64, 48)
    assert ref.abs().max() > 0.1                 # a live network, not a zero map
    # measured: bit-identical (max |diff| 0 on heatmaps up to 3.7; swapping key and value rows gives 0.33)
    torch.testing.assert_close(mine, ref, rtol=1e-5, atol=1e-5)
    # the ViT tokens (HMR2.0's backbone output) after the last norm
    torch.testing.assert_close(tokens, ref_tokens, rtol=1e-5, atol=1e-5)


def test_vitpose_flip_test_equals_transformers_flip_back(vitpose_pair):
    """Mirrored crops, their heatmaps flipped back with left/right joints swapped, averaged with the plain ones."""
    ours, theirs = vitpose_pair
    pairs = torch.tensor(COCO_FLIP_PAIRS)
    raw = torch.randint(0, 256, (2, 3, *SMALL.image_size), generator=torch.Generator().manual_seed(1))
    # the estimator takes uint8 crops and normalises them itself (ImageNet statistics)
    x = (raw / 255 - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
    estimator = ViTPoseEstimator(ours, flip_test=True)
    with torch.inference_mode():
        ref = 0.5 * (theirs(pixel_values=x).heatmaps + theirs(pixel_values=x.flip(-1), flip_pairs=pairs).heatmaps)
    mine = estimator.heatmaps(raw.permute(0, 2, 3, 1).to(torch.uint8).numpy())
    torch.testing.assert_close(mine, ref, rtol=1e-5, atol=1e-5)


def test_udp_warp_equals_transformers():
    """mmpose's unbiased (UDP) crop matrix, as transformers ports it: get_warp_matrix(0, 2*centre, out-1, size)."""
    get_warp_matrix = require_module("transformers.models.vitpose.image_processing_vitpose",
                                     "transformers (the reference ViTPose)").get_warp_matrix
    center = np.array([[320.5, 241.25], [17.0, 400.0]], np.float32)
    size = np.array([[150.0, 200.0], [75.0, 100.0]], np.float32)
    mine = warp_matrix(center, size)
    for c, s, m in zip(center, size, mine):
        np.testing.assert_allclose(m, get_warp_matrix(0.0, c * 2.0, np.array([191.0, 255.0]), s), rtol=1e-6, atol=1e-4)


# --------------------------------------------------------------------------------------------- YOLOv8

#: yolov8.yaml: (from, repeats, module, args) of layers 0-22; args as in the file (channels before width scaling)
YOLOV8_YAML = [
    (-1, 1, "Conv", (64, 3, 2)), (-1, 1, "Conv", (128, 3, 2)), (-1, 3, "C2f", (128, True)),
    (-1, 1, "Conv", (256, 3, 2)), (-1, 6, "C2f", (256, True)), (-1, 1, "Conv", (512, 3, 2)),
    (-1, 6, "C2f", (512, True)), (-1, 1, "Conv", (1024, 3, 2)), (-1, 3, "C2f", (1024, True)),
    (-1, 1, "SPPF", (1024, 5)),
    (-1, 1, "Upsample", ()), ((-1, 6), 1, "Concat", ()), (-1, 3, "C2f", (512,)),
    (-1, 1, "Upsample", ()), ((-1, 4), 1, "Concat", ()), (-1, 3, "C2f", (256,)),
    (-1, 1, "Conv", (256, 3, 2)), ((-1, 12), 1, "Concat", ()), (-1, 3, "C2f", (512,)),
    (-1, 1, "Conv", (512, 3, 2)), ((-1, 9), 1, "Concat", ()), (-1, 3, "C2f", (1024,)),
    ((15, 18, 21), 1, "Detect", (80,)),
]
DEPTH_N = 0.33        # yolov8n's depth_multiple


class Reference:
    """YOLOv8 evaluated from the yaml table with functional operations on a state_dict (eval BatchNorm)."""

    def __init__(self, sd: dict[str, torch.Tensor]) -> None:
        self.sd = sd

    def conv(self, x: torch.Tensor, p: str, k: int = 1, s: int = 1) -> torch.Tensor:
        sd = self.sd
        y = F.conv2d(x, sd[f"{p}.conv.weight"], None, s, k // 2)
        y = F.batch_norm(y, sd[f"{p}.bn.running_mean"], sd[f"{p}.bn.running_var"], sd[f"{p}.bn.weight"],
                         sd[f"{p}.bn.bias"], training=False, eps=1e-3)
        return F.silu(y)

    def c2f(self, x: torch.Tensor, p: str, n: int, shortcut: bool) -> torch.Tensor:
        outs = list(self.conv(x, f"{p}.cv1").chunk(2, 1))
        for i in range(n):
            y = self.conv(self.conv(outs[-1], f"{p}.m.{i}.cv1", 3), f"{p}.m.{i}.cv2", 3)
            outs.append(outs[-1] + y if shortcut else y)
        return self.conv(torch.cat(outs, 1), f"{p}.cv2")

    def sppf(self, x: torch.Tensor, p: str, k: int) -> torch.Tensor:
        ys = [self.conv(x, f"{p}.cv1")]
        for _ in range(3):
            ys.append(F.max_pool2d(ys[-1], k, 1, k // 2))
        return self.conv(torch.cat(ys, 1), f"{p}.cv2")

    def branch(self, x: torch.Tensor, p: str) -> torch.Tensor:
        y = self.conv(self.conv(x, f"{p}.0", 3), f"{p}.1", 3)
        return F.conv2d(y, self.sd[f"{p}.2.weight"], self.sd[f"{p}.2.bias"])

    def __call__(self, image: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(raw per-level logits, decoded (B, 4 + nc, A)) as Ultralytics' Detect gives them in eval."""
        outputs: list[torch.Tensor] = []
        x = image
        for i, (src, n, kind, args) in enumerate(YOLOV8_YAML):
            p, reps = f"model.{i}", max(round(n * DEPTH_N), 1)
            ins = [outputs[j] if j >= 0 else x for j in src] if isinstance(src, tuple) else None
            if kind == "Conv":
                x = self.conv(x, p, args[1], args[2])
            elif kind == "C2f":
                x = self.c2f(x, p, reps, len(args) > 1 and args[1])
            elif kind == "SPPF":
                x = self.sppf(x, p, args[1])
            elif kind == "Upsample":
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            elif kind == "Concat":
                x = torch.cat(ins, 1)
            else:
                raw = [torch.cat((self.branch(f, f"{p}.cv2.{k}"), self.branch(f, f"{p}.cv3.{k}")), 1)
                       for k, f in enumerate(ins)]
                return raw, self.decode(raw)
            outputs.append(x)
        raise AssertionError("the table ends with Detect")

    @staticmethod
    def decode(raw: list[torch.Tensor]) -> torch.Tensor:
        boxes, classes = [], []
        for level, stride in zip(raw, STRIDES):
            b, _, h, w = level.shape
            logits = level[:, :64].reshape(b, 4, 16, h * w)
            # distribution focal loss: the expected bin of a softmax over 16 bins per side (l, t, r, b)
            dist = (logits.softmax(2) * torch.arange(16.0).view(1, 1, 16, 1)).sum(2)
            gy, gx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
            cx, cy = gx.reshape(-1), gy.reshape(-1)
            x1, y1, x2, y2 = cx - dist[:, 0], cy - dist[:, 1], cx + dist[:, 2], cy + dist[:, 3]
            boxes.append(torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), 1) * stride)
            classes.append(level[:, 64:].reshape(b, -1, h * w).sigmoid())
        return torch.cat((torch.cat(boxes, 2), torch.cat(classes, 2)), 1)


def lively_yolo(seed: int) -> YoloV8:
    """yolov8n with random weights that keep signals alive: He-scaled convolutions, BatchNorm gains near 1.

    (Gains of ~0.1, as test_yolo's ``randomized`` draws them, shrink every layer's output until a removed
    residual changes the head's logits by 1.5e-7 only: below any float tolerance.)
    """
    gen = torch.Generator().manual_seed(seed)
    model = YoloV8("n").eval()
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if "dfl" in name:                              # the fixed 0..15 expectation weights
                continue
            if name.endswith("num_batches_tracked"):
                t.fill_(1000)
            elif name.endswith("running_var"):
                t.copy_(0.5 + 1.5 * torch.rand(t.shape, generator=gen))
            elif name.endswith("bn.weight"):
                t.copy_(0.8 + 0.4 * torch.rand(t.shape, generator=gen))
            elif t.dim() == 4:
                t.copy_(torch.randn(t.shape, generator=gen) * math.sqrt(2.0 / t[0].numel()))
            else:                                          # BatchNorm means and biases, convolution biases
                t.copy_(0.1 * torch.randn(t.shape, generator=gen))
    return model


def test_yolov8n_equals_the_yaml_reference():
    """Every layer's wiring (the Concat sources, the C2f shortcuts of backbone vs neck), the residuals, SPPF, both
    head branches and the DFL decoding, on yolov8n with random weights and BatchNorm statistics."""
    model = lively_yolo(3)
    ref = Reference({k: v.detach() for k, v in model.state_dict().items()})
    image = torch.rand(2, 3, 96, 160, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        raw, decoded = model.raw(image), model(image)
        ref_raw, ref_decoded = ref(image)
    assert [r.shape[2:] for r in raw] == [(12, 20), (6, 10), (3, 5)]
    # the premise: the logits depend on the image well above the tolerance (measured 0.002-0.03)
    assert all((r[0] - r[1]).abs().max() > 1e-3 for r in ref_raw)
    for mine, theirs in zip(raw, ref_raw):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)
    assert decoded.shape == (2, 84, 12 * 20 + 6 * 10 + 3 * 5)
    # measured: raw logits identical, boxes (up to 483 px) within 6.1e-5 px
    torch.testing.assert_close(decoded, ref_decoded, rtol=1e-5, atol=1e-4)
