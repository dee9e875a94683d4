"""wham_node over DDS under what a real client and a fuzzer do: wrong clocks, absurd values, stopped
streams, future stamps, decompression bombs, hostile files, signals mid-frame.

The node runs with the shipped defaults for everything these tests are about (max_image_age,
future_tolerance, max_image_pixels, imu_max_gap, imu_wait), fed JPEG frames with CameraInfo per frame.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import signal
import threading
import time
import typing
import zlib

import numpy as np
import pytest
import torch
from conftest import require_module

rclpy = require_module("rclpy", "ROS 2 (rclpy)")
cv2 = require_module("cv2", "OpenCV")
from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from geometry_msgs.msg import TransformStamped  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Imu  # noqa: E402
from test_node import CAMERA, CAMERA_IN_ODOM, FOCAL, Client, frames, start_node, stop  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402
from wham_ros.msg import Human, HumanArray  # noqa: E402

OK, WARN, ERROR = (int.from_bytes(b, "little") for b in (DiagnosticStatus.OK, DiagnosticStatus.WARN,
                                                          DiagnosticStatus.ERROR))


@pytest.fixture(scope="module")
def ros_context():
    rclpy.init()
    yield
    rclpy.shutdown()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A folder with a synthetic body model and random WHAM weights."""
    from wham_ros.model.synthetic import make_test_state_dict, write_body_model

    folder = tmp_path_factory.mktemp("fault_models")
    write_body_model(str(folder / "body_models"))
    torch.save({"model": make_test_state_dict(0)}, folder / "wham.pth.tar")
    return folder


def write_params(folder, name: str, **overrides) -> str:
    """``<folder>/<name>/params.yaml`` (the node's log goes beside it) for the model files in ``folder``."""
    values = {"checkpoint": f'"{folder / "wham.pth.tar"}"', "body_model_dir": f'"{folder / "body_models"}"',
              "birth_frames": 2, "diagnostics_period": 0.3, "image_qos_reliability": "reliable",
              "imu_qos_reliability": "reliable", "max_tracks": 4, **overrides}
    (folder / name).mkdir(exist_ok=True)
    path = folder / name / "params.yaml"
    path.write_text("/**:\n  ros__parameters:\n" + "".join(f"    {k}: {v}\n" for k, v in values.items()))
    return str(path)


def node_log(params: str) -> str:
    """The log ``start_node(params, "-r", ...)`` writes."""
    with open(os.path.join(os.path.dirname(params), "node2.log")) as fh:
        return fh.read()


