"""A small transform buffer for the node's two lookups (IMU -> camera, world -> camera at an image stamp).

tf2_ros is not available as a wheel, so the node keeps its own buffer (used where
tf2_ros is missing). Edges are stored parent -> child as in ``/tf``; a lookup walks
the tree through the common ancestor, interpolating each dynamic edge at the stamp
(linear in translation, slerp in rotation) and allowing extrapolation up to
``tolerance`` seconds beyond the newest or oldest sample.
"""
from __future__ import annotations

import bisect
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from wham_ros.geometry.frames import Transform, quaternion_xyzw_to_rotation


class TransformLookupError(LookupError):
    """A transform is unknown, disconnected, or not available at the requested time."""


@dataclass
class _Sample:
    stamp: float
    q: np.ndarray      # (x, y, z, w)
    t: np.ndarray


def _slerp(q0: np.ndarray, q1: np.ndarray, w: float) -> np.ndarray:
    dot = float(q0 @ q1)
    if dot < 0:
        q1, dot = -q1, -dot
    if dot > 0.9995:
        q = q0 + w * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(dot)
    return (np.sin((1 - w) * theta) * q0 + np.sin(w * theta) * q1) / np.sin(theta)


class TransformBuffer:
    """parent <- child transforms over time; ``lookup(target, source, stamp)`` gives target <- source."""

    def __init__(self, horizon: float = 10.0, tolerance: float = 0.1) -> None:
        self.horizon, self.tolerance = horizon, tolerance
        self._parent: dict[str, str] = {}
        self._dynamic: dict[str, deque[_Sample]] = {}
        self._static: dict[str, _Sample] = {}
        self._lock = threading.RLock()        # the node writes from callbacks and reads from its worker

    def clear(self) -> None:
        """Forget dynamic transforms (after a time jump); static ones stay."""
        with self._lock:
            self._dynamic.clear()
            self._parent = {c: p for c, p in self._parent.items() if c in self._static}

    def set_transform(self, parent: str, child: str, stamp: float, translation, rotation_xyzw,
                      static: bool = False) -> None:
        q = np.asarray(rotation_xyzw, dtype=np.float64)
        t = np.asarray(translation, dtype=np.float64)
        if not (np.isfinite(q).all() and np.isfinite(t).all()) or np.linalg.norm(q) < 1e-9:
            raise ValueError(f"transform {parent} -> {child} is not finite or has a zero quaternion")
        if not parent or not child or parent == child:
            raise ValueError(f"invalid frame names {parent!r} -> {child!r}")
        with self._lock:
            self._insert(parent, child, stamp, q, t, static)

    def _insert(self, parent: str, child: str, stamp: float, q: np.ndarray, t: np.ndarray, static: bool) -> None:
        self._parent[child] = parent
        sample = _Sample(stamp, q / np.linalg.norm(q), t)
        if static:
            self._static[child] = sample
            return
        samples = self._dynamic.setdefault(child, deque())
        if samples and stamp < samples[-1].stamp:
            stamps = [s.stamp for s in samples]
            samples.insert(bisect.bisect_right(stamps, stamp), sample)
        else:
            samples.append(sample)
        while samples and samples[0].stamp < samples[-1].stamp - self.horizon:
            samples.popleft()

    def _edge(self, child: str, stamp: float) -> Transform:
        if child in self._static:
            s = self._static[child]
            return Transform(quaternion_xyzw_to_rotation(s.q), s.t)
        samples = self._dynamic.get(child)
        if not samples:
            raise TransformLookupError(f"no transform for frame {child!r}")
        stamps = [s.stamp for s in samples]
        if stamp < stamps[0] - self.tolerance or stamp > stamps[-1] + self.tolerance:
            raise TransformLookupError(f"{self._parent[child]} -> {child}: stamp {stamp:.3f} is outside the buffered "
                               f"[{stamps[0]:.3f}, {stamps[-1]:.3f}] (tolerance {self.tolerance} s)")
        i = bisect.bisect_left(stamps, stamp)
        if i == 0 or len(samples) == 1:
            s = samples[0] if i == 0 else samples[-1]
            return Transform(quaternion_xyzw_to_rotation(s.q), s.t)
        if i == len(samples):
            s = samples[-1]
            return Transform(quaternion_xyzw_to_rotation(s.q), s.t)
        a, b = samples[i - 1], samples[i]
        w = (stamp - a.stamp) / (b.stamp - a.stamp) if b.stamp > a.stamp else 0.0
        return Transform(quaternion_xyzw_to_rotation(_slerp(a.q, b.q, w)), a.t + w * (b.t - a.t))

    def _chain(self, frame: str) -> list[str]:
        chain = [frame]
        while chain[-1] in self._parent:
            chain.append(self._parent[chain[-1]])
            if len(chain) > 64:
                raise TransformLookupError(f"transform tree has a loop at {frame!r}")
        return chain

    def lookup(self, target: str, source: str, stamp: float) -> Transform:
        """target <- source at ``stamp`` (x_target = R x_source + t)."""
        with self._lock:
            return self._lookup(target, source, stamp)

    def _lookup(self, target: str, source: str, stamp: float) -> Transform:
        if target == source:
            return Transform.identity()
        up_source, up_target = self._chain(source), self._chain(target)
        common = next((f for f in up_source if f in set(up_target)), None)
        if common is None:
            raise TransformLookupError(f"frames {target!r} and {source!r} are not connected")
        root_from_source = Transform.identity()
        for child in up_source[: up_source.index(common)]:
            root_from_source = self._edge(child, stamp).compose(root_from_source)
        root_from_target = Transform.identity()
        for child in up_target[: up_target.index(common)]:
            root_from_target = self._edge(child, stamp).compose(root_from_target)
        inv = Transform(root_from_target.R.T, -root_from_target.R.T @ root_from_target.t)
        return inv.compose(root_from_source)

    def can_lookup(self, target: str, source: str, stamp: float) -> bool:
        try:
            self.lookup(target, source, stamp)
            return True
        except TransformLookupError:
            return False

