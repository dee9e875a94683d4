"""wham_node on the real middleware: a separate process, real video frames in, humans out over DDS."""
from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from conftest import ROOT, SHARED, require_file, require_module

rclpy = require_module("rclpy", "ROS 2 (rclpy)")
cv2 = require_module("cv2", "OpenCV")
require_module("mediapipe", "the embedded front end (mediapipe)")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import TransformStamped  # noqa: E402
from hri_msgs.msg import IdsList  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rcl_interfaces.srv import GetParameters  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, Imu  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402
from wham_ros.msg import Human, HumanArray, MeshTopology  # noqa: E402

VIDEO = os.path.join(SHARED, "data", "videos_people", "sports2d_demo.mp4")
SIZE = (884, 497)                    # half of the clip's 1768x994, aspect kept
FOCAL = 2520.09 / 2                  # the clip's calibration (sports2d_Calib_demo.toml), halved
CAMERA = "camera_optical"
#: odom <- camera_optical: a level camera 1.2 m up, looking along odom +x
CAMERA_IN_ODOM = ((0.0, 0.0, 1.2), (-0.5, 0.5, -0.5, 0.5))
#: the IMU reports a camera turning steadily about its optical y axis (yaw), rad/s
GYRO = (0.0, 0.25, 0.0)


def rotation(x: float, y: float, z: float, w: float) -> np.ndarray:
    """The rotation matrix of a quaternion (x, y, z, w), by the textbook formula."""
    x, y, z, w = np.array([x, y, z, w]) / math.sqrt(x * x + y * y + z * z + w * w)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def reported_rate(counters: dict[str, str]) -> np.ndarray:
    """The camera angular velocity (rad/s, optical frame) the node's diagnostics report for its last frame."""
    return np.array([float(v) for v in counters["camera angular velocity (rad/s)"].split()])