class FaultClient(Client):
    """The test client with JPEG frames, a dynamic TF publisher and the node's whole diagnostic status."""

    def __init__(self, name: str, namespace: str) -> None:
        super().__init__(name, image_topic=f"{namespace}/image/compressed", compressed=True)
        self.ns = namespace
        self.info = self.node.create_publisher(CameraInfo, f"{namespace}/camera_info", 5)
        self.imu = self.node.create_publisher(Imu, f"{namespace}/imu", 200)
        self.tf_pub = self.node.create_publisher(TFMessage, "/tf", QoSProfile(
            depth=100, reliability=ReliabilityPolicy.RELIABLE))
        self.humans = []
        self.node.create_subscription(HumanArray, f"{namespace}/humans", self.humans.append, 50)
        self.imu_on = threading.Event()
        self.imu_offset = 0.0
        self._imu_stop = threading.Event()
        self._imu_thread = threading.Thread(target=self._imu_loop, daemon=True)
        self._imu_thread.start()

    def _imu_loop(self) -> None:
        """A 200 Hz gyro, on while ``imu_on`` is set, stamped ``imu_offset`` s off the clock like the images."""
        next_t = time.monotonic()
        while not self._imu_stop.is_set():
            if self.imu_on.is_set():
                self.send_imu(self.stamp(self.imu_offset)[0])
            next_t += 0.005
            time.sleep(max(0.0, next_t - time.monotonic()))

    def close(self) -> None:
        self._imu_stop.set()
        self._imu_thread.join()
        super().close()

    def wait_for_node(self, timeout: float = 90.0) -> None:
        ready = self.spin(timeout, lambda: self.node.count_publishers(f"{self.ns}/humans") > 0
                          and self.node.count_subscribers(self.image.topic_name) > 0)
        assert ready, "wham_node did not come up (see its log next to the params file)"

    def send_jpeg(self, rgb: np.ndarray, stamp_msg, info_k: float | None = FOCAL) -> None:
        if info_k is not None:
            info = CameraInfo(width=rgb.shape[1], height=rgb.shape[0])
            info.k = [info_k, 0.0, rgb.shape[1] / 2, 0.0, info_k, rgb.shape[0] / 2, 0.0, 0.0, 1.0]
            info.header.stamp, info.header.frame_id = stamp_msg, CAMERA
            self.info.publish(info)
        msg = CompressedImage(format="jpeg", data=cv2.imencode(".jpg", rgb[..., ::-1])[1].tobytes())
        msg.header.stamp, msg.header.frame_id = stamp_msg, CAMERA
        self.image.publish(msg)

    def send_imu(self, stamp_msg, rate=(0.0, 0.25, 0.0)) -> None:
        imu = Imu()
        imu.header.stamp, imu.header.frame_id = stamp_msg, CAMERA
        imu.angular_velocity.x, imu.angular_velocity.y, imu.angular_velocity.z = rate
        self.imu.publish(imu)

    def send_tf(self, stamp_msg) -> None:
        tf = TransformStamped()
        tf.header.stamp, tf.header.frame_id, tf.child_frame_id = stamp_msg, "odom", CAMERA
        tf.transform.translation.x, tf.transform.translation.y, tf.transform.translation.z = CAMERA_IN_ODOM[0]
        r = tf.transform.rotation
        r.x, r.y, r.z, r.w = CAMERA_IN_ODOM[1]
        self.tf_pub.publish(TFMessage(transforms=[tf]))

    def stream(self, video: list[np.ndarray], fps: float = 10.0, *, offset: float = 0.0, imu: bool = True,
               tf: bool = True, info_k: float | None = FOCAL, settle: float = 1.0) -> list:
        """Frames at ``fps`` like a live camera (CameraInfo and TF per frame, a 200 Hz gyro between frames);
        returns the HumanArrays that came back."""
        before = len(self.humans)
        self.imu_offset = offset
        if imu:
            self.imu_on.set()
        else:
            self.imu_on.clear()
        next_t = time.monotonic()
        for rgb in video:
            stamp_msg, _ = self.stamp(offset)
            if tf:
                self.send_tf(stamp_msg)
            self.send_jpeg(rgb, stamp_msg, info_k)
            next_t += 1.0 / fps
            self.spin(max(0.0, next_t - time.monotonic()))
        self.spin(settle)
        return self.humans[before:]

    def status(self) -> DiagnosticStatus:
        """The node's latest diagnostic status (after the next publication)."""
        n = len(self.diags)
        assert self.spin(5.0, lambda: any(d.status[0].name.endswith(f"{self.ns}/wham_node") for d in self.diags[n:]))
        return [d.status[0] for d in self.diags[n:] if d.status[0].name.endswith(f"{self.ns}/wham_node")][-1]

    def values(self) -> dict[str, str]:
        return {v.key: v.value for v in self.status().values}


@contextlib.contextmanager
def launched(models, name: str, **overrides):
    """wham_node in namespace /<name> (JPEG input, ``overrides`` on the test parameters), up and talking to a
    :class:`FaultClient`: yields (client, node process, params file)."""
    params = write_params(models, name, use_compressed="true", **overrides)
    proc = start_node(params, "-r", f"__ns:=/{name}")
    client = FaultClient(f"wham_{name}_client", f"/{name}")
    try:
        client.wait_for_node()
        yield client, proc, params
    finally:
        stop(client, proc)


@pytest.fixture(scope="module")
def node(ros_context, models):
    with launched(models, "faults") as (client, _, _):
        yield client


def level(status: DiagnosticStatus) -> int:
    return int.from_bytes(status.level, "little")


