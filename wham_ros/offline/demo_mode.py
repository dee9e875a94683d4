"""``wham-ros run --demo-conventions``: the official demo's offline preprocessing, for comparing with its outputs.

The causal runner feeds WHAM what a live node has at each frame. The official demo (``demo.py``) instead sees
the whole video before it runs the network, and two of its inputs depend on later frames:

* the person box is a **centred** median over k = 2*floor(floor(fps/2)/2)+1 track entries (15 at 30 fps),
  zero-padded at both ends (:func:`wham_ros.stream.inputs.demo_boxes`), so it looks floor(k/2) entries ahead;
* ``cam_angvel`` entry t is the camera rotation from frame t to frame **t+1** times the video fps (no
  rescaling to 30 fps), and the last frame gets a copy of entry 0 (:func:`demo_cam_angvel`). The demo computes
  it for the whole video and does **not** slice it by the track's frame ids: a person who appears at frame 100
  is fed the rotations of frames 0, 1, ... (reproduced by default, ``slice_cam_angvel=True`` fixes it).

:class:`DemoRun` reproduces that in passes over the recording:

1. **Tracking** (:meth:`DemoRun.record`): every frame goes through the node's own
   :class:`~wham_ros.session.CameraSession` and :class:`~wham_ros.pipeline.HumanPipeline`, unchanged: same front
   end, same tracker, same one-euro keypoint smoothing, the same six-confident-keypoints rule, the same camera
   rotation source (gyro, TF, visual or static). For each confirmed track the keypoints the causal input builder
   received are recorded (the builder is wrapped), and per frame the session's camera rotation. The causal WHAM
   engine still runs (its outputs are discarded); HMR2.0 is switched off in this pass (its crops would be the
   causal boxes).
2. **Features** (:meth:`DemoRun.add_image`, only when the pipeline has HMR2.0, ``needs_images``): the frames
   are read again and HMR2.0 runs on the demo boxes (and their mirrored crops), as the demo's second pass does;
   a track's first entry also gives its initial body.
3. **WHAM** (:meth:`DemoRun.solve`): per track, the official-format inputs (:func:`track_inputs`) and one batch
   forward over the whole track, :func:`~wham_ros.model.wham_forward` or, with flip evaluation (the demo
   default), :func:`~wham_ros.model.flip_eval_forward`, with the official integrator-residual rule.
4. **Writing**: :meth:`DemoRun.frame_result` gives each processed frame's
   :class:`~wham_ros.session.FrameResult`, people replaced by the demo-mode ones, for the runner's writers;
   :meth:`DemoRun.replay` finds the processed frames in a fresh read of the recording.

Other demo conventions kept: the official intrinsics (f = sqrt(W^2 + H^2), image centre, CameraInfo ignored
as the demo ignores its calibration), ``init_root`` = the camera-frame root of the first entry (each person's
world = its first camera frame, y down; placed in ROS as the causal runner places an unanchored person, or
through TF when the camera pose is known), and tracks with fewer than 30 entries dropped. Without HMR2.0 (the
embedded front end) the network gets zero features, which under the official rule disables the integrator
residual for the whole track: the same as the causal engine's no-feature mode; the first body is then the
pipeline's standing default (mirrored for the flipped pass). Outputs stay in WHAM's y-down world internally,
as the causal engine's do.
"""
from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from wham_ros.geometry.camera_motion import TRAIN_FPS, angvel_from_delta
from wham_ros.geometry.frames import place_in_wham_world, place_with_camera_pose
from wham_ros.geometry.rotations import (
    IDENTITY_6D,
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    rot6d_to_matrix,
)
from wham_ros.model.forward import flip_eval_forward, integrator_residual, wham_forward
from wham_ros.model.network import D_FEAT
from wham_ros.perception.base import Detection, InitialBody
from wham_ros.pipeline import VELOCITY_STD_FLOOR, HumanPipeline, default_initial_body, mirrored_body
from wham_ros.session import CameraSession, FrameResult
from wham_ros.stream.inputs import (
    KEYPOINT_THRESHOLD,
    demo_boxes,
    flip_bbox,
    flip_keypoints,
    make_track_init,
    normalize_keypoints,
    official_focal,
)
from wham_ros.stream.state import FrameInput, FrameOutput

#: the demo drops tracks with fewer entries than this (after the whole video)
DEMO_MIN_TRACK_FRAMES = 30


