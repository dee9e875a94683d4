"""The wham_ros lifecycle node: camera + IMU in; humans, meshes, TF and diagnostics out.

configure: loads the body model, the WHAM checkpoint and the front end, creates publishers.
activate: subscribes and starts the worker. Callbacks never block: the newest image
waits in a one-slot mailbox for the worker, older ones are dropped and counted.
"""
from __future__ import annotations

import collections
import signal
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

try:
    from rclpy.experimental import EventsExecutor
except ImportError:          # Humble's rclpy has none
    EventsExecutor = None
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, Imu
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from wham_ros.errors import WhamError
from wham_ros.geometry.camera_motion import GyroIntegrator, angvel_from_delta, rate_from_angvel
from wham_ros.geometry.tf_buffer import TransformBuffer, TransformLookupError
from wham_ros.geometry.visual_rotation import DISTORTION_MODELS, VisualRotationEstimator
from wham_ros.model import build_network
from wham_ros.msg import HumanArray, MeshTopology
from wham_ros.perception.base import PoseEstimator
from wham_ros.perception.hmr2 import HMR2Estimator
from wham_ros.perception.tracker import Tracker
from wham_ros.pipeline import TRAIN_FPS, HumanPipeline
from wham_ros.ros import messages as M
from wham_ros.ros.convert import (
    CameraModel,
    ConversionError,
    camera_info_to_model,
    compressed_to_rgb,
    image_to_rgb,
    imu_to_sample,
    stamp_to_sec,
)
from wham_ros.ros.params import BY_NAME, PARAMS
from wham_ros.stream.inputs import official_focal

TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
TF_STATIC_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL, history=HistoryPolicy.KEEP_LAST)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def make_estimator(param: Callable[[str], object]) -> PoseEstimator:
    """The front end the parameters ask for (``param(name)`` reads one)."""
    kind = param("front_end")
    if kind == "embedded":
        from wham_ros.perception.mediapipe_pose import MediaPipePose

        return MediaPipePose(max_people=int(param("max_tracks")), tiles=int(param("pose_tiles")))
    if kind == "official":
        if not param("yolo_checkpoint") or not param("vitpose_checkpoint"):
            raise WhamError("front_end 'official' needs the parameters 'yolo_checkpoint' and 'vitpose_checkpoint'")
        from wham_ros.perception.official import OfficialFrontEnd

        return OfficialFrontEnd.from_checkpoints(
            param("yolo_checkpoint"), param("vitpose_checkpoint"), device=param("device"),
            detector_conf=float(param("detector_confidence")), flip_test=bool(param("vitpose_flip_test")),
            max_people=int(param("max_tracks")))
    raise WhamError(f"front_end {kind!r} is unknown (use 'embedded' or 'official')")


def make_feature_extractor(param: Callable[[str], object]) -> HMR2Estimator | None:
    """HMR2.0 from ``hmr2_checkpoint`` (any front end), or None: WHAM then runs without image features."""
    path = param("hmr2_checkpoint")
    return HMR2Estimator.from_checkpoint(path, param("device")) if path else None


#: seconds of history behind input rates and the recent-event checks of the diagnostics
WINDOW = 5.0
#: an input stream silent this long (s) after it was seen has stopped
STREAM_TIMEOUT = 2.0


def stale_cause(age: float, max_age: float) -> str:
    """Why images arrive older than ``max_image_age``, in words a user can act on."""
    return (f"images {age:.1f} s older than max_image_age ({max_age:g} s): clock mismatch? A bag replayed without "
            f"/clock needs use_sim_time; a camera stamping with another clock needs it synchronised")


