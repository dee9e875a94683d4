"""YOLOv8 person detector: architecture vs. yolov8.yaml, safe reading of Ultralytics files, letterbox, decode, NMS."""
from __future__ import annotations

import os
import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

from wham_ros.errors import CheckpointError, InputError
from wham_ros.perception import yolo_checkpoint
from wham_ros.perception.yolo import (
    SCALES,
    Detect,
    PersonDetector,
    YoloV8,
    letterbox,
    load_yolo,
    nms,
)
from wham_ros.perception.yolo_checkpoint import read_yolo_state_dict

# published in yolov8.yaml next to each scale ("YOLOv8x summary: 365 layers, 68229648 parameters, ...")
PUBLISHED_PARAMETERS = {"n": 3157200, "s": 11166560, "m": 25902640, "l": 43691520, "x": 68229648}

# yolov8.yaml, as (index, module, repeats); the other indices are parameter-free Upsample/Concat
YAML_LAYERS = [(0, "Conv", 1), (1, "Conv", 1), (2, "C2f", 3), (3, "Conv", 1), (4, "C2f", 6), (5, "Conv", 1),
               (6, "C2f", 6), (7, "Conv", 1), (8, "C2f", 3), (9, "SPPF", 1), (12, "C2f", 3), (15, "C2f", 3),
               (16, "Conv", 1), (18, "C2f", 3), (19, "Conv", 1), (21, "C2f", 3), (22, "Detect", 1)]
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def expected_keys(depth: float) -> set[str]:
    """Ultralytics state_dict names of a yolov8.yaml model, built from the yaml alone."""
    def conv(prefix: str) -> list[str]:
        return [f"{prefix}.conv.weight", *(f"{prefix}.bn.{b}" for b in BN)]

    keys: list[str] = []
    for i, kind, repeats in YAML_LAYERS:
        p = f"model.{i}"
        if kind == "Conv":
            keys += conv(p)
        elif kind in ("C2f", "SPPF"):
            keys += conv(f"{p}.cv1") + conv(f"{p}.cv2")
            if kind == "C2f":
                for j in range(max(round(repeats * depth), 1)):
                    keys += conv(f"{p}.m.{j}.cv1") + conv(f"{p}.m.{j}.cv2")
        else:
            for branch in ("cv2", "cv3"):
                for level in range(3):
                    q = f"{p}.{branch}.{level}"
                    keys += conv(f"{q}.0") + conv(f"{q}.1") + [f"{q}.2.weight", f"{q}.2.bias"]
            keys.append(f"{p}.dfl.conv.weight")
    return set(keys)


@pytest.mark.parametrize("scale", list(SCALES))
def test_architecture_matches_yaml_on_meta(scale):
    with torch.device("meta"):
        model = YoloV8(scale)
    sd = model.state_dict()
    assert set(sd) == expected_keys(SCALES[scale].depth)
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED_PARAMETERS[scale]


def test_yolov8x_spot_shapes():
    with torch.device("meta"):
        sd = YoloV8("x").state_dict()
    # x: width 1.25 capped at 512 -> 80, 160, 320, 640, 640 channels
    assert sd["model.0.conv.weight"].shape == (80, 3, 3, 3)
    assert sd["model.7.conv.weight"].shape == (640, 640, 3, 3)
    assert sd["model.9.cv2.conv.weight"].shape == (640, 4 * 320, 1, 1)
    assert sd["model.21.cv2.conv.weight"].shape == (640, 5 * 320, 1, 1)
    # Detect: box branch max(16, 320 // 4, 64) = 80 wide, class branch max(320, 80) = 320 wide
    assert sd["model.22.cv2.0.0.conv.weight"].shape == (80, 320, 3, 3)
    assert sd["model.22.cv2.2.2.weight"].shape == (64, 80, 1, 1)
    assert sd["model.22.cv3.1.0.conv.weight"].shape == (320, 640, 3, 3)
    assert sd["model.22.cv3.2.2.weight"].shape == (80, 320, 1, 1)
    assert sd["model.22.dfl.conv.weight"].shape == (1, 16, 1, 1)
    assert len(sd) == 595


def randomized(scale: str = "n", seed: int = 0) -> YoloV8:
    """A model whose every weight and BatchNorm statistic is random (DFL stays 0..15, as in real files)."""
    torch.manual_seed(seed)
    model = YoloV8(scale).eval()
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.uniform_(0.5, 2.0)
            elif name.endswith("num_batches_tracked"):
                t.fill_(1234)
            elif t.is_floating_point() and "dfl" not in name:
                t.normal_(0, 0.1)
    return model


