"""A small headless mesh renderer: rasterisation with a z-buffer and smooth shading, numpy only.

    renderer = MeshRenderer(faces, width=640, height=360)
    image = renderer.render(vertices, camera, background=frame)       # (H, W, 3) uint8

Vertices (V, 3) are in any world frame; the :class:`Camera` maps them to the image with
``x_cam = R x + t`` (x right, y down, z forward: the optical frame) and the pinhole ``K``.
Every triangle is scanned over the pixels of its bounding box at once (vectorised over
all triangles), kept where the pixel centre is inside, depth-tested per pixel (the nearest
perspective-correct depth wins) and shaded with interpolated vertex normals: ambient plus
Lambert light from a head light and a key light, lit from both sides. ``face_colors`` give
each triangle its own colour (a floor's checkerboard), otherwise ``color`` is used.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEAR = 0.05  # m: triangles with a vertex closer than this to the camera plane are dropped


@dataclass(frozen=True)
class Camera:
    """Pinhole camera: K (3, 3), R (3, 3) world -> camera rotation, t (3,), image size in pixels."""

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    width: int
    height: int

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (N, 2) and camera depths (N,) of world points (N, 3)."""
        cam = points @ self.R.T + self.t
        z = cam[:, 2]
        uv = cam @ self.K.T
        return uv[:, :2] / np.where(np.abs(z) < 1e-9, 1e-9, z)[:, None], z