class Counters:
    """Thread-safe event counters, with each event's time kept for ``window`` seconds, and a latency window.

    ``counts`` are totals since start; :meth:`recent` and :meth:`rate` look at the last ``window``
    seconds only, so a stream that stops decays to 0 Hz.
    """

    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        self._lock = threading.Lock()
        self.counts: collections.Counter = collections.Counter()
        self._latency: collections.deque = collections.deque(maxlen=300)
        self._events: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._first: dict[str, float] = {}
        self._start = time.monotonic()

    def _note(self, key: str, now: float) -> None:
        events = self._events[key]
        events.append(now)
        self._first.setdefault(key, now)
        while events[0] < now - self.window:
            events.popleft()

    def inc(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1
            self._note(key, time.monotonic())

    def arrived(self, key: str) -> None:
        """An input message arrived (timed, not counted)."""
        with self._lock:
            self._note(f"arrival:{key}", time.monotonic())

    def recent(self, key: str) -> int:
        """Events of ``key`` in the last ``window`` seconds."""
        now = time.monotonic()
        with self._lock:
            events = self._events.get(key)
            if not events:
                return 0
            while events and events[0] < now - self.window:
                events.popleft()
            return len(events)

    def record_latency(self, seconds: float) -> None:
        with self._lock:
            self._latency.append(seconds)

    def latencies(self) -> list[float]:
        """The recent image-stamp-to-result latencies, sorted."""
        with self._lock:
            return sorted(self._latency)

    def seconds_since(self, key: str) -> float:
        """Since the last arrival of input ``key`` (inf if none ever came)."""
        with self._lock:
            a = self._events.get(f"arrival:{key}")
            return time.monotonic() - a[-1] if a else float("inf")

    def ever(self, key: str) -> bool:
        """Whether input ``key`` ever arrived."""
        with self._lock:
            return f"arrival:{key}" in self._first

    def rate(self, key: str, event: bool = False) -> float:
        """Arrivals of input ``key`` (or events, with ``event``) per second over the last ``window`` seconds."""
        name = key if event else f"arrival:{key}"
        now = time.monotonic()
        with self._lock:
            first = self._first.get(name)
        if first is None:
            return 0.0
        count, span = self.recent(name), now - first
        if span >= self.window:
            return count / self.window
        return max(count - 1, 0) / span if span > 0 else 0.0    # a young stream: intervals since its first event


class WhamNode(LifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("wham_node", **kwargs)
        for p in PARAMS:
            desc = ParameterDescriptor(description=p.description + (f" (one of {', '.join(p.choices)})"
                                                                    if p.choices else ""))
            if p.low is not None and isinstance(p.default, int) and not isinstance(p.default, bool):
                desc.integer_range = [IntegerRange(from_value=int(p.low), to_value=int(p.high), step=1)]
            elif p.low is not None:
                desc.floating_point_range = [FloatingPointRange(from_value=float(p.low), to_value=float(p.high))]
            self.declare_parameter(p.name, p.default, desc)
        self.declare_parameter("autostart", True, ParameterDescriptor(
            description="configure and activate at start-up (False: wait for lifecycle transitions)"))
        self.add_on_set_parameters_callback(self._check_choices)
        self.stats = Counters()
        self._mailbox_lock = threading.Lock()
        self._mailbox = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._camera = None
        self._camera_error = ""
        self._visual: VisualRotationEstimator | None = None
        self._visual_key: tuple = ()
        self._last_boxes = np.zeros((0, 4))
        self._gyro = GyroIntegrator()
        self._imu_frame = ""
        self._tf = TransformBuffer()
        self._last_stamp: float | None = None
        self._last_marker = 0.0
        self._stale_age = 0.0
        self._last_angvel = np.zeros(6)
        self._status = {}
        self.pipeline: HumanPipeline | None = None
        self._subs, self._pubs = [], {}

    # ------------------------------------------------------------------ parameters
    def p(self, name: str):
        return self.get_parameter(name).value

    @staticmethod
    def _check_choices(params: list[Parameter]) -> SetParametersResult:
        """Refuse a value outside a parameter's choices (ranges are enforced by the descriptors)."""
        for param in params:
            spec = BY_NAME.get(param.name)
            if spec is not None and spec.choices and param.value not in spec.choices:
                return SetParametersResult(successful=False, reason=f"{param.name}={param.value!r} must be one of "
                                                                    f"{', '.join(spec.choices)}")
        return SetParametersResult(successful=True)

    def _qos(self, stream: str) -> QoSProfile:
        """Sensor-data style QoS whose reliability and depth come from ``<stream>_qos_*`` parameters."""
        reliable = self.p(f"{stream}_qos_reliability") == "reliable"
        return QoSProfile(depth=int(self.p(f"{stream}_qos_depth")), history=HistoryPolicy.KEEP_LAST,
                          reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT)

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            checked = self._check_choices([self.get_parameter(p.name) for p in PARAMS])
            if not checked.successful:
                raise WhamError(f"parameter {checked.reason}")
            if not self.p("checkpoint"):
                raise WhamError("parameter 'checkpoint' is required")
            torch.set_num_threads(int(self.p("torch_threads")))
            net = build_network(self.p("checkpoint"), self.p("body_model_dir"), device=self.p("device"),
                                precision=self.p("precision"))
            estimator = make_estimator(self.p)
            warm_up = getattr(estimator, "warm_up", None)
            if callable(warm_up):      # set-up costs (MediaPipe: 1-3 s) belong here, not on the first image
                warm_up()
            features = make_feature_extractor(self.p)
        except Exception as exc:  # rclpy would turn anything else into a silent ERROR transition
            self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.FAILURE
        missed = int(self.p("max_missed_frames"))
        tracker = Tracker(birth_frames=int(self.p("birth_frames")), max_missed=missed,
                          max_lost_time=missed / TRAIN_FPS, max_tracks=int(self.p("max_tracks")))
        self.pipeline = HumanPipeline(net, estimator, tracker, box_window=int(self.p("box_window")),
                                      use_camera_intrinsics=bool(self.p("use_camera_info_intrinsics")),
                                      flip_eval=bool(self.p("flip_eval")),
                                      smooth_keypoints=bool(self.p("keypoint_smoothing")), features=features)
        faces = net.smpl.faces_tensor.cpu().numpy()
        self._faces = M.decimated_faces(faces, int(self.p("marker_faces")))
        self._gyro = GyroIntegrator(max_gap=float(self.p("imu_max_gap")))
        self._tf = TransformBuffer(tolerance=float(self.p("tf_tolerance")))
        self._pubs = {
            "humans": self.create_lifecycle_publisher(HumanArray, "humans", 10),
            "markers": self.create_lifecycle_publisher(MarkerArray, "humans/markers", 2),
            "mesh": self.create_lifecycle_publisher(MeshTopology, "humans/mesh_faces", LATCHED),
            "tf": self.create_lifecycle_publisher(TFMessage, "/tf", TF_QOS),
            "diagnostics": self.create_publisher(DiagnosticArray, "/diagnostics", 10),
        }
        try:   # ROS4HRI: the ids of the tracked bodies, whose TF frames are body_<id>
            from hri_msgs.msg import IdsList

            self._pubs["hri"] = self.create_lifecycle_publisher(IdsList, "/humans/bodies/tracked", 10)
        except ImportError:
            self.get_logger().info("hri_msgs not installed: /humans/bodies/tracked is not published")
        self._mesh_msg = MeshTopology(num_vertices=int(net.smpl.num_vertices),
                                      faces=faces.reshape(-1).astype(np.uint32).tolist())
        self._diag_timer = self.create_timer(float(self.p("diagnostics_period")), self._publish_diagnostics)
        self.get_logger().info(f"configured: {estimator.name}, model on {self.p('device')} ({self.p('precision')})")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        image_qos = self._qos("image")
        imu_qos = self._qos("imu")
        if self.p("use_compressed"):
            self._subs.append(self.create_subscription(CompressedImage, "image/compressed", self._on_image, image_qos))
        else:
            self._subs.append(self.create_subscription(Image, "image", self._on_image, image_qos))
        self._subs += [
            self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, qos_profile_sensor_data),
            self.create_subscription(Imu, "imu", self._on_imu, imu_qos),
            self.create_subscription(TFMessage, "/tf", lambda m: self._on_tf(m, False), TF_QOS),
            self.create_subscription(TFMessage, "/tf_static", lambda m: self._on_tf(m, True), TF_STATIC_QOS),
        ]
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="wham_worker", daemon=True)
        self._worker.start()
        result = super().on_activate(state)
        self._pubs["mesh"].publish(self._mesh_msg)
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _stop_worker(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            # a frame in progress finishes first (seconds with the official front end on a CPU): releasing
            # the pipeline or starting a second worker under it would break it
            while self._worker.is_alive():
                self._worker.join(timeout=5)
                if self._worker.is_alive():
                    self.get_logger().warning("waiting for the frame in progress before stopping")
            self._worker = None

    def _release(self) -> None:
        for pub in self._pubs.values():
            self.destroy_publisher(pub)
        self._pubs = {}
        if getattr(self, "_diag_timer", None) is not None:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = None
        if self.pipeline is not None:
            self.pipeline.estimator.reset()
        self.pipeline = None

    # ------------------------------------------------------------------ callbacks (never block)
    def _now(self) -> float | None:
        """The node clock (s); None while a simulated clock has not started (no /clock message yet)."""
        ns = self.get_clock().now().nanoseconds
        return ns * 1e-9 if ns > 0 else None

    def _ahead(self, stamp: float, now: float | None) -> float | None:
        """How far (s) ``stamp`` is beyond ``future_tolerance`` ahead of ``now`` (None when it is not)."""
        if now is None or stamp - now <= float(self.p("future_tolerance")):
            return None
        return stamp - now

    def _on_image(self, msg) -> None:
        self.stats.arrived("image")
        with self._mailbox_lock:
            if self._mailbox is not None:
                self.stats.inc("dropped_busy")
            self._mailbox = msg
        self._wake.set()

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.stats.arrived("camera_info")
        try:
            self._camera = camera_info_to_model(msg, int(self.p("max_image_pixels")))
            self._camera_error = ""
        except ConversionError as exc:
            self.stats.inc("bad_camera_info")
            self._camera, self._camera_error = None, str(exc)
            self.get_logger().warning(f"CameraInfo rejected: {exc}", throttle_duration_sec=10.0)

    def _on_imu(self, msg: Imu) -> None:
        self.stats.arrived("imu")
        try:
            sample = imu_to_sample(msg)
            ahead = self._ahead(sample.stamp, self._now())
            if ahead is not None:
                self.stats.inc("imu_future_stamp")
                self._status["last_imu_future_stamp"] = f"{ahead:.3g} s ahead of the node clock"
                return
            self._gyro.add(sample.stamp, sample.angular_velocity)
            self._imu_frame = sample.frame_id
        except (ConversionError, ValueError) as exc:
            self.stats.inc("bad_imu")
            self._status["last_imu_error"] = str(exc)

    def _on_tf(self, msg: TFMessage, static: bool) -> None:
        now = None if static else self._now()          # static transforms hold at every time
        for tf in msg.transforms:
            t, r = tf.transform.translation, tf.transform.rotation
            stamp = stamp_to_sec(tf.header.stamp)
            ahead = self._ahead(stamp, now)
            if ahead is not None:
                self.stats.inc("tf_future_stamp")
                self._status["last_tf_future_stamp"] = (f"{tf.header.frame_id} -> {tf.child_frame_id} "
                                                        f"{ahead:.3g} s ahead of the node clock")
                continue
            try:
                self._tf.set_transform(tf.header.frame_id, tf.child_frame_id, stamp, (t.x, t.y, t.z),
                                       (r.x, r.y, r.z, r.w), static=static)
            except ValueError as exc:
                self.stats.inc("bad_tf")
                self._status["last_tf_error"] = str(exc)

    # ------------------------------------------------------------------ worker
    def _work(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=0.1)
            self._wake.clear()
            with self._mailbox_lock:
                msg, self._mailbox = self._mailbox, None
            if msg is None or self.pipeline is None:
                continue
            try:
                self._process(msg)
            except Exception as exc:  # the node must keep running whatever one frame does
                self.stats.inc("frame_errors")
                self._status["last_frame_error"] = f"{type(exc).__name__}: {exc}"
                self.get_logger().error(f"frame failed: {type(exc).__name__}: {exc}")

    def _camera_rotation(self, camera_frame: str, prev: float | None, stamp: float, rgb: np.ndarray,
                         cam: CameraModel | None) -> np.ndarray:
        """cam_angvel for (prev, stamp) from the sources ``camera_rotation`` allows, in priority order:
        gyro, TF world->camera orientations, the visual estimate; zeros (a static camera) when none has it."""
        mode = self.p("camera_rotation")
        notes = []
        if prev is not None and mode in ("auto", "gyro"):
            angvel, note = self._gyro_rotation(camera_frame, prev, stamp)
            if angvel is not None:
                return self._rotation_from("gyro", angvel)
            notes.append(f"gyro: {note}")
        if prev is not None and mode in ("auto", "tf"):
            try:
                a = self._tf.lookup(self.p("world_frame"), camera_frame, prev).R
                b = self._tf.lookup(self.p("world_frame"), camera_frame, stamp).R
            except TransformLookupError as exc:
                notes.append(f"TF: {exc}")
            else:
                return self._rotation_from("TF", angvel_from_delta(torch.as_tensor(a.T @ b), stamp - prev).numpy(),
                                           notes)
        if mode in ("auto", "visual"):
            angvel, note = self._visual_rotation(rgb, stamp, cam)
            if angvel is not None:
                return self._rotation_from("visual", angvel, notes)
            notes.append(f"visual: {note}")
        if prev is None:
            self._status["camera_rotation"] = "first frame"
        elif mode == "static":
            self._status["camera_rotation"] = "static (requested)"
            self.stats.inc("rotation_static")
        else:
            self._status["camera_rotation"] = "static camera assumed" + (f" ({'; '.join(notes)})" if notes else "")
            self.stats.inc("rotation_static")
        return np.zeros(6)

    def _rotation_from(self, source: str, angvel: np.ndarray, notes: list[str] | None = None) -> np.ndarray:
        if source != "visual" and self._visual is not None:
            self._visual.reset()          # its previous frame would be stale when it is next needed
        if source == "visual":
            notes = [f"{self._visual.last_inliers} of {self._visual.last_tracks} tracks fit", *(notes or [])]
        self._status["camera_rotation"] = source + (f" ({'; '.join(notes)})" if notes else "")
        self.stats.inc(f"rotation_{source.lower()}")
        return angvel

    def _gyro_rotation(self, camera_frame: str, prev: float, stamp: float) -> tuple[np.ndarray | None, str]:
        if self.stats.seconds_since("imu") < 1.0 and not self._gyro.covers(prev, stamp):
            # a live IMU stream that has not reached this image yet: give it a moment
            deadline = time.monotonic() + float(self.p("imu_wait"))
            while time.monotonic() < deadline and not self._gyro.covers(prev, stamp):
                time.sleep(0.002)
        if not len(self._gyro):
            return None, "no IMU samples"
        if not self._gyro.covers(prev, stamp):
            return None, self._gyro.coverage_report(prev, stamp)
        try:
            R_ci = self._tf.lookup(camera_frame, self._imu_frame, stamp).R
        except TransformLookupError as exc:
            return None, f"IMU extrinsic missing ({exc})"
        return self._gyro.cam_angvel(prev, stamp, torch.float64, R_cam_imu=R_ci).numpy(), ""

    def _visual_rotation(self, rgb: np.ndarray, stamp: float, cam: CameraModel | None
                         ) -> tuple[np.ndarray | None, str]:
        h, w = rgb.shape[:2]
        if cam is not None:
            K = np.array([[cam.fx, 0.0, cam.cx], [0.0, cam.fy, cam.cy], [0.0, 0.0, 1.0]])
            model = cam.distortion_model if cam.distortion_model in DISTORTION_MODELS else "plumb_bob"
            dist = np.array(cam.distortion) if model == cam.distortion_model and cam.distortion else None
        else:   # the official fallback camera; lens distortion unknown
            f = official_focal(w, h)
            K, model, dist = np.array([[f, 0.0, w / 2], [0.0, f, h / 2], [0.0, 0.0, 1.0]]), "plumb_bob", None
        max_gap = float(self.p("visual_rotation_max_gap"))
        key = (w, h, K.tobytes(), model, None if dist is None else dist.tobytes(), max_gap)
        try:
            if self._visual is None or self._visual_key != key:
                self._visual = VisualRotationEstimator(K, dist, distortion_model=model, max_dt=max_gap)
                self._visual_key = key
            delta = self._visual(rgb, self._last_boxes, stamp)
        except ValueError as exc:
            self._visual = None
            return None, str(exc)
        if delta is None:
            return None, self._visual.last_status
        return angvel_from_delta(torch.as_tensor(delta), self._visual.last_dt).numpy(), ""

    def _process(self, msg) -> None:
        stamp = stamp_to_sec(msg.header.stamp)
        now = self._now()
        if now is not None:
            age = now - stamp
            self._status["image age at processing (ms)"] = f"{1e3 * age:.1f}"
            max_age = float(self.p("max_image_age"))
            if max_age > 0 and age > max_age:
                self.stats.inc("dropped_stale")
                self._stale_age = age
                self.get_logger().warning(f"image dropped: {stale_cause(age, max_age)}", throttle_duration_sec=10.0)
                return
            ahead = self._ahead(stamp, now)
            if ahead is not None:
                self.stats.inc("dropped_future_stamp")
                self._status["last_image_future_stamp"] = f"{ahead:.3g} s ahead of the node clock"
                return
        last = self._last_stamp
        if last is not None and stamp < last - float(self.p("time_jump_threshold")):
            self.get_logger().warning(f"time jumped back {last - stamp:.2f} s: resetting all tracks")
            self.stats.inc("time_jumps")
            self.pipeline.reset()
            self._gyro.clear()
            if self._visual is not None:
                self._visual.reset()
            self._tf.clear()
            last = None
        elif last is not None and stamp <= last:
            self.stats.inc("dropped_out_of_order")
            return
        try:
            max_pixels = int(self.p("max_image_pixels"))
            rgb = compressed_to_rgb(msg, max_pixels) if isinstance(msg, CompressedImage) \
                else image_to_rgb(msg, max_pixels)
        except ConversionError as exc:
            self.stats.inc("bad_images")
            self._status["last_image_error"] = str(exc)
            return
        camera_frame = self.p("camera_frame") or msg.header.frame_id
        h, w = rgb.shape[:2]
        cam = self._camera                  # read once: the CameraInfo callback may replace it meanwhile
        if cam is not None and (cam.width, cam.height) != (w, h):
            cam = None
        if cam is not None:
            since = self.stats.seconds_since("camera_info")
            self._status["camera_info"] = "ok" if since < STREAM_TIMEOUT else \
                f"stale: none for {since:.1f} s, the last one's intrinsics are used"
        else:
            self._status["camera_info"] = (f"rejected ({self._camera_error}): official focal" if self._camera_error
                                           else "missing or wrong size: official focal")
        world_from_camera = None
        try:
            world_from_camera = self._tf.lookup(self.p("world_frame"), camera_frame, stamp)
            self._status["world"] = f"TF {self.p('world_frame')}"
        except TransformLookupError as exc:
            self._status["world"] = f"per-person WHAM world (no TF: {exc})"
        cam_angvel = self._camera_rotation(camera_frame, last, stamp, rgb, cam)
        self._last_angvel = cam_angvel
        people = self.pipeline.process(rgb, stamp, cam_angvel, focal=cam.focal if cam else None,
                                       principal=(cam.cx, cam.cy) if cam else None,
                                       world_from_camera=world_from_camera)
        for track_id, why in self.pipeline.last_skipped.items():
            self.stats.inc("wham_steps_skipped")
            self._status["last_wham_skip"] = f"track {track_id}: {why}"
            self.get_logger().warning(f"WHAM step skipped for track {track_id}: {why}", throttle_duration_sec=5.0)
        self._last_stamp = stamp
        self._last_boxes = np.array([p.detection.bbox for p in people if p.time_since_seen == 0]).reshape(-1, 4)
        self._publish(people, msg.header.stamp, camera_frame, world_from_camera is not None)
        self.stats.inc("frames")
        self.stats.record_latency(self.get_clock().now().nanoseconds * 1e-9 - stamp)

    # ------------------------------------------------------------------ outputs
    def _publish(self, people, stamp, camera_frame: str, anchored: bool) -> None:
        world = self.p("world_frame")
        header = Header(stamp=stamp, frame_id=world if anchored else "")
        body_model = self.pipeline.net.smpl
        humans, transforms, markers = [], [], []
        rate, mesh, tf = self.p("marker_rate"), self.p("publish_mesh"), self.p("publish_tf")
        want_markers = (rate > 0 and self._pubs["markers"].get_subscription_count() > 0
                        and time.monotonic() - self._last_marker >= 1.0 / rate)
        for person in people:
            verts = M.world_vertices(body_model, person) if person.output is not None and (mesh or want_markers) \
                else None
            humans.append(M.human_message(person, world, anchored, verts if mesh else None))
            if person.output is None:
                continue
            frame = M.person_world_frame(person, world, anchored)
            if tf:
                transforms.append(M.body_transform(person, header, frame))
            if want_markers:
                markers += M.person_markers(person, header, frame, verts, self._faces, lifetime=0.5)
        self._pubs["humans"].publish(M.human_array(header, camera_frame, humans))
        if "hri" in self._pubs:
            ids = [str(p.track_id) for p in people if p.output is not None and int(p.state) == 1]
            self._pubs["hri"].publish(self._pubs["hri"].msg_type(header=header, ids=ids))
        if transforms:
            self._pubs["tf"].publish(TFMessage(transforms=transforms))
        if want_markers:
            self._last_marker = time.monotonic()
            self._pubs["markers"].publish(M.marker_array(markers))

    def _problems(self) -> list[tuple[int, str]]:
        """(level, cause) of everything wrong now: input streams over the last ``WINDOW`` s and the worker's state."""
        s, status, problems = self.stats, self._status, []
        for key in ("camera_info", "world", "camera_rotation"):
            value = str(status.get(key, "ok"))
            if not value.startswith(("ok", "TF", "gyro", "visual", "first", "static (requested)")):
                problems.append((M.LEVEL_WARN, f"{key}: {value}"))
        images, frames = s.recent("arrival:image"), s.recent("frames")
        errors = s.recent("frame_errors")
        if errors:
            problems.append((M.LEVEL_WARN if frames else M.LEVEL_ERROR,
                             f"{errors} frames failed, {frames} processed: {status.get('last_frame_error', '')}"))
        stale = s.recent("dropped_stale")
        if stale:
            level = M.LEVEL_ERROR if not frames else M.LEVEL_WARN
            problems.append((level, f"{stale} of {images} images dropped as stale in {WINDOW:g} s: "
                                    + stale_cause(self._stale_age, float(self.p("max_image_age")))))
        busy = s.recent("dropped_busy")
        if images >= 5 and busy > 0.5 * images:
            problems.append((M.LEVEL_WARN, f"{100 * busy / images:.0f} % of images dropped busy: the node processes "
                                           f"{s.rate('frames', event=True):.1f} of {s.rate('image'):.1f} images/s"))
        image_rate, info_rate = s.rate("image"), s.rate("camera_info")
        if info_rate >= 5.0 and image_rate < 0.7 * info_rate:
            problems.append((M.LEVEL_WARN, f"images arrive at {image_rate:.1f} Hz, CameraInfo at {info_rate:.1f} Hz: "
                                           f"images are lost in transport (large images over UDP: on one host set "
                                           f"FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA for the camera and this node, or "
                                           f"use_compressed)"))
        for event, what in (("dropped_future_stamp", "images"), ("imu_future_stamp", "IMU samples"),
                            ("tf_future_stamp", "TF transforms")):
            if s.recent(event):
                problems.append((M.LEVEL_WARN, f"{s.recent(event)} {what} stamped more than future_tolerance "
                                               f"({self.p('future_tolerance'):g} s) ahead of the node clock"))
        # a rejected CameraInfo is already in the camera_info status above
        for event, what, why in (("bad_images", "images", "last_image_error"), ("bad_imu", "IMU samples",
                                 "last_imu_error"), ("bad_tf", "TF transforms", "last_tf_error")):
            if s.recent(event):
                problems.append((M.LEVEL_WARN, f"{s.recent(event)} {what} rejected ({status.get(why, '')})"))
        if s.recent("wham_steps_skipped"):
            problems.append((M.LEVEL_WARN, f"{s.recent('wham_steps_skipped')} WHAM steps skipped "
                                           f"({status.get('last_wham_skip', '')})"))
        since = s.seconds_since("imu")             # a stale CameraInfo is in the camera_info status above
        if s.ever("imu") and since > STREAM_TIMEOUT and images:
            problems.append((M.LEVEL_WARN, f"imu: none for {since:.1f} s"))
        return problems

    def _publish_diagnostics(self) -> None:
        s = self.stats
        lat = s.latencies()
        pct = (lambda q: f"{1e3 * lat[min(len(lat) - 1, int(q * len(lat)))]:.1f}") if lat else (lambda q: "n/a")
        values = {
            "image rate (Hz)": f"{s.rate('image'):.1f}", "imu rate (Hz)": f"{s.rate('imu'):.1f}",
            "camera_info rate (Hz)": f"{s.rate('camera_info'):.1f}",
            "processed rate (Hz)": f"{s.rate('frames', event=True):.1f}",
            "latency p50 (ms)": pct(0.5), "latency p95 (ms)": pct(0.95),
            "tracks": self.pipeline.active_tracks if self.pipeline else 0,
            "model device": f"{self.p('device')} ({self.p('precision')})",
            "camera angular velocity (rad/s)": " ".join(f"{w:.5f}" for w in rate_from_angvel(self._last_angvel)),
            **{k: v for k, v in sorted(s.counts.items())}, **self._status,
        }
        problems = self._problems()
        level = max((lvl for lvl, _ in problems), default=M.LEVEL_OK)
        message = "; ".join(cause for lvl, cause in sorted(problems, key=lambda p: -p[0])) or "ok"
        if "diagnostics" in self._pubs:
            name = f"wham_ros: {self.get_fully_qualified_name()}"
            header = Header(stamp=self.get_clock().now().to_msg())
            self._pubs["diagnostics"].publish(M.diagnostics(header, name, level, message, values))


def main(args: list[str] | None = None) -> int:
    # rclpy's own SIGINT handler invalidates the context at once, under a frame the worker is still
    # publishing; the node's handlers only ask the spin loop to stop, and the worker is stopped first
    rclpy.init(args=args if args is not None else sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    node = WhamNode()
    # callbacks only copy messages into buffers (the work happens in the node's own worker thread), so the
    # executor's own cost per message is what matters: rclpy's C++ events executor where it exists (Jazzy+),
    # else the single-threaded one (3x faster than the multi-threaded one here)
    executor = EventsExecutor() if EventsExecutor is not None else SingleThreadedExecutor()
    executor.add_node(node)
    if node.get_parameter("autostart").value:
        if node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            node.trigger_activate()
    try:
        while rclpy.ok() and not stopping.is_set():
            executor.spin_once(timeout_sec=0.1)     # returns to Python often enough to see a signal
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node._stop_worker()
        executor.shutdown()
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