# ---------------------------------------------------------------------------------------------
# synthetic Ultralytics files

SPLIT = "8.1+"      # ultralytics.nn.modules.{conv,block,head}, ultralytics.utils
FLAT = "8.0"        # ultralytics.nn.modules as one module, ultralytics.yolo.utils
HOMES = {
    SPLIT: {"Conv": "ultralytics.nn.modules.conv", "Concat": "ultralytics.nn.modules.conv",
            "C2f": "ultralytics.nn.modules.block", "Bottleneck": "ultralytics.nn.modules.block",
            "SPPF": "ultralytics.nn.modules.block", "DFL": "ultralytics.nn.modules.block",
            "Detect": "ultralytics.nn.modules.head", "DetectionModel": "ultralytics.nn.tasks",
            "IterableSimpleNamespace": "ultralytics.utils"},
    FLAT: {**{k: "ultralytics.nn.modules" for k in ("Conv", "Concat", "C2f", "Bottleneck", "SPPF", "DFL", "Detect")},
           "DetectionModel": "ultralytics.nn.tasks", "IterableSimpleNamespace": "ultralytics.yolo.utils"},
}


def fake_ultralytics(monkeypatch, layout: str, extra: dict[str, str] | None = None) -> dict[str, type]:
    """Importable throwaway classes under Ultralytics' names (removed again by monkeypatch)."""
    homes = {**HOMES[layout], **(extra or {})}
    classes = {}
    for name, home in homes.items():
        parts = home.split(".")
        for n in range(1, len(parts) + 1):
            mod = ".".join(parts[:n])
            if mod not in sys.modules:
                monkeypatch.setitem(sys.modules, mod, types.ModuleType(mod))
        base = types.SimpleNamespace if name == "IterableSimpleNamespace" else nn.Module
        cls = getattr(sys.modules[home], name, None)
        if cls is None:     # one class per name, or pickle refuses objects of an earlier one
            cls = type(name, (base,), {"__module__": home, "__qualname__": name})
            setattr(sys.modules[home], name, cls)
        classes[name] = cls
    return classes


def ultralytics_checkpoint(monkeypatch, layout: str, model: YoloV8) -> tuple[dict, dict[str, torch.Tensor]]:
    """An Ultralytics-format checkpoint dict around ``model`` (consumed) and its expected state_dict."""
    classes = fake_ultralytics(monkeypatch, layout)
    layers = list(model.model)
    for module in model.modules():
        if type(module).__name__ in classes:
            module.__class__ = classes[type(module).__name__]
    detection = classes["DetectionModel"]()
    detection.model = nn.Sequential(*layers)
    for i, layer in enumerate(layers):
        layer.i, layer.f, layer.type = i, -1, type(layer).__name__
        layer.np = sum(p.numel() for p in layer.parameters())
    head = layers[22]
    head.nl, head.reg_max, head.no, head.shape = 3, 16, 144, None
    head.stride, head.anchors, head.strides = torch.tensor([8.0, 16.0, 32.0]), torch.empty(0), torch.empty(0)
    head.dfl.c1 = 16
    detection.yaml = {"nc": 80, "scale": "n", "backbone": [[-1, 1, "Conv", [64, 3, 2]]], "head": []}
    detection.stride = torch.tensor([8.0, 16.0, 32.0])
    detection.names = {0: "person", 1: "bicycle"}
    detection.save = [4, 6, 9, 12, 15, 18, 21]
    detection.args = classes["IterableSimpleNamespace"](imgsz=640, conf=None, iou=0.7)
    detection.half()
    for p in detection.parameters():
        p.requires_grad = False
    expected = {k: v.clone() for k, v in detection.state_dict().items()}
    ckpt = {"date": "2023-11-12T00:00:00", "version": "8.1.0", "license": "AGPL-3.0 License",
            "docs": "https://docs.ultralytics.com", "epoch": -1, "best_fitness": np.float64(0.53),
            "model": detection, "ema": None, "updates": None, "optimizer": None,
            "train_args": {"model": "yolov8n.yaml", "imgsz": 640, "epochs": 500, "mosaic": 1.0}}
    return ckpt, expected