def frames(count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(require_file(VIDEO, "the sports2d video"))
    out = []
    for _ in range(count):
        ok, bgr = cap.read()
        assert ok
        out.append(cv2.cvtColor(cv2.resize(bgr, SIZE, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB))
    return out


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    from wham_ros.model.synthetic import make_test_state_dict, write_body_model

    folder = tmp_path_factory.mktemp("node_model")
    write_body_model(str(folder / "body_models"))
    torch.save({"model": make_test_state_dict(0)}, folder / "wham.pth.tar")
    params = folder / "params.yaml"
    params.write_text(
        "/**:\n  ros__parameters:\n"
        f"    checkpoint: \"{folder / 'wham.pth.tar'}\"\n    body_model_dir: \"{folder / 'body_models'}\"\n"
        "    birth_frames: 2\n    max_image_age: 30.0\n    marker_rate: 100.0\n    marker_faces: 500\n"
        "    diagnostics_period: 0.3\n    image_qos_reliability: reliable\n    image_qos_depth: 5\n"
        "    max_tracks: 4\n    imu_wait: 0.5\n    imu_qos_reliability: reliable\n    imu_max_gap: 0.5\n")
    return folder, params


def start_node(params, *extra: str) -> subprocess.Popen:
    log = open(os.path.join(os.path.dirname(params), f"node{len(extra)}.log"), "w")
    return subprocess.Popen([sys.executable, "-m", "wham_ros.ros.node", "--ros-args", "--params-file", str(params),
                             *extra], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))


def stop(client: Client, proc: subprocess.Popen) -> None:
    client.close()
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


class Client:
    """The test's side of the DDS conversation."""

    def __init__(self, name: str, image_topic: str = "image", compressed: bool = False) -> None:
        self.node = rclpy.create_node(name)
        reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.image = self.node.create_publisher(CompressedImage if compressed else Image, image_topic, reliable)
        self.info = self.node.create_publisher(CameraInfo, "camera_info", 5)
        self.imu = self.node.create_publisher(Imu, "imu", 200)
        self.tf_static = self.node.create_publisher(TFMessage, "/tf_static", QoSProfile(
            depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self.humans, self.tf, self.markers, self.diags, self.faces = [], [], [], [], []
        self.video_arrays: list[HumanArray] | None = None
        self._gyro_thread: threading.Thread | None = None
        self.node.create_subscription(HumanArray, "humans", self.humans.append, 50)
        self.node.create_subscription(TFMessage, "/tf", self.tf.append, 100)
        self.node.create_subscription(MarkerArray, "humans/markers", self.markers.append, 10)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diags.append, 10)
        self.hri = []
        self.node.create_subscription(IdsList, "/humans/bodies/tracked", self.hri.append, 50)
        self.node.create_subscription(MeshTopology, "humans/mesh_faces", self.faces.append, QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))

    def spin(self, seconds: float, until=lambda: False) -> bool:
        end = time.time() + seconds
        while time.time() < end:
            rclpy.spin_once(self.node, timeout_sec=0.02)
            if until():
                return True
        return until()

    def wait_for_node(self, timeout: float = 90.0) -> None:
        ready = self.spin(timeout, lambda: self.node.count_publishers("humans") > 0
                          and self.node.count_subscribers(self.image.topic_name) > 0)
        assert ready, "wham_node did not come up (see its log next to params.yaml)"

    def send_static_tf(self) -> None:
        tf = TransformStamped()
        tf.header.frame_id, tf.child_frame_id = "odom", CAMERA
        tf.transform.translation.x, tf.transform.translation.y, tf.transform.translation.z = CAMERA_IN_ODOM[0]
        r = tf.transform.rotation
        r.x, r.y, r.z, r.w = CAMERA_IN_ODOM[1]
        self.tf_static.publish(TFMessage(transforms=[tf]))

    def stamp(self, offset: float = 0.0):
        t = self.node.get_clock().now().nanoseconds * 1e-9 + offset
        msg = rclpy.time.Time(seconds=int(t), nanoseconds=int((t % 1) * 1e9)).to_msg()
        return msg, t

    def send_frame(self, rgb: np.ndarray, stamp_msg, encoding: str = "rgb8", info_k: float = FOCAL) -> None:
        info = CameraInfo(width=rgb.shape[1], height=rgb.shape[0])
        info.k = [info_k, 0.0, rgb.shape[1] / 2, 0.0, info_k, rgb.shape[0] / 2, 0.0, 0.0, 1.0]
        info.header.stamp, info.header.frame_id = stamp_msg, CAMERA
        self.info.publish(info)
        msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding=encoding, step=rgb.shape[1] * 3,
                    data=rgb.tobytes())
        msg.header.stamp, msg.header.frame_id = stamp_msg, CAMERA
        self.image.publish(msg)

    def start_gyro(self, rate: float = 200.0) -> None:
        """A real-time gyro stream of a steadily turning camera (``GYRO``), from a background thread."""
        def run() -> None:
            period = 1.0 / rate
            while not self._gyro_stop.is_set():
                imu = Imu()
                imu.header.stamp, _ = self.stamp()
                imu.header.frame_id = CAMERA
                imu.angular_velocity.x, imu.angular_velocity.y, imu.angular_velocity.z = GYRO
                self.imu.publish(imu)
                time.sleep(period)

        self._gyro_stop = threading.Event()
        self._gyro_thread = threading.Thread(target=run, daemon=True)
        self._gyro_thread.start()

    def stop_gyro(self) -> None:
        if self._gyro_thread is not None:
            self._gyro_stop.set()
            self._gyro_thread.join()
            self._gyro_thread = None

    def send_imu(self, stamp: float) -> None:
        """One gyro sample of the turning camera (``GYRO``), stamped ``stamp`` (s)."""
        imu = Imu()
        imu.header.stamp = rclpy.time.Time(seconds=int(stamp), nanoseconds=int((stamp % 1) * 1e9)).to_msg()
        imu.header.frame_id = CAMERA
        imu.angular_velocity.x, imu.angular_velocity.y, imu.angular_velocity.z = GYRO
        self.imu.publish(imu)

    def step(self, rgb: np.ndarray, offset: float = 0.0, timeout: float = 20.0):
        """Send one frame and wait for the node's HumanArray for it."""
        stamp_msg, t = self.stamp(offset)
        before = len(self.humans)
        self.send_frame(rgb, stamp_msg)
        got = self.spin(timeout, lambda: any(h.header.stamp == stamp_msg for h in self.humans[before:]))
        assert got, f"no HumanArray for the frame; node diagnostics: {self.counters()}"
        return next(h for h in self.humans[before:] if h.header.stamp == stamp_msg), t

    def counters(self, node: str = "/wham_node") -> dict[str, str]:
        """The latest diagnostics values of the named node."""
        self.spin(1.0)
        mine = [d.status[0] for d in self.diags if d.status[0].name == f"wham_ros: {node}"]
        return {v.key: v.value for v in mine[-1].values} if mine else {}

    def close(self) -> None:
        self.stop_gyro()
        self.node.destroy_node()


