"""ROS message <-> numpy conversion for the node's inputs, with cv_bridge's encoding semantics.

Works on any object with the ROS message fields (rclpy messages, rosbags messages),
so it is testable without a running middleware. Every rejection raises
:class:`ConversionError` with a message that names the field at fault; the node
counts it, reports it in diagnostics and keeps running.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from wham_ros.errors import WhamError


class ConversionError(WhamError, ValueError):
    """A message that cannot be converted (unknown encoding, inconsistent sizes, NaN, ...)."""


#: encoding -> (numpy dtype, channels, colour order); cv_bridge's names (sensor_msgs/image_encodings.h)
_PLAIN = {
    "rgb8": (np.uint8, 3, "rgb"), "bgr8": (np.uint8, 3, "bgr"), "rgba8": (np.uint8, 4, "rgba"),
    "bgra8": (np.uint8, 4, "bgra"), "mono8": (np.uint8, 1, "mono"), "8UC1": (np.uint8, 1, "mono"),
    "8UC3": (np.uint8, 3, "bgr"), "8UC4": (np.uint8, 4, "bgra"), "mono16": (np.uint16, 1, "mono"),
    "16UC1": (np.uint16, 1, "mono"), "rgb16": (np.uint16, 3, "rgb"), "bgr16": (np.uint16, 3, "bgr"),
}
_YUV422 = {"yuv422": "uyvy", "uyvy": "uyvy", "yuv422_yuy2": "yuyv", "yuyv": "yuyv"}
_BAYER = {"bayer_rggb8": "RG", "bayer_bggr8": "BG", "bayer_gbrg8": "GB", "bayer_grbg8": "GR"}
SUPPORTED_ENCODINGS = tuple(_PLAIN) + tuple(_YUV422) + tuple(_BAYER)
#: default largest image (pixels) a message may declare: above any camera a robot carries, far below what a
#: hostile header can ask a decoder to allocate (a 783 KB PNG may declare 16384 x 16384 = 768 MB of RGB)
MAX_IMAGE_PIXELS = 4096 * 4096
#: focal length bounds relative to the longer image side: a field of view of about 179 deg (the pinhole
#: part of a fisheye) down to 0.6 deg
FOCAL_RANGE = (0.005, 100.0)
#: principal point bounds relative to the image size (a crop may move it off the image, not by whole images)
PRINCIPAL_RANGE = (-0.5, 1.5)
#: fastest credible body rotation (rad/s): MEMS gyros saturate at +-2000..4000 deg/s (35..70 rad/s)
MAX_ANGULAR_VELOCITY = 100.0


def stamp_to_sec(stamp) -> float:
    """builtin_interfaces/Time -> seconds (float)."""
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def _bytes(data) -> np.ndarray:
    """uint8 view of a message's data field (array.array, bytes, numpy or a list)."""
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:
        return np.asarray(data, dtype=np.uint8)


def _cv2():
    import cv2

    return cv2


def _check_size(w: int, h: int, max_pixels: int, what: str) -> None:
    if w <= 0 or h <= 0:
        raise ConversionError(f"{what} has zero size ({w}x{h})")
    if w * h > max_pixels:
        raise ConversionError(f"{what} declares {w}x{h} = {w * h} pixels, above max_image_pixels = {max_pixels}")