@pytest.mark.parametrize("layout", [SPLIT, FLAT])
def test_reads_ultralytics_file(tmp_path, monkeypatch, layout):
    ckpt, expected = ultralytics_checkpoint(monkeypatch, layout, randomized())
    path = str(tmp_path / "yolov8n.pt")
    torch.save(ckpt, path)
    monkeypatch.undo()                         # the reader must not need the fake ultralytics
    assert not any(m.startswith("ultralytics") for m in sys.modules)

    sd = read_yolo_state_dict(path)
    assert set(sd) == set(expected)
    assert all(torch.equal(sd[k], expected[k]) and sd[k].dtype == expected[k].dtype for k in expected)

    model = load_yolo(path)
    assert isinstance(model, YoloV8) and not model.training
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], expected[k].to(loaded[k].dtype)) for k in expected)
    assert loaded["model.0.conv.weight"].dtype == torch.float32


def test_ema_model_is_preferred(tmp_path, monkeypatch):
    ckpt, _ = ultralytics_checkpoint(monkeypatch, SPLIT, randomized(seed=1))
    ema, expected = ultralytics_checkpoint(monkeypatch, SPLIT, randomized(seed=2))
    ckpt["ema"] = ema["model"]
    path = str(tmp_path / "last.pt")
    torch.save(ckpt, path)
    monkeypatch.undo()
    sd = read_yolo_state_dict(path)
    assert all(torch.equal(sd[k], expected[k]) for k in expected)


def test_reads_plain_state_dict_and_is_deterministic(tmp_path):
    model = randomized()
    path = str(tmp_path / "yolov8n_state_dict.pt")
    torch.save(model.state_dict(), path)
    first, second = load_yolo(path), load_yolo(path)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), model.state_dict().values()))
    image = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        out = first(image)
        assert torch.equal(out, first(image))
        assert torch.equal(out, second(image))
        assert torch.equal(out, model(image))
    # anchors: 12*16 + 6*8 + 3*4
    assert out.shape == (1, 84, 252)
    assert torch.isfinite(out).all()


def test_foreign_globals_are_refused_and_named(tmp_path, monkeypatch):
    ckpt, _ = ultralytics_checkpoint(monkeypatch, SPLIT, randomized())
    other = fake_ultralytics(monkeypatch, SPLIT, {"C3": "ultralytics.nn.modules.block"})["C3"]
    ckpt["model"].model[2].__class__ = other            # a YOLOv5-style block in the tree

    class Payload:
        def __reduce__(self):
            return os.getcwd, ()

    ckpt["train_args"]["callback"] = Payload()
    path = str(tmp_path / "foreign.pt")
    torch.save(ckpt, path)
    monkeypatch.undo()
    with pytest.raises(CheckpointError) as err:
        read_yolo_state_dict(path)
    message = str(err.value)
    assert "ultralytics.nn.modules.block.C3" in message
    assert f"{os.getcwd.__module__}.getcwd" in message
    assert yolo_checkpoint.KNOWN_TO_WORK in message and "state_dict" in message
    assert "ultralytics.nn.modules.block.C2f" not in message