def look_at(eye: np.ndarray, target: np.ndarray, down: np.ndarray, focal: float, width: int, height: int) -> Camera:
    """A camera at ``eye`` looking at ``target``, image y along ``down`` (e.g. +y in WHAM's y-down world)."""
    z = np.asarray(target, float) - np.asarray(eye, float)
    z /= np.linalg.norm(z)
    y = np.asarray(down, float) - (np.asarray(down, float) @ z) * z
    y /= np.linalg.norm(y)
    R = np.stack((np.cross(y, z), y, z))
    K = np.array([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])
    return Camera(K, R, -R @ np.asarray(eye, float), width, height)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (V, 3)."""
    v0, v1, v2 = (vertices[faces[:, k]] for k in range(3))
    n = np.repeat(np.cross(v1 - v0, v2 - v0), 3, axis=0)
    index = faces.ravel()
    out = np.stack([np.bincount(index, weights=n[:, c], minlength=len(vertices)) for c in range(3)], axis=1)
    return out / np.linalg.norm(out, axis=1, keepdims=True).clip(1e-12)


class MeshRenderer:
    """Renders one triangle mesh topology (F, 3) into images of a fixed size."""

    def __init__(self, faces: np.ndarray, width: int, height: int) -> None:
        self.faces = np.asarray(faces, dtype=np.int64)
        self.width, self.height = int(width), int(height)

    def rasterize(self, vertices: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Visible surface per pixel: face index (H, W) (-1 = none), barycentrics (H, W, 3), depth (H, W)."""
        W, H = self.width, self.height
        uv, z = camera.project(np.asarray(vertices, dtype=np.float64))
        tri_uv, tri_z = uv[self.faces], z[self.faces]                       # (F, 3, 2), (F, 3)
        x0, y0 = tri_uv[:, 0, 0], tri_uv[:, 0, 1]
        ex1, ey1 = tri_uv[:, 1, 0] - x0, tri_uv[:, 1, 1] - y0
        ex2, ey2 = tri_uv[:, 2, 0] - x0, tri_uv[:, 2, 1] - y0
        area = ex1 * ey2 - ex2 * ey1
        # pixels whose centres (x + 0.5) can fall inside the triangle
        lo = np.maximum(np.ceil(tri_uv.min(axis=1) - 0.5).astype(np.int64), 0)
        hi = np.minimum(np.floor(tri_uv.max(axis=1) - 0.5).astype(np.int64), [W - 1, H - 1])
        keep = (tri_z.min(axis=1) > NEAR) & (np.abs(area) > 1e-12) & (hi[:, 0] >= lo[:, 0]) & (hi[:, 1] >= lo[:, 1])
        face = np.nonzero(keep)[0]
        bw, bh = hi[face, 0] - lo[face, 0] + 1, hi[face, 1] - lo[face, 1] + 1
        count = bw * bh
        empty = (np.full((H, W), -1, np.int64), np.zeros((H, W, 3)), np.full((H, W), np.inf))
        if count.sum() == 0:
            return empty
        # one candidate per (triangle, pixel of its bounding box)
        owner = np.repeat(np.arange(len(face)), count)
        local = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        px = lo[face, 0][owner] + local % bw[owner]
        py = lo[face, 1][owner] + local // bw[owner]
        f = face[owner]
        dx, dy = px + 0.5 - x0[f], py + 0.5 - y0[f]
        b1 = (dx * ey2[f] - ex2[f] * dy) / area[f]
        b2 = (ex1[f] * dy - dx * ey1[f]) / area[f]
        b0 = 1.0 - b1 - b2
        inside = (b0 >= 0) & (b1 >= 0) & (b2 >= 0)
        f, px, py = f[inside], px[inside], py[inside]
        bary = np.stack((b0[inside], b1[inside], b2[inside]), axis=1)
        # perspective-correct: 1/z is linear on the image
        inv_z = (bary / tri_z[f]).sum(axis=1)
        depth = 1.0 / inv_z
        pixel = py * W + px
        order = np.lexsort((depth, pixel))
        first = np.ones(len(order), bool)
        first[1:] = pixel[order[1:]] != pixel[order[:-1]]
        win = order[first]
        face_map, bary_map, depth_map = empty
        face_map.ravel()[pixel[win]] = f[win]
        corrected = bary[win] / tri_z[f[win]] / inv_z[win, None]
        bary_map.reshape(-1, 3)[pixel[win]] = corrected
        depth_map.ravel()[pixel[win]] = depth[win]
        return face_map, bary_map, depth_map

    def render(self, vertices: np.ndarray, camera: Camera, color: tuple[float, float, float] = (0.62, 0.70, 0.86),
               face_colors: np.ndarray | None = None, background: np.ndarray | tuple[int, int, int] = (255, 255, 255),
               ambient: float = 0.35) -> np.ndarray:
        """RGB image (H, W, 3) uint8 of the mesh over ``background`` (an (H, W, 3) image or a colour).

        Colours are RGB in [0, 1]; ``face_colors`` (F, 3) override ``color`` per triangle.
        """
        vertices = np.asarray(vertices, dtype=np.float64)
        face_map, bary, _ = self.rasterize(vertices, camera)
        if isinstance(background, np.ndarray):
            image = background.astype(np.uint8, copy=True)
        else:
            image = np.empty((self.height, self.width, 3), np.uint8)
            image[:] = background
        hit = face_map >= 0
        if not hit.any():
            return image
        f = face_map[hit]
        normals_cam = vertex_normals(vertices, self.faces) @ camera.R.T
        n = (normals_cam[self.faces[f]] * bary[hit][..., None]).sum(axis=1)
        n /= np.linalg.norm(n, axis=1, keepdims=True).clip(1e-12)
        # light from both sides: the normal facing the camera (-z) is the lit one
        n *= np.where(n[:, 2:] > 0, -1.0, 1.0)
        head, key = np.array([0.0, 0.0, -1.0]), np.array([-0.5, -0.6, -0.62])
        key /= np.linalg.norm(key)
        light = ambient + 0.45 * np.clip(n @ head, 0, None) + 0.35 * np.clip(n @ key, 0, None)
        base = np.asarray(color, float)[None] if face_colors is None else np.asarray(face_colors, float)[f]
        image[hit] = np.clip(255.0 * base * light[:, None], 0, 255).astype(np.uint8)
        return image