def image_to_rgb(msg, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, 3) uint8 RGB (16-bit images are scaled to 8 bits).

    Honours ``step`` (row padding) and ``is_bigendian``; raises ConversionError for an
    unknown encoding, zero size, more than ``max_pixels``, a ``step`` that does not fit the
    width, or truncated data.
    """
    h, w, enc, step = int(msg.height), int(msg.width), str(msg.encoding), int(msg.step)
    _check_size(w, h, max_pixels, "image")
    data = _bytes(msg.data)
    if enc in _PLAIN:
        dtype, channels, order = _PLAIN[enc]
        row = w * channels * np.dtype(dtype).itemsize
    elif enc in _YUV422:
        channels, row = 2, w * 2
    elif enc in _BAYER:
        channels, row = 1, w
    else:
        raise ConversionError(f"unsupported image encoding {enc!r} (supported: {', '.join(SUPPORTED_ENCODINGS)})")
    if step < row:
        raise ConversionError(f"step {step} is smaller than width x pixel size = {row} for {enc} {w}x{h}")
    if data.size < step * (h - 1) + row:
        raise ConversionError(f"image data has {data.size} bytes, {enc} {w}x{h} with step {step} needs {step * h}")
    rows = np.lib.stride_tricks.as_strided(data, shape=(h, row), strides=(step, 1))
    if enc in _YUV422:
        cv2 = _cv2()
        code = cv2.COLOR_YUV2RGB_UYVY if _YUV422[enc] == "uyvy" else cv2.COLOR_YUV2RGB_YUYV
        return cv2.cvtColor(np.ascontiguousarray(rows).reshape(h, w, 2), code)
    if enc in _BAYER:
        cv2 = _cv2()
        return cv2.cvtColor(np.ascontiguousarray(rows), getattr(cv2, f"COLOR_Bayer{_BAYER[enc]}2RGB"))
    dtype, channels, order = _PLAIN[enc]
    pixels = np.ascontiguousarray(rows).view(np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<"))
    pixels = pixels.reshape(h, w, channels).astype(dtype, copy=False)
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    if order == "mono":
        return np.repeat(pixels, 3, axis=2)
    if order in ("bgr", "bgra"):
        return np.ascontiguousarray(pixels[..., 2::-1])
    return np.ascontiguousarray(pixels[..., :3])


def _jpeg_size(buf: bytes) -> tuple[int, int] | None:
    """(width, height) from the first start-of-frame marker of a JPEG, None if there is none before the
    scan data starts (SOS), or after a run of fill bytes no encoder writes."""
    i, fills = 2, 0
    while i + 9 <= len(buf):
        if buf[i] != 0xFF:
            return None
        marker = buf[i + 1]
        if marker == 0xFF:                       # fill byte
            fills += 1
            if fills > 16:
                return None
            i += 1
            continue
        fills = 0
        if marker == 0xDA:                       # start of scan: every frame header comes before it
            return None
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:   # markers without a length
            i += 2
            continue
        length = int.from_bytes(buf[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(buf[i + 7:i + 9], "big"), int.from_bytes(buf[i + 5:i + 7], "big")
        if length < 2:
            return None
        i += 2 + length
    return None


def compressed_size(data: bytes | memoryview) -> tuple[str, int, int]:
    """(format, width, height) that a JPEG or PNG declares in its header, read without decoding.

    Raises ConversionError for any other format or a header without a size: the decoder is
    only handed data whose size has been checked.
    """
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ConversionError("PNG without an IHDR header")
        return "png", int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] == b"\xff\xd8":
        size = _jpeg_size(data)
        if size is None:
            raise ConversionError("JPEG without a frame header (SOF): no image size")
        return "jpeg", *size
    raise ConversionError(f"compressed image is neither JPEG nor PNG (starts with {data[:8].hex()})")


def compressed_to_rgb(msg, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """sensor_msgs/CompressedImage (JPEG/PNG, as image_transport writes it) -> (H, W, 3) uint8 RGB.

    The size declared in the header is checked against ``max_pixels`` before anything is decoded.
    """
    cv2 = _cv2()
    buf = _bytes(msg.data)
    if buf.size == 0:
        raise ConversionError("compressed image has no data")
    kind, w, h = compressed_size(memoryview(buf))
    _check_size(w, h, max_pixels, f"compressed image ({kind})")
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise ConversionError(f"cannot decode compressed image (format {msg.format!r}, {buf.size} bytes)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def rgb_to_image_fields(rgb: np.ndarray) -> dict:
    """Fields of a sensor_msgs/Image (rgb8) holding ``rgb`` (H, W, 3) uint8."""
    h, w = rgb.shape[:2]
    return {"height": h, "width": w, "encoding": "rgb8", "is_bigendian": 0, "step": 3 * w,
            "data": np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()}


@dataclass(frozen=True)
class CameraModel:
    """Intrinsics from sensor_msgs/CameraInfo (WHAM uses the pinhole part; the visual rotation also D)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    frame_id: str
    distortion_model: str
    distortion: tuple[float, ...] = ()   # D, in the order of distortion_model

    @property
    def focal(self) -> float:
        """One focal length for WHAM's square-pixel camera: the mean of fx and fy."""
        return 0.5 * (self.fx + self.fy)