def corrupt_cases(path_of_good: str, tmp_path) -> dict[str, tuple[str, str]]:
    """name -> (file, text the error must contain)."""
    good = torch.load(path_of_good, weights_only=True)
    cases = {}

    def save(name, sd, expect):
        p = str(tmp_path / f"{name}.pt")
        torch.save(sd, p)
        cases[name] = (p, expect)

    save("missing", {k: v for k, v in good.items() if k != "model.12.m.0.cv2.bn.running_var"},
         "model.12.m.0.cv2.bn.running_var")
    save("wrong_shape", {**good, "model.22.cv3.1.2.bias": torch.zeros(81)}, "model.22.cv3.1.2.bias")
    nan = good["model.5.conv.weight"].clone()
    nan[0, 0, 0, 0] = float("nan")
    save("nan", {**good, "model.5.conv.weight": nan}, "NaN or inf in model.5.conv.weight")
    save("unknown_scale", {**good, "model.0.conv.weight": torch.zeros(24, 3, 3, 3)}, "match no YOLOv8 scale")
    save("not_tensors", {"model.0.conv.weight": "x", "epoch": 3}, "non-tensor entries: epoch, model.0.conv.weight")
    save("not_yolo", {"encoder.weight": torch.zeros(2)}, "not a YOLOv8 detection checkpoint")
    raw = open(path_of_good, "rb").read()
    for name, data in (("truncated", raw[: len(raw) // 2]), ("garbage", bytes(range(256)) * 16)):
        p = str(tmp_path / f"{name}.pt")
        with open(p, "wb") as f:
            f.write(data)
        cases[name] = (p, "corrupt")
    cases["absent"] = (str(tmp_path / "absent.pt"), "does not exist")
    return cases


def test_bad_checkpoints_raise_naming_the_problem(tmp_path):
    good = str(tmp_path / "good.pt")
    torch.save(randomized().state_dict(), good)
    for name, (path, expect) in corrupt_cases(good, tmp_path).items():
        with pytest.raises(CheckpointError) as err:
            load_yolo(path)
        assert expect in str(err.value), name


# ---------------------------------------------------------------------------------------------
# pipeline pieces

def test_letterbox_minimal_rectangle_and_round_trip():
    rgb = np.zeros((270, 480, 3), np.uint8)
    rgb[60:150, 120:240] = 255
    image, fit = letterbox(rgb, 640, rect=True)
    # gain 4/3 -> 640x360, padded by (640-360) % 32 = 24 rows, 12 on each side
    assert image.shape == (1, 3, 384, 640) and image.dtype == torch.float32
    assert (fit.gain, fit.pad_x, fit.pad_y) == (pytest.approx(4 / 3), 0, 12)
    assert torch.allclose(image[0, :, :12], torch.full((3, 12, 640), 114 / 255))
    assert torch.allclose(image[0, :, -12:], torch.full((3, 12, 640), 114 / 255))
    ys, xs = np.nonzero(image[0, 0].numpy() > 0.99)
    found = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
    np.testing.assert_allclose(fit.to_image(found), [[120, 60, 240, 150]], atol=1.0)
    # exact for a box given in input coordinates; clipped where it leaves the image
    box = np.array([[10 * 4 / 3, 12 + 20 * 4 / 3, 400 * 4 / 3, 12 + 250 * 4 / 3],
                    [-50, 0, 700, 390]], np.float32)
    np.testing.assert_allclose(fit.to_image(box), [[10, 20, 400, 250], [0, 0, 480, 270]], atol=1e-3)


def test_letterbox_square_portrait_and_size_check():
    rgb = np.full((500, 300, 3), 7, np.uint8)
    image, fit = letterbox(rgb, 640, rect=False)
    # gain 1.28 -> 384x640, centred in 640x640 with 128 columns of grey on each side
    assert image.shape == (1, 3, 640, 640)
    assert (fit.pad_x, fit.pad_y) == (128, 0)
    assert torch.allclose(image[0, :, :, :128], torch.tensor(114 / 255))
    assert torch.allclose(image[0, :, :, 128:512], torch.tensor(7 / 255))
    np.testing.assert_allclose(fit.to_image(np.array([[128.0, 0.0, 512.0, 640.0]], np.float32)),
                               [[0, 0, 300, 500]], atol=1e-3)
    small, fit = letterbox(np.zeros((100, 200, 3), np.uint8), 320, rect=True)
    assert small.shape == (1, 3, 160, 320) and fit.gain == 1.6
    # 97 rows -> 155, padded by 5: 2 above, 3 below
    odd, fit = letterbox(np.full((97, 200, 3), 255, np.uint8), 320, rect=True)
    assert odd.shape == (1, 3, 160, 320) and fit.pad_y == 2
    assert (odd[0, 0, :, 0] < 0.5).nonzero().flatten().tolist() == [0, 1, 157, 158, 159]
    with pytest.raises(InputError):
        letterbox(rgb, 600)


def test_nms_on_hand_made_boxes():
    boxes = np.array([[0, 0, 10, 10],     # 0: .90
                      [0, 0, 10, 5],      # 1: .80, IoU 0.5 with 0
                      [0, 0, 10, 8],      # 2: .85, IoU 0.8 with 0
                      [20, 20, 30, 30],   # 3: .70, apart
                      [0, 0, 10, 10]],    # 4: .60, same as 0
                     np.float32)
    scores = np.array([0.9, 0.8, 0.85, 0.7, 0.6], np.float32)
    assert nms(boxes, scores, 0.7).tolist() == [0, 1, 3]
    assert nms(boxes, scores, 0.5).tolist() == [0, 1, 3]       # IoU equal to the threshold survives
    assert nms(boxes, scores, 0.4).tolist() == [0, 3]
    assert nms(boxes, scores, 0.9).tolist() == [0, 2, 1, 3]
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.7).tolist() == []


def test_decode_known_dfl_logits_give_known_boxes():
    head = Detect(nc=3, ch=(8, 8, 8))
    # a 64x96 input: grids 8x12, 4x6, 2x3
    levels = [torch.full((1, 64 + 3, 64 // s, 96 // s), -40.0) for s in (8, 16, 32)]
    # level 0, row 2, column 5: sides left 2, top 3, right 1 and bottom halfway between bins 4 and 5
    cell = levels[0][0, :, 2, 5]
    cell[0 * 16 + 2] = cell[1 * 16 + 3] = cell[2 * 16 + 1] = 30.0
    cell[3 * 16 + 4] = cell[3 * 16 + 5] = 30.0
    cell[64 + 1] = 0.0                                   # class 1 at probability 0.5
    # level 2, row 1, column 0: every side exactly 1 bin
    for side in range(4):
        levels[2][0, side * 16 + 1, 1, 0] = 30.0
    out = head.decode(levels)
    assert out.shape == (1, 4 + 3, 96 + 24 + 6)
    # centre (5.5, 2.5) cells -> box x 3.5..6.5, y -0.5..7 cells -> times stride 8
    torch.testing.assert_close(out[0, :4, 2 * 12 + 5], torch.tensor([40.0, 26.0, 24.0, 60.0]))
    torch.testing.assert_close(out[0, 4:, 2 * 12 + 5], torch.tensor([0.0, 0.5, 0.0]), atol=1e-12, rtol=0)
    # centre (0.5, 1.5) cells, 1 cell each way, stride 32
    torch.testing.assert_close(out[0, :4, 96 + 24 + 1 * 3 + 0], torch.tensor([16.0, 48.0, 64.0, 64.0]))
    # all-equal logits: expectation 7.5 bins each side
    torch.testing.assert_close(out[0, :4, 0], torch.tensor([4.0, 4.0, 120.0, 120.0]))


class CannedModel(nn.Module):
    """Stands in for YoloV8: returns fixed predictions (1, 84, A) for whatever input it gets."""

    def __init__(self, pred: torch.Tensor) -> None:
        super().__init__()
        self.pred = nn.Parameter(pred, requires_grad=False)
        self.seen: list[tuple[int, ...]] = []

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(image.shape))
        return self.pred


def test_person_detector_filters_suppresses_and_maps_back():
    pred = torch.zeros(1, 84, 10)

    def put(a, xywh, person, other=0.0):
        pred[0, :4, a] = torch.tensor(xywh)
        pred[0, 4, a] = person
        pred[0, 9, a] = other

    put(0, [320, 204, 100, 200], 0.9)             # a person
    put(1, [322, 206, 100, 200], 0.8)             # the same person again
    put(2, [100, 100, 40, 40], 0.45)              # too weak
    put(3, [500, 200, 40, 80], 0.6, other=0.95)   # a car rather than a person
    put(4, [10, 100, 60, 40], 0.7)                # crosses the left edge
    put(5, [240, 4, 60, 6], 0.85)                 # entirely in the top padding: nothing of it in the image
    model = CannedModel(pred)
    rgb = np.zeros((270, 480, 3), np.uint8)
    boxes = PersonDetector(model)(rgb)
    assert model.seen == [(1, 3, 384, 640)]
    # input = image * 4/3 + (0, 12)
    np.testing.assert_allclose(boxes, [[202.5, 69, 277.5, 219, 0.9], [0, 51, 30, 81, 0.7]], atol=1e-4)
    assert boxes.dtype == np.float32
    assert len(PersonDetector(model, conf=0.4)(rgb)) == 3
    assert len(PersonDetector(model, iou=0.99)(rgb)) == 3
    assert len(PersonDetector(model, max_det=1)(rgb)) == 1
    assert PersonDetector(model, conf=0.95)(rgb).shape == (0, 5)
    PersonDetector(model, rect=False, input_size=320)(rgb)
    assert model.seen[-1] == (1, 3, 320, 320)
    with pytest.raises(InputError):
        PersonDetector(model)(rgb.astype(np.float32))
    with pytest.raises(InputError):
        PersonDetector(model, input_size=500)


def test_person_detector_runs_small_model():
    detector = PersonDetector(randomized(), conf=0.0)
    rgb = np.random.default_rng(0).integers(0, 256, (120, 200, 3), dtype=np.uint8)
    boxes = detector(rgb)
    assert boxes.ndim == 2 and boxes.shape[1] == 5 and len(boxes) > 0
    assert np.isfinite(boxes).all()
    assert (boxes[:, [0, 2]] >= 0).all() and (boxes[:, [0, 2]] <= 200).all()
    assert (boxes[:, [1, 3]] >= 0).all() and (boxes[:, [1, 3]] <= 120).all()
    assert (np.diff(boxes[:, 4]) <= 0).all()
    np.testing.assert_array_equal(boxes, detector(rgb))
