"""``wham-ros run INPUT --out DIR``: a recording through the node's pipeline, results written to files.

The recording (video, image folder, rosbag2, ROS 1 bag: :mod:`wham_ros.offline.sources`) is fed to the
same :class:`~wham_ros.session.CameraSession` and :class:`~wham_ros.pipeline.HumanPipeline` the node
builds from the same parameters (:mod:`wham_ros.factory`), every frame in order, none dropped. CameraInfo,
IMU and TF messages are applied as the node's callbacks apply them. An image is processed once the
recording has gone ``LOOKAHEAD`` seconds past it, so the gyro samples and transforms stamped up to the
image are in (a live node waits ``imu_wait`` for them); no later image is ever used.

Outputs are written into a staging folder inside DIR and moved into place only when the whole
recording went through, so a failed run leaves no file that looks complete: a previous run's results in
DIR stay as they were, and a DIR the failed run created is removed again. A successful run replaces
every output of a previous one, including those it does not write itself (an old overlay.mp4 next to
a ``--no-overlay`` run's results would pass for one of them).

What makes a run fail (:class:`RunError`, or the recording's own
:class:`~wham_ros.offline.sources.InputError`), with nothing written:

* a recording that breaks off (a truncated video, a damaged bag) fails even though the images before
  the damage were processed: results of part of a recording, published as if complete, would be
  mistaken for the whole. The message says how many images were read and that ``max_frames`` (``--max-frames``)
  of that many keeps them; a run asked for ``max_frames`` images finishes once it has read them, and an
  error of the recording after them is then only reported (:attr:`RunSummary.warnings`);
* with ``use_camera_info_intrinsics``, CameraInfo messages for the stream of which none was accepted
  with the size of the images by the first image: the official focal would replace the calibration
  without anyone asking for it. The message names both sizes and the way out (the parameter set to
  false, or ``camera_info_topic``);
* the output folder cannot be written (not a folder, no permission, disk full).

A gyro in the recording that the camera rotation could not use (no TF camera <- IMU frame, samples
not spanning a frame's interval) is reported in :attr:`RunSummary.warnings` with the session's status.
"""
from __future__ import annotations

import errno
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field

import numpy as np
import torch

from wham_ros.errors import WhamError
from wham_ros.factory import defaults_with, make_pipeline, session_config
from wham_ros.offline.sources import DecodedFrame, Event, InputError, InputSource, open_input
from wham_ros.ros.convert import (
    ConversionError,
    camera_info_to_model,
    compressed_to_rgb,
    image_to_rgb,
    imu_to_sample,
    stamp_to_sec,
)
from wham_ros.session import CameraSession, FrameResult

#: seconds of recording read past an image before it is processed (IMU and TF up to its stamp)
LOOKAHEAD = 0.2
OUTPUTS = ("results.mcap", "overlay.mp4", "trajectories.png")


class RunError(WhamError):
    """The run cannot start or cannot finish (input, output folder, disk)."""


@dataclass
class RunOptions:
    """What to write, besides the node parameters (``params``: name -> value, the node's names)."""

    params: dict = field(default_factory=dict)
    overlay: bool = True
    side_panel: bool = True
    bag: bool = True
    npz: bool = True
    plot: bool = True
    camera_images: bool = False      # also store the input frames (JPEG) in results.mcap
    image_topic: str | None = None
    camera_info_topic: str | None = None
    imu_topic: str | None = None
    gyro_csv: str | None = None
    gyro_axes: str | None = None
    fps: float | None = None
    max_frames: int | None = None
    progress: bool = True
    demo_conventions: bool = False   # the official demo's offline preprocessing (wham_ros.offline.demo_mode)
    detect_ahead: bool = True        # detect the next image in a thread while this one's WHAM step runs


