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
``cull_back`` skips triangles seen from behind, for closed meshes wound counter-clockwise
seen from outside (see :func:`outward_faces`): about half the work for a body.

:func:`track_colour` is the per-person palette shared by every output (overlay video,
trajectory plot, RViz markers), so one person has one colour everywhere.
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


def track_colour(track_id: int) -> tuple[float, float, float]:
    """A person's display colour, RGB in [0.3, 1]: hues spread by the golden ratio, so neighbouring ids differ."""
    hue = (track_id * 0.618034) % 1.0
    rgb = np.clip(np.abs(np.array([hue * 6 - 3, 2 - hue * 6 % 6, 4 - hue * 6 % 6])) - 1, 0, 1)
    return float(0.3 + 0.7 * rgb[0]), float(0.3 + 0.7 * rgb[1]), float(0.3 + 0.7 * rgb[2])


def _corner_normals(vertices: np.ndarray, corners: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """:func:`vertex_normals` from the faces' three corner index columns (each (F,) contiguous)."""
    # per-coordinate 1-D arrays: gathering rows of a (V, 3) array is several times slower
    x, y, z = (np.ascontiguousarray(vertices[:, k], dtype=np.float64) for k in range(3))
    c0, c1, c2 = corners
    ax, ay, az = x[c1] - x[c0], y[c1] - y[c0], z[c1] - z[c0]
    bx, by, bz = x[c2] - x[c0], y[c2] - y[c0], z[c2] - z[c0]
    out = np.empty((len(x), 3))
    for k, n in enumerate((ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx)):
        out[:, k] = sum(np.bincount(c, weights=n, minlength=len(x)) for c in corners)
    return out / np.linalg.norm(out, axis=1, keepdims=True).clip(1e-12)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (V, 3)."""
    faces = np.asarray(faces, dtype=np.int64)
    return _corner_normals(np.asarray(vertices), tuple(np.ascontiguousarray(faces[:, k]) for k in range(3)))


def outward_faces(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``faces`` (F, 3) wound counter-clockwise seen from outside (positive enclosed volume in a right-handed
    frame), reversing every triangle if needed; ``vertices`` (V, 3): any pose of the closed mesh."""
    faces = np.asarray(faces, dtype=np.int64)
    v = np.asarray(vertices, dtype=np.float64)
    v0, v1, v2 = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
    volume = float(np.einsum("ij,ij->", v0, np.cross(v1, v2))) / 6.0
    return faces if volume >= 0 else faces[:, ::-1].copy()


@dataclass(frozen=True)
class Fragments:
    """The visible surface as one entry per covered pixel (N of them, each pixel once).

    pixel (N,) flat index y * W + x; face (N,) triangle index; bary (N, 3) perspective-correct
    barycentrics of the triangle's vertices; depth (N,) camera z in metres.
    """

    pixel: np.ndarray
    face: np.ndarray
    bary: np.ndarray
    depth: np.ndarray


class MeshRenderer:
    """Renders one triangle mesh topology (F, 3) into images of a fixed size.

    cull_back: skip triangles facing away from the camera; only for closed meshes wound as
    :func:`outward_faces` returns them (else the front disappears).
    """

    def __init__(self, faces: np.ndarray, width: int, height: int, *, cull_back: bool = False) -> None:
        self.faces = np.asarray(faces, dtype=np.int64)
        self.width, self.height = int(width), int(height)
        self.cull_back = cull_back
        # one contiguous index array per corner: gathers from them are several times faster than faces[:, k]
        self._corners = tuple(np.ascontiguousarray(self.faces[:, k]) for k in range(3))

    def fragments(self, vertices: np.ndarray, camera: Camera) -> Fragments:
        """The nearest surface point of every pixel the mesh covers (pixel centres at x + 0.5, y + 0.5)."""
        W, H = self.width, self.height
        cam = np.asarray(vertices, dtype=np.float64) @ camera.R.T + camera.t
        z = cam[:, 2]
        uvw = cam @ camera.K.T
        safe_z = np.where(np.abs(z) < 1e-9, 1e-9, z)
        u, v = uvw[:, 0] / safe_z, uvw[:, 1] / safe_z
        c0, c1, c2 = self._corners
        u0, u1, u2, v0, v1, v2 = u[c0], u[c1], u[c2], v[c0], v[c1], v[c2]
        z0, z1, z2 = z[c0], z[c1], z[c2]
        ex1, ey1, ex2, ey2 = u1 - u0, v1 - v0, u2 - u0, v2 - v0
        area = ex1 * ey2 - ex2 * ey1
        # pixels whose centres can fall inside the triangle
        xlo = np.maximum(np.ceil(np.minimum(np.minimum(u0, u1), u2) - 0.5), 0)
        xhi = np.minimum(np.floor(np.maximum(np.maximum(u0, u1), u2) - 0.5), W - 1)
        ylo = np.maximum(np.ceil(np.minimum(np.minimum(v0, v1), v2) - 0.5), 0)
        yhi = np.minimum(np.floor(np.maximum(np.maximum(v0, v1), v2) - 0.5), H - 1)
        keep = ((np.minimum(np.minimum(z0, z1), z2) > NEAR) & (np.abs(area) > 1e-12)
                & (xhi >= xlo) & (yhi >= ylo))
        if self.cull_back:
            # image area = f^2 (n . p0) / (z0 z1 z2): negative exactly when the outward normal faces the camera
            keep &= area < 0
        face = np.nonzero(keep)[0]
        none = Fragments(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros(0))
        if len(face) == 0:
            return none
        xlo, ylo = xlo[face].astype(np.int64), ylo[face].astype(np.int64)
        bw = xhi[face].astype(np.int64) - xlo + 1
        count = bw * (yhi[face].astype(np.int64) - ylo + 1)
        # barycentrics b1, b2 are affine in the pixel index: b = ax * px + ay * py + a0 per triangle
        inv_area = 1.0 / area[face]
        x0, y0 = u0[face] - 0.5, v0[face] - 0.5
        ex1, ey1, ex2, ey2 = ex1[face] * inv_area, ey1[face] * inv_area, ex2[face] * inv_area, ey2[face] * inv_area
        iz0 = 1.0 / z0[face]
        iz1, iz2 = 1.0 / z1[face] - iz0, 1.0 / z2[face] - iz0
        # one candidate per (triangle, pixel of its bounding box)
        owner = np.repeat(np.arange(len(face)), count)
        local = np.arange(owner.size) - np.repeat(np.cumsum(count) - count, count)
        row, col = np.divmod(local, bw[owner])
        px, py = xlo[owner] + col, ylo[owner] + row
        dx, dy = px - x0[owner], py - y0[owner]
        b1 = dx * ey2[owner] - dy * ex2[owner]
        b2 = dy * ex1[owner] - dx * ey1[owner]
        inside = (b1 >= 0) & (b2 >= 0) & (b1 + b2 <= 1)
        owner, px, py, b1, b2 = owner[inside], px[inside], py[inside], b1[inside], b2[inside]
        if owner.size == 0:
            return none
        # 1/z is linear on the image; the nearest point has the largest 1/z
        inv_z = iz0[owner] + b1 * iz1[owner] + b2 * iz2[owner]
        # z-buffer over the candidates' bounding rectangle only (a body covers a small part of the image)
        left, top = int(px.min()), int(py.min())
        span = int(px.max()) - left + 1
        cell = (py - top) * span + (px - left)
        size = span * (int(py.max()) - top + 1)
        nearest = np.full(size, -np.inf)
        np.maximum.at(nearest, cell, inv_z)
        win = np.nonzero(inv_z == nearest[cell])[0]
        # equal depths (a pixel centre on a shared edge) leave several winners: keep one per pixel
        slot = np.full(size, -1, np.int64)
        slot[cell[win]] = np.arange(win.size)
        win = win[slot[cell[win]] == np.arange(win.size)]
        owner, b1, b2, inv_z = owner[win], b1[win], b2[win], inv_z[win]
        b0 = 1.0 - b1 - b2
        # screen barycentrics -> perspective-correct ones (weights b_k / z_k, normalised)
        bary = np.stack((b0 * iz0[owner], b1 * (iz1[owner] + iz0[owner]), b2 * (iz2[owner] + iz0[owner])), axis=1)
        bary /= inv_z[:, None]
        return Fragments(py[win] * W + px[win], face[owner], bary, 1.0 / inv_z)

    def rasterize(self, vertices: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Visible surface per pixel: face index (H, W) (-1 = none), barycentrics (H, W, 3), depth (H, W)."""
        W, H = self.width, self.height
        frag = self.fragments(vertices, camera)
        face_map, bary_map, depth_map = np.full(H * W, -1, np.int64), np.zeros((H * W, 3)), np.full(H * W, np.inf)
        face_map[frag.pixel], bary_map[frag.pixel], depth_map[frag.pixel] = frag.face, frag.bary, frag.depth
        return face_map.reshape(H, W), bary_map.reshape(H, W, 3), depth_map.reshape(H, W)

    def render(self, vertices: np.ndarray, camera: Camera, color: tuple[float, float, float] = (0.62, 0.70, 0.86),
               face_colors: np.ndarray | None = None, background: np.ndarray | tuple[int, int, int] = (255, 255, 255),
               ambient: float = 0.35) -> np.ndarray:
        """RGB image (H, W, 3) uint8 of the mesh over ``background`` (an (H, W, 3) image or a colour).

        Colours are RGB in [0, 1]; ``face_colors`` (F, 3) override ``color`` per triangle.
        """
        vertices = np.asarray(vertices, dtype=np.float64)
        if isinstance(background, np.ndarray):
            image = np.array(background, dtype=np.uint8, order="C")      # a C-ordered copy: written through a flat view
        else:
            image = np.empty((self.height, self.width, 3), np.uint8)
            image[:] = background
        frag = self.fragments(vertices, camera)
        if frag.pixel.size == 0:
            return image
        normals_cam = _corner_normals(vertices, self._corners) @ camera.R.T
        corners = [c[frag.face] for c in self._corners]
        b = frag.bary.T
        n = np.empty((frag.pixel.size, 3))
        for k in range(3):
            column = np.ascontiguousarray(normals_cam[:, k])
            n[:, k] = column[corners[0]] * b[0] + column[corners[1]] * b[1] + column[corners[2]] * b[2]
        n /= np.linalg.norm(n, axis=1, keepdims=True).clip(1e-12)
        # light from both sides: the normal facing the camera (-z) is the lit one
        n *= np.where(n[:, 2:] > 0, -1.0, 1.0)
        head, key = np.array([0.0, 0.0, -1.0]), np.array([-0.5, -0.6, -0.62])
        key /= np.linalg.norm(key)
        light = ambient + 0.45 * np.clip(n @ head, 0, None) + 0.35 * np.clip(n @ key, 0, None)
        base = np.asarray(color, float)[None] if face_colors is None else np.asarray(face_colors, float)[frag.face]
        image.reshape(-1, 3)[frag.pixel] = np.clip(255.0 * base * light[:, None], 0, 255).astype(np.uint8)
        return image