def demo_kernel(fps: float) -> int:
    """The demo's box median kernel: 2*floor(floor(fps/2)/2)+1 (15 at 30 fps, 13 at 25 fps)."""
    return 2 * ((int(fps) // 2) // 2) + 1


def delta_from_angvel(cam_angvel: torch.Tensor, dt: torch.Tensor | float) -> torch.Tensor:
    """Relative rotations Delta R (..., 3, 3) = R_wc(a)^T R_wc(b) over ``dt`` s from the session's ``cam_angvel``.

    Inverts :func:`~wham_ros.geometry.camera_motion.angvel_from_delta` with ``dt`` (the training convention:
    Delta R rescaled to 1/30 s, times 30): the 1/30 s rotation from its 6D rows, its angle scaled back by 30*dt.
    float64.
    """
    a = torch.as_tensor(cam_angvel, dtype=torch.float64)
    eye6 = torch.tensor(IDENTITY_6D, dtype=torch.float64)
    per_frame = rot6d_to_matrix(a / TRAIN_FPS + eye6)
    dt = torch.as_tensor(dt, dtype=torch.float64)
    return axis_angle_to_matrix(matrix_to_axis_angle(per_frame) * (TRAIN_FPS * dt)[..., None])


def demo_cam_angvel(deltas: torch.Tensor, fps: float) -> torch.Tensor:
    """The demo's ``cam_angvel`` (N, 6) of a whole video from its inter-frame rotations.

    deltas (N, 3, 3): entry i = R_wc(i-1)^T R_wc(i) (entry 0 unused). Entry t of the result pairs frames
    (t, t+1): (row6D(deltas[t+1]) - I6) * fps, with no rescaling; the last entry repeats entry 0
    (``convert_dpvo_to_cam_angvel``). A single frame gives zeros.
    """
    deltas = torch.as_tensor(deltas, dtype=torch.float64)
    N = deltas.shape[0]
    if N < 2:
        return torch.zeros(N, 6, dtype=torch.float64)
    out = angvel_from_delta(deltas[1:], None, fps)
    return torch.cat((out, out[:1]), 0)


def official_intrinsics(width: float, height: float) -> torch.Tensor:
    """K (3, 3) the demo gives the network: f = sqrt(W^2 + H^2), principal point at the image centre."""
    f = official_focal(width, height)
    return torch.tensor([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def track_inputs(body_model, keypoints: torch.Tensor, boxes: torch.Tensor, cam_angvel: torch.Tensor,
                 res: tuple[float, float], body: InitialBody, *, features: torch.Tensor | None = None,
                 flipped_body: InitialBody | None = None, flipped_features: torch.Tensor | None = None,
                 threshold: float = KEYPOINT_THRESHOLD) -> tuple[dict, dict | None]:
    """Official network arguments (batch 1) of one whole track, and the flipped ones when ``flipped_body`` is given.

    keypoints (T, 17, 3) px, boxes (T, 3) [cx, cy, s], cam_angvel (T, 6), res (W, H), body: the first entry's
    camera-frame body (init_kp, init_smpl and init_root = its root: the first camera frame is the world).
    features (T, 1024): None gives zeros (the network then runs without the integrator residual, as the
    official code does on all-zero features). Flipped: keypoints left/right swapped with x -> W - x, cx -> W - cx.
    """
    kp = torch.as_tensor(keypoints, dtype=torch.float64)
    boxes = torch.as_tensor(boxes, dtype=torch.float64)
    T = kp.shape[0]
    W, H = float(res[0]), float(res[1])
    x, mask = normalize_keypoints(kp, boxes, (W, H), threshold)
    feats = torch.zeros(T, D_FEAT) if features is None else torch.as_tensor(features, dtype=torch.float32)
    flipped = None
    if flipped_body is not None:
        fx, fmask = normalize_keypoints(flip_keypoints(kp, W), flip_bbox(boxes, W), (W, H), threshold)
        flipped = (flipped_body.global_orient, flipped_body.body_pose, flipped_body.betas, fx[0])
    init = make_track_init(body_model, torch.as_tensor(body.global_orient), torch.as_tensor(body.body_pose),
                           torch.as_tensor(body.betas), x[0], flipped=flipped)
    common = {"init_root": init.init_root.reshape(1, 1, 6),
              "cam_angvel": torch.as_tensor(cam_angvel, dtype=torch.float32).reshape(1, T, 6),
              "cam_intrinsics": official_intrinsics(W, H).reshape(1, 1, 3, 3),
              "res": torch.tensor([[W, H]])}
    inputs = {"x": x[None], "mask": mask[None], "features": feats[None],
              "init_kp": init.init_kp.reshape(1, 1, 88), "init_smpl": init.init_smpl.reshape(1, 1, 24, 6),
              "bbox": boxes.to(torch.float32)[None], **common}
    if flipped is None:
        return inputs, None
    f_feats = torch.zeros(T, D_FEAT) if flipped_features is None else torch.as_tensor(flipped_features,
                                                                                     dtype=torch.float32)
    flipped_inputs = {"x": fx[None], "mask": fmask[None], "features": f_feats[None],
                      "init_kp": init.flipped_init_kp.reshape(1, 1, 88),
                      "init_smpl": init.flipped_init_smpl.reshape(1, 1, 24, 6),
                      "bbox": flip_bbox(boxes, W).to(torch.float32)[None], **common}
    return inputs, flipped_inputs


def frame_outputs(net, out: dict[str, torch.Tensor], features: torch.Tensor) -> list[FrameOutput]:
    """The batch forward's outputs (batch 1, y-down) as per-entry :class:`FrameOutput`, as the engine makes them
    (``joints`` from the body model, no mesh)."""
    T = out["pose"].shape[1]
    root_cam, body, betas = out["poses_root_cam"], out["poses_body"], out["betas"][0]
    with torch.no_grad():
        joints = net.smpl.get_joints(root_cam, body, betas).joints
    residual = integrator_residual(features, "official")[0, :, 0].cpu() & bool(net.integrator.enabled)
    cpu = lambda t: t.detach().to("cpu")
    return [FrameOutput(
        frame_index=t, pose=cpu(out["pose"][0, t]), betas=cpu(betas[t]), cam=cpu(out["cam"][0, t]),
        contact=cpu(out["contact"][0, t]), poses_root_cam=cpu(root_cam[t, 0]), poses_body=cpu(body[t]),
        trans_cam=cpu(out["trans_cam"][t]), joints=cpu(joints[t]), verts_cam=None, feet=cpu(out["feet"][0, t]),
        pose_root=cpu(out["pose_root"][0, t + 1]), vel_root=cpu(out["vel_root"][0, t]),
        pose_root_refined=cpu(out["poses_root_r6d_refined"][0, t + 1]),
        vel_root_refined=cpu(out["vel_root_refined"][0, t]), poses_root_world=cpu(out["poses_root_world"][0, t]),
        trans_world=cpu(out["trans_world"][0, t]), feature_held=False, residual=bool(residual[t]),
    ) for t in range(T)]


class _RecordingBuilder:
    """A track's causal :class:`~wham_ros.stream.inputs.TrackInputBuilder`, remembering what its last
    ``frame`` call got (the smoothed keypoints) and gave."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.pending: tuple[np.ndarray, FrameInput] | None = None

    def frame(self, keypoints, cam_angvel, feature=None, flipped_feature=None):
        out = self.inner.frame(keypoints, cam_angvel, feature, flipped_feature)
        self.pending = None if out is None else (np.array(keypoints, dtype=np.float64), out)
        return out

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


@dataclass
class TrackRecord:
    """One confirmed track as pass 1 saw it: the processed-frame indices where the causal pipeline stepped it,
    the keypoints (17, 3) it stepped with (after smoothing), the causal inputs, and the detections."""

    track_id: int
    frames: list[int] = field(default_factory=list)
    keypoints: list[np.ndarray] = field(default_factory=list)
    causal: list[FrameInput] = field(default_factory=list)
    detections: list[Detection] = field(default_factory=list)


@dataclass
class DemoTrack:
    """One track in demo mode: its official-format inputs and per-entry results."""

    record: TrackRecord
    boxes: torch.Tensor                            # (T, 3) demo boxes (float64)
    cam_angvel: torch.Tensor                       # (T, 6) what the network got (float64)
    res: tuple[float, float]
    features: np.ndarray | None = None             # (T, 1024) HMR2.0 on the demo boxes
    flipped_features: np.ndarray | None = None
    body: InitialBody | None = None
    flipped_body: InitialBody | None = None
    inputs: dict | None = None                     # the official network arguments
    flipped_inputs: dict | None = None
    outputs: list[FrameOutput] = field(default_factory=list)
    people: list[tuple] = field(default_factory=list)   # per entry: (world, velocity, velocity_cov)


class DemoRun:
    """The official demo's preprocessing over a recording (see the module docstring for the passes).

    pipeline: the pipeline the session drives; wrap it **before** the first frame (this hooks its input
    builders and switches its HMR2.0 off for the tracking pass; it is then only for this run).
    fps: the video's frame rate (box kernel, cam_angvel scale); None estimates it from the stamps.
    flip_eval: the demo's FLIP_EVAL (on in ``demo.yaml``). slice_cam_angvel: give each track the rotations
    of its own frames (fixes the demo bug; off reproduces it). min_track_frames: shorter tracks are dropped
    (people without output); so is any track shorter than floor(k/2)+1 entries, whose zero-padded median
    box would be zero (the demo never meets one: its 30 is larger).
    """

    def __init__(self, pipeline: HumanPipeline, fps: float | None = None, *, flip_eval: bool = True,
                 slice_cam_angvel: bool = False, min_track_frames: int = DEMO_MIN_TRACK_FRAMES) -> None:
        self.pipeline, self.fps = pipeline, fps
        self.flip_eval, self.slice_cam_angvel, self.min_track_frames = flip_eval, slice_cam_angvel, min_track_frames
        self.net = pipeline.net
        self.features = pipeline.features
        pipeline.features = None                # pass 1 needs no crops; pass 2 crops the demo boxes
        make = pipeline._builder
        pipeline._builder = lambda *a, **k: _RecordingBuilder(make(*a, **k))
        self.records: dict[int, TrackRecord] = {}
        self.tracks: dict[int, DemoTrack] = {}
        self.dropped: dict[int, int] = {}        # track id -> entries, tracks shorter than min_track_frames
        self._results: list[FrameResult] = []
        self._dts: list[float] = []
        self._entries_at: dict[int, list[tuple[int, int]]] = {}
        self._video_angvel: torch.Tensor | None = None
        self._stage = "tracking"
        self._images_seen: set[int] = set()
        self._res: tuple[float, float] | None = None      # (W, H) of the images, from the first track input

    # ---- pass 1 ---------------------------------------------------------------------------------------
    def record(self, index: int, result: FrameResult) -> None:
        """Processed frame ``index`` (0, 1, 2, ... in order) gave ``result`` (``CameraSession.process``)."""
        if self._stage != "tracking":
            raise RuntimeError("record() after the tracking pass ended")
        if index != len(self._results):
            raise ValueError(f"frame {index} recorded, expected {len(self._results)} (every processed frame, in order)")
        prev = self._results[-1].stamp if self._results else None
        self._dts.append(0.0 if prev is None or result.time_jump else result.stamp - prev)
        self._results.append(result)
        people = {p.track_id: p for p in result.people}
        for tid, ctx in self.pipeline._contexts.items():
            builder = ctx.builder
            if not isinstance(builder, _RecordingBuilder) or builder.pending is None:
                continue
            keypoints, causal = builder.pending
            builder.pending = None
            if tid in self.pipeline.last_skipped or tid not in people:   # the causal state did not advance
                continue
            rec = self.records.setdefault(tid, TrackRecord(tid))
            if self._res is None:
                self._res = tuple(float(v) for v in causal.res)
            rec.frames.append(index)
            rec.keypoints.append(keypoints)
            rec.causal.append(causal)
            rec.detections.append(people[tid].detection)

    @property
    def frames(self) -> int:
        """Frames recorded so far."""
        return len(self._results)

    def end_tracking(self) -> None:
        """End the tracking pass: demo boxes and cam_angvel of every kept track (called by the later steps)."""
        if self._stage != "tracking":
            return
        self._stage = "features"
        if not self._results:
            raise ValueError("no frame was recorded")
        if self.fps is None:
            stamps = np.array([r.stamp for r in self._results])
            steps = np.diff(stamps)
            steps = steps[steps > 0]
            self.fps = float(1.0 / np.median(steps)) if len(steps) else TRAIN_FPS
        angvel = np.stack([np.asarray(r.cam_angvel, dtype=np.float64) for r in self._results])
        deltas = delta_from_angvel(torch.from_numpy(angvel), torch.tensor(self._dts, dtype=torch.float64))
        self._video_angvel = demo_cam_angvel(deltas, self.fps)
        # the zero-padded median needs a majority of real values in every window: k // 2 + 1 entries at least
        shortest = max(self.min_track_frames, demo_kernel(self.fps) // 2 + 1)
        for tid, rec in self.records.items():
            T = len(rec.frames)
            if T < shortest:
                self.dropped[tid] = T
                continue
            kp = torch.from_numpy(np.stack(rec.keypoints))
            rows = torch.tensor(rec.frames) if self.slice_cam_angvel else torch.arange(T)   # demo: not sliced
            res = tuple(float(v) for v in rec.causal[0].res)
            self.tracks[tid] = DemoTrack(rec, demo_boxes(kp, self.fps), self._video_angvel[rows], res)
            for j, index in enumerate(rec.frames):
                self._entries_at.setdefault(index, []).append((tid, j))
        if self.features is not None:
            for track in self.tracks.values():
                T = len(track.record.frames)
                track.features = np.zeros((T, D_FEAT), np.float32)
                if self.flip_eval:
                    track.flipped_features = np.zeros((T, D_FEAT), np.float32)

    # ---- pass 2 (HMR2.0 only) -------------------------------------------------------------------------
    @property
    def needs_images(self) -> bool:
        """Whether :meth:`add_image` must see the frames before :meth:`solve` (the pipeline has HMR2.0).

        Ends the tracking pass."""
        self.end_tracking()
        return self.features is not None and bool(self._entries_at)

    def add_image(self, index: int, rgb: np.ndarray) -> None:
        """Frame ``index``'s image again: HMR2.0 on the demo boxes of the tracks seen in it (and their mirrored
        crops with flip evaluation); a track's first entry also gives its initial body."""
        self.end_tracking()
        if self.features is None:
            return
        entries = self._entries_at.get(index, [])
        self._images_seen.add(index)
        if not entries:
            return
        boxes = np.stack([self.tracks[tid].boxes[j].numpy() for tid, j in entries])
        result = self.features(rgb, boxes)
        flipped = self.features(rgb, boxes, flip=True) if self.flip_eval else None
        for i, (tid, j) in enumerate(entries):
            track = self.tracks[tid]
            track.features[j] = result.feature[i]
            if flipped is not None:
                track.flipped_features[j] = flipped.feature[i]
            if j == 0:
                track.body = result.initial_body(i)
                track.flipped_body = None if flipped is None else flipped.initial_body(i)

    # ---- WHAM -----------------------------------------------------------------------------------------
    def solve(self) -> None:
        """The batch forward of every kept track, then each entry's world placement and velocity."""
        self.end_tracking()
        if self._stage == "solved":
            return
        if self.needs_images:
            missing = sorted(set(self._entries_at) - self._images_seen)
            if missing:
                raise RuntimeError(f"HMR2.0 features: add_image() was not given frames {missing[:5]}"
                                   + (" ..." if len(missing) > 5 else ""))
        device = next(self.net.parameters()).device
        for track in self.tracks.values():
            self._solve_track(track, device)
        self._stage = "solved"

    def _solve_track(self, track: DemoTrack, device: torch.device) -> None:
        rec = track.record
        first = rec.detections[0]
        body = track.body or first.initial_body or default_initial_body(rec.keypoints[0])
        flipped_body = None
        if self.flip_eval:
            flipped_body = track.flipped_body or first.flipped_initial_body or mirrored_body(body)
        features = track.features
        flipped_features = track.flipped_features
        if features is None and first.feature is not None:     # a front end that brings its own features
            features = np.stack([d.feature for d in rec.detections])
            if self.flip_eval and first.flipped_feature is not None:
                flipped_features = np.stack([d.flipped_feature for d in rec.detections])
        inputs, flipped = track_inputs(self.net.smpl, torch.from_numpy(np.stack(rec.keypoints)), track.boxes,
                                       track.cam_angvel, track.res, body,
                                       features=None if features is None else torch.from_numpy(features),
                                       flipped_body=flipped_body,
                                       flipped_features=None if flipped_features is None
                                       else torch.from_numpy(flipped_features))
        track.body, track.flipped_body, track.inputs, track.flipped_inputs = body, flipped_body, inputs, flipped
        on = lambda d: {k: v.to(device) for k, v in d.items()}
        if flipped is not None:
            out = flip_eval_forward(self.net, on(inputs), on(flipped))
        else:
            out = wham_forward(self.net, **on(inputs))
        out.pop("verts_cam", None)
        track.outputs = frame_outputs(self.net, out, on(inputs)["features"])
        track.people = self._placements(rec, track.outputs)

    def _placements(self, rec: TrackRecord, outputs: list[FrameOutput]) -> list[tuple]:
        """Per entry (world, velocity, velocity_cov), as ``HumanPipeline._update_world`` / ``_result`` make them."""
        placed = []
        last_trans, velocity, var = np.zeros(3), np.zeros(3), np.zeros(3)
        for index, out in zip(rec.frames, outputs):
            world_from_camera = self._results[index].world_from_camera
            root_wham, trans_wham = out.poses_root_world.double().numpy(), out.trans_world.double().numpy()
            if world_from_camera is None:
                world = place_in_wham_world(root_wham, trans_wham)
            else:
                world = place_with_camera_pose(out.poses_root_cam.double().numpy(), out.trans_cam.double().numpy(),
                                               root_wham, world_from_camera)
            v = world.R_world_wham @ (trans_wham - last_trans) * TRAIN_FPS
            if out.frame_index > 0:
                var = 0.9 * var + 0.1 * (v - velocity) ** 2
            velocity, last_trans = v, trans_wham
            placed.append((world, velocity.copy(), np.diag(np.maximum(var, VELOCITY_STD_FLOOR ** 2))))
        return placed

    # ---- writing --------------------------------------------------------------------------------------
    def frame_result(self, index: int) -> FrameResult:
        """Processed frame ``index``'s result in demo mode, for the runner's writers.

        The pass-1 result with every person's output, world pose and velocity from the demo-mode forward (a
        lost person keeps its last output, as in the causal runner; a dropped short track has none),
        ``cam_angvel`` the demo's entry for this video frame and the official intrinsics.
        """
        if self._stage != "solved":
            raise RuntimeError("frame_result() before solve()")
        base = self._results[index]
        people = []
        for p in base.people:
            track = self.tracks.get(p.track_id)
            j = -1 if track is None else bisect.bisect_right(track.record.frames, index) - 1
            if j < 0:
                people.append(dataclasses.replace(p, output=None, world=None, velocity=np.zeros(3),
                                                  velocity_cov=np.eye(3) * 1e6))
                continue
            world, velocity, cov = track.people[j]
            people.append(dataclasses.replace(p, output=track.outputs[j], world=world, velocity=velocity.copy(),
                                              velocity_cov=cov))
        focal, principal = base.focal, base.principal
        if self._res is not None:
            w, h = self._res
            focal, principal = official_focal(w, h), (w / 2.0, h / 2.0)
        return dataclasses.replace(base, people=people, cam_angvel=self._video_angvel[index].numpy(),
                                   focal=focal, principal=principal)

    def replay(self, events: Iterable, decode: Callable[[object], tuple | None]) -> Iterator[tuple[int, object, tuple]]:
        """The processed frames in a fresh read of the recording: (index, event, decoded) in order.

        events: the recording's events again (``source.events()``); decode(event) -> (rgb, stamp, ...) or None
        for an image that cannot be decoded (the runner's ``_Feeder.image``). Images pass 1 did not process
        (undecodable, out of order) are skipped by matching the stamps in order; stops after the last one.
        """
        want, n = 0, len(self._results)
        for ev in events:
            if want >= n:
                return
            if getattr(ev, "kind", "image") != "image":
                continue
            decoded = decode(ev)
            if decoded is None or decoded[1] != self._results[want].stamp:
                continue
            yield want, ev, decoded
            want += 1
        if want < n:
            raise RuntimeError(f"the recording changed between reads: {n - want} processed frames not found again")


def demo_results(session: CameraSession, frames: Callable[[], Iterable[tuple[np.ndarray, float, str]]],
                 fps: float | None = None, **options) -> tuple[DemoRun, list[FrameResult]]:
    """Demo mode over in-memory frames: ``frames()`` yields (rgb, stamp, camera_frame), and is called once
    for tracking and once more when HMR2.0 needs the images. Returns the :class:`DemoRun` and each processed
    frame's result. ``options``: those of :class:`DemoRun`. (The runner drives :class:`DemoRun` itself.)"""
    demo = DemoRun(session.pipeline, fps, **options)
    for rgb, stamp, camera_frame in frames():
        result = session.process(rgb, stamp, camera_frame)
        if result is not None:
            demo.record(demo.frames, result)
    if demo.needs_images:
        items = ((None, (rgb, stamp)) for rgb, stamp, _ in frames())
        for index, _, (rgb, _) in demo.replay(items, lambda item: item[1]):
            demo.add_image(index, rgb)
    demo.solve()
    return demo, [demo.frame_result(i) for i in range(demo.frames)]

