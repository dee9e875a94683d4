"""BVH reader (hierarchy, offsets, channels, frames) into a :class:`~wham_ros.mocap.skeleton.Motion`.

Root position = the root's OFFSET plus its position channels (the iClone exports keep
the rest height in the OFFSET). Rotation channels compose in the order listed.
End sites become joints named ``<parent>_end``. Only the root may carry position
channels. Every malformed input raises :class:`~wham_ros.errors.MocapError` naming
the file and line.
"""
from __future__ import annotations

import numpy as np

from wham_ros.errors import MocapError
from wham_ros.mocap.skeleton import Motion, Skeleton, euler_matrices

_AXES = {"xrotation": "x", "yrotation": "y", "zrotation": "z", "xposition": "x", "yposition": "y",
         "zposition": "z"}


class _Tokens:
    """Whitespace tokens of the hierarchy with their line numbers."""

    def __init__(self, path: str, lines: list[str]) -> None:
        self.path = path
        self.items = [(tok, n + 1) for n, line in enumerate(lines) for tok in line.split()]
        self.pos = 0

    def error(self, message: str, line: int | None = None) -> MocapError:
        if line is None:
            line = self.items[min(self.pos, len(self.items) - 1)][1] if self.items else 1
        return MocapError(f"{self.path}:{line}: {message}")

    def next(self, what: str) -> tuple[str, int]:
        if self.pos >= len(self.items):
            raise self.error(f"file ends where {what} was expected (truncated hierarchy)")
        item = self.items[self.pos]
        self.pos += 1
        return item

    def expect(self, word: str) -> int:
        tok, line = self.next(repr(word))
        if tok.lower() != word.lower():
            raise self.error(f"expected {word!r}, found {tok!r}", line)
        return line

    def numbers(self, count: int, what: str) -> np.ndarray:
        values = []
        for _ in range(count):
            tok, line = self.next(what)
            try:
                values.append(float(tok))
            except ValueError:
                raise self.error(f"{what}: {tok!r} is not a number", line) from None
        out = np.array(values)
        if not np.isfinite(out).all():
            raise self.error(f"{what} is not finite")
        return out


def _read_joint(tok: _Tokens, name: str, parent: int, joints: list) -> None:
    """Append the joint and its subtree: (name, parent, offset, channels, line)."""
    line = tok.expect("{")
    tok.expect("OFFSET")
    offset = tok.numbers(3, f"OFFSET of {name}")
    word, wline = tok.next("CHANNELS")
    if word.upper() != "CHANNELS":
        raise tok.error(f"joint {name}: expected CHANNELS, found {word!r}", wline)
    count_tok, cline = tok.next("channel count")
    if not count_tok.isdigit():
        raise tok.error(f"joint {name}: channel count {count_tok!r} is not an integer", cline)
    channels = []
    for _ in range(int(count_tok)):
        ch, chline = tok.next("channel name")
        if ch.lower() not in _AXES:
            raise tok.error(f"joint {name}: unknown channel {ch!r}", chline)
        channels.append(ch.lower())
    if parent >= 0 and any(c.endswith("position") for c in channels):
        raise tok.error(f"joint {name}: position channels are supported on the root only", cline)
    index = len(joints)
    joints.append((name, parent, offset, channels, line))
    while True:
        word, wline = tok.next(f"JOINT, End Site or '}}' in {name}")
        key = word.upper()
        if key == "}":
            return
        if key == "JOINT":
            child, _ = tok.next("joint name")
            _read_joint(tok, child, index, joints)
        elif key == "END":
            tok.expect("Site")
            tok.expect("{")
            tok.expect("OFFSET")
            joints.append((f"{name}_end", index, tok.numbers(3, f"End Site OFFSET of {name}"), [], wline))
            tok.expect("}")
        else:
            raise tok.error(f"unexpected {word!r} in joint {name}", wline)


