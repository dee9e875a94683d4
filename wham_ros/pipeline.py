"""Image in, people out: pose estimator -> tracker -> causal inputs -> online WHAM (no ROS needed).

The node (``wham_ros.ros``) and the offline tools drive this one class. A person's
WHAM state starts once its track is confirmed (``tracked``), steps only in frames
where it is observed, and is dropped when the tracker declares the track dead.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from wham_ros.geometry.frames import Transform, WorldPose, place_in_wham_world, place_with_camera_pose
from wham_ros.geometry.rotations import axis_angle_to_matrix
from wham_ros.model.flip import unmirror_rotations
from wham_ros.model.network import WhamNetwork
from wham_ros.perception.base import Detection, InitialBody, PoseEstimator
from wham_ros.perception.hmr2 import MIN_CROP_PX, HMR2Estimator
from wham_ros.perception.smoothing import KeypointSmoother
from wham_ros.perception.tracker import Track, Tracker, TrackState
from wham_ros.stream import FrameInput, FrameOutput, StreamEngine
from wham_ros.stream.inputs import KEYPOINT_THRESHOLD, TrackInputBuilder, make_track_init

log = logging.getLogger(__name__)

TRAIN_FPS = 30.0
#: floor of the reported velocity standard deviation (m/s)
VELOCITY_STD_FLOOR = 0.05


def default_initial_body(keypoints: np.ndarray) -> InitialBody:
    """A standing body with arms lowered, facing the camera or away from it (from the shoulders' order).

    Used when the front end gives no first-frame body estimate (no HMR2.0): WHAM's
    neural initialisation then starts from a plausible upright pose instead of zeros.
    """
    facing_camera = keypoints[5, 0] >= keypoints[6, 0]        # the left shoulder appears on the image's right
    upright = np.diag([1.0, -1.0, -1.0]) if facing_camera else np.diag([-1.0, -1.0, 1.0])
    aa = torch.zeros(23, 3, dtype=torch.float64)
    aa[15, 2], aa[16, 2] = -1.2, 1.2                           # SMPL joints 16/17 (shoulders): arms down
    return InitialBody(upright, axis_angle_to_matrix(aa).numpy(), np.zeros(10))


def mirrored_body(body: InitialBody) -> InitialBody:
    """The same body seen in a left-right mirrored image (flip evaluation's first frame)."""
    rotations = torch.cat((torch.as_tensor(body.global_orient, dtype=torch.float64).reshape(1, 3, 3),
                           torch.as_tensor(body.body_pose, dtype=torch.float64).reshape(23, 3, 3)))
    mirrored = unmirror_rotations(rotations)          # mirroring is its own inverse
    return InitialBody(mirrored[0].numpy(), mirrored[1:].numpy(), np.asarray(body.betas).copy())


@dataclass
class PersonResult:
    """One person in one frame, ready to publish."""

    track_id: int
    state: TrackState
    age: int
    time_since_seen: float
    detection: Detection
    output: FrameOutput | None         # None for tentative tracks and lost frames
    world: WorldPose | None
    velocity: np.ndarray               # (3,) m/s in the output world
    velocity_cov: np.ndarray           # (3, 3)


@dataclass
class _TrackContext:
    builder: TrackInputBuilder
    smoother: KeypointSmoother | None
    last_frame: int = -1
    last_output: FrameOutput | None = None
    last_world: WorldPose | None = None
    last_trans_wham: np.ndarray = field(default_factory=lambda: np.zeros(3))
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    innovation_var: np.ndarray = field(default_factory=lambda: np.zeros(3))


class HumanPipeline:
    """Runs the whole per-image chain and keeps every person's state.

    net: loaded WHAM network; estimator: a :class:`PoseEstimator`; tracker: a :class:`Tracker`.
    features: HMR2.0 (:class:`HMR2Estimator`) for image features and each new track's first body, run on
    the box WHAM sees for every stepped person; None runs WHAM in its no-feature mode (unless the
    estimator's detections carry features).
    use_camera_intrinsics: use CameraInfo's focal length and principal point for the camera
    translation (True) or the official sqrt(W^2 + H^2) and image centre (False).
    """

    def __init__(self, net: WhamNetwork, estimator: PoseEstimator, tracker: Tracker | None = None, *,
                 box_window: int = 5, use_camera_intrinsics: bool = True, flip_eval: bool = False,
                 smooth_keypoints: bool = True, min_confident_keypoints: int = 6,
                 features: HMR2Estimator | None = None) -> None:
        self.net, self.estimator, self.features = net, estimator, features
        self.tracker = tracker or Tracker()
        self.engine = StreamEngine(net, flip_eval=flip_eval)
        self.box_window, self.use_camera_intrinsics, self.flip_eval = box_window, use_camera_intrinsics, flip_eval
        self.smooth_keypoints, self.min_confident_keypoints = smooth_keypoints, min_confident_keypoints
        self._contexts: dict[int, _TrackContext] = {}
        self.skipped_frames = 0
        #: track id -> why its WHAM step was skipped in the last frame (bad inputs; the state did not advance)
        self.last_skipped: dict[int, str] = {}
        self._frame = 0

    def reset(self) -> None:
        """Forget everyone (time jump, camera switch)."""
        self.tracker.reset()
        self.engine.reset()
        self.estimator.reset()
        self._contexts.clear()

    @property
    def active_tracks(self) -> int:
        return len(self.engine)

    def _builder(self, res: tuple[int, int], focal: float | None, principal: tuple[float, float] | None):
        if not self.use_camera_intrinsics:
            focal = principal = None
        return TrackInputBuilder(res, focal=focal, principal=principal, box_window=self.box_window,
                                 flip_eval=self.flip_eval)

    def detect(self, rgb: np.ndarray, stamp: float) -> list[Detection]:
        """The front end's people in one image that WHAM may use (the official rule: enough confident joints).

        Depends on no tracking state, so an offline runner may detect the next image while this one's
        tracking and WHAM step run; the images must still be detected in order (the front end tracks).
        """
        return [d for d in self.estimator(rgb, stamp)
                if int((d.keypoints[:, 2] > KEYPOINT_THRESHOLD).sum()) >= self.min_confident_keypoints]

    def process(self, rgb: np.ndarray, stamp: float, cam_angvel: np.ndarray, *, focal: float | None = None,
                principal: tuple[float, float] | None = None, world_from_camera: Transform | None = None,
                detections: list[Detection] | None = None) -> list[PersonResult]:
        """One image: detect, track, advance WHAM for every confirmed person, place them in the world.

        cam_angvel (6,): camera rotation from the previous image to this one (zeros for a static camera).
        world_from_camera: TF world <- optical frame at this stamp; None places each person in its own
        gravity-aligned WHAM world (turned z-up). detections: :meth:`detect`'s result for this image when
        it was computed ahead; None detects here.
        """
        h, w = rgb.shape[:2]
        self._frame += 1
        if detections is None:
            detections = self.detect(rgb, stamp)
        tracks = self.tracker.update(detections, stamp, rgb)
        for dead in self.tracker.dead:
            self.engine.remove_track(dead)
            self._contexts.pop(dead, None)
        frames, confirmed = {}, []
        for track in tracks:
            if track.state == TrackState.TENTATIVE or not track.matched_now:
                continue
            ctx = self._contexts.get(track.id)
            if ctx is None:
                ctx = self._contexts[track.id] = _TrackContext(
                    self._builder((w, h), focal, principal), KeypointSmoother() if self.smooth_keypoints else None)
            det = track.detection
            keypoints = det.keypoints
            if ctx.smoother is not None:
                gap = self._frame - ctx.last_frame if ctx.last_frame >= 0 else 1
                keypoints = ctx.smoother(keypoints, gap)
            ctx.last_frame = self._frame
            frame = ctx.builder.frame(keypoints, torch.as_tensor(cam_angvel, dtype=torch.float32),
                                      None if det.feature is None else torch.as_tensor(det.feature),
                                      None if det.flipped_feature is None else torch.as_tensor(det.flipped_feature))
            if frame is not None:
                frames[track.id] = frame
                confirmed.append((track, keypoints))
        bodies = self._add_features(rgb, frames) if self.features is not None else {}
        for track, keypoints in confirmed:
            if track.id not in self.engine:
                self._start_track(track, keypoints, frames[track.id], *bodies.get(track.id, (None, None)))
        result = self.engine.step(frames)
        self.skipped_frames += len(result.skipped)
        self.last_skipped = result.skipped
        people = []
        for track in tracks:
            ctx = self._contexts.get(track.id)
            out = result.outputs.get(track.id)
            if out is not None and ctx is not None:
                self._update_world(ctx, out, world_from_camera)
            people.append(self._result(track, ctx, out, stamp))
        return people

    def _add_features(self, rgb: np.ndarray, frames: dict[int, FrameInput]
                      ) -> dict[int, tuple[InitialBody, InitialBody | None]]:
        """HMR2.0 on every stepped person's WHAM box (the crop the official pipeline uses, here causal).

        Sets each frame's feature (and flipped feature with flip evaluation); returns each person's body
        estimate (and the mirrored crop's) for tracks that start now. Boxes too small to crop get none.
        """
        ids = [tid for tid, f in frames.items() if 200.0 * float(f.bbox[2]) >= MIN_CROP_PX]
        if not ids:
            return {}
        boxes = np.stack([frames[tid].bbox.double().numpy() for tid in ids])
        result = self.features(rgb, boxes)
        flipped = self.features(rgb, boxes, flip=True) if self.flip_eval else None
        bodies = {}
        for i, tid in enumerate(ids):
            frames[tid].feature = torch.as_tensor(result.feature[i])
            if flipped is not None:
                frames[tid].flipped_feature = torch.as_tensor(flipped.feature[i])
            if tid not in self.engine:
                bodies[tid] = (result.initial_body(i), None if flipped is None else flipped.initial_body(i))
        return bodies

    def _start_track(self, track: Track, keypoints: np.ndarray, frame: FrameInput, body: InitialBody | None,
                     flipped_body: InitialBody | None) -> None:
        det = track.detection
        body = body or det.initial_body or default_initial_body(keypoints)
        flipped = None
        if self.flip_eval:
            mirror = flipped_body or det.flipped_initial_body or mirrored_body(body)
            flipped = (mirror.global_orient, mirror.body_pose, mirror.betas, frame.flipped_x)
        use_features = self.features is not None or det.feature is not None
        self.engine.add_track(track.id, make_track_init(
            self.net.smpl, torch.as_tensor(body.global_orient), torch.as_tensor(body.body_pose),
            torch.as_tensor(body.betas), frame.x, flipped=flipped, use_features=use_features))

    def _update_world(self, ctx: _TrackContext, out: FrameOutput, world_from_camera: Transform | None) -> None:
        root_wham = out.poses_root_world.double().numpy()      # refined, y-down: the engine runs without y-up
        trans_wham = out.trans_world.double().numpy()
        if world_from_camera is None:
            world = place_in_wham_world(root_wham, trans_wham)
        else:
            world = place_with_camera_pose(out.poses_root_cam.double().numpy(), out.trans_cam.double().numpy(),
                                           root_wham, world_from_camera)
        velocity = world.R_world_wham @ (trans_wham - ctx.last_trans_wham) * TRAIN_FPS
        innovation = velocity - ctx.velocity
        if out.frame_index > 0:
            ctx.innovation_var = 0.9 * ctx.innovation_var + 0.1 * innovation ** 2
        ctx.velocity, ctx.last_trans_wham = velocity, trans_wham
        ctx.last_output, ctx.last_world = out, world

    def _result(self, track: Track, ctx: _TrackContext | None, out: FrameOutput | None, stamp: float) -> PersonResult:
        if ctx is None or ctx.last_output is None:
            return PersonResult(track.id, track.state, track.age, stamp - track.last_seen, track.detection, None, None,
                                np.zeros(3), np.eye(3) * 1e6)
        cov = np.diag(np.maximum(ctx.innovation_var, VELOCITY_STD_FLOOR ** 2))
        return PersonResult(track.id, track.state, track.age, stamp - track.last_seen, track.detection,
                            out if out is not None else ctx.last_output, ctx.last_world, ctx.velocity.copy(), cov)
