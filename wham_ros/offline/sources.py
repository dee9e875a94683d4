"""The INPUT of ``wham-ros run``: a video, a folder of images or a ROS 2 / ROS 1 bag, as one time-ordered stream.

:func:`open_input` decides what a path holds and returns an :class:`InputSource`; its
:meth:`~InputSource.events` yields :class:`Event` objects lazily, in time order:

* bags (rosbag2 sqlite3 or MCAP, a folder with ``metadata.yaml`` or the storage file itself; ROS 1 ``.bag``):
  the raw ROS 2 message of every image, camera_info, IMU and ``/tf`` / ``/tf_static`` message on the chosen
  topics, stamped with the bag's receive time. ROS 1 messages are copied into the ROS 2 classes
  (:func:`wham_ros.offline.bags.to_ros2`), so the caller decodes them exactly as the node does.
* videos (anything ``cv2.VideoCapture`` reads) and image folders: ``"image"`` events carry a
  :class:`DecodedFrame`; a gyro CSV or a GoPro's own telemetry track adds ``"imu"`` events carrying
  :class:`wham_ros.ros.convert.ImuSample` already rotated into the camera's optical frame.

Importing this module needs neither rclpy nor the ROS message packages: those are imported when a bag is read.
Every problem with a recording raises :class:`InputError` naming the file and what is wrong with it.
"""
from __future__ import annotations

import abc
import bisect
import heapq
import math
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np

from wham_ros import errors
from wham_ros.offline.bags import bag_topics, read_bag
from wham_ros.ros.convert import MAX_ANGULAR_VELOCITY, MAX_IMAGE_PIXELS, ConversionError, ImuSample, compressed_size


class InputError(errors.InputError):
    """A recording cannot be used as INPUT: missing, of no known kind, corrupt, truncated, without images,
    or an option naming something the recording does not have."""


EVENT_KINDS = ("image", "camera_info", "imu", "tf", "tf_static")
#: frame_id of the frames of videos and image folders, and of their gyro samples (rotated into that frame)
CAMERA_FRAME_ID = "camera"
#: frame rate (Hz) of an image folder when ``fps`` is not given, and of a video whose container has none
DEFAULT_FPS = 30.0
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

_IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
_IMU_TYPE = "sensor_msgs/msg/Imu"
_TF_TYPES = ("tf2_msgs/msg/TFMessage", "tf/msg/tfMessage")      # ROS 2 (and ROS 1 tf2), ROS 1 tf
#: last topic components that name a transport of an image topic, not the image (image_transport plugins)
_TRANSPORTS = ("compressed", "compressedDepth", "theora", "ffmpeg", "h264", "zstd")

#: sensor -> camera optical frame rotations by name (see :func:`parse_gyro_axes`). "gopro" was measured on the
#: GoPro MAX (HERO mode) clip in ../shared/data/video_imu: the raw gyro reaches the frame of the camera's CORI
#: orientation by a 180 deg turn about y (test/test_camera_motion.py, best of all signed axis permutations at
#: r = 0.97), and CORI's frame is the optical frame (test/test_visual_rotation.py: the image rotations measured
#: from pixels match CORI*IORI with the identity mapping).
GYRO_AXES_PRESETS = {"gopro": np.diag([-1.0, 1.0, -1.0])}
#: MTRX of the camera "gopro" was measured on; another MTRX means another raw axis order
_GOPRO_MAX_MTRX = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
#: time column of a gyro CSV -> seconds per unit
_TIME_COLUMNS = {"t": 1.0, "t_s": 1.0, "t_ms": 1e-3, "t_us": 1e-6, "t_ns": 1e-9}
#: gyro CSV value columns -> whether they are a GoPro's raw sensor axes (as the project's GPMF export writes them)
_RATE_COLUMNS = {("g0", "g1", "g2"): True, ("x", "y", "z"): False, ("gx", "gy", "gz"): False,
                 ("wx", "wy", "wz"): False}


@dataclass(frozen=True)
class Event:
    """One message of a recording.

    ``kind`` is one of :data:`EVENT_KINDS`; ``time_ns`` the bag's receive time (bags) or the frame / sample
    time (videos, image folders), in nanoseconds; ``msg`` a ROS 2 message (bags: sensor_msgs Image or
    CompressedImage, CameraInfo, Imu, tf2_msgs TFMessage), a :class:`DecodedFrame` or an ``ImuSample``;
    ``topic`` the bag topic it came from ("" for videos and folders).
    """

    kind: str
    time_ns: int
    msg: Any
    topic: str = ""


@dataclass(frozen=True)
class DecodedFrame:
    """A frame of a video or image folder: ``stamp`` in seconds from the start, ``rgb`` (H, W, 3) uint8."""

    stamp: float
    rgb: np.ndarray
    frame_id: str


@dataclass(frozen=True)
class GyroTrack:
    """Gyro samples as a file stores them, before any axis mapping.

    ``stamps`` (N,) seconds on the video's clock, strictly increasing; ``rates`` (N, 3) rad/s in the file's
    axis order; ``raw_gopro`` whether that order is a GoPro's raw sensor order; ``mtrx`` (3, 3) the GoPro's
    MTRX when the file records one, else None; ``source`` a few words for :meth:`InputSource.describe`.
    """

    stamps: np.ndarray
    rates: np.ndarray
    raw_gopro: bool
    mtrx: np.ndarray | None
    source: str


