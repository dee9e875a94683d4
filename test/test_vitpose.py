"""ViTPose-H: official parameter names, strict loading, and the top-down geometry (crop, flip, decode)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from wham_ros.errors import CheckpointError, InputError
from wham_ros.perception.vit import ViTConfig
from wham_ros.perception.vitpose import (
    ViTPose,
    ViTPoseEstimator,
    box_to_center_scale,
    crop_people,
    decode_heatmaps,
    flip_heatmaps,
    heatmap_to_image,
    load_vitpose,
    warp_matrix,
)

SMALL = ViTConfig(embed_dim=64, depth=2, num_heads=4)


def official_shapes() -> dict[str, tuple[int, ...]]:
    """ViTPose_huge_coco_256x192: ViT-H/16 (1280 wide, 32 blocks, MLP 5120, 16x12 tokens + 1) and the simple head."""
    c, hidden = 1280, 5120
    shapes = {"backbone.patch_embed.proj.weight": (c, 3, 16, 16), "backbone.patch_embed.proj.bias": (c,),
              "backbone.pos_embed": (1, 193, c)}
    for i in range(32):
        b = f"backbone.blocks.{i}."
        shapes.update({b + "norm1.weight": (c,), b + "norm1.bias": (c,),
                       b + "attn.qkv.weight": (3 * c, c), b + "attn.qkv.bias": (3 * c,),
                       b + "attn.proj.weight": (c, c), b + "attn.proj.bias": (c,),
                       b + "norm2.weight": (c,), b + "norm2.bias": (c,),
                       b + "mlp.fc1.weight": (hidden, c), b + "mlp.fc1.bias": (hidden,),
                       b + "mlp.fc2.weight": (c, hidden), b + "mlp.fc2.bias": (c,)})
    shapes.update({"backbone.last_norm.weight": (c,), "backbone.last_norm.bias": (c,)})
    head = {"keypoint_head.deconv_layers.0.weight": (1280, 256, 4, 4),  # ConvTranspose2d: (in, out, k, k), no bias
            "keypoint_head.deconv_layers.3.weight": (256, 256, 4, 4),
            "keypoint_head.final_layer.weight": (17, 256, 1, 1), "keypoint_head.final_layer.bias": (17,)}
    for i in (1, 4):
        for name in ("weight", "bias", "running_mean", "running_var"):
            head[f"keypoint_head.deconv_layers.{i}.{name}"] = (256,)
        head[f"keypoint_head.deconv_layers.{i}.num_batches_tracked"] = ()
    return {**shapes, **head}


def random_state_dict(cfg: ViTConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random but plausible weights for every entry of ViTPose(cfg) (positive BN variances)."""
    g = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        own = ViTPose(cfg).state_dict()
    sd = {}
    for k, v in own.items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(1000, dtype=torch.long)
        elif k.endswith("running_var"):
            sd[k] = 0.5 + torch.rand(v.shape, generator=g)
        else:
            sd[k] = 0.2 * torch.randn(v.shape, generator=g)
    return sd


def save_official(path, sd) -> str:
    torch.save({"meta": {"epoch": 210, "iter": 0, "mmcv_version": "1.3.9", "CLASSES": None}, "state_dict": sd},
               str(path))
    return str(path)


@pytest.fixture(scope="module")
def small_sd():
    return random_state_dict(SMALL)


@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory, small_sd):
    return save_official(tmp_path_factory.mktemp("vitpose") / "vitpose-h-multi-coco.pth", small_sd)


@pytest.fixture(scope="module")
def estimator(small_ckpt):
    return ViTPoseEstimator(load_vitpose(small_ckpt, cfg=SMALL))


def test_full_size_names_and_shapes_are_the_official_ones():
    with torch.device("meta"):
        model = ViTPose()
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = official_shapes()
    assert sum(k.startswith("backbone.") for k in got) == 389
    assert sum(k.startswith("keypoint_head.") for k in got) == 14
    assert got == expected
    assert model.state_dict()["keypoint_head.deconv_layers.1.num_batches_tracked"].dtype == torch.long
    # backbone: patch 984,320 + position 247,040 + 32 blocks x 19,677,440 + last norm 2,560
    assert sum(p.numel() for p in model.backbone.parameters()) == 630_912_000
    # head: deconvs 5,242,880 + 1,048,576, BN affine 2 x 512, final conv 4,369
    assert sum(p.numel() for p in model.keypoint_head.parameters()) == 6_296_849


