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


def image_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, 3) uint8 RGB (16-bit images are scaled to 8 bits).

    Honours ``step`` (row padding) and ``is_bigendian``; raises ConversionError for an
    unknown encoding, zero size, a ``step`` that does not fit the width, or truncated data.
    """
    h, w, enc, step = int(msg.height), int(msg.width), str(msg.encoding), int(msg.step)
    if h <= 0 or w <= 0:
        raise ConversionError(f"image has zero size ({w}x{h})")
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


def compressed_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (JPEG/PNG, as image_transport writes it) -> (H, W, 3) uint8 RGB."""
    cv2 = _cv2()
    buf = _bytes(msg.data)
    if buf.size == 0:
        raise ConversionError("compressed image has no data")
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


def camera_info_to_model(msg) -> CameraModel:
    """sensor_msgs/CameraInfo -> CameraModel; rejects a zero or non-finite K and a zero image size."""
    k = [float(v) for v in msg.k]
    if len(k) != 9 or not all(math.isfinite(v) for v in k):
        raise ConversionError("CameraInfo K is not 9 finite numbers")
    fx, fy, cx, cy = k[0], k[4], k[2], k[5]
    if fx <= 0 or fy <= 0:
        raise ConversionError(f"CameraInfo K has no focal length (fx={fx}, fy={fy}): the camera is uncalibrated")
    if int(msg.width) <= 0 or int(msg.height) <= 0:
        raise ConversionError(f"CameraInfo has zero image size ({msg.width}x{msg.height})")
    return CameraModel(int(msg.width), int(msg.height), fx, fy, cx, cy, str(msg.header.frame_id),
                       str(msg.distortion_model), tuple(float(v) for v in msg.d))


@dataclass(frozen=True)
class ImuSample:
    stamp: float                  # seconds
    angular_velocity: np.ndarray  # (3,) rad/s in frame_id
    frame_id: str
    linear_acceleration: np.ndarray | None  # (3,) m/s^2, None when the message has none


def imu_to_sample(msg) -> ImuSample:
    """sensor_msgs/Imu -> ImuSample.

    Rejects samples without angular velocity (covariance[0] == -1, REP-145) or with
    NaN/inf rates. A missing or non-finite acceleration is dropped, not fatal.
    """
    if float(msg.angular_velocity_covariance[0]) == -1.0:
        raise ConversionError("Imu has no angular velocity (angular_velocity_covariance[0] == -1)")
    w = np.array([msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z], dtype=np.float64)
    if not np.isfinite(w).all():
        raise ConversionError("Imu angular velocity is NaN or inf")
    acc = np.array([msg.linear_acceleration.x, msg.linear_acceleration.y, msg.linear_acceleration.z])
    if float(msg.linear_acceleration_covariance[0]) == -1.0 or not np.isfinite(acc).all():
        acc = None
    return ImuSample(stamp_to_sec(msg.header.stamp), w, str(msg.header.frame_id), acc)
