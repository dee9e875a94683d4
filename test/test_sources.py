"""INPUT of `wham-ros run`: real videos, bags and the GoPro recording, image folders, and bad inputs."""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import ROOT, SHARED, require_file, require_module

from wham_ros.errors import WhamError
from wham_ros.offline import sources
from wham_ros.offline.sources import (
    DecodedFrame,
    InputError,
    _choose_topics,
    open_input,
    parse_gyro_axes,
    read_gopro_gyro,
    read_gyro_csv,
)

DATA = os.path.join(SHARED, "data")
SPORTS = os.path.join(DATA, "videos_people", "sports2d_demo.mp4")
GOPRO = os.path.join(DATA, "video_imu", "gopro_max-heromode")
BAGS = os.path.join(DATA, "bags")


def shared(relative: str) -> str:
    return require_file(os.path.join(DATA, relative), "shared recording")


def bag(name: str) -> str:
    require_module("rosbags", "rosbags")
    require_module("sensor_msgs.msg", "the ROS 2 message packages")
    return shared(os.path.join("bags", name))


def test_importing_needs_no_ros():
    code = ("import sys, wham_ros.offline.sources; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('rclpy', 'sensor_msgs', 'tf2_msgs', 'rosbags')]; "
            "sys.exit(str(bad) if bad else 0)")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_input_error_is_a_wham_error():
    assert issubclass(InputError, WhamError) and issubclass(InputError, ValueError)


# ---------------------------------------------------------------------------------------------- videos

def test_video_frames_are_lazy_rgb_with_container_stamps():
    src = open_input(shared("videos_people/sports2d_demo.mp4"))
    assert (src.kind, src.frame_count, src.width, src.height, src.fps) == ("video", 230, 1768, 994, 30.0)
    assert set(src.topics.values()) == {None}
    line = src.describe()
    assert "video" in line and "1768x994" in line and "230 frames" in line and "\n" not in line
    events = src.events()
    first = list(itertools.islice(events, 30))
    events.close()
    assert [e.kind for e in first] == ["image"] * 30
    frame = first[5].msg
    assert isinstance(frame, DecodedFrame) and frame.frame_id == sources.CAMERA_FRAME_ID
    assert frame.rgb.shape == (994, 1768, 3) and frame.rgb.dtype == np.uint8
    np.testing.assert_allclose([e.msg.stamp for e in first], np.arange(30) / 30, atol=1e-9)
    assert [e.time_ns for e in first] == [round(e.msg.stamp * 1e9) for e in first]
    # RGB, not OpenCV's BGR
    cap = cv2.VideoCapture(SPORTS)
    _, bgr = cap.read()
    cap.release()
    np.testing.assert_array_equal(first[0].msg.rgb, bgr[..., ::-1])


def test_fps_replaces_the_container_times():
    src = open_input(shared("videos_people/sports2d_demo.mp4"), fps=10)
    stamps = [e.msg.stamp for e in itertools.islice(src.events(), 3)]
    assert stamps == [0.0, 0.1, 0.2] and "k/10" in src.describe()


def test_truncated_video_yields_the_good_frames_then_says_how_many(tmp_path):
    data = Path(shared("videos_people/sports2d_demo.mp4")).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:len(data) // 2])            # this MP4 has its index first: it still opens
    src = open_input(str(cut))
    assert src.frame_count == 230
    seen = []
    with pytest.raises(InputError, match=r"truncated or corrupt: (\d+) frames decoded of the 230") as info:
        for event in src.events():
            seen.append(event)
    assert 60 < len(seen) < 230 and f"{len(seen)} frames decoded" in str(info.value)
    assert all(e.msg.rgb.shape == (994, 1768, 3) for e in seen[-3:])