def test_official_file_loads_exactly_and_runs(small_ckpt, small_sd):
    model = load_vitpose(small_ckpt, cfg=SMALL)
    assert not model.training
    own = model.state_dict()
    assert set(own) == set(small_sd) and all(torch.equal(own[k], v) for k, v in small_sd.items())
    with torch.inference_mode():
        heatmaps = model(torch.randn(2, 3, 256, 192))
    assert heatmaps.shape == (2, 17, 64, 48) and torch.isfinite(heatmaps).all()


def test_bare_and_wrapped_state_dicts_load(tmp_path, small_sd):
    bare, wrapped = str(tmp_path / "bare.pth"), str(tmp_path / "wrapped.pth")
    torch.save(small_sd, bare)
    torch.save({"state_dict": {"module." + k: v for k, v in small_sd.items()}}, wrapped)
    for path in (bare, wrapped):
        own = load_vitpose(path, cfg=SMALL).state_dict()
        assert all(torch.equal(own[k], v) for k, v in small_sd.items())


def _missing(sd):
    del sd["keypoint_head.final_layer.bias"]


def _extra(sd):
    sd["keypoint_head.final_layer.scale"] = torch.ones(17)


def _shape(sd):
    sd["keypoint_head.deconv_layers.3.weight"] = torch.zeros(256, 128, 4, 4)


def _nan(sd):
    sd["backbone.blocks.1.mlp.fc2.weight"] = sd["backbone.blocks.1.mlp.fc2.weight"].clone()
    sd["backbone.blocks.1.mlp.fc2.weight"][0, 0] = float("nan")


@pytest.mark.parametrize(("damage", "message"), [
    (_missing, "missing 1 keys: keypoint_head.final_layer.bias"),
    (_extra, "unexpected 1 keys: keypoint_head.final_layer.scale"),
    (_shape, "keypoint_head.deconv_layers.3.weight (256, 128, 4, 4) (expected (256, 256, 4, 4))"),
    (_nan, "NaN or inf in backbone.blocks.1.mlp.fc2.weight"),
])
def test_damaged_checkpoint_is_refused_by_name(tmp_path, small_sd, damage, message):
    sd = dict(small_sd)
    damage(sd)
    path = save_official(tmp_path / "bad.pth", sd)
    with pytest.raises(CheckpointError) as err:
        load_vitpose(path, cfg=SMALL)
    assert message in str(err.value) and path in str(err.value)


def test_corrupt_foreign_and_absent_files_are_refused(tmp_path, small_ckpt):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(open(small_ckpt, "rb").read()[:5000])
    foreign = str(tmp_path / "foreign.pth")
    torch.save([torch.zeros(3)], foreign)
    for path, message in ((str(corrupt), "corrupt"), (foreign, "expected a state_dict"),
                          (str(tmp_path / "absent.pth"), "does not exist")):
        with pytest.raises(CheckpointError, match=message) as err:
            load_vitpose(path, cfg=SMALL)
        assert path in str(err.value)


def test_full_size_model_refuses_a_small_checkpoint(small_ckpt):
    with pytest.raises(CheckpointError, match=r"missing 360 keys: .* this is not a ViTPose-H checkpoint"):
        load_vitpose(small_ckpt)


def person_image(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (360, 480, 3), dtype=np.uint8)


def test_same_input_and_fresh_loads_give_identical_keypoints(small_ckpt, estimator):
    rgb, boxes = person_image(), np.array([[100.0, 40.0, 219.0, 339.0], [300.5, 120.25, 380.0, 300.0]])
    first = estimator(rgb, boxes)
    assert first.shape == (2, 17, 3) and first.dtype == np.float32 and np.isfinite(first).all()
    assert np.array_equal(first, estimator(rgb, boxes))
    a = ViTPoseEstimator(load_vitpose(small_ckpt, cfg=SMALL))(rgb, boxes)
    b = ViTPoseEstimator(load_vitpose(small_ckpt, cfg=SMALL))(rgb, boxes)
    assert np.array_equal(a, b) and np.array_equal(a, first)


def test_box_to_center_scale_by_hand():
    # 100 x 400 inclusive pixels: centre (150, 250); widened to 300 (= 0.75 * 400), times 1.25
    # 400 x 100: centre (300, 250); heightened to 533.33 (= 400 / 0.75), times 1.25
    center, size = box_to_center_scale(np.array([[100.0, 50.0, 199.0, 449.0], [100.0, 200.0, 499.0, 299.0]]))
    np.testing.assert_allclose(center, [[150.0, 250.0], [300.0, 250.0]])
    np.testing.assert_allclose(size, [[375.0, 500.0], [500.0, 2000.0 / 3.0]], rtol=1e-6)


