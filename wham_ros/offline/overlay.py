"""The overlay video: every person's mesh drawn over the input image, with ids, 2D skeletons and a top view.

    with OverlayWriter("out/overlay.mp4", (w, h), fps, body_model.faces_tensor.numpy()) as video:
        for rgb, people in frames:                          # people: HumanPipeline.process(...)
            video.add(rgb, people, focal, principal, body_model)

Each frame: the input image; the mesh of every person observed in it (``time_since_seen == 0``
and a WHAM estimate), rendered with depth (people occlude each other correctly) through the
pinhole camera the pipeline used (``focal`` in pixels, ``principal`` point in pixels, optical
frame), in the person's colour (:func:`~wham_ros.offline.render.track_colour`, shared with
the trajectory plot and RViz markers); the detection's COCO-17 skeleton and the id above the box
(tentative tracks in grey, without id). With ``side_panel`` a square panel (image height wide)
is appended on the right: the top view (x right, y up, metres, z-up output world) of each
person's path so far and their current position.

The video goes to a temporary name beside ``path`` and is renamed by :meth:`OverlayWriter.close`.
Codec: H.264 (``avc1``) where OpenCV's FFmpeg has an encoder for it, else MPEG-4 Part 2 (``mp4v``),
which the pip wheel of opencv-python-headless provides.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from types import TracebackType

import cv2
import numpy as np
import torch

from wham_ros.errors import WhamError
from wham_ros.geometry.frames import R_ROS_FROM_WHAM
from wham_ros.offline.render import Camera, MeshRenderer, outward_faces, track_colour
from wham_ros.perception.base import check_rgb
from wham_ros.pipeline import PersonResult
from wham_ros.stream.inputs import KEYPOINT_THRESHOLD

#: COCO-17 skeleton (keypoint index pairs)
COCO_SKELETON = ((5, 7), (7, 9), (6, 8), (8, 10), (5, 6), (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14),
                 (14, 16), (0, 1), (0, 2), (1, 3), (2, 4))
#: fourccs tried in order: H.264 plays in browsers; mp4v is what OpenCV's pip wheel can always encode
FOURCCS = ("avc1", "mp4v")
TENTATIVE_BGR = (160, 160, 160)
PANEL_BGR = (38, 38, 38)
_working_fourcc: dict[str, str] = {}      # container extension -> the first fourcc that opened (probe once)


class OverlayError(WhamError):
    """The overlay video cannot be written (no codec, wrong image size, writer closed)."""


def _bgr(track_id: int) -> tuple[int, int, int]:
    r, g, b = track_colour(track_id)
    return int(255 * b), int(255 * g), int(255 * r)


def _open_video(path: str, fps: float, size: tuple[int, int]) -> tuple[cv2.VideoWriter, str]:
    """A VideoWriter at ``path`` with the first fourcc of :data:`FOURCCS` this OpenCV can encode."""
    ext = os.path.splitext(path)[1].lower()
    candidates = [_working_fourcc[ext]] if ext in _working_fourcc else list(FOURCCS)
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)   # a missing encoder is expected here
    try:
        for fourcc in candidates:
            writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), float(fps), size)
            if writer.isOpened():
                _working_fourcc[ext] = fourcc
                return writer, fourcc
            writer.release()
    finally:
        cv2.utils.logging.setLogLevel(level)
    raise OverlayError(f"OpenCV cannot encode {path} with any of {', '.join(candidates)} at {size[0]}x{size[1]}")


def _grid_step(extent: float) -> float:
    """A 1-2-5 grid spacing (m) giving about 4 to 10 lines over ``extent`` metres."""
    step = 10.0 ** np.floor(np.log10(max(extent, 1e-6) / 4))
    for factor in (1.0, 2.0, 5.0):
        if extent / (step * factor) <= 10:
            return step * factor
    return step * 10


class OverlayWriter:
    """Writes the overlay video (see the module docstring) frame by frame.

    size: (width, height) of the input images; fps: frame rate of the video; body_faces (F, 3): the
    body model's triangles (oriented once against its rest mesh at the first frame, so hidden
    back faces are skipped).
    """

    def __init__(self, path: str, size: tuple[int, int], fps: float, body_faces: np.ndarray, *,
                 side_panel: bool = True) -> None:
        self.path = path
        self.width, self.height = (int(v) for v in size)
        if self.width <= 0 or self.height <= 0 or not fps > 0:
            raise OverlayError(f"overlay size {size} and fps {fps} must be positive")
        self.side_panel = side_panel
        self.panel = self.height if side_panel else 0
        self._faces = np.asarray(body_faces, dtype=np.int64)
        self._oriented = False
        self._renderers: dict[int, MeshRenderer] = {}
        self._paths: dict[int, list[np.ndarray]] = {}
        self._last_step: dict[int, int] = {}
        self._own_worlds = False
        self.frames = 0
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        stem, ext = os.path.splitext(os.path.basename(path))
        # the extension stays last: FFmpeg picks the container from it
        self._tmp = os.path.join(folder, f".{stem}.{os.getpid()}.partial{ext or '.mp4'}")
        try:
            self._video, self.fourcc = _open_video(self._tmp, fps, (self.width + self.panel, self.height))
        except BaseException:
            if os.path.exists(self._tmp):
                os.unlink(self._tmp)
            raise

    # ------------------------------------------------------------------ per frame
    @staticmethod
    def shown(people: Sequence[PersonResult]) -> list[PersonResult]:
        """The people whose mesh is drawn: observed in this image and with a WHAM estimate."""
        return [p for p in people if p.output is not None and p.time_since_seen == 0]

    @staticmethod
    def body_vertices(people: Sequence[PersonResult], body_model) -> np.ndarray:
        """Camera-frame meshes (N, V, 3) in metres of ``people`` (the engine's ``verts_cam`` when it made them)."""
        if not people:
            return np.zeros((0, body_model.num_vertices, 3))
        outs = [p.output for p in people]
        if all(o.verts_cam is not None for o in outs):
            hip_centred = torch.stack([o.verts_cam for o in outs])
        else:
            dev = body_model.v_template
            with torch.no_grad():
                hip_centred = body_model.get_output(torch.stack([o.poses_root_cam for o in outs]).to(dev)[:, None],
                                                    torch.stack([o.poses_body for o in outs]).to(dev),
                                                    torch.stack([o.betas for o in outs]).to(dev)).vertices
        trans = torch.stack([o.trans_cam for o in outs]).to(hip_centred)
        return (hip_centred + trans[:, None]).double().cpu().numpy()

    def _renderer(self, count: int, V: int) -> MeshRenderer:
        """A renderer of ``count`` bodies of V vertices as one mesh, so one z-buffer resolves who is in front."""
        if count not in self._renderers:
            faces = np.concatenate([self._faces + k * V for k in range(count)])
            self._renderers[count] = MeshRenderer(faces, self.width, self.height, cull_back=True)
        return self._renderers[count]

    def compose(self, rgb: np.ndarray, people: Sequence[PersonResult], focal: float,
                principal: tuple[float, float], vertices: np.ndarray) -> np.ndarray:
        """One overlay frame, BGR (H, W + panel, 3) uint8.

        vertices (N, V, 3): the camera-frame meshes of :meth:`shown` people (:meth:`body_vertices`).
        """
        check_rgb(rgb, "OverlayWriter")
        if rgb.shape[:2] != (self.height, self.width):
            raise OverlayError(f"overlay of {self.width}x{self.height} got an image of "
                               f"{rgb.shape[1]}x{rgb.shape[0]}")
        shown = self.shown(people)
        if len(vertices) != len(shown):
            raise OverlayError(f"{len(vertices)} meshes for {len(shown)} shown people")
        image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if shown:
            K = np.array([[focal, 0.0, principal[0]], [0.0, focal, principal[1]], [0.0, 0.0, 1.0]])
            camera = Camera(K, np.eye(3), np.zeros(3), self.width, self.height)
            V, F = vertices.shape[1], len(self._faces)
            if not self._oriented:
                if int(self._faces.max()) >= V:
                    raise OverlayError(f"body_faces index vertex {int(self._faces.max())}, the meshes have {V}")
                self._faces, self._oriented = outward_faces(vertices[0], self._faces), True
            colours = np.repeat(np.array([_bgr(p.track_id) for p in shown], dtype=np.float64) / 255.0, F, axis=0)
            image = self._renderer(len(shown), V).render(vertices.reshape(-1, 3), camera, face_colors=colours,
                                                      background=image)
        for person in people:
            if person.time_since_seen == 0:
                self._draw_person(image, person)
        if not self.side_panel:
            return image
        self._update_paths(people)
        return np.concatenate((image, self._panel(people)), axis=1)

    def _draw_person(self, image: np.ndarray, person: PersonResult) -> None:
        confirmed = person.output is not None
        colour = _bgr(person.track_id) if confirmed else TENTATIVE_BGR
        kp = np.asarray(person.detection.keypoints, dtype=np.float64)
        seen = kp[:, 2] > KEYPOINT_THRESHOLD
        thickness = max(1, round(self.height / 240))
        points = np.round(kp[:, :2]).astype(np.int32)
        edges = [(tuple(points[a]), tuple(points[b])) for a, b in COCO_SKELETON if seen[a] and seen[b]]
        # a dark outline keeps the lines visible over the mesh, which has the same colour
        for width, line_colour in ((thickness + 2, (0, 0, 0)), (thickness, colour)):
            for start, end in edges:
                cv2.line(image, start, end, line_colour, width, cv2.LINE_AA)
        for k in np.nonzero(seen)[0]:
            cv2.circle(image, tuple(points[k]), thickness + 1, (255, 255, 255), -1, cv2.LINE_AA)
        if not confirmed:
            return
        x0, y0 = (int(v) for v in np.asarray(person.detection.bbox)[:2])
        scale = 0.5 * self.height / 360
        org = (max(x0, 0), max(y0 - 6, int(22 * scale) + 2))
        cv2.putText(image, str(person.track_id), org, cv2.FONT_HERSHEY_SIMPLEX, scale * 1.4, (0, 0, 0),
                    thickness + 2, cv2.LINE_AA)
        cv2.putText(image, str(person.track_id), org, cv2.FONT_HERSHEY_SIMPLEX, scale * 1.4, colour, thickness,
                    cv2.LINE_AA)

    def _update_paths(self, people: Sequence[PersonResult]) -> None:
        for p in people:
            if p.world is None or p.output is None or p.output.frame_index <= self._last_step.get(p.track_id, -1):
                continue            # no estimate, or a lost frame repeating the last one
            self._last_step[p.track_id] = p.output.frame_index
            self._paths.setdefault(p.track_id, []).append(np.asarray(p.world.position[:2], dtype=np.float64))
            # without TF a person is placed in their own WHAM world, turned z-up by exactly this rotation
            self._own_worlds |= bool(np.array_equal(p.world.R_world_wham, R_ROS_FROM_WHAM))

    def _panel(self, people: Sequence[PersonResult]) -> np.ndarray:
        side = self.panel
        panel = np.empty((side, side, 3), np.uint8)
        panel[:] = PANEL_BGR
        scale_text = 0.45 * side / 360
        cv2.putText(panel, "top view (m)" + ("  own worlds (no TF)" if self._own_worlds else ""),
                    (8, int(18 * side / 360)), cv2.FONT_HERSHEY_SIMPLEX, scale_text, (220, 220, 220), 1, cv2.LINE_AA)
        if not self._paths:
            return panel
        everything = np.concatenate([np.stack(p) for p in self._paths.values()])
        lo, hi = everything.min(axis=0), everything.max(axis=0)
        centre, extent = (lo + hi) / 2, max(float((hi - lo).max()) * 1.2, 4.0)     # at least 4 m across
        margin = 0.08 * side
        scale = (side - 2 * margin) / extent

        def to_px(xy: np.ndarray) -> np.ndarray:
            # x right, y up: image rows grow downwards
            return np.stack((side / 2 + (xy[..., 0] - centre[0]) * scale,
                             side / 2 - (xy[..., 1] - centre[1]) * scale), axis=-1)

        step = _grid_step(extent)
        first = np.floor((centre - extent / 2) / step) * step
        for k in range(int(extent / step) + 2):
            x, y = to_px(first + k * step)
            cv2.line(panel, (int(x), 0), (int(x), side), (70, 70, 70), 1)
            cv2.line(panel, (0, int(y)), (side, int(y)), (70, 70, 70), 1)
        cv2.putText(panel, f"grid {step:g} m", (8, side - 8), cv2.FONT_HERSHEY_SIMPLEX, scale_text, (160, 160, 160), 1,
                    cv2.LINE_AA)
        now = {p.track_id for p in self.shown(people)}
        for track_id, path in self._paths.items():
            colour = _bgr(track_id)
            pts = np.round(to_px(np.stack(path)) * 16).astype(np.int32)      # 4 fractional bits: smooth lines
            cv2.polylines(panel, [pts.reshape(-1, 1, 2)], False, colour, 2, cv2.LINE_AA, shift=4)
            end = tuple(int(v) for v in np.round(to_px(path[-1])))
            if track_id in now:
                cv2.circle(panel, end, max(4, side // 60), colour, -1, cv2.LINE_AA)
                cv2.putText(panel, str(track_id), (end[0] + 6, end[1] - 6), cv2.FONT_HERSHEY_SIMPLEX, scale_text,
                            colour, 1, cv2.LINE_AA)
        return panel

    def add(self, rgb: np.ndarray, people: Sequence[PersonResult], focal: float, principal: tuple[float, float],
            body_model) -> None:
        """Draw and append one frame: rgb (H, W, 3) uint8 input image, ``people`` from ``HumanPipeline.process``
        on it, the pinhole ``focal`` (px) and ``principal`` point (px) it used, body_model: ``net.smpl``."""
        if self._video is None:
            raise OverlayError(f"{self.path}: add() after close()")
        frame = self.compose(rgb, people, focal, principal, self.body_vertices(self.shown(people), body_model))
        self._video.write(frame)
        self.frames += 1

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> str:
        """Finish the video and move it to ``path``; returns ``path``."""
        if self._video is None:
            raise OverlayError(f"{self.path}: already closed")
        self._video.release()
        self._video = None
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Stop and delete the partial video (``path`` is left as it was)."""
        if self._video is not None:
            self._video.release()
            self._video = None
            if os.path.exists(self._tmp):
                os.unlink(self._tmp)

    def __enter__(self) -> OverlayWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
