"""Pictures of corpus clips on the body model: a picture strip (PNG) or a video, headless.

Each panel follows the body with a camera 2.6 m away at a three-quarter view of the clip's
mean heading, eye 1.1 m above a checkerboard floor (0.5 m tiles at y = 0).
"""
from __future__ import annotations

import time

import cv2
import numpy as np
import torch

from wham_ros.geometry.rotations import axis_angle_to_matrix
from wham_ros.mocap.body import posed_vertices
from wham_ros.model.body_model import BodyModel
from wham_ros.offline.render import Camera, MeshRenderer, look_at

DOWN = np.array([0.0, 1.0, 0.0])   # WHAM's world is y down
TILE = 0.5


def floor(center: np.ndarray, tiles: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checkerboard floor around ``center`` (3,): vertices (4n, 3), faces (2n, 3), face colours (2n, 3)."""
    i0 = np.floor(np.array([center[0], center[2]]) / TILE).astype(int) - tiles // 2
    verts, faces, colors = [], [], []
    for a in range(tiles):
        for b in range(tiles):
            x, z = (i0[0] + a) * TILE, (i0[1] + b) * TILE
            k = len(verts)
            verts += [(x, 0.0, z), (x + TILE, 0.0, z), (x + TILE, 0.0, z + TILE), (x, 0.0, z + TILE)]
            faces += [(k, k + 1, k + 2), (k, k + 2, k + 3)]
            shade = 0.82 if (i0[0] + a + i0[1] + b) % 2 else 0.93
            colors += [(shade, shade, shade)] * 2
    return np.array(verts), np.array(faces), np.array(colors)


def clip_vertices(body_model: BodyModel, clip: dict[str, np.ndarray], frames: np.ndarray) -> np.ndarray:
    """World vertices (N, V, 3) of the corpus clip at ``frames`` (N,)."""
    rotations = axis_angle_to_matrix(torch.as_tensor(clip["pose"][frames].astype(np.float64))).numpy()
    return posed_vertices(body_model, rotations, clip["betas"]) + clip["trans"][frames, None]


def heading(clip: dict[str, np.ndarray]) -> np.ndarray:
    """The clip's mean horizontal facing direction (3,) (the body's +z turned into the world)."""
    R = axis_angle_to_matrix(torch.as_tensor(clip["pose"][:, 0].astype(np.float64))).numpy()
    forward = R[:, :, 2].mean(0)
    forward[1] = 0.0
    n = np.linalg.norm(forward)
    return forward / n if n > 1e-6 else np.array([0.0, 0.0, 1.0])


def follow_camera(target: np.ndarray, facing: np.ndarray, width: int, height: int, azimuth: float = 35.0
                  ) -> Camera:
    """Camera 2.6 m from the hip midpoint ``target`` (3,), ``azimuth`` degrees off the facing direction."""
    a = np.radians(azimuth)
    side = np.cross(facing, DOWN)
    direction = np.cos(a) * facing + np.sin(a) * side
    ground = np.array([target[0], 0.0, target[2]])
    eye = ground + 2.6 * direction - 1.1 * DOWN
    return look_at(eye, ground - 0.85 * DOWN, DOWN, focal=0.95 * height, width=width, height=height)


class ClipPainter:
    """Renders frames of one clip: body plus floor, one camera per frame following the body."""

    def __init__(self, body_model: BodyModel, clip: dict[str, np.ndarray], width: int, height: int) -> None:
        self.body_model, self.clip = body_model, clip
        self.width, self.height = width, height
        self.faces = body_model.faces_tensor.numpy().astype(np.int64)
        self.facing = heading(clip)
        self.seconds: list[float] = []

    def frames(self, frames: np.ndarray) -> list[np.ndarray]:
        """RGB images (H, W, 3) of the clip at ``frames``; render times go to ``seconds``."""
        verts = clip_vertices(self.body_model, self.clip, frames)
        hips = self.clip["joints"][frames][:, [1, 2]].mean(axis=1)
        out = []
        for v, hip in zip(verts, hips):
            fv, ff, fc = floor(hip)
            vertices = np.concatenate((v, fv))
            faces = np.concatenate((self.faces, ff + len(v)))
            colors = np.concatenate((np.broadcast_to((0.62, 0.70, 0.86), (len(self.faces), 3)), fc))
            camera = follow_camera(hip, self.facing, self.width, self.height)
            start = time.perf_counter()
            image = MeshRenderer(faces, self.width, self.height).render(vertices, camera, face_colors=colors,
                                                                        background=(246, 248, 252))
            self.seconds.append(time.perf_counter() - start)
            out.append(image)
        return out


def picture_strip(images: list[np.ndarray], labels: list[str]) -> np.ndarray:
    """Panels side by side, each labelled at its top left."""
    panels = []
    for image, label in zip(images, labels):
        panel = image.copy()
        cv2.putText(panel, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (40, 40, 40), 1, cv2.LINE_AA)
        panels.append(panel)
    return np.concatenate(panels, axis=1)