class InputSource(abc.ABC):
    """A recording opened by :func:`open_input`.

    ``kind``: "video", "images", "rosbag2" or "ros1"; ``path``: as given; ``frame_count``: images it holds
    (exact for bags and folders, the container's count for videos, None when a video declares none);
    ``topics``: the bag topics chosen per event kind ("image", "camera_info", "imu", "tf", "tf_static"; None
    where there is none, and for videos and folders).
    """

    kind: str
    path: str
    frame_count: int | None
    topics: dict[str, str | None]

    @abc.abstractmethod
    def describe(self) -> str:
        """One line: the kind, what was chosen (topics, or resolution and frame rate) and the frame count."""

    @abc.abstractmethod
    def events(self) -> Iterator[Event]:
        """Every event in time order, read lazily; each call starts again from the beginning."""


def _no_topics() -> dict[str, str | None]:
    return dict.fromkeys(("image", "camera_info", "imu", "tf", "tf_static"))


# ---------------------------------------------------------------------------------------------------- gyro

def parse_gyro_axes(spec: str) -> np.ndarray:
    """The rotation R (3, 3) with w_camera = R @ w_sensor, from a ``gyro_axes`` string.

    The camera frame is the optical frame: x right, y down, z forward (out of the lens). Accepted forms:

    * a preset name of :data:`GYRO_AXES_PRESETS` ("gopro");
    * three signed sensor axes, the camera's x, y and z in turn: "-x,y,-z" means camera x = -sensor x,
      camera y = sensor y, camera z = -sensor z ("x,y,z" is the identity);
    * nine numbers, R row by row, with any brackets, commas, semicolons or spaces between them:
      "[[0,-1,0],[1,0,0],[0,0,1]]" or "0 -1 0; 1 0 0; 0 0 1".

    Both sensor and camera frames are right-handed, so R must be a rotation: a mapping with determinant -1
    (e.g. "x,-y,z") is rejected, as is anything more than 1e-3 from orthonormal; the rest is snapped to the
    nearest rotation.
    """
    text = spec.strip()
    if text.lower() in GYRO_AXES_PRESETS:
        return GYRO_AXES_PRESETS[text.lower()].copy()
    parts = [p.strip().lower() for p in text.split(",")]
    if len(parts) == 3 and all(re.fullmatch(r"[+-]?[xyz]", p) for p in parts):
        R = np.zeros((3, 3))
        for row, p in enumerate(parts):
            R[row, "xyz".index(p[-1])] = -1.0 if p.startswith("-") else 1.0
    elif re.fullmatch(r"[\s\[\]\(\),;0-9eE.+-]+", text):
        try:
            numbers = [float(v) for v in re.split(r"[\s\[\]\(\),;]+", text) if v]
        except ValueError:
            numbers = []
        if len(numbers) != 9:
            raise InputError(f"gyro_axes {spec!r} does not hold 9 numbers (a 3x3 matrix, row by row)")
        R = np.array(numbers).reshape(3, 3)
    else:
        raise InputError(f"gyro_axes {spec!r} is not a preset ({', '.join(GYRO_AXES_PRESETS)}), three signed axes "
                         "like '-x,y,-z', nor a 3x3 matrix")
    if np.abs(R @ R.T - np.eye(3)).max() > 1e-3:
        raise InputError(f"gyro_axes {spec!r} is not a rotation: its rows are not orthonormal (R R^T != I)")
    if np.linalg.det(R) < 0:
        raise InputError(f"gyro_axes {spec!r} is a reflection (determinant -1): a right-handed sensor frame "
                         "reaches the right-handed optical frame by a rotation; flip the sign of one more axis")
    u, _, vt = np.linalg.svd(R)
    return u @ vt


def _checked_track(stamps: np.ndarray, rates: np.ndarray, where: str, row0: int) -> None:
    """InputError naming the first bad sample (row ``row0 + index`` of ``where``): non-finite, out of
    order or beyond any gyro's range."""
    bad = ~(np.isfinite(stamps) & np.isfinite(rates).all(1))
    if bad.any():
        raise InputError(f"{where}: row {row0 + int(np.argmax(bad))} has a NaN or inf value")
    back = np.diff(stamps) <= 0
    if back.any():
        k = int(np.argmax(back)) + 1
        raise InputError(f"{where}: row {row0 + k} has time {stamps[k]:.6f} s, not after the previous "
                         f"{stamps[k - 1]:.6f} s")
    fast = np.abs(rates).max(1) > MAX_ANGULAR_VELOCITY
    if fast.any():
        k = int(np.argmax(fast))
        raise InputError(f"{where}: row {row0 + k} has an angular velocity of {np.abs(rates[k]).max():.3g} rad/s "
                         f"on one axis, above the {MAX_ANGULAR_VELOCITY:g} rad/s no gyro measures (not rad/s?)")


