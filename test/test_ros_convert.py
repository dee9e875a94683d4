"""Message conversion layer: every image encoding, bad messages, and the real ROS 1 / ROS 2 bags."""
from __future__ import annotations

import os
import zlib
from collections import Counter

import numpy as np
import pytest
from conftest import SHARED, require_file, require_module

require_module("sensor_msgs.msg", "the ROS 2 message packages")
cv2 = require_module("cv2", "OpenCV")

from sensor_msgs.msg import CameraInfo, CompressedImage, Image, Imu  # noqa: E402

from wham_ros.offline.bags import read_bag  # noqa: E402
from wham_ros.ros.convert import (  # noqa: E402
    ConversionError,
    camera_info_to_model,
    compressed_to_rgb,
    image_to_rgb,
    imu_to_sample,
)

BAGS = os.path.join(SHARED, "data", "bags")
TYPES = {"sensor_msgs/msg/Image": Image, "sensor_msgs/msg/CompressedImage": CompressedImage,
         "sensor_msgs/msg/CameraInfo": CameraInfo, "sensor_msgs/msg/Imu": Imu}


def _rgb(h: int = 6, w: int = 8) -> np.ndarray:
    g = np.random.default_rng(0)
    return g.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _image(pixels: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False) -> Image:
    h, w = pixels.shape[:2]
    rows = pixels.reshape(h, -1).view(np.uint8) if pixels.dtype != np.uint8 else pixels.reshape(h, -1)
    if pad:
        rows = np.concatenate((rows, np.full((h, pad), 7, np.uint8)), 1)
    return Image(height=h, width=w, encoding=encoding, is_bigendian=int(bigendian), step=rows.shape[1],
                 data=rows.tobytes())


@pytest.mark.parametrize("encoding,make", [
    ("rgb8", lambda c: c), ("bgr8", lambda c: c[..., ::-1]), ("8UC3", lambda c: c[..., ::-1]),
    ("rgba8", lambda c: np.concatenate((c, np.full((*c.shape[:2], 1), 255, np.uint8)), 2)),
    ("bgra8", lambda c: np.concatenate((c[..., ::-1], np.zeros((*c.shape[:2], 1), np.uint8)), 2)),
])
def test_colour_encodings(encoding, make):
    rgb = _rgb()
    for pad in (0, 5):
        np.testing.assert_array_equal(image_to_rgb(_image(np.ascontiguousarray(make(rgb)), encoding, pad)), rgb)


def test_mono_and_16_bit_encodings_with_byte_order():
    mono = _rgb()[..., 0]
    np.testing.assert_array_equal(image_to_rgb(_image(mono, "mono8")), np.repeat(mono[..., None], 3, 2))
    wide = mono.astype(np.uint16) * 256 + 3
    for big in (False, True):
        raw = wide.astype(">u2" if big else "<u2")
        out = image_to_rgb(_image(raw, "mono16", bigendian=big))
        np.testing.assert_array_equal(out[..., 1], mono)


def test_yuv422_and_bayer_match_opencv():
    rgb = _rgb(8, 8)
    uyvy = cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV), cv2.COLOR_RGB2BGR)  # any 2-byte pattern works
    packed = np.ascontiguousarray(uyvy[..., :2])
    want = cv2.cvtColor(packed, cv2.COLOR_YUV2RGB_UYVY)
    np.testing.assert_array_equal(image_to_rgb(_image(packed, "yuv422")), want)
    bayer = rgb[..., 1].copy()
    want = cv2.cvtColor(bayer, cv2.COLOR_BayerRG2RGB)
    np.testing.assert_array_equal(image_to_rgb(_image(bayer, "bayer_rggb8")), want)


@pytest.mark.parametrize("change,message", [
    (lambda m: setattr(m, "encoding", "weird42"), "unsupported image encoding 'weird42'"),
    (lambda m: setattr(m, "step", 10), "step 10 is smaller"),
    (lambda m: setattr(m, "data", bytes(m.data)[:50]), "image data has 50 bytes"),
    (lambda m: (setattr(m, "width", 0), setattr(m, "height", 0)), "zero size"),
])
def test_bad_images_are_rejected_with_a_reason(change, message):
    msg = _image(_rgb(), "rgb8")
    change(msg)
    with pytest.raises(ConversionError, match=message):
        image_to_rgb(msg)


def test_compressed_images():
    rgb = _rgb(32, 48)
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    np.testing.assert_array_equal(compressed_to_rgb(CompressedImage(format="png", data=png.tobytes())), rgb)
    with pytest.raises(ConversionError, match="JPEG without a frame header"):
        compressed_to_rgb(CompressedImage(format="jpeg", data=b"\xff\xd8\xff\xe0 definitely not a jpeg"))
    ok, jpeg = cv2.imencode(".jpg", rgb)
    with pytest.raises(ConversionError, match="cannot decode"):      # its header is fine, its data is not there
        compressed_to_rgb(CompressedImage(format="jpeg", data=jpeg.tobytes()[:200]))
    with pytest.raises(ConversionError, match="neither JPEG nor PNG"):
        compressed_to_rgb(CompressedImage(format="bmp", data=cv2.imencode(".bmp", rgb)[1].tobytes()))
    with pytest.raises(ConversionError, match="no data"):
        compressed_to_rgb(CompressedImage(format="jpeg"))


