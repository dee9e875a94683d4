"""Small mocap files written by the tests: BVH and ASF/AMC text, and a CMU-named skeleton."""
from __future__ import annotations

import numpy as np

from wham_ros.mocap.skeleton import Skeleton

# CMU's 31-joint BVH layout (bvh11's conversion), bind pose standing with the arms down, metres
CMU_JOINTS = (
    ("Hips", None, (0, 0, 0)), ("LHipJoint", "Hips", (0, 0, 0)), ("LeftHip", "LHipJoint", (0.08, -0.09, 0.04)),
    ("LeftKnee", "LeftHip", (0.14, -0.39, 0)), ("LeftAnkle", "LeftKnee", (0.13, -0.37, 0)),
    ("LeftToe", "LeftAnkle", (0.01, -0.02, 0.12)), ("LeftToe_end", "LeftToe", (0, 0, 0.06)),
    ("RHipJoint", "Hips", (0, 0, 0)), ("RightHip", "RHipJoint", (-0.08, -0.09, 0.04)),
    ("RightKnee", "RightHip", (-0.14, -0.39, 0)), ("RightAnkle", "RightKnee", (-0.13, -0.37, 0)),
    ("RightToe", "RightAnkle", (-0.01, -0.02, 0.12)), ("RightToe_end", "RightToe", (0, 0, 0.06)),
    ("lowerback", "Hips", (0, 0, 0)), ("Chest", "lowerback", (0, 0.11, 0)), ("Chest2", "Chest", (0, 0.11, 0)),
    ("lowerneck", "Chest2", (0, 0, 0)), ("Neck", "lowerneck", (0, 0.09, 0.01)), ("Head", "Neck", (0, 0.09, 0)),
    ("Head_end", "Head", (0, 0.09, 0)), ("LeftCollar", "Chest2", (0, 0, 0)),
    ("LeftShoulder", "LeftCollar", (0.17, 0.08, 0)), ("LeftElbow", "LeftShoulder", (0, -0.24, 0)),
    ("LeftWrist", "LeftElbow", (0, -0.19, 0)), ("lhand", "LeftWrist", (0, 0, 0)),
    ("LFingers", "lhand", (0, -0.04, 0)), ("LFingers_end", "LFingers", (0, -0.03, 0)),
    ("RightCollar", "Chest2", (0, 0, 0)), ("RightShoulder", "RightCollar", (-0.17, 0.08, 0)),
    ("RightElbow", "RightShoulder", (0, -0.24, 0)), ("RightWrist", "RightElbow", (0, -0.19, 0)),
    ("rhand", "RightWrist", (0, 0, 0)), ("RFingers", "rhand", (0, -0.04, 0)),
    ("RFingers_end", "RFingers", (0, -0.03, 0)),
)


def skeleton_of(joints) -> Skeleton:
    names = tuple(j[0] for j in joints)
    parents = np.array([-1 if p is None else names.index(p) for _, p, _ in joints])
    return Skeleton(names, parents, np.array([o for _, _, o in joints], dtype=float))


def bvh_text(joints, frames: np.ndarray, frame_time: float, root_height: float = 0.95) -> str:
    """BVH text: ``joints`` (name, parent, offset); frames (T, 3 + 3 * moving joints) of root
    position then ZYX Euler degrees per joint with children, in hierarchy order."""
    children: dict = {}
    for name, parent, _ in joints:
        children.setdefault(parent, []).append(name)
    offsets = {name: offset for name, _, offset in joints}
    lines = ["HIERARCHY"]

    def write(name: str, depth: int) -> None:
        pad = "  " * depth
        kids = children.get(name, [])
        if not kids:
            lines.extend([f"{pad}End Site", f"{pad}{{", f"{pad}  OFFSET {' '.join(map(str, offsets[name]))}",
                          f"{pad}}}"])
            return
        head = "ROOT" if depth == 0 else "JOINT"
        lines.extend([f"{pad}{head} {name}", f"{pad}{{", f"{pad}  OFFSET {' '.join(map(str, offsets[name]))}"])
        channels = "6 Xposition Yposition Zposition" if depth == 0 else "3"
        lines.append(f"{pad}  CHANNELS {channels} Zrotation Yrotation Xrotation")
        for kid in kids:
            write(kid, depth + 1)
        lines.append(f"{pad}}}")

    write(children[None][0], 0)
    lines += ["MOTION", f"Frames: {len(frames)}", f"Frame Time: {frame_time:.6f}"]
    out = frames.copy()
    out[:, 1] += root_height
    lines += [" ".join(f"{v:.6f}" for v in row) for row in out]
    return "\n".join(lines) + "\n"


def moving_joints(joints) -> list[str]:
    parents = {p for _, p, _ in joints}
    return [name for name, _, _ in joints if name in parents]


def walking_frames(joints, count: int, fps: float, seed: int = 0) -> np.ndarray:
    """Smooth plausible motion: root moving forward, knees and elbows bending, small noise elsewhere."""
    g = np.random.default_rng(seed)
    names = moving_joints(joints)
    t = np.arange(count) / fps
    frames = np.zeros((count, 3 + 3 * len(names)))
    frames[:, 2] = 1.2 * t
    for k, name in enumerate(names):
        col = 3 + 3 * k
        phase = g.uniform(0, 2 * np.pi)
        frames[:, col:col + 3] = 4 * np.sin(2 * np.pi * 0.8 * t[:, None] + phase + np.arange(3))
        if "Knee" in name:
            frames[:, col + 2] += 30 + 25 * np.sin(2 * np.pi * t + phase)   # X rotation: flexion
        if "Elbow" in name:
            frames[:, col + 2] -= 20
    return frames


ASF = """# test skeleton
:version 1.10
:name test
:units
  mass 1.0
  length 0.45
  angle deg
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name lfemur
     direction 0 -1 0
     length 9.0
     axis 0 0 0  XYZ
    dof rx ry rz
  end
  begin
     id 2
     name ltibia
     direction 0 -1 0
     length 9.0
     axis 0 0 90  XYZ
    dof rx
  end
:hierarchy
  begin
    root lfemur
    lfemur ltibia
  end
"""


def amc_text(frames: list[dict[str, list[float]]]) -> str:
    lines = ["#!OML:ASF test.asf", ":FULLY-SPECIFIED", ":DEGREES"]
    for n, frame in enumerate(frames, start=1):
        lines.append(str(n))
        lines += [f"{bone} {' '.join(map(str, values))}" for bone, values in frame.items()]
    return "\n".join(lines) + "\n"
