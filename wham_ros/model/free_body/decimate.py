"""Left/right-symmetric mesh decimation by quadric-error half-edge collapses.

A half-edge collapse removes one vertex and moves nothing, so the decimated mesh is a subset of the input
vertices and every per-vertex quantity (shape offsets, skinning weights, regressor targets) carries over
by row selection. Collapses are taken cheapest first (Garland-Heckbert plane quadrics plus a small
edge-length term so flat regions thin out evenly) and in mirror pairs, so the result stays symmetric.
A collapse is refused when it would break the manifold (link condition), leave a vertex of degree < 3,
flip a triangle or make a sliver. Deterministic: ties are broken by vertex index.
"""
from __future__ import annotations

import heapq

import numpy as np

#: weight of the squared edge length in the collapse cost, against the plane-distance error (both m^2)
LENGTH_WEIGHT = 0.01
MIN_NORMAL_COS = 0.2        # a collapse may turn no triangle by more than ~78 degrees
MIN_QUALITY = 0.12          # 4*sqrt(3)*area / sum(edge^2): 1 for equilateral, 0 for degenerate


class _Mesh:
    """Mutable triangle mesh with vertex -> face sets, per-vertex quadrics and undoable collapses."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray) -> None:
        self.p = vertices
        self.faces = faces.copy()
        self.face_alive = np.ones(len(faces), dtype=bool)
        self.alive = np.zeros(len(vertices), dtype=bool)
        self.alive[np.unique(faces)] = True
        self.vf: list[set[int]] = [set() for _ in range(len(vertices))]
        for f, tri in enumerate(faces):
            for w in tri:
                self.vf[w].add(f)
        tri = vertices[faces]
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        area = np.linalg.norm(n, axis=1) / 2
        n = n / np.maximum(2 * area, 1e-30)[:, None]
        plane = np.concatenate((n, -(n * tri[:, 0]).sum(1, keepdims=True)), 1)
        K = (area / area.mean())[:, None, None] * plane[:, :, None] * plane[:, None, :]
        self.Q = np.zeros((len(vertices), 4, 4))
        np.add.at(self.Q, faces.reshape(-1), np.repeat(K, 3, axis=0))

    def neighbours(self, u: int) -> set[int]:
        return {int(w) for f in self.vf[u] for w in self.faces[f]} - {u}

    def cost(self, u: int, v: int) -> float:
        h = np.append(self.p[v], 1.0)
        d = self.p[u] - self.p[v]
        return float(h @ (self.Q[u] + self.Q[v]) @ h) + LENGTH_WEIGHT * float(d @ d)

    def valid(self, u: int, v: int) -> bool:
        if not (self.alive[u] and self.alive[v]) or v not in self.neighbours(u):
            return False
        shared = self.vf[u] & self.vf[v]
        opposite = {int(w) for f in shared for w in self.faces[f]} - {u, v}
        if len(shared) != 2 or self.neighbours(u) & self.neighbours(v) != opposite:
            return False
        if any(len(self.neighbours(o)) <= 3 for o in opposite):
            return False
        for f in self.vf[u] - shared:
            old = self.p[self.faces[f]]
            new = old.copy()
            new[list(self.faces[f]).index(u)] = self.p[v]
            n0 = np.cross(old[1] - old[0], old[2] - old[0])
            n1 = np.cross(new[1] - new[0], new[2] - new[0])
            a1 = np.linalg.norm(n1)
            if a1 < 1e-14 or n0 @ n1 < MIN_NORMAL_COS * np.linalg.norm(n0) * a1:
                return False
            edges = ((new - np.roll(new, 1, axis=0)) ** 2).sum()
            if np.sqrt(3.0) * 2 * a1 / edges < MIN_QUALITY:
                return False
        return True

    def collapse(self, u: int, v: int) -> tuple:
        """Merge u into v; returns what :meth:`undo` needs."""
        shared = self.vf[u] & self.vf[v]
        touched = {int(w) for f in self.vf[u] for w in self.faces[f]}
        record = (u, v, {f: self.faces[f].copy() for f in self.vf[u]}, {w: set(self.vf[w]) for w in touched},
                  self.Q[v].copy())
        for f in shared:
            self.face_alive[f] = False
            for w in self.faces[f]:
                self.vf[w].discard(f)
        for f in self.vf[u] - shared:
            self.faces[f][self.faces[f] == u] = v
            self.vf[v].add(f)
        self.vf[u] = set()
        self.alive[u] = False
        self.Q[v] += self.Q[u]
        return record

    def undo(self, record: tuple) -> None:
        u, v, faces, vf, q = record
        for f, tri in faces.items():
            self.faces[f] = tri
            self.face_alive[f] = True
        for w, s in vf.items():
            self.vf[w] = s
        self.alive[u] = True
        self.Q[v] = q


def decimate(vertices: np.ndarray, faces: np.ndarray, mirror: np.ndarray, target: int,
             locked: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Collapse a closed manifold triangle mesh down to about ``target`` vertices.

    vertices (V, 3), faces (F, 3) of a closed manifold (orientation is kept), mirror (V,) the left/right
    image of each vertex (itself on the midline), locked (V,) bool vertices never removed.
    Returns (kept, faces): kept (V',) sorted input indices of the remaining vertices and faces (F', 3)
    indexing into ``kept``.
    """
    mesh = _Mesh(vertices, faces.astype(np.int64))
    locked = np.zeros(len(vertices), dtype=bool) if locked is None else locked
    middle = mirror == np.arange(len(vertices))
    stamp = np.zeros(len(vertices), dtype=np.int64)
    heap: list[tuple[float, int, int, int, int]] = []

    def push(u: int) -> None:
        for w in sorted(mesh.neighbours(u)):
            for a, b in ((u, w), (w, u)):
                if not locked[a] and (middle[b] or not middle[a]) and b != mirror[a]:
                    heapq.heappush(heap, (mesh.cost(a, b), a, b, stamp[a], stamp[b]))

    for u in range(len(vertices)):
        if mesh.alive[u] and not locked[u]:
            push(u)
    count = int(mesh.alive.sum())
    while count > target and heap:
        _, u, v, su, sv = heapq.heappop(heap)
        if su != stamp[u] or sv != stamp[v] or not mesh.valid(u, v):
            continue
        first = mesh.collapse(u, v)
        pair = None if middle[u] else (int(mirror[u]), int(mirror[v]))
        if pair is not None:
            if locked[pair[0]] or not mesh.valid(*pair):
                mesh.undo(first)
                continue
            mesh.collapse(*pair)
        for _, b in [(u, v)] + ([pair] if pair else []):
            stamp[b] += 1
            push(b)
        count -= 1 if pair is None else 2
    kept = np.flatnonzero(mesh.alive)
    index = np.full(len(vertices), -1, dtype=np.int64)
    index[kept] = np.arange(len(kept))
    return kept, index[mesh.faces[mesh.face_alive]]
