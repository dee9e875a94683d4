"""HMR2.0 feature / first-frame body estimator: checkpoint layout, loading, crop, flip, 6D convention."""
from __future__ import annotations

import math
import sys
import types

import cv2
import numpy as np
import pytest
import torch

from wham_ros.errors import CheckpointError, InputError
from wham_ros.geometry.rotations import axis_angle_to_matrix, matrix_to_rot6d
from wham_ros.perception.base import InitialBody
from wham_ros.perception.hmr2 import (
    HMR2,
    HMR2Estimator,
    crop_box,
    load_hmr2,
    preprocess,
)
from wham_ros.perception.smpl_head import DecoderConfig, hmr2_matrix_to_rot6d, hmr2_rot6d_to_matrix
from wham_ros.perception.vit import ViTConfig

SMALL_VIT = ViTConfig(embed_dim=64, depth=2, num_heads=4)
SMALL_DEC = DecoderConfig(dim=32, depth=2, heads=2, dim_head=8, mlp_dim=48, context_dim=64)
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


# ----------------------------------------------------------------------------------------------- helpers

def _random_model(seed: int = 0) -> HMR2:
    """A small HMR2 whose every tensor (embeddings, norms, mean-parameter buffers too) is random."""
    gen = torch.Generator().manual_seed(seed)
    model = HMR2(SMALL_VIT, SMALL_DEC).eval()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            is_norm_gain = "norm" in name and name.endswith(".weight")
            tensor.copy_(torch.randn(tensor.shape, generator=gen) * (0.3 if is_norm_gain else 0.1) + is_norm_gain)
        # mean pose: near-identity rotations in column-6D, like smpl_mean_params.npz
        model.smpl_head.init_body_pose.add_(torch.tensor([1.0, 0, 0, 0, 1, 0]).repeat(24))
    return model


def _lightning_dict(model: HMR2) -> dict:
    """What a Lightning checkpoint of the HMR2 module holds, with the entries inference skips."""
    state = dict(model.state_dict())
    state["discriminator.D_conv1.weight"] = torch.randn(32, 9, 1, 1)
    state["discriminator.D_alljoints_out.bias"] = torch.randn(1)
    state["smpl.betas"] = torch.zeros(1, 10)
    state["smpl.shapedirs"] = torch.randn(6, 3, 10)
    state["smpl.faces_tensor"] = torch.zeros(4, 3, dtype=torch.long)
    state["initialized"] = torch.tensor(True)
    return {"epoch": 35, "global_step": 1_000_000, "pytorch-lightning_version": "1.8.1",
            "state_dict": state, "optimizer_states": [], "hyper_parameters": {"cfg": {"MODEL": {"IMAGE_SIZE": 256}}}}


def _save(tmp_path, content, name: str = "hmr2a.ckpt") -> str:
    path = str(tmp_path / name)
    torch.save(content, path)
    return path


def _load_small(path: str) -> HMR2:
    return load_hmr2(path, vit=SMALL_VIT, decoder=SMALL_DEC)


def _image(height: int = 120, width: int = 160, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 256, (height, width, 3), dtype=np.uint8)


