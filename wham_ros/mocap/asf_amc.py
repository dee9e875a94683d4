"""Acclaim ASF (skeleton) and AMC (motion) reader into a :class:`~wham_ros.mocap.skeleton.Motion`.

Bones become joints at the bone's start (the joint that turns that bone), so the
result follows the BVH convention of :mod:`wham_ros.mocap.skeleton`: a bone's
``axis`` rotation C and its AMC Euler rotation M give the local rotation C M C^T in
bind-pose-aligned frames; each leaf bone gets an end site ``<bone>_end`` at its tip.
Lengths are converted with the ASF ``:units length`` (file value / length = inches).
AMC files carry no frame rate; the caller gives it (HDM05 and CMU record at 120 Hz).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wham_ros.errors import MocapError
from wham_ros.mocap.skeleton import Motion, Skeleton, axis_rotations, euler_matrices

INCH = 0.0254


@dataclass(frozen=True)
class AsfSkeleton:
    """An ASF file: the joint skeleton plus what reading AMC needs.

    axes (J, 3, 3) per joint bind frame C (identity for end sites); dofs[j] the AMC
    channel names of joint j ('tx'.. 'rz', empty for end sites and fixed bones).
    """

    skeleton: Skeleton
    axes: np.ndarray
    dofs: tuple[tuple[str, ...], ...]
    rotation_orders: tuple[str, ...]
    metres: float
    degrees: bool
    path: str


def _lines(path: str, kind: str) -> list[tuple[int, list[str]]]:
    try:
        with open(path, encoding="latin-1") as fh:
            text = fh.read()
    except OSError as exc:
        raise MocapError(f"cannot read {kind} file {path}: {exc}") from exc
    return [(n + 1, line.split()) for n, line in enumerate(text.splitlines())
            if line.strip() and not line.lstrip().startswith("#")]


def _floats(path: str, line: int, words: list[str], count: int, what: str) -> np.ndarray:
    if len(words) < count:
        raise MocapError(f"{path}:{line}: {what} needs {count} numbers, found {len(words)}")
    try:
        out = np.array([float(w) for w in words[:count]])
    except ValueError:
        raise MocapError(f"{path}:{line}: {what}: {' '.join(words[:count])!r} is not numeric") from None
    if not np.isfinite(out).all():
        raise MocapError(f"{path}:{line}: {what} is not finite")
    return out


def _rotation_order(path: str, line: int, word: str) -> str:
    if sorted(word.lower()) != ["x", "y", "z"]:
        raise MocapError(f"{path}:{line}: rotation order {word!r} is not a permutation of XYZ")
    return word.lower()


def _axis_matrix(angles: np.ndarray, order: str, degrees: bool) -> np.ndarray:
    """C for ``axis a b c ORDER``: the first letter of ORDER is applied first."""
    rad = np.radians(angles) if degrees else angles
    by_axis = dict(zip("xyz", rad))
    return euler_matrices(np.array([by_axis[a] for a in order[::-1]]), order[::-1])


def read_asf(path: str) -> AsfSkeleton:
    """Read an ASF skeleton file."""
    lines = _lines(path, "ASF")
    length_unit, degrees = 1.0, True
    root = {"order": ["tx", "ty", "tz", "rx", "ry", "rz"], "axis": "xyz", "position": np.zeros(3),
            "orientation": np.zeros(3)}
    bones: dict[str, dict] = {}
    children: dict[str, list[str]] = {}
    section, bone, hierarchy_open = "", None, False
    for line, words in lines:
        key = words[0].lower()
        if key.startswith(":"):
            section = key
            if bone is not None:
                raise MocapError(f"{path}:{line}: bone {bone.get('name')!r} has no 'end'")
            continue
        if section == ":units":
            if key == "length":
                length_unit = float(_floats(path, line, words[1:], 1, "length unit")[0])
                if length_unit <= 0:
                    raise MocapError(f"{path}:{line}: length unit must be positive")
            elif key == "angle":
                if len(words) < 2 or words[1].lower() not in ("deg", "rad"):
                    raise MocapError(f"{path}:{line}: angle unit must be deg or rad")
                degrees = words[1].lower() == "deg"
        elif section == ":root":
            if key == "order":
                root["order"] = [w.lower() for w in words[1:]]
            elif key == "axis":
                root["axis"] = _rotation_order(path, line, words[1] if len(words) > 1 else "")
            elif key in ("position", "orientation"):
                root[key] = _floats(path, line, words[1:], 3, f"root {key}")
        elif section == ":bonedata":
            if key == "begin":
                bone = {"line": line, "dof": [], "axis": np.zeros(3), "order": "xyz"}
            elif key == "end":
                if bone is None or "name" not in bone or "direction" not in bone or "length" not in bone:
                    raise MocapError(f"{path}:{line}: bone block without name, direction or length")
                if bone["name"] in bones or bone["name"] == "root":
                    raise MocapError(f"{path}:{line}: bone {bone['name']!r} defined twice")
                bones[bone["name"]] = bone
                bone = None
            elif bone is None:
                continue
            elif key == "name" and len(words) > 1:
                bone["name"] = words[1]
            elif key == "direction":
                d = _floats(path, line, words[1:], 3, "direction")
                norm = np.linalg.norm(d)
                bone["direction"] = d / norm if norm > 0 else d
            elif key == "length":
                bone["length"] = float(_floats(path, line, words[1:], 1, "length")[0])
            elif key == "axis":
                bone["axis"] = _floats(path, line, words[1:], 3, "axis")
                bone["order"] = _rotation_order(path, line, words[4] if len(words) > 4 else "")
            elif key == "dof":
                bone["dof"] = [w.lower() for w in words[1:]]
                unknown = [w for w in bone["dof"] if w not in ("rx", "ry", "rz", "tx", "ty", "tz", "l")]
                if unknown:
                    raise MocapError(f"{path}:{line}: unknown dof {unknown}")
                if any(w in ("tx", "ty", "tz", "l") for w in bone["dof"]):
                    raise MocapError(f"{path}:{line}: translating or stretching bones are not supported")
        elif section == ":hierarchy":
            if key == "begin":
                hierarchy_open = True
            elif key == "end":
                hierarchy_open = False
            elif hierarchy_open:
                children.setdefault(words[0], []).extend(words[1:])
    if bone is not None:
        raise MocapError(f"{path}: truncated: bone block at line {bone['line']} has no 'end'")
    if not bones or not children:
        raise MocapError(f"{path}: no :bonedata or :hierarchy (not an ASF file, or truncated)")

    metres = INCH / length_unit
    names, parents, offsets, axes, dofs, orders = ["root"], [-1], [root["position"]], [], [tuple(root["order"])], []
    axes.append(_axis_matrix(root["orientation"], root["axis"], degrees))
    orders.append(root["axis"])
    stack = [(c, 0) for c in reversed(children.get("root", []))]
    while stack:
        name, parent = stack.pop()
        if name not in bones:
            raise MocapError(f"{path}: the hierarchy names bone {name!r}, which :bonedata does not define")
        if name in names:
            raise MocapError(f"{path}: bone {name!r} appears twice in the hierarchy")
        b = bones[name]
        parent_bone = bones.get(names[parent])
        index = len(names)
        names.append(name)
        parents.append(parent)
        offsets.append(np.zeros(3) if parent_bone is None else parent_bone["direction"] * parent_bone["length"])
        axes.append(_axis_matrix(b["axis"], b["order"], degrees))
        dofs.append(tuple(b["dof"]))
        orders.append(b["order"])
        kids = children.get(name, [])
        if not kids:
            names.append(f"{name}_end")
            parents.append(index)
            offsets.append(b["direction"] * b["length"])
            axes.append(np.eye(3))
            dofs.append(())
            orders.append("xyz")
        stack.extend((c, index) for c in reversed(kids))
    missing = sorted(set(bones) - set(names))
    if missing:
        raise MocapError(f"{path}: bones {missing} are not in the hierarchy")
    skeleton = Skeleton(tuple(names), np.array(parents), np.array(offsets))
    return AsfSkeleton(skeleton, np.array(axes), tuple(dofs), tuple(orders), metres, degrees, path)


def read_amc(path: str, asf: AsfSkeleton, fps: float = 120.0) -> Motion:
    """Read an AMC motion on the skeleton ``asf``; every frame must list every bone with dofs."""
    names = asf.skeleton.names
    column = {name: j for j, name in enumerate(names) if asf.dofs[j]}
    degrees = asf.degrees
    frames: list[dict[str, np.ndarray]] = []
    current: dict[str, np.ndarray] | None = None
    frame_line = 0

    def close(line: int) -> None:
        if current is not None and len(current) != len(column):
            missing = sorted(set(column) - set(current))
            raise MocapError(f"{path}:{line}: frame {len(frames)} (from line {frame_line}) lacks bones {missing}")

    for line, words in _lines(path, "AMC"):
        key = words[0]
        if key.startswith(":"):
            if key.upper() in (":DEGREES", ":RADIANS"):
                degrees = key.upper() == ":DEGREES"
            continue
        if len(words) == 1 and key.isdigit():
            close(line)
            if current is not None:
                frames.append(current)
            current, frame_line = {}, line
            continue
        if current is None:
            raise MocapError(f"{path}:{line}: {key!r} before the first frame number")
        if key not in column:
            raise MocapError(f"{path}:{line}: bone {key!r} is not a moving bone of {asf.path}")
        j = column[key]
        count = len(asf.dofs[j])
        if len(words) - 1 != count:
            raise MocapError(f"{path}:{line}: bone {key!r} has {len(words) - 1} values, its dof lists {count}")
        current[key] = _floats(path, line, words[1:], count, f"bone {key}")
    if current is None:
        raise MocapError(f"{path}: no frames (not an AMC file, or empty)")
    close(frame_line)
    frames.append(current)

    T, J = len(frames), len(names)
    rotations = np.broadcast_to(np.eye(3), (T, J, 3, 3)).copy()
    root_position = np.broadcast_to(asf.skeleton.offsets[0], (T, 3)).copy()
    unit = np.pi / 180.0 if degrees else 1.0
    for name, j in column.items():
        values = np.stack([f[name] for f in frames])
        motion = np.broadcast_to(np.eye(3), (T, 3, 3)).copy()
        if j == 0:
            # the root's ASF 'axis' gives the order of its rotation channels
            by_dof = dict(zip(asf.dofs[0], values.T))
            for axis in asf.rotation_orders[0]:
                if f"t{axis}" in by_dof:
                    root_position[:, "xyz".index(axis)] += by_dof[f"t{axis}"]
                if f"r{axis}" in by_dof:
                    motion = axis_rotations(axis, by_dof[f"r{axis}"] * unit) @ motion
        else:
            for k, dof in enumerate(asf.dofs[j]):  # listed first = applied first
                motion = axis_rotations(dof[1], values[:, k] * unit) @ motion
        C = asf.axes[j]
        rotations[:, j] = C @ motion @ C.T
    return Motion(asf.skeleton, rotations, root_position, fps, asf.metres, path)