@pytest.fixture(scope="module")
def ros():
    rclpy.init()
    yield
    rclpy.shutdown()


@pytest.fixture(scope="module")
def running(ros, model_files):
    folder, params = model_files
    proc = start_node(params)
    client = Client("wham_test_client")
    try:
        client.wait_for_node()
        client.send_static_tf()
        client.start_gyro()
        yield client, folder
    finally:
        stop(client, proc)


def test_real_video_gives_people_in_the_world_frame(running):
    client, _ = running
    video = frames(24)
    arrays = []
    for rgb in video:
        arr, _ = client.step(rgb)
        arrays.append(arr)
    client.video_arrays = arrays
    tracked = [h for a in arrays for h in a.humans if h.state == Human.STATE_TRACKED]
    assert len(tracked) >= 10, [len(a.humans) for a in arrays]
    last = [h for h in arrays[-1].humans if h.state == Human.STATE_TRACKED]
    assert last and arrays[-1].header.frame_id == "odom" and arrays[-1].camera_frame_id == CAMERA
    for h in last:
        assert h.world_frame_id == "odom"
        p = h.root_world.position
        assert all(math.isfinite(v) for v in (p.x, p.y, p.z))
        assert p.x > 0.5, "people are in front of the camera, which looks along odom +x"
        assert np.isfinite(np.asarray(h.body_pose)).all() and np.abs(h.betas).max() < 5
        kp = np.asarray(h.keypoints).reshape(17, 2)
        assert (kp[:, 0] >= -50).all() and (kp[:, 0] <= SIZE[0] + 50).all()
        cov = np.asarray(h.linear_velocity_covariance).reshape(3, 3)
        assert (np.diag(cov) > 0).all()
    with_output = {str(h.id) for h in last if any(abs(v) > 0 for v in h.betas)}
    assert client.hri and set(client.hri[-1].ids) == with_output      # ROS4HRI ids of the tracked bodies
    bodies = {t.child_frame_id: t.header.frame_id for m in client.tf for t in m.transforms}
    assert any(k.startswith("body_") and v == "odom" for k, v in bodies.items())
    mesh = [m for arr in client.markers for m in arr.markers if m.type == Marker.TRIANGLE_LIST]
    assert mesh and len(mesh[-1].points) == 3 * 500 and mesh[-1].header.frame_id == "odom"
    assert mesh[-1].lifetime.nanosec > 0 or mesh[-1].lifetime.sec > 0
    assert client.faces and client.faces[0].num_vertices == 6890 and len(client.faces[0].faces) == 13776 * 3
    counters = client.counters()
    assert counters["camera_rotation"] == "gyro", counters["camera_rotation"]
    # the integrated gyro gives back the steady rate it was fed
    np.testing.assert_allclose(reported_rate(counters), GYRO, atol=1e-4)
    assert counters["camera_info"] == "ok"
    assert counters["world"] == "TF odom" and float(counters["latency p50 (ms)"]) > 0


def test_node_output_matches_the_core_pipeline(running, model_files):
    """The same frames through the in-process pipeline give the same people as the node published."""
    from wham_ros.geometry.camera_motion import angvel_from_delta
    from wham_ros.geometry.frames import Transform, quaternion_xyzw_to_rotation
    from wham_ros.geometry.rotations import axis_angle_to_matrix
    from wham_ros.model import build_network
    from wham_ros.perception.mediapipe_pose import MediaPipePose
    from wham_ros.perception.tracker import Tracker
    from wham_ros.pipeline import HumanPipeline
    from wham_ros.ros.params import BY_NAME

    client, folder = running
    node_arrays = client.video_arrays
    if node_arrays is None:
        pytest.skip("needs test_real_video_gives_people_in_the_world_frame to have run first")
    net = build_network(str(folder / "wham.pth.tar"), str(folder / "body_models"))
    pipe = HumanPipeline(net, MediaPipePose(max_people=4, tiles=BY_NAME["pose_tiles"].default),
                         Tracker(birth_frames=2, max_tracks=4))
    pose = Transform(quaternion_xyzw_to_rotation(np.array(CAMERA_IN_ODOM[1])), np.array(CAMERA_IN_ODOM[0]))
    turn = torch.as_tensor(GYRO, dtype=torch.float64)
    constant = angvel_from_delta(axis_angle_to_matrix(turn * 0.1), 0.1).numpy()     # any dt: rescaled to 1/30 s
    compared = 0
    for k, (rgb, arr) in enumerate(zip(frames(24), node_arrays)):
        stamp = arr.header.stamp.sec + 1e-9 * arr.header.stamp.nanosec
        people = pipe.process(rgb, stamp, constant if k else np.zeros(6), focal=FOCAL,
                              principal=(SIZE[0] / 2, SIZE[1] / 2), world_from_camera=pose)
        mine = {p.track_id: p for p in people if p.output is not None and p.state == 1}
        theirs = {h.id: h for h in arr.humans if h.state == Human.STATE_TRACKED}
        assert len(mine) == len(theirs)
        for p, h in zip(sorted(mine.values(), key=lambda p: p.track_id), sorted(theirs.values(), key=lambda h: h.id)):
            np.testing.assert_allclose([h.root_world.position.x, h.root_world.position.y, h.root_world.position.z],
                                       p.world.position, atol=1e-3)
            np.testing.assert_allclose(np.asarray(h.betas), p.output.betas.numpy(), atol=1e-4)
            compared += 1
    assert compared >= 10


