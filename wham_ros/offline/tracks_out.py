"""Per-person result files in the official demo's form (``wham_<id>.npz``) and a top-view trajectory plot.

:class:`TrackRecorder` collects, for every confirmed person and every frame in which WHAM
stepped that person (lost frames, which repeat the last estimate, are left out), the
quantities the official demo saves in ``wham_output.pkl`` under the same key names and shapes
(T = that person's recorded frames, V = the body model's vertices):

=============  ==========  ============================================================================
key            shape       meaning
=============  ==========  ============================================================================
pose           (T, 72)     axis-angle (rad): SMPL root orientation in the camera frame, then 23 body joints
trans          (T, 3)      SMPL ``transl`` in the camera frame (m): hip midpoint minus the body's offset,
                           so ``SMPL(pose, betas, transl=trans)`` puts the body where the camera saw it
pose_world     (T, 72)     axis-angle: root orientation in the person's WHAM world (y up), then the body
trans_world    (T, 3)      hip midpoint in the person's WHAM world (y up), m
betas          (T, 10)     shape coefficients (per frame, as WHAM estimates them)
verts          (T, V, 3)   mesh in the camera frame (m); only when recorded with ``verts=True``
frame_ids      (T,)        input frame index (0-based) of each row
=============  ==========  ============================================================================

Extras of this package (not in the official file):

=================  ===========  ========================================================================
stamps             (T,)         input stamp of each row (s)
contact            (T, 4)       raw foot-contact scores (left toe, left heel, right toe, right heel), > 0.5
trans_cam          (T, 3)       hip midpoint in the camera frame (m) (WHAM's ``trans_cam``)
joints_cam         (T, 31, 3)   WHAM's 31 joints (COCO-17 + 14) in the camera frame (m)
joints_world       (T, 31, 3)   the same joints in the person's WHAM world (y up), like ``trans_world``
bbox               (T, 4)       detection box x_min, y_min, x_max, y_max (px)
keypoints          (T, 17, 3)   detected COCO-17 keypoints x, y (px), confidence
ros_trans_world    (T, 3)       hip midpoint in the node's output world (below), m
ros_root_world     (T, 3)       axis-angle of the SMPL root orientation in that world
ros_velocity       (T, 3)       root velocity in that world (m/s)
ros_world_frame    (T,)         that world's frame name (the TF world, or ``wham_world_<id>``)
track_id           ()           the person's id (the node's ``Human.id``, the ``body_<id>`` TF frame)
=================  ===========  ========================================================================

Frames. Camera frame = the image's optical frame (x right, y down, z forward), as in WHAM.
WHAM world = each person's own world of WHAM's trajectory: axes of the camera frame at the
person's first frame (the pipeline starts tracks like the official demo, which takes that camera
as level), origin at the person's position before that frame. WHAM runs it y-down
(``FrameOutput.poses_root_world`` and ``trans_world`` are y-down in
:class:`~wham_ros.pipeline.HumanPipeline`); the files hold it turned y-up exactly as the official
demo's ``return_y_up`` does: (x, y, z) -> (x, -y, -z). The ``ros_*`` keys
are what the node publishes (``PersonResult.world``): the TF world frame (z up, shared by everyone)
when the camera's pose was known, else each person's WHAM world turned z-up (x = WHAM +z, y = WHAM
-x, z = up), named ``wham_world_<id>``.

Arrays are float32 like the official file, except ``stamps`` (float64) and ``frame_ids`` (int64);
files load with ``np.load(path)`` (no pickles).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import BinaryIO

import numpy as np
import torch

from wham_ros.geometry.rotations import matrix_to_axis_angle
from wham_ros.offline.render import track_colour
from wham_ros.pipeline import PersonResult

#: WHAM's y-down world -> the official demo's y-up world (rotation by pi about x)
Y_UP = np.diag([1.0, -1.0, -1.0])
OFFICIAL_KEYS = ("pose", "trans", "pose_world", "trans_world", "betas", "verts", "frame_ids")


def _write_atomically(path: str, write: Callable[[BinaryIO], object]) -> None:
    """``write(file)`` into a temporary file beside ``path``, renamed to ``path`` once complete."""
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{name}.{os.getpid()}.partial")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _axis_angle(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 3) axis-angle."""
    return matrix_to_axis_angle(torch.as_tensor(R, dtype=torch.float64)).numpy()