def test_stale_images_are_an_error_that_names_the_clock(node):
    """A bag replayed without /clock: every image is 10 s old. The level is ERROR, not OK, with the cause."""
    got = node.stream(frames(6), offset=-10.0, imu=False, tf=False)
    assert not got
    status = node.status()
    assert level(status) == ERROR, status.message
    assert "images 10.0 s older than max_image_age (0.5 s): clock mismatch?" in status.message
    assert "use_sim_time" in status.message


def test_input_rates_decay_when_streams_stop(node):
    """The IMU and CameraInfo stop while images go on: rates fall to zero and the level says so."""
    video = frames(4)
    node.stream(video * 3, fps=10.0)
    live = node.values()
    assert float(live["imu rate (Hz)"]) > 100 and float(live["camera_info rate (Hz)"]) > 2
    node.stream(video * 18, fps=10.0, imu=False, info_k=None, settle=0.0)   # 7 s: longer than the rate window
    status = node.status()
    values = {v.key: v.value for v in status.values}
    assert float(values["imu rate (Hz)"]) == 0.0 and float(values["camera_info rate (Hz)"]) == 0.0
    assert level(status) == WARN
    assert "imu: none for" in status.message and "camera_info: stale: none for" in status.message
    assert status.message.count("camera_info") == 1, "one cause, said once"
    assert values["camera_info"].startswith("stale"), values["camera_info"]


def test_images_lost_in_transport_are_reported(node):
    """CameraInfo at 10 Hz, only every third image arrives (what fragmented UDP does to raw images)."""
    video = frames(3)
    for k in range(60):
        stamp_msg, _ = node.stamp()
        info = CameraInfo(width=video[0].shape[1], height=video[0].shape[0])
        info.k = [FOCAL, 0.0, video[0].shape[1] / 2, 0.0, FOCAL, video[0].shape[0] / 2, 0.0, 0.0, 1.0]
        info.header.stamp, info.header.frame_id = stamp_msg, CAMERA
        node.info.publish(info)
        if k % 3 == 0:
            node.send_jpeg(video[k % 3], stamp_msg, None)
        node.spin(0.1)
    status = node.status()
    assert level(status) >= WARN and "images are lost in transport" in status.message, status.message


def test_most_frames_dropped_busy_is_a_warning(node):
    video = frames(3)
    node.stream(video * 50, fps=100.0, imu=False, settle=0.0)
    status = node.status()
    assert level(status) >= WARN and "dropped busy" in status.message, status.message


@pytest.mark.parametrize("fx,cx", [(1e308, None), (1e-300, None), (None, 1e300)])
def test_absurd_intrinsics_are_rejected_at_the_boundary(node, fx, cx):
    """CameraInfo that is finite but physically impossible is counted and reported, and people still come
    out with the official focal (the WHAM step is not skipped)."""
    video = frames(8)
    before = node.values()
    info_k = fx if fx is not None else FOCAL
    k_cx = cx if cx is not None else video[0].shape[1] / 2
    original = node.send_jpeg

    def send(rgb, stamp_msg, _k=None):
        info = CameraInfo(width=rgb.shape[1], height=rgb.shape[0])
        info.k = [info_k, 0.0, k_cx, 0.0, info_k, rgb.shape[0] / 2, 0.0, 0.0, 1.0]
        info.header.stamp, info.header.frame_id = stamp_msg, CAMERA
        node.info.publish(info)
        original(rgb, stamp_msg, None)

    node.send_jpeg = send
    try:
        got = node.stream(video, fps=8.0)
    finally:
        node.send_jpeg = original
    status = node.status()
    values = {v.key: v.value for v in status.values}
    assert int(values["bad_camera_info"]) >= int(before.get("bad_camera_info", 0)) + len(video) - 1
    assert values["camera_info"].startswith("rejected (CameraInfo"), values["camera_info"]
    assert level(status) == WARN and "camera_info: rejected (CameraInfo" in status.message
    assert status.message.count("rejected (CameraInfo") == 1, "one cause, said once"
    assert int(values.get("wham_steps_skipped", 0)) == int(before.get("wham_steps_skipped", 0))
    tracked = [h for a in got for h in a.humans if h.state == Human.STATE_TRACKED and any(h.betas)]
    assert tracked, "people still come out"