def read_gyro_csv(path: str) -> GyroTrack:
    """A gyro CSV: optional ``#`` comment lines, a header line, then one sample per line.

    The header names a time column (``t`` or ``t_s`` in seconds, ``t_ms``, ``t_us``, ``t_ns``) and three rate
    columns in rad/s: ``g0,g1,g2`` (a GoPro's raw sensor order, as the project's GPMF export writes it, e.g.
    ``t_us,g0,g1,g2``) or ``x,y,z`` (also ``gx,gy,gz``, ``wx,wy,wz``). A comment recording the GoPro's
    ``'MTRX': (9 numbers)`` is kept to check the "gopro" axis preset against.
    """
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"gyro CSV {path}: cannot be read ({exc})") from None
    head = 0
    while head < len(lines) and (lines[head].lstrip().startswith("#") or not lines[head].strip()):
        head += 1
    if head == len(lines):
        raise InputError(f"gyro CSV {path}: no header line (expected e.g. 't,x,y,z' or 't_us,g0,g1,g2')")
    comments = "\n".join(lines[:head])
    columns = tuple(c.strip().lower() for c in lines[head].split(","))
    if len(columns) != 4 or columns[0] not in _TIME_COLUMNS or columns[1:] not in _RATE_COLUMNS:
        raise InputError(f"gyro CSV {path}: header {lines[head]!r} is not a time column "
                         f"({', '.join(_TIME_COLUMNS)}) and three rate columns "
                         f"({' or '.join(','.join(c) for c in _RATE_COLUMNS)})")
    rows = []
    for number, line in enumerate(lines[head + 1:], start=head + 2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            values = [float(v) for v in line.split(",")]
        except ValueError:
            raise InputError(f"gyro CSV {path}: line {number} {line[:60]!r} is not four numbers") from None
        if len(values) != 4:
            raise InputError(f"gyro CSV {path}: line {number} has {len(values)} values, not 4")
        rows.append(values)
    if len(rows) < 2:
        raise InputError(f"gyro CSV {path}: {len(rows)} samples; at least 2 are needed")
    data = np.array(rows)
    stamps, rates = data[:, 0] * _TIME_COLUMNS[columns[0]], data[:, 1:]
    _checked_track(stamps, rates, f"gyro CSV {path}", head + 2)
    mtrx = None
    found = re.search(r"'MTRX':\s*\(([^)]*)\)", comments)
    if found:
        values = [float(v) for v in found.group(1).split(",") if v.strip()]
        mtrx = np.array(values).reshape(3, 3) if len(values) == 9 else None
    return GyroTrack(stamps, rates, _RATE_COLUMNS[columns[1:]], mtrx, f"CSV {path}")


def _camera_gyro(track: GyroTrack, gyro_axes: str | None) -> tuple[list[ImuSample], str]:
    """The track's samples in the camera optical frame, and the axis mapping in words.

    Without ``gyro_axes`` a GoPro's raw axes get the "gopro" preset and x, y, z columns are taken as already
    in the optical frame. The "gopro" preset is refused for a GoPro whose MTRX differs from the camera it was
    measured on, since its raw axes come in another order.
    """
    spec = gyro_axes if gyro_axes is not None else ("gopro" if track.raw_gopro else "x,y,z")
    if (spec.strip().lower() == "gopro" and track.mtrx is not None
            and not np.allclose(track.mtrx, _GOPRO_MAX_MTRX)):
        raise InputError(f"gyro_axes 'gopro' was measured on a GoPro MAX (MTRX {_GOPRO_MAX_MTRX.tolist()}); "
                         f"{track.source} records MTRX {track.mtrx.tolist()}: give gyro_axes explicitly")
    R = parse_gyro_axes(spec)
    rates = track.rates @ R.T
    samples = [ImuSample(float(t), w, CAMERA_FRAME_ID, None) for t, w in zip(track.stamps, rates)]
    return samples, spec


# ------------------------------------------------------------------------------------- GoPro GPMF telemetry

#: GPMF type characters -> numpy dtypes (big-endian); the types telemetry streams use for numbers
_GPMF_DTYPES = {"b": "i1", "B": "u1", "s": ">i2", "S": ">u2", "l": ">i4", "L": ">u4", "f": ">f4", "d": ">f8",
                "j": ">i8", "J": ">u8"}


def _boxes(buf: bytes, start: int, end: int, where: str) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each MP4 box in ``buf[start:end]``."""
    o = start
    while o + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, o)
        head = 8
        if size == 1 and o + 16 <= end:
            size, head = struct.unpack_from(">Q", buf, o + 8)[0], 16
        elif size == 0:                                       # runs to the end of its parent
            size = end - o
        if size < head or o + size > end:
            raise InputError(f"{where}: MP4 box {kind!r} declares {size} bytes, past the end of its parent")
        yield kind, o + head, o + size
        o += size


def _child(buf: bytes, start: int, end: int, path: tuple[bytes, ...], where: str) -> tuple[int, int] | None:
    """(payload start, end) of the box reached by ``path`` of nested box types, None if absent."""
    for kind, body, stop in _boxes(buf, start, end, where):
        if kind == path[0]:
            return (body, stop) if len(path) == 1 else _child(buf, body, stop, path[1:], where)
    return None


def _read_moov(f: BinaryIO, where: str) -> bytes:
    """The payload of the top-level moov box, found by seeking over the others (mdat may be gigabytes)."""
    end = f.seek(0, os.SEEK_END)
    o = 0
    while o + 8 <= end:
        f.seek(o)
        head = f.read(16)
        size, kind = struct.unpack_from(">I4s", head)
        length = 8
        if size == 1 and len(head) == 16:
            size, length = struct.unpack_from(">Q", head, 8)[0], 16
        elif size == 0:
            size = end - o
        if size < length or o + size > end:
            raise InputError(f"{where}: MP4 box {kind!r} at byte {o} runs past the end of the file (truncated?)")
        if kind == b"moov":
            f.seek(o + length)
            return f.read(size - length)
        o += size
    raise InputError(f"{where}: no MP4 'moov' box (not an MP4 file, or truncated)")


def _gpmd_samples(moov: bytes, where: str) -> list[tuple[int, int]]:
    """(file offset, size) of every sample of the GPMF ('gpmd') track, from its sample tables."""
    for kind, body, stop in _boxes(moov, 0, len(moov), where):
        stbl = _child(moov, body, stop, (b"mdia", b"minf", b"stbl"), where) if kind == b"trak" else None
        stsd = stbl and _child(moov, *stbl, (b"stsd",), where)
        if not stsd or moov[stsd[0] + 12:stsd[0] + 16] != b"gpmd":
            continue
        tables = {name: _child(moov, *stbl, (name,), where) for name in (b"stsz", b"stsc", b"stco", b"co64")}
        if not tables[b"stsz"] or not tables[b"stsc"] or not (tables[b"stco"] or tables[b"co64"]):
            raise InputError(f"{where}: the GPMF track lacks its sample tables (stsz, stsc, stco)")
        at = tables[b"stsz"][0]
        fixed, count = struct.unpack_from(">II", moov, at + 4)
        sizes = [fixed] * count if fixed else list(struct.unpack_from(f">{count}I", moov, at + 12))
        at = tables[b"stsc"][0]
        entries = [struct.unpack_from(">III", moov, at + 8 + 12 * i)[:2]
                   for i in range(struct.unpack_from(">I", moov, at + 4)[0])]
        wide = tables[b"stco"] is None
        at = tables[b"co64"][0] if wide else tables[b"stco"][0]
        n_chunks = struct.unpack_from(">I", moov, at + 4)[0]
        chunks = struct.unpack_from(f">{n_chunks}{'Q' if wide else 'I'}", moov, at + 8)
        firsts = [first for first, _ in entries]
        spans, s = [], 0
        for number, offset in enumerate(chunks, start=1):
            entry = bisect.bisect_right(firsts, number) - 1     # the run of chunks this one belongs to
            for _ in range(entries[entry][1] if entry >= 0 else 0):
                if s == len(sizes):
                    break
                spans.append((offset, sizes[s]))
                offset += sizes[s]
                s += 1
        return spans
    raise InputError(f"{where}: no GPMF telemetry track ('gpmd'); only GoPro MP4 files carry one")


def _klv(buf: bytes, start: int, end: int, where: str) -> Iterator[tuple[bytes, str, int, int, int]]:
    """(key, type char, structure size, repeat, data start) of each GPMF entry in ``buf[start:end]``.

    GPMF is key-length-value: a 4-byte key, a type char ("\\0" for a nested list), a structure size byte and
    a big-endian uint16 repeat count, then size * repeat bytes padded to a multiple of 4.
    """
    o = start
    while o + 8 <= end:
        key, typ, size, repeat = buf[o:o + 4], chr(buf[o + 4]), buf[o + 5], int.from_bytes(buf[o + 6:o + 8], "big")
        if o + 8 + size * repeat > end:
            raise InputError(f"{where}: GPMF entry {key!r} runs past the end of its payload (corrupt telemetry)")
        if key != b"\0\0\0\0":                                   # padding at the end of a payload
            yield key, typ, size, repeat, o + 8
        o += 8 + (size * repeat + 3) // 4 * 4


def _gpmf_numbers(buf: bytes, typ: str, size: int, repeat: int, at: int, where: str) -> np.ndarray:
    """A GPMF entry's numbers, (repeat, size / item size) float64."""
    dtype = np.dtype(_GPMF_DTYPES.get(typ, "V1"))
    if typ not in _GPMF_DTYPES or size % dtype.itemsize:
        raise InputError(f"{where}: GPMF entry of type {typ!r} and size {size} does not hold numbers")
    flat = np.frombuffer(buf, dtype, size // dtype.itemsize * repeat, at)
    return flat.reshape(repeat, -1).astype(np.float64)


def read_gopro_gyro(path: str) -> GyroTrack:
    """The GYRO stream of a GoPro MP4's GPMF telemetry track, in the raw sensor axis order (MTRX not applied).

    Each telemetry payload (about 1 s) holds a STRM with the stream's STMP (µs since the recording
    started, taken to be the video's clock, frame 0 at 0 s), SCAL (divisor to rad/s), MTRX and the GYRO
    samples; the samples of a payload are spaced evenly from its STMP to the next payload's, and those of the
    last payload at the spacing of the one before it.
    """
    where = f"GoPro telemetry of {path}"
    with open(path, "rb") as f:
        spans = _gpmd_samples(_read_moov(f, where), where)
        payloads = []
        for offset, size in spans:
            f.seek(offset)
            payloads.append(f.read(size))
            if len(payloads[-1]) != size:
                raise InputError(f"{where}: a telemetry payload at byte {offset} is cut short (truncated file)")
    starts, blocks, mtrx = [], [], None
    for payload in payloads:
        for devc in _klv(payload, 0, len(payload), where):
            for strm in _klv(payload, devc[4], devc[4] + devc[2] * devc[3], where) if devc[0] == b"DEVC" else ():
                if strm[0] != b"STRM":
                    continue
                found: dict[bytes, np.ndarray] = {}
                for key, typ, size, repeat, at in _klv(payload, strm[4], strm[4] + strm[2] * strm[3], where):
                    if key in (b"STMP", b"SCAL", b"MTRX", b"GYRO"):
                        found[key] = _gpmf_numbers(payload, typ, size, repeat, at, where)
                if b"GYRO" not in found:
                    continue
                if b"STMP" not in found:
                    raise InputError(f"{where}: GYRO without STMP timestamps (an older GoPro): export a gyro CSV")
                scale = found.get(b"SCAL", np.ones(1)).reshape(-1)
                if scale.size not in (1, 3) or not scale.all():
                    raise InputError(f"{where}: GYRO has a SCAL of {scale.tolist()}, not one or three non-zero values")
                if found[b"GYRO"].shape[1] != 3:
                    raise InputError(f"{where}: GYRO samples have {found[b'GYRO'].shape[1]} values, not 3")
                starts.append(float(found[b"STMP"][0, 0]) * 1e-6)
                blocks.append(found[b"GYRO"] / scale)
                if b"MTRX" in found and found[b"MTRX"].size == 9:
                    mtrx = found[b"MTRX"].reshape(3, 3)
    if len(blocks) < 2:
        raise InputError(f"{where}: {len(blocks)} GYRO payloads; at least 2 are needed to time the samples")
    stamps = []
    for k, block in enumerate(blocks):
        span = starts[k + 1] - starts[k] if k + 1 < len(blocks) else (starts[k] - starts[k - 1]) / len(
            blocks[k - 1]) * len(block)
        stamps.append(starts[k] + span * np.arange(len(block)) / len(block))
    track_stamps, rates = np.concatenate(stamps), np.concatenate(blocks)
    _checked_track(track_stamps, rates, where, 0)
    return GyroTrack(track_stamps, rates, True, mtrx, f"GPMF telemetry of {path}")


# ---------------------------------------------------------------------------------------------- videos

def _natural_key(name: str) -> list:
    """Sort key putting frame2.png before frame10.png: digit runs compare as numbers."""
    return [int(p) if i % 2 else p.lower() for i, p in enumerate(re.split(r"(\d+)", name))]


def _check_fps(fps: float | None) -> None:
    if fps is not None and not (math.isfinite(fps) and 0 < fps <= 10000):
        raise InputError(f"fps {fps!r} is not a frame rate (Hz, above 0 and at most 10000)")


def _check_pixels(w: int, h: int, what: str) -> None:
    if w <= 0 or h <= 0:
        raise InputError(f"{what} has no size ({w}x{h})")
    if w * h > MAX_IMAGE_PIXELS:
        raise InputError(f"{what} is {w}x{h} = {w * h} pixels, above the {MAX_IMAGE_PIXELS} a frame may have")


def _merged(frames: Iterator[Event], gyro: list[ImuSample]) -> Iterator[Event]:
    """``frames`` and the gyro samples in time order; a sample stamped like a frame comes first, so the
    frame's rotation can use it."""
    imu = (Event("imu", round(s.stamp * 1e9), s) for s in gyro)
    try:
        yield from heapq.merge(imu, frames, key=lambda e: e.time_ns)
    finally:
        frames.close()                                          # release the decoder when the caller stops early


class VideoSource(InputSource):
    """A video file read with ``cv2.VideoCapture``.

    Frame stamps are the container's presentation times (``CAP_PROP_POS_MSEC``) while those are finite and
    increasing; from the first that is not, and for every frame when ``fps`` is given, they advance by
    1 / fps (``fps``, else the container's rate, else :data:`DEFAULT_FPS`). ``width``, ``height``: pixels of the
    decoded frames; ``fps``: the rate in use (Hz).

    A file that stops before the frame count its container declares is found out only by reading it:
    :meth:`events` yields every frame that decodes, then raises :class:`InputError` saying how many frames were
    read of how many declared.
    """

    def __init__(self, path: str, fps: float | None, gyro: GyroTrack | None, gyro_axes: str | None) -> None:
        self.kind, self.path, self.topics = "video", path, _no_topics()
        cap = cv2.VideoCapture(path)
        try:
            if not cap.isOpened():
                raise InputError(f"{path} cannot be opened as a video (not a bag, an image folder nor a format "
                                 "OpenCV decodes; or an MP4 cut short before its index)")
            w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            _check_pixels(w, h, f"video {path}")
            declared, rate = cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)
            ok, first = cap.read()
            if not ok or first is None:
                raise InputError(f"video {path} opens but has no decodable frame")
        finally:
            cap.release()
        self.height, self.width = first.shape[:2]              # after any rotation the container asks for
        self.frame_count = int(declared) if math.isfinite(declared) and declared > 0 else None
        self._fixed_rate = fps is not None
        self.fps = fps or (rate if math.isfinite(rate) and 0 < rate <= 10000 else DEFAULT_FPS)
        with open(path, "rb") as f:
            # MP4 / MOV count frames from their sample tables; other containers may estimate from the duration
            self._exact_count = f.read(8)[4:8] == b"ftyp"
        self._gyro, self._gyro_note = [], ""
        if gyro is not None:
            self._gyro, axes = _camera_gyro(gyro, gyro_axes)
            self._gyro_note = f"; gyro {len(self._gyro)} samples from {gyro.source}, axes {axes}"

    def describe(self) -> str:
        stamps = f"stamps k/{self.fps:g}" if self._fixed_rate else "stamps from the container"
        frames = f"{self.frame_count} frames declared" if self.frame_count else "frame count unknown"
        return f"video {self.path}: {self.width}x{self.height} at {self.fps:.3f} fps ({stamps}), {frames}" + (
            self._gyro_note)

    def _frames(self) -> Iterator[Event]:
        cap = cv2.VideoCapture(self.path)
        read, last, pts = 0, -math.inf, not self._fixed_rate
        base_t, base_k = 0.0, 0                                 # the last trusted stamp and its frame index
        try:
            while True:
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    break
                if pts:
                    t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                    if math.isfinite(t) and t >= 0 and t > last:
                        base_t, base_k = t, read
                    else:
                        pts = False
                stamp = base_t + (read - base_k) / self.fps
                last = stamp
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                yield Event("image", round(stamp * 1e9), DecodedFrame(stamp, rgb, CAMERA_FRAME_ID))
                read += 1
        finally:
            cap.release()
        if read == 0:
            raise InputError(f"video {self.path}: no frame could be decoded")
        # an estimated count may be one frame off; a frame count read from the file's index is exact
        if self.frame_count and read < self.frame_count - (0 if self._exact_count else 1):
            raise InputError(f"video {self.path} is truncated or corrupt: {read} frames decoded of the "
                             f"{self.frame_count} its container declares")

    def events(self) -> Iterator[Event]:
        return _merged(self._frames(), self._gyro)


class ImageFolderSource(InputSource):
    """A folder of JPEG / PNG images, one frame each in natural name order (frame2 before frame10), stamped
    k / fps seconds. Every image must have the size of the first."""

    def __init__(self, path: str, files: list[str], fps: float | None, gyro: GyroTrack | None,
                 gyro_axes: str | None) -> None:
        self.kind, self.path, self.topics = "images", path, _no_topics()
        self._files = files
        self.frame_count = len(files)
        self.fps = fps or DEFAULT_FPS
        with open(os.path.join(path, files[0]), "rb") as f:
            self.width, self.height = self._size(files[0], f.read())
        self._gyro, self._gyro_note = [], ""
        if gyro is not None:
            self._gyro, axes = _camera_gyro(gyro, gyro_axes)
            self._gyro_note = f"; gyro {len(self._gyro)} samples from {gyro.source}, axes {axes}"

    def _size(self, name: str, data: bytes) -> tuple[int, int]:
        """(width, height) that image file ``name`` with content ``data`` declares in its header, checked
        before anything is decoded."""
        file = os.path.join(self.path, name)
        try:
            _, w, h = compressed_size(data)
        except ConversionError as exc:
            raise InputError(f"image {file}: {exc}") from None
        _check_pixels(w, h, f"image {file}")
        return w, h

    def describe(self) -> str:
        return (f"images {self.path}: {self.frame_count} frames of {self.width}x{self.height} at {self.fps:g} fps "
                f"(stamps k/{self.fps:g})" + self._gyro_note)

    def _frames(self) -> Iterator[Event]:
        for k, name in enumerate(self._files):
            file = os.path.join(self.path, name)
            with open(file, "rb") as f:
                data = f.read()
            w, h = self._size(name, data)
            if (w, h) != (self.width, self.height):
                raise InputError(f"image {file} is {w}x{h}, the first image is {self.width}x{self.height}: "
                                 "a folder must hold the frames of one camera")
            bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if bgr is None:
                raise InputError(f"image {file} cannot be decoded (corrupt or truncated)")
            stamp = k / self.fps
            yield Event("image", round(stamp * 1e9),
                        DecodedFrame(stamp, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), CAMERA_FRAME_ID))

    def events(self) -> Iterator[Event]:
        return _merged(self._frames(), self._gyro)