def test_published_people_are_the_given_camera_pose_composed_with_their_camera_frame_estimate(running):
    """Independent of the pipeline's code: every tracked person's world root and joints are the static TF
    odom <- camera applied to its camera-frame ones, the root sits at the hip midpoint, and its body_<id>
    TF is that root with REP-155 axes (x forward = SMPL z, y left = SMPL x, z up = SMPL y)."""
    client, _ = running
    arrays = client.video_arrays
    if arrays is None:
        pytest.skip("needs test_real_video_gives_people_in_the_world_frame to have run first")
    R_oc = rotation(*CAMERA_IN_ODOM[1])
    t_oc = np.array(CAMERA_IN_ODOM[0])
    body_tf = {(t.header.stamp.sec, t.header.stamp.nanosec, t.child_frame_id): t.transform
               for m in client.tf for t in m.transforms}
    checked = 0
    for arr in arrays:
        for h in arr.humans:
            if h.state != Human.STATE_TRACKED or not any(h.betas):
                continue
            p_cam, p_world = (np.array([p.position.x, p.position.y, p.position.z]) for p in (h.root_camera,
                                                                                            h.root_world))
            R_cam, R_world = (rotation(q.x, q.y, q.z, q.w) for q in (h.root_camera.orientation,
                                                                      h.root_world.orientation))
            np.testing.assert_allclose(p_world, R_oc @ p_cam + t_oc, atol=1e-5)
            np.testing.assert_allclose(R_world, R_oc @ R_cam, atol=1e-5)
            joints_cam = np.asarray(h.joints_camera).reshape(31, 3)
            joints_world = np.asarray(h.joints_world).reshape(31, 3)
            np.testing.assert_allclose(joints_world, joints_cam @ R_oc.T + t_oc, atol=1e-4)
            np.testing.assert_allclose(p_cam, joints_cam[[11, 12]].mean(0), atol=1e-4)     # COCO hips
            tf = body_tf[(arr.header.stamp.sec, arr.header.stamp.nanosec, f"body_{h.id}")]
            np.testing.assert_allclose([tf.translation.x, tf.translation.y, tf.translation.z], p_world, atol=1e-6)
            q = tf.rotation
            np.testing.assert_allclose(rotation(q.x, q.y, q.z, q.w), R_world[:, [2, 0, 1]], atol=1e-5)
            checked += 1
    assert checked >= 10, checked


BAD_IMAGES = [
    ("unknown encoding", lambda m: setattr(m, "encoding", "weird42")),
    ("step mismatch", lambda m: setattr(m, "step", 100)),
    ("truncated data", lambda m: setattr(m, "data", bytes(m.data)[:1000])),
    ("zero size", lambda m: (setattr(m, "width", 0), setattr(m, "height", 0), setattr(m, "data", b""))),
]


