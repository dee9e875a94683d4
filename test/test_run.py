"""``wham-ros run``: recordings through the node's pipeline into DIR, read back as a user would, and the ways a
run must fail (exit status, message, nothing in DIR that looks complete, a previous run's results untouched)."""
from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import ROOT, SHARED, require_file, require_module

require_module("rclpy", "ROS 2 (rclpy)")
require_module("rosbags", "rosbags")

from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from rosbags.highlevel import AnyReader  # noqa: E402
from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: E402
from rosbags.typesys import Stores, get_types_from_msg, get_typestore  # noqa: E402

from wham_ros import cli  # noqa: E402
from wham_ros.factory import defaults_with, make_pipeline, session_config  # noqa: E402
from wham_ros.offline.overlay import OverlayWriter  # noqa: E402
from wham_ros.offline.results_bag import HUMANS, MARKERS, MESH_FACES, TF, ResultsBag  # noqa: E402
from wham_ros.offline.run import OUTPUTS, RunError, RunOptions, run  # noqa: E402
from wham_ros.offline.sources import open_input  # noqa: E402
from wham_ros.offline.tracks_out import OFFICIAL_KEYS, TrackRecorder  # noqa: E402
from wham_ros.session import CameraSession  # noqa: E402
from wham_ros.stream.inputs import official_focal  # noqa: E402

CLIP = os.path.join(ROOT, "data", "sports2d_640x360.mp4")
BAGS = os.path.join(SHARED, "data", "bags")
CLIP_FRAMES = 30
STAGES = ("read", "front end", "WHAM", "render", "write")


def shared_bag(name: str) -> str:
    return require_file(os.path.join(BAGS, name), "shared bag")


def quiet(**kwargs) -> RunOptions:
    return RunOptions(progress=False, **kwargs)