# ------------------------------------------------------------------------------------------------ bags

def _short(msgtype: str) -> str:
    return msgtype.rsplit("/", 1)[-1]


def _listing(topics: dict[str, tuple[str, int]]) -> str:
    return ", ".join(f"{t} ({m}, {n})" for t, (m, n) in sorted(topics.items())) or "no topics"


def _image_namespaces(topic: str) -> list[str]:
    """Namespaces whose ``camera_info`` belongs to an image topic, nearest first:
    /cam/image_raw/compressed -> /cam, then its parents."""
    parts = topic.strip("/").split("/")
    if len(parts) > 1 and parts[-1] in _TRANSPORTS:
        parts = parts[:-1]
    parts = parts[:-1]
    return ["/" + "/".join(parts[:n]) if n else "" for n in range(len(parts), -1, -1)]


def _choose_topics(topics: dict[str, tuple[str, int]], where: str, image: str | None, info: str | None,
                   imu: str | None) -> tuple[dict[str, str | None], list[str]]:
    """The topic per event kind, and notes on how each was chosen (for describe()).

    Image: an Image or CompressedImage topic; among several, colour before depth, then one with a
    camera_info of its namespace, then raw before compressed, then the most messages, then by name.
    camera_info: ``<namespace>/camera_info`` of the image topic or of a namespace above it.
    IMU: an Imu topic, preferring "gyro" or "imu" in its name, then the most messages (the highest rate:
    the topics span one bag); accelerometer-only topics ("accel" without "gyro"/"imu") are never chosen.
    """
    of_type = lambda types: sorted(t for t, (m, _) in topics.items() if m in types)
    notes: list[str] = []

    def override(name: str, value: str, types: tuple[str, ...]) -> str:
        if value not in topics:
            raise InputError(f"{name} {value!r} is not in bag {where}; it has: {_listing(topics)}")
        if topics[value][0] not in types:
            raise InputError(f"{name} {value!r} in bag {where} is a {topics[value][0]}, not "
                             f"{' or '.join(types)}; the bag has: {_listing(topics)}")
        notes.append(f"{name} given")
        return value

    def matching_info(image_topic: str) -> str | None:
        for ns in _image_namespaces(image_topic):
            if topics.get(ns + "/camera_info", ("",))[0] == _INFO_TYPE:
                return ns + "/camera_info"
        return None

    images = of_type(_IMAGE_TYPES)
    if image is not None:
        chosen_image = override("image_topic", image, _IMAGE_TYPES)
    elif not images:
        raise InputError(f"bag {where} has no image topic (sensor_msgs Image or CompressedImage); "
                         f"it has: {_listing(topics)}")
    else:
        rank = lambda t: ("depth" in t.lower(), matching_info(t) is None,
                          topics[t][0] != "sensor_msgs/msg/Image", -topics[t][1], t)
        chosen_image = min(images, key=rank)
        if len(images) > 1:
            notes.append(f"image chosen of {len(images)} topics, others: "
                         + " ".join(t for t in images if t != chosen_image))
    chosen_info = override("camera_info_topic", info, (_INFO_TYPE,)) if info is not None else matching_info(
        chosen_image)
    if chosen_info is None and of_type((_INFO_TYPE,)):
        notes.append(f"no camera_info in the image's namespace (bag has {' '.join(of_type((_INFO_TYPE,)))})")
    if imu is not None:
        chosen_imu = override("imu_topic", imu, (_IMU_TYPE,))
    else:
        named = lambda t: any(k in t.lower() for k in ("gyro", "imu"))
        usable = [t for t in of_type((_IMU_TYPE,)) if named(t) or "accel" not in t.lower()]
        chosen_imu = min(usable, key=lambda t: (not named(t), -topics[t][1], t)) if usable else None
        skipped = [t for t in of_type((_IMU_TYPE,)) if t not in usable]
        if skipped:
            notes.append(f"accelerometer-only Imu skipped: {' '.join(skipped)}")
    chosen = {"image": chosen_image, "camera_info": chosen_info, "imu": chosen_imu,
              "tf": "/tf" if topics.get("/tf", ("",))[0] in _TF_TYPES else None,
              "tf_static": "/tf_static" if topics.get("/tf_static", ("",))[0] in _TF_TYPES else None}
    return chosen, notes