def test_bad_input_is_counted_and_good_frames_still_work(running):
    client, _ = running
    rgb = frames(1)[0]
    before = client.counters()
    for _, spoil in BAD_IMAGES:
        stamp_msg, _ = client.stamp()
        msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", step=rgb.shape[1] * 3,
                    data=rgb.tobytes())
        msg.header.stamp, msg.header.frame_id = stamp_msg, CAMERA
        spoil(msg)
        client.image.publish(msg)
        client.spin(0.3)
    zero_k = CameraInfo(width=rgb.shape[1], height=rgb.shape[0])
    client.info.publish(zero_k)
    for cov, value in ((-1.0, 0.0), (0.0, float("nan"))):
        imu = Imu()
        imu.header.stamp, _ = client.stamp()
        imu.angular_velocity_covariance[0] = cov
        imu.angular_velocity.x = value
        client.imu.publish(imu)
    client.spin(0.5)
    old_stamp, _ = client.stamp(-100.0)
    client.send_frame(rgb, old_stamp)                     # stale
    client.spin(0.5)
    future, _ = client.stamp(+100.0)
    client.send_frame(rgb, future)                        # far in the future
    client.spin(0.5)
    _, t_last = client.step(rgb)
    earlier = rclpy.time.Time(seconds=int(t_last - 0.1), nanoseconds=int(((t_last - 0.1) % 1) * 1e9)).to_msg()
    client.send_frame(rgb, earlier)                       # out of order (but no time jump)
    client.spin(1.0)
    after = client.counters()
    for key in ("bad_images", "bad_imu", "bad_camera_info", "dropped_stale", "dropped_future_stamp",
                "dropped_out_of_order"):
        assert int(after.get(key, 0)) > int(before.get(key, 0)), (key, after)
    assert int(after["bad_images"]) - int(before.get("bad_images", 0)) == len(BAD_IMAGES)
    arr, _ = client.step(rgb)
    assert arr.humans, "a good frame after the bad ones still gives people"


def test_time_jump_back_resets_tracks(running):
    client, _ = running
    video = frames(6)
    arr, _ = client.step(video[0])
    ids_before = {h.id for h in arr.humans}
    jumps_before = int(client.counters().get("time_jumps", 0))
    arr, _ = client.step(video[1], offset=-10.0)
    assert int(client.counters()["time_jumps"]) == jumps_before + 1
    for rgb in video[2:]:
        arr, _ = client.step(rgb, offset=-10.0)
    assert arr.humans and not ids_before & {h.id for h in arr.humans}, "tracks restart with new ids"


def test_a_time_jump_clears_the_gyro_buffer(running):
    """A bag looping back: the IMU's new, earlier stamps are taken at once (none refused as out of order, as
    they would be against the samples buffered before the jump) and the gyro rotates the next frame."""
    client, _ = running
    video = frames(3)
    client.stop_gyro()                  # the IMU jumps with the images, not after them
    try:
        client.step(video[0])           # the buffer now holds samples up to about now
        before = client.counters()
        _, t_jump = client.step(video[1], offset=-20.0)
        stamp, end = t_jump - 0.05, time.time() + 0.4
        while time.time() < end:        # the new timeline's samples from just before the jump frame on
            while stamp < client.stamp(-20.0)[1]:
                client.send_imu(stamp)
                stamp += 0.005
            client.spin(0.01)
        client.step(video[2], offset=-20.0)
        after = client.counters()
        assert int(after["time_jumps"]) == int(before.get("time_jumps", 0)) + 1
        assert int(after.get("bad_imu", 0)) == int(before.get("bad_imu", 0)), after.get("last_imu_error")
        assert after["camera_rotation"] == "gyro", after["camera_rotation"]
        np.testing.assert_allclose(reported_rate(after), GYRO, atol=1e-4)
    finally:
        client.start_gyro()


def test_a_flood_of_images_is_dropped_not_queued(running):
    client, _ = running
    rgb = frames(1)[0]
    before = int(client.counters().get("dropped_busy", 0))
    for _ in range(25):
        stamp_msg, _ = client.stamp()
        client.send_frame(rgb, stamp_msg)
        client.spin(0.005)
    client.spin(3.0)
    assert int(client.counters().get("dropped_busy", 0)) > before
    arr, _ = client.step(rgb)                           # and it is still responsive
    assert arr is not None


def test_parameters_come_from_the_yaml_file(running):
    client, _ = running
    cli = client.node.create_client(GetParameters, "/wham_node/get_parameters")
    assert cli.wait_for_service(timeout_sec=10)
    future = cli.call_async(GetParameters.Request(names=["marker_faces", "birth_frames", "world_frame"]))
    assert client.spin(10, future.done)
    values = future.result().values
    assert (values[0].integer_value, values[1].integer_value, values[2].string_value) == (500, 2, "odom")