@dataclass
class StageTimes:
    """Seconds spent per stage, summed over frames."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(
        ("read", "front end", "WHAM", "render", "write"), 0.0))

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] += seconds


@dataclass
class RunSummary:
    input: str
    out: str
    frames: int
    seconds: float
    stages: StageTimes
    people: dict[int, dict]                # id -> {"frames": n, "first": i, "last": i, "path_m": metres}
    files: list[str]
    rotation_sources: dict[str, int]
    skipped_images: dict[str, int]         # why -> count (undecodable images, out-of-order stamps)
    warnings: list[str] = field(default_factory=list)    # what the results lack or got from a fallback
    detect_ahead: bool = False             # the front end ran beside the other stages: their times overlap

    def table(self) -> str:
        """The end-of-run summary as a plain-text table."""
        fps = self.frames / self.seconds if self.seconds else 0.0
        lines = [f"{self.frames} frames in {self.seconds:.1f} s ({fps:.1f} fps overall)", "",
                 f"{'stage':<10} {'seconds':>8} {'ms/frame':>9} {'fps':>7}"]
        for stage, s in self.stages.seconds.items():
            per = 1e3 * s / max(self.frames, 1)
            lines.append(f"{stage:<10} {s:8.1f} {per:9.1f} {1e3 / per if per else float('inf'):7.1f}")
        if self.detect_ahead:
            lines.append("(the front end ran in a thread beside the other stages: the stage times overlap)")
        lines += ["", f"{'person':<7} {'frames':>6} {'first':>6} {'last':>6} {'path (m)':>9}"]
        for pid, p in sorted(self.people.items()):
            lines.append(f"{pid:<7} {p['frames']:6d} {p['first']:6d} {p['last']:6d} {p['path_m']:9.2f}")
        if not self.people:
            lines.append("(nobody was tracked)")
        lines += ["", "camera rotation: " + (", ".join(f"{k} {v}" for k, v in sorted(self.rotation_sources.items()))
                                           or "-")]
        if self.skipped_images:
            lines.append("images not processed: " + ", ".join(f"{v} {k}" for k, v in self.skipped_images.items()))
        if self.warnings:
            lines += ["", "warnings:"] + [f"  {w}" for w in self.warnings]
        lines += ["", "wrote:"] + [f"  {f}" for f in self.files]
        return "\n".join(lines)


class _TimedEstimator:
    """The pipeline's estimator, timed: the front end's share of ``HumanPipeline.process``."""

    def __init__(self, inner, times: StageTimes) -> None:
        self.inner, self.times = inner, times

    def __call__(self, rgb: np.ndarray, stamp: float):
        t0 = time.perf_counter()
        try:
            return self.inner(rgb, stamp)
        finally:
            self.times.add("front end", time.perf_counter() - t0)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def _prefetch(events: Iterator[Event], depth: int = 16) -> Iterator[Event]:
    """``events`` read (and videos decoded) in a thread of their own, ``depth`` ahead of the consumer."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(item) -> bool:
        """Hand ``item`` over unless the consumer has stopped (a full queue must not block this thread)."""
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for ev in events:
                if not put(ev):
                    return
            put(done)
        except BaseException as exc:   # re-raised in the consumer, which owns the error report
            put(exc)
        finally:
            close = getattr(events, "close", None)
            if close is not None:      # the recording's file (video capture, bag reader) is released
                close()

    thread = threading.Thread(target=produce, name="wham-run-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def _stamp_msg(stamp: float):
    from builtin_interfaces.msg import Time

    sec = int(np.floor(stamp))
    return Time(sec=sec, nanosec=min(round((stamp - sec) * 1e9), 999_999_999))


class _Outputs:
    """Every output writer, in the staging folder."""

    def __init__(self, staging: str, opts: RunOptions, net, fps: float, param) -> None:
        self.staging, self.opts, self.net, self.fps = staging, opts, net, fps
        self.faces = net.smpl.faces_tensor.cpu().numpy()
        self.body_model = net.smpl
        self.bag = self.overlay = None
        self.camera_path: list[np.ndarray] = []
        self.marker_period = 1.0 / float(rate) if (rate := float(param("marker_rate"))) > 0 else None
        self.last_marker: float | None = None
        self.publish_mesh, self.world_frame = bool(param("publish_mesh")), str(param("world_frame"))
        from wham_ros.offline.tracks_out import TrackRecorder

        self.recorder = TrackRecorder(net.smpl)
        self.publish_tf = bool(param("publish_tf"))
        if opts.bag:     # the ROS message packages are needed only for results.mcap
            from wham_ros.offline.results_bag import ResultsBag
            from wham_ros.ros.messages import decimated_faces

            self.marker_faces = decimated_faces(self.faces, int(param("marker_faces")))

            self.bag = ResultsBag(os.path.join(staging, "results.mcap"), faces=self.faces,
                                  num_vertices=int(net.smpl.num_vertices))
            self.bag.open()

    def frame(self, index: int, time_ns: int, rgb: np.ndarray, result: FrameResult, times: StageTimes,
              header_stamp) -> None:
        t0 = time.perf_counter()
        world = self.world_frame
        if result.world_from_camera is not None:
            self.camera_path.append(np.asarray(result.world_from_camera.t, dtype=float))
        self.recorder.add(index, result.stamp, result.people, world_frame=world if result.anchored else None)
        if self.bag is not None:
            from std_msgs.msg import Header

            from wham_ros.ros.messages import frame_messages

            # markers at the node's marker_rate, in recording time
            markers = self.marker_period is not None and (
                self.last_marker is None or result.stamp - self.last_marker >= self.marker_period - 1e-6)
            if markers:
                self.last_marker = result.stamp
            header = Header(stamp=header_stamp, frame_id=world if result.anchored else "")
            msgs = frame_messages(result.people, header, result.camera_frame, world, result.anchored,
                                  self.body_model, self.marker_faces, mesh=self.publish_mesh, markers=markers,
                                  tf=self.publish_tf)
            self.bag.write_frame(time_ns, msgs)
            if self.opts.camera_images:
                self.bag.write_image(time_ns, header_stamp, result.camera_frame, rgb)
        t1 = time.perf_counter()
        times.add("write", t1 - t0)
        if self.opts.overlay:
            if self.overlay is None:
                from wham_ros.offline.overlay import OverlayWriter

                h, w = rgb.shape[:2]
                self.overlay = OverlayWriter(os.path.join(self.staging, "overlay.mp4"), (w, h), self.fps,
                                             self.faces, side_panel=self.opts.side_panel)
            self.overlay.add(rgb, result.people, result.focal, result.principal, self.body_model)
            times.add("render", time.perf_counter() - t1)

    def close(self, ok: bool) -> list[str]:
        names = []
        if self.bag is not None:
            if ok:
                self.bag.close()
                names.append("results.mcap")
            else:
                self.bag.abort()
        if self.overlay is not None:
            if ok:
                self.overlay.close()
                names.append("overlay.mp4")
            else:
                self.overlay.abort()
        if not ok:
            return []
        if self.opts.npz:
            names += [os.path.basename(p) for p in self.recorder.write_npz(self.staging)]
        if self.opts.plot:
            from wham_ros.offline.tracks_out import trajectories_png

            path = np.array(self.camera_path) if self.camera_path else None
            trajectories_png(self.recorder, os.path.join(self.staging, "trajectories.png"), path)
            names.append("trajectories.png")
        return names


@contextmanager
def _writing(out: str) -> Iterator[None]:
    """An OSError of the outputs -> :class:`RunError` naming ``out``; the input's and the model's
    OSErrors are not this one's to word."""
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise RunError(f"disk full while writing into {out!r}: no result was written; free some space "
                           "or choose another --out") from exc
        raise RunError(f"writing into {out!r} failed: {exc}; no result was written") from exc


def _staging(out: str) -> str:
    if os.path.exists(out) and not os.path.isdir(out):
        raise RunError(f"the output folder {out!r} is a file, not a folder")
    created = not os.path.exists(out)
    staging = os.path.join(out, f".wham-run-{os.getpid()}")
    try:
        os.makedirs(out, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        os.makedirs(staging)
        with open(os.path.join(staging, ".write-test"), "wb") as fh:
            fh.write(b"0" * 4096)
        os.remove(os.path.join(staging, ".write-test"))
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            with suppress(OSError):
                os.rmdir(out)
        raise RunError(f"cannot write to the output folder {out!r}: {exc.strerror or exc}") from exc
    return staging


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)


def _publish(staging: str, out: str, names: list[str]) -> list[str]:
    """Move the finished outputs from ``staging`` into ``out``, replacing a previous run's (all of them).

    The new files go in first and the previous run's others are removed after, so an interruption in
    between leaves a stale file beside complete results, never a result missing."""
    placed = []
    for name in names:
        dest = os.path.join(out, name)
        if os.path.isdir(dest) and not os.path.islink(dest):
            shutil.rmtree(dest)
        os.replace(os.path.join(staging, name), dest)
        placed.append(dest)
    for old in os.listdir(out):
        if old not in names and (old in OUTPUTS or (old.startswith("wham_") and old.endswith(".npz"))):
            _remove(os.path.join(out, old))
    shutil.rmtree(staging, ignore_errors=True)
    return placed


class _Feeder:
    """Applies a recording's events to the session as the node's callbacks do; counts what it refuses."""

    def __init__(self, session: CameraSession, max_pixels: int) -> None:
        self.session, self.max_pixels = session, max_pixels
        self.counts: dict[str, int] = {}
        self.camera_info_time: float | None = None
        self.camera_infos = 0
        self.camera_info_sizes: set[tuple[int, int]] = set()     # (width, height) of the accepted ones
        self.imu_seen = False

    def _count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def side(self, ev: Event) -> None:
        s = self.session
        if ev.kind == "camera_info":
            self.camera_infos += 1
            try:
                camera = camera_info_to_model(ev.msg, self.max_pixels)
            except ConversionError as exc:
                self._count("bad_camera_info")
                s.set_camera(None, str(exc))
            else:
                s.set_camera(camera)
                self.camera_info_sizes.add((camera.width, camera.height))
            self.camera_info_time = ev.time_ns * 1e-9
        elif ev.kind == "imu":
            self.imu_seen = True
            try:
                sample = imu_to_sample(ev.msg) if hasattr(ev.msg, "header") else ev.msg
                s.add_imu(sample.stamp, sample.angular_velocity, sample.frame_id)
            except (ConversionError, ValueError):
                self._count("bad_imu")
        elif ev.kind in ("tf", "tf_static"):
            for tf in ev.msg.transforms:
                t, r = tf.transform.translation, tf.transform.rotation
                try:
                    s.set_transform(tf.header.frame_id, tf.child_frame_id, stamp_to_sec(tf.header.stamp),
                                    (t.x, t.y, t.z), (r.x, r.y, r.z, r.w), static=ev.kind == "tf_static")
                except ValueError:
                    self._count("bad_tf")

    def check_camera_info(self, width: int, height: int, topic: str | None) -> None:
        """RunError when the recording has CameraInfo for its images but none accepted of their size (called
        at the first image): the run would otherwise quietly use the official focal instead of the calibration."""
        if not self.session.pipeline.use_camera_intrinsics or not self.camera_infos or (
                (width, height) in self.camera_info_sizes):
            return
        fix = ("run with --param use_camera_info_intrinsics=false to use the official focal instead, or name "
               "this camera's CameraInfo with --camera-info-topic TOPIC")
        if not self.camera_info_sizes:
            raise RunError(f"every CameraInfo on {topic} so far ({self.camera_infos}) was rejected: "
                           f"{self.session.camera_error}; {fix}")
        sizes = " and ".join(f"{w}x{h}" for w, h in sorted(self.camera_info_sizes))
        raise RunError(f"the images are {width}x{height} but the CameraInfo on {topic} is for {sizes} images: "
                       f"its intrinsics are not these images'; {fix}")

    def image(self, ev: Event, camera_frame: str) -> tuple[np.ndarray, float, str, object] | None:
        """(rgb, stamp, camera frame, header stamp) of an image event; None (counted) if it cannot be decoded."""
        msg = ev.msg
        if isinstance(msg, DecodedFrame):
            return msg.rgb, msg.stamp, camera_frame or msg.frame_id or "camera", None
        try:
            rgb = compressed_to_rgb(msg, self.max_pixels) if hasattr(msg, "format") \
                else image_to_rgb(msg, self.max_pixels)
        except ConversionError:
            self._count("undecodable")
            return None
        return rgb, stamp_to_sec(msg.header.stamp), camera_frame or msg.header.frame_id, msg.header.stamp


def run(input_path: str, out: str, opts: RunOptions | None = None,
        say: Callable[[str], None] = print) -> RunSummary:
    """Process ``input_path`` into ``out`` (see the module docstring); raises :class:`RunError` and
    the input's errors with a message naming the problem."""
    opts = opts or RunOptions()
    if opts.max_frames is not None and opts.max_frames < 1:
        raise RunError(f"max_frames {opts.max_frames} asks for no frame: give at least 1")
    param = defaults_with(opts.params)
    source: InputSource = open_input(input_path, image_topic=opts.image_topic,
                                     camera_info_topic=opts.camera_info_topic, imu_topic=opts.imu_topic,
                                     gyro_csv=opts.gyro_csv, gyro_axes=opts.gyro_axes, fps=opts.fps)
    say(f"run: {source.describe()}")
    created = not os.path.exists(out)
    staging = _staging(out)
    ok = False
    outputs = bar = ahead = None
    try:
        torch.set_num_threads(int(param("torch_threads")))
        times = StageTimes()
        with _native_stderr_kept():
            pipeline = make_pipeline(param)
        pipeline.estimator = _TimedEstimator(pipeline.estimator, times)
        rotations: dict[str, int] = {}
        session = CameraSession(pipeline, session_config(param))
        feeder = _Feeder(session, int(param("max_image_pixels")))
        fps = opts.fps or getattr(source, "fps", None) or 30.0
        with _writing(out):
            outputs = _Outputs(staging, opts, pipeline.net, float(fps), param)
        people: dict[int, dict] = {}
        last_position: dict[int, np.ndarray] = {}
        total = source.frame_count if opts.max_frames is None else min(source.frame_count or opts.max_frames,
                                                                        opts.max_frames)
        bar = _progress(total, opts.progress)
        frames, images_read, pending = 0, 0, []
        warnings: list[str] = []
        gyro_unused, gyro_status = 0, ""
        may_use_gyro = str(param("camera_rotation")) in ("auto", "gyro")
        started = time.perf_counter()
        camera_frame = str(param("camera_frame"))

        demo = None
        if opts.demo_conventions:
            from wham_ros.offline.demo_mode import DemoRun

            demo = DemoRun(pipeline, opts.fps or getattr(source, "fps", None))
        ahead = _DetectAhead(pipeline, session, feeder, camera_frame, opts.detect_ahead)

        def process(ev: Event, following: Event | None) -> None:
            nonlocal frames, gyro_unused, gyro_status
            decoded, detections = ahead.take(ev)
            if decoded is None:
                return
            rgb, stamp, frame_id, header_stamp = decoded
            if frames == 0 and demo is None:     # the demo conventions use the official focal anyway
                feeder.check_camera_info(rgb.shape[1], rgb.shape[0], source.topics["camera_info"])
            age = None if feeder.camera_info_time is None else max(0.0, ev.time_ns * 1e-9 - feeder.camera_info_time)
            if ahead.steady(stamp):
                # detect this image before the next one is started: one detection at a time, in order
                if detections is None and ahead.pool is not None:
                    detections = pipeline.detect(rgb, stamp)
                ahead.start(following, stamp)
            t0 = time.perf_counter()
            front = times.seconds["front end"]
            if detections is None:
                result = session.process(rgb, stamp, frame_id, camera_info_age=age, stale_after=2.0)
                times.add("WHAM", time.perf_counter() - t0 - (times.seconds["front end"] - front))
            else:
                result = session.process(rgb, stamp, frame_id, camera_info_age=age, stale_after=2.0,
                                         detections=detections)
                times.add("WHAM", time.perf_counter() - t0)
            if result is None:
                feeder._count("out of order")
                return
            rotations[result.rotation_source] = rotations.get(result.rotation_source, 0) + 1
            if feeder.imu_seen and may_use_gyro and result.rotation_source not in ("gyro", "first frame"):
                gyro_unused += 1
                gyro_status = session.status.get("camera_rotation", "")
            if demo is not None:
                demo.record(frames, result)
            else:
                with _writing(out):
                    outputs.frame(frames, ev.time_ns, rgb, result, times,
                                  header_stamp if header_stamp is not None else _stamp_msg(stamp))
                _tally(people, last_position, frames, result)
            frames += 1
            bar.update(1)
            bar.set_postfix(people=len(pipeline.engine), refresh=False)

        events = _prefetch(source.events())
        try:
            while True:
                read_t = time.perf_counter()
                try:
                    ev = next(events, None)
                except InputError as exc:
                    if opts.max_frames is None or images_read < opts.max_frames:
                        if not images_read:
                            raise
                        raise RunError(f"{exc}; no result was written ({images_read} images were read before: "
                                       f"--max-frames {images_read} processes just those)") from exc
                    warnings.append(f"the recording has an error after the {opts.max_frames} images asked for: {exc}")
                    break
                times.add("read", time.perf_counter() - read_t)
                if ev is None:
                    break
                while pending and ev.time_ns - pending[0].time_ns >= LOOKAHEAD * 1e9:
                    if opts.max_frames is not None and frames >= opts.max_frames:
                        break
                    last = opts.max_frames is not None and frames + 1 >= opts.max_frames
                    following = pending[1] if len(pending) > 1 else (ev if ev.kind == "image" else None)
                    process(pending.pop(0), None if last else following)
                if opts.max_frames is not None and frames >= opts.max_frames:
                    break
                if ev.kind == "image":
                    images_read += 1
                    pending.append(ev)
                else:
                    feeder.side(ev)
        finally:
            events.close()     # stops the reader thread (and its file) after a break or an error
        for i, ev in enumerate(pending):
            if opts.max_frames is not None and frames >= opts.max_frames:
                break
            last = opts.max_frames is not None and frames + 1 >= opts.max_frames
            process(ev, pending[i + 1] if i + 1 < len(pending) and not last else None)
        ahead.close()
        if frames == 0:
            raise RunError(f"{input_path}: no image could be processed"
                           + (f" ({', '.join(f'{v} {k}' for k, v in feeder.counts.items())})" if feeder.counts
                              else ""))
        if demo is not None:
            _write_demo(demo, source, session, camera_frame, param, outputs, times, out, people, last_position)
        seconds = time.perf_counter() - started
        if gyro_unused:
            warnings.append(
                f"the gyro ({source.topics['imu'] or 'the gyro track'}) was not used for {gyro_unused} of {frames} "
                "frames: it needs samples spanning each frame interval and TF from the camera frame to the IMU's "
                f"(a camera driver's /tf_static); the last such frame's camera rotation: {gyro_status}")
        with _writing(out):
            names = outputs.close(ok=True)
            outputs = None
            files = _publish(staging, out, names)
        ok = True
        skipped = {k: v for k, v in feeder.counts.items() if k in ("undecodable", "out of order")}
        return RunSummary(input_path, out, frames, seconds, times, people, files, rotations, skipped, warnings,
                          opts.detect_ahead)
    finally:
        if ahead is not None:
            ahead.close()
        if bar is not None:
            bar.close()
        if outputs is not None:
            try:
                outputs.close(ok=False)
            except Exception:   # the original error is the one to report
                pass
        if not ok:
            shutil.rmtree(staging, ignore_errors=True)
            if created:
                with suppress(OSError):     # only when empty: never what someone put there meanwhile
                    os.rmdir(out)


#: line starts of what MediaPipe's runtime (LiteRT, XNNPACK, absl) prints while it builds its graphs
_NATIVE_CHATTER = ("INFO: ", "WARNING: [", "WARNING: Logging before", "W0000 ", "I0000 ")


@contextmanager
def _native_stderr_kept() -> Iterator[None]:
    """Native code's stderr (MediaPipe's runtime prints dozens of INFO / WARNING lines while it builds its
    graphs, which would bury the progress bar) goes to a temporary file: all of it is shown if the block
    fails, else everything but that chatter (a warning of the model loader still reaches the user)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):        # no usable file descriptor 2: nothing to keep
        yield
        return
    with tempfile.TemporaryFile() as kept:
        os.dup2(kept.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            kept.seek(0)
            lines = kept.read().decode(errors="replace").splitlines(keepends=True)
            # on success only the runtime's own chatter is dropped: Python's warnings and logs are kept
            shown = lines if failed else [line for line in lines if not line.startswith(_NATIVE_CHATTER)]
            sys.stderr.write("".join(shown))


def _tally(people: dict[int, dict], last_position: dict[int, np.ndarray], index: int, result: FrameResult) -> None:
    """The summary's per-person counts: frames observed, first and last frame, path length."""
    for p in result.people:
        if p.output is None or p.world is None or p.time_since_seen > 0:
            continue
        entry = people.setdefault(p.track_id, {"frames": 0, "first": index, "last": index, "path_m": 0.0})
        entry["frames"] += 1
        entry["last"] = index
        pos = np.asarray(p.world.position, dtype=float)
        if p.track_id in last_position:
            entry["path_m"] += float(np.linalg.norm(pos - last_position[p.track_id]))
        last_position[p.track_id] = pos


def _write_demo(demo, source: InputSource, session: CameraSession, camera_frame: str, param, outputs: _Outputs,
                times: StageTimes, out: str, people: dict, last_position: dict) -> None:
    """``--demo-conventions``: WHAM over each whole track, then the recording read again for the writers."""
    again = _Feeder(session, int(param("max_image_pixels")))      # a fresh count: nothing is counted twice
    decode = lambda ev: again.image(ev, camera_frame)
    if demo.needs_images:
        with closing(_prefetch(source.events())) as events:
            for index, _, (rgb, *_rest) in demo.replay(events, decode):
                demo.add_image(index, rgb)
    t0 = time.perf_counter()
    demo.solve()
    times.add("WHAM", time.perf_counter() - t0)
    with closing(_prefetch(source.events())) as events:
        for index, ev, (rgb, stamp, _, header_stamp) in demo.replay(events, decode):
            result = demo.frame_result(index)
            with _writing(out):
                outputs.frame(index, ev.time_ns, rgb, result, times,
                              header_stamp if header_stamp is not None else _stamp_msg(stamp))
            _tally(people, last_position, index, result)


class _DetectAhead:
    """Runs the front end on the next image in a worker thread while this image's tracking and WHAM step
    run (the front end and WHAM then use both cores). The images are still detected one at a time and in
    order, and the next image's detections never reach this image: the result is the sequential one."""

    def __init__(self, pipeline, session: CameraSession, feeder: _Feeder, camera_frame: str, enabled: bool) -> None:
        self.pipeline, self.session, self.feeder, self.camera_frame = pipeline, session, feeder, camera_frame
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wham-run-detect") if enabled else None
        self.next: tuple[Event, tuple | None, Future | None] | None = None

    def take(self, ev: Event) -> tuple[tuple | None, list | None]:
        """This image decoded, and its detections when they were computed ahead (else None)."""
        if self.next is not None and self.next[0] is ev:
            _, decoded, future = self.next
            self.next = None
            return decoded, (future.result() if future is not None else None)
        self.wait()
        return self.feeder.image(ev, self.camera_frame), None

    def steady(self, stamp: float) -> bool:
        """Whether the session will take an image stamped ``stamp`` without a reset (a reset must not meet
        a detection in flight) and without dropping it (the front end must never see a dropped image)."""
        last = self.session.last_stamp
        return last is None or stamp > last

    def start(self, ev: Event | None, stamp: float) -> None:
        """Detect ``ev`` (the next image) now, unless it is not newer than this image (``stamp``): the
        session drops it or resets, and the front end must see images in the order the session takes them."""
        if self.pool is None or ev is None:
            return
        decoded = self.feeder.image(ev, self.camera_frame)
        newer = decoded is not None and decoded[1] > stamp
        future = self.pool.submit(self.pipeline.detect, decoded[0], decoded[1]) if newer else None
        self.next = (ev, decoded, future)

    def wait(self) -> None:
        if self.next is not None and self.next[2] is not None:
            self.next[2].result()
        self.next = None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def set_postfix(self, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int | None, show: bool):
    if not show:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, unit="frame", dynamic_ncols=True, smoothing=0.1)


def params_from_args(values: Mapping[str, object]) -> dict:
    """Node parameters given on the command line (``name=value``), typed as their defaults."""
    from wham_ros.ros.params import BY_NAME

    out = {}
    for name, raw in values.items():
        if name not in BY_NAME:
            raise RunError(f"unknown parameter {name!r} (see config/wham.yaml)")
        default = BY_NAME[name].default
        try:
            if isinstance(default, bool):
                if str(raw).lower() not in ("true", "false", "1", "0"):
                    raise ValueError(raw)
                out[name] = str(raw).lower() in ("true", "1")
            elif isinstance(default, int):
                out[name] = int(raw)
            elif isinstance(default, float):
                out[name] = float(raw)
            else:
                out[name] = str(raw)
        except ValueError as exc:
            raise RunError(f"parameter {name}={raw!r} is not a {type(default).__name__}") from exc
    return out