def _png_bomb(width: int, height: int) -> bytes:
    """A small valid PNG that declares width x height (one compressed stream of zero rows)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    rows = zlib.compress(b"\x00" * (1 + 3 * width) * 64, 9)        # a few rows: decoding would allocate them all
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def test_decompression_bombs_are_refused_before_decoding():
    bomb = _png_bomb(16384, 16384)
    assert len(bomb) < 100_000
    with pytest.raises(ConversionError, match=r"16384x16384 = 268435456 pixels, above max_image_pixels"):
        compressed_to_rgb(CompressedImage(format="png", data=bomb))
    big = cv2.imencode(".jpg", np.zeros((300, 400, 3), np.uint8))[1].tobytes()
    with pytest.raises(ConversionError, match=r"jpeg.*400x300"):
        compressed_to_rgb(CompressedImage(format="jpeg", data=big), max_pixels=100_000)
    assert compressed_to_rgb(CompressedImage(format="jpeg", data=big), max_pixels=120_000).shape == (300, 400, 3)
    raw = _image(_rgb(), "rgb8")
    with pytest.raises(ConversionError, match="above max_image_pixels"):
        image_to_rgb(raw, max_pixels=raw.width * raw.height - 1)


def test_camera_info_and_imu_validation():
    info = CameraInfo(width=640, height=480)
    with pytest.raises(ConversionError, match="uncalibrated"):
        camera_info_to_model(info)
    info.k = [500.0, 0, 320, 0, 510.0, 240, 0, 0, 1]
    model = camera_info_to_model(info)
    assert (model.fx, model.fy, model.cx, model.cy, model.focal) == (500.0, 510.0, 320.0, 240.0, 505.0)
    info.k = [float("nan")] * 9
    with pytest.raises(ConversionError, match="finite"):
        camera_info_to_model(info)
    # values that pass a finiteness check and would break every WHAM step downstream
    for fx, cx, message in ((1e308, 320.0, "focal length"), (1e-300, 320.0, "focal length"),
                            (500.0, 1e300, "principal point"), (500.0, -1e6, "principal point")):
        info.k = [fx, 0, cx, 0, fx, 240, 0, 0, 1]
        with pytest.raises(ConversionError, match=message):
            camera_info_to_model(info)
    info.k = [500.0, 0, 320, 0, 5000.0, 240, 0, 0, 1]
    with pytest.raises(ConversionError, match="square"):
        camera_info_to_model(info)
    info.k, info.d = [500.0, 0, 320, 0, 500.0, 240, 0, 0, 1], [0.1, float("inf"), 0.0, 0.0, 0.0]
    with pytest.raises(ConversionError, match="D contains"):
        camera_info_to_model(info)
    info.d, info.k = [], [4.0, 0, 320, 0, 4.0, 240, 0, 0, 1]      # a 178 deg fisheye's pinhole part still passes
    assert camera_info_to_model(info).fx == 4.0
    imu = Imu()
    imu.angular_velocity.x = 0.5
    imu.linear_acceleration_covariance[0] = -1.0
    sample = imu_to_sample(imu)
    assert sample.angular_velocity[0] == 0.5 and sample.linear_acceleration is None
    imu.angular_velocity.y = float("nan")
    with pytest.raises(ConversionError, match="NaN"):
        imu_to_sample(imu)
    for absurd in (1e308, -150.0):
        imu.angular_velocity.y = absurd
        with pytest.raises(ConversionError, match="no gyro measures"):
            imu_to_sample(imu)
    imu.angular_velocity.y = 60.0                    # fast, but within a +-4000 deg/s gyro's range
    assert imu_to_sample(imu).angular_velocity[1] == 60.0
    imu.angular_velocity.y = 0.0
    imu.angular_velocity_covariance[0] = -1.0
    with pytest.raises(ConversionError, match="no angular velocity"):
        imu_to_sample(imu)


@pytest.mark.parametrize("bag,expected", [
    ("kapture_t265_trimmed_locoffice.bag", {"Image (800, 848, 3)": 6, "Imu": 25}),
    ("t265_ros2_mcap", {"Image (800, 848, 3)": 6, "Imu": 25}),
    ("ubiquity_aruco_images.bag", {"CompressedImage (960, 1280, 3)": 1, "CameraInfo 1014.3": 15}),
    ("ubiquity_aruco_images_ros2_sqlite3", {"CompressedImage (960, 1280, 3)": 1, "CameraInfo 1014.3": 15}),
])
def test_real_ros1_and_ros2_bags_convert(bag, expected):
    path = require_file(os.path.join(BAGS, bag), "the recording")
    require_module("rosbags", "rosbags")
    seen = Counter()
    for _, _, msg in read_bag(path, TYPES):
        if isinstance(msg, Image):
            rgb = image_to_rgb(msg)
            assert rgb.dtype == np.uint8 and rgb.std() > 5          # a real picture, not a blank buffer
            seen[f"Image {rgb.shape}"] += 1
        elif isinstance(msg, CompressedImage):
            seen[f"CompressedImage {compressed_to_rgb(msg).shape}"] += 1
        elif isinstance(msg, CameraInfo):
            seen[f"CameraInfo {camera_info_to_model(msg).fx:.1f}"] += 1
        else:
            sample = imu_to_sample(msg)
            assert sample.frame_id.endswith("optical_frame") and sample.stamp > 1.5e9
            seen["Imu"] += 1
    assert dict(seen) == expected