def test_warp_sends_box_edges_to_crop_pixel_centres():
    m = warp_matrix(np.array([[150.0, 250.0]]), np.array([[375.0, 500.0]]))[0]
    image_points = np.array([[-37.5, 0.0, 1.0], [337.5, 500.0, 1.0], [150.0, 250.0, 1.0]])
    np.testing.assert_allclose(image_points @ m.T, [[0.0, 0.0], [191.0, 255.0], [95.5, 127.5]], atol=1e-4)


def test_crop_shows_an_image_dot_where_the_matrix_says():
    rgb = np.zeros((300, 400, 3), np.uint8)
    rgb[120, 170] = 255
    center, size = np.array([[180.5, 130.5]]), np.array([[191.0, 255.0]])  # one image pixel = one crop pixel
    crop = crop_people(rgb, center, size)
    assert crop.shape == (1, 256, 192, 3)
    peak = np.unravel_index(crop[0, ..., 0].argmax(), crop.shape[1:3])
    expected = warp_matrix(center, size)[0] @ np.array([170.0, 120.0, 1.0])
    assert (peak[1], peak[0]) == tuple(np.round(expected).astype(int)) == (85, 117)
    assert crop[0].sum() == 3 * 255


def test_box_outside_the_image_sees_black(estimator):
    rgb = person_image()
    center, size = box_to_center_scale(np.array([[1000.0, 1000.0, 1100.0, 1200.0], [-50.0, -80.0, 60.0, 100.0]]))
    crops = crop_people(rgb, center, size)
    assert not crops[0].any()
    assert not crops[1, :20].any() and crops[1, 128:, 96:].all(-1).mean() > 0.9
    out = estimator(rgb, np.array([[1000.0, 1000.0, 1100.0, 1200.0], [-50.0, -80.0, 60.0, 100.0]]))
    assert out.shape == (2, 17, 3) and np.isfinite(out).all()


def gaussian_map(u: float, v: float, sigma: float = 2.0) -> np.ndarray:
    y, x = np.mgrid[0:64, 0:48]
    return np.exp(-((x - u) ** 2 + (y - v) ** 2) / (2 * sigma**2)).astype(np.float32)


def test_decode_finds_a_subpixel_gaussian_peak_and_its_image_pixel():
    heatmaps = np.zeros((1, 17, 64, 48), np.float32)
    heatmaps[0, 0] = 0.8 * gaussian_map(20.3, 30.6)
    heatmaps[0, 1] = gaussian_map(7.0, 50.0)
    heatmaps[0, 2] = gaussian_map(41.75, 5.4)
    peaks, maxvals = decode_heatmaps(heatmaps)
    np.testing.assert_allclose(peaks[0, :3], [[20.3, 30.6], [7.0, 50.0], [41.75, 5.4]], atol=0.02)
    np.testing.assert_allclose(maxvals[0, :3], [heatmaps[0, i].max() for i in range(3)])
    # all-zero maps have no peak
    assert (peaks[0, 3:] == -1).all() and (maxvals[0, 3:] == 0).all()
    empty_peaks, empty_maxvals = decode_heatmaps(np.zeros((0, 17, 64, 48), np.float32))
    assert empty_peaks.shape == (0, 17, 2) and empty_maxvals.shape == (0, 17)
    # box (100, 50)-(199, 449): centre (150, 250), size (375, 500); u = 20.3 -> 20.3 * 375 / 47 - 37.5
    xy = heatmap_to_image(peaks[:, :1], np.array([[150.0, 250.0]]), np.array([[375.0, 500.0]]))
    np.testing.assert_allclose(xy[0, 0], [124.47, 242.86], atol=0.2)
    corners = heatmap_to_image(np.array([[[0.0, 0.0], [47.0, 63.0]]]), np.array([[150.0, 250.0]]),
                               np.array([[375.0, 500.0]]))
    np.testing.assert_allclose(corners[0], [[-37.5, 0.0], [337.5, 500.0]])


def test_flip_back_mirrors_and_swaps_left_and_right():
    heatmaps = torch.zeros(1, 17, 64, 48)
    heatmaps[0, 0, 10, 3] = 1.0    # nose stays the nose
    heatmaps[0, 5, 20, 10] = 1.0   # left shoulder seen in the mirror is the right shoulder
    heatmaps[0, 16, 60, 47] = 1.0  # right ankle -> left ankle
    back = flip_heatmaps(heatmaps)
    assert back[0, 0, 10, 44] == 1 and back[0, 6, 20, 37] == 1 and back[0, 15, 60, 0] == 1
    assert back.sum() == 3
    assert torch.equal(flip_heatmaps(back), heatmaps)