def ns(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def read_back(path: str) -> dict[str, list]:
    """topic -> [(log time, message)] of a bag, decoded with nothing but the schemas stored in it."""
    got: dict[str, list] = {}
    with AnyReader([Path(path)]) as reader:
        store = get_typestore(Stores.EMPTY)
        for conn in reader.connections:
            store.register(get_types_from_msg(conn.msgdef.data, conn.msgtype))
        for conn, log_time, raw in reader.messages():
            got.setdefault(conn.topic, []).append((log_time, store.deserialize_cdr(raw, conn.msgtype)))
    return got


def input_messages(path: str, topic: str) -> list:
    """The messages of ``topic`` in an input bag (ROS 1 or 2), read with rosbags, not with the code under test."""
    with AnyReader([Path(path)]) as reader:
        conns = [c for c in reader.connections if c.topic == topic]
        return [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages(connections=conns)]


def video_frames(path: str) -> tuple[list[int], tuple[int, int]]:
    """(stamps in ns as the container gives them, (width, height)) of every frame OpenCV decodes."""
    cap = cv2.VideoCapture(path)
    stamps, size = [], (0, 0)
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        stamps.append(round(cap.get(cv2.CAP_PROP_POS_MSEC) * 1e6))
        size = (frame.shape[1], frame.shape[0])
    cap.release()
    return stamps, size


def listing(folder) -> list[str]:
    """Everything in ``folder``, hidden names (a staging folder) included."""
    return sorted(os.listdir(folder))


def assert_nothing_complete(out) -> None:
    """A failed run: DIR absent or empty (the run created it), no staging folder, no output."""
    assert not os.path.exists(out) or listing(out) == [], listing(out)


def snapshot(folder) -> dict[str, bytes]:
    return {name: (Path(folder) / name).read_bytes() for name in listing(folder)}


def cli_run(*args: str) -> subprocess.CompletedProcess:
    """``python -m wham_ros.cli run ARGS --quiet`` as a user starts it."""
    return subprocess.run([sys.executable, "-m", "wham_ros.cli", "run", *args, "--quiet"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def write_bag(path: Path, messages: list[tuple[str, int, object]]) -> str:
    """A rosbag2 (MCAP) of (topic, log time ns, rclpy message) in that order; schemas from rosbags' Humble store."""
    store = get_typestore(Stores.ROS2_HUMBLE)
    with Writer(path, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {}
        for topic, t, msg in messages:
            msgtype = f"{type(msg).__module__.split('.')[0]}/msg/{type(msg).__name__}"
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(conns[topic], t, serialize_message(msg))
    return str(path)


def camera_info(width: int, height: int, focal: float, stamp_ns: int):
    from sensor_msgs.msg import CameraInfo

    msg = CameraInfo(width=width, height=height, distortion_model="plumb_bob", d=[0.0] * 5)
    msg.header.frame_id = "cam_optical"
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.k = [focal, 0.0, width / 2, 0.0, focal, height / 2, 0.0, 0.0, 1.0]
    return msg


def small_image(width: int, height: int, stamp_ns: int):
    from sensor_msgs.msg import Image

    msg = Image(width=width, height=height, encoding="rgb8", step=3 * width)
    msg.header.frame_id = "cam_optical"
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.data = np.full((height, width, 3), 90, np.uint8).tobytes()
    return msg


def spy_overlay(monkeypatch) -> list[tuple[float, tuple[float, float]]]:
    """(focal, principal) of every overlay frame: the camera each processed frame was rendered (and estimated) with."""
    seen = []
    original = OverlayWriter.add

    def add(self, rgb, people, focal, principal, body_model):
        seen.append((focal, principal))
        return original(self, rgb, people, focal, principal, body_model)

    monkeypatch.setattr(OverlayWriter, "add", add)
    return seen


# --------------------------------------------------------------------------------------------- the shipped clip

@pytest.fixture(scope="module")
def clip_run(tmp_path_factory):
    """The shipped clip's first frames through run(), with the default parameters."""
    require_file(CLIP, "the shipped clip", "it is part of the repository (data/)")
    out = str(tmp_path_factory.mktemp("clip") / "out")
    said: list[str] = []
    summary = run(CLIP, out, quiet(max_frames=CLIP_FRAMES), say=said.append)
    return summary, out, said


def test_clip_outputs_are_complete_and_agree(clip_run):
    summary, out, said = clip_run
    assert summary.frames == CLIP_FRAMES and said[0].startswith("run: video ")
    ids = sorted(summary.people)
    assert ids, "the clip has a man walking across from the first frames"
    npz = [f"wham_{i}.npz" for i in ids]
    assert listing(out) == sorted(["results.mcap", "overlay.mp4", "trajectories.png", *npz])
    assert sorted(summary.files) == sorted(os.path.join(out, n) for n in listing(out))

    stamps, (width, height) = video_frames(CLIP)
    bag = read_back(os.path.join(out, "results.mcap"))
    assert set(bag) == {HUMANS, TF, MESH_FACES, MARKERS}
    humans = [m for _, m in bag[HUMANS]]
    assert len(humans) == CLIP_FRAMES
    assert [ns(m.header.stamp) for m in humans] == pytest.approx(stamps[:CLIP_FRAMES], abs=1000)
    assert [t for t, _ in bag[HUMANS]] == pytest.approx(stamps[:CLIP_FRAMES], abs=1000)
    assert {m.camera_frame_id for m in humans} == {"camera"}
    faces = bag[MESH_FACES]
    assert len(faces) == 1 and faces[0][1].faces.size % 3 == 0 and faces[0][1].num_vertices > 0
    tf_by_stamp = {ns(m.transforms[0].header.stamp): {t.child_frame_id: t for t in m.transforms}
                   for _, m in bag[TF] if m.transforms}
    assert {c for frame in tf_by_stamp.values() for c in frame} == {f"body_{i}" for i in ids}

    for pid in ids:
        a = np.load(os.path.join(out, f"wham_{pid}.npz"))
        T = len(a["frame_ids"])
        assert T == summary.people[pid]["frames"]
        for key, shape in (("pose", (T, 72)), ("trans", (T, 3)), ("pose_world", (T, 72)), ("trans_world", (T, 3)),
                           ("betas", (T, 10)), ("frame_ids", (T,)), ("stamps", (T,))):
            assert a[key].shape == shape, key
        assert set(OFFICIAL_KEYS) - {"verts"} <= set(a.files) and int(a["track_id"]) == pid
        assert a["frame_ids"].dtype == np.int64 and np.all(np.diff(a["frame_ids"]) > 0)
        assert a["frame_ids"][0] == summary.people[pid]["first"] and a["frame_ids"][-1] == summary.people[pid]["last"]
        for row, f in enumerate(a["frame_ids"]):
            msg = humans[f]                   # the bag's f-th /humans is processed frame f
            assert abs(ns(msg.header.stamp) - round(a["stamps"][row] * 1e9)) < 1000
            person = next(h for h in msg.humans if h.id == pid)
            assert person.state == 1                                  # tracked: observed in that frame
            body = tf_by_stamp[ns(msg.header.stamp)][f"body_{pid}"].transform.translation
            np.testing.assert_allclose([body.x, body.y, body.z], a["ros_trans_world"][row], atol=1e-5)

    cap = cv2.VideoCapture(os.path.join(out, "overlay.mp4"))
    frames = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames += 1
        assert frame.shape == (height, width + height, 3)          # the input and a square side panel
    cap.release()
    assert frames == CLIP_FRAMES
    assert cv2.imread(os.path.join(out, "trajectories.png")) is not None

    table = summary.table()
    assert f"{CLIP_FRAMES} frames in" in table
    assert all(re.search(rf"^{stage}\s+\d", table, re.M) for stage in STAGES)
    for pid in ids:
        assert re.search(rf"^{pid}\s+{summary.people[pid]['frames']}\s", table, re.M)
    assert all(f in table for f in summary.files)


def test_cli_run_exits_0_with_the_summary(tmp_path):
    out = tmp_path / "cli"
    done = cli_run(CLIP, "--out", str(out), "--max-frames", "4", "--no-overlay", "--param", "birth_frames=1")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "4 frames in" in done.stdout and "wrote:" in done.stdout and "run: video" in done.stdout
    assert "results.mcap" in listing(out) and "overlay.mp4" not in listing(out)


def test_node_and_run_give_the_same_people(clip_run, tmp_path):
    """run() and a CameraSession + HumanPipeline built by the factory from the same parameters: the same ids in
    the same frames and the same estimates (one code path). A run also replaces every output of a previous run
    in DIR, those it does not write itself included."""
    params = {"birth_frames": 1}
    frames = 10
    out = tmp_path / "out"
    shutil.copytree(clip_run[1], out)
    summary = run(CLIP, str(out), quiet(params=params, max_frames=frames, overlay=False, bag=False, plot=False),
                  say=lambda _: None)
    assert listing(out) == sorted(f"wham_{i}.npz" for i in summary.people)

    param = defaults_with(params)
    pipeline = make_pipeline(param)
    session = CameraSession(pipeline, session_config(param))
    recorder = TrackRecorder(pipeline.net.smpl)
    images = (ev.msg for ev in open_input(CLIP).events() if ev.kind == "image")
    for k in range(frames):
        image = next(images)
        result = session.process(image.rgb, image.stamp, image.frame_id)
        recorder.add(k, result.stamp, result.people)
    assert recorder.ids == sorted(summary.people) and recorder.ids
    for pid in recorder.ids:
        mine, theirs = recorder.arrays(pid), np.load(out / f"wham_{pid}.npz")
        np.testing.assert_array_equal(mine["frame_ids"], theirs["frame_ids"])
        for key in ("trans_world", "ros_trans_world", "pose", "betas", "keypoints"):
            np.testing.assert_allclose(mine[key], theirs[key], atol=1e-6, err_msg=key)


# --------------------------------------------------------------------------------------------- bags

@pytest.fixture(scope="module")
def aruco_runs(tmp_path_factory):
    """The ubiquity aruco recording as a rosbag2 (sqlite3) and as a ROS 1 bag: 1 image, 15 CameraInfo."""
    runs = {}
    for name in ("ubiquity_aruco_images_ros2_sqlite3", "ubiquity_aruco_images.bag"):
        path = shared_bag(name)
        out = str(tmp_path_factory.mktemp("aruco") / "out")
        with pytest.MonkeyPatch.context() as mp:
            seen = spy_overlay(mp)
            runs[name] = (path, out, run(path, out, quiet(), say=lambda _: None), seen)
    return runs


@pytest.mark.parametrize("name", ["ubiquity_aruco_images_ros2_sqlite3", "ubiquity_aruco_images.bag"])
def test_bag_stamps_and_camera_info_are_used(aruco_runs, name):
    path, out, summary, seen = aruco_runs[name]
    assert summary.frames == 1 and summary.rotation_sources == {"first frame": 1} and not summary.warnings
    assert listing(out) == sorted(["results.mcap", "overlay.mp4", "trajectories.png"])    # nobody confirmed
    image = input_messages(path, "/raspicam_node/image/compressed")[0]
    humans = read_back(os.path.join(out, "results.mcap"))[HUMANS]
    assert [ns(m.header.stamp) for _, m in humans] == [ns(image.header.stamp)]
    assert humans[0][1].camera_frame_id == image.header.frame_id == "raspicam"
    info = input_messages(path, "/raspicam_node/camera_info")[0]
    k = info.K if hasattr(info, "K") else info.k
    assert (info.width, info.height) == (1280, 960)
    (focal, principal), = seen
    assert focal == pytest.approx((k[0] + k[4]) / 2) and principal == pytest.approx((k[2], k[5]))


def test_ros1_and_rosbag2_of_one_recording_give_one_result(aruco_runs):
    ros2, ros1 = ([(ns(m.header.stamp), m.header.frame_id, m.camera_frame_id, len(m.humans))
                   for _, m in read_back(os.path.join(out, "results.mcap"))[HUMANS]]
                  for _, out, _, _ in aruco_runs.values())
    assert ros2 == ros1


def test_t265_gyro_without_extrinsic_falls_back_and_says_so(tmp_path, monkeypatch):
    """The T265 bag: mono8 fisheye images, a gyro in a frame of its own, no TF and no CameraInfo."""
    path = shared_bag("t265_ros2_mcap")
    seen = spy_overlay(monkeypatch)
    summary = run(path, str(tmp_path / "out"), quiet(), say=lambda _: None)
    images = input_messages(path, "/camera/fisheye1/image_raw")
    humans = read_back(str(tmp_path / "out" / "results.mcap"))[HUMANS]
    assert [ns(m.header.stamp) for _, m in humans] == [ns(i.header.stamp) for i in images] and len(images) == 3
    assert "gyro" not in summary.rotation_sources and summary.rotation_sources["first frame"] == 1
    warning, = summary.warnings
    assert "/camera/gyro/sample" in warning and "2 of 3 frames" in warning and "IMU extrinsic missing" in warning
    assert "warnings:" in summary.table() and warning in summary.table()
    assert seen == [(pytest.approx(official_focal(848, 800)), (424.0, 400.0))] * 3    # no CameraInfo: official


def test_t265_gyro_with_its_tf_is_used(tmp_path):
    """The same recording with the camera <- gyro transform a driver would put on /tf_static."""
    from geometry_msgs.msg import TransformStamped
    from sensor_msgs.msg import Image, Imu
    from tf2_msgs.msg import TFMessage

    source = shared_bag("t265_ros2_mcap")
    wanted = {"/camera/fisheye1/image_raw": Image, "/camera/gyro/sample": Imu}
    messages = []
    with AnyReader([Path(source)]) as reader:
        conns = [c for c in reader.connections if c.topic in wanted]
        for conn, t, raw in reader.messages(connections=conns):
            messages.append((conn.topic, t, deserialize_message(raw, wanted[conn.topic])))
    extrinsic = TransformStamped(child_frame_id="camera_gyro_optical_frame")
    extrinsic.header.frame_id = "camera_fisheye1_optical_frame"
    extrinsic.transform.rotation.w = 1.0
    first = messages[0][1]
    bag = write_bag(tmp_path / "t265_tf", [("/tf_static", first - 1, TFMessage(transforms=[extrinsic])), *messages])
    summary = run(bag, str(tmp_path / "out"), quiet(), say=lambda _: None)
    assert summary.rotation_sources == {"first frame": 1, "gyro": 2} and not summary.warnings


# --------------------------------------------------------------------------------------------- failures

def garbage_mp4(tmp_path: Path) -> str:
    path = tmp_path / "garbage.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    return str(path)


def half_clip(tmp_path: Path) -> str:
    """The shipped clip cut at half its bytes; its index (moov) is at its end, so it is cut off."""
    path = tmp_path / "half.mp4"
    data = Path(CLIP).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return str(path)


@pytest.mark.parametrize("make, message", [
    (garbage_mp4, "cannot be opened as a video"),
    (half_clip, "cut short before its index"),
    (lambda _: shared_bag("rosbag2_talker_mcap"), "has no image topic"),
], ids=["garbage", "half_clip", "no_image_topic"])
def test_bad_input_fails_with_its_name(tmp_path, make, message):
    """Inputs that fail before the model loads, through the CLI as a user meets them."""
    path = make(tmp_path)
    out = tmp_path / "out"
    done = cli_run(path, "--out", str(out))
    assert done.returncode == 1, done.stdout
    assert done.stderr.count("run: ") == 1 and message in done.stderr and path in done.stderr
    assert "Traceback" not in done.stderr
    assert_nothing_complete(out)


def test_unwritable_output_folder(tmp_path):
    parent = tmp_path / "a_file"
    parent.write_text("not a folder")
    done = cli_run(CLIP, "--out", str(parent / "out"), "--max-frames", "2")
    assert done.returncode == 1 and "cannot write to the output folder" in done.stderr
    assert str(parent / "out") in done.stderr and "Not a directory" in done.stderr
    assert parent.read_text() == "not a folder"
    with pytest.raises(RunError, match="is a file, not a folder"):
        run(CLIP, str(parent), quiet(max_frames=2), say=lambda _: None)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the case above covers it")
def test_read_only_output_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        done = cli_run(CLIP, "--out", str(locked / "out"), "--max-frames", "2")
        assert done.returncode == 1 and "Permission denied" in done.stderr and listing(locked) == []
    finally:
        locked.chmod(0o755)


def test_truncated_video_fails_and_max_frames_keeps_the_good_part(tmp_path, capsys):
    """A video that breaks off after its first half (MJPEG AVI, readable up to the cut): the frames before the
    damage are processed, yet the run fails and writes nothing; the message says --max-frames N keeps them."""
    cap = cv2.VideoCapture(CLIP)
    whole = tmp_path / "whole.avi"
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (320, 180))
    for _ in range(24):
        writer.write(cv2.resize(cap.read()[1], (320, 180), interpolation=cv2.INTER_AREA))
    writer.release()
    cap.release()
    cut = tmp_path / "cut.avi"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    good = len(video_frames(str(cut))[0])
    assert 0 < good < 24

    out = tmp_path / "out"
    assert cli.main(["run", str(cut), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "truncated" in err and "no result was written" in err and f"--max-frames {good} " in err
    assert_nothing_complete(out)

    summary = run(str(cut), str(out), quiet(max_frames=good, overlay=False), say=lambda _: None)
    assert summary.frames == good
    warning, = summary.warnings
    assert f"after the {good} images asked for" in warning and "truncated" in warning
    assert "results.mcap" in listing(out)


def camera_info_bag(tmp_path: Path, info_size: tuple[int, int], focal: float) -> str:
    """3 images of 64x48 at 10 Hz, each after a CameraInfo of ``info_size`` with focal length ``focal``."""
    t0 = 1_700_000_000_000_000_000
    messages = []
    for k in range(3):
        t = t0 + k * 100_000_000
        messages += [("/cam/camera_info", t, camera_info(*info_size, focal, t)),
                     ("/cam/image_raw", t + 1000, small_image(64, 48, t))]
    return write_bag(tmp_path / f"info_{info_size[0]}_{focal:g}", messages)


def test_camera_info_of_another_size_fails_with_the_way_out(tmp_path, capsys, monkeypatch):
    bag = camera_info_bag(tmp_path, (640, 480), 500.0)
    out = tmp_path / "out"
    assert cli.main(["run", bag, "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "64x48" in err and "640x480" in err and "/cam/camera_info" in err
    assert "--param use_camera_info_intrinsics=false" in err and "--camera-info-topic" in err
    assert_nothing_complete(out)
    # the way out the message gives works, with the official focal
    seen = spy_overlay(monkeypatch)
    summary = run(bag, str(out), quiet(params={"use_camera_info_intrinsics": False}), say=lambda _: None)
    assert summary.frames == 3 and [f for f, _ in seen] == pytest.approx([official_focal(64, 48)] * 3)


def test_camera_info_all_rejected_fails(tmp_path, capsys):
    bag = camera_info_bag(tmp_path, (64, 48), 0.0)             # K with no focal length: an uncalibrated camera
    out = tmp_path / "out"
    assert cli.main(["run", bag, "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "every CameraInfo on /cam/camera_info so far (3) was rejected" in err and "uncalibrated" in err
    assert "--param use_camera_info_intrinsics=false" in err
    assert_nothing_complete(out)


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("writer", ["overlay", "bag"])
def test_disk_full_leaves_nothing_and_keeps_a_previous_run(clip_run, tmp_path, capsys, monkeypatch, writer):
    """ENOSPC from the overlay video or the results bag, into a new DIR (removed again) and into a DIR holding a
    previous complete run (left byte for byte as it was)."""
    monkeypatch.setattr(*((OverlayWriter, "add") if writer == "overlay" else (ResultsBag, "write_frame")),
                        _disk_full)
    fresh = tmp_path / "fresh"
    assert cli.main(["run", CLIP, "--out", str(fresh), "--max-frames", "3", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "disk full" in err and str(fresh) in err and "Traceback" not in err
    assert not fresh.exists()
    previous = tmp_path / "previous"
    shutil.copytree(clip_run[1], previous)
    before = snapshot(previous)
    with pytest.raises(RunError, match="disk full"):
        run(CLIP, str(previous), quiet(max_frames=3), say=lambda _: None)
    assert snapshot(previous) == before and set(OUTPUTS) <= set(before)


def test_detecting_ahead_gives_the_sequential_result(tmp_path):
    """The next image's front end in a worker thread changes nothing: the same people, the same numbers."""
    a = run(CLIP, str(tmp_path / "ahead"), quiet(max_frames=20, overlay=False, params={"birth_frames": 1}),
            say=lambda _: None)
    b = run(CLIP, str(tmp_path / "seq"), quiet(max_frames=20, overlay=False, params={"birth_frames": 1},
                                             detect_ahead=False), say=lambda _: None)
    assert a.people == b.people and a.people
    for name in sorted(f for f in listing(tmp_path / "ahead") if f.endswith(".npz")):
        x, y = np.load(tmp_path / "ahead" / name), np.load(tmp_path / "seq" / name)
        for key in ("pose", "trans_world", "frame_ids"):
            np.testing.assert_array_equal(x[key], y[key])


def test_demo_conventions_run_writes_whole_track_results(tmp_path):
    """--demo-conventions through run(): the same outputs, from WHAM over whole tracks with the demo's
    preprocessing, so the estimates differ from the causal run's on the same frames."""
    causal = tmp_path / "causal"
    demo = tmp_path / "demo"
    run(CLIP, str(causal), quiet(max_frames=45, overlay=False), say=lambda _: None)
    summary = run(CLIP, str(demo), quiet(max_frames=45, overlay=False, demo_conventions=True), say=lambda _: None)
    assert summary.frames == 45 and summary.people
    npz = sorted(f for f in listing(demo) if f.endswith(".npz"))
    assert npz and "results.mcap" in listing(demo)
    x, y = np.load(demo / npz[0]), np.load(causal / npz[0])
    common = np.intersect1d(x["frame_ids"], y["frame_ids"])
    assert len(common) >= 30
    rows_x = np.searchsorted(x["frame_ids"], common)
    rows_y = np.searchsorted(y["frame_ids"], common)
    assert np.abs(x["pose"][rows_x] - y["pose"][rows_y]).max() > 1e-3