def _frame_values(path: str, lines: list[str], first: int, frames: int, width: int) -> np.ndarray:
    """(frames, width) floats from the data lines starting at index ``first``."""
    rows = [(n + 1, line.split()) for n, line in enumerate(lines[first:], start=first) if line.strip()]
    if len(rows) < frames:
        raise MocapError(f"{path}: truncated: 'Frames: {frames}' declared, {len(rows)} frame lines found")
    if len(rows) > frames:
        raise MocapError(f"{path}:{rows[frames][0]}: {len(rows) - frames} frame lines beyond the declared {frames}")
    for line_no, values in rows:
        if len(values) != width:
            raise MocapError(f"{path}:{line_no}: {len(values)} values, the hierarchy has {width} channels")
    try:
        data = np.array([values for _, values in rows], dtype=np.float64)
    except ValueError:
        for line_no, values in rows:
            try:
                np.array(values, dtype=np.float64)
            except ValueError as exc:
                raise MocapError(f"{path}:{line_no}: {exc}") from None
        raise
    bad = ~np.isfinite(data).all(1)
    if bad.any():
        raise MocapError(f"{path}:{rows[int(np.argmax(bad))][0]}: non-finite channel value")
    return data


def read_bvh(path: str, metres: float = 1.0) -> Motion:
    """Read a BVH file; ``metres`` is the length of one file unit (BVH does not record it)."""
    try:
        with open(path, encoding="latin-1") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise MocapError(f"cannot read BVH file {path}: {exc}") from exc
    motion_at = next((n for n, line in enumerate(lines) if line.strip().upper() == "MOTION"), None)
    if motion_at is None:
        raise MocapError(f"{path}: no MOTION section (not a BVH file, or truncated)")
    tok = _Tokens(path, lines[:motion_at])
    tok.expect("HIERARCHY")
    tok.expect("ROOT")
    root, _ = tok.next("root name")
    joints: list = []
    _read_joint(tok, root, -1, joints)
    if tok.pos != len(tok.items):
        raise tok.error(f"unexpected {tok.items[tok.pos][0]!r} after the root joint (one ROOT supported)")
    header = [(n, lines[n].split(":", 1)) for n in range(motion_at + 1, min(motion_at + 3, len(lines)))]
    if len(header) < 2 or header[0][1][0].strip().lower() != "frames" or \
            header[1][1][0].strip().lower() != "frame time":
        raise MocapError(f"{path}:{motion_at + 2}: expected 'Frames: N' and 'Frame Time: dt' after MOTION")
    try:
        frames = int(header[0][1][1])
        frame_time = float(header[1][1][1])
    except (ValueError, IndexError):
        raise MocapError(f"{path}:{motion_at + 2}: bad 'Frames:' or 'Frame Time:' value") from None
    if frames < 1 or not frame_time > 0:
        raise MocapError(f"{path}:{motion_at + 2}: need at least one frame and a positive frame time")
    # Frame Time is printed rounded (0.016667 for 1/60 s): take the whole rate it rounds from
    whole = round(1.0 / frame_time)
    fps = float(whole) if whole > 0 and abs(frame_time - 1.0 / whole) < 5e-7 else 1.0 / frame_time
    width = sum(len(j[3]) for j in joints)
    data = _frame_values(path, lines, motion_at + 3, frames, width)

    rotations = np.broadcast_to(np.eye(3), (frames, len(joints), 3, 3)).copy()
    root_position = np.broadcast_to(joints[0][2], (frames, 3)).copy()
    column = 0
    for j, (_, _, _, channels, _) in enumerate(joints):
        values = data[:, column:column + len(channels)]
        column += len(channels)
        rot = [k for k, c in enumerate(channels) if c.endswith("rotation")]
        if rot:
            axes = "".join(_AXES[channels[k]] for k in rot)
            rotations[:, j] = euler_matrices(np.radians(values[:, rot]), axes)
        for k, c in enumerate(channels):
            if c.endswith("position"):
                root_position[:, "xyz".index(_AXES[c])] += values[:, k]
    skeleton = Skeleton(tuple(j[0] for j in joints), np.array([j[1] for j in joints]),
                        np.array([j[2] for j in joints]))
    if len(set(skeleton.names)) != len(skeleton.names):
        raise MocapError(f"{path}: joint names are not unique")
    return Motion(skeleton, rotations, root_position, fps, metres, path)