def _padded_crop(rgb: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """Pixels [y0:y1, x0:x1] of ``rgb`` on an infinite zero canvas, resized to 256x256 (float32)."""
    pad = max(0, -x0, -y0, x1 - rgb.shape[1], y1 - rgb.shape[0])
    canvas = np.pad(rgb.astype(np.float32), ((pad, pad), (pad, pad), (0, 0)))
    return cv2.resize(canvas[y0 + pad:y1 + pad, x0 + pad:x1 + pad], (256, 256))


# ------------------------------------------------------------------------------------- checkpoint layout

def _expected_head_entries() -> dict[str, tuple[int, ...]]:
    """The published SMPLTransformerDecoderHead of HMR2.0: depth 6, 8x64 heads, dim 1024, context 1280."""
    dim, inner, ctx, mlp = 1024, 8 * 64, 1280, 1024
    entries = {
        "smpl_head.init_body_pose": (1, 144), "smpl_head.init_betas": (1, 10), "smpl_head.init_cam": (1, 3),
        "smpl_head.transformer.pos_embedding": (1, 1, dim),
        "smpl_head.transformer.to_token_embedding.weight": (dim, 1),
        "smpl_head.transformer.to_token_embedding.bias": (dim,),
        "smpl_head.decpose.weight": (144, dim), "smpl_head.decpose.bias": (144,),
        "smpl_head.decshape.weight": (10, dim), "smpl_head.decshape.bias": (10,),
        "smpl_head.deccam.weight": (3, dim), "smpl_head.deccam.bias": (3,),
    }
    for i in range(6):
        p = f"smpl_head.transformer.transformer.layers.{i}"
        for j in range(3):
            entries[f"{p}.{j}.norm.weight"] = (dim,)
            entries[f"{p}.{j}.norm.bias"] = (dim,)
        entries[f"{p}.0.fn.to_qkv.weight"] = (3 * inner, dim)
        entries[f"{p}.0.fn.to_out.0.weight"] = (dim, inner)
        entries[f"{p}.0.fn.to_out.0.bias"] = (dim,)
        entries[f"{p}.1.fn.to_q.weight"] = (inner, dim)
        entries[f"{p}.1.fn.to_kv.weight"] = (2 * inner, ctx)
        entries[f"{p}.1.fn.to_out.0.weight"] = (dim, inner)
        entries[f"{p}.1.fn.to_out.0.bias"] = (dim,)
        entries[f"{p}.2.fn.net.0.weight"] = (mlp, dim)
        entries[f"{p}.2.fn.net.0.bias"] = (mlp,)
        entries[f"{p}.2.fn.net.3.weight"] = (dim, mlp)
        entries[f"{p}.2.fn.net.3.bias"] = (dim,)
    return entries


def test_full_size_state_dict_matches_the_published_layout():
    with torch.device("meta"):
        model = HMR2()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    head = {k: s for k, s in shapes.items() if k.startswith("smpl_head.")}
    assert head == _expected_head_entries()

    backbone = {k: s for k, s in shapes.items() if k.startswith("backbone.")}
    assert len(shapes) == len(head) + len(backbone)
    # ViT-H: patch conv (2) + pos_embed + 32 blocks x 12 tensors + last_norm (2)
    assert len(backbone) == 2 + 1 + 32 * 12 + 2
    assert backbone["backbone.patch_embed.proj.weight"] == (1280, 3, 16, 16)
    assert backbone["backbone.pos_embed"] == (1, 16 * 12 + 1, 1280)
    assert backbone["backbone.blocks.31.attn.qkv.weight"] == (3 * 1280, 1280)
    assert backbone["backbone.blocks.31.mlp.fc1.weight"] == (4 * 1280, 1280)
    assert backbone["backbone.last_norm.bias"] == (1280,)

    vit_params = 1280 * 3 * 256 + 1280 + 193 * 1280 + 32 * (12 * 1280**2 + 13 * 1280) + 2 * 1280
    head_params = sum(math.prod(s) for s in _expected_head_entries().values())
    assert sum(math.prod(s) for s in shapes.values()) == vit_params + head_params


def test_decoder_equals_an_explicit_computation():
    """Pre-norm self-attn, cross-attn, FFN with residuals, no final norm; scale dim_head**-0.5; zero query."""
    model = _random_model(3)
    sd = {k.removeprefix("smpl_head.transformer."): v for k, v in model.state_dict().items()}
    tokens = torch.randn(2, 192, SMALL_VIT.embed_dim)
    heads, dh = SMALL_DEC.heads, SMALL_DEC.dim_head

    def layer_norm(x, p):
        return torch.nn.functional.layer_norm(x, x.shape[-1:], sd[p + ".weight"], sd[p + ".bias"], eps=1e-5)

    def attend(q, k, v):
        def split(t):
            return t.reshape(t.shape[0], t.shape[1], heads, dh).permute(0, 2, 1, 3)
        w = torch.softmax(split(q) @ split(k).transpose(-1, -2) / math.sqrt(dh), dim=-1)
        return (w @ split(v)).permute(0, 2, 1, 3).reshape(q.shape[0], q.shape[1], heads * dh)

    x = (sd["to_token_embedding.bias"] + sd["pos_embedding"][0, 0]).expand(2, 1, -1)   # the zero query
    for i in range(SMALL_DEC.depth):
        p = f"transformer.layers.{i}"
        h = layer_norm(x, f"{p}.0.norm")
        q, k, v = (h @ sd[f"{p}.0.fn.to_qkv.weight"].T).chunk(3, dim=-1)
        x = x + attend(q, k, v) @ sd[f"{p}.0.fn.to_out.0.weight"].T + sd[f"{p}.0.fn.to_out.0.bias"]
        h = layer_norm(x, f"{p}.1.norm")
        k, v = (tokens @ sd[f"{p}.1.fn.to_kv.weight"].T).chunk(2, dim=-1)
        q = h @ sd[f"{p}.1.fn.to_q.weight"].T
        x = x + attend(q, k, v) @ sd[f"{p}.1.fn.to_out.0.weight"].T + sd[f"{p}.1.fn.to_out.0.bias"]
        h = layer_norm(x, f"{p}.2.norm")
        h = torch.nn.functional.gelu(h @ sd[f"{p}.2.fn.net.0.weight"].T + sd[f"{p}.2.fn.net.0.bias"])
        x = x + h @ sd[f"{p}.2.fn.net.3.weight"].T + sd[f"{p}.2.fn.net.3.bias"]
    feature = x[:, 0]

    with torch.no_grad():
        out = model.smpl_head(tokens)
    torch.testing.assert_close(out.feature, feature, atol=1e-5, rtol=1e-5)
    head = model.smpl_head
    pose6d = feature @ head.decpose.weight.T + head.decpose.bias + head.init_body_pose
    rot = hmr2_rot6d_to_matrix(pose6d.reshape(2, 24, 6))
    torch.testing.assert_close(out.global_orient, rot[:, 0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.body_pose, rot[:, 1:], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.betas, feature @ head.decshape.weight.T + head.decshape.bias + head.init_betas)
    torch.testing.assert_close(out.pred_cam, feature @ head.deccam.weight.T + head.deccam.bias + head.init_cam)


# ----------------------------------------------------------------------------------------------- loading

def test_lightning_checkpoint_loads_and_reproduces_the_model(tmp_path):
    source = _random_model(1)
    path = _save(tmp_path, _lightning_dict(source))
    loaded = _load_small(path)
    assert not loaded.training
    assert all(t.device.type == "cpu" for t in loaded.state_dict().values())
    crop = torch.randn(2, 3, 256, 192)
    with torch.no_grad():
        for a, b in zip(source(crop), loaded(crop)):
            assert torch.equal(a, b)


def test_a_bare_state_dict_loads_too(tmp_path):
    source = _random_model(1)
    loaded = _load_small(_save(tmp_path, dict(source.state_dict()), "weights.pt"))
    assert torch.equal(loaded.smpl_head.deccam.weight, source.smpl_head.deccam.weight)


def test_yacs_config_in_hyper_parameters_is_read_without_running_code(tmp_path, monkeypatch):
    """Lightning pickles HMR2's yacs CfgNode; it is read as plain data with weights_only still on."""

    class CfgNode(dict):
        def __init__(self, values):
            super().__init__({k: CfgNode(v) if isinstance(v, dict) else v for k, v in values.items()})
            object.__setattr__(self, "__immutable__", True)
            object.__setattr__(self, "__deprecated_keys__", set())
            object.__setattr__(self, "__new_allowed__", False)

        def __setattr__(self, name, value):
            raise AssertionError("loading must not call the config's methods")

    yacs, config = types.ModuleType("yacs"), types.ModuleType("yacs.config")
    CfgNode.__module__, CfgNode.__qualname__ = "yacs.config", "CfgNode"
    config.CfgNode = CfgNode
    monkeypatch.setitem(sys.modules, "yacs", yacs)
    monkeypatch.setitem(sys.modules, "yacs.config", config)
    content = _lightning_dict(_random_model(2))
    content["hyper_parameters"] = {"cfg": CfgNode({"MODEL": {"IMAGE_SIZE": 256, "BBOX_SHAPE": [192, 256]},
                                                   "SMPL": {"MODEL_PATH": "data/smpl"}})}
    path = _save(tmp_path, content)
    monkeypatch.delitem(sys.modules, "yacs.config")    # as on a machine without 4DHumans
    monkeypatch.delitem(sys.modules, "yacs")
    with pytest.raises(Exception, match=r"yacs\.config\.CfgNode"):
        torch.load(path, weights_only=True)
    loaded = _load_small(path)
    assert torch.equal(loaded.smpl_head.init_cam, content["state_dict"]["smpl_head.init_cam"])


def test_other_python_objects_give_a_conversion_hint(tmp_path):
    content = _lightning_dict(_random_model(2))
    content["hyper_parameters"] = {"cfg": types.SimpleNamespace(a=1)}
    path = _save(tmp_path, content)
    with pytest.raises(CheckpointError, match=r"hmr2a\.ckpt.*weights_only=False.*state_dict"):
        _load_small(path)


def _drop(sd: dict) -> str:
    del sd["smpl_head.transformer.transformer.layers.1.1.fn.to_kv.weight"]
    return "smpl_head.transformer.transformer.layers.1.1.fn.to_kv.weight"


def _extra(sd: dict) -> str:
    sd["smpl_head.decpose2.weight"] = torch.zeros(3)
    return "smpl_head.decpose2.weight"


def _reshape(sd: dict) -> str:
    sd["smpl_head.decshape.weight"] = torch.zeros(11, SMALL_DEC.dim)
    return "smpl_head.decshape.weight"


def _nan(sd: dict) -> str:
    sd["backbone.blocks.1.mlp.fc2.bias"][3] = float("nan")
    return "backbone.blocks.1.mlp.fc2.bias"


@pytest.mark.parametrize("corrupt", [_drop, _extra, _reshape, _nan], ids=["missing", "unknown", "shape", "nan"])
def test_bad_entries_are_named(tmp_path, corrupt):
    content = _lightning_dict(_random_model(4))
    name = corrupt(content["state_dict"])
    path = _save(tmp_path, content)
    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")) as err:
        _load_small(path)
    assert path in str(err.value)


def test_corrupt_truncated_and_foreign_files(tmp_path):
    path = _save(tmp_path, _lightning_dict(_random_model(5)))
    with open(path, "rb") as f:
        data = f.read()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"\x80\x02not a checkpoint" * 10)
    for bad in (truncated, garbage, tmp_path / "missing.ckpt"):
        with pytest.raises(CheckpointError, match=bad.name):
            _load_small(str(bad))
    with pytest.raises(CheckpointError, match="list"):
        _load_small(_save(tmp_path, [torch.zeros(1)], "list.ckpt"))
    with pytest.raises(CheckpointError, match=r"not a HMR2\.0 checkpoint"):
        _load_small(_save(tmp_path, {"state_dict": {"model.x": torch.zeros(1)}}, "other.ckpt"))


def test_full_size_loader_rejects_a_small_checkpoint(tmp_path):
    path = _save(tmp_path, _lightning_dict(_random_model(6)))
    with pytest.raises(CheckpointError, match=r"missing \d+ keys: backbone\.blocks\.10\."):
        load_hmr2(path)


# ----------------------------------------------------------------------------------------- the estimator

@pytest.fixture(scope="module")
def estimator(tmp_path_factory) -> HMR2Estimator:
    path = _save(tmp_path_factory.mktemp("hmr2"), _lightning_dict(_random_model(7)))
    return HMR2Estimator(_load_small(path))


def test_estimator_outputs_shapes_and_valid_rotations(estimator):
    rgb = _image()
    boxes = np.array([[80.0, 60.0, 0.5], [10.0, 100.0, 0.8], [150.0, 20.0, 0.3]])
    res = estimator(rgb, boxes)
    assert res.feature.shape == (3, SMALL_DEC.dim) and res.feature.dtype == np.float32
    assert res.global_orient.shape == (3, 3, 3) and res.body_pose.shape == (3, 23, 3, 3)
    assert res.betas.shape == (3, 10) and res.pred_cam.shape == (3, 3)
    rot = np.concatenate([res.global_orient[:, None], res.body_pose], axis=1).astype(np.float64)
    np.testing.assert_allclose(rot @ rot.swapaxes(-1, -2), np.broadcast_to(np.eye(3), rot.shape), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-5)
    assert len({res.feature[i].tobytes() for i in range(3)}) == 3

    # one batch equals the boxes one at a time
    for i in range(3):
        single = estimator(rgb, boxes[i:i + 1])
        np.testing.assert_allclose(single.feature[0], res.feature[i], atol=1e-5)

    body = res.initial_body(1)
    assert isinstance(body, InitialBody)
    np.testing.assert_array_equal(body.body_pose, res.body_pose[1])
    assert body.global_orient.shape == (3, 3) and body.betas.shape == (10,)


def test_estimator_is_deterministic_across_calls_and_loads(tmp_path, estimator):
    rgb, boxes = _image(seed=3), np.array([[70.0, 50.0, 0.45]])
    a, b = estimator(rgb, boxes), estimator(rgb, boxes)
    path = _save(tmp_path, _lightning_dict(_random_model(7)))
    c = HMR2Estimator(_load_small(path))(rgb, boxes)
    for name in ("feature", "global_orient", "body_pose", "betas", "pred_cam"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
        assert np.array_equal(getattr(a, name), getattr(c, name))


def test_no_boxes(estimator):
    res = estimator(_image(), np.zeros((0, 3)))
    assert res.feature.shape == (0, SMALL_DEC.dim) and res.body_pose.shape == (0, 23, 3, 3)
    assert res.global_orient.shape == (0, 3, 3) and res.betas.shape == (0, 10) and res.pred_cam.shape == (0, 3)
    assert estimator(_image(), np.zeros((0, 3)), flip=True).feature.shape == (0, SMALL_DEC.dim)


@pytest.mark.parametrize("rgb, boxes", [
    (np.zeros((10, 10, 3), np.float32), [[5.0, 5.0, 0.1]]),
    (np.zeros((10, 10), np.uint8), [[5.0, 5.0, 0.1]]),
    (np.zeros((10, 10, 3), np.uint8), [[5.0, 5.0]]),
    (np.zeros((10, 10, 3), np.uint8), [[5.0, 5.0, 0.0]]),
    (np.zeros((10, 10, 3), np.uint8), [[5.0, np.nan, 0.1]]),
    (np.zeros((10, 10, 3), np.uint8), [[5.0, 5.0, 1e-4]]),
])
def test_bad_inputs(estimator, rgb, boxes):
    with pytest.raises(InputError):
        estimator(rgb, np.array(boxes))


# ---------------------------------------------------------------------------------------------- the crop

def test_crop_of_a_box_inside_the_image_is_a_resized_slice():
    rgb = _image(200, 300)
    crop = crop_box(rgb, np.array([150.3, 90.2, 0.6]))      # side 120: x 90.3..210.3, y 30.2..150.2
    expected = cv2.resize(rgb[30:150, 90:210].astype(np.float32), (256, 256), interpolation=cv2.INTER_LINEAR)
    assert crop.dtype == np.float32 and crop.shape == (256, 256, 3)
    np.testing.assert_array_equal(crop, expected)


def test_crop_hanging_off_the_image_is_zero_padded():
    rgb = _image(100, 100)
    crop = crop_box(rgb, np.array([0.0, 100.0, 0.5]))       # side 100 centred on the bottom-left corner
    np.testing.assert_array_equal(crop, _padded_crop(rgb, -50, 50, 50, 150))
    # left half and bottom half come from outside the image, away from the bilinear seam
    assert (crop[:, :120] == 0).all() and (crop[136:] == 0).all()
    assert (crop[:120, 136:] > 0).all()
    assert (crop_box(rgb, np.array([400.0, 50.0, 0.5])) == 0).all()


@pytest.mark.parametrize("cx, x0", [(60.5, 10), (61.5, 12), (60.75, 11)])
def test_crop_corners_round_half_to_even(cx, x0):
    """Corners near .5 follow WHAM's crop: its float64 inverse map, then numpy's half-to-even rounding.

    (60.5: 10.4999.. -> 10 and 110.5 -> 110; 61.5: 11.5 -> 12 and 111.5 -> 112.)
    """
    rgb = _image(100, 200)
    crop = crop_box(rgb, np.array([cx, 50.0, 0.5]))
    np.testing.assert_array_equal(crop, _padded_crop(rgb, x0, 0, x0 + 100, 100))


def test_preprocess_normalises_and_keeps_the_central_columns():
    rgb = _image(150, 150)
    box = np.array([75.0, 75.0, 0.6])
    batch = preprocess(rgb, box[None])
    full = (crop_box(rgb, box) / 255.0 - MEAN) / STD
    assert batch.shape == (1, 3, 256, 192) and batch.dtype == torch.float32
    np.testing.assert_allclose(batch[0].numpy(), full[:, 32:224].transpose(2, 0, 1), atol=1e-6)


def test_flipped_crop_equals_the_crop_of_the_mirrored_image(estimator):
    """Mirroring the 256x256 crop = cropping the mirrored image at cx -> W - cx (up to resize rounding)."""
    rgb = _image(120, 160, seed=5)
    width = rgb.shape[1]
    boxes = np.array([[70.3, 55.2, 0.45], [12.4, 90.0, 0.6]])
    mirrored_boxes = boxes.copy()
    mirrored_boxes[:, 0] = width - boxes[:, 0]
    mirrored = np.ascontiguousarray(rgb[:, ::-1])
    flipped = preprocess(rgb, boxes, flip=True)
    np.testing.assert_allclose(flipped.numpy(), preprocess(mirrored, mirrored_boxes).numpy(), atol=1e-4)
    assert not torch.allclose(flipped, preprocess(rgb, boxes), atol=1e-2)

    a, b = estimator(rgb, boxes, flip=True), estimator(mirrored, mirrored_boxes)
    np.testing.assert_allclose(a.feature, b.feature, atol=1e-3)
    np.testing.assert_allclose(a.body_pose, b.body_pose, atol=1e-3)


# --------------------------------------------------------------------------------------- 6D convention

def test_hmr2_6d_is_column_based_and_round_trips():
    R = axis_angle_to_matrix(torch.tensor([[0.3, -1.1, 0.7], [2.0, 0.1, -0.4]], dtype=torch.float64))
    d6 = hmr2_matrix_to_rot6d(R)
    torch.testing.assert_close(d6[:, :3], R[:, :, 0])                 # first column
    torch.testing.assert_close(d6[:, 3:], R[:, :, 1])                 # second column
    torch.testing.assert_close(hmr2_rot6d_to_matrix(d6), R)
    assert not torch.allclose(d6, matrix_to_rot6d(R))                # WHAM's row-6D differs
    # the official formula: view the 6 numbers as 2x3, transpose, and orthonormalise the columns
    raw = torch.tensor([[2.0, 0.0, 0.0, 1.0, 3.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(hmr2_rot6d_to_matrix(raw)[0], torch.eye(3, dtype=torch.float64))
    raw = torch.tensor([[0.0, 1.0, 0.0, -1.0, 0.5, 0.0]], dtype=torch.float64)
    expected = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(hmr2_rot6d_to_matrix(raw)[0], expected)