def camera_info_to_model(msg, max_pixels: int = MAX_IMAGE_PIXELS) -> CameraModel:
    """sensor_msgs/CameraInfo -> CameraModel.

    Rejects a non-finite K or D, a zero or oversized image, and intrinsics no lens gives: a focal
    length outside ``FOCAL_RANGE`` x the longer image side, fx/fy further than 1:4 from square pixels,
    a principal point outside ``PRINCIPAL_RANGE`` x the image size.
    """
    k = [float(v) for v in msg.k]
    if len(k) != 9 or not all(math.isfinite(v) for v in k):
        raise ConversionError("CameraInfo K is not 9 finite numbers")
    fx, fy, cx, cy = k[0], k[4], k[2], k[5]
    if fx <= 0 or fy <= 0:
        raise ConversionError(f"CameraInfo K has no focal length (fx={fx}, fy={fy}): the camera is uncalibrated")
    w, h = int(msg.width), int(msg.height)
    _check_size(w, h, max_pixels, "CameraInfo")
    lo, hi = (r * max(w, h) for r in FOCAL_RANGE)
    if not (lo <= fx <= hi and lo <= fy <= hi):
        raise ConversionError(f"CameraInfo focal length fx={fx:g}, fy={fy:g} is outside [{lo:g}, {hi:g}] px for a "
                              f"{w}x{h} image (field of view 0.6-179 deg)")
    if not 0.25 <= fx / fy <= 4.0:
        raise ConversionError(f"CameraInfo fx/fy = {fx / fy:g}: pixels this far from square are a wrong K")
    p_lo, p_hi = PRINCIPAL_RANGE
    if not (p_lo * w <= cx <= p_hi * w and p_lo * h <= cy <= p_hi * h):
        raise ConversionError(f"CameraInfo principal point ({cx:g}, {cy:g}) is far outside the {w}x{h} image")
    d = tuple(float(v) for v in msg.d)
    if not all(math.isfinite(v) for v in d):
        raise ConversionError("CameraInfo D contains NaN or inf")
    return CameraModel(w, h, fx, fy, cx, cy, str(msg.header.frame_id), str(msg.distortion_model), d)


@dataclass(frozen=True)
class ImuSample:
    stamp: float                  # seconds
    angular_velocity: np.ndarray  # (3,) rad/s in frame_id
    frame_id: str
    linear_acceleration: np.ndarray | None  # (3,) m/s^2, None when the message has none


def imu_to_sample(msg) -> ImuSample:
    """sensor_msgs/Imu -> ImuSample.

    Rejects samples without angular velocity (covariance[0] == -1, REP-145), with NaN/inf
    rates or a rate above ``MAX_ANGULAR_VELOCITY`` on any axis. A missing or non-finite acceleration is
    dropped, not fatal.
    """
    if float(msg.angular_velocity_covariance[0]) == -1.0:
        raise ConversionError("Imu has no angular velocity (angular_velocity_covariance[0] == -1)")
    w = np.array([msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z], dtype=np.float64)
    if not np.isfinite(w).all():
        raise ConversionError("Imu angular velocity is NaN or inf")
    if float(np.abs(w).max()) > MAX_ANGULAR_VELOCITY:      # per axis, as gyros saturate
        raise ConversionError(f"Imu angular velocity {float(np.abs(w).max()):.3g} rad/s on one axis is above the "
                              f"{MAX_ANGULAR_VELOCITY:g} rad/s no gyro measures")
    acc = np.array([msg.linear_acceleration.x, msg.linear_acceleration.y, msg.linear_acceleration.z])
    if float(msg.linear_acceleration_covariance[0]) == -1.0 or not np.isfinite(acc).all():
        acc = None
    return ImuSample(stamp_to_sec(msg.header.stamp), w, str(msg.header.frame_id), acc)