def _ros2_classes() -> dict[str, type]:
    """ROS 2 message class per bag type name, imported only when a bag is read."""
    try:
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image, Imu
        from tf2_msgs.msg import TFMessage
    except ImportError as exc:
        raise InputError(f"reading a bag needs the ROS 2 message packages sensor_msgs and tf2_msgs ({exc}): "
                         "run ./install.sh or source a ROS 2 installation") from None
    return {"sensor_msgs/msg/Image": Image, "sensor_msgs/msg/CompressedImage": CompressedImage,
            _INFO_TYPE: CameraInfo, _IMU_TYPE: Imu, **dict.fromkeys(_TF_TYPES, TFMessage)}


def _bag_errors() -> tuple[type[Exception], ...]:
    """What rosbags raises for an unreadable or damaged bag."""
    from rosbags.highlevel import AnyReaderError
    from rosbags.rosbag1 import ReaderError as Ros1Error
    from rosbags.rosbag2 import ReaderError as Ros2Error

    return AnyReaderError, Ros1Error, Ros2Error


class BagSource(InputSource):
    """A ROS 2 (sqlite3 / MCAP) or ROS 1 bag; events carry the ROS 2 messages of the chosen topics, in the
    bag's receive-time order, messages from before the first image (static TF, camera_info) included."""

    def __init__(self, path: str, kind: str, storage: str, bag: Path, image_topic: str | None,
                 camera_info_topic: str | None, imu_topic: str | None) -> None:
        self.kind, self.path, self._bag, self._storage = kind, path, bag, storage
        try:
            self._all = bag_topics(bag)
        except _bag_errors() as exc:
            raise InputError(f"{kind} bag {path} cannot be read: {exc}") from None
        self.topics, self._notes = _choose_topics(self._all, path, image_topic, camera_info_topic, imu_topic)
        self.frame_count = self._all[self.topics["image"]][1]

    def describe(self) -> str:
        parts = [f"{kind} {topic} ({_short(self._all[topic][0])}, {self._all[topic][1]})" if topic else
                 f"{kind} none" for kind, topic in self.topics.items()]
        notes = f" [{'; '.join(self._notes)}]" if self._notes else ""
        return f"{self.kind} ({self._storage}) {self.path}: {', '.join(parts)}; {self.frame_count} frames{notes}"

    def events(self) -> Iterator[Event]:
        classes = _ros2_classes()
        kinds = {topic: kind for kind, topic in self.topics.items() if topic}
        try:
            for topic, t, msg in read_bag(self._bag, classes, kinds):
                yield Event(kinds[topic], t, msg, topic)
        except _bag_errors() as exc:
            raise InputError(f"{self.kind} bag {self.path} is damaged: {exc}") from None