class TrackRecorder:
    """Collects every person's per-frame results for :meth:`write_npz` and :func:`trajectories_png`.

    body_model: the pipeline's (``net.smpl``), used for SMPL's offset (``trans``) and, with
    ``verts=True``, the camera-frame mesh (V x 3 float32 per person and frame: 83 kB for SMPL,
    so about 2.5 MB per person per second of 30 Hz input).
    """

    def __init__(self, body_model, *, verts: bool = False) -> None:
        self.body_model, self.verts = body_model, verts
        self._rows: dict[int, list[dict[str, np.ndarray]]] = {}
        self._last_step: dict[int, int] = {}

    @property
    def ids(self) -> list[int]:
        """Track ids with at least one recorded frame, ascending."""
        return sorted(self._rows)

    def add(self, frame_index: int, stamp: float, people: Sequence[PersonResult], world_frame: str | None = None
            ) -> None:
        """Record one input frame's people (``HumanPipeline.process``'s result).

        frame_index: the input frame's index; stamp: its time (s); world_frame: the TF world the people
        were placed in, None when they were not (each in its own ``wham_world_<id>``).
        """
        fresh = [p for p in people if p.output is not None and p.world is not None
                 and p.output.frame_index > self._last_step.get(p.track_id, -1)]
        if not fresh:
            return
        outs = [p.output for p in fresh]
        root_cam = torch.stack([o.poses_root_cam for o in outs]).to(self.body_model.v_template)
        body = torch.stack([o.poses_body for o in outs]).to(self.body_model.v_template)
        betas = torch.stack([o.betas for o in outs]).to(self.body_model.v_template)
        with torch.no_grad():
            posed = (self.body_model.get_output if self.verts else self.body_model.get_joints)(
                root_cam[:, None], body, betas)
        offsets = posed.offset.double().cpu().numpy()
        for k, (person, out) in enumerate(zip(fresh, outs)):
            self._last_step[person.track_id] = out.frame_index
            root_cam_k = out.poses_root_cam.double().numpy()
            trans_cam = out.trans_cam.double().numpy()
            root_world = Y_UP @ out.poses_root_world.double().numpy()
            trans_world = Y_UP @ out.trans_world.double().numpy()
            body_aa = _axis_angle(out.poses_body.double().numpy()).reshape(69)
            joints = out.joints.double().numpy()                  # hip-centred, camera orientation
            # camera orientation -> world orientation of the same body: R_world_root R_cam_root^T
            world_from_cam = root_world @ root_cam_k.T
            world = person.world
            row = {
                "pose": np.concatenate((_axis_angle(root_cam_k), body_aa)),
                "trans": trans_cam - offsets[k],
                "pose_world": np.concatenate((_axis_angle(root_world), body_aa)),
                "trans_world": trans_world,
                "betas": out.betas.double().numpy(),
                "frame_ids": np.int64(frame_index),
                "stamps": np.float64(stamp),
                "contact": out.contact.double().numpy(),
                "trans_cam": trans_cam,
                "joints_cam": joints + trans_cam,
                "joints_world": joints @ world_from_cam.T + trans_world,
                "bbox": np.asarray(person.detection.bbox, dtype=np.float64),
                "keypoints": np.asarray(person.detection.keypoints, dtype=np.float64),
                "ros_trans_world": world.position,
                "ros_root_world": _axis_angle(world.smpl_R),
                "ros_velocity": np.asarray(person.velocity, dtype=np.float64),
                # the node's name for a person's own world (ros.messages.fallback_world_frame)
                "ros_world_frame": np.str_(world_frame or f"wham_world_{person.track_id}"),
            }
            if self.verts:
                row["verts"] = posed.vertices[k].double().cpu().numpy() + trans_cam
            self._rows.setdefault(person.track_id, []).append(row)

    def arrays(self, track_id: int) -> dict[str, np.ndarray]:
        """One person's recording as the arrays :meth:`write_npz` stores (see the module docstring)."""
        rows = self._rows.get(track_id)
        if not rows:
            raise KeyError(f"no frames recorded for track {track_id} (recorded: {self.ids})")
        out = {}
        for key in rows[0]:
            stacked = np.stack([r[key] for r in rows])
            if stacked.dtype == np.float64 and key != "stamps":
                stacked = stacked.astype(np.float32)
            out[key] = stacked
        out["track_id"] = np.int64(track_id)
        return out

    def write_npz(self, folder: str) -> list[str]:
        """Write ``wham_<id>.npz`` per person into ``folder`` (created if needed); returns the paths, by id.

        Each file is written under a temporary name in ``folder`` and renamed when complete.
        """
        os.makedirs(folder, exist_ok=True)
        paths = []
        for track_id in self.ids:
            path = os.path.join(folder, f"wham_{track_id}.npz")
            _write_atomically(path, lambda fh, k=track_id: np.savez(fh, **self.arrays(k)))
            paths.append(path)
        return paths


def trajectories_png(recorder: TrackRecorder, path: str, camera_path: np.ndarray | None = None) -> str:
    """Top view of everyone's path in the output world (x, y in metres, z up, equal axes) as a PNG.

    One colour per person (the overlay's and the markers'), a circle at the start, a square at the end
    with the id; camera_path (N, 2 or 3): the camera's positions in the same (TF) world, when known.
    Without TF every person is in their own world (origins not shared), which the title says.
    Written under a temporary name and renamed; returns ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 7), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    own_worlds = False
    for track_id in recorder.ids:
        a = recorder.arrays(track_id)
        xy = a["ros_trans_world"][:, :2]
        own_worlds |= any(str(f).startswith("wham_world_") for f in a["ros_world_frame"])
        colour = track_colour(track_id)
        ax.plot(xy[:, 0], xy[:, 1], "-", color=colour, lw=2, label=f"person {track_id} ({len(xy)} frames)")
        ax.plot(*xy[0], "o", color=colour, ms=8, mec="k")
        ax.plot(*xy[-1], "s", color=colour, ms=8, mec="k")
        ax.annotate(str(track_id), xy[-1], xytext=(6, 6), textcoords="offset points", fontsize=11, weight="bold")
    if camera_path is not None and len(camera_path):
        cam = np.asarray(camera_path, dtype=np.float64)[:, :2]
        ax.plot(cam[:, 0], cam[:, 1], "--", color="0.35", lw=1.5, label="camera")
        ax.plot(*cam[-1], "^", color="0.35", ms=9)
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(True, alpha=0.4)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title("top view (o start, \u25a1 end)" + ("\nno TF: each person in their own world" if own_worlds else ""))
    if recorder.ids or camera_path is not None:
        ax.legend(loc="best", fontsize=8)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    _write_atomically(path, lambda fh: fig.savefig(fh, format="png"))
    return path