def test_flip_test_makes_heatmaps_mirror_equivariant(small_ckpt):
    crops = person_image(3)[:256, :192][None]
    mirrored = np.ascontiguousarray(crops[:, :, ::-1])
    model = load_vitpose(small_ckpt, cfg=SMALL)
    with_flip, without = ViTPoseEstimator(model), ViTPoseEstimator(model, flip_test=False)
    torch.testing.assert_close(with_flip.heatmaps(mirrored), flip_heatmaps(with_flip.heatmaps(crops)),
                               atol=1e-5, rtol=1e-5)
    # a random network alone is not mirror-symmetric: the averaging is what makes this hold
    assert not torch.allclose(without.heatmaps(mirrored), flip_heatmaps(without.heatmaps(crops)), atol=1e-3)
    plain = without.heatmaps(crops)
    torch.testing.assert_close(with_flip.heatmaps(crops),
                               0.5 * (plain + flip_heatmaps(without.heatmaps(mirrored))), atol=1e-5, rtol=1e-5)


def test_shifting_box_and_content_together_shifts_the_keypoints(estimator):
    rng = np.random.default_rng(7)
    patch = rng.integers(0, 256, (220, 130, 3), dtype=np.uint8)
    (dx, dy), out, crops = (37, -21), [], []
    # OpenCV 5 computes sample positions in float32: they keep their fractions under an integer shift only
    # while every position stays in one power-of-two range, here [256, 512) on both axes
    for x0, y0 in ((300, 280), (300 + dx, 280 + dy)):
        rgb = np.zeros((700, 700, 3), np.uint8)
        rgb[y0:y0 + 220, x0:x0 + 130] = patch
        box = np.array([[x0 + 20.0, y0 + 10.0, x0 + 119.0, y0 + 209.0]])
        crops.append(crop_people(rgb, *box_to_center_scale(box)))
        out.append(estimator(rgb, box))
    assert np.array_equal(crops[0], crops[1])
    np.testing.assert_allclose(out[1][..., :2] - out[0][..., :2], np.broadcast_to([dx, dy], (1, 17, 2)), atol=1e-3)
    np.testing.assert_array_equal(out[1][..., 2], out[0][..., 2])


class BrightnessPose(torch.nn.Module):
    """A stand-in network whose ideal output is known: every heatmap is the crop's brightness, sampled
    at the UDP heatmap positions (heatmap pixel u <-> crop pixel u * 191 / 47, v <-> v * 255 / 63)."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        red = image[:, :1] * 0.229 + 0.485
        return torch.nn.functional.interpolate(red, size=(64, 48), mode="bilinear", align_corners=True).expand(
            -1, 17, -1, -1)


@pytest.mark.parametrize("flip_test", [True, False])
def test_a_blob_in_the_image_is_found_where_it_is(flip_test):
    y, x = np.mgrid[0:480, 0:640]
    blobs = ((231.3, 187.6, 14.0), (420.0, 300.5, 9.0))
    rgb = np.zeros((480, 640, 3), np.uint8)
    for bx, by, sigma in blobs:
        rgb[..., 0] = np.maximum(rgb[..., 0], np.round(255 * np.exp(-((x - bx) ** 2 + (y - by) ** 2) / (2 * sigma**2))))
    boxes = np.array([[170.0, 60.0, 260.0, 330.0], [330.0, 250.0, 479.0, 349.0]])  # blobs off-centre in each
    keypoints = ViTPoseEstimator(BrightnessPose(), flip_test=flip_test)(rgb, boxes)
    for i, (bx, by, _) in enumerate(blobs):
        np.testing.assert_allclose(keypoints[i, :, :2], np.broadcast_to([bx, by], (17, 2)), atol=0.1)
    assert (keypoints[:, :, 2] > 0.9).all()


def test_inputs_are_checked(estimator):
    rgb = person_image()
    assert estimator(rgb, np.zeros((0, 4))).shape == (0, 17, 3)
    assert estimator(rgb, []).shape == (0, 17, 3)
    with pytest.raises(InputError, match=r"box 1 \[10.0, 10.0, 10.0, 90.0\]"):
        estimator(rgb, np.array([[0.0, 0.0, 50.0, 80.0], [10.0, 10.0, 10.0, 90.0]]))
    with pytest.raises(ValueError, match="box 0"):
        estimator(rgb, np.array([[0.0, np.nan, 50.0, 80.0]]))
    with pytest.raises(InputError, match="uint8"):
        estimator(rgb.astype(np.float32), np.array([[0.0, 0.0, 50.0, 80.0]]))
    with pytest.raises(InputError, match=r"boxes \(N, 4\)"):
        estimator(rgb, np.zeros((2, 5)))