def test_lifecycle_transitions_and_compressed_input(ros, model_files):
    """autostart off: configure, activate, feed JPEGs (one undecodable), deactivate, cleanup."""
    _, params = model_files
    proc = start_node(params, "-p", "autostart:=false", "-p", "use_compressed:=true", "-r", "__ns:=/lc")
    client = Client("wham_lc_client", image_topic="/lc/image/compressed", compressed=True)
    try:
        get = client.node.create_client(GetState, "/lc/wham_node/get_state")
        change = client.node.create_client(ChangeState, "/lc/wham_node/change_state")
        assert get.wait_for_service(timeout_sec=90) and change.wait_for_service(timeout_sec=10)

        def state() -> str:
            f = get.call_async(GetState.Request())
            assert client.spin(20, f.done)
            return f.result().current_state.label

        def transition(tid: int) -> bool:
            req = ChangeState.Request()
            req.transition.id = tid
            f = change.call_async(req)
            assert client.spin(120, f.done)
            return f.result().success

        assert state() == "unconfigured"
        assert transition(1) and state() == "inactive"          # configure: loads the models
        assert transition(3) and state() == "active"            # activate: subscribes
        humans = []
        client.node.create_subscription(HumanArray, "/lc/humans", humans.append, 10)
        assert client.spin(30, lambda: client.node.count_subscribers("/lc/image/compressed") > 0)
        bad = CompressedImage(format="jpeg", data=b"\xff\xd8 not a jpeg at all")
        bad.header.stamp, _ = client.stamp()
        client.image.publish(bad)
        for rgb in frames(10):
            ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            assert ok
            msg = CompressedImage(format="jpeg", data=jpeg.tobytes())
            msg.header.stamp, _ = client.stamp()
            msg.header.frame_id = "lc_camera_optical"          # a camera that TF does not know
            client.image.publish(msg)
            before = len(humans)
            assert client.spin(20, lambda b=before: len(humans) > b)
        people = [h for a in humans for h in a.humans if h.state == Human.STATE_TRACKED and any(h.betas)]
        assert people, "no tracked person in the JPEG frames"
        for h in people:                                        # no TF for this camera: each person's own world
            assert h.world_frame_id == f"wham_world_{h.id}"
        assert all(a.header.frame_id == "" for a in humans)
        lc = client.counters("/lc/wham_node")
        assert lc["bad_images"] == "1" and "per-person WHAM world" in lc["world"]   # the undecodable JPEG
        assert transition(4) and state() == "inactive"          # deactivate
        assert transition(2) and state() == "unconfigured"      # cleanup
    finally:
        stop(client, proc)


def test_visual_camera_rotation_on_request(running):
    """camera_rotation=visual: a camera panning over the scene gives the image-based rotation; a bad
    value for the parameter is refused."""
    from rcl_interfaces.msg import Parameter as ParameterMsg
    from rcl_interfaces.msg import ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    client, _ = running
    cli = client.node.create_client(SetParameters, "/wham_node/set_parameters")
    assert cli.wait_for_service(timeout_sec=10)

    def set_rotation(value: str) -> bool:
        value_msg = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
        future = cli.call_async(SetParameters.Request(parameters=[ParameterMsg(name="camera_rotation",
                                                                               value=value_msg)]))
        assert client.spin(10, future.done)
        return future.result().results[0].successful

    assert not set_rotation("compass")
    assert set_rotation("visual")
    try:
        wide = frames(1)[0]
        wide = cv2.resize(wide, (2 * SIZE[0], SIZE[1]))
        before = int(client.counters().get("rotation_visual", 0))
        stamps = []
        for k in range(6):           # the view slides 8 px left per frame: the camera pans right (about +y)
            stamps.append(client.step(np.ascontiguousarray(wide[:, 8 * k:8 * k + SIZE[0]]), offset=0.0)[1])
        counters = client.counters()
        assert counters["camera_rotation"].startswith("visual ("), counters["camera_rotation"]
        assert int(counters["rotation_visual"]) >= before + 4
        # 8 px at the focal length in the time between the last two frames, about the optical y axis
        rate, expected = reported_rate(counters), math.atan(8 / FOCAL) / (stamps[-1] - stamps[-2])
        assert rate[1] == pytest.approx(expected, rel=0.35), (rate, expected)
        assert abs(rate[0]) < 0.2 * rate[1] and abs(rate[2]) < 0.2 * rate[1], rate
        assert set_rotation("static")
        client.step(frames(1)[0])
        client.step(frames(1)[0])
        assert client.counters()["camera_rotation"] == "static (requested)"
    finally:
        assert set_rotation("auto")
