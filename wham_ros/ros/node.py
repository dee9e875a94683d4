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
from wham_ros.factory import make_pipeline, session_config
from wham_ros.geometry.camera_motion import rate_from_angvel
from wham_ros.msg import HumanArray, MeshTopology
from wham_ros.pipeline import HumanPipeline
from wham_ros.ros import messages as M
from wham_ros.ros.convert import (
    ConversionError,
    camera_info_to_model,
    compressed_to_rgb,
    image_to_rgb,
    imu_to_sample,
    stamp_to_sec,
)
from wham_ros.ros.params import BY_NAME, PARAMS
from wham_ros.session import CameraSession, SessionConfig

TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
TF_STATIC_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL, history=HistoryPolicy.KEEP_LAST)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


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
        self.session: CameraSession | None = None
        self._last_marker = 0.0
        self._stale_age = 0.0
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
            torch.set_num_threads(int(self.p("torch_threads")))
            self.pipeline = make_pipeline(self.p)
        except Exception as exc:  # rclpy would turn anything else into a silent ERROR transition
            self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.FAILURE
        net = self.pipeline.net
        faces = net.smpl.faces_tensor.cpu().numpy()
        self._faces = M.decimated_faces(faces, int(self.p("marker_faces")))
        self.session = CameraSession(self.pipeline, self._session_config(), count=self.stats.inc, warn=self._warn,
                                     wait_for_imu=self._wait_for_imu, status=self._status)
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
        model = self.p("checkpoint") or "the embedded model"
        self.get_logger().info(f"configured: {self.pipeline.estimator.name}, {model} on {self.p('device')} "
                               f"({self.p('precision')})")
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
        self._unsubscribe()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._unsubscribe()          # active -> shutdown skips on_deactivate
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _unsubscribe(self) -> None:
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []

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
        self.pipeline = self.session = None

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
        session = self.session       # None once released: a callback the executor had queued still runs
        if session is None:
            return
        try:
            session.set_camera(camera_info_to_model(msg, int(self.p("max_image_pixels"))))
        except ConversionError as exc:
            self.stats.inc("bad_camera_info")
            session.set_camera(None, str(exc))
            self.get_logger().warning(f"CameraInfo rejected: {exc}", throttle_duration_sec=10.0)

    def _on_imu(self, msg: Imu) -> None:
        self.stats.arrived("imu")
        session = self.session
        if session is None:
            return
        try:
            sample = imu_to_sample(msg)
            ahead = self._ahead(sample.stamp, self._now())
            if ahead is not None:
                self.stats.inc("imu_future_stamp")
                self._status["last_imu_future_stamp"] = f"{ahead:.3g} s ahead of the node clock"
                return
            session.add_imu(sample.stamp, sample.angular_velocity, sample.frame_id)
        except (ConversionError, ValueError) as exc:
            self.stats.inc("bad_imu")
            self._status["last_imu_error"] = str(exc)

    def _on_tf(self, msg: TFMessage, static: bool) -> None:
        session = self.session
        if session is None:
            return
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
                session.set_transform(tf.header.frame_id, tf.child_frame_id, stamp, (t.x, t.y, t.z),
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

    def _session_config(self) -> SessionConfig:
        return session_config(self.p)

    def _warn(self, key: str, message: str) -> None:
        # separate calls: rclpy throttles per call site
        if key == "time_jump":
            self.get_logger().warning(message)
        else:
            self.get_logger().warning(message, throttle_duration_sec=5.0)

    def _wait_for_imu(self, prev: float, stamp: float) -> None:
        """A live IMU stream that has not reached this image yet gets ``imu_wait`` seconds to do so."""
        if self.stats.seconds_since("imu") >= 1.0:
            return
        deadline = time.monotonic() + float(self.p("imu_wait"))
        while time.monotonic() < deadline and not self.session.gyro.covers(prev, stamp):
            time.sleep(0.002)

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
        try:
            max_pixels = int(self.p("max_image_pixels"))
            rgb = compressed_to_rgb(msg, max_pixels) if isinstance(msg, CompressedImage) \
                else image_to_rgb(msg, max_pixels)
        except ConversionError as exc:
            self.stats.inc("bad_images")
            self._status["last_image_error"] = str(exc)
            return
        camera_frame = self.p("camera_frame") or msg.header.frame_id
        self.session.config = self._session_config()
        result = self.session.process(rgb, stamp, camera_frame, camera_info_age=self.stats.seconds_since("camera_info"),
                                      stale_after=STREAM_TIMEOUT)
        if result is None:
            return
        self._publish(result.people, msg.header.stamp, camera_frame, result.anchored)
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
        angvel = self.session.last_angvel if self.session else np.zeros(6)
        pct = (lambda q: f"{1e3 * lat[min(len(lat) - 1, int(q * len(lat)))]:.1f}") if lat else (lambda q: "n/a")
        values = {
            "image rate (Hz)": f"{s.rate('image'):.1f}", "imu rate (Hz)": f"{s.rate('imu'):.1f}",
            "camera_info rate (Hz)": f"{s.rate('camera_info'):.1f}",
            "processed rate (Hz)": f"{s.rate('frames', event=True):.1f}",
            "latency p50 (ms)": pct(0.5), "latency p95 (ms)": pct(0.95),
            "tracks": self.pipeline.active_tracks if self.pipeline else 0,
            "model device": f"{self.p('device')} ({self.p('precision')})",
            "camera angular velocity (rad/s)": " ".join(f"{w:.5f}" for w in rate_from_angvel(angvel)),
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