# ------------------------------------------------------------------------------------------------ entry

def _magic(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(16)


def _storage(file: str) -> str | None:
    """"sqlite3" or "mcap" when ``file`` starts like one, else None."""
    head = _magic(file)
    return "sqlite3" if head.startswith(b"SQLite format 3\0") else "mcap" if head.startswith(b"\x89MCAP") else None


def open_input(path: str, *, image_topic: str | None = None, camera_info_topic: str | None = None,
               imu_topic: str | None = None, gyro_csv: str | None = None, gyro_axes: str | None = None,
               fps: float | None = None) -> InputSource:
    """Open a recording: a video file, a folder of JPEG/PNG images, a rosbag2 (its folder with metadata.yaml,
    or its .db3 / .mcap file) or a ROS 1 .bag. What it is comes from its content (file magic), not its name.

    Bags: ``image_topic``, ``camera_info_topic``, ``imu_topic`` override the automatic choice (see
    :func:`_choose_topics`). Videos and folders: ``gyro_csv`` a gyro CSV (:func:`read_gyro_csv`), or
    "telemetry" for a GoPro MP4's own GYRO stream (:func:`read_gopro_gyro`), with ``gyro_axes`` mapping its
    axes to the camera's optical frame (:func:`parse_gyro_axes`; default "gopro" for a GoPro's raw axes,
    the identity for x, y, z columns); its times must share the video's clock (frame 0 at 0 s), as a
    GoPro's do. ``fps`` (Hz) stamps frame k at k / fps: folders (default 30) and videos (replacing the
    container's times). Options that do not apply to the kind of recording raise :class:`InputError`.
    """
    _check_fps(fps)
    if not os.path.exists(path):
        raise InputError(f"INPUT {path} does not exist")
    kind, storage, bag = "", "", Path(path)
    if os.path.isdir(path):
        names = sorted(os.listdir(path))
        stores = [n for n in names if n.endswith((".db3", ".mcap"))]
        images = sorted((n for n in names if n.lower().endswith(IMAGE_SUFFIXES) and not n.startswith(".")
                         and os.path.isfile(os.path.join(path, n))), key=_natural_key)
        if "metadata.yaml" in names or (stores and not images):
            if "metadata.yaml" not in names and len(stores) > 1:
                raise InputError(f"folder {path} holds {len(stores)} bag files ({', '.join(stores)}) and no "
                                 "metadata.yaml that says how they go together")
            kind = "rosbag2"
            storage = (_storage(os.path.join(path, stores[0])) or "unknown storage") if stores else "no storage file"
            if "metadata.yaml" not in names:
                bag = Path(path, stores[0])
        elif images:
            kind = "images"
        else:
            raise InputError(f"folder {path} is neither a rosbag2 (metadata.yaml, .db3 or .mcap) nor a folder of "
                             f"{'/'.join(s[1:] for s in IMAGE_SUFFIXES)} images; it holds "
                             f"{', '.join(names[:8]) or 'nothing'}{' ...' if len(names) > 8 else ''}")
    elif _magic(path).startswith(b"#ROSBAG V2.0"):
        kind, storage = "ros1", "bag v2.0"
    elif _storage(path):
        kind, storage = "rosbag2", _storage(path) or ""
    elif path.lower().endswith((".bag", ".db3", ".mcap")):
        raise InputError(f"{path} is named like a bag but does not start like one "
                         f"(first bytes {_magic(path)[:12]!r}): corrupt or not a bag")
    else:
        kind = "video"

    if kind in ("ros1", "rosbag2"):
        for name, value in (("gyro_csv", gyro_csv), ("gyro_axes", gyro_axes), ("fps", fps)):
            if value is not None:
                raise InputError(f"{name} applies to videos and image folders; {path} is a {kind} bag, whose "
                                 "IMU and stamps come from its own topics")
        return BagSource(path, kind, storage, bag, image_topic, camera_info_topic, imu_topic)
    for name, value in (("image_topic", image_topic), ("camera_info_topic", camera_info_topic),
                        ("imu_topic", imu_topic)):
        if value is not None:
            raise InputError(f"{name} applies to bags; {path} is {'a video' if kind == 'video' else 'an image folder'}")
    if gyro_axes is not None and gyro_csv is None:
        raise InputError("gyro_axes is given without gyro_csv: there is no gyro to map")
    gyro = None
    if gyro_csv == "telemetry":
        if kind != "video":
            raise InputError(f"gyro_csv 'telemetry' reads a GoPro MP4's own track; {path} is an image folder")
        gyro = read_gopro_gyro(path)
    elif gyro_csv is not None:
        gyro = read_gyro_csv(gyro_csv)
    if kind == "video":
        return VideoSource(path, fps, gyro, gyro_axes)
    return ImageFolderSource(path, images, fps, gyro, gyro_axes)
