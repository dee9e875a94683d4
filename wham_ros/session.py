"""One camera's stream, as the node and ``wham-ros run`` both see it: images, IMU, TF, CameraInfo -> people.

:class:`CameraSession` owns what lies between the inputs and :class:`~wham_ros.pipeline.HumanPipeline`:
the gyro buffer, the TF buffer, the current camera intrinsics, the visual rotation estimator, time-jump
resets and the choice of the camera rotation source (gyro, else TF, else the visual estimate, else a
static camera). It needs no ROS: the node feeds it from callbacks, the offline runner from a recording,
so a bag replayed through the node and through ``wham-ros run`` goes through the same code.

What happened is reported through two hooks: ``count(key)`` for events the node counts and diagnoses
(``time_jumps``, ``dropped_out_of_order``, ``rotation_<source>``, ``wham_steps_skipped``), and
``status``, a dict of the latest state per topic (``camera_info``, ``world``, ``camera_rotation``,
``last_wham_skip``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from wham_ros.geometry.camera_motion import GyroIntegrator, angvel_from_delta
from wham_ros.geometry.frames import Transform
from wham_ros.geometry.tf_buffer import TransformBuffer, TransformLookupError
from wham_ros.geometry.visual_rotation import DISTORTION_MODELS, VisualRotationEstimator
from wham_ros.pipeline import HumanPipeline, PersonResult
from wham_ros.ros.convert import CameraModel
from wham_ros.stream.inputs import official_focal

ROTATION_SOURCES = ("auto", "gyro", "tf", "visual", "static")


@dataclass
class SessionConfig:
    """The node parameters that decide how a frame is processed (same names, same meaning)."""

    world_frame: str = "odom"
    camera_rotation: str = "auto"
    time_jump_threshold: float = 0.5
    imu_max_gap: float = 0.05
    tf_tolerance: float = 0.1
    visual_rotation_max_gap: float = 0.5

    def __post_init__(self) -> None:
        if self.camera_rotation not in ROTATION_SOURCES:
            raise ValueError(f"camera_rotation {self.camera_rotation!r} must be one of {', '.join(ROTATION_SOURCES)}")


@dataclass
class FrameResult:
    """What one processed image gave."""

    people: list[PersonResult]
    stamp: float
    camera_frame: str
    world_from_camera: Transform | None     # TF world <- camera at the stamp; None: per-person WHAM worlds
    cam_angvel: np.ndarray                  # (6,) the rotation WHAM was given (zeros: static)
    rotation_source: str                    # gyro | TF | visual | static | first frame
    focal: float                            # the pinhole camera WHAM used (px)
    principal: tuple[float, float]
    time_jump: bool = False                 # the tracks were reset before this frame

    @property
    def anchored(self) -> bool:
        return self.world_from_camera is not None


@dataclass
class CameraSession:
    """Inputs of one camera -> :class:`FrameResult` per image (see the module docstring).

    wait_for_imu(prev, stamp): called before the gyro is read for (prev, stamp), so a live node can give
    an IMU stream a moment to reach the image; offline input is ordered, so the default does nothing.
    """

    pipeline: HumanPipeline
    config: SessionConfig = field(default_factory=SessionConfig)
    count: Callable[[str], None] = lambda key: None
    warn: Callable[[str, str], None] = lambda key, message: None
    wait_for_imu: Callable[[float, float], None] = lambda prev, stamp: None
    status: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.gyro = GyroIntegrator(max_gap=self.config.imu_max_gap)
        self.tf = TransformBuffer(tolerance=self.config.tf_tolerance)
        self.camera: CameraModel | None = None
        self.camera_error = ""
        self.imu_frame = ""
        self.last_stamp: float | None = None
        self.last_boxes = np.zeros((0, 4))
        self.last_angvel = np.zeros(6)
        self._visual: VisualRotationEstimator | None = None
        self._visual_key: tuple = ()

    # ---- side inputs ---------------------------------------------------------------------------------
    def add_imu(self, stamp: float, angular_velocity: np.ndarray, frame_id: str) -> None:
        """One gyro sample (rad/s in ``frame_id``); raises ValueError for one the buffer refuses."""
        self.gyro.add(stamp, angular_velocity)
        self.imu_frame = frame_id

    def set_transform(self, parent: str, child: str, stamp: float, translation, rotation_xyzw,
                      static: bool = False) -> None:
        """One TF transform parent <- child; raises ValueError for an invalid one."""
        self.tf.set_transform(parent, child, stamp, translation, rotation_xyzw, static=static)

    def set_camera(self, camera: CameraModel | None, error: str = "") -> None:
        """The latest CameraInfo's intrinsics, or None with why it was rejected."""
        self.camera, self.camera_error = camera, error

    # ---- one image -----------------------------------------------------------------------------------
    def process(self, rgb: np.ndarray, stamp: float, camera_frame: str, *,
                camera_info_age: float | None = None, stale_after: float = float("inf"),
                detections: list | None = None) -> FrameResult | None:
        """Track and estimate the people in ``rgb`` (H, W, 3 uint8) stamped ``stamp`` (s).

        None when the image is out of order (not newer than the last one, within the time-jump threshold).
        camera_info_age: seconds since the last CameraInfo (for the status); ``stale_after`` marks it stale.
        detections: the pipeline's ``detect`` of this image when an offline runner computed it ahead.
        """
        last = self.last_stamp
        jumped = False
        if last is not None and stamp < last - self.config.time_jump_threshold:
            self.warn("time_jump", f"time jumped back {last - stamp:.2f} s: resetting all tracks")
            self.count("time_jumps")
            self.reset()
            last, jumped = None, True
        elif last is not None and stamp <= last:
            self.count("dropped_out_of_order")
            return None
        h, w = rgb.shape[:2]
        cam = self.camera                   # read once: a CameraInfo callback may replace it meanwhile
        if cam is not None and (cam.width, cam.height) != (w, h):
            cam = None
        if cam is not None:
            self.status["camera_info"] = "ok" if camera_info_age is None or camera_info_age < stale_after else \
                f"stale: none for {camera_info_age:.1f} s, the last one's intrinsics are used"
        else:
            self.status["camera_info"] = (f"rejected ({self.camera_error}): official focal" if self.camera_error
                                          else "missing or wrong size: official focal")
        world_from_camera = None
        try:
            world_from_camera = self.tf.lookup(self.config.world_frame, camera_frame, stamp)
            self.status["world"] = f"TF {self.config.world_frame}"
        except TransformLookupError as exc:
            self.status["world"] = f"per-person WHAM world (no TF: {exc})"
        cam_angvel, source = self._camera_rotation(camera_frame, last, stamp, rgb, cam)
        self.last_angvel = cam_angvel
        focal = cam.focal if cam else None
        principal = (cam.cx, cam.cy) if cam else None
        people = self.pipeline.process(rgb, stamp, cam_angvel, focal=focal, principal=principal,
                                       world_from_camera=world_from_camera, detections=detections)
        for track_id, why in self.pipeline.last_skipped.items():
            self.count("wham_steps_skipped")
            self.status["last_wham_skip"] = f"track {track_id}: {why}"
            self.warn("wham_skip", f"WHAM step skipped for track {track_id}: {why}")
        self.last_stamp = stamp
        self.last_boxes = np.array([p.detection.bbox for p in people if p.time_since_seen == 0]).reshape(-1, 4)
        used_focal, used_principal = self._used_camera(w, h, focal, principal)
        return FrameResult(people, stamp, camera_frame, world_from_camera, cam_angvel, source, used_focal,
                           used_principal, jumped)

    def reset(self) -> None:
        """Forget the people and every buffered input (a time jump)."""
        self.pipeline.reset()
        self.gyro.clear()
        if self._visual is not None:
            self._visual.reset()
        self.tf.clear()
        self.last_stamp = None

    def _used_camera(self, w: int, h: int, focal: float | None, principal: tuple[float, float] | None
                     ) -> tuple[float, tuple[float, float]]:
        if focal is None or not self.pipeline.use_camera_intrinsics:
            return official_focal(w, h), (w / 2.0, h / 2.0)
        return focal, principal

    # ---- camera rotation -----------------------------------------------------------------------------
    def _camera_rotation(self, camera_frame: str, prev: float | None, stamp: float, rgb: np.ndarray,
                         cam: CameraModel | None) -> tuple[np.ndarray, str]:
        """cam_angvel for (prev, stamp) from the sources ``camera_rotation`` allows, in priority order:
        gyro, TF world->camera orientations, the visual estimate; zeros (a static camera) when none has it."""
        mode = self.config.camera_rotation
        notes = []
        if prev is not None and mode in ("auto", "gyro"):
            angvel, note = self._gyro_rotation(camera_frame, prev, stamp)
            if angvel is not None:
                return self._rotation_from("gyro", angvel), "gyro"
            notes.append(f"gyro: {note}")
        if prev is not None and mode in ("auto", "tf"):
            try:
                a = self.tf.lookup(self.config.world_frame, camera_frame, prev).R
                b = self.tf.lookup(self.config.world_frame, camera_frame, stamp).R
            except TransformLookupError as exc:
                notes.append(f"TF: {exc}")
            else:
                angvel = angvel_from_delta(torch.as_tensor(a.T @ b), stamp - prev).numpy()
                return self._rotation_from("TF", angvel, notes), "TF"
        if mode in ("auto", "visual"):
            angvel, note = self._visual_rotation(rgb, stamp, cam)
            if angvel is not None:
                return self._rotation_from("visual", angvel, notes), "visual"
            notes.append(f"visual: {note}")
        if prev is None:
            self.status["camera_rotation"] = "first frame"
            return np.zeros(6), "first frame"
        if mode == "static":
            self.status["camera_rotation"] = "static (requested)"
        else:
            self.status["camera_rotation"] = "static camera assumed" + (f" ({'; '.join(notes)})" if notes else "")
        self.count("rotation_static")
        return np.zeros(6), "static"

    def _rotation_from(self, source: str, angvel: np.ndarray, notes: list[str] | None = None) -> np.ndarray:
        if source != "visual" and self._visual is not None:
            self._visual.reset()          # its previous frame would be stale when it is next needed
        if source == "visual":
            notes = [f"{self._visual.last_inliers} of {self._visual.last_tracks} tracks fit", *(notes or [])]
        self.status["camera_rotation"] = source + (f" ({'; '.join(notes)})" if notes else "")
        self.count(f"rotation_{source.lower()}")
        return angvel

    def _gyro_rotation(self, camera_frame: str, prev: float, stamp: float) -> tuple[np.ndarray | None, str]:
        if not self.gyro.covers(prev, stamp):
            self.wait_for_imu(prev, stamp)
        if not len(self.gyro):
            return None, "no IMU samples"
        if not self.gyro.covers(prev, stamp):
            return None, self.gyro.coverage_report(prev, stamp)
        try:
            R_ci = self.tf.lookup(camera_frame, self.imu_frame, stamp).R
        except TransformLookupError as exc:
            return None, f"IMU extrinsic missing ({exc})"
        return self.gyro.cam_angvel(prev, stamp, torch.float64, R_cam_imu=R_ci).numpy(), ""

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
        max_gap = self.config.visual_rotation_max_gap
        key = (w, h, K.tobytes(), model, None if dist is None else dist.tobytes(), max_gap)
        try:
            if self._visual is None or self._visual_key != key:
                self._visual = VisualRotationEstimator(K, dist, distortion_model=model, max_dt=max_gap)
                self._visual_key = key
            delta = self._visual(rgb, self.last_boxes, stamp)
        except ValueError as exc:
            self._visual = None
            return None, str(exc)
        if delta is None:
            return None, self._visual.last_status
        return angvel_from_delta(torch.as_tensor(delta), self._visual.last_dt).numpy(), ""