def test_mp4_cut_before_its_index_and_garbage_are_refused(tmp_path):
    data = Path(shared("video_imu/gopro_max-heromode.mp4")).read_bytes()
    cut = tmp_path / "gopro_cut.mp4"
    cut.write_bytes(data[:len(data) // 2])            # the GoPro writes its index (moov) last
    with pytest.raises(InputError, match="cannot be opened as a video"):
        open_input(str(cut))
    with pytest.raises(InputError, match=r"GoPro telemetry .* runs past the end of the file"):
        open_input(str(cut), gyro_csv="telemetry")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match=r"junk\.mp4 cannot be opened as a video"):
        open_input(str(junk))
    (tmp_path / "junk.bag").write_bytes(b"not a bag at all")
    with pytest.raises(InputError, match="named like a bag but does not start like one"):
        open_input(str(tmp_path / "junk.bag"))
    with pytest.raises(InputError, match="does not exist"):
        open_input(str(tmp_path / "missing.mp4"))


def test_options_that_do_not_apply_are_refused():
    video = shared("videos_people/sports2d_demo.mp4")
    with pytest.raises(InputError, match="image_topic applies to bags"):
        open_input(video, image_topic="/cam/image_raw")
    with pytest.raises(InputError, match="gyro_axes is given without gyro_csv"):
        open_input(video, gyro_axes="x,y,z")
    with pytest.raises(InputError, match="fps -1 is not a frame rate"):
        open_input(video, fps=-1)
    with pytest.raises(InputError, match="no GPMF telemetry track"):
        open_input(video, gyro_csv="telemetry")


# ------------------------------------------------------------------------------------------ image folders

def _png(path: Path, rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", rgb[..., ::-1])
    assert ok
    path.write_bytes(buf.tobytes())


def test_image_folder_in_natural_order_with_fps_stamps(tmp_path):
    for k in (1, 2, 10, 11):                          # plain sorting would put frame10 before frame2
        _png(tmp_path / f"frame{k}.png", np.full((6, 8, 3), (k, 100, 200), np.uint8))
    _, jpg = cv2.imencode(".jpg", np.full((6, 8, 3), 50, np.uint8))
    (tmp_path / "frame3.JPG").write_bytes(jpg.tobytes())
    (tmp_path / "notes.txt").write_text("ignored")
    src = open_input(str(tmp_path), fps=10)
    assert (src.kind, src.frame_count, src.width, src.height) == ("images", 5, 8, 6)
    assert "5 frames of 8x6 at 10 fps" in src.describe()
    events = list(src.events())
    assert [e.msg.rgb[0, 0, 0] for e in events if e.msg.rgb[0, 0, 1] == 100] == [1, 2, 10, 11]
    assert events[2].msg.rgb.mean() == pytest.approx(50, abs=2)          # frame3.JPG, third
    np.testing.assert_allclose([e.msg.stamp for e in events], [0, 0.1, 0.2, 0.3, 0.4])
    assert events[0].msg.rgb[0, 0].tolist() == [1, 100, 200]             # RGB order
    assert open_input(str(tmp_path)).fps == sources.DEFAULT_FPS


def test_bad_image_folders(tmp_path):
    with pytest.raises(InputError, match=r"neither a rosbag2 .* nor a folder of jpg/jpeg/png images"):
        open_input(str(tmp_path))
    _png(tmp_path / "a1.png", np.zeros((6, 8, 3), np.uint8))
    _png(tmp_path / "a2.png", np.zeros((7, 8, 3), np.uint8))
    (tmp_path / "a3.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    events = open_input(str(tmp_path)).events()
    next(events)
    with pytest.raises(InputError, match=r"a2.png is 8x7, the first image is 8x6"):
        next(events)
    os.remove(tmp_path / "a2.png")
    events = open_input(str(tmp_path)).events()
    next(events)
    with pytest.raises(InputError, match=r"a3\.png: PNG without an IHDR header"):
        next(events)
    # a PNG declaring 20000 x 20000 pixels is refused from its header, before anything is decoded
    ihdr = b"IHDR" + (20000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    huge = b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4, "big") + ihdr + zlib.crc32(ihdr).to_bytes(4, "big")
    (tmp_path / "a0.png").write_bytes(huge)
    with pytest.raises(InputError, match=r"a0\.png is 20000x20000 = 400000000 pixels, above"):
        open_input(str(tmp_path))


# -------------------------------------------------------------------------------------------------- gyro

def test_gyro_axes_forms():
    np.testing.assert_array_equal(parse_gyro_axes("x,y,z"), np.eye(3))
    np.testing.assert_array_equal(parse_gyro_axes(" -x, y ,-z"), parse_gyro_axes("GoPro"))
    R = parse_gyro_axes("[[0,-1,0],[1,0,0],[0,0,1]]")
    np.testing.assert_allclose(R @ [1.0, 2.0, 3.0], [-2.0, 1.0, 3.0])
    np.testing.assert_allclose(parse_gyro_axes("0 -1 0; 1 0 0; 0 0 1"), R)
    np.testing.assert_allclose(parse_gyro_axes("y,-x,z"), R.T)
    for bad, message in [("x,-y,z", "reflection"), ("x,x,z", "not a rotation"), ("1 0 0 0 1 0", "9 numbers"),
                         ("up,left,back", "not a preset"), ("2 0 0 0 1 0 0 0 1", "not a rotation")]:
        with pytest.raises(InputError, match=message):
            parse_gyro_axes(bad)


def test_gopro_csv_and_its_telemetry_track_agree():
    csv = read_gyro_csv(shared("video_imu/gopro_max-heromode_gyro.csv"))
    assert csv.raw_gopro and len(csv.stamps) == 2082
    np.testing.assert_array_equal(csv.mtrx, [[0, -1, 0], [1, 0, 0], [0, 0, 1]])
    assert csv.stamps[0] == pytest.approx(0.080577) and csv.rates[0].tolist() == [0.072417, 0.222577, -0.155485]
    tele = read_gopro_gyro(shared("video_imu/gopro_max-heromode.mp4"))
    assert tele.stamps.shape == csv.stamps.shape and tele.rates.shape == (2082, 3)
    np.testing.assert_allclose(tele.stamps, csv.stamps, rtol=0, atol=0.06e-6)   # the CSV keeps 0.1 us
    np.testing.assert_allclose(tele.rates, csv.rates, rtol=0, atol=5.01e-7)      # and 6 decimals
    np.testing.assert_array_equal(tele.mtrx, csv.mtrx)


@pytest.mark.parametrize("gyro", ["csv", "telemetry"])
def test_gopro_video_with_gyro_in_the_optical_frame(gyro):
    video = shared("video_imu/gopro_max-heromode.mp4")
    table = np.loadtxt(shared("video_imu/gopro_max-heromode_gyro.csv"), delimiter=",", skiprows=2)
    src = open_input(video, gyro_csv=GOPRO + "_gyro.csv" if gyro == "csv" else "telemetry")
    assert "gyro 2082 samples" in src.describe() and "axes gopro" in src.describe()
    events = list(itertools.islice(src.events(), 60))
    times = [e.time_ns for e in events]
    assert times == sorted(times)
    counts = Counter(e.kind for e in events)
    assert counts["image"] >= 3 and counts["imu"] >= 40
    imu = [e.msg for e in events if e.kind == "imu"]
    assert imu[0].frame_id == sources.CAMERA_FRAME_ID and imu[0].linear_acceleration is None
    # the "gopro" preset: camera optical = (-g0, g1, -g2)
    np.testing.assert_allclose(imu[0].angular_velocity, table[0, 1:] * [-1, 1, -1], atol=1e-6)
    assert imu[0].stamp == pytest.approx(table[0, 0] * 1e-6, abs=1e-7)
    explicit = open_input(video, gyro_csv=GOPRO + "_gyro.csv", gyro_axes="x,y,z")
    sample = next(e.msg for e in explicit.events() if e.kind == "imu")
    np.testing.assert_allclose(sample.angular_velocity, table[0, 1:], atol=1e-6)


def test_plain_gyro_csv_with_an_image_folder(tmp_path):
    _png(tmp_path / "0.png", np.zeros((4, 4, 3), np.uint8))
    _png(tmp_path / "1.png", np.zeros((4, 4, 3), np.uint8))
    csv = tmp_path / "gyro.csv"
    csv.write_text("t,x,y,z\n0.0,0.1,0.2,0.3\n0.02,0.1,0.2,0.3\n0.0333333333,1,2,3\n0.05,0,0,0\n")
    src = open_input(str(tmp_path), gyro_csv=str(csv), fps=30)
    kinds = [(e.kind, round(e.time_ns / 1e6, 1)) for e in src.events()]
    # a sample stamped like a frame comes before it
    assert kinds == [("imu", 0.0), ("image", 0.0), ("imu", 20.0), ("imu", 33.3), ("image", 33.3), ("imu", 50.0)]
    rotated = open_input(str(tmp_path), gyro_csv=str(csv), gyro_axes="y,-x,z")
    w = [e.msg.angular_velocity for e in rotated.events() if e.kind == "imu"][2]
    np.testing.assert_allclose(w, [2, -1, 3])


@pytest.mark.parametrize("text,message", [
    ("time,a,b,c\n0,0,0,0\n", "header 'time,a,b,c' is not a time column"),
    ("t,x,y,z\n0,0,0,0\n0.1,0,0\n", "line 3 has 3 values, not 4"),
    ("t,x,y,z\n0,0,0,0\n0.1,0,nan,0\n", "row 3 has a NaN"),
    ("t,x,y,z\n0,0,0,0\n0.2,0,0,0\n0.1,0,0,0\n", "row 4 has time 0.100000 s, not after the previous 0.200000 s"),
    ("t,x,y,z\n0,0,0,0\n0.1,0,500,0\n", "row 3 has an angular velocity of 500 rad/s"),
    ("t,x,y,z\n0,0,0,0\n0.1,a,0,0\n", "line 3 '0.1,a,0,0' is not four numbers"),
    ("# only a comment\n", "no header line"),
    ("t,x,y,z\n0,0,0,0\n", "1 samples; at least 2"),
    ("# source=x.mp4 stream=GYRO meta={'MTRX': (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)}\n"
     "t_us,g0,g1,g2\n0,0,0,0\n100,0,0,0\n", "'gopro' was measured on a GoPro MAX"),
])
def test_bad_gyro_csv(tmp_path, text, message):
    csv = tmp_path / "gyro.csv"
    csv.write_text(text)
    with pytest.raises(InputError, match=message):
        open_input(shared("videos_people/sports2d_demo.mp4"), gyro_csv=str(csv))


# ------------------------------------------------------------------------------------------------- bags

def test_ros1_bag_with_compressed_images_and_camera_info():
    src = open_input(bag("ubiquity_aruco_images.bag"))
    from sensor_msgs.msg import CameraInfo, CompressedImage

    assert (src.kind, src.frame_count) == ("ros1", 1)
    assert src.topics == {"image": "/raspicam_node/image/compressed", "camera_info": "/raspicam_node/camera_info",
                          "imu": None, "tf": None, "tf_static": None}
    assert "image /raspicam_node/image/compressed (CompressedImage, 1)" in src.describe()
    events = list(src.events())
    assert [e.time_ns for e in events] == sorted(e.time_ns for e in events)
    assert Counter(e.kind for e in events) == {"camera_info": 15, "image": 1}
    assert events[0].kind == "camera_info"                      # messages before the first image are kept
    image = next(e for e in events if e.kind == "image")
    assert isinstance(image.msg, CompressedImage) and bytes(image.msg.data[:2]) == b"\xff\xd8"
    info = events[0].msg
    assert isinstance(info, CameraInfo) and info.k[0] == pytest.approx(1014.3, abs=0.05)
    assert events[0].topic == "/raspicam_node/camera_info"


@pytest.mark.parametrize("path", ["ubiquity_aruco_images_ros2_sqlite3",
                                  "ubiquity_aruco_images_ros2_sqlite3/ubiquity_aruco_images_ros2_sqlite3.db3"])
def test_ros2_sqlite3_bag_equals_its_ros1_original(path):
    src = open_input(bag(path))
    assert src.kind == "rosbag2" and "sqlite3" in src.describe()
    ros1 = [(e.kind, e.time_ns, e.topic) for e in open_input(bag("ubiquity_aruco_images.bag")).events()]
    assert [(e.kind, e.time_ns, e.topic) for e in src.events()] == ros1


@pytest.mark.parametrize("path", ["t265_ros2_mcap", "t265_ros2_mcap/t265_ros2_mcap.mcap",
                                  "kapture_t265_trimmed_locoffice.bag"])
def test_t265_bag_chooses_one_fisheye_and_the_gyro(path):
    src = open_input(bag(path))
    from sensor_msgs.msg import Image, Imu

    assert src.topics["image"] == "/camera/fisheye1/image_raw" and src.topics["imu"] == "/camera/gyro/sample"
    assert src.topics["camera_info"] is None and src.frame_count == 3
    line = src.describe()
    assert "others: /camera/fisheye2/image_raw" in line
    assert "accelerometer-only Imu skipped: /camera/accel/sample" in line
    events = list(src.events())
    assert Counter(e.kind for e in events) == {"image": 3, "imu": 19}
    assert [e.time_ns for e in events] == sorted(e.time_ns for e in events)
    assert all(isinstance(e.msg, Image if e.kind == "image" else Imu) for e in events)
    assert events[0].kind == "imu" and events[0].msg.header.frame_id == "camera_gyro_optical_frame"


def test_topic_overrides_and_their_errors():
    path = bag("t265_ros2_mcap")
    src = open_input(path, image_topic="/camera/fisheye2/image_raw", imu_topic="/camera/accel/sample")
    assert src.topics["image"] == "/camera/fisheye2/image_raw" and src.topics["imu"] == "/camera/accel/sample"
    assert "image_topic given" in src.describe()
    with pytest.raises(InputError, match=r"image_topic '/nope' is not in bag .*/camera/gyro/sample "
                                         r"\(sensor_msgs/msg/Imu, 19\)"):
        open_input(path, image_topic="/nope")
    with pytest.raises(InputError, match=r"imu_topic '/camera/odom/sample' .* is a nav_msgs/msg/Odometry, not"):
        open_input(path, imu_topic="/camera/odom/sample")
    with pytest.raises(InputError, match="camera_info_topic '/camera/fisheye1/camera_info' is not in bag"):
        open_input(path, camera_info_topic="/camera/fisheye1/camera_info")
    with pytest.raises(InputError, match="gyro_csv applies to videos and image folders"):
        open_input(path, gyro_csv=GOPRO + "_gyro.csv")
    with pytest.raises(InputError, match="fps applies to videos"):
        open_input(path, fps=30)


@pytest.mark.parametrize("name", ["rosbag2_talker_mcap", "rosbag2_talker_sqlite3"])
def test_bag_without_images_says_what_it_has(name):
    with pytest.raises(InputError, match=r"has no image topic .*/topic \(std_msgs/msg/String, 10\)"):
        open_input(bag(name))


def test_damaged_bag(tmp_path):
    data = Path(bag("ubiquity_aruco_images.bag")).read_bytes()
    cut = tmp_path / "cut.bag"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(InputError, match=r"ros1 bag .*cut\.bag cannot be read"):
        open_input(str(cut))


def test_choosing_among_several_cameras():
    topics = {"/a/image_raw": ("sensor_msgs/msg/Image", 50),
              "/b/image_raw/compressed": ("sensor_msgs/msg/CompressedImage", 40),
              "/b/image_raw": ("sensor_msgs/msg/Image", 40), "/b/camera_info": ("sensor_msgs/msg/CameraInfo", 40),
              "/d/depth/image_rect_raw": ("sensor_msgs/msg/Image", 90),
              "/d/depth/camera_info": ("sensor_msgs/msg/CameraInfo", 90),
              "/imu/data": ("sensor_msgs/msg/Imu", 100), "/x/gyro": ("sensor_msgs/msg/Imu", 400)}
    chosen, notes = _choose_topics(topics, "test", None, None, None)
    # depth loses to colour, and a camera with its camera_info wins over more frames; raw over compressed
    assert chosen["image"] == "/b/image_raw" and chosen["camera_info"] == "/b/camera_info"
    assert chosen["imu"] == "/x/gyro"
    del topics["/b/image_raw"]
    chosen, _ = _choose_topics(topics, "test", None, None, None)
    assert chosen["image"] == "/b/image_raw/compressed" and chosen["camera_info"] == "/b/camera_info"
    chosen, notes = _choose_topics(topics, "test", "/a/image_raw", None, None)
    assert chosen["camera_info"] is None and any("no camera_info in the image's namespace" in n for n in notes)


def _message(store, name: str, **given):
    """A rosbags message of type ``name`` with ``given`` fields and zeros elsewhere."""
    from rosbags.typesys.base import Nodetype

    def default(node, spec):
        if node == Nodetype.BASE:
            return "" if spec[0] == "string" else False if spec[0] == "bool" else 0
        if node == Nodetype.NAME:
            return _message(store, spec)
        inner, length = spec
        if inner[0] == Nodetype.BASE and inner[1][0] != "string":
            return np.zeros(length if node == Nodetype.ARRAY else 0, np.dtype(inner[1][0].replace("char", "uint8")))
        return [default(*inner) for _ in range(length if node == Nodetype.ARRAY else 0)]

    fields = {f: given[f] if f in given else default(*d) for f, d in store.fielddefs[name][1]}
    return store.types[name](**fields)


@pytest.mark.parametrize("version", ["ros1", "ros2"])
def test_tf_and_every_kind_in_time_order(tmp_path, version):
    """A bag written here with /tf_static first, /tf, camera_info, an IMU and images; ROS 1 with tf/tfMessage."""
    require_module("rosbags", "rosbags")
    from rosbags.rosbag1 import Writer as Writer1
    from rosbags.rosbag2 import StoragePlugin
    from rosbags.rosbag2 import Writer as Writer2
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore
    from tf2_msgs.msg import TFMessage

    store = get_typestore(Stores.ROS1_NOETIC if version == "ros1" else Stores.ROS2_HUMBLE)
    tf_type = "tf/msg/tfMessage" if version == "ros1" else "tf2_msgs/msg/TFMessage"
    if version == "ros1":
        store.register(get_types_from_msg("geometry_msgs/TransformStamped[] transforms", tf_type))
    stamp = lambda t: _message(store, "builtin_interfaces/msg/Time", sec=t, nanosec=0)
    header = lambda t, frame: _message(store, "std_msgs/msg/Header", stamp=stamp(t), frame_id=frame)
    tf = lambda t, child: _message(store, tf_type, transforms=[_message(
        store, "geometry_msgs/msg/TransformStamped", header=header(t, "odom"), child_frame_id=child)])
    pixels = np.arange(4 * 6 * 3, dtype=np.uint8)
    image = lambda t: _message(store, "sensor_msgs/msg/Image", header=header(t, "cam_optical"), height=4, width=6,
                               encoding="rgb8", step=18, data=pixels)
    k_name = "K" if version == "ros1" else "k"
    info = _message(store, "sensor_msgs/msg/CameraInfo", header=header(1, "cam_optical"), width=6, height=4,
                    **{k_name: np.array([5.0, 0, 3, 0, 5, 2, 0, 0, 1])})
    imu = _message(store, "sensor_msgs/msg/Imu", header=header(1, "imu"))
    plan = [("/tf_static", tf_type, 1, tf(0, "cam")), ("/cam/camera_info", "sensor_msgs/msg/CameraInfo", 2, info),
            ("/imu/data", "sensor_msgs/msg/Imu", 3, imu), ("/cam/image_raw", "sensor_msgs/msg/Image", 4, image(1)),
            ("/tf", tf_type, 5, tf(1, "base")), ("/cam/image_raw", "sensor_msgs/msg/Image", 6, image(2))]
    path = tmp_path / ("test.bag" if version == "ros1" else "test_bag")
    writer = Writer1(path) if version == "ros1" else Writer2(path, version=8, storage_plugin=StoragePlugin.MCAP)
    with writer:
        conns = {topic: writer.add_connection(topic, msgtype, typestore=store) for topic, msgtype in
                 dict.fromkeys((topic, msgtype) for topic, msgtype, _, _ in plan)}
        serialize = store.serialize_ros1 if version == "ros1" else store.serialize_cdr
        for topic, msgtype, t, msg in plan:
            writer.write(conns[topic], t * 1_000_000_000, serialize(msg, msgtype))
    src = open_input(str(path))
    assert src.kind == version.replace("ros2", "rosbag2") and src.frame_count == 2
    assert src.topics == {"image": "/cam/image_raw", "camera_info": "/cam/camera_info", "imu": "/imu/data",
                          "tf": "/tf", "tf_static": "/tf_static"}
    events = list(src.events())
    assert [e.kind for e in events] == ["tf_static", "camera_info", "imu", "image", "tf", "image"]
    assert [e.time_ns for e in events] == [t * 1_000_000_000 for _, _, t, _ in plan]
    static = events[0].msg
    assert isinstance(static, TFMessage) and static.transforms[0].child_frame_id == "cam"
    assert static.transforms[0].header.frame_id == "odom"
    assert events[1].msg.k[2] == 3.0 and bytes(events[3].msg.data) == pixels.tobytes()
    assert events[5].msg.header.stamp.sec == 2