def test_absurd_angular_velocity_is_rejected_and_the_gyro_recovers(node):
    video = frames(6)
    before = node.values()
    node.send_imu(node.stamp()[0], rate=(0.0, 1e308, 0.0))
    node.stream(video, fps=8.0)
    values = node.values()
    assert int(values["bad_imu"]) >= int(before.get("bad_imu", 0)) + 1
    assert "no gyro measures" in values["last_imu_error"]
    assert values["camera_rotation"] == "gyro", values["camera_rotation"]


def test_one_future_stamp_does_not_poison_the_imu_or_tf(node):
    """One IMU sample and one TF stamped 1e6 s ahead are rejected; gyro and world anchoring go on."""
    video = frames(6)
    node.stream(video[:3], fps=8.0)
    before = node.values()
    future = node.stamp(1e6)[0]
    node.send_imu(future)
    node.send_tf(future)
    got = node.stream(video, fps=8.0)
    values = node.values()
    assert int(values["imu_future_stamp"]) == int(before.get("imu_future_stamp", 0)) + 1
    assert int(values["tf_future_stamp"]) == int(before.get("tf_future_stamp", 0)) + 1
    assert int(values.get("bad_imu", 0)) - int(before.get("bad_imu", 0)) == 0, "valid samples after it are taken"
    assert values["camera_rotation"] == "gyro" and values["world"] == "TF odom", values
    assert got and got[-1].header.frame_id == "odom"


def _png_bomb(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(1 + 3 * width) * 64))
            + chunk(b"IEND", b""))


def test_a_decompression_bomb_is_a_bad_image_not_a_stall(node):
    before = node.values()
    msg = CompressedImage(format="png", data=_png_bomb(16384, 16384))
    msg.header.stamp, _ = node.stamp()
    msg.header.frame_id = CAMERA
    node.image.publish(msg)
    node.spin(0.5)
    got = node.stream(frames(4), fps=8.0)
    values = node.values()
    assert int(values["bad_images"]) == int(before.get("bad_images", 0)) + 1
    assert "above max_image_pixels" in values["last_image_error"]
    assert len(got) >= 3, "the frames right after the bomb are processed"


def test_skipped_wham_steps_are_counted_and_warned(ros_context, models):
    """In process, on the real rclpy: a WHAM step the engine skips shows as a counter and a WARN."""
    from wham_ros.ros.node import WhamNode
    from wham_ros.session import CameraSession

    node = WhamNode()
    try:
        class Skipping:
            last_skipped: typing.ClassVar = {7: "focal contains NaN or inf"}
            active_tracks = 1
            use_camera_intrinsics = True

            def process(self, *args, **kwargs):
                return []

        node.pipeline = Skipping()
        node.session = CameraSession(node.pipeline, count=node.stats.inc, warn=node._warn, status=node._status)
        node._publish = lambda *args: None
        now = node.get_clock().now().to_msg()
        msg = CompressedImage(format="jpeg", data=cv2.imencode(".jpg", frames(1)[0])[1].tobytes())
        msg.header.stamp, msg.header.frame_id = now, CAMERA
        node._process(msg)
        assert node.stats.counts["wham_steps_skipped"] == 1
        problems = node._problems()
        assert any("1 WHAM steps skipped (track 7: focal contains NaN or inf)" in cause for _, cause in problems)
        assert max(lvl for lvl, _ in problems) >= WARN
    finally:
        node.destroy_node()


def test_hostile_body_model_fails_configure_with_a_reason(ros_context, tmp_path, models):
    """A body_model_dir whose SMPL pickle carries a payload: configure fails, says why, the payload never runs."""
    import shutil

    folder = models
    hostile = tmp_path / "hostile"
    shutil.copytree(folder / "body_models", hostile / "body_models")
    shutil.copy(folder / "wham.pth.tar", hostile / "wham.pth.tar")
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    pkl = hostile / "body_models" / "smpl" / "SMPL_NEUTRAL.pkl"
    with open(pkl, "rb") as fh:
        smpl = pickle.load(fh)
    smpl["bs_style"] = Payload()
    with open(pkl, "wb") as fh:
        pickle.dump(smpl, fh, protocol=2)
    params = write_params(hostile, "hostile")
    proc = start_node(params, "-r", "__ns:=/hostile")
    try:
        deadline = time.time() + 60
        while time.time() < deadline and "configure failed" not in node_log(params):
            time.sleep(0.2)
        log = node_log(params)
        assert "configure failed" in log and "refused global" in log and "system" in log, log
        assert not marker.exists(), "the payload ran"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_front_end_is_ready_when_configure_ends(ros_context, models):
    """MediaPipe is built and warmed up in configure: a 1.3 s stream right after start-up is processed
    (almost) whole and gives a tracked person."""
    with launched(models, "startup") as (client, _, _):
        got = client.stream(frames(13), fps=10.0, settle=2.0)
        assert len(got) >= 11, f"only {len(got)} of 13 frames processed"
        assert any(h.state == Human.STATE_TRACKED for a in got for h in a.humans)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_frames_stops_cleanly(ros_context, models, sig):
    """SIGINT/SIGTERM while frames stream in: the worker stops before the context goes, no frame error."""
    with launched(models, f"sig{int(sig)}") as (client, proc, params):
        video = frames(4)
        client.stream(video * 3, fps=30.0, settle=0.0)
        sender = threading.Thread(target=lambda: (time.sleep(0.3), proc.send_signal(sig)))
        sender.start()
        client.stream(video * 5, fps=30.0, settle=0.0)
        sender.join()
        assert proc.wait(timeout=30) == 0
        log = node_log(params)
        assert "RCLError" not in log and "frame failed" not in log and "context is invalid" not in log, log


def test_empty_checkpoint_and_body_model_dir_run_the_embedded_defaults(ros_context, models):
    """Nothing given: the node runs the embedded model on the free body model install.sh builds (its own vertex
    count), and tracks people with it."""
    from rclpy.qos import DurabilityPolicy
    from wham_ros.msg import MeshTopology

    from wham_ros.model.body_model import load_body_model

    free = load_body_model("")
    topology = []
    with launched(models, "free", checkpoint='""', body_model_dir='""') as (client, _, params):
        client.node.create_subscription(MeshTopology, "/free/humans/mesh_faces", topology.append, QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        got = client.stream(frames(8), fps=8.0)
        assert client.spin(5.0, lambda: bool(topology)), node_log(params)
        assert topology[0].num_vertices == free.num_vertices != 6890
        assert len(topology[0].faces) == 3 * int(free.faces_tensor.shape[0])
        assert any(h.state == Human.STATE_TRACKED and any(h.betas) for a in got for h in a.humans)
        assert "the embedded model" in node_log(params)


def test_frames_that_fail_after_good_ones_are_reported(ros_context):
    """Failures are judged over the last seconds, not over the node's life: one good frame hides nothing."""
    from wham_ros.ros.node import WhamNode

    node = WhamNode()
    try:
        node.stats.inc("frames")
        assert not [c for _, c in node._problems() if "failed" in c]
        node._status["last_frame_error"] = "RuntimeError: CUDA out of memory"
        node.stats.inc("frame_errors")
        (lvl, cause), = [(lvl, c) for lvl, c in node._problems() if "failed" in c]
        assert lvl == WARN and "1 frames failed, 1 processed: RuntimeError: CUDA out of memory" in cause
        node.stats._events["frames"].clear()             # no good frame in the window any more
        assert max(lvl for lvl, c in node._problems() if "failed" in c) == ERROR
    finally:
        node.destroy_node()


def test_callbacks_after_release_are_ignored(ros_context):
    """A shutdown straight from active releases the session; an IMU, TF or CameraInfo message the executor had
    queued must not raise into the spin loop (it would kill the node)."""
    from sensor_msgs.msg import CameraInfo, Imu
    from tf2_msgs.msg import TFMessage

    from wham_ros.ros.node import WhamNode

    node = WhamNode()
    try:
        assert node.session is None
        node._on_imu(Imu())
        node._on_tf(TFMessage(), False)
        node._on_camera_info(CameraInfo())
    finally:
        node.destroy_node()
